//! Execution's use cases (C7, C8): starting an approved cycle turns its plan into jobs; an
//! agent's check-in is offered its server's job when the ring may start and every gate passes
//! (`offer`); the agent reports each step and the server verifies the result (`steps`); a
//! sweeper ends jobs whose server never came back. The rules are
//! `patchward_core::execution`; every write of a job is versioned, so replicas sharing a
//! database never lease or finish one twice, and a restarted server loses nothing.

pub mod ansible;
mod offer;
mod replan;
mod rollback;
mod steps;
mod summaries;
mod sweep;

pub use rollback::{HookTask, Hooks};
pub(crate) use summaries::{CycleCache, CycleJobsCache, RingGates};

use crate::workflow::{decode, encode};
use crate::{Actor, App, AppError, Result};
use jiff::Timestamp;
use patchward_core::access::Permission;
use patchward_core::execution::{Job, JobState, RingGate, RingJob, ring_gate};
use patchward_core::inventory::{Estate, RebootPolicy};
use patchward_core::workflow::{CycleState, Pause};
use patchward_proto::{
    CycleJobs, CycleView, JobCheckView, JobHookView, JobRollbackView, JobStepView, JobUpdateView,
    JobView, RingStatusView, TransitionRequest,
};
use patchward_store::{ControlStore, JobRecord, LeaseChange, NewJob, TenantId};
use std::collections::HashMap;
use std::sync::Arc;

fn rfc3339(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// Per tenant: the estate as of a revision (gates read windows, blackouts, backup policies,
/// services and dependencies at every offer).
#[derive(Default)]
pub struct EstateCache(
    std::sync::Mutex<HashMap<TenantId, (i64, Arc<Estate>)>>,
    /// One load at a time: check-ins that miss together wait for the first one's read
    /// instead of each reading the whole estate.
    tokio::sync::Mutex<()>,
);

impl<S: ControlStore> App<S> {
    /// Start an approved cycle: it becomes running and its plan becomes one job per placed
    /// server (unplaced servers stay in the plan's list with their reason). Starting again
    /// creates only the jobs that are missing (after a crash between the two writes).
    pub async fn start_cycle(&self, actor: &Actor, tenant: TenantId, id: i64) -> Result<CycleView> {
        actor.require(Permission::Operate)?;
        let (_, c) = self.load_cycle(tenant, id).await?;
        if c.state != CycleState::Running {
            self.transition_cycle(
                actor,
                tenant,
                id,
                &TransitionRequest {
                    to: "running".into(),
                    reason: Some("started".into()),
                },
            )
            .await?;
        }
        let made = self.ensure_jobs(tenant, id).await?;
        self.notify_work(tenant);
        self.record(
            actor,
            Some(tenant),
            "cycle.jobs",
            &format!("cycle:{id}"),
            serde_json::json!({"jobs_created": made}),
        )
        .await?;
        self.cycle_view(actor, tenant, id).await
    }

    /// The jobs of a running cycle's plan that do not exist yet.
    pub(crate) async fn ensure_jobs(&self, tenant: TenantId, id: i64) -> Result<usize> {
        let (_, c) = self.load_cycle(tenant, id).await?;
        let estate = self.cached_estate(tenant).await?;
        let plan = self.stored_plan(tenant, &c.name).await?;
        let ix = self.index().await?;
        let today = self.today();
        let updates: HashMap<String, &Vec<String>> = c
            .scope
            .iter()
            .map(|s| (s.server.to_ascii_lowercase(), &s.updates))
            .collect();
        let mut jobs = Vec::with_capacity(plan.placements.len());
        for p in &plan.placements {
            let Some(kbs) = updates.get(&p.server.to_ascii_lowercase()) else {
                continue;
            };
            let expected_build = match self.store.server(tenant, &p.server).await? {
                Some(server) => {
                    let e = ix.assess(&server, today);
                    e.missing_updates
                        .iter()
                        .filter(|m| kbs.iter().any(|k| *k == m.kb.to_string()))
                        .filter_map(|m| m.fixed_build)
                        .filter(|b| server.build.is_none_or(|sb| sb.same_release(b)))
                        .max()
                }
                None => None,
            };
            let mut job = Job {
                server: p.server.clone(),
                ring: p.ring.clone(),
                updates: (*kbs).clone(),
                expected_build,
                window: p.window.clone(),
                slot_start: p.start,
                slot_end: p.end,
                state: JobState::Waiting,
                steps: Vec::new(),
                results: Vec::new(),
                blocked_by: Vec::new(),
                before: None,
                verification: None,
                outcome: format!("planned for {} in {}", p.start, p.window),
                started: None,
                finished: None,
                hooks: Vec::new(),
                rollback: None,
                probes: Vec::new(),
                probe_grace: None,
                reboot: RebootPolicy::default(),
                found: Vec::new(),
            };
            // Shown from the start; set again when its gates pass.
            (job.probes, job.probe_grace, job.reboot) = run_settings(&estate, &p.server);
            jobs.push(NewJob {
                server: p.server.clone(),
                ring: p.ring.clone(),
                state: JobState::Waiting.as_str().into(),
                body: encode("job", &job)?,
            });
        }
        Ok(self
            .store
            .create_jobs(tenant, id, &jobs, self.now())
            .await?)
    }

    /// Pause a running cycle: no new job starts (running ones finish). Resuming lifts the
    /// pause and, naming a halted ring, accepts its failures so far so the rollout goes on.
    pub async fn pause_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        reason: &str,
    ) -> Result<CycleView> {
        actor.require(Permission::Operate)?;
        let why = crate::workflow::nonempty(reason, "reason")?;
        self.change_running_cycle(
            actor,
            tenant,
            id,
            "cycle.pause",
            serde_json::json!({"reason": why}),
            |c, now, by| {
                c.paused = Some(Pause {
                    by: by.to_string(),
                    at: now,
                    why: why.clone(),
                });
                Ok(())
            },
        )
        .await
    }

    pub async fn resume_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        ring: Option<&str>,
        reason: &str,
    ) -> Result<CycleView> {
        actor.require(Permission::Approve)?;
        let why = crate::workflow::nonempty(reason, "reason")?;
        let records = self.store.jobs(tenant, id).await?;
        if records.is_empty() {
            // No jobs: an unknown cycle is 404 (and a known one says why it cannot resume)
            // before the ring is looked for.
            self.load_cycle(tenant, id).await?;
        }
        let accept = match ring {
            None => None,
            Some(r) => {
                let key = patchward_core::workflow::ring_key(Some(r));
                let failed = records
                    .iter()
                    .filter(|j| patchward_core::workflow::ring_key(j.ring.as_deref()) == key)
                    .filter(|j| JobState::parse(&j.state).is_some_and(JobState::is_failure))
                    .count();
                if !records
                    .iter()
                    .any(|j| patchward_core::workflow::ring_key(j.ring.as_deref()) == key)
                {
                    return Err(AppError::field(
                        "ring",
                        format!("the cycle has no job in ring {r:?}"),
                    ));
                }
                Some((key, failed))
            }
        };
        let detail = serde_json::json!({"reason": why, "ring": ring, "failures_accepted": accept.as_ref().map(|a| a.1)});
        let view = self
            .change_running_cycle(actor, tenant, id, "cycle.resume", detail, move |c, _, _| {
                c.paused = None;
                if let Some((key, failed)) = &accept {
                    c.accepted_failures.insert(key.clone(), *failed);
                }
                Ok(())
            })
            .await?;
        self.notify_work(tenant);
        Ok(view)
    }

    async fn change_running_cycle(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
        action: &str,
        detail: serde_json::Value,
        change: impl Fn(&mut patchward_core::workflow::Cycle, Timestamp, &str) -> Result<()>,
    ) -> Result<CycleView> {
        for _ in 0..5 {
            let (rec, mut c) = self.load_cycle(tenant, id).await?;
            if c.state != CycleState::Running {
                return Err(AppError::new(
                    patchward_proto::ErrorCode::Conflict,
                    format!(
                        "the cycle is {}: only a running cycle is paused or resumed",
                        c.state
                    ),
                ));
            }
            change(&mut c, self.now(), &actor.name)?;
            let body = encode("cycle", &c)?;
            if self
                .store
                .update_cycle(
                    tenant,
                    id,
                    rec.version,
                    c.state.as_str(),
                    &body,
                    None,
                    self.now(),
                )
                .await?
                .is_some()
            {
                self.cycle_changed(tenant, id);
                self.record(actor, Some(tenant), action, &format!("cycle:{id}"), detail)
                    .await?;
                return self.cycle_view(actor, tenant, id).await;
            }
        }
        Err(AppError::new(
            patchward_proto::ErrorCode::Conflict,
            format!("cycle {id} kept changing; try again"),
        ))
    }

    /// A cancelled cycle's unfinished jobs end as cancelled (a running one stops at its
    /// agent's next report).
    pub(crate) async fn cancel_jobs(&self, tenant: TenantId, id: i64, why: &str) -> Result<usize> {
        let mut n = 0;
        for rec in self.store.jobs(tenant, id).await? {
            for attempt in 0..5 {
                let rec = if attempt == 0 {
                    rec.clone()
                } else {
                    match self.store.job(tenant, rec.id).await? {
                        Some(r) => r,
                        None => break,
                    }
                };
                let mut job: Job = decode("job", rec.id, &rec.body)?;
                if job.state.is_terminal() {
                    break;
                }
                let now = self.now();
                job.end(
                    JobState::Cancelled,
                    now,
                    format!("the cycle was cancelled: {why}"),
                );
                if self.write(&rec, &job, LeaseChange::Release, now).await? {
                    n += 1;
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Durations learned from the tenant's finished jobs (the last three per server, from its
    /// five newest started cycles), for servers whose estate gives no estimate of its own.
    pub async fn with_learned_durations(
        &self,
        tenant: TenantId,
        mut estate: Estate,
    ) -> Result<Estate> {
        let mut samples: HashMap<String, Vec<(Timestamp, jiff::SignedDuration)>> = HashMap::new();
        let cycles = self.store.cycles(tenant).await?;
        for c in cycles
            .iter()
            .filter(|c| matches!(c.state.as_str(), "running" | "completed" | "cancelled"))
            .take(5)
        {
            for rec in self.store.jobs(tenant, c.id).await? {
                if rec.state != JobState::Succeeded.as_str() {
                    continue;
                }
                let job: Job = decode("job", rec.id, &rec.body)?;
                if let (Some(s), Some(f)) = (job.started, job.finished) {
                    samples
                        .entry(rec.server.to_ascii_lowercase())
                        .or_default()
                        .push((f, s.duration_until(f)));
                }
            }
        }
        for server in &mut estate.servers {
            if server.estimated_duration.is_some() {
                continue;
            }
            if let Some(v) = samples.get_mut(&server.name.to_ascii_lowercase()) {
                v.sort_by_key(|(f, _)| std::cmp::Reverse(*f));
                let last: Vec<jiff::SignedDuration> = v.iter().take(3).map(|(_, d)| *d).collect();
                server.estimated_duration = patchward_core::execution::learned_duration(&last);
            }
        }
        Ok(estate)
    }

    /// The tenant's estate, read once per revision.
    pub(crate) async fn cached_estate(&self, tenant: TenantId) -> Result<Arc<Estate>> {
        let rev = self.store.estate_revision(tenant).await?;
        if let Some((r, e)) = self
            .estates
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            && *r == rev
        {
            return Ok(e.clone());
        }
        let _loading = self.estates.1.lock().await;
        if let Some((r, e)) = self
            .estates
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            && *r == rev
        {
            return Ok(e.clone());
        }
        let e = Arc::new(self.store.estate(tenant).await?);
        self.estates
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant, (rev, e.clone()));
        Ok(e)
    }

    /// A cycle's jobs, and where each ring stands.
    pub async fn cycle_jobs(&self, actor: &Actor, tenant: TenantId, id: i64) -> Result<CycleJobs> {
        actor.require(Permission::Read)?;
        let (_, c) = self.load_cycle(tenant, id).await?;
        let records = self.store.jobs(tenant, id).await?;
        let estate = self.cached_estate(tenant).await?;
        let budget = crate::workflow::rules_of(&self.store, tenant)
            .await?
            .failure_budget_percent;
        let now = self.now();
        let rings = ring_order(&estate);
        let ring_jobs = ring_jobs(&records);
        let mut names: Vec<Option<String>> = records.iter().map(|r| r.ring.clone()).collect();
        names.sort_by_key(|r| {
            r.as_deref()
                .and_then(|r| rings.iter().position(|(n, _)| n.eq_ignore_ascii_case(r)))
                .unwrap_or(usize::MAX)
        });
        names.dedup_by(|a, b| {
            a.as_deref().map(str::to_ascii_lowercase) == b.as_deref().map(str::to_ascii_lowercase)
        });
        let ring_status: Vec<RingStatusView> = names
            .iter()
            .map(|r| {
                let (status, reason) = match ring_gate(
                    &rings,
                    &ring_jobs,
                    r.as_deref(),
                    budget,
                    &c.accepted_failures,
                    now,
                ) {
                    RingGate::Open => ("open", None),
                    RingGate::Waiting(w) => ("waiting", Some(w)),
                    RingGate::Halted(h) => ("halted", Some(h)),
                };
                RingStatusView {
                    ring: r.clone().unwrap_or_else(|| "(no ring)".into()),
                    status: status.into(),
                    reason,
                }
            })
            .collect();
        // A waiting job whose slot has come waits on its ring or the pause: said here, as of
        // now, rather than written into every job at every check-in.
        let pause = c
            .paused
            .as_ref()
            .map(|p| format!("the cycle is paused ({})", p.why));
        let mut jobs = Vec::with_capacity(records.len());
        for r in &records {
            let job: Job = decode("job", r.id, &r.body)?;
            let mut view = job_view(r.id, &job);
            if job.state == JobState::Waiting && now >= job.slot_start {
                let key = patchward_core::workflow::ring_key(r.ring.as_deref());
                let ring = ring_status.iter().find(|x| {
                    x.status != "open"
                        && patchward_core::workflow::ring_key(Some(x.ring.as_str())) == key
                        || (x.ring == "(no ring)" && key.is_empty() && x.status != "open")
                });
                if let Some(why) = ring.and_then(|x| x.reason.clone()).or(pause.clone()) {
                    // The stored outcome ("planned for …", "taking a checkpoint …") is from
                    // before: what it waits on now is the outcome.
                    view.outcome = format!("waiting: {why}");
                    view.reasons = vec![why];
                }
            }
            jobs.push(view);
        }
        Ok(CycleJobs {
            cycle: id,
            state: c.state.as_str().into(),
            paused: c
                .paused
                .as_ref()
                .map(|p| format!("paused by {} at {}: {}", p.by, p.at, p.why)),
            rings: ring_status,
            jobs,
        })
    }
}

/// The estate's rings in order with their soak.
pub(crate) fn ring_order(estate: &Estate) -> Vec<(&str, jiff::SignedDuration)> {
    let mut rings: Vec<_> = estate.rings.iter().collect();
    rings.sort_by_key(|r| (r.order, r.name.to_ascii_lowercase()));
    rings.iter().map(|r| (r.name.as_str(), r.soak)).collect()
}

/// Jobs as ring promotion sees them: a terminal job finished at its last write.
pub(crate) fn ring_jobs<R: JobRow>(records: &[R]) -> Vec<RingJob<'_>> {
    records
        .iter()
        .map(|r| {
            let state = JobState::parse(r.state()).unwrap_or(JobState::Waiting);
            RingJob {
                ring: r.ring(),
                state,
                finished: state.is_terminal().then_some(r.updated_at()),
            }
        })
        .collect()
}

/// What ring promotion reads of a job's row, with or without its body.
pub(crate) trait JobRow {
    fn ring(&self) -> Option<&str>;
    fn state(&self) -> &str;
    fn updated_at(&self) -> Timestamp;
}

impl JobRow for JobRecord {
    fn ring(&self) -> Option<&str> {
        self.ring.as_deref()
    }
    fn state(&self) -> &str {
        &self.state
    }
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

impl JobRow for patchward_store::JobSummary {
    fn ring(&self) -> Option<&str> {
        self.ring.as_deref()
    }
    fn state(&self) -> &str {
        &self.state
    }
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

pub(crate) fn job_view(id: i64, j: &Job) -> JobView {
    let reasons: Vec<String> = match j.state {
        // Blocked by its gates, or by its checkpoint (the outcome says so).
        JobState::Blocked if j.blocked_by.iter().any(|g| !g.passed) => j
            .blocked_by
            .iter()
            .filter(|g| !g.passed)
            .map(|g| format!("{}: {}", g.gate.as_str(), g.reason))
            .collect(),
        JobState::Succeeded | JobState::Running => Vec::new(),
        _ => match j.verification.as_ref().map(|v| v.failures()) {
            Some(f) if !f.is_empty() => f,
            _ if j.outcome.is_empty() => Vec::new(),
            _ => vec![j.outcome.clone()],
        },
    };
    JobView {
        id,
        server: j.server.clone(),
        ring: j.ring.clone(),
        state: j.state.as_str().into(),
        updates: j.updates.clone(),
        expected_build: j.expected_build.map(|b| b.to_string()),
        slot_start: rfc3339(j.slot_start),
        slot_end: rfc3339(j.slot_end),
        started: j.started.map(rfc3339),
        finished: j.finished.map(rfc3339),
        steps: j
            .steps
            .iter()
            .map(|s| JobStepView {
                step: s.step.as_str().into(),
                started: rfc3339(s.started),
                finished: s.finished.map(rfc3339),
                ok: s.ok,
                detail: s.detail.clone(),
            })
            .collect(),
        results: j
            .results
            .iter()
            .map(|r| JobUpdateView {
                kb: r.kb.clone(),
                installed: r.installed,
                hresult: r.hresult.clone(),
            })
            .collect(),
        reasons,
        checks: j
            .verification
            .as_ref()
            .map(|v| {
                v.checks
                    .iter()
                    .map(|c| JobCheckView {
                        name: c.name.clone(),
                        passed: c.passed,
                        detail: c.detail.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        outcome: j.outcome.clone(),
        rollback: j.rollback.as_ref().map(|r| JobRollbackView {
            method: crate::wire::word(&r.method),
            requested_by: r.requested_by.clone(),
            requested_at: rfc3339(r.requested_at),
            reason: r.reason.clone(),
            updates: r.updates.clone(),
            results: r
                .results
                .iter()
                .map(|u| JobUpdateView {
                    kb: u.kb.clone(),
                    installed: u.installed,
                    hresult: u.hresult.clone(),
                })
                .collect(),
        }),
        hooks: j
            .hooks
            .iter()
            .map(|h| JobHookView {
                hook: h.hook.as_str().into(),
                command: h.command.clone(),
                started: rfc3339(h.started),
                finished: h.finished.map(rfc3339),
                exit_code: h.exit_code,
                output: h.output.clone(),
            })
            .collect(),
        probes: j.probes.iter().map(|p| p.to_string()).collect(),
        reboot_policy: j.reboot.as_str().into(),
        rollback_refused: patchward_core::execution::rollback_refusal(j),
        found: j
            .found
            .iter()
            .map(|f| format!("{}: {} revision {}", f.kb, f.update_id, f.revision))
            .collect(),
    }
}

/// What a job on `server` runs with: the health probes of the services it is a member of
/// (each once), the longest of their probe graces, and the server's reboot policy.
pub(crate) fn run_settings(
    estate: &Estate,
    server: &str,
) -> (
    Vec<patchward_core::inventory::HealthProbe>,
    Option<jiff::SignedDuration>,
    RebootPolicy,
) {
    let mut probes = Vec::new();
    let mut grace: Option<jiff::SignedDuration> = None;
    for s in estate
        .services
        .iter()
        .filter(|s| s.members.iter().any(|m| m.eq_ignore_ascii_case(server)))
    {
        for p in &s.probes {
            if !probes.contains(p) {
                probes.push(p.clone());
            }
        }
        if !s.probes.is_empty() {
            let g = s
                .probe_grace
                .unwrap_or(patchward_core::inventory::DEFAULT_PROBE_GRACE);
            grace = Some(grace.map_or(g, |x| x.max(g)));
        }
    }
    let reboot = estate
        .servers
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(server))
        .map(|s| s.reboot)
        .unwrap_or_default();
    (probes, grace, reboot)
}

/// A job that is not the caller's is answered like one that does not exist.
pub(crate) fn not_found(id: i64) -> AppError {
    AppError::not_found(format!("job {id}"))
}
