//! Re-planning a running cycle from its outcomes (the planner's `replan`): what succeeded is
//! finished, what failed holds back its dependants and its services' budgets, what runs keeps
//! its slot, and every job not started yet gets the slot the re-plan gives it — so a wave that
//! lost its window, a halted ring resumed late, or failures that change what may go together
//! are placed again by the same rules, not just pushed to the next night one by one.
//!
//! The re-plan is stored as the cycle's plan (its timeline shows it) without touching the
//! approvals: they were given for the rings' servers and updates, which a re-plan does not
//! change; it is recorded in the audit log with what moved.

use crate::workflow::{decode, encode};
use crate::{Actor, App, AppError, Result};
use patchward_core::access::Permission;
use patchward_core::execution::{Job, JobState};
use patchward_core::plan::JobOutcome;
use patchward_core::workflow::CycleState;
use patchward_proto::CycleJobs;
use patchward_store::{ControlStore, LeaseChange, TenantId};
use std::collections::BTreeMap;

impl<S: ControlStore> App<S> {
    /// `POST /api/v1/cycles/{id}/replan` (operators): place the jobs not started yet again.
    pub async fn replan_running_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
    ) -> Result<CycleJobs> {
        actor.require(Permission::Operate)?;
        let (_, cycle) = self.load_cycle(tenant, id).await?;
        if cycle.state != CycleState::Running {
            return Err(AppError::new(
                patchward_proto::ErrorCode::Conflict,
                format!(
                    "the cycle is {}: only a running cycle's jobs are re-planned (a cycle not \
                     started yet is planned again with `plan`)",
                    cycle.state
                ),
            ));
        }
        let now = self.now();
        let records = self.store.jobs(tenant, id).await?;
        if records.is_empty() {
            return Err(AppError::not_found(format!("jobs of cycle {id}")));
        }
        let mut outcomes = BTreeMap::new();
        for rec in &records {
            let job: Job = decode("job", rec.id, &rec.body)?;
            let at = job.finished.unwrap_or(rec.updated_at);
            let outcome = match job.state {
                JobState::Succeeded | JobState::Cancelled => JobOutcome::Finished { at },
                JobState::Failed
                | JobState::NeedsRemediation
                | JobState::RollingBack
                | JobState::RolledBack => JobOutcome::Failed { at },
                JobState::Running => JobOutcome::Running {
                    started: job.started.unwrap_or(now),
                    expected_end: job.slot_end,
                },
                JobState::Waiting | JobState::Blocked => continue,
            };
            outcomes.insert(rec.server.clone(), outcome);
        }
        let made = self
            .replan_cycle(actor, tenant, &cycle.name, now, outcomes)
            .await?;
        let (mut moved, mut unplaced) = (Vec::new(), Vec::new());
        for rec in &records {
            if !matches!(rec.state.as_str(), "waiting" | "blocked") {
                continue;
            }
            let mut job: Job = decode("job", rec.id, &rec.body)?;
            let placed = made
                .plan
                .placements
                .iter()
                .find(|p| p.server.eq_ignore_ascii_case(&rec.server));
            match placed {
                Some(p) if p.start != job.slot_start || p.window != job.window => {
                    job.outcome = format!(
                        "re-planned to {} in {} (was {} in {})",
                        p.start, p.window, job.slot_start, job.window
                    );
                    job.slot_start = p.start;
                    job.slot_end = p.end;
                    job.window = p.window.clone();
                    moved.push(rec.server.clone());
                }
                Some(_) => continue,
                None => {
                    let why = made
                        .plan
                        .unplaced
                        .iter()
                        .find(|u| u.server.eq_ignore_ascii_case(&rec.server))
                        .and_then(|u| u.reasons.first().cloned())
                        .unwrap_or_else(|| "no slot in the plan's horizon".into());
                    job.outcome = format!("the re-plan found no slot for it: {why}");
                    unplaced.push(rec.server.clone());
                }
            }
            // A job another writer changed meanwhile (its agent started it) keeps that.
            self.store_job(
                tenant,
                rec.id,
                rec.version,
                job.state.as_str(),
                &encode("job", &job)?,
                LeaseChange::Keep,
                now,
            )
            .await?;
        }
        self.record(
            actor,
            Some(tenant),
            "cycle.replan",
            &format!("cycle:{id}"),
            serde_json::json!({"moved": moved, "unplaced": unplaced}),
        )
        .await?;
        self.notify_work(tenant);
        self.cycle_jobs(actor, tenant, id).await
    }
}
