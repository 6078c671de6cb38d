//! What the planner needs: the estate, the cycle's scope, a start instant and a horizon, due
//! dates, duration defaults and (for re-planning) job outcomes so far.

use crate::inventory::{Capacity, Estate, Role, Server};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Estimated install + reboot + verification time by role, used when a server has no
/// `estimated_duration` of its own. A server with several roles takes the longest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurationDefaults {
    pub by_role: BTreeMap<Role, SignedDuration>,
    /// For servers without a listed role.
    pub fallback: SignedDuration,
}

impl Default for DurationDefaults {
    fn default() -> Self {
        let m = SignedDuration::from_mins;
        let by_role = [
            (Role::DomainController, m(60)),
            (Role::Dns, m(45)),
            (Role::Dhcp, m(45)),
            (Role::File, m(60)),
            (Role::Print, m(45)),
            (Role::SqlServer, m(90)),
            (Role::Rds, m(60)),
            (Role::HyperVHost, m(120)),
            (Role::Web, m(45)),
            (Role::Backup, m(60)),
            (Role::Monitoring, m(45)),
            (Role::Application, m(60)),
            (Role::Exchange, m(120)),
            (Role::CertificateAuthority, m(60)),
        ]
        .into_iter()
        .collect();
        DurationDefaults {
            by_role,
            fallback: m(60),
        }
    }
}

impl DurationDefaults {
    /// The expected duration of one server's job (never shorter than one minute).
    pub fn for_server(&self, s: &Server) -> SignedDuration {
        let d = match s.estimated_duration {
            Some(d) if d > SignedDuration::ZERO => d,
            _ => s
                .roles
                .iter()
                .filter_map(|r| self.by_role.get(r).copied())
                .max()
                .unwrap_or(self.fallback),
        };
        d.max(SignedDuration::from_mins(1))
    }
}

/// What happened to a server's job so far in this cycle (for re-planning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum JobOutcome {
    /// Patched and verified; `at` is when it finished (counts for the ring's soak).
    Finished { at: Timestamp },
    /// The job failed: the server is not re-planned, blocks everything that depends on it and
    /// counts against its services' disruption budgets until the outcome is removed.
    Failed { at: Timestamp },
    /// Still in flight: occupies `[started, expected_end)` (see [`JobOutcome::occupied`]).
    Running {
        started: Timestamp,
        expected_end: Timestamp,
    },
}

impl JobOutcome {
    /// The interval a running job occupies. An overdue job (expected end not after the plan's
    /// start) is assumed to need its full estimated duration again from the plan's start.
    pub fn occupied(
        &self,
        plan_start: Timestamp,
        duration: SignedDuration,
    ) -> Option<(Timestamp, Timestamp)> {
        match *self {
            JobOutcome::Running {
                started,
                expected_end,
            } => {
                let end = if expected_end > plan_start {
                    expected_end
                } else {
                    plan_start.checked_add(duration).unwrap_or(Timestamp::MAX)
                };
                Some((started.min(end), end))
            }
            _ => None,
        }
    }
}

/// Everything [`crate::plan::plan`] needs. Server names (scope, due dates, outcomes) are
/// matched case-insensitively against the estate.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// Cycle name ("2026-11 Patch Tuesday").
    pub cycle: String,
    pub estate: &'a Estate,
    /// In-scope server names (from exposure: servers with approved, missing updates).
    pub scope: Vec<String>,
    /// Each server's due date: the earliest of all that apply (priorities of its findings, the
    /// cycle deadline, a due file).
    pub due: BTreeMap<String, Timestamp>,
    /// Where each due date comes from, shown with it ("cycle deadline", "due file due.csv:3",
    /// "priority Act of CVE-2024-38063"); optional per server.
    pub due_sources: BTreeMap<String, String>,
    /// Nothing is scheduled before this instant.
    pub start: Timestamp,
    /// Nothing is scheduled to end after `start + horizon`.
    pub horizon: SignedDuration,
    /// Emergency cycles may use emergency windows and rings' `emergency_soak`.
    pub emergency: bool,
    pub durations: DurationDefaults,
    /// Overrides the estate's capacity when set.
    pub capacity: Option<Capacity>,
    /// Job outcomes so far (re-planning); empty for a fresh plan.
    pub outcomes: BTreeMap<String, JobOutcome>,
}

impl<'a> PlanInput<'a> {
    /// A plan of every server in the estate, 90-day horizon, default durations.
    pub fn new(cycle: impl Into<String>, estate: &'a Estate, start: Timestamp) -> PlanInput<'a> {
        PlanInput {
            cycle: cycle.into(),
            estate,
            scope: estate.servers.iter().map(|s| s.name.clone()).collect(),
            due: BTreeMap::new(),
            due_sources: BTreeMap::new(),
            start,
            horizon: SignedDuration::from_hours(90 * 24),
            emergency: false,
            durations: DurationDefaults::default(),
            capacity: None,
            outcomes: BTreeMap::new(),
        }
    }

    /// Set a server's due date to `at` unless it already has an earlier one (ties keep the
    /// first source).
    pub fn add_due(&mut self, server: &str, at: Timestamp, source: impl Into<String>) {
        match self.due.get(server) {
            Some(&d) if d <= at => {}
            _ => {
                self.due.insert(server.to_string(), at);
                self.due_sources.insert(server.to_string(), source.into());
            }
        }
    }

    /// Expected duration of a server's job.
    pub fn duration_of(&self, s: &Server) -> SignedDuration {
        self.durations.for_server(s)
    }

    /// The capacity in force (the override, else the estate's).
    pub fn capacity(&self) -> &Capacity {
        self.capacity.as_ref().unwrap_or(&self.estate.capacity)
    }

    /// `start + horizon`, saturating.
    pub fn horizon_end(&self) -> Timestamp {
        self.start
            .checked_add(self.horizon.max(SignedDuration::ZERO))
            .unwrap_or(Timestamp::MAX)
    }
}
