//! The change workflow on the wire: cycles, approvals, deferrals, exceptions, the tenant's
//! workflow rules, emergency proposals and the dashboard.

use crate::{ExposureSummary, PlanView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A cycle in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CycleSummary {
    pub id: i64,
    pub name: String,
    /// `monthly` or `emergency`.
    pub kind: String,
    /// `draft`, `planned`, `approved`, `running`, `completed`, `cancelled`.
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    /// Who prepared it (created, edited the scope, planned): they cannot be its only approver.
    pub prepared_by: Vec<String>,
    /// Servers and server × update pairs in scope.
    pub servers: u32,
    pub updates: u32,
    /// Every server in scope is due by the end of this day (emergency cycles).
    pub deadline: Option<String>,
    /// The CVE of an emergency cycle.
    pub cve: Option<String>,
    /// Rings of the plan still waiting for approval.
    pub awaiting_approval: Vec<String>,
    pub placed: Option<u32>,
    pub unplaced: Option<u32>,
    pub deferrals: u32,
    /// Deferrals whose findings fall due before their target cycle starts.
    pub deferrals_past_due: u32,
    /// Approvals withdrawn because the plan changed after them.
    pub approvals_withdrawn: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScopeItemView {
    pub server: String,
    /// The server's id (absent when it left the estate).
    pub server_id: Option<i64>,
    pub updates: Vec<String>,
    pub cves: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RingApprovalView {
    /// `""`: servers without a ring.
    pub ring: String,
    pub approved: bool,
    pub approvers: Vec<String>,
    /// What it still needs.
    pub missing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    pub id: u32,
    /// `null`: the whole plan.
    pub ring: Option<String>,
    pub by: String,
    pub ticket: String,
    pub comment: String,
    pub at: String,
    pub withdrawn_at: Option<String>,
    /// Why it was withdrawn (what changed in the plan).
    pub withdrawn_why: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeferralView {
    pub server: String,
    /// `null`: the whole server.
    pub update: Option<String>,
    pub reason: String,
    pub to_cycle: String,
    pub to_start: String,
    pub by: String,
    pub at: String,
    /// The earliest due date of what was deferred.
    pub due: Option<String>,
    pub past_due: bool,
    /// Says so when the findings fall due before the target cycle starts.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransitionView {
    pub from: Option<String>,
    pub to: String,
    pub at: String,
    pub by: String,
    pub why: String,
}

/// Whether the caller may do something now, and why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionState {
    pub allowed: bool,
    pub why_not: Option<String>,
}

/// The open findings when the cycle was planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotView {
    pub at: String,
    pub open: u64,
    pub act: u64,
    pub attend: u64,
    pub kev: u64,
    pub overdue: u64,
}

/// `GET /api/v1/cycles/{id}`: a cycle with its scope, plan, approvals and deferrals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CycleView {
    #[serde(flatten)]
    pub summary: CycleSummary,
    pub start: String,
    /// What proposed the scope (decision, kev, product, ring, tag, owner, cve).
    pub filter: serde_json::Value,
    pub scope: Vec<ScopeItemView>,
    pub rings: Vec<RingApprovalView>,
    pub approvals: Vec<ApprovalView>,
    pub deferrals: Vec<DeferralView>,
    pub history: Vec<TransitionView>,
    pub plan: Option<PlanView>,
    pub snapshot: Option<SnapshotView>,
    /// What the caller may do now.
    pub can_approve: ActionState,
    pub can_plan: ActionState,
    pub can_start: ActionState,
}

/// `POST /api/v1/cycles`. A monthly cycle is named after the current Patch Tuesday unless
/// named; an emergency cycle needs `cve` and is named "CVE-… emergency". The scope is proposed
/// from open findings matching the filters (or the servers named).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCycleRequest {
    /// `monthly` (default) or `emergency`.
    pub kind: Option<String>,
    pub name: Option<String>,
    pub cve: Option<String>,
    /// Only findings at this decision or above: `act`, `attend`, `track-star`, `track`.
    pub decision: Option<String>,
    pub kev: Option<bool>,
    /// A release: `2022`, `Windows Server 2019`, ...
    pub product: Option<String>,
    pub ring: Option<String>,
    pub tag: Option<String>,
    pub owner: Option<String>,
    /// Only these servers (names).
    pub servers: Option<Vec<String>>,
    /// When the plan may start (RFC 3339; default now).
    pub start: Option<String>,
}

/// `POST /api/v1/cycles/{id}/plan`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanCycleRequest {
    /// When the plan may start (RFC 3339; default: the cycle's start, or now if later).
    pub start: Option<String>,
    /// How far ahead to look for windows (default 35 days, emergency 14).
    pub horizon_days: Option<u32>,
}

/// `POST /api/v1/cycles/{id}/approvals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// A ring of the plan; absent: the whole plan.
    pub ring: Option<String>,
    /// The change-ticket reference.
    pub ticket: String,
    pub comment: Option<String>,
}

/// `PUT /api/v1/cycles/{id}/scope`: servers to add (with their open updates) or remove.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeEditRequest {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `POST /api/v1/cycles/{id}/deferrals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeferRequest {
    pub server: String,
    /// A KB of the server's scope; absent: the whole server.
    pub update: Option<String>,
    pub reason: String,
    /// A monthly cycle ("2027-01 Patch Tuesday"); default: the next one.
    pub to_cycle: Option<String>,
}

/// `POST /api/v1/cycles/{id}/transitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// `running`, `completed` or `cancelled`.
    pub to: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionView {
    pub id: i64,
    pub server: String,
    pub server_id: Option<i64>,
    /// `cve` or `update`.
    pub kind: String,
    /// The CVE or KB.
    pub subject: String,
    pub reason: String,
    pub compensating_control: String,
    pub risk_owner: String,
    pub approver: String,
    pub granted_at: String,
    /// Active through the end of this day (UTC).
    pub expires: String,
    /// `active`, `expiring` (within 14 days), `expired`, `revoked`.
    pub status: String,
    pub days_left: i64,
    pub revoked_at: Option<String>,
    pub revoked_why: Option<String>,
}

/// `POST /api/v1/exceptions`: exactly one of `cve` and `update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExceptionRequest {
    pub server: String,
    pub cve: Option<String>,
    pub update: Option<String>,
    pub reason: String,
    pub compensating_control: String,
    pub risk_owner: String,
    /// `YYYY-MM-DD`, after today and within the policy's cap.
    pub expires: String,
}

/// `POST /api/v1/exceptions/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeExceptionRequest {
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
pub struct ExceptionQuery {
    /// `active` (active and expiring), `expiring`, `expired`, `revoked`.
    pub status: Option<String>,
    /// Only this server's (name).
    pub server: Option<String>,
}

/// A tenant's workflow rules (`GET|PUT /api/v1/workflow-rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowRulesView {
    /// Distinct approvers each ring needs (1–5).
    pub approvals_required: u8,
    /// Whoever prepared a cycle cannot be its only approver.
    pub separation_of_duties: bool,
    /// Admins count as approvers (approvers always do).
    pub admins_approve: bool,
    /// How far an exception's expiry may be, in days (1–730).
    pub exception_max_days: u32,
    /// An emergency cycle's servers are due this many days after it is created (1–60).
    pub emergency_sla_days: u32,
    /// Failures a ring tolerates, in percent of its servers rounded down (0–100, default 10),
    /// before it halts. Always given when read; left out of a PUT, it stays as it is.
    #[serde(default)]
    pub failure_budget_percent: Option<u32>,
}

/// A CVE that calls for an emergency cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmergencyProposal {
    pub cve: String,
    pub title: String,
    /// Why: `in CISA KEV since …`, `exploited (MSRC)`, `internet-exposed and critical`.
    pub why: Vec<String>,
    pub kev: bool,
    pub ransomware: bool,
    pub servers: u32,
    /// Names of up to 10 exposed servers.
    pub examples: Vec<String>,
    pub fixed_by: Vec<String>,
    /// The emergency cycle already made for it, if any.
    pub cycle_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrendPoint {
    /// The cycle's name, or `now`.
    pub label: String,
    pub at: String,
    pub open: u64,
    pub act: u64,
    pub kev: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StaleFeed {
    pub feed: String,
    /// The newest data's date, if any.
    pub as_of: Option<String>,
    pub max_age_days: i64,
}

/// `GET /api/v1/dashboard`: what needs attention today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Dashboard {
    pub summary: ExposureSummary,
    /// Servers with an Act finding overdue or due within 3 days.
    pub act_due_soon_servers: u32,
    pub stale_feeds: Vec<StaleFeed>,
    /// Exceptions expiring within 14 days, soonest first.
    pub expiring: Vec<ExceptionView>,
    /// Cycles not completed or cancelled, newest first.
    pub cycles: Vec<CycleSummary>,
    /// Open findings at each cycle's planning, oldest first, then now.
    pub trend: Vec<TrendPoint>,
    pub proposals: Vec<EmergencyProposal>,
}

/// A job: the work on one server in a running cycle (`GET /api/v1/cycles/{id}/jobs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub server: String,
    pub ring: Option<String>,
    /// `waiting`, `blocked`, `running`, `succeeded`, `failed`, `needs_remediation`,
    /// `rolling_back`, `rolled_back`, `cancelled`.
    pub state: String,
    pub updates: Vec<String>,
    pub expected_build: Option<String>,
    pub slot_start: String,
    pub slot_end: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Each step as it happened.
    pub steps: Vec<JobStepView>,
    /// Per update: installed, or the Windows HRESULT it failed with.
    pub results: Vec<JobUpdateView>,
    /// Why it is waiting or blocked now, or why it ended as it did.
    pub reasons: Vec<String>,
    /// The verification's checks, once verified or failed.
    pub checks: Vec<JobCheckView>,
    pub outcome: String,
    /// The rollback, once asked for.
    pub rollback: Option<JobRollbackView>,
    /// The operator's hooks run for it (checkpoint, restore), with exit code and output.
    pub hooks: Vec<JobHookView>,
    /// The health probes of its services it is verified by, fixed when its gates passed
    /// (`HTTP http://localhost/health answers 200`, `TCP localhost:1433 accepts`,
    /// `service MSSQLSERVER running`).
    pub probes: Vec<String>,
    /// `if_required`, `never` or `always`: when its agent restarts the server.
    pub reboot_policy: String,
    /// Why a rollback would be refused now (`nothing was installed: …`); `None`: an approver
    /// may roll it back.
    pub rollback_refused: Option<String>,
    /// What its scan found, each KB as Windows Update identifies it
    /// (`KB5094128: 6d5f0b4e-… revision 201`).
    pub found: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobRollbackView {
    /// `uninstall_kb`, `snapshot`, `restore_from_backup`, `vendor_procedure`.
    pub method: String,
    /// The approver, or `policy` (the plan's `automatic`).
    pub requested_by: String,
    pub requested_at: String,
    pub reason: String,
    /// The updates it removes (uninstall_kb).
    pub updates: Vec<String>,
    /// Per update: `installed` false once removed, or the HRESULT removal failed with.
    pub results: Vec<JobUpdateView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobHookView {
    /// `checkpoint` or `restore`.
    pub hook: String,
    pub command: String,
    pub started: String,
    pub finished: Option<String>,
    pub exit_code: Option<i32>,
    /// Standard output and error, the last 16 KiB.
    pub output: String,
}

/// `POST /api/v1/jobs/{id}/rollback` (approvers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub reason: String,
    /// Record a rollback people did (plans `restore_from_backup`, `vendor_procedure`).
    #[serde(default)]
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobStepView {
    pub step: String,
    pub started: String,
    pub finished: Option<String>,
    pub ok: Option<bool>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobUpdateView {
    pub kb: String,
    pub installed: bool,
    pub hresult: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobCheckView {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// A cycle's jobs and where its rings stand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CycleJobs {
    pub cycle: i64,
    pub state: String,
    /// Who paused it, when and why (no new job starts while paused).
    pub paused: Option<String>,
    /// Per ring in order: `open`, `waiting: …` or `halted: …`.
    pub rings: Vec<RingStatusView>,
    pub jobs: Vec<JobView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RingStatusView {
    pub ring: String,
    pub status: String,
    pub reason: Option<String>,
}

/// `POST /api/v1/cycles/{id}/pause`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    pub reason: String,
}

/// `POST /api/v1/cycles/{id}/resume`: lift a pause, and (with `ring`) go on past a ring that
/// halted over its failure budget, accepting its failures so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    #[serde(default)]
    pub ring: Option<String>,
    pub reason: String,
}
