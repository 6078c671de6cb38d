//! Verification after the reboot (PRODUCT.md "Verification").

use super::{HostSnapshot, Job};
use crate::inventory::{HealthProbe, RebootPolicy};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Event IDs that fail verification when logged after the reboot: unexpected shutdown (6008,
/// Kernel-Power 41), service failures (7000, 7001, 7023, 7031, 7034), Windows Update failure
/// (20) and application crash (1000).
pub const CRITICAL_EVENT_IDS: [u32; 9] = [6008, 41, 7000, 7001, 7023, 7031, 7034, 20, 1000];

/// An event from the host's System or Application log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalEvent {
    pub id: u32,
    pub source: String,
    pub at: Timestamp,
    #[serde(default)]
    pub message: String,
}

/// What the agent found when it ran one of the job's health probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    pub probe: HealthProbe,
    pub passed: bool,
    /// What it saw (`503 Service Unavailable`, `connection refused`, `stopped`).
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub verified: bool,
    pub checks: Vec<Check>,
    /// The job's updates the host did not have (Windows undid them at boot, or they never
    /// installed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_updates: Vec<String>,
}

impl Verification {
    /// The failed checks, for the job's outcome.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    }
}

fn kb_key(s: &str) -> String {
    s.trim()
        .trim_start_matches("KB")
        .trim_start_matches("kb")
        .to_string()
}

/// Verify `job` on the host as it is now (`after`), compared with how it was before it was
/// touched (`before`), given the critical events logged since the job started and what the
/// agent found running the job's health probes.
pub fn verify(
    job: &Job,
    before: Option<&HostSnapshot>,
    after: &HostSnapshot,
    events: &[CriticalEvent],
    probes: &[ProbeOutcome],
) -> Verification {
    let mut checks = Vec::new();
    let installed: Vec<String> = after.installed_kbs.iter().map(|k| kb_key(k)).collect();
    let missing: Vec<&String> = job
        .updates
        .iter()
        .filter(|u| !installed.contains(&kb_key(u)))
        .collect();
    checks.push(Check {
        name: "updates installed".into(),
        passed: missing.is_empty(),
        detail: if missing.is_empty() {
            format!("{} installed", job.updates.join(", "))
        } else {
            format!(
                "not installed: {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    });
    if let Some(expected) = job.expected_build {
        let ok = after
            .build
            .is_some_and(|b| b.same_release(&expected) && b >= expected);
        checks.push(Check {
            name: "OS build".into(),
            passed: ok,
            detail: match after.build {
                Some(b) if ok => format!("{b} (expected at least {expected})"),
                Some(b) => format!("{b}, expected at least {expected}"),
                None => format!("not reported, expected at least {expected}"),
            },
        });
    }
    checks.push(Check {
        name: "pending reboot".into(),
        passed: after.pending_reboot.is_empty(),
        detail: if after.pending_reboot.is_empty() {
            "cleared".into()
        } else if job.reboot == RebootPolicy::Never {
            format!(
                "still pending: {} (the server's reboot policy is never: restart it to finish)",
                after.pending_reboot.join(", ")
            )
        } else {
            format!("still pending: {}", after.pending_reboot.join(", "))
        },
    });
    if let Some(before) = before {
        let stopped: Vec<String> = before
            .services
            .iter()
            .filter(|(_, mode, state)| mode.starts_with("auto") && state == "running")
            .filter(|(name, _, _)| {
                !after
                    .services
                    .iter()
                    .any(|(n, _, st)| n.eq_ignore_ascii_case(name) && st == "running")
            })
            .map(|(name, _, _)| name.clone())
            .collect();
        checks.push(Check {
            name: "automatic services".into(),
            passed: stopped.is_empty(),
            detail: if stopped.is_empty() {
                "every automatic service that ran before runs again".into()
            } else {
                format!("not running since the reboot: {}", stopped.join(", "))
            },
        });
    }
    let since = job.started;
    let new: Vec<&CriticalEvent> = events
        .iter()
        .filter(|e| CRITICAL_EVENT_IDS.contains(&e.id))
        .filter(|e| since.is_none_or(|s| e.at >= s))
        .collect();
    checks.push(Check {
        name: "critical events".into(),
        passed: new.is_empty(),
        detail: if new.is_empty() {
            "none since the job started".into()
        } else {
            new.iter()
                .map(|e| format!("{} {} at {}", e.source, e.id, e.at))
                .collect::<Vec<_>>()
                .join("; ")
        },
    });
    checks.push(Check {
        name: "backups".into(),
        passed: !after.backup_failing,
        detail: if after.backup_failing {
            "the last backup attempt failed".into()
        } else {
            "still succeeding".into()
        },
    });
    for probe in &job.probes {
        let found = probes.iter().find(|o| &o.probe == probe);
        checks.push(Check {
            name: format!("probe {probe}"),
            passed: found.is_some_and(|o| o.passed),
            detail: match found {
                Some(o) => o.detail.clone(),
                None => "not run by the agent (agents before protocol 2 run no probes: \
                         upgrade it)"
                    .into(),
            },
        });
    }
    Verification {
        verified: checks.iter().all(|c| c.passed),
        missing_updates: missing.iter().map(|s| s.to_string()).collect(),
        checks,
    }
}
