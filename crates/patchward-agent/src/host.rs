//! What the agent needs of the machine it runs on.

use jiff::Timestamp;
use patchward_proto::agent::{EventRecord, InventoryReport, UpdateOutcome, UpdateRef};
use std::time::Duration;

/// Where a download stands (Windows Update's download phase, asked again until it is done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Download {
    /// Everything is on the host (or the host downloads within `install`).
    Done,
    /// Still downloading, `percent` done: ask again after `poll`.
    InProgress { percent: u8, poll: Duration },
    /// The download failed with this HRESULT (`0x80244022`).
    Failed(String),
}

/// A Windows Server as the agent sees it. Calls may block (WMI, the registry, the Windows
/// Update Agent): the agent runs them off the async runtime's threads when it matters.
pub trait Host: Send {
    /// The short host name the server enrols under.
    fn hostname(&self) -> String;
    /// OS, build with UBR, installed KBs, roles, pending reboot, services, backups.
    fn inventory(&mut self, now: Timestamp) -> InventoryReport;
    /// Search Windows Update for these KBs: each one it offers this host, as it identifies
    /// it (UpdateID and revision); a KB it does not offer (not applicable, superseded, already
    /// installed) is left out.
    fn scan(&mut self, updates: &[String], now: Timestamp) -> Result<Vec<UpdateRef>, String>;
    /// Start or continue downloading the updates; asked again while it is in progress (the
    /// agent reports progress meanwhile, which keeps its lease).
    fn download(&mut self, updates: &[String], now: Timestamp) -> Download;
    /// Download (what is not yet) and install the updates; one outcome per update
    /// (the Windows HRESULT when one failed). `expected_build` is what the control plane
    /// expects the updates to bring (a simulated host that does not know a KB uses it).
    ///
    /// `found` is what the job's scan found: when given, exactly those updates (UpdateID and
    /// revision) are installed, and a KB whose update is no longer offered fails with
    /// WU_E_NO_UPDATE (0x80240024); empty (a server before protocol 2), they are found by KB.
    fn install(
        &mut self,
        updates: &[String],
        found: &[UpdateRef],
        expected_build: Option<&str>,
        now: Timestamp,
    ) -> Vec<UpdateOutcome>;
    /// Remove these updates (a rollback); one outcome per update, `installed` false once it
    /// is gone (or was not there), or true with the HRESULT removal failed with.
    /// `expected_build` is the build the job's cumulative update brought: its package is named
    /// by that build, not by its KB (`Package_for_RollupFix~…~20348.2655.1.10`).
    fn uninstall(
        &mut self,
        updates: &[String],
        expected_build: Option<&str>,
        now: Timestamp,
    ) -> Vec<UpdateOutcome>;
    /// Whether the installed updates wait for a reboot.
    fn reboot_pending(&self) -> bool;
    /// Reboot. `false`: the host did not come back (a real agent's process ends here and
    /// resumes from its state file after the boot; a simulated host may be told never to
    /// return).
    fn reboot(&mut self, now: Timestamp) -> bool;
    /// Critical events logged since `since` (System and Application logs).
    fn critical_events(&self, since: Timestamp) -> Vec<EventRecord>;
    /// The state of the Windows service with this short name (`running`, `stopped`,
    /// `start_pending`, …), `None` when the server has no such service (a health probe).
    fn service_state(&mut self, name: &str) -> Result<Option<String>, String>;
}
