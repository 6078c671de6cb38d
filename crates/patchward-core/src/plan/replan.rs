//! Re-planning after jobs have run (issue 3 part 4).
//!
//! The same planner and the same rules, with job outcomes so far:
//! - **finished** servers are not planned again; their finish time still counts for their
//!   ring's soak;
//! - **running** servers keep their slot `[started, expected_end)` (an overdue job is assumed
//!   to need its estimated duration again from the new start): it counts for capacity, for its
//!   services' budgets, against dependency neighbours, and for its ring's finish;
//! - **failed** servers are not re-planned, block every server that depends on them (directly
//!   or through others, in any ring) and count against their services' budgets until the
//!   outcome is resolved (removed from the outcomes). Unlike a server that is merely not
//!   patched in this cycle (which holds nothing back), a failed server may be down or
//!   half-patched, so its dependents are not touched until someone has looked at it.

use super::input::{JobOutcome, PlanInput};
use super::{Plan, plan};
use jiff::Timestamp;
use std::collections::BTreeMap;

/// Plan the rest of a cycle from `now`, given what happened so far.
pub fn replan(
    input: &PlanInput<'_>,
    now: Timestamp,
    outcomes: &BTreeMap<String, JobOutcome>,
) -> Plan {
    let mut next = input.clone();
    let old_end = input.horizon_end();
    next.start = now.max(input.start);
    next.horizon = next
        .start
        .duration_until(old_end)
        .max(jiff::SignedDuration::ZERO);
    next.outcomes = outcomes.clone();
    plan(&next)
}

/// Outcomes implied by a plan at instant `now` if every job ran exactly as planned: slots that
/// ended are finished, slots in progress are running. Useful for simulations and tests.
pub fn outcomes_at(plan: &Plan, now: Timestamp) -> BTreeMap<String, JobOutcome> {
    let mut out = BTreeMap::new();
    for p in &plan.placements {
        if p.end <= now {
            out.insert(p.server.clone(), JobOutcome::Finished { at: p.end });
        } else if p.start < now {
            out.insert(
                p.server.clone(),
                JobOutcome::Running {
                    started: p.start,
                    expected_end: p.end,
                },
            );
        }
    }
    for r in &plan.in_progress {
        if r.end <= now {
            out.insert(r.server.clone(), JobOutcome::Finished { at: r.end });
        } else {
            out.insert(
                r.server.clone(),
                JobOutcome::Running {
                    started: r.start,
                    expected_end: r.end,
                },
            );
        }
    }
    out
}
