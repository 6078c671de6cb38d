//! Rollback (PRODUCT.md C8) and the operator's hooks. A job that ended badly (or succeeded and
//! was later found wanting) is rolled back on an approver's decision, or by itself when the
//! server's plan says `automatic` and verification failed:
//! - `uninstall_kb` (and servers without a plan): the server's agent is offered the rollback at
//!   its next check-in, uninstalls the updates the job installed, reboots, and the job is
//!   `rolled_back` once they are gone and no reboot is pending;
//! - `snapshot`: the operator's restore hook (`serve --restore-hook`) reverts the VM to the
//!   checkpoint its checkpoint hook (`serve --checkpoint-hook`) took before the install;
//! - `restore_from_backup`, `vendor_procedure`: people do it; an approver records it as done.
//!
//! Hooks are commands the server runs (never given through the API): their exit code and the
//! end of their output are kept on the job and in the audit log. They run outside the request
//! that asked for them ([`App::take_hook_tasks`], spawned by the server's loop); the job holds
//! the running hook so another replica neither runs it twice nor offers the job meanwhile.

use super::not_found;
use crate::workflow::decode;
use crate::{Actor, App, AppError, Result};
use jiff::{SignedDuration, Timestamp};
use patchward_core::access::Permission;
use patchward_core::execution::{HookKind, HookRun, Job, JobState, rollback_refusal};
use patchward_core::inventory::{RollbackMethod, RollbackPlan};
use patchward_proto::ErrorCode;
use patchward_proto::JobView;
use patchward_store::{ControlStore, JobRecord, LeaseChange, TenantId};
use std::path::PathBuf;
use std::time::Duration;

/// The holder of a job whose restore hook runs (no agent has id 0).
pub(crate) const HOOK_HOLDER: i64 = 0;
/// Output kept per hook run.
const OUTPUT_LIMIT: usize = 16 * 1024;
/// How long a checkpoint stays the one to start a job from.
const CHECKPOINT_FRESH: SignedDuration = SignedDuration::from_hours(1);

/// The operator's hook commands. Each is run with the job's facts in its environment:
/// `PATCHWARD_HOOK` (`checkpoint` or `restore`), `PATCHWARD_SERVER`, `PATCHWARD_FQDN`,
/// `PATCHWARD_JOB`, `PATCHWARD_CYCLE`, `PATCHWARD_TENANT`.
#[derive(Debug, Clone)]
pub struct Hooks {
    pub checkpoint: Option<PathBuf>,
    pub restore: Option<PathBuf>,
    /// A hook still running after this is killed and counts as failed.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            checkpoint: None,
            restore: None,
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl Hooks {
    fn command(&self, kind: HookKind) -> Option<&PathBuf> {
        match kind {
            HookKind::Checkpoint => self.checkpoint.as_ref(),
            HookKind::Restore => self.restore.as_ref(),
        }
    }

    fn lasts(&self) -> SignedDuration {
        SignedDuration::try_from(self.timeout).unwrap_or(SignedDuration::from_hours(1))
    }
}

/// A hook to run for a job (queued by the use case, run by the server's loop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookTask {
    pub tenant: TenantId,
    pub job: i64,
    pub kind: HookKind,
}

impl<S: ControlStore> App<S> {
    /// Ask for a job's rollback by its server's plan; `done` records a rollback people did
    /// (restore from backup, vendor procedure).
    pub async fn request_rollback(
        &self,
        actor: &Actor,
        tenant: TenantId,
        job_id: i64,
        reason: &str,
        done: bool,
    ) -> Result<JobView> {
        actor.require(Permission::Approve)?;
        let why = crate::workflow::nonempty(reason, "reason")?;
        for _ in 0..super::steps::RETRIES {
            let rec = self
                .store
                .job(tenant, job_id)
                .await?
                .ok_or_else(|| not_found(job_id))?;
            let mut job: Job = decode("job", rec.id, &rec.body)?;
            if let Some(why_not) = rollback_refusal(&job) {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    format!("job {job_id} cannot be rolled back: {why_not}"),
                ));
            }
            let plan = self.rollback_plan_of(tenant, &rec.server).await?;
            let method = plan
                .as_ref()
                .map_or(RollbackMethod::UninstallKb, |p| p.method);
            let now = self.now();
            let lease = match method {
                RollbackMethod::UninstallKb => {
                    self.require_agent(tenant, &rec.server).await?;
                    if done {
                        return Err(AppError::field(
                            "done",
                            "this rollback is done by the agent: ask for it without `done`",
                        ));
                    }
                    job.begin_rollback(method, &actor.name, &why, now);
                    LeaseChange::Release
                }
                RollbackMethod::Snapshot if done => {
                    job.begin_rollback(method, &actor.name, &why, now);
                    job.end(
                        JobState::RolledBack,
                        now,
                        format!("rolled back by hand (checkpoint restored): {why}"),
                    );
                    LeaseChange::Release
                }
                RollbackMethod::Snapshot => {
                    let Some(command) = self.hooks.command(HookKind::Restore) else {
                        return Err(AppError::new(
                            ErrorCode::Conflict,
                            format!(
                                "{}'s rollback plan is a snapshot, and this server has no restore \
                                 hook (serve --restore-hook): restore the checkpoint by hand, then \
                                 record it with `done`",
                                rec.server
                            ),
                        ));
                    };
                    // Reverting to a checkpoint this job did not take would restore an older
                    // (or no) state of the server.
                    if !job
                        .hooks
                        .iter()
                        .any(|h| h.hook == HookKind::Checkpoint && h.succeeded())
                    {
                        return Err(AppError::new(
                            ErrorCode::Conflict,
                            format!(
                                "no checkpoint was taken for this job (no checkpoint hook ran \
                                 before {} was patched): restore it by hand, then record it \
                                 with `done`",
                                rec.server
                            ),
                        ));
                    }
                    job.begin_rollback(method, &actor.name, &why, now);
                    job.hooks.push(running(HookKind::Restore, command, now));
                    LeaseChange::Grant {
                        agent: HOOK_HOLDER,
                        until: now + self.hooks.lasts() + SignedDuration::from_mins(1),
                    }
                }
                RollbackMethod::RestoreFromBackup | RollbackMethod::VendorProcedure => {
                    let who = plan.as_ref().and_then(|p| p.who.clone());
                    if !done {
                        return Err(AppError::new(
                            ErrorCode::Conflict,
                            format!(
                                "{}'s rollback plan is {} by {}: people do it; once done, record \
                                 it with `done`",
                                rec.server,
                                crate::wire::word(&method),
                                who.as_deref().unwrap_or("its owners")
                            ),
                        ));
                    }
                    job.begin_rollback(method, &actor.name, &why, now);
                    job.end(
                        JobState::RolledBack,
                        now,
                        format!(
                            "rolled back by hand ({}): {why}",
                            crate::wire::word(&method)
                        ),
                    );
                    LeaseChange::Release
                }
            };
            if !self.write(&rec, &job, lease, now).await? {
                continue;
            }
            self.record(
                actor,
                Some(tenant),
                "job.rollback",
                &format!("job:{job_id}"),
                serde_json::json!({
                    "server": rec.server, "cycle": rec.cycle, "method": crate::wire::word(&method),
                    "reason": why, "updates": job.rollback.as_ref().map(|r| r.updates.clone()),
                    "done": done,
                }),
            )
            .await?;
            match method {
                RollbackMethod::Snapshot if !done => {
                    self.queue_hook(tenant, job_id, HookKind::Restore)
                }
                RollbackMethod::UninstallKb => self.notify_work(tenant),
                _ => {}
            }
            return Ok(super::job_view(job_id, &job));
        }
        Err(AppError::new(
            ErrorCode::Conflict,
            format!("job {job_id} kept changing; ask again"),
        ))
    }

    /// Roll back by the plan when verification failed and the plan says `automatic`: called
    /// on the job just ended, before it is written. Returns whether it started.
    pub(crate) async fn automatic_rollback(
        &self,
        rec: &JobRecord,
        job: &mut Job,
        now: Timestamp,
    ) -> Result<bool> {
        let Some(plan) = self.rollback_plan_of(rec.tenant, &rec.server).await? else {
            return Ok(false);
        };
        let possible = match plan.method {
            RollbackMethod::UninstallKb => true,
            RollbackMethod::Snapshot => {
                self.hooks.restore.is_some()
                    && job
                        .hooks
                        .iter()
                        .any(|h| h.hook == HookKind::Checkpoint && h.succeeded())
            }
            _ => false,
        };
        if !plan.automatic || !possible || rollback_refusal(job).is_some() {
            return Ok(false);
        }
        let why = format!("automatic, by its rollback plan: {}", job.outcome);
        job.begin_rollback(plan.method, "policy", &why, now);
        if plan.method == RollbackMethod::Snapshot
            && let Some(command) = self.hooks.command(HookKind::Restore)
        {
            job.hooks.push(running(HookKind::Restore, command, now));
        }
        Ok(true)
    }

    async fn rollback_plan_of(
        &self,
        tenant: TenantId,
        server: &str,
    ) -> Result<Option<RollbackPlan>> {
        let estate = self.cached_estate(tenant).await?;
        Ok(estate
            .servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(server))
            .and_then(|s| s.rollback.clone()))
    }

    async fn require_agent(&self, tenant: TenantId, server: &str) -> Result<()> {
        let agents = self.store.agents(tenant).await?;
        if agents
            .iter()
            .any(|a| a.server.eq_ignore_ascii_case(server) && a.revoked_at.is_none())
        {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::Conflict,
                format!(
                    "{server} has no agent to uninstall the updates: uninstall them by hand \
                     (or enrol an agent) and ask again"
                ),
            ))
        }
    }

    // ---- Hooks ----

    /// The checkpoint a job needs before its server is touched: `Ok(None)` when it has one
    /// (or needs none), `Ok(Some(why))` while it waits for one (the hook was started now or
    /// runs), `Err` when the last one failed (a gate-like reason; tried again five minutes
    /// later).
    pub(crate) async fn checkpoint_needed(
        &self,
        rec: &JobRecord,
        job: &mut Job,
        now: Timestamp,
    ) -> Result<CheckpointStatus> {
        let plan = self.rollback_plan_of(rec.tenant, &rec.server).await?;
        let Some(plan) = plan.filter(|p| p.method == RollbackMethod::Snapshot) else {
            return Ok(CheckpointStatus::Ready);
        };
        let Some(command) = self.hooks.command(HookKind::Checkpoint) else {
            return Ok(CheckpointStatus::ByHand(format!(
                "snapshot plan: this server runs no checkpoint hook, so the checkpoint is {}'s \
                 to take before the install (a rollback is then recorded with done)",
                plan.who.as_deref().unwrap_or("the plan owner")
            )));
        };
        let last = job
            .hooks
            .iter()
            .rev()
            .find(|h| h.hook == HookKind::Checkpoint);
        match last {
            // Restoring an old checkpoint would lose what changed since: one taken for a job
            // that then waited (its ring halted, the cycle paused) is taken again.
            Some(h) if h.succeeded() && h.finished.is_some_and(|f| now < f + CHECKPOINT_FRESH) => {
                return Ok(CheckpointStatus::Ready);
            }
            Some(h) if h.finished.is_none() && now < h.started + self.hooks.lasts() => {
                return Ok(CheckpointStatus::Waiting);
            }
            Some(h)
                if h.finished
                    .is_some_and(|f| now < f + SignedDuration::from_mins(5)) =>
            {
                return Ok(CheckpointStatus::Failed(h.summary()));
            }
            _ => {}
        }
        // None yet, or the last failed five minutes ago or was lost (the server stopped while
        // it ran): take one now.
        if let Some(h) = job
            .hooks
            .iter_mut()
            .rev()
            .find(|h| h.hook == HookKind::Checkpoint && h.finished.is_none())
        {
            h.finished = Some(now);
            h.output
                .push_str("\n(no result: the server stopped while it ran)");
        }
        job.hooks.push(running(HookKind::Checkpoint, command, now));
        job.outcome = "taking a checkpoint before the install".into();
        if self.write(rec, job, LeaseChange::Keep, now).await? {
            self.queue_hook(rec.tenant, rec.id, HookKind::Checkpoint);
        }
        Ok(CheckpointStatus::Waiting)
    }

    pub(crate) fn queue_hook(&self, tenant: TenantId, job: i64, kind: HookKind) {
        crate::agents::lock(&self.hook_tasks).push(HookTask { tenant, job, kind });
    }

    /// The hooks asked for since the last call: the server's loop runs each in a task of its
    /// own ([`App::run_hook`]).
    pub fn take_hook_tasks(&self) -> Vec<HookTask> {
        std::mem::take(&mut *crate::agents::lock(&self.hook_tasks))
    }

    /// Run one hook and record its outcome on the job: a restore ends the rollback.
    pub async fn run_hook(&self, task: &HookTask) -> Result<()> {
        let Some(rec) = self.store.job(task.tenant, task.job).await? else {
            return Ok(());
        };
        let Some(command) = self.hooks.command(task.kind).cloned() else {
            return Ok(());
        };
        let fqdn = self
            .cached_estate(task.tenant)
            .await?
            .servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&rec.server))
            .and_then(|s| s.fqdn.clone())
            .unwrap_or_default();
        let tenant = self
            .store
            .tenant(task.tenant)
            .await?
            .map(|t| t.name)
            .unwrap_or_default();
        let mut cmd = tokio::process::Command::new(&command);
        cmd.env("PATCHWARD_HOOK", task.kind.as_str())
            .env("PATCHWARD_SERVER", &rec.server)
            .env("PATCHWARD_FQDN", fqdn)
            .env("PATCHWARD_JOB", rec.id.to_string())
            .env("PATCHWARD_CYCLE", rec.cycle.to_string())
            .env("PATCHWARD_TENANT", tenant)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        // Its own process group, so a timeout ends what it started too (a revert a wrapper
        // script launched must not go on while the job says the hook failed).
        #[cfg(unix)]
        cmd.process_group(0);
        let child = match cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        {
            Ok(c) => Some(c),
            Err(e) => {
                self.record_hook_end(
                    task,
                    None,
                    format!("could not run {}: {e}", command.display()),
                )
                .await?;
                return Ok(());
            }
        };
        let child = child.ok_or_else(|| AppError::internal("no hook process"))?;
        let pid = child.id();
        let (exit_code, output) =
            match tokio::time::timeout(self.hooks.timeout, child.wait_with_output()).await {
                Ok(Ok(out)) => {
                    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&out.stderr));
                    (out.status.code(), tail(&text))
                }
                Ok(Err(e)) => (None, format!("could not run {}: {e}", command.display())),
                Err(_) => {
                    // The wait was dropped, which killed the hook itself; end its group too.
                    #[cfg(unix)]
                    if let Some(pid) = pid {
                        let _ = tokio::process::Command::new("kill")
                            .args(["-KILL", "--", &format!("-{pid}")])
                            .status()
                            .await;
                    }
                    #[cfg(not(unix))]
                    let _ = pid;
                    (
                        None,
                        format!(
                            "killed after {} (with the processes it started)",
                            patchward_core::calendar::format_duration(self.hooks.lasts())
                        ),
                    )
                }
            };
        self.record_hook_end(task, exit_code, output).await
    }

    /// Record a hook's end on its job: a restore ends the rollback.
    async fn record_hook_end(
        &self,
        task: &HookTask,
        exit_code: Option<i32>,
        output: String,
    ) -> Result<()> {
        for _ in 0..super::steps::RETRIES {
            let Some(rec) = self.store.job(task.tenant, task.job).await? else {
                return Ok(());
            };
            let mut job: Job = decode("job", rec.id, &rec.body)?;
            let now = self.now();
            let Some(run) = job
                .hooks
                .iter_mut()
                .rev()
                .find(|h| h.hook == task.kind && h.finished.is_none())
            else {
                return Ok(()); // Recorded already (lost, then taken again).
            };
            run.finished = Some(now);
            run.exit_code = exit_code;
            run.output = output.clone();
            let run = run.clone();
            let mut lease = LeaseChange::Keep;
            let mut action = format!("job.hook.{}", task.kind.as_str());
            if task.kind == HookKind::Restore && job.state == JobState::RollingBack {
                if run.succeeded() {
                    job.end(
                        JobState::RolledBack,
                        now,
                        format!("rolled back: {}", run.summary()),
                    );
                    action = "job.rolled_back".into();
                } else {
                    job.end(
                        JobState::NeedsRemediation,
                        now,
                        format!("the rollback failed: {}", run.summary()),
                    );
                    action = "job.needs_remediation".into();
                }
                lease = LeaseChange::Release;
            } else if task.kind == HookKind::Checkpoint && !run.succeeded() {
                // Blocked until the next try (five minutes on), with the hook's word.
                if job.state == JobState::Waiting {
                    job.state = JobState::Blocked;
                }
                job.outcome = format!("blocked: checkpoint: {}", run.summary());
            }
            if !self.write(&rec, &job, lease, now).await? {
                continue;
            }
            if task.kind == HookKind::Checkpoint && run.succeeded() {
                // Its server's agent may be waiting for it.
                self.notify_work(task.tenant);
            }
            self.audit_job(
                &rec,
                &action,
                serde_json::json!({
                    "hook": task.kind.as_str(), "command": run.command, "exit_code": run.exit_code,
                    "output": run.output, "outcome": job.outcome,
                }),
            )
            .await?;
            return Ok(());
        }
        Err(AppError::new(
            ErrorCode::Conflict,
            format!("job {} kept changing while its hook ended", task.job),
        ))
    }
}

/// Where a job stands with the checkpoint its plan asks for.
pub(crate) enum CheckpointStatus {
    Ready,
    /// A snapshot plan, and this server has no checkpoint hook: the plan's owner takes the
    /// checkpoint (the job starts, saying so).
    ByHand(String),
    Waiting,
    Failed(String),
}

fn running(kind: HookKind, command: &std::path::Path, now: Timestamp) -> HookRun {
    HookRun {
        hook: kind,
        command: command.display().to_string(),
        started: now,
        finished: None,
        exit_code: None,
        output: String::new(),
    }
}

/// The last OUTPUT_LIMIT bytes, cut at a character boundary.
fn tail(text: &str) -> String {
    if text.len() <= OUTPUT_LIMIT {
        return text.to_string();
    }
    let mut start = text.len() - OUTPUT_LIMIT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_is_cut_to_its_end_on_a_character_boundary() {
        let long = "é".repeat(super::OUTPUT_LIMIT);
        let t = super::tail(&long);
        assert!(t.starts_with('…') && t.len() <= super::OUTPUT_LIMIT + 3);
        assert_eq!(super::tail("short"), "short");
    }
}
