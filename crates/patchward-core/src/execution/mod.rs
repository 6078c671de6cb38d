//! Execution (PRODUCT.md C7, C8): jobs, the gates checked right before a server is touched,
//! verification after its reboot, and ring promotion. Pure rules over values: the application
//! layer evaluates them with the store's facts and the clock's time.
//!
//! # Rules
//! - A job is the work on one server in one cycle: gates → scan → download → install → reboot
//!   → verify, each step timestamped, with a result per update (the Windows HRESULT when one
//!   failed). States: `waiting` (its ring or slot has not come), `blocked` (a gate failed: the
//!   reasons are kept and the gates are checked again at the agent's next check-in while the
//!   window lasts), `running` (leased to the server's agent), then `succeeded` (installed and
//!   verified), `failed` (an update failed to install), `needs_remediation` (verification
//!   failed, or the server did not come back), `rolled_back`, or `cancelled`. A job never
//!   skips silently: a window that closes on a blocked job ends it as `failed` with the last
//!   gate reasons.
//! - Gates ([`evaluate_gates`]): the ring is approved; the window is open now and the whole
//!   expected duration still fits in it; no blackout applies now; the backup is fresh per the
//!   server's policy; a rollback plan exists where one is required; enough free space on the
//!   system drive; no pending reboot from before (an unexplained one would hide whether our
//!   install needs one); the servers it depends on are healthy (not down, failed or being
//!   patched); the disruption budget of each of its services has room.
//! - Verification ([`verify`]): the expected updates are installed and the OS build is at
//!   least the expected revision; no reboot is pending; every automatic service that ran
//!   before runs again; no new critical events since the reboot (6008, 41, 7000, 7001, 7023,
//!   7031, 7034, 20, 1000); backups still succeed; every health probe of the server's services
//!   (HTTP status and body, TCP port, Windows service) passes, run by the agent on the server
//!   and retried for the service's probe grace while applications start.
//! - Rollback ([`Job::begin_rollback`]): a job that failed, needs remediation, or succeeded
//!   and was later found wanting goes to `rolling_back` on an approver's decision, or by
//!   itself when the server's plan says `automatic` and verification failed. By the plan's
//!   method: the agent uninstalls the updates the job installed and reboots, and the job is
//!   `rolled_back` once they are gone and no reboot is pending; or the operator's restore hook
//!   reverts the VM to the checkpoint the checkpoint hook took before the install. The other
//!   methods (restore from backup, vendor procedure) are done by people and recorded.
//! - Rings ([`ring_gate`]): ring k+1 starts only when every job of ring k is verified (or
//!   ended and counted) and the soak since the last one has passed; a ring whose failures
//!   exceed its failure budget halts, and later rings wait for a decision.

mod gates;
#[cfg(test)]
mod tests;
mod verify;

pub use gates::{
    Gate, GateInput, GateResult, RingGate, RingJob, evaluate_gates, failure_allowance, ring_gate,
};
pub use verify::{CRITICAL_EVENT_IDS, Check, CriticalEvent, ProbeOutcome, Verification, verify};

use crate::OsBuild;
use crate::inventory::{HealthProbe, RebootPolicy};
use jiff::SignedDuration;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Failures a ring tolerates by default (the tenant's workflow rules set it), in percent of its
/// servers (rounded down): 10% halts a ring of fewer than ten servers at its first failure.
pub const FAILURE_BUDGET_PERCENT: u32 = 10;
/// Free space the system drive needs before a cumulative update (Microsoft asks for about
/// 10 GB for feature and cumulative updates).
pub const MIN_FREE_MIB: u64 = 10 * 1024;
/// How long a leased job may go without a report before its lease lapses.
pub const LEASE: SignedDuration = SignedDuration::from_mins(15);
/// How long a server may take to come back from its reboot.
pub const REBOOT_TIMEOUT: SignedDuration = SignedDuration::from_mins(30);

/// The duration to plan for a server from how long its last jobs took (gates passed to
/// verified): the median, a quarter more for safety, rounded up to five minutes, at least a
/// quarter of an hour. `None` without samples (the planner's default by role applies).
pub fn learned_duration(samples: &[SignedDuration]) -> Option<SignedDuration> {
    let mut s: Vec<i64> = samples
        .iter()
        .map(|d| d.as_secs())
        .filter(|x| *x >= 0)
        .collect();
    if s.is_empty() {
        return None;
    }
    s.sort_unstable();
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2
    };
    let padded = median + median / 4;
    let five = 300;
    let rounded = (padded + five - 1) / five * five;
    Some(SignedDuration::from_secs(rounded.max(900)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Waiting,
    Blocked,
    Running,
    Succeeded,
    Failed,
    NeedsRemediation,
    RollingBack,
    RolledBack,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 9] = [
        JobState::Waiting,
        JobState::Blocked,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::NeedsRemediation,
        JobState::RollingBack,
        JobState::RolledBack,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Blocked => "blocked",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::NeedsRemediation => "needs_remediation",
            JobState::RollingBack => "rolling_back",
            JobState::RolledBack => "rolled_back",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// No more work will happen on it.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            JobState::Waiting | JobState::Blocked | JobState::Running | JobState::RollingBack
        )
    }

    /// Counts against the ring's failure budget.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            JobState::Failed
                | JobState::NeedsRemediation
                | JobState::RollingBack
                | JobState::RolledBack
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Gates,
    Scan,
    Download,
    Install,
    Reboot,
    Verify,
    Rollback,
}

impl StepKind {
    pub const ALL: [StepKind; 7] = [
        StepKind::Gates,
        StepKind::Scan,
        StepKind::Download,
        StepKind::Install,
        StepKind::Reboot,
        StepKind::Verify,
        StepKind::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Gates => "gates",
            StepKind::Scan => "scan",
            StepKind::Download => "download",
            StepKind::Install => "install",
            StepKind::Reboot => "reboot",
            StepKind::Verify => "verify",
            StepKind::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One step of a job, as it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: StepKind,
    pub started: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
    /// `None` while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(default)]
    pub detail: String,
}

/// What happened to one update on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResult {
    pub kb: String,
    pub installed: bool,
    /// The Windows result code when it failed (`0x800F0922`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hresult: Option<String>,
}

/// A host as the agent last described it: what gates and verification compare.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSnapshot {
    pub at: Option<Timestamp>,
    pub build: Option<OsBuild>,
    pub installed_kbs: Vec<String>,
    pub pending_reboot: Vec<String>,
    pub last_boot: Option<Timestamp>,
    /// (name, start mode, state) of every service.
    pub services: Vec<(String, String, String)>,
    /// The last successful backup, across the sources the agent sees.
    pub last_backup: Option<Timestamp>,
    /// Whether the last backup attempt failed.
    pub backup_failing: bool,
    pub free_mib: Option<u64>,
}

/// The work on one server in one cycle (stored as the job's body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub server: String,
    pub ring: Option<String>,
    pub updates: Vec<String>,
    /// The build the newest cumulative update in `updates` brings, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_build: Option<OsBuild>,
    /// The maintenance window the plan placed it in.
    pub window: String,
    /// The planned slot.
    pub slot_start: Timestamp,
    pub slot_end: Timestamp,
    pub state: JobState,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub results: Vec<UpdateResult>,
    /// The last gate evaluation that blocked it (empty once it ran).
    #[serde(default)]
    pub blocked_by: Vec<GateResult>,
    /// The host before it was touched (verification compares with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<HostSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// Why it ended as it did, in a sentence.
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub started: Option<Timestamp>,
    #[serde(default)]
    pub finished: Option<Timestamp>,
    /// The operator's hooks run for it (the checkpoint before the install, the restore).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// The health probes of its services, fixed when its gates passed (the agent runs them
    /// after the reboot; verification needs each to pass).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<HealthProbe>,
    /// How long the agent retries a failing probe after the reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_grace: Option<SignedDuration>,
    /// The server's reboot policy when its gates passed.
    #[serde(default)]
    pub reboot: RebootPolicy,
    /// What its scan found: each KB as Windows Update identifies it (the install asks for
    /// exactly these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<FoundUpdate>,
}

/// An update as Windows Update identifies it, found by a job's scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundUpdate {
    pub kb: String,
    /// Windows Update's UpdateID (a GUID).
    pub update_id: String,
    pub revision: u32,
    #[serde(default)]
    pub title: String,
}

/// Which operator hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// Take a VM checkpoint before the server is touched (rollback method `snapshot`).
    Checkpoint,
    /// Revert the VM to that checkpoint (the rollback).
    Restore,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Checkpoint => "checkpoint",
            HookKind::Restore => "restore",
        }
    }
}

/// One run of an operator hook: what ran, its exit code and the end of its output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    pub hook: HookKind,
    pub command: String,
    pub started: Timestamp,
    /// `None` while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
    /// `None` while it runs, or when it was killed (timeout) or could not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Standard output and error, the last 16 KiB.
    #[serde(default)]
    pub output: String,
}

impl HookRun {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// A sentence for a job's outcome.
    pub fn summary(&self) -> String {
        let last = self
            .output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let status = match (self.finished, self.exit_code) {
            (None, _) => "is running".to_string(),
            (Some(_), Some(0)) => "succeeded".to_string(),
            (Some(_), Some(c)) => format!("exited with {c}"),
            (Some(_), None) => "did not finish".to_string(),
        };
        if last.is_empty() {
            format!("the {} hook {status}", self.hook.as_str())
        } else {
            format!("the {} hook {status}: {last}", self.hook.as_str())
        }
    }
}

/// A rollback asked for after the job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    pub method: crate::inventory::RollbackMethod,
    /// The approver, or `policy` (the plan's `automatic`).
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub reason: String,
    /// The state it ended in before (what a failed rollback leaves it needing remediation from).
    pub from: JobState,
    /// The updates to remove (uninstall_kb): those the job installed.
    #[serde(default)]
    pub updates: Vec<String>,
    /// Where the rollback's steps begin in `steps`.
    #[serde(default)]
    pub first_step: usize,
    /// Per update: `installed` false once removed, with the HRESULT when removal failed.
    #[serde(default)]
    pub results: Vec<UpdateResult>,
}

/// Why a job cannot be rolled back now (`None`: it can).
pub fn rollback_refusal(job: &Job) -> Option<String> {
    match job.state {
        JobState::Failed | JobState::NeedsRemediation | JobState::Succeeded => {}
        JobState::RollingBack => return Some("it is being rolled back now".into()),
        JobState::RolledBack => return Some("it was rolled back already".into()),
        s => {
            return Some(format!(
                "it is {s}: only a job that ended (failed, needs remediation or succeeded) \
                 can be rolled back"
            ));
        }
    }
    if job.state == JobState::Failed && !job.results.iter().any(|r| r.installed) {
        return Some("nothing was installed: the failed updates were not applied".into());
    }
    if let Some(v) = &job.verification
        && !job.updates.is_empty()
        && job.updates.iter().all(|u| v.missing_updates.contains(u))
    {
        return Some(
            "none of its updates is on the server any more (Windows undid them at boot, or \
             they were removed): nothing to roll back"
                .into(),
        );
    }
    None
}

impl Job {
    /// Record the start of a step. A step of that kind still open (a progress report, or an
    /// agent resuming after a crash that starts it again) keeps its start and takes the new
    /// detail; one that finished well stays finished.
    pub fn step_started(&mut self, step: StepKind, at: Timestamp, detail: &str) {
        // A step that finished well is never started again (an agent skips it when it
        // resumes): a late progress report does not reopen it.
        if self
            .steps
            .iter()
            .any(|s| s.step == step && s.ok == Some(true))
        {
            return;
        }
        if let Some(open) = self
            .steps
            .iter_mut()
            .find(|s| s.step == step && s.finished.is_none())
        {
            if !detail.is_empty() {
                open.detail = detail.to_string();
            }
            return;
        }
        self.steps.push(StepRecord {
            step,
            started: at,
            finished: None,
            ok: None,
            detail: detail.to_string(),
        });
    }

    /// Record the end of a step (starting it at `at` when it was never started).
    pub fn step_finished(&mut self, step: StepKind, at: Timestamp, ok: bool, detail: &str) {
        match self
            .steps
            .iter_mut()
            .rev()
            .find(|s| s.step == step && s.finished.is_none())
        {
            Some(s) => {
                s.finished = Some(at);
                s.ok = Some(ok);
                if !detail.is_empty() {
                    s.detail = detail.to_string();
                }
            }
            None => self.steps.push(StepRecord {
                step,
                started: at,
                finished: Some(at),
                ok: Some(ok),
                detail: detail.to_string(),
            }),
        }
    }

    /// End the job.
    pub fn end(&mut self, state: JobState, at: Timestamp, outcome: impl Into<String>) {
        self.state = state;
        self.finished = Some(at);
        self.outcome = outcome.into();
    }

    /// Start rolling it back (the caller checked [`rollback_refusal`] and the plan).
    pub fn begin_rollback(
        &mut self,
        method: crate::inventory::RollbackMethod,
        by: &str,
        reason: &str,
        at: Timestamp,
    ) {
        // The updates it installed; when the install reported nothing (a resumed job), all.
        let mut updates: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.installed)
            .map(|r| r.kb.clone())
            .collect();
        if updates.is_empty() {
            updates = self.updates.clone();
        }
        self.rollback = Some(Rollback {
            method,
            requested_by: by.to_string(),
            requested_at: at,
            reason: reason.to_string(),
            from: self.state,
            updates,
            first_step: self.steps.len(),
            results: Vec::new(),
        });
        self.state = JobState::RollingBack;
        self.finished = None;
        self.outcome = format!("rolling back ({}): {reason}", method_word(method));
    }

    /// The steps of the rollback so far (empty when there is none).
    pub fn rollback_steps(&self) -> &[StepRecord] {
        match &self.rollback {
            Some(r) => self.steps.get(r.first_step..).unwrap_or(&[]),
            None => &[],
        }
    }

    /// Record a step of the rollback: steps after the rollback began are its own, so a
    /// reboot of the install is not taken for the rollback's.
    pub fn rollback_step(&mut self, step: StepKind, at: Timestamp, ok: Option<bool>, detail: &str) {
        let first = self.rollback.as_ref().map_or(0, |r| r.first_step);
        let open = self
            .steps
            .iter()
            .enumerate()
            .skip(first)
            .rev()
            .find(|(_, s)| s.step == step && s.finished.is_none())
            .map(|(i, _)| i);
        match (ok, open) {
            (None, Some(_)) => {}
            (None, None) => self.steps.push(StepRecord {
                step,
                started: at,
                finished: None,
                ok: None,
                detail: detail.to_string(),
            }),
            (Some(ok), Some(i)) => {
                let s = &mut self.steps[i];
                s.finished = Some(at);
                s.ok = Some(ok);
                if !detail.is_empty() {
                    s.detail = detail.to_string();
                }
            }
            (Some(ok), None) => self.steps.push(StepRecord {
                step,
                started: at,
                finished: Some(at),
                ok: Some(ok),
                detail: detail.to_string(),
            }),
        }
    }

    /// The hook of this kind still running (started, not finished), if any.
    pub fn running_hook(&self, kind: HookKind) -> Option<&HookRun> {
        self.hooks
            .iter()
            .rev()
            .find(|h| h.hook == kind && h.finished.is_none())
    }
}

/// Whether the host no longer has the rolled-back updates and waits for no reboot: what ends a
/// rollback through the agent as `rolled_back`. The failures, each in a sentence.
pub fn verify_rollback(updates: &[String], after: &HostSnapshot) -> Vec<String> {
    let mut failures: Vec<String> = updates
        .iter()
        .filter(|kb| {
            after
                .installed_kbs
                .iter()
                .any(|i| i.eq_ignore_ascii_case(kb))
        })
        .map(|kb| format!("{kb} is still installed"))
        .collect();
    if !after.pending_reboot.is_empty() {
        failures.push(format!(
            "a reboot is still pending ({})",
            after.pending_reboot.join(", ")
        ));
    }
    failures
}

fn method_word(m: crate::inventory::RollbackMethod) -> &'static str {
    use crate::inventory::RollbackMethod as M;
    match m {
        M::UninstallKb => "uninstall the updates",
        M::Snapshot => "restore the checkpoint",
        M::RestoreFromBackup => "restore from backup",
        M::VendorProcedure => "vendor procedure",
    }
}
