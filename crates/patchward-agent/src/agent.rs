//! The protocol loop: enrol once, then check in, report the inventory when the server asks,
//! sleep the interval plus jitter, and stop for good when revoked.

use crate::AGENT_VERSION;
use crate::client::{AgentClient, ClientError};
use crate::host::{Download, Host};
use crate::state::{AgentState, StateError};
use jiff::Timestamp;
use patchward_proto::ErrorCode;
use patchward_proto::agent::{
    AGENT_PROTOCOL, CheckIn, Directive, EnrolReply, EnrolRequest, JobOffer, StepReply, StepReport,
};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("not enrolled: give an enrolment token (--enrol-token)")]
    NotEnrolled,
    #[error("the state file belongs to {0}; this agent was told to use {1}")]
    OtherServer(String, String),
    /// The server revoked this agent: it stops and must be enrolled again.
    #[error("this agent was revoked by the server: {0}")]
    Revoked(String),
}

/// How long a long-polling check-in asks to be held (the server caps it).
const LONG_POLL_ASK: u32 = 50;

/// What one check-in did.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub sent_inventory: bool,
    /// A job it ran: (job id, the job's state when the agent stopped working on it).
    pub job: Option<(i64, String)>,
    /// How long to wait before the next check-in (interval plus jitter).
    pub next: Duration,
    /// A message from the server the operator should see (upgrade).
    pub notice: Option<String>,
}

/// One agent: its host, its client and, once enrolled, its state.
pub struct Agent<H: Host> {
    pub host: H,
    client: AgentClient,
    /// Where the state file lives; `None` keeps it in memory only (simulated agents).
    state_dir: Option<PathBuf>,
    state: Option<AgentState>,
    /// A deterministic jitter source (simulations) or random (`None`).
    jitter_seed: Option<u64>,
    /// Hold check-ins open for work (long-polling) when the server offers it.
    long_poll: bool,
}

impl<H: Host> Agent<H> {
    /// An agent for `host`; loads its state from `state_dir` when it enrolled before.
    pub fn new(
        host: H,
        client: AgentClient,
        state_dir: Option<PathBuf>,
    ) -> Result<Self, AgentError> {
        let state = match &state_dir {
            Some(dir) => AgentState::load(dir)?,
            None => None,
        };
        if let Some(s) = &state
            && s.server_url.trim_end_matches('/') != client.server_url()
        {
            return Err(AgentError::OtherServer(
                s.server_url.clone(),
                client.server_url().to_string(),
            ));
        }
        Ok(Agent {
            host,
            client,
            state_dir,
            state,
            jitter_seed: None,
            long_poll: false,
        })
    }

    /// Long-poll: each check-in asks the server to hold it open until work comes (up to the
    /// server's `long_poll_seconds`), so a job starts as soon as its cycle does; the next
    /// check-in follows after the jitter only. Off, an agent learns of work at its next
    /// check-in (every minute).
    pub fn with_long_poll(mut self) -> Self {
        self.long_poll = true;
        self
    }

    /// Draw jitter from this seed instead of the system's randomness (reproducible runs).
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    pub fn state(&self) -> Option<&AgentState> {
        self.state.as_ref()
    }

    /// Talk to the control plane through another client (it moved, or its certificate
    /// changed); the agent keeps its identity, and its state file records the new address.
    pub fn set_client(&mut self, client: AgentClient) -> Result<(), AgentError> {
        if let Some(mut s) = self.state.clone() {
            s.server_url = client.server_url().to_string();
            self.save(&s)?;
            self.state = Some(s);
        }
        self.client = client;
        Ok(())
    }

    /// Enrol with `token` unless already enrolled. Returns whether it enrolled now.
    pub async fn ensure_enrolled(&mut self, token: Option<&str>) -> Result<bool, AgentError> {
        if self.state.is_some() {
            return Ok(false);
        }
        let token = token.ok_or(AgentError::NotEnrolled)?;
        let reply = self
            .client
            .enrol(&EnrolRequest {
                token: token.to_string(),
                hostname: self.host.hostname(),
                protocol: AGENT_PROTOCOL,
                agent_version: AGENT_VERSION.to_string(),
            })
            .await?;
        self.adopt(reply)?;
        Ok(true)
    }

    /// Take the identity an enrolment gave this host: its own, or its entry in a batch
    /// enrolment made for several hosts at once.
    pub fn adopt(&mut self, reply: EnrolReply) -> Result<(), AgentError> {
        let state = AgentState {
            server_url: self.client.server_url().to_string(),
            agent_id: reply.agent_id,
            server: reply.server,
            credential: reply.credential,
            protocol: reply.protocol,
            reported_digest: None,
        };
        self.save(&state)?;
        self.state = Some(state);
        Ok(())
    }

    fn save(&self, state: &AgentState) -> Result<(), AgentError> {
        if let Some(dir) = &self.state_dir {
            state.save(dir)?;
        }
        Ok(())
    }

    /// One check-in, and the inventory report when the server wants it.
    pub async fn tick(&mut self, now: Timestamp) -> Result<Tick, AgentError> {
        let mut state = self.state.clone().ok_or(AgentError::NotEnrolled)?;
        let report = self.host.inventory(now);
        let digest = report.digest();
        let reply = self
            .client
            .check_in(
                &state.credential,
                &CheckIn {
                    protocol: AGENT_PROTOCOL,
                    agent_version: AGENT_VERSION.to_string(),
                    inventory_digest: Some(digest.clone()),
                    wait_seconds: self.long_poll.then_some(LONG_POLL_ASK),
                },
            )
            .await
            .map_err(revoked)?;
        let notice = reply
            .directive
            .as_ref()
            .map(|Directive::Upgrade { message, .. }| message.clone());
        let mut sent = false;
        if reply.send_inventory {
            self.client
                .inventory(&state.credential, &report)
                .await
                .map_err(revoked)?;
            state.reported_digest = Some(digest);
            state.protocol = reply.protocol;
            self.save(&state)?;
            self.state = Some(state);
            sent = true;
        }
        let job = match &reply.job {
            Some(offer) => Some((offer.job_id, self.run_job(offer, now).await?)),
            None => None,
        };
        let jitter = u64::from(reply.jitter_seconds) * 1000;
        let spread = if jitter == 0 {
            0
        } else {
            self.random() % jitter
        };
        // A long poll that was honoured is the wait itself: check in again after the jitter.
        let interval = if self.long_poll && reply.long_poll_seconds > 0 {
            1
        } else {
            u64::from(reply.check_in_seconds.max(1))
        };
        Ok(Tick {
            sent_inventory: sent,
            job,
            next: Duration::from_secs(interval) + Duration::from_millis(spread),
            notice,
        })
    }

    /// Run a leased job's remaining steps, reporting each. Returns the job's state when the
    /// agent stopped (the host did not come back from its reboot: `rebooting`).
    async fn run_job(&mut self, offer: &JobOffer, now: Timestamp) -> Result<String, AgentError> {
        let credential = self
            .state
            .as_ref()
            .map(|s| s.credential.clone())
            .ok_or(AgentError::NotEnrolled)?;
        if offer.action == "rollback" {
            return self.run_rollback(offer, &credential, now).await;
        }
        if offer.action != "install" {
            // A newer server's work this agent does not know: leave it for an upgraded agent.
            return Ok(format!("unknown action {:?}", offer.action));
        }
        let done = |s: &str| offer.done.iter().any(|d| d == s);
        let report = |step: &str, status: &str, detail: String| StepReport {
            token: offer.token,
            step: step.into(),
            status: status.into(),
            detail,
            results: Vec::new(),
            inventory: None,
            events: Vec::new(),
            probes: Vec::new(),
            found: Vec::new(),
        };
        // The scan finds each KB as Windows Update identifies it; the install asks for exactly
        // those (after a restart, the server says what the scan found).
        let mut found = offer.found.clone();
        if !done("scan") {
            let r = match self.host.scan(&offer.updates, now) {
                Ok(refs) if refs.is_empty() => report(
                    "scan",
                    "failed",
                    format!(
                        "Windows Update offers none of {} to this server (not applicable, \
                         superseded or installed already)",
                        offer.updates.join(", ")
                    ),
                ),
                Ok(refs) => {
                    let missing: Vec<&str> = offer
                        .updates
                        .iter()
                        .filter(|u| !refs.iter().any(|f| f.kb.eq_ignore_ascii_case(u)))
                        .map(String::as_str)
                        .collect();
                    let mut r = report(
                        "scan",
                        "finished",
                        if missing.is_empty() {
                            format!("{} of {} found", refs.len(), offer.updates.len())
                        } else {
                            format!(
                                "{} of {} found; not offered: {}",
                                refs.len(),
                                offer.updates.len(),
                                missing.join(", ")
                            )
                        },
                    );
                    r.found = refs.clone();
                    found = refs;
                    r
                }
                Err(e) => report("scan", "failed", format!("the scan failed: {e}")),
            };
            let r = self.send(&credential, offer.job_id, r).await?;
            if !r.proceed {
                return Ok(r.state);
            }
        }
        if !done("download") {
            let what = format!("{} updates", offer.updates.len());
            let r = self
                .send(
                    &credential,
                    offer.job_id,
                    report("download", "started", what.clone()),
                )
                .await?;
            if !r.proceed {
                return Ok(r.state);
            }
            // Progress is reported at each quarter, and at least every third of the lease
            // (which each report extends), however slow the download.
            let every = heartbeat_interval(offer.lease_seconds);
            let (mut last, mut last_quarter) = (std::time::Instant::now(), 0u8);
            loop {
                match self.host.download(&offer.updates, now) {
                    Download::Done => break,
                    Download::Failed(hresult) => {
                        let r = self
                            .send(
                                &credential,
                                offer.job_id,
                                report(
                                    "download",
                                    "failed",
                                    format!("download failed with {hresult}"),
                                ),
                            )
                            .await?;
                        return Ok(r.state);
                    }
                    Download::InProgress { percent, poll } => {
                        if percent / 25 > last_quarter || last.elapsed() >= every {
                            let r = self
                                .send(
                                    &credential,
                                    offer.job_id,
                                    report("download", "started", format!("{what}: {percent}%")),
                                )
                                .await?;
                            if !r.proceed {
                                return Ok(r.state);
                            }
                            (last, last_quarter) = (std::time::Instant::now(), percent / 25);
                        }
                        tokio::time::sleep(poll.min(every)).await;
                    }
                }
            }
            let r = self
                .send(
                    &credential,
                    offer.job_id,
                    report("download", "finished", what),
                )
                .await?;
            if !r.proceed {
                return Ok(r.state);
            }
        }
        if !done("install") {
            self.send(
                &credential,
                offer.job_id,
                report("install", "started", offer.updates.join(", ")),
            )
            .await?;
            // Installing a cumulative update takes minutes to most of an hour: a heartbeat
            // keeps the lease while the host works.
            let beat = self.heartbeat(&credential, offer, "install");
            let results =
                self.host
                    .install(&offer.updates, &found, offer.expected_build.as_deref(), now);
            beat.stop().await;
            let ok = results.iter().all(|r| r.installed);
            let mut r = report(
                "install",
                if ok { "finished" } else { "failed" },
                format!(
                    "{} of {} installed",
                    results.iter().filter(|r| r.installed).count(),
                    results.len()
                ),
            );
            r.results = results;
            let reply = self.send(&credential, offer.job_id, r).await?;
            if !reply.proceed {
                return Ok(reply.state);
            }
        }
        if !done("reboot") {
            let needed = self.host.reboot_pending() || offer.reboot == "always";
            if needed && offer.reboot != "never" {
                self.send(
                    &credential,
                    offer.job_id,
                    report("reboot", "started", "restarting".into()),
                )
                .await?;
                if !self.host.reboot(now) {
                    return Ok("rebooting".into());
                }
                let mut r = report("reboot", "finished", "back".into());
                r.inventory = Some(self.host.inventory(now));
                let reply = self.send(&credential, offer.job_id, r).await?;
                if !reply.proceed {
                    return Ok(reply.state);
                }
            } else {
                let reply = self
                    .send(
                        &credential,
                        offer.job_id,
                        report(
                            "reboot",
                            "finished",
                            if needed {
                                "not restarted: the reboot policy is never".into()
                            } else {
                                "no reboot needed".into()
                            },
                        ),
                    )
                    .await?;
                if !reply.proceed {
                    return Ok(reply.state);
                }
            }
        }
        let mut r = report("verify", "finished", "checked".into());
        // Probes first: they may wait for applications to start; the inventory is then fresh.
        if !offer.probes.is_empty() {
            let grace = std::time::Duration::from_secs(u64::from(offer.probe_grace_seconds));
            r.probes = match crate::probe::Prober::new() {
                Ok(prober) => prober.run(&offer.probes, grace, &mut self.host).await,
                Err(e) => offer
                    .probes
                    .iter()
                    .map(|p| patchward_proto::agent::ProbeResult {
                        probe: p.clone(),
                        passed: false,
                        detail: e.clone(),
                    })
                    .collect(),
            };
        }
        r.inventory = Some(self.host.inventory(now));
        // Events since the lease began (the server keeps only those after the job started).
        r.events = self
            .host
            .critical_events(now - jiff::SignedDuration::from_hours(24));
        let reply = self.send(&credential, offer.job_id, r).await?;
        Ok(reply.state)
    }

    /// Check in until `stop` resolves (Ctrl-C, the service manager's stop), telling `say`
    /// what happened; `once`: a single check-in. A failed check-in (the server restarting,
    /// the network) is tried again a minute later; a revoked agent stops with that error.
    pub async fn run(
        &mut self,
        once: bool,
        stop: impl std::future::Future<Output = ()>,
        say: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), AgentError> {
        let mut stop = std::pin::pin!(stop);
        loop {
            let ticked = tokio::select! {
                t = self.tick(Timestamp::now()) => t,
                _ = &mut stop => return Ok(()),
            };
            let next = match ticked {
                Ok(t) => {
                    if let Some(n) = &t.notice {
                        say(&format!("server says: {n}"));
                    }
                    if t.sent_inventory {
                        say("inventory reported");
                    }
                    if let Some((job, state)) = &t.job {
                        say(&format!("job {job}: {state}"));
                    }
                    t.next
                }
                Err(e @ AgentError::Revoked(_)) => return Err(e),
                Err(e) if once => return Err(e),
                Err(e) => {
                    say(&format!("check-in failed, retrying in a minute: {e}"));
                    Duration::from_secs(60)
                }
            };
            if once {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = &mut stop => return Ok(()),
            }
        }
    }

    /// A rollback: uninstall the updates, reboot when needed, report the host as it is then
    /// (the server checks the updates are gone and no reboot is pending).
    async fn run_rollback(
        &mut self,
        offer: &JobOffer,
        credential: &str,
        now: Timestamp,
    ) -> Result<String, AgentError> {
        let done = |s: &str| offer.done.iter().any(|d| d == s);
        let report = |step: &str, status: &str, detail: String| StepReport {
            token: offer.token,
            step: step.into(),
            status: status.into(),
            detail,
            results: Vec::new(),
            inventory: None,
            events: Vec::new(),
            probes: Vec::new(),
            found: Vec::new(),
        };
        if !done("rollback") {
            self.send(
                credential,
                offer.job_id,
                report("rollback", "started", offer.updates.join(", ")),
            )
            .await?;
            let beat = self.heartbeat(credential, offer, "rollback");
            let results = self
                .host
                .uninstall(&offer.updates, offer.expected_build.as_deref(), now);
            beat.stop().await;
            let ok = results.iter().all(|r| !r.installed);
            let mut r = report(
                "rollback",
                if ok { "finished" } else { "failed" },
                format!(
                    "{} of {} removed",
                    results.iter().filter(|r| !r.installed).count(),
                    results.len()
                ),
            );
            r.results = results;
            let reply = self.send(credential, offer.job_id, r).await?;
            if !reply.proceed {
                return Ok(reply.state);
            }
        }
        if !done("reboot") && self.host.reboot_pending() {
            self.send(
                credential,
                offer.job_id,
                report("reboot", "started", "restarting".into()),
            )
            .await?;
            if !self.host.reboot(now) {
                return Ok("rebooting".into());
            }
            let reply = self
                .send(
                    credential,
                    offer.job_id,
                    report("reboot", "finished", "back".into()),
                )
                .await?;
            if !reply.proceed {
                return Ok(reply.state);
            }
        }
        let mut r = report("verify", "finished", "checked".into());
        r.inventory = Some(self.host.inventory(now));
        let reply = self.send(credential, offer.job_id, r).await?;
        Ok(reply.state)
    }

    /// Report `step` as still running every third of the lease until stopped: the host's
    /// call blocks this task, the heartbeat runs on another of the runtime's threads.
    fn heartbeat(&self, credential: &str, offer: &JobOffer, step: &'static str) -> Heartbeat {
        let client = self.client.clone();
        let credential = credential.to_string();
        let (job, token) = (offer.job_id, offer.token);
        let every = heartbeat_interval(offer.lease_seconds);
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.notified() => return,
                }
                let r = StepReport {
                    token,
                    step: step.into(),
                    status: "started".into(),
                    detail: format!(
                        "still running after {} min",
                        started.elapsed().as_secs() / 60
                    ),
                    results: Vec::new(),
                    inventory: None,
                    events: Vec::new(),
                    probes: Vec::new(),
                    found: Vec::new(),
                };
                // A report under way is let finish: the step's end must come after it.
                if let Err(e) = client.step(&credential, job, &r).await {
                    tracing::warn!(error = %e, job, step, "heartbeat not delivered");
                }
            }
        });
        Heartbeat { stop, task }
    }

    async fn send(
        &self,
        credential: &str,
        job: i64,
        r: StepReport,
    ) -> Result<StepReply, AgentError> {
        self.client.step(credential, job, &r).await.map_err(revoked)
    }

    fn random(&mut self) -> u64 {
        match &mut self.jitter_seed {
            Some(s) => crate::simulated::splitmix(s),
            None => {
                let mut b = [0u8; 8];
                let _ = getrandom::fill(&mut b);
                u64::from_le_bytes(b)
            }
        }
    }
}

/// A running heartbeat ([`Agent::heartbeat`]).
struct Heartbeat {
    stop: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    /// Stop it, after the report it may be sending has been answered.
    async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

/// A third of the lease (each report extends it), at least a second.
fn heartbeat_interval(lease_seconds: u32) -> Duration {
    Duration::from_secs(u64::from(lease_seconds / 3).max(1))
}

fn revoked(e: ClientError) -> AgentError {
    match e {
        ClientError::Refused(api) if api.code == ErrorCode::AgentRevoked => {
            AgentError::Revoked(api.message)
        }
        other => AgentError::Client(other),
    }
}
