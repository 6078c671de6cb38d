//! Offering an agent its server's job: ring promotion, then every gate, right before the
//! server is touched. A failed gate blocks the job with its reasons (written only when they
//! change, so an agent checking in every minute does not rewrite it) and the gates are checked
//! again at the next check-in while the window lasts; a window that closes on a blocked job
//! ends it as failed with the last reasons — never a silent skip.

use super::rollback::CheckpointStatus;
use crate::agents::snapshot_of;
use crate::workflow::{decode, encode};
use crate::{Actor, App, Result};
use jiff::{SignedDuration, Timestamp};
use patchward_core::calendar::{Interval, WindowCalendar, blackout_applies};
use patchward_core::execution::{
    GateInput, GateResult, Job, JobState, LEASE, MIN_FREE_MIB, RingGate, StepKind, evaluate_gates,
};
use patchward_core::inventory::{DependencyTarget, Estate, RebootPolicy, RollbackMethod};
use patchward_core::workflow::ring_key;
use patchward_proto::agent::{InventoryReport, JobOffer};
use patchward_store::{AgentRecord, ControlStore, JobRecord, JobSummary, LeaseChange};

impl<S: ControlStore> App<S> {
    /// The job to give this agent now, if any (leased to it).
    pub(crate) async fn offer_job(&self, agent: &AgentRecord) -> Result<Option<JobOffer>> {
        let open = self
            .store
            .open_jobs_for_server(agent.tenant, &agent.server)
            .await?;
        let Some(rec) = open.into_iter().next() else {
            return Ok(None);
        };
        let now = self.now();
        let mut job: Job = decode("job", rec.id, &rec.body)?;
        if job.state == JobState::RollingBack
            && job
                .rollback
                .as_ref()
                .is_none_or(|r| r.method != RollbackMethod::UninstallKb)
        {
            // The restore hook (or people) roll it back, not the agent.
            return Ok(None);
        }
        if matches!(job.state, JobState::Running | JobState::RollingBack) {
            // Held by someone else (Ansible runs it) while the lease lasts: not this agent's.
            if rec.lease_agent != Some(agent.id) && rec.lease_until.is_some_and(|u| u > now) {
                return Ok(None);
            }
            // The agent is back (after its reboot, or a restart): it resumes the job.
            let lease =
                if rec.lease_agent == Some(agent.id) && rec.lease_until.is_some_and(|u| u > now) {
                    LeaseChange::Extend { until: now + LEASE }
                } else {
                    LeaseChange::Grant {
                        agent: agent.id,
                        until: now + LEASE,
                    }
                };
            return self.lease(&rec, &job, lease, now).await;
        }
        if now < job.slot_start {
            return Ok(None);
        }
        let cycle_arc = self.cycle_for_offer(rec.tenant, rec.cycle).await?;
        let cycle = &cycle_arc.1;
        // Waiting on the pause or on its ring is shown by the cycle's view as of now; the job
        // is written only when its state changes (a fleet checking in writes nothing).
        if cycle.paused.is_some() {
            return Ok(None);
        }
        let cycle_jobs = self.cycle_summaries(rec.tenant, rec.cycle, false).await?;
        let estate = self.cached_estate(rec.tenant).await?;
        let rules = self.offer_rules(rec.tenant).await?;
        let ring = self.ring_gate_of(
            &cycle_jobs,
            &cycle_arc,
            &estate,
            rec.ring.as_deref(),
            rules.failure_budget_percent,
            now,
        );
        let waiting = match ring {
            RingGate::Open => None,
            RingGate::Waiting(w) => Some(w),
            RingGate::Halted(h) => Some(h),
        };
        if let Some(why) = waiting {
            if job.state != JobState::Waiting {
                job.state = JobState::Waiting;
                job.outcome = why;
                self.write(&rec, &job, LeaseChange::Keep, now).await?;
            }
            return Ok(None);
        }
        let report = match self.store.agent_report(rec.tenant, agent.id).await? {
            Some(json) => Some(decode::<InventoryReport>("agent report", agent.id, &json)?),
            None => None,
        };
        let host = report.as_ref().map(|r| snapshot_of(r, agent.reported_at));
        let mut window = occurrence(&estate, &job, job.slot_start);
        let duration = job.slot_start.duration_until(job.slot_end);
        if window.is_none_or(|w| now >= w.end) && job.blocked_by.is_empty() {
            // Its slot passed while it waited (its ring halted and was resumed, the cycle was
            // paused): the next occurrence of its window where it fits.
            if let Some(next) = next_fit(&estate, &job, now, duration) {
                let start = next.start.max(now);
                job.outcome = format!(
                    "moved to {start} in {}: its planned slot ({}) passed while it waited",
                    job.window, job.slot_start
                );
                job.slot_start = start;
                job.slot_end = start + duration;
                if !self.write(&rec, &job, LeaseChange::Keep, now).await? {
                    return Ok(None);
                }
                self.audit_job(
                    &rec,
                    "job.moved",
                    serde_json::json!({"outcome": job.outcome}),
                )
                .await?;
                if now < job.slot_start {
                    return Ok(None);
                }
                // The write moved the version on: read the job again before going on.
                return Box::pin(self.offer_job(agent)).await;
            }
            window = None;
        }
        if window.is_none_or(|w| now >= w.end) {
            let why = if job.blocked_by.is_empty() {
                "its window passed before it could start".to_string()
            } else {
                format!(
                    "its window closed while blocked: {}",
                    failures(&job.blocked_by).join("; ")
                )
            };
            job.end(JobState::Failed, now, why.clone());
            if self.write(&rec, &job, LeaseChange::Release, now).await? {
                self.audit_job(&rec, "job.failed", serde_json::json!({"outcome": why}))
                    .await?;
            }
            return Ok(None);
        }
        let key = ring_key(rec.ring.as_deref());
        let approved = cycle
            .ring_approvals(&rules)
            .iter()
            .any(|r| r.ring == key && r.approved);
        let gates = self.gates(
            &rec,
            &job,
            &estate,
            &cycle_jobs,
            host.as_ref(),
            window,
            approved,
            now,
        )?;
        if gates.iter().all(|g| g.passed) {
            // A snapshot plan: the checkpoint hook takes the VM's checkpoint first.
            let mut note = String::new();
            match self.checkpoint_needed(&rec, &mut job, now).await? {
                CheckpointStatus::Ready => {}
                CheckpointStatus::ByHand(why) => note = format!("; {why}"),
                CheckpointStatus::Waiting => return Ok(None),
                CheckpointStatus::Failed(why) => {
                    let why = format!("checkpoint: {why}");
                    if job.state != JobState::Blocked || job.outcome != format!("blocked: {why}") {
                        job.state = JobState::Blocked;
                        job.outcome = format!("blocked: {why}");
                        if self.write(&rec, &job, LeaseChange::Keep, now).await? {
                            self.audit_job(
                                &rec,
                                "job.blocked",
                                serde_json::json!({"gates": [why]}),
                            )
                            .await?;
                        }
                    }
                    return Ok(None);
                }
            }
            let before_start = job.clone();
            job.state = JobState::Running;
            job.started = Some(now);
            job.before = host;
            // The probes and reboot policy in force when it starts are the ones it is
            // verified by (the estate may have changed since the job was made).
            (job.probes, job.probe_grace, job.reboot) = super::run_settings(&estate, &rec.server);
            job.blocked_by.clear();
            job.outcome = "running".into();
            job.step_finished(
                StepKind::Gates,
                now,
                true,
                &format!("every gate passed{note}"),
            );
            let offer = self
                .lease(
                    &rec,
                    &job,
                    LeaseChange::Grant {
                        agent: agent.id,
                        until: now + LEASE,
                    },
                    now,
                )
                .await?;
            // Another replica (or check-in) may have started a dependency or a member of the
            // same service at the same moment: look again at fresh rows, now that this job is
            // running, and step back if together they break a rule. Two that started at once
            // may both step back; each tries again at its next check-in.
            if offer.is_some() {
                let fresh = self.cycle_summaries(rec.tenant, rec.cycle, true).await?;
                let (unhealthy, full) = neighbours(&estate, &rec.server, &fresh);
                if !unhealthy.is_empty() || !full.is_empty() {
                    let why = unhealthy
                        .iter()
                        .map(|u| format!("dependencies: {u}"))
                        .chain(full.iter().map(|f| format!("disruption budget: {f}")))
                        .collect::<Vec<_>>()
                        .join("; ");
                    self.step_back(&rec, before_start, &why, now).await?;
                    return Ok(None);
                }
            }
            if offer.is_some() {
                self.audit_job(
                    &rec,
                    "job.start",
                    serde_json::json!({
                        "gates": gates.iter().map(|g| &g.reason).collect::<Vec<_>>(),
                        "checkpoint": note.trim_start_matches("; "),
                    }),
                )
                .await?;
            }
            return Ok(offer);
        }
        if job.state != JobState::Blocked || job.blocked_by != gates {
            job.state = JobState::Blocked;
            job.outcome = format!("blocked: {}", failures(&gates).join("; "));
            job.blocked_by = gates.clone();
            if self.write(&rec, &job, LeaseChange::Keep, now).await? {
                self.audit_job(
                    &rec,
                    "job.blocked",
                    serde_json::json!({"gates": failures(&gates)}),
                )
                .await?;
            }
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn gates(
        &self,
        rec: &JobRecord,
        job: &Job,
        estate: &Estate,
        cycle_jobs: &[JobSummary],
        host: Option<&patchward_core::execution::HostSnapshot>,
        window: Option<Interval>,
        approved: bool,
        now: Timestamp,
    ) -> Result<Vec<GateResult>> {
        let server = estate
            .servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&rec.server));
        let duration = job
            .slot_start
            .duration_until(job.slot_end)
            .max(SignedDuration::from_mins(1));
        let services: Vec<&patchward_core::inventory::Service> = estate
            .services
            .iter()
            .filter(|s| {
                s.members
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&rec.server))
            })
            .collect();
        let service_names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        let blackouts: Vec<&patchward_core::inventory::Blackout> = estate
            .blackouts
            .iter()
            .filter(|b| {
                blackout_applies(
                    b,
                    &rec.server,
                    server.and_then(|s| s.site.as_deref()),
                    &service_names,
                )
            })
            .collect();
        let policy = server
            .and_then(|s| s.backup_policy.as_deref())
            .and_then(|p| {
                estate
                    .backup_policies
                    .iter()
                    .find(|b| b.name.eq_ignore_ascii_case(p))
            });
        let span = Interval::new(now, now + duration);
        let backup_window = policy
            .and_then(|p| p.job_window.as_ref())
            .and_then(|w| WindowCalendar::new(w).ok())
            .and_then(|cal| {
                cal.occurrences(now - SignedDuration::from_hours(48), span.end)
                    .into_iter()
                    .find(|o| o.overlaps(&span))
            });
        let (unhealthy, full_budgets) = neighbours(estate, &rec.server, cycle_jobs);
        let input = GateInput {
            now,
            approved,
            window,
            window_name: &job.window,
            duration,
            blackouts: &blackouts,
            backup_policy: policy,
            backup_window,
            host,
            rollback_required: server.is_some_and(|s| s.requires_rollback_plan()),
            rollback_present: server.is_some_and(|s| s.rollback.is_some()),
            min_free_mib: MIN_FREE_MIB,
            unhealthy_dependencies: unhealthy,
            full_budgets,
        };
        Ok(evaluate_gates(&input))
    }

    /// Lease the job (or extend its lease) and make the offer; `None` when another writer got
    /// there first (the agent asks again at its next check-in).
    async fn lease(
        &self,
        rec: &JobRecord,
        job: &Job,
        lease: LeaseChange,
        now: Timestamp,
    ) -> Result<Option<JobOffer>> {
        let Some(w) = self
            .store_job(
                rec.tenant,
                rec.id,
                rec.version,
                job.state.as_str(),
                &encode("job", job)?,
                lease,
                now,
            )
            .await?
        else {
            return Ok(None);
        };
        let cycle = self.cycle_for_offer(rec.tenant, rec.cycle).await?.0.clone();
        let (action, steps, updates) = match (&job.rollback, job.state) {
            (Some(r), JobState::RollingBack) => ("rollback", job.rollback_steps(), &r.updates),
            _ => ("install", &job.steps[..], &job.updates),
        };
        let done = steps
            .iter()
            .filter(|s| s.ok == Some(true))
            .map(|s| s.step.as_str().to_string())
            .collect();
        Ok(Some(JobOffer {
            job_id: w.id,
            token: w.lease_token,
            cycle,
            updates: updates.clone(),
            expected_build: job.expected_build.map(|b| b.to_string()),
            // `always` is for installs: a rollback restarts only when removal asks for it.
            reboot: match (action, job.reboot) {
                ("rollback", RebootPolicy::Always) => RebootPolicy::IfRequired.as_str().into(),
                (_, r) => r.as_str().into(),
            },
            done,
            lease_seconds: u32::try_from(LEASE.as_secs()).unwrap_or(900),
            action: action.into(),
            // A rollback is verified by the updates being gone; probes are for installs.
            probes: if action == "install" {
                job.probes.iter().map(crate::wire::probe).collect()
            } else {
                Vec::new()
            },
            probe_grace_seconds: job
                .probe_grace
                .map_or(0, |g| u32::try_from(g.as_secs()).unwrap_or(0)),
            found: if action == "install" {
                job.found.iter().map(crate::wire::update_ref).collect()
            } else {
                Vec::new()
            },
        }))
    }

    /// Undo a lease just granted: the job waits again (its lease released), saying why.
    async fn step_back(
        &self,
        rec: &JobRecord,
        mut job: Job,
        why: &str,
        now: Timestamp,
    ) -> Result<()> {
        let Some(current) = self.store.job(rec.tenant, rec.id).await? else {
            return Ok(());
        };
        job.state = JobState::Waiting;
        job.outcome =
            format!("stepped back as it started: {why}; tried again at the next check-in");
        self.store_job(
            rec.tenant,
            rec.id,
            current.version,
            job.state.as_str(),
            &encode("job", &job)?,
            LeaseChange::Release,
            now,
        )
        .await?;
        self.audit_job(rec, "job.stepped_back", serde_json::json!({"why": why}))
            .await
    }

    /// A versioned write; `false` when another writer got there first.
    pub(crate) async fn write(
        &self,
        rec: &JobRecord,
        job: &Job,
        lease: LeaseChange,
        now: Timestamp,
    ) -> Result<bool> {
        Ok(self
            .store_job(
                rec.tenant,
                rec.id,
                rec.version,
                job.state.as_str(),
                &encode("job", job)?,
                lease,
                now,
            )
            .await?
            .is_some())
    }

    pub(crate) async fn audit_job(
        &self,
        rec: &JobRecord,
        action: &str,
        mut detail: serde_json::Value,
    ) -> Result<()> {
        if let Some(o) = detail.as_object_mut() {
            o.insert("server".into(), rec.server.clone().into());
            o.insert("cycle".into(), rec.cycle.into());
        }
        self.record(
            &Actor::system("jobs"),
            Some(rec.tenant),
            action,
            &format!("job:{}", rec.id),
            detail,
        )
        .await?;
        Ok(())
    }
}

fn failures(gates: &[GateResult]) -> Vec<String> {
    gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| format!("{}: {}", g.gate.as_str(), g.reason))
        .collect()
}

/// The occurrence of the job's window that holds `at`.
pub(super) fn occurrence(estate: &Estate, job: &Job, at: Timestamp) -> Option<Interval> {
    let cal = calendar_of(estate, job)?;
    cal.occurrences(
        at - SignedDuration::from_hours(24 * 8),
        at + SignedDuration::from_hours(1),
    )
    .into_iter()
    .find(|o| o.start <= at && at < o.end)
}

/// The first occurrence of the job's window, from `now` on (within five weeks), in which the
/// job's whole duration still fits.
pub(super) fn next_fit(
    estate: &Estate,
    job: &Job,
    now: Timestamp,
    duration: SignedDuration,
) -> Option<Interval> {
    let cal = calendar_of(estate, job)?;
    cal.occurrences(
        now - SignedDuration::from_hours(24 * 8),
        now + SignedDuration::from_hours(24 * 35),
    )
    .into_iter()
    .find(|o| o.end > now && o.start.max(now) + duration <= o.end)
}

fn calendar_of(estate: &Estate, job: &Job) -> Option<WindowCalendar> {
    let w = estate
        .windows
        .iter()
        .find(|w| w.name.eq_ignore_ascii_case(&job.window))?;
    WindowCalendar::new(w).ok()
}

/// The servers this one depends on that are not healthy now (being patched, or their job
/// failed), and the services of which it is a member whose disruption budget is full: the two
/// gates that look at the cycle's other jobs.
pub(super) fn neighbours(
    estate: &Estate,
    server: &str,
    cycle_jobs: &[JobSummary],
) -> (Vec<String>, Vec<String>) {
    let services: Vec<&patchward_core::inventory::Service> = estate
        .services
        .iter()
        .filter(|s| s.members.iter().any(|m| m.eq_ignore_ascii_case(server)))
        .collect();
    let service_names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let state_of = |name: &str| {
        cycle_jobs
            .iter()
            .find(|j| j.server.eq_ignore_ascii_case(name))
            .and_then(|j| JobState::parse(&j.state))
    };
    let mut unhealthy = Vec::new();
    for d in &estate.dependencies {
        let mine = match &d.dependent {
            DependencyTarget::Server(s) => s.eq_ignore_ascii_case(server),
            DependencyTarget::Service(s) => service_names.iter().any(|n| n.eq_ignore_ascii_case(s)),
        };
        if !mine {
            continue;
        }
        let targets: Vec<String> = match &d.depends_on {
            DependencyTarget::Server(s) => vec![s.clone()],
            DependencyTarget::Service(s) => estate
                .services
                .iter()
                .filter(|x| x.name.eq_ignore_ascii_case(s))
                .flat_map(|x| x.members.clone())
                .collect(),
        };
        for t in targets {
            if t.eq_ignore_ascii_case(server) {
                continue;
            }
            match state_of(&t) {
                Some(JobState::Running | JobState::RollingBack) => {
                    unhealthy.push(format!("{t} (being patched now)"))
                }
                Some(s) if s.is_failure() => unhealthy.push(format!("{t} (its job {s})")),
                _ => {}
            }
        }
    }
    let mut full_budgets = Vec::new();
    for s in &services {
        let down = s
            .members
            .iter()
            .filter(|m| !m.eq_ignore_ascii_case(server))
            .filter(|m| state_of(m).is_some_and(|st| st == JobState::Running || st.is_failure()))
            .count();
        let allowed = s.budget.allowed(s.members.len());
        if down >= allowed {
            full_budgets.push(format!(
                "service {}: {down} of {} members down, its budget allows {allowed}",
                s.name,
                s.members.len()
            ));
        }
    }
    (unhealthy, full_budgets)
}
