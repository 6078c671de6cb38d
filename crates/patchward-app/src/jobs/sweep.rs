//! The sweeper, run by the server's loop: jobs whose server never came back from its reboot,
//! lapsed leases, restore hooks that never reported, and — once a minute — jobs whose window
//! passed with nobody to run them. A check-in does all of this for its own server; the sweeper
//! is for servers that do not check in: an agent that fell silent (its job moves to the next
//! occurrence of its window, as when it waited on a halted ring), or a server without any
//! agent (its job fails, naming why, instead of waiting for ever).

use super::offer::{next_fit, occurrence};
use super::{ring_jobs, ring_order};
use crate::workflow::{decode, encode};
use crate::{Actor, App, Result};
use jiff::{SignedDuration, Timestamp};
use patchward_core::execution::{
    HookKind, Job, JobState, REBOOT_TIMEOUT, RingGate, StepKind, ring_gate,
};
use patchward_store::{ControlStore, LeaseChange};

/// How long after a window closes a job may still wait for its agent's check-in (an agent
/// checks in every 60–75 s) before the sweeper decides for it.
const GRACE: SignedDuration = SignedDuration::from_mins(5);

impl<S: ControlStore> App<S> {
    /// End running jobs whose server did not come back from its reboot in time, and release
    /// other lapsed leases (the agent is offered the job again when it returns). The server
    /// calls this every few seconds; returns how many jobs it changed.
    pub async fn sweep_jobs(&self) -> Result<usize> {
        let now = self.now();
        let mut changed = 0;
        for rec in self.store.lapsed_jobs(now).await? {
            let mut job: Job = decode("job", rec.id, &rec.body)?;
            let rebooting = job
                .steps
                .last()
                .is_some_and(|s| s.step == StepKind::Reboot && s.finished.is_none());
            if rebooting {
                let since = job.steps.last().map(|s| s.started).unwrap_or(now);
                job.step_finished(StepKind::Reboot, now, false, "did not come back");
                job.end(
                    JobState::NeedsRemediation,
                    now,
                    format!(
                        "{} did not come back from its reboot (started {since}) within {}",
                        rec.server,
                        patchward_core::calendar::format_duration(REBOOT_TIMEOUT)
                    ),
                );
            }
            // A restore hook that never reported back: this server stopped while it ran.
            let lost_restore = !rebooting
                && job.state == JobState::RollingBack
                && job.running_hook(HookKind::Restore).is_some();
            if lost_restore {
                if let Some(h) = job
                    .hooks
                    .iter_mut()
                    .rev()
                    .find(|h| h.hook == HookKind::Restore && h.finished.is_none())
                {
                    h.finished = Some(now);
                    h.output
                        .push_str("\n(no result: the server stopped while it ran)");
                }
                job.end(
                    JobState::NeedsRemediation,
                    now,
                    "the restore hook gave no result (the server stopped while it ran): check \
                     the VM, and ask for the rollback again if it was not restored",
                );
            }
            let state = job.state;
            let lease = LeaseChange::Release;
            let written = self
                .store_job(
                    rec.tenant,
                    rec.id,
                    rec.version,
                    state.as_str(),
                    &encode("job", &job)?,
                    lease,
                    now,
                )
                .await?;
            if written.is_some() {
                changed += 1;
                if rebooting || lost_restore {
                    self.record(
                        &Actor::system("sweeper"),
                        Some(rec.tenant),
                        "job.needs_remediation",
                        &format!("job:{}", rec.id),
                        serde_json::json!({"server": rec.server, "outcome": job.outcome}),
                    )
                    .await?;
                }
            }
        }
        Ok(changed)
    }

    /// Jobs still waiting or blocked when their window has passed (plus the grace) while their
    /// ring is open and the cycle runs: nobody checked in to run them; and running cycles
    /// whose jobs have all ended complete. Runs at most once a minute; returns how many jobs
    /// and cycles it changed.
    pub async fn sweep_windows(&self) -> Result<usize> {
        let now = self.now();
        {
            let mut last = crate::agents::lock(&self.window_sweep);
            if last.is_some_and(|t| now < t + SignedDuration::from_mins(1)) {
                return Ok(0);
            }
            *last = Some(now);
        }
        let mut changed = 0;
        for tenant in self.store.tenants().await? {
            for cycle in self.store.cycles(tenant.id).await? {
                if cycle.state != "running" {
                    continue;
                }
                changed += self.sweep_cycle_windows(tenant.id, cycle.id, now).await?;
                if self.complete_when_done(tenant.id, cycle.id).await? {
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    async fn sweep_cycle_windows(
        &self,
        tenant: patchward_store::TenantId,
        id: i64,
        now: Timestamp,
    ) -> Result<usize> {
        let (_, cycle) = self.load_cycle(tenant, id).await?;
        if cycle.paused.is_some() {
            return Ok(0);
        }
        let records = self.store.jobs(tenant, id).await?;
        let estate = self.cached_estate(tenant).await?;
        let rules = crate::workflow::rules_of(&self.store, tenant).await?;
        let rings = ring_order(&estate);
        let agents = self.store.agents(tenant).await?;
        let mut changed = 0;
        for rec in &records {
            if !matches!(rec.state.as_str(), "waiting" | "blocked") {
                continue;
            }
            let mut job: Job = decode("job", rec.id, &rec.body)?;
            if now < job.slot_end + GRACE {
                continue;
            }
            let window = occurrence(&estate, &job, job.slot_start);
            if window.is_some_and(|w| now < w.end + GRACE) {
                continue;
            }
            // Waiting on its ring is a decision for people, not the sweeper.
            let gate = ring_gate(
                &rings,
                &ring_jobs(&records),
                rec.ring.as_deref(),
                rules.failure_budget_percent,
                &cycle.accepted_failures,
                now,
            );
            if gate != RingGate::Open {
                continue;
            }
            let agent = agents
                .iter()
                .filter(|a| a.server.eq_ignore_ascii_case(&rec.server) && a.revoked_at.is_none())
                .max_by_key(|a| a.last_seen);
            let span = window.map_or_else(
                || format!("{} – {}", job.slot_start, job.slot_end),
                |w| format!("{} – {}", w.start, w.end),
            );
            let duration = job.slot_start.duration_until(job.slot_end);
            let (action, outcome) = match agent {
                Some(a) if job.state == JobState::Waiting => {
                    match next_fit(&estate, &job, now, duration) {
                        Some(next) => {
                            let start = next.start.max(now);
                            let why = format!(
                                "moved to {start} in {}: its agent was silent during its window \
                                 ({span}; last seen {})",
                                job.window, a.last_seen
                            );
                            job.slot_start = start;
                            job.slot_end = start + duration;
                            job.outcome = why.clone();
                            ("job.moved", why)
                        }
                        None => {
                            let why = format!(
                                "its agent was silent during its window ({span}; last seen {}) \
                                 and the window has no later occurrence where it fits",
                                a.last_seen
                            );
                            job.end(JobState::Failed, now, why.clone());
                            ("job.failed", why)
                        }
                    }
                }
                Some(_) => {
                    let why = format!(
                        "its window ({span}) closed while blocked: {}",
                        job.blocked_by
                            .iter()
                            .filter(|g| !g.passed)
                            .map(|g| format!("{}: {}", g.gate.as_str(), g.reason))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                    job.end(JobState::Failed, now, why.clone());
                    ("job.failed", why)
                }
                None => {
                    let why = format!(
                        "no agent ran it in its window ({span}): {} has no enrolled agent; enrol \
                         one, or run the wave through Ansible (patchward ansible export)",
                        rec.server
                    );
                    job.end(JobState::Failed, now, why.clone());
                    ("job.failed", why)
                }
            };
            let written = self
                .store_job(
                    tenant,
                    rec.id,
                    rec.version,
                    job.state.as_str(),
                    &encode("job", &job)?,
                    LeaseChange::Keep,
                    now,
                )
                .await?;
            if written.is_some() {
                changed += 1;
                self.record(
                    &Actor::system("sweeper"),
                    Some(tenant),
                    action,
                    &format!("job:{}", rec.id),
                    serde_json::json!({"server": rec.server, "cycle": id, "outcome": outcome}),
                )
                .await?;
            }
        }
        Ok(changed)
    }
}
