//! The agent protocol, version [`AGENT_PROTOCOL`]: what a `patchward agent` and the control
//! plane say to each other under `/agent/v1` (described in `docs/agent-protocol.md`).
//!
//! An agent enrols once with a one-time enrolment token and receives its own credential; from
//! then on it checks in with that credential (`Authorization: Bearer pwa_...`). A check-in is
//! small: the agent's protocol and version and a digest of its last inventory; the server
//! answers when to come back and whether it wants the full inventory. Every message carries
//! `protocol`, so an agent older than the server is told what to do (upgrade), never broken.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The protocol this build speaks. A server answers agents of any version from
/// [`AGENT_PROTOCOL_MIN`] on; older ones are told to upgrade. Version 2 added health probes
/// (`JobOffer.probes`, `StepReport.probes`): a version-1 agent ignores them and its
/// verification fails naming each probe it did not run; and updates by identity
/// (`StepReport.found` with `scan`, `JobOffer.found`): a version-1 agent installs by KB.
pub const AGENT_PROTOCOL: u32 = 2;
/// The oldest protocol a server still serves.
pub const AGENT_PROTOCOL_MIN: u32 = 1;
/// Every agent credential starts with this, so a leaked one is recognisable.
pub const AGENT_CREDENTIAL_PREFIX: &str = "pwa_";
/// Every enrolment token starts with this.
pub const ENROL_TOKEN_PREFIX: &str = "pwe_";

/// `POST /agent/v1/enrol`: the first call of a new agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The one-time enrolment token an administrator created for the tenant.
    pub token: String,
    /// The server's short host name: the name it has in the inventory.
    pub hostname: String,
    pub protocol: u32,
    /// The agent's own version (`0.1.0`).
    pub agent_version: String,
}

/// Most hosts one enrolment may bring in.
pub const MAX_ENROL_BATCH: usize = 10_000;

/// Several hosts enrolled with one use of a token, all or nothing: what a provisioning tool
/// that brings up a fleet at once sends (and `patchward simulate`). Each host gets its own
/// credential, exactly as if it had enrolled alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrolBatchRequest {
    pub token: String,
    /// Short host names, distinct, 1 to 10,000.
    pub hostnames: Vec<String>,
    pub protocol: u32,
    pub agent_version: String,
}

/// One reply per host, in the order of the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrolBatchReply {
    pub agents: Vec<EnrolReply>,
}

/// The answer to an enrolment: who the agent is from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrolReply {
    pub agent_id: i64,
    /// The server name the agent reports for (the enrolled host name).
    pub server: String,
    /// The agent's credential (`pwa_...`), shown once: the agent keeps it in its state file.
    pub credential: String,
    /// The protocol the server will speak with this agent.
    pub protocol: u32,
    /// Check in every this many seconds...
    pub check_in_seconds: u32,
    /// ...plus a random 0..jitter_seconds, so a fleet restarted at once spreads out.
    pub jitter_seconds: u32,
}

/// `POST /agent/v1/check-in`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckIn {
    pub protocol: u32,
    pub agent_version: String,
    /// SHA-256 (hex) of the agent's current inventory report as JSON; the server asks for the
    /// report when it differs from the one it has.
    #[serde(default)]
    pub inventory_digest: Option<String>,
    /// Long-polling: when there is no work now, hold the answer up to this many seconds
    /// (at most the reply's `long_poll_seconds`) and answer as soon as work comes (a cycle
    /// starts or resumes, a rollback is asked for, the job's slot comes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u32>,
}

/// What the server asks of an agent after a check-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckInReply {
    /// The protocol the server speaks with this agent.
    pub protocol: u32,
    pub check_in_seconds: u32,
    pub jitter_seconds: u32,
    /// The longest `wait_seconds` this server honours (0: it answers at once).
    #[serde(default)]
    pub long_poll_seconds: u32,
    /// Send `POST /agent/v1/inventory` now (the server has no report with this digest).
    pub send_inventory: bool,
    /// Something the agent must do before anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directive: Option<Directive>,
    /// Work for this server: its gates passed just now and the job is leased to this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobOffer>,
}

/// A job leased to the agent. Every report on it carries `token` (the fencing token): a
/// report with an older token (the lease lapsed and was granted again) is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobOffer {
    pub job_id: i64,
    pub token: i64,
    pub cycle: String,
    /// The updates to install (`KB5041160`), found on the host by KB.
    pub updates: Vec<String>,
    /// The OS build the updates bring, when known (`10.0.20348.2655`).
    #[serde(default)]
    pub expected_build: Option<String>,
    /// `if_required`, `never` or `always`.
    pub reboot: String,
    /// Steps already done (a job resumed after a reboot or an agent restart; for a rollback,
    /// the rollback's own steps).
    #[serde(default)]
    pub done: Vec<String>,
    /// Report within this many seconds or the lease lapses.
    pub lease_seconds: u32,
    /// `install` (the updates), or `rollback`: uninstall `updates`, reboot when needed, and
    /// report `verify` with the host as it is then.
    #[serde(default = "install")]
    pub action: String,
    /// Health probes to run once the server is back, reported with `verify` (protocol 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    /// The exact updates the job's scan found (Windows Update's UpdateID and revision per
    /// KB): an agent resuming after its scan installs these and nothing else (protocol 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<UpdateRef>,
    /// Retry a failing probe for up to this many seconds after the reboot (applications
    /// start after Windows does).
    #[serde(default)]
    pub probe_grace_seconds: u32,
}

/// One update as Windows Update identifies it: what a scan found for a KB, and what the
/// install then asks for by identity (a re-released update has a new revision: the job
/// installs the revision its scan found, or says it is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRef {
    /// `KB5094128`.
    pub kb: String,
    /// Windows Update's UpdateID, a GUID (`6d5f0b4e-2a40-4b1e-9a43-7c0e6f1f9b21`).
    pub update_id: String,
    /// Its revision number.
    pub revision: u32,
    #[serde(default)]
    pub title: String,
}

/// Whether `s` is a GUID as Windows Update writes UpdateIDs (`8-4-4-4-12` hex digits): the
/// only form that reaches a Windows Update search.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An application health probe, run on the server itself (`localhost` is the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Probe {
    /// `GET url` answers `status`, and its body contains `body_contains` when given.
    Http {
        url: String,
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_contains: Option<String>,
    },
    /// A TCP connection to `host:port` is accepted.
    Tcp { host: String, port: u16 },
    /// The Windows service (its short name) is running.
    WindowsService { name: String },
}

/// What the agent found running one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeResult {
    pub probe: Probe,
    pub passed: bool,
    /// What it saw: `200 OK`, `503 Service Unavailable`, `connection refused`, `stopped`.
    #[serde(default)]
    pub detail: String,
}

fn install() -> String {
    "install".into()
}

/// `POST /agent/v1/jobs/{id}/steps`: a step started, finished or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    pub token: i64,
    /// `scan`, `download`, `install`, `reboot`, `verify`, `rollback`.
    pub step: String,
    /// `started`, `finished` or `failed`.
    pub status: String,
    #[serde(default)]
    pub detail: String,
    /// Per update, with `install` (and `rollback`).
    #[serde(default)]
    pub results: Vec<UpdateOutcome>,
    /// The host as it is now, with `reboot` finished and `verify`.
    #[serde(default)]
    pub inventory: Option<InventoryReport>,
    /// Critical events logged since the job started, with `verify`.
    #[serde(default)]
    pub events: Vec<EventRecord>,
    /// The offer's health probes and what each found, with `verify` (protocol 2).
    #[serde(default)]
    pub probes: Vec<ProbeResult>,
    /// What the scan found for the job's KBs, with `scan` (protocol 2).
    #[serde(default)]
    pub found: Vec<UpdateRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOutcome {
    pub kb: String,
    pub installed: bool,
    /// The Windows result code when it failed (`0x800F0922`).
    #[serde(default)]
    pub hresult: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    pub id: u32,
    pub source: String,
    /// RFC 3339.
    pub at: String,
    #[serde(default)]
    pub message: String,
}

/// What the server says after a step report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepReply {
    /// Go on with the next step; `false`: stop (the job ended or was cancelled).
    #[serde(rename = "continue")]
    pub proceed: bool,
    pub lease_seconds: u32,
    /// The job's state after the report.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An instruction that overrides the normal loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Directive {
    /// The agent's protocol is older than the server serves: it keeps checking in (so it
    /// stays visible) but gets no work until it is upgraded to at least `minimum_protocol`.
    Upgrade {
        minimum_protocol: u32,
        message: String,
    },
}

/// `POST /agent/v1/inventory`: what the agent found on its server. Replaces the previous
/// report; OS, build, KBs, roles, pending reboot and last boot update the server's inventory
/// (owner, tier, windows and other facts the agent cannot know are kept).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryReport {
    pub protocol: u32,
    /// Fully qualified name, when joined to a domain.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// The OS caption (`Microsoft Windows Server 2022 Datacenter`).
    pub os: String,
    /// `10.0.20348.2582`: major.minor.build.UBR.
    pub build: String,
    /// `full` (Desktop Experience), `core` or `nano`.
    #[serde(default)]
    pub installation: Option<String>,
    /// Installed updates: `KB5041160` or `5041160`.
    #[serde(default)]
    pub installed_kbs: Vec<String>,
    /// Windows roles and features that matter for patching (`AD-Domain-Services`, `DNS`,
    /// `Hyper-V`, `Web-Server`, ... or Patchward role names).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Why a reboot is pending (`CBS RebootPending`, `WindowsUpdate RebootRequired`,
    /// `PendingFileRenameOperations`, ...); empty when none.
    #[serde(default)]
    pub pending_reboot: Vec<String>,
    /// RFC 3339.
    #[serde(default)]
    pub last_boot: Option<String>,
    /// Services with their start mode and state (the verification snapshot compares these).
    #[serde(default)]
    pub services: Vec<ServiceState>,
    /// Evidence of the server's backups, as the agent can see it.
    #[serde(default)]
    pub backups: Vec<BackupEvidence>,
    /// Free space on the system drive, in MiB (a gate checks it).
    #[serde(default)]
    pub system_drive_free_mib: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceState {
    /// The service's short name (`W32Time`).
    pub name: String,
    /// `auto`, `auto_delayed`, `manual`, `disabled`.
    pub start_mode: String,
    /// `running`, `stopped`, `start_pending`, `stop_pending`, `paused`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupEvidence {
    /// Where the evidence comes from (`Windows Server Backup`, `Veeam`, `VSS`).
    pub source: String,
    /// The last successful backup (RFC 3339), if any.
    #[serde(default)]
    pub last_success: Option<String>,
    /// The last attempt's outcome (`success`, `warning`, `failed`).
    #[serde(default)]
    pub last_result: Option<String>,
}

/// An agent as administrators see it (`GET /api/v1/agents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    pub id: i64,
    pub server: String,
    pub agent_version: String,
    pub protocol: u32,
    pub enrolled_at: String,
    pub last_seen: String,
    /// `active`, `silent` (missed three check-ins), `revoked`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// When the last inventory report arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<String>,
}

/// `POST /api/v1/enrol-tokens`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnrolToken {
    /// A tenant's name (provider-wide administrators; others enrol into their own).
    #[serde(default)]
    pub tenant: Option<String>,
    /// How many enrolments it allows (default 1: a one-time token; one batch enrolment, up to
    /// 10,000 hosts, takes one).
    #[serde(default)]
    pub uses: Option<u32>,
    /// Hours until it expires (default 24, at most 720).
    #[serde(default)]
    pub expires_hours: Option<u32>,
    #[serde(default)]
    pub label: Option<String>,
}

/// An enrolment token (its secret only in the answer that created it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrolTokenView {
    pub id: i64,
    pub tenant: String,
    pub label: String,
    pub uses_left: u32,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    /// `usable`, `used`, `expired`, `revoked`.
    pub status: String,
    /// The token (`pwe_...`), shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl InventoryReport {
    /// SHA-256 (hex) of the report as JSON: what a check-in carries so the server asks for the
    /// report only when it changed. Agent and server compute it with this one function.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_vec(self).unwrap_or_default();
        sha2::Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
