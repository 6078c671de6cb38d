//! An agent's step reports: each step timestamped on the job; install results with their
//! HRESULT; the host after its reboot updates the server's inventory; verification compares
//! the host after with the snapshot taken when the gates passed.

use super::not_found;
use crate::agents::snapshot_of;
use crate::workflow::decode;
use crate::{App, AppError, Result};
use jiff::Timestamp;
use patchward_core::execution::{
    CriticalEvent, HookKind, HostSnapshot, Job, JobState, LEASE, REBOOT_TIMEOUT, StepKind,
    UpdateResult, verify, verify_rollback,
};
use patchward_core::inventory::RollbackMethod;
use patchward_proto::ErrorCode;
use patchward_proto::agent::{StepReply, StepReport};
use patchward_store::{AgentRecord, ControlStore, LeaseChange};

/// Versioned writes lost to another writer are retried this often.
pub(crate) const RETRIES: usize = 5;

impl<S: ControlStore> App<S> {
    /// A step report from the agent holding the job's lease.
    pub async fn report_step(
        &self,
        agent: &AgentRecord,
        job_id: i64,
        report: &StepReport,
    ) -> Result<StepReply> {
        let step = StepKind::parse(&report.step)
            .filter(|s| *s != StepKind::Gates)
            .ok_or_else(|| {
                AppError::field(
                    "step",
                    format!(
                        "{:?}: expected scan, download, install, reboot, verify or rollback",
                        report.step
                    ),
                )
            })?;
        let status = match report.status.as_str() {
            s @ ("started" | "finished" | "failed") => s,
            other => {
                return Err(AppError::field(
                    "status",
                    format!("{other:?}: expected started, finished or failed"),
                ));
            }
        };
        let mut events = Vec::with_capacity(report.events.len());
        for (i, e) in report.events.iter().enumerate() {
            let at = e.at.parse().map_err(|_| {
                AppError::field(
                    &format!("events[{i}].at"),
                    format!("not an RFC 3339 instant: {:?}", e.at),
                )
            })?;
            events.push(CriticalEvent {
                id: e.id,
                source: e.source.clone(),
                at,
                message: e.message.clone(),
            });
        }
        // What a scan found: each a KB of the job's, identified by a GUID (it reaches a Windows
        // Update search when the agent resumes).
        let mut found = Vec::with_capacity(report.found.len());
        for (i, f) in report.found.iter().enumerate() {
            if !patchward_proto::agent::is_guid(&f.update_id) {
                return Err(AppError::field(
                    &format!("found[{i}].update_id"),
                    format!(
                        "not a Windows Update UpdateID (a GUID): {:?}",
                        f.update_id.chars().take(60).collect::<String>()
                    ),
                ));
            }
            found.push(patchward_core::execution::FoundUpdate {
                kb: f.kb.chars().take(20).collect(),
                update_id: f.update_id.to_ascii_lowercase(),
                revision: f.revision,
                title: f.title.chars().take(300).collect(),
            });
        }
        // A host report is read (and refused with its field named) before anything is written.
        let after = match &report.inventory {
            Some(inv) => {
                crate::agents::server_from_report(&agent.server, inv, self.now())?;
                Some(snapshot_of(inv, Some(self.now())))
            }
            None => None,
        };
        for _ in 0..RETRIES {
            let now = self.now();
            let rec = self
                .store
                .job(agent.tenant, job_id)
                .await?
                .filter(|r| r.server.eq_ignore_ascii_case(&agent.server))
                .ok_or_else(|| not_found(job_id))?;
            if rec.lease_agent != Some(agent.id) || rec.lease_token != report.token {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    format!(
                        "job {job_id}: lease token {} is not the current one; ask for the job again",
                        report.token
                    ),
                ));
            }
            let mut job: Job = decode("job", rec.id, &rec.body)?;
            if !matches!(job.state, JobState::Running | JobState::RollingBack) {
                return Ok(StepReply {
                    proceed: false,
                    lease_seconds: 0,
                    state: job.state.as_str().into(),
                    message: Some(job.outcome.clone()),
                });
            }
            let (mut lease, ended) = if job.state == JobState::RollingBack {
                rollback_step(&mut job, step, status, report, after.as_ref(), now)?
            } else {
                let mut lease = LeaseChange::Extend { until: now + LEASE };
                let mut ended = None;
                match status {
                    "started" => {
                        job.step_started(step, now, &report.detail);
                        if step == StepKind::Reboot {
                            lease = LeaseChange::Extend {
                                until: now + REBOOT_TIMEOUT,
                            };
                        }
                    }
                    _ => {
                        let ok = status == "finished";
                        if step == StepKind::Scan && !found.is_empty() {
                            let unknown: Vec<&str> = found
                                .iter()
                                .filter(|f| {
                                    !job.updates.iter().any(|u| u.eq_ignore_ascii_case(&f.kb))
                                })
                                .map(|f| f.kb.as_str())
                                .collect();
                            if !unknown.is_empty() {
                                return Err(AppError::field(
                                    "found",
                                    format!("not updates of this job: {}", unknown.join(", ")),
                                ));
                            }
                            job.found = found.clone();
                        }
                        if step == StepKind::Install {
                            job.results = report
                                .results
                                .iter()
                                .map(|r| UpdateResult {
                                    kb: r.kb.clone(),
                                    installed: r.installed,
                                    hresult: r.hresult.clone(),
                                })
                                .collect();
                        }
                        let failed: Vec<String> = job
                            .results
                            .iter()
                            .filter(|r| !r.installed)
                            .map(|r| match &r.hresult {
                                Some(h) => format!("{} failed with {h}", r.kb),
                                None => format!("{} was not installed", r.kb),
                            })
                            .collect();
                        let ok = ok && (step != StepKind::Install || failed.is_empty());
                        job.step_finished(step, now, ok, &report.detail);
                        if !ok {
                            let why = if failed.is_empty() {
                                format!("{} failed: {}", step.as_str(), report.detail)
                            } else {
                                failed.join("; ")
                            };
                            ended = Some((JobState::Failed, why));
                        } else if step == StepKind::Verify {
                            let Some(after) = &after else {
                                return Err(AppError::field(
                                    "inventory",
                                    "verify needs the host as it is now",
                                ));
                            };
                            let probes: Vec<_> = report
                                .probes
                                .iter()
                                .map(crate::wire::probe_outcome)
                                .collect();
                            let v = verify(&job, job.before.as_ref(), after, &events, &probes);
                            let state = if v.verified {
                                JobState::Succeeded
                            } else {
                                JobState::NeedsRemediation
                            };
                            let why = if v.verified {
                                "installed and verified".to_string()
                            } else {
                                format!("verification failed: {}", v.failures().join("; "))
                            };
                            job.verification = Some(v);
                            ended = Some((state, why));
                        }
                    }
                }
                (lease, ended)
            };
            let mut automatic = false;
            if let Some((state, why)) = &ended {
                job.end(*state, now, why.clone());
                lease = LeaseChange::Release;
                if *state == JobState::NeedsRemediation && step == StepKind::Verify {
                    automatic = self.automatic_rollback(&rec, &mut job, now).await?;
                }
            }
            if !self.write(&rec, &job, lease, now).await? {
                continue;
            }
            // The host as it came back updates the server's inventory.
            if let Some(inv) = &report.inventory {
                self.report_inventory(agent, inv).await?;
            }
            let action = match &ended {
                Some((s, _)) => format!("job.{s}"),
                None => "job.step".to_string(),
            };
            self.audit_job(
                &rec,
                &action,
                serde_json::json!({
                    "step": step.as_str(), "status": status, "detail": report.detail,
                    "outcome": ended.as_ref().map(|(_, w)| w.clone()),
                }),
            )
            .await?;
            if automatic {
                self.audit_job(
                    &rec,
                    "job.rollback",
                    serde_json::json!({"by": "policy", "outcome": job.outcome}),
                )
                .await?;
                if job
                    .rollback
                    .as_ref()
                    .is_some_and(|r| r.method == RollbackMethod::Snapshot)
                {
                    self.queue_hook(rec.tenant, rec.id, HookKind::Restore);
                }
            }
            return Ok(StepReply {
                proceed: ended.is_none(),
                lease_seconds: match lease {
                    LeaseChange::Extend { until } => {
                        u32::try_from(now.duration_until(until).as_secs()).unwrap_or(0)
                    }
                    _ => 0,
                },
                state: job.state.as_str().into(),
                message: ended.map(|(_, w)| w),
            });
        }
        Err(AppError::new(
            ErrorCode::Conflict,
            format!("job {job_id} kept changing; report the step again"),
        ))
    }
}

/// A step report of a rollback through the agent: `rollback` (the uninstall, with a result
/// per update), `reboot`, then `verify` with the host as it came back. Returns the lease
/// change and, when it ended, the job's end.
fn rollback_step(
    job: &mut Job,
    step: StepKind,
    status: &str,
    report: &StepReport,
    after: Option<&HostSnapshot>,
    now: Timestamp,
) -> Result<(LeaseChange, Option<(JobState, String)>)> {
    let mut lease = LeaseChange::Extend { until: now + LEASE };
    let ok = status == "finished";
    let started = status == "started";
    let updates = job
        .rollback
        .as_ref()
        .map(|r| r.updates.clone())
        .unwrap_or_default();
    let ended = match step {
        StepKind::Rollback if started => {
            job.rollback_step(step, now, None, &report.detail);
            None
        }
        StepKind::Rollback => {
            let results: Vec<UpdateResult> = report
                .results
                .iter()
                .map(|r| UpdateResult {
                    kb: r.kb.clone(),
                    installed: r.installed,
                    hresult: r.hresult.clone(),
                })
                .collect();
            let kept: Vec<String> = results
                .iter()
                .filter(|r| r.installed)
                .map(|r| match &r.hresult {
                    Some(h) => format!("{} could not be removed ({h})", r.kb),
                    None => format!("{} is still installed", r.kb),
                })
                .collect();
            let ok = ok && kept.is_empty();
            job.rollback_step(step, now, Some(ok), &report.detail);
            if let Some(r) = job.rollback.as_mut() {
                r.results = results;
            }
            (!ok).then(|| {
                let why = if kept.is_empty() {
                    report.detail.clone()
                } else {
                    kept.join("; ")
                };
                (
                    JobState::NeedsRemediation,
                    format!("the rollback failed: {why}"),
                )
            })
        }
        StepKind::Reboot if started => {
            job.rollback_step(step, now, None, &report.detail);
            lease = LeaseChange::Extend {
                until: now + REBOOT_TIMEOUT,
            };
            None
        }
        StepKind::Reboot => {
            job.rollback_step(step, now, Some(ok), &report.detail);
            (!ok).then(|| {
                (
                    JobState::NeedsRemediation,
                    format!("the rollback's reboot failed: {}", report.detail),
                )
            })
        }
        StepKind::Verify if !started => {
            let Some(after) = after else {
                return Err(AppError::field(
                    "inventory",
                    "verify needs the host as it is now",
                ));
            };
            let failures = verify_rollback(&updates, after);
            job.rollback_step(step, now, Some(failures.is_empty()), &report.detail);
            Some(if failures.is_empty() {
                (
                    JobState::RolledBack,
                    format!("rolled back: {} removed", updates.join(", ")),
                )
            } else {
                (
                    JobState::NeedsRemediation,
                    format!("the rollback is incomplete: {}", failures.join("; ")),
                )
            })
        }
        other => {
            return Err(AppError::field(
                "step",
                format!(
                    "{}: a rollback reports rollback, reboot and verify",
                    other.as_str()
                ),
            ));
        }
    };
    Ok((lease, ended))
}
