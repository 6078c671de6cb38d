//! The gates checked right before a server is touched, and ring promotion.

use super::{HostSnapshot, JobState};
use crate::calendar::Interval;
use crate::inventory::{BackupPolicy, Blackout};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    Approval,
    Window,
    Blackout,
    BackupWindow,
    Backup,
    RollbackPlan,
    DiskSpace,
    PendingReboot,
    Dependencies,
    DisruptionBudget,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Approval => "approval",
            Gate::Window => "window",
            Gate::Blackout => "blackout",
            Gate::BackupWindow => "backup_window",
            Gate::Backup => "backup",
            Gate::RollbackPlan => "rollback_plan",
            Gate::DiskSpace => "disk_space",
            Gate::PendingReboot => "pending_reboot",
            Gate::Dependencies => "dependencies",
            Gate::DisruptionBudget => "disruption_budget",
        }
    }
}

/// One gate's decision, with the reason in plain language either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    pub gate: Gate,
    pub passed: bool,
    pub reason: String,
}

/// Everything the gates look at, gathered by the caller for one server at one instant.
#[derive(Debug, Clone)]
pub struct GateInput<'a> {
    pub now: Timestamp,
    /// The job's ring (or the whole plan) is approved.
    pub approved: bool,
    /// The occurrence of the job's window that contains `now`, if the window is open.
    pub window: Option<Interval>,
    pub window_name: &'a str,
    /// The job's expected duration (install, reboot, verification).
    pub duration: SignedDuration,
    /// Blackouts that apply to this server (any time; the gate checks the job's span).
    pub blackouts: &'a [&'a Blackout],
    pub backup_policy: Option<&'a BackupPolicy>,
    /// An occurrence of the backup job's window that the job's span would overlap.
    pub backup_window: Option<Interval>,
    /// The host as its agent last reported it.
    pub host: Option<&'a HostSnapshot>,
    pub rollback_required: bool,
    pub rollback_present: bool,
    /// Free space the system drive needs, in MiB.
    pub min_free_mib: u64,
    /// Servers this one depends on that are not healthy now, each with why.
    pub unhealthy_dependencies: Vec<String>,
    /// Services of this server whose disruption budget is used up now, each with why.
    pub full_budgets: Vec<String>,
}

fn pass(gate: Gate, reason: impl Into<String>) -> GateResult {
    GateResult {
        gate,
        passed: true,
        reason: reason.into(),
    }
}

fn fail(gate: Gate, reason: impl Into<String>) -> GateResult {
    GateResult {
        gate,
        passed: false,
        reason: reason.into(),
    }
}

/// Every gate, in order, each with its reason. The job may start only if all passed.
pub fn evaluate_gates(i: &GateInput<'_>) -> Vec<GateResult> {
    let span = Interval::new(i.now, i.now + i.duration);
    let mut out = Vec::with_capacity(10);
    out.push(if i.approved {
        pass(Gate::Approval, "the ring is approved")
    } else {
        fail(
            Gate::Approval,
            "the ring is not approved (or an approval was withdrawn)",
        )
    });
    out.push(match i.window {
        None => fail(
            Gate::Window,
            format!("window {:?} is not open now", i.window_name),
        ),
        Some(w) if span.end > w.end => fail(
            Gate::Window,
            format!(
                "window {:?} closes at {} — less than the expected {} left",
                i.window_name,
                w.end,
                crate::calendar::format_duration(i.duration)
            ),
        ),
        Some(w) => pass(
            Gate::Window,
            format!("window {:?} is open until {}", i.window_name, w.end),
        ),
    });
    out.push(
        match i
            .blackouts
            .iter()
            .find(|b| b.start < span.end && span.start < b.end)
        {
            Some(b) => fail(
                Gate::Blackout,
                format!("blackout {:?} until {}", b.name, b.end),
            ),
            None => pass(Gate::Blackout, "no blackout applies"),
        },
    );
    out.push(match (i.backup_policy, i.backup_window) {
        (Some(p), Some(w)) => fail(
            Gate::BackupWindow,
            format!("backup job of {:?} runs {} – {}", p.name, w.start, w.end),
        ),
        _ => pass(Gate::BackupWindow, "no backup job runs meanwhile"),
    });
    out.push(match i.backup_policy {
        None => pass(Gate::Backup, "no backup policy applies"),
        Some(p) => match i.host.and_then(|h| h.last_backup) {
            None => fail(
                Gate::Backup,
                format!("no successful backup reported ({})", p.source),
            ),
            Some(t) if i.now.duration_since(t) > p.max_age => fail(
                Gate::Backup,
                format!(
                    "the last successful backup ({t}) is older than {} ({})",
                    crate::calendar::format_duration(p.max_age),
                    p.name
                ),
            ),
            Some(t) => pass(Gate::Backup, format!("last successful backup {t}")),
        },
    });
    out.push(if i.rollback_required && !i.rollback_present {
        fail(
            Gate::RollbackPlan,
            "a rollback plan is required for this server and there is none",
        )
    } else {
        pass(Gate::RollbackPlan, "rollback plan present or not required")
    });
    out.push(match i.host.and_then(|h| h.free_mib) {
        Some(free) if free < i.min_free_mib => fail(
            Gate::DiskSpace,
            format!(
                "{free} MiB free on the system drive; {} MiB needed",
                i.min_free_mib
            ),
        ),
        Some(free) => pass(Gate::DiskSpace, format!("{free} MiB free")),
        None => pass(Gate::DiskSpace, "free space not reported"),
    });
    out.push(match i.host.map(|h| h.pending_reboot.as_slice()) {
        Some(p) if !p.is_empty() => fail(
            Gate::PendingReboot,
            format!("a reboot is already pending ({})", p.join(", ")),
        ),
        _ => pass(Gate::PendingReboot, "no reboot pending"),
    });
    out.push(if i.unhealthy_dependencies.is_empty() {
        pass(Gate::Dependencies, "what it depends on is healthy")
    } else {
        fail(
            Gate::Dependencies,
            format!("depends on {}", i.unhealthy_dependencies.join("; ")),
        )
    });
    out.push(if i.full_budgets.is_empty() {
        pass(Gate::DisruptionBudget, "its services' budgets have room")
    } else {
        fail(Gate::DisruptionBudget, i.full_budgets.join("; "))
    });
    out
}

/// Whether a ring's jobs may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingGate {
    Open,
    /// Not yet: an earlier ring is still running or soaking (the reason names it).
    Waiting(String),
    /// An earlier ring, or this one, failed beyond its budget: a person decides.
    Halted(String),
}

/// One job as ring promotion sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RingJob<'a> {
    pub ring: Option<&'a str>,
    pub state: JobState,
    pub finished: Option<Timestamp>,
}

/// Failures a ring of `n` jobs tolerates at `percent`.
pub fn failure_allowance(n: usize, percent: u32) -> usize {
    n * percent as usize / 100
}

/// Whether jobs of `ring` may start at `now`. `rings` are the estate's rings in order with
/// their soak; jobs without a ring form the last ring, with no soak. `accepted` holds, per
/// ring key (`workflow::ring_key`), failures someone decided to go on with.
pub fn ring_gate(
    rings: &[(&str, SignedDuration)],
    jobs: &[RingJob<'_>],
    ring: Option<&str>,
    failure_budget_percent: u32,
    accepted: &std::collections::BTreeMap<String, usize>,
    now: Timestamp,
) -> RingGate {
    let position = |r: Option<&str>| match r {
        None => rings.len(),
        Some(r) => rings
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(r))
            .unwrap_or(rings.len()),
    };
    let mine = position(ring);
    // Servers without a ring (or of a ring the estate no longer has) come last, no soak.
    let mut order: Vec<(&str, SignedDuration)> = rings.to_vec();
    order.push(("(no ring)", SignedDuration::ZERO));
    for (idx, (label, soak)) in order.iter().enumerate().take(mine + 1) {
        let members: Vec<&RingJob<'_>> = jobs.iter().filter(|j| position(j.ring) == idx).collect();
        if members.is_empty() {
            continue;
        }
        let failed = members.iter().filter(|j| j.state.is_failure()).count();
        let key = if idx < rings.len() {
            label.to_ascii_lowercase()
        } else {
            String::new()
        };
        let forgiven = accepted.get(&key).copied().unwrap_or(0);
        let allowed = failure_allowance(members.len(), failure_budget_percent);
        if failed.saturating_sub(forgiven) > allowed {
            return RingGate::Halted(format!(
                "ring {label}: {failed} of {} servers failed, over its failure budget of {allowed} \
                 ({failure_budget_percent}% of its servers, rounded down); resume the ring \
                 (accepting its failures) or cancel the cycle",
                members.len()
            ));
        }
        if idx == mine {
            break;
        }
        let open = members.iter().filter(|j| !j.state.is_terminal()).count();
        if open > 0 {
            return RingGate::Waiting(format!(
                "ring {label} has {open} of {} servers not yet verified",
                members.len()
            ));
        }
        if let Some(last) = members.iter().filter_map(|j| j.finished).max() {
            let until = last + *soak;
            if now < until {
                return RingGate::Waiting(format!("ring {label} soaks until {until}"));
            }
        }
    }
    RingGate::Open
}
