//! What the agent needs of the machine it runs on.

use jiff::Timestamp;
use patchward_proto::agent::InventoryReport;

/// A Windows Server as the agent sees it. Calls may block (WMI, the registry, the Windows
/// Update Agent): the agent runs them off the async runtime's threads when it matters.
pub trait Host: Send {
    /// The short host name the server enrols under.
    fn hostname(&self) -> String;
    /// OS, build with UBR, installed KBs, roles, pending reboot, services, backups.
    fn inventory(&mut self, now: Timestamp) -> InventoryReport;
}
