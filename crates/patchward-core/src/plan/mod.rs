//! The planner (PRODUCT.md C6, issue 3): rings and waves that respect windows, blackouts,
//! backup job windows, coverage, dependencies, disruption budgets and capacity, with a reason
//! for every placement.
//!
//! # Hard rules (checked independently by [`check::verify`])
//! 1. A server is patched only inside an occurrence of one of its maintenance windows, with its
//!    whole estimated duration fitting, starting no earlier than the plan start and ending no
//!    later than the horizon. Emergency windows are only used by emergency cycles.
//! 2. Never during a blackout that applies to it (global, its site, a service it belongs to, or
//!    the server itself), never during its backup policy's job window, and — when coverage is
//!    configured — entirely inside team coverage.
//! 3. If A depends on B (a server, or every member of a service): A and B are never in flight at
//!    the same time; in the same ring B's slot ends before A's starts. Across rings the ring
//!    order decides (rings never overlap, see 5). Only a B that is taken down in this cycle
//!    forces anything: a B that is not patched in this cycle (out of scope, or not placed —
//!    no window, budget of 0, in a cycle, ...) is never in flight, so A is placed without
//!    waiting for it and its reasons say "depends on B, which is not patched in this cycle:
//!    <why>". Order follows direct dependencies, so a chain A → B → C with B not patched puts
//!    no order between A and C. A dependency cycle is an inventory error: every in-scope
//!    member is left unplaced with all members named; "A depends on A" (directly or through a
//!    service A belongs to) is a cycle of one. A **failed** job (re-planning) is different: the
//!    server may be down, so everything depending on it, directly or through others, waits.
//! 4. A service never has more members in flight than its disruption budget allows; failed
//!    members (re-planning) count against it until resolved.
//! 5. Every server of ring k+1 starts only after every server of ring k (placed, running or
//!    finished) has finished, plus ring k's soak (`emergency_soak` in emergency cycles).
//!    Servers without a ring form an implicit last ring with no soak.
//! 6. At most `max_in_flight` servers at once, and per site its own limit from
//!    `capacity.sites` or else `max_in_flight_per_site`.
//!
//! # Method
//! Deterministic greedy list scheduling. Rings are planned in order; inside a ring servers are
//! taken in a topological order of their same-ring dependencies (our own Kahn layering, ties
//! broken by the earliest due date of the server or anything that depends on it, then tier,
//! then name) and each gets its earliest feasible start: the first window occurrence (window
//! occurrences are computed once per window) in which, after stepping past blackouts, backup
//! windows, coverage gaps and full budget/capacity intervals, the whole duration fits. Budget
//! and capacity are tracked as step functions (one per service, per site and estate-wide), so a
//! placement costs O(log n) plus the few steps its slot spans. Servers starting at the same
//! instant form one wave. Earliest-start placement finishes early and keeps servers together at
//! occurrence starts, which keeps the number of waves small.
//!
//! Never panics and never loops without progress: each step moves the candidate start strictly
//! forward inside a finite list of occurrences bounded by the horizon.

pub mod check;
mod explain;
pub mod generate;
pub mod input;
pub mod replan;
mod schedule;
#[cfg(test)]
mod tests;

pub use check::{Violation, verify};
pub use input::{DurationDefaults, JobOutcome, PlanInput};
pub use replan::replan;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A cycle's schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub cycle: String,
    pub emergency: bool,
    pub start: Timestamp,
    pub horizon_end: Timestamp,
    /// End of the last placed slot.
    pub finish: Option<Timestamp>,
    /// In time order, numbered from 1.
    pub waves: Vec<Wave>,
    /// In time order (start, then server name).
    pub placements: Vec<Placement>,
    /// Sorted by server name.
    pub unplaced: Vec<Unplaced>,
    /// Placed servers that finish after their due date, sorted by server name.
    pub late: Vec<Late>,
    /// Jobs still running from before (re-planning): they keep their slot.
    pub in_progress: Vec<InProgress>,
    /// Servers already finished in this cycle (re-planning).
    pub finished: Vec<String>,
    /// Dependency cycles that involve in-scope servers, each with every member named.
    pub dependency_cycles: Vec<Vec<String>>,
    /// Inventory problems that did not stop planning (unknown names in dependencies, ...).
    pub warnings: Vec<String>,
}

/// Servers that start together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    pub number: u32,
    pub start: Timestamp,
    /// End of the wave's longest slot.
    pub end: Timestamp,
    /// Sorted by name.
    pub servers: Vec<String>,
}

/// Where and when one server is patched, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub server: String,
    pub ring: Option<String>,
    pub wave: u32,
    /// The maintenance window used.
    pub window: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Plain-language reasons, headline first.
    pub reasons: Vec<String>,
    pub due: Option<Timestamp>,
    /// Where the due date comes from ("cycle deadline", "due file due.csv:3", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_source: Option<String>,
    /// How far `end` is past `due`, when it is.
    pub late_by: Option<SignedDuration>,
}

/// The rule that keeps a server out of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnplacedRule {
    UnknownServer,
    UnknownRing,
    NoWindows,
    InvalidCalendar,
    OnlyEmergencyWindows,
    LongerThanWindows,
    NoSlotBeforeHorizon,
    DependencyCycle,
    ServiceBudgetZero,
    CapacityZero,
    /// No longer produced (a dependency that is not patched does not hold its dependents
    /// back); kept so that plans stored by older versions still read.
    DependsOnUnplaced,
    JobFailed,
    DependsOnFailed,
}

/// An in-scope server that could not be placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unplaced {
    pub server: String,
    pub ring: Option<String>,
    pub rule: UnplacedRule,
    /// Plain-language reasons, the deciding rule first.
    pub reasons: Vec<String>,
    pub due: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_source: Option<String>,
}

/// A placed server that misses its due date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Late {
    pub server: String,
    pub due: Timestamp,
    /// Where the missed due date comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_source: Option<String>,
    pub end: Timestamp,
    pub late_by: SignedDuration,
}

/// A job that was already running when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    pub server: String,
    pub ring: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Plan a cycle. Pure and deterministic: the same input gives the same plan.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    schedule::run(input)
}

impl Plan {
    pub fn placement(&self, server: &str) -> Option<&Placement> {
        self.placements
            .iter()
            .find(|p| p.server.eq_ignore_ascii_case(server))
    }

    pub fn unplaced(&self, server: &str) -> Option<&Unplaced> {
        self.unplaced
            .iter()
            .find(|p| p.server.eq_ignore_ascii_case(server))
    }

    /// `patchward plan --explain SERVER`: the reasons for one server, one per line.
    pub fn explain(&self, server: &str) -> Option<String> {
        if let Some(p) = self.placement(server) {
            return Some(format!("{}: {}", p.server, p.reasons.join("; ")));
        }
        if let Some(u) = self.unplaced(server) {
            return Some(format!(
                "{}: not placed: {}",
                u.server,
                u.reasons.join("; ")
            ));
        }
        if let Some(r) = self
            .in_progress
            .iter()
            .find(|r| r.server.eq_ignore_ascii_case(server))
        {
            return Some(format!("{}: still running (keeps its slot)", r.server));
        }
        self.finished
            .iter()
            .find(|f| f.eq_ignore_ascii_case(server))
            .map(|f| format!("{f}: already finished in this cycle"))
    }
}
