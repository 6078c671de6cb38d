//! Agents (C7): enrolment tokens, enrolment, check-ins and inventory reports.
//!
//! - An administrator creates an enrolment token for a tenant: one use by default, expiring
//!   (24 hours by default), only its SHA-256 stored. An agent trades it for its own credential
//!   (`pwa_...`, SHA-256 stored); enrolling a host name again revokes its earlier agent.
//! - Failed enrolments are rate-limited per source address ([`ENROL_FAILURES_PER_MINUTE`]).
//! - A check-in authenticates the credential against the store every time, so a revocation
//!   takes effect at the agent's next call. Its "last seen" is coalesced in memory and written
//!   for many agents at once ([`App::flush_heartbeats`]): a check-in writes nothing itself.
//! - An inventory report updates the agent's server: OS, build, KBs, pending reboot and last
//!   boot are the agent's truth; roles it detects are added; owner, tier, windows and every
//!   other inventory fact are kept. The agent can only write its own enrolled server.

use crate::access::secret_hash;
use crate::{Actor, App, AppError, Result};
use jiff::{SignedDuration, Timestamp};
use patchward_core::OsBuild;
use patchward_core::access::{Permission, Role as UserRole};
use patchward_core::catalog::Kb;
use patchward_core::execution::HostSnapshot;
use patchward_core::inventory::{Role, Server};
use patchward_core::product::Installation;
use patchward_proto::ErrorCode;
use patchward_proto::agent::{
    AGENT_CREDENTIAL_PREFIX, AGENT_PROTOCOL, AGENT_PROTOCOL_MIN, AgentView, CheckIn, CheckInReply,
    Directive, ENROL_TOKEN_PREFIX, EnrolBatchReply, EnrolBatchRequest, EnrolReply, EnrolRequest,
    EnrolTokenView, InventoryReport, MAX_ENROL_BATCH, NewEnrolToken as NewEnrolTokenRequest,
};
use patchward_store::{
    AgentRecord, ControlStore, EnrolTokenRecord, NewAgent, NewEnrolToken, TenantId, TokenRefusal,
};
use std::collections::{BTreeSet, HashMap, HashSet};

/// How often agents check in, and the random spread added to each interval.
pub const CHECK_IN_SECONDS: u32 = 60;
pub const JITTER_SECONDS: u32 = 15;
/// The longest a check-in is held open waiting for work (below the agent's 60 s timeout).
pub const LONG_POLL_SECONDS: u32 = 50;
/// An agent that missed this many check-ins is shown as silent.
pub const SILENT_AFTER_MISSED: i64 = 3;
/// Failed enrolments one source address may make per minute before it is refused for the
/// rest of that minute.
pub const ENROL_FAILURES_PER_MINUTE: u32 = 10;
pub const ENROL_TOKEN_HOURS_DEFAULT: u32 = 24;
pub const ENROL_TOKEN_HOURS_MAX: u32 = 720;
pub const ENROL_TOKEN_USES_MAX: u32 = 100_000;
/// The largest inventory report taken (KBs, services) — larger ones are refused, not cut.
const MAX_LIST: usize = 20_000;

/// Per-replica memory of agents: coalesced "last seen" times and the enrolment rate limit.
/// Losing it (a restart) loses at most one flush interval of "last seen" and resets the
/// limit; no job or inventory state lives here.
#[derive(Default)]
pub struct AgentMemory {
    heartbeats: std::sync::Mutex<HashMap<i64, Timestamp>>,
    failures: std::sync::Mutex<HashMap<String, (Timestamp, u32)>>,
    /// Per tenant: bumped when work may have come, waking long-polling check-ins.
    work: std::sync::Mutex<HashMap<TenantId, tokio::sync::watch::Sender<u64>>>,
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The actor an agent acts as in the audit log (never a user: it holds no role beyond its
/// own server).
fn agent_actor(agent: &AgentRecord) -> Actor {
    Actor {
        user_id: None,
        name: format!("agent:{}", agent.server),
        role: UserRole::Viewer,
        tenant: Some(agent.tenant),
    }
}

/// A host name as Windows allows it (a computer name, `COMPUTERNAME`): 1–63 letters,
/// digits, hyphens and underscores (Windows warns about underscores but takes them, and
/// estates have such servers), not starting or ending with a hyphen.
fn check_hostname(name: &str) -> Result<String> {
    let n = name.trim();
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !n.starts_with('-')
        && !n.ends_with('-');
    if ok {
        Ok(n.to_string())
    } else {
        Err(AppError::field(
            "hostname",
            format!(
                "not a host name: {:?} (1 to 63 letters, digits, hyphens and underscores)",
                n.chars().take(70).collect::<String>()
            ),
        ))
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

impl<S: ControlStore> App<S> {
    // ---- Enrolment tokens (administrators) ----

    /// A new enrolment token for `tenant`. Returns the record and the token, shown once.
    pub async fn create_enrol_token(
        &self,
        actor: &Actor,
        tenant: TenantId,
        req: &NewEnrolTokenRequest,
    ) -> Result<(EnrolTokenRecord, String)> {
        actor.require(Permission::Administer)?;
        let uses = req.uses.unwrap_or(1);
        if !(1..=ENROL_TOKEN_USES_MAX).contains(&uses) {
            return Err(AppError::field(
                "uses",
                format!("a token allows 1 to {ENROL_TOKEN_USES_MAX} enrolments"),
            ));
        }
        let hours = req.expires_hours.unwrap_or(ENROL_TOKEN_HOURS_DEFAULT);
        if !(1..=ENROL_TOKEN_HOURS_MAX).contains(&hours) {
            return Err(AppError::field(
                "expires_hours",
                format!("a token lasts 1 to {ENROL_TOKEN_HOURS_MAX} hours"),
            ));
        }
        let label = req.label.as_deref().unwrap_or("agents").trim();
        if label.len() > 200 {
            return Err(AppError::field(
                "label",
                "a label has at most 200 characters",
            ));
        }
        let secret = format!("{ENROL_TOKEN_PREFIX}{}", crate::access::new_secret()?);
        let now = self.now();
        let rec = self
            .store
            .create_enrol_token(
                &NewEnrolToken {
                    tenant,
                    hash: &secret_hash(&secret),
                    label,
                    uses: i64::from(uses),
                    created_by: &actor.name,
                    expires_at: now + SignedDuration::from_hours(i64::from(hours)),
                },
                now,
            )
            .await?;
        self.record(
            actor,
            Some(tenant),
            "enrol_token.create",
            &format!("enrol_token:{}", rec.id),
            serde_json::json!({"label": label, "uses": uses, "expires_hours": hours}),
        )
        .await?;
        Ok((rec, secret))
    }

    pub async fn enrol_tokens(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<Vec<EnrolTokenRecord>> {
        actor.require(Permission::Administer)?;
        Ok(self.store.enrol_tokens(tenant).await?)
    }

    pub async fn revoke_enrol_token(&self, actor: &Actor, tenant: TenantId, id: i64) -> Result<()> {
        actor.require(Permission::Administer)?;
        if !self
            .store
            .revoke_enrol_token(tenant, id, self.now())
            .await?
        {
            return Err(AppError::not_found(format!("usable enrolment token {id}")));
        }
        self.record(
            actor,
            Some(tenant),
            "enrol_token.revoke",
            &format!("enrol_token:{id}"),
            serde_json::json!({}),
        )
        .await?;
        Ok(())
    }

    pub async fn enrol_token_view(
        &self,
        t: &EnrolTokenRecord,
        secret: Option<String>,
    ) -> Result<EnrolTokenView> {
        let tenant = self
            .store
            .tenant(t.tenant)
            .await?
            .map(|t| t.name)
            .unwrap_or_default();
        let status = match t.refusal(self.now()) {
            None => "usable",
            Some(TokenRefusal::UsedUp) => "used",
            Some(TokenRefusal::Expired) => "expired",
            Some(TokenRefusal::Revoked | TokenRefusal::Unknown) => "revoked",
        };
        Ok(EnrolTokenView {
            id: t.id,
            tenant,
            label: t.label.clone(),
            uses_left: u32::try_from(t.uses_left.max(0)).unwrap_or(u32::MAX),
            created_by: t.created_by.clone(),
            created_at: rfc3339(t.created_at),
            expires_at: rfc3339(t.expires_at),
            status: status.into(),
            token: secret,
        })
    }

    // ---- The agent's side ----

    /// Enrol an agent with a token. `source` is the caller's address (for the rate limit).
    pub async fn enrol(&self, req: &EnrolRequest, source: &str) -> Result<EnrolReply> {
        let batch = EnrolBatchRequest {
            token: req.token.clone(),
            hostnames: vec![req.hostname.clone()],
            protocol: req.protocol,
            agent_version: req.agent_version.clone(),
        };
        let mut reply = self.enrol_batch(&batch, source).await?;
        reply
            .agents
            .pop()
            .ok_or_else(|| AppError::internal("an enrolment of one host enrolled none"))
    }

    /// Enrol several hosts with one use of a token: what a provisioning tool (or `simulate`)
    /// sends for a fleet it brings up at once. All or nothing.
    pub async fn enrol_batch(
        &self,
        req: &EnrolBatchRequest,
        source: &str,
    ) -> Result<EnrolBatchReply> {
        let now = self.now();
        self.check_enrol_rate(source, now)?;
        let outcome = self.try_enrol(req, now).await;
        if matches!(&outcome, Err(e) if e.code == ErrorCode::Unauthenticated || e.code == ErrorCode::InvalidField)
        {
            self.count_enrol_failure(source, now);
        }
        Ok(EnrolBatchReply { agents: outcome? })
    }

    async fn try_enrol(&self, req: &EnrolBatchRequest, now: Timestamp) -> Result<Vec<EnrolReply>> {
        if req.hostnames.is_empty() || req.hostnames.len() > MAX_ENROL_BATCH {
            return Err(AppError::field(
                "hostnames",
                format!("1 to {MAX_ENROL_BATCH} host names in one enrolment"),
            ));
        }
        let mut names = Vec::with_capacity(req.hostnames.len());
        let mut seen = HashSet::with_capacity(req.hostnames.len());
        for (i, name) in req.hostnames.iter().enumerate() {
            let field = if req.hostnames.len() == 1 {
                "hostname".to_string()
            } else {
                format!("hostnames[{i}]")
            };
            let name = check_hostname(name).map_err(|e| AppError::field(&field, e.message))?;
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(AppError::field(
                    &field,
                    format!("{name} is named twice in one enrolment"),
                ));
            }
            names.push(name);
        }
        if req.protocol < AGENT_PROTOCOL_MIN {
            return Err(AppError::field(
                "protocol",
                format!(
                    "agent protocol {} is older than this server serves ({AGENT_PROTOCOL_MIN} \
                     to {AGENT_PROTOCOL}): upgrade the agent",
                    req.protocol
                ),
            ));
        }
        let version = req.agent_version.trim();
        if version.is_empty() || version.len() > 64 {
            return Err(AppError::field(
                "agent_version",
                "the agent's version: 1 to 64 characters",
            ));
        }
        let protocol = req.protocol.min(AGENT_PROTOCOL);
        let mut credentials = Vec::with_capacity(names.len());
        for _ in &names {
            let credential = format!("{AGENT_CREDENTIAL_PREFIX}{}", crate::access::new_secret()?);
            let hash = secret_hash(&credential);
            credentials.push((credential, hash));
        }
        let new: Vec<NewAgent<'_>> = names
            .iter()
            .zip(&credentials)
            .map(|(server, (_, hash))| NewAgent {
                server,
                credential_hash: hash,
                agent_version: version,
                protocol: i64::from(protocol),
            })
            .collect();
        let outcome = self
            .store
            .enrol_agents(&secret_hash(req.token.trim()), &new, now)
            .await?;
        let enrolled = outcome.map_err(|why| {
            AppError::unauthenticated(match why {
                TokenRefusal::Unknown => "the enrolment token is unknown",
                TokenRefusal::Revoked => "the enrolment token was revoked",
                TokenRefusal::Expired => "the enrolment token has expired",
                TokenRefusal::UsedUp => "the enrolment token has been used",
            })
        })?;
        let mut replies = Vec::with_capacity(enrolled.len());
        for (enrolment, (credential, _)) in enrolled.into_iter().zip(credentials) {
            let agent = &enrolment.agent;
            self.record(
                &agent_actor(agent),
                Some(agent.tenant),
                "agent.enrol",
                &format!("agent:{}", agent.id),
                serde_json::json!({
                    "server": agent.server, "agent_version": version, "protocol": protocol,
                    "enrol_token": enrolment.token, "replaced": enrolment.replaced,
                }),
            )
            .await?;
            replies.push(EnrolReply {
                agent_id: agent.id,
                server: agent.server.clone(),
                credential,
                protocol,
                check_in_seconds: CHECK_IN_SECONDS,
                jitter_seconds: JITTER_SECONDS,
            });
        }
        Ok(replies)
    }

    fn check_enrol_rate(&self, source: &str, now: Timestamp) -> Result<()> {
        let failures = lock(&self.agents.failures);
        match failures.get(source) {
            Some((start, n))
                if *n >= ENROL_FAILURES_PER_MINUTE
                    && now < *start + SignedDuration::from_mins(1) =>
            {
                Err(AppError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "{ENROL_FAILURES_PER_MINUTE} failed enrolments from {source} within a \
                         minute: wait a minute and try again"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn count_enrol_failure(&self, source: &str, now: Timestamp) {
        let mut failures = lock(&self.agents.failures);
        let minute = SignedDuration::from_mins(1);
        if failures.len() > 10_000 {
            failures.retain(|_, (start, _)| now < *start + minute);
        }
        let entry = failures.entry(source.to_string()).or_insert((now, 0));
        if now >= entry.0 + minute {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// The agent a credential stands for: refused when unknown, and with its own code when
    /// revoked (the agent stops instead of retrying). Read from the store on every call.
    pub async fn authenticate_agent(&self, credential: &str) -> Result<AgentRecord> {
        let agent = self
            .store
            .agent_by_credential(&secret_hash(credential.trim()))
            .await?
            .ok_or_else(|| AppError::unauthenticated("the agent credential is unknown"))?;
        if agent.revoked_at.is_some() {
            return Err(AppError::new(
                ErrorCode::AgentRevoked,
                format!(
                    "agent {} of {} was revoked; enrol it again",
                    agent.id, agent.server
                ),
            ));
        }
        Ok(agent)
    }

    /// A check-in: remembers when the agent was seen and says what it should do next,
    /// including the job of its server when its ring may start and its gates pass now.
    pub async fn check_in(&self, agent: &AgentRecord, req: &CheckIn) -> Result<CheckInReply> {
        let mut reply = self.check_in_reply(agent, req);
        if reply.directive.is_some() || reply.send_inventory {
            return Ok(reply);
        }
        // Subscribed before looking, so work that comes meanwhile is not missed.
        let mut work = self.work_signal(agent.tenant);
        reply.job = self.offer_job(agent).await?;
        let wait = req.wait_seconds.unwrap_or(0).min(LONG_POLL_SECONDS);
        if reply.job.is_some() || wait == 0 {
            return Ok(reply);
        }
        let mut hold = std::time::Duration::from_secs(u64::from(wait));
        if let Some(slot) = self.next_slot(agent).await? {
            let until = self.now().duration_until(slot).max(SignedDuration::ZERO);
            hold = hold.min(std::time::Duration::try_from(until).unwrap_or(hold));
        }
        tokio::select! {
            _ = work.changed() => {}
            _ = tokio::time::sleep(hold) => {}
        }
        // Seen at the end of the wait too: a long poll is a check-in held open.
        let _ = self.check_in_reply(agent, req);
        reply.job = self.offer_job(agent).await?;
        Ok(reply)
    }

    /// Wakes long-polling agents of `tenant`: work may have come (a cycle started or resumed,
    /// a rollback was asked for, a checkpoint was taken).
    pub(crate) fn notify_work(&self, tenant: TenantId) {
        let mut signals = lock(&self.agents.work);
        let tx = signals
            .entry(tenant)
            .or_insert_with(|| tokio::sync::watch::channel(0u64).0);
        tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn work_signal(&self, tenant: TenantId) -> tokio::sync::watch::Receiver<u64> {
        let mut signals = lock(&self.agents.work);
        signals
            .entry(tenant)
            .or_insert_with(|| tokio::sync::watch::channel(0u64).0)
            .subscribe()
    }

    /// The soonest slot start still to come among the server's open jobs.
    async fn next_slot(&self, agent: &AgentRecord) -> Result<Option<Timestamp>> {
        let now = self.now();
        let mut next: Option<Timestamp> = None;
        for rec in self
            .store
            .open_jobs_for_server(agent.tenant, &agent.server)
            .await?
        {
            let job: patchward_core::execution::Job =
                crate::workflow::decode("job", rec.id, &rec.body)?;
            if job.slot_start > now {
                next = Some(next.map_or(job.slot_start, |n| n.min(job.slot_start)));
            }
        }
        Ok(next)
    }

    fn check_in_reply(&self, agent: &AgentRecord, req: &CheckIn) -> CheckInReply {
        let now = self.now();
        lock(&self.agents.heartbeats)
            .entry(agent.id)
            .and_modify(|t| *t = (*t).max(now))
            .or_insert(now);
        let directive = (req.protocol < AGENT_PROTOCOL_MIN).then(|| Directive::Upgrade {
            minimum_protocol: AGENT_PROTOCOL_MIN,
            message: format!(
                "this server serves agent protocols {AGENT_PROTOCOL_MIN} to {AGENT_PROTOCOL}; \
                 agent {} speaks {}: upgrade it to receive work",
                req.agent_version, req.protocol
            ),
        });
        let send_inventory = directive.is_none()
            && match (&req.inventory_digest, &agent.inventory_digest) {
                (Some(sent), Some(stored)) => sent != stored,
                (_, None) => true,
                (None, Some(_)) => false,
            };
        CheckInReply {
            protocol: req.protocol.clamp(AGENT_PROTOCOL_MIN, AGENT_PROTOCOL),
            check_in_seconds: CHECK_IN_SECONDS,
            jitter_seconds: JITTER_SECONDS,
            long_poll_seconds: LONG_POLL_SECONDS,
            send_inventory,
            directive,
            job: None,
        }
    }

    /// Write the coalesced "last seen" times (the server calls this every second, and when
    /// it stops). Returns how many agents were written.
    pub async fn flush_heartbeats(&self) -> Result<usize> {
        let seen: Vec<(i64, Timestamp)> = lock(&self.agents.heartbeats).drain().collect();
        if seen.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.store.touch_agents(&seen).await {
            // Put them back (newer ones win) so the next flush tries again.
            let mut hb = lock(&self.agents.heartbeats);
            for (id, at) in seen {
                hb.entry(id).and_modify(|t| *t = (*t).max(at)).or_insert(at);
            }
            return Err(e.into());
        }
        Ok(seen.len())
    }

    /// An inventory report: updates the agent's own server (created when new) and keeps the
    /// report for verification. Returns the server as stored.
    pub async fn report_inventory(
        &self,
        agent: &AgentRecord,
        report: &InventoryReport,
    ) -> Result<()> {
        let now = self.now();
        let server = server_from_report(&agent.server, report, now)?;
        let json = serde_json::to_string(report).map_err(|e| AppError::internal(e.to_string()))?;
        let summary = serde_json::json!({
            "build": server.build.map(|b| b.to_string()),
            "kbs": server.installed_kbs.len(),
            "pending_reboot": server.pending_reboot,
        });
        self.store
            .merge_servers(agent.tenant, vec![server], None, from_agent, now)
            .await?;
        self.store
            .record_agent_report(
                agent.id,
                &report.digest(),
                &json,
                &agent.agent_version,
                i64::from(report.protocol.clamp(AGENT_PROTOCOL_MIN, AGENT_PROTOCOL)),
                now,
            )
            .await?;
        self.record(
            &agent_actor(agent),
            Some(agent.tenant),
            "agent.inventory",
            &format!("server:{}", agent.server),
            summary,
        )
        .await?;
        Ok(())
    }

    // ---- Administrators' view ----

    pub async fn agents(&self, actor: &Actor, tenant: TenantId) -> Result<Vec<AgentView>> {
        actor.require(Permission::Read)?;
        let now = self.now();
        Ok(self
            .store
            .agents(tenant)
            .await?
            .iter()
            .map(|a| agent_view(a, now))
            .collect())
    }

    /// Revoke an agent: its next call is refused (`agent_revoked`).
    pub async fn revoke_agent(
        &self,
        actor: &Actor,
        tenant: TenantId,
        id: i64,
    ) -> Result<AgentView> {
        actor.require(Permission::Administer)?;
        let now = self.now();
        if !self.store.revoke_agent(tenant, id, now).await? {
            return Err(AppError::not_found(format!("active agent {id}")));
        }
        let agent = self
            .store
            .agent(tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("agent {id}")))?;
        self.record(
            actor,
            Some(tenant),
            "agent.revoke",
            &format!("agent:{id}"),
            serde_json::json!({"server": agent.server}),
        )
        .await?;
        Ok(agent_view(&agent, now))
    }
}

pub fn agent_view(a: &AgentRecord, now: Timestamp) -> AgentView {
    let silent_after = SignedDuration::from_secs(
        i64::from(CHECK_IN_SECONDS + JITTER_SECONDS) * SILENT_AFTER_MISSED,
    );
    let status = if a.revoked_at.is_some() {
        "revoked"
    } else if now.duration_since(a.last_seen) > silent_after {
        "silent"
    } else {
        "active"
    };
    AgentView {
        id: a.id,
        server: a.server.clone(),
        agent_version: a.agent_version.clone(),
        protocol: u32::try_from(a.protocol).unwrap_or(0),
        enrolled_at: rfc3339(a.enrolled_at),
        last_seen: rfc3339(a.last_seen),
        status: status.into(),
        revoked_at: a.revoked_at.map(rfc3339),
        reported_at: a.reported_at.map(rfc3339),
    }
}

/// The stored server updated with what its agent found: the agent is the truth about OS,
/// build, KBs, pending reboot and last boot; roles it detects are added to those declared.
fn from_agent(stored: Server, agent: Server) -> Server {
    let mut roles = stored.roles.clone();
    for r in &agent.roles {
        if !roles.contains(r) {
            roles.push(r.clone());
        }
    }
    Server {
        roles,
        installed_kbs: agent.installed_kbs.clone(),
        pending_reboot: agent.pending_reboot.clone(),
        ..stored.updated_with(agent)
    }
}

/// Read an inventory report into a server, naming the field at fault.
pub fn server_from_report(name: &str, r: &InventoryReport, now: Timestamp) -> Result<Server> {
    let os = r.os.trim();
    if os.is_empty() || os.len() > 200 {
        return Err(AppError::field("os", "the OS caption: 1 to 200 characters"));
    }
    let build: OsBuild = r.build.trim().parse().map_err(|_| {
        AppError::field(
            "build",
            format!("not an OS build like 10.0.20348.2582: {:?}", clip(&r.build)),
        )
    })?;
    if build.ubr.is_none() {
        return Err(AppError::field(
            "build",
            format!("the build has no revision (UBR): {:?}", clip(&r.build)),
        ));
    }
    let release = patchward_feeds::inventory_csv::release_of(os, Some(&build))
        .map_err(|e| AppError::field("build", e))?
        .ok_or_else(|| {
            AppError::field(
                "os",
                format!("not a Windows Server release: {:?} {}", clip(os), build),
            )
        })?;
    let installation = match r.installation.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("nano") => {
            return Err(AppError::field(
                "installation",
                "Nano Server is not serviced through Windows Update",
            ));
        }
        Some(s) => Some(Installation::parse(s).ok_or_else(|| {
            AppError::field(
                "installation",
                format!("expected full, core: {:?}", clip(s)),
            )
        })?),
    };
    if r.installed_kbs.len() > MAX_LIST || r.services.len() > MAX_LIST || r.roles.len() > MAX_LIST {
        return Err(AppError::bad_request(format!(
            "the report lists more than {MAX_LIST} KBs, services or roles"
        )));
    }
    let mut kbs = BTreeSet::new();
    for (i, k) in r.installed_kbs.iter().enumerate() {
        let kb: Kb = k.trim().parse().map_err(|_| {
            AppError::field(
                &format!("installed_kbs[{i}]"),
                format!("not a KB number: {:?}", clip(k)),
            )
        })?;
        kbs.insert(kb);
    }
    let mut roles: Vec<Role> = Vec::new();
    for name in &r.roles {
        let role = Role::from_windows_feature(name).or_else(|| match Role::parse(name) {
            Role::Other(_) => None,
            known => Some(known),
        });
        if let Some(role) = role
            && !roles.contains(&role)
        {
            roles.push(role);
        }
    }
    let last_boot = match r.last_boot.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<Timestamp>().map_err(|_| {
            AppError::field(
                "last_boot",
                format!("not an RFC 3339 instant: {:?}", clip(s)),
            )
        })?),
    };
    // A host whose clock is far ahead still reports its updates; its boot time is not kept
    // (verification compares boot times, and one from the future would pass any check).
    let last_boot = last_boot.filter(|b| *b <= now + SignedDuration::from_hours(24));
    let fqdn = r
        .fqdn
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string);
    if let Some(f) = &fqdn {
        let ok = f.len() <= 253
            && f.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(AppError::field(
                "fqdn",
                format!("not a DNS name: {:?}", clip(f)),
            ));
        }
    }
    const MODES: [&str; 6] = [
        "auto",
        "auto_delayed",
        "manual",
        "disabled",
        "boot",
        "system",
    ];
    const STATES: [&str; 8] = [
        "running",
        "stopped",
        "start_pending",
        "stop_pending",
        "paused",
        "pause_pending",
        "continue_pending",
        "unknown",
    ];
    for (i, sv) in r.services.iter().enumerate() {
        if sv.name.trim().is_empty() || sv.name.len() > 256 {
            return Err(AppError::field(
                &format!("services[{i}].name"),
                "a service name: 1 to 256 characters",
            ));
        }
        if !MODES.contains(&sv.start_mode.as_str()) {
            return Err(AppError::field(
                &format!("services[{i}].start_mode"),
                format!(
                    "{:?}: expected one of {}",
                    clip(&sv.start_mode),
                    MODES.join(", ")
                ),
            ));
        }
        if !STATES.contains(&sv.state.as_str()) {
            return Err(AppError::field(
                &format!("services[{i}].state"),
                format!(
                    "{:?}: expected one of {}",
                    clip(&sv.state),
                    STATES.join(", ")
                ),
            ));
        }
    }
    for (i, b) in r.backups.iter().enumerate() {
        if let Some(t) = &b.last_success
            && t.parse::<Timestamp>().is_err()
        {
            return Err(AppError::field(
                &format!("backups[{i}].last_success"),
                format!("not an RFC 3339 instant: {:?}", clip(t)),
            ));
        }
        if let Some(x) = &b.last_result
            && !["success", "warning", "failed"].contains(&x.as_str())
        {
            return Err(AppError::field(
                &format!("backups[{i}].last_result"),
                format!("{:?}: expected success, warning or failed", clip(x)),
            ));
        }
    }
    Ok(Server {
        name: name.to_string(),
        fqdn,
        os: os.to_string(),
        release: Some(release),
        installation,
        build: Some(build),
        roles,
        installed_kbs: kbs,
        pending_reboot: r
            .pending_reboot
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        last_boot,
        last_scan: Some(now),
        ..Server::default()
    })
}

/// What gates and verification compare, from an inventory report received at `at`.
pub(crate) fn snapshot_of(r: &InventoryReport, at: Option<Timestamp>) -> HostSnapshot {
    let successes = r
        .backups
        .iter()
        .filter_map(|b| b.last_success.as_deref())
        .filter_map(|t| t.parse::<Timestamp>().ok());
    HostSnapshot {
        at,
        build: r.build.trim().parse().ok(),
        installed_kbs: r.installed_kbs.clone(),
        pending_reboot: r
            .pending_reboot
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        last_boot: r.last_boot.as_deref().and_then(|t| t.parse().ok()),
        services: r
            .services
            .iter()
            .map(|s| (s.name.clone(), s.start_mode.clone(), s.state.clone()))
            .collect(),
        last_backup: successes.max(),
        backup_failing: r
            .backups
            .iter()
            .any(|b| b.last_result.as_deref() == Some("failed")),
        free_mib: r.system_drive_free_mib,
    }
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::check_hostname;

    #[test]
    fn host_names_are_windows_computer_names() {
        for ok in ["WEB01", "sql_prod_2", "a", "x-1"] {
            assert_eq!(check_hostname(ok).ok().as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "-web",
            "web-",
            "web01.corp.example",
            "two words",
            &"a".repeat(64),
        ] {
            let e = check_hostname(bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("hostname"), "{bad}");
        }
    }
}
