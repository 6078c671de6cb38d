//! Storage. The [`Store`] trait is what the rest of Patchward sees; [`SqliteStore`] is the
//! embedded default. This is the only crate that knows SQL.
//!
//! Every import is one transaction: a bad batch leaves what was stored before untouched.

#[doc(hidden)]
pub mod codec;
mod sqlite;

pub use sqlite::SqliteStore;

use jiff::Timestamp;
use patchward_core::catalog::{Affected, Fix, Product, Update, Vulnerability};
use patchward_core::exposure::Catalog;
use patchward_core::intel::{EpssScore, KevEntry, LifecycleEntry, NvdRecord};
use patchward_core::inventory::{Estate, Server};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored record {what} is unreadable: {why}")]
    Corrupt { what: String, why: String },
    #[error("{0}")]
    Invalid(String),
    /// A unique name is taken (user, tenant).
    #[error("{0} already exists")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One MSRC month, ready to store (replaces what the same document stored before).
#[derive(Debug, Clone)]
pub struct DocumentImport<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub revision: Option<&'a str>,
    pub initial_release: Option<Timestamp>,
    pub current_release: Option<Timestamp>,
    pub source: &'a str,
    pub products: &'a [Product],
    pub vulnerabilities: &'a [Vulnerability],
    pub affected: &'a [Affected],
    pub fixes: &'a [Fix],
}

/// Where a feed came from and how current it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedStatus {
    pub feed: String,
    pub key: String,
    pub source: String,
    pub as_of: Option<Timestamp>,
    pub revision: Option<String>,
    pub records: i64,
    pub imported_at: Timestamp,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    /// New or changed data stored.
    Stored,
    /// The same revision was already stored; nothing changed.
    Unchanged,
    /// Older than what is stored; kept the newer data.
    Older,
}

/// Counts of what is stored, for status output.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub documents: i64,
    pub vulnerabilities: i64,
    pub fixes: i64,
    pub kev: i64,
    pub epss: i64,
    pub nvd: i64,
    pub servers: i64,
}

/// The storage interface. Implementations must pass the contract tests in `tests/it`.
pub trait Store {
    /// MSRC month: replaces the document's previous facts, unless the same revision is stored.
    fn import_document(
        &self,
        doc: &DocumentImport<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<ImportOutcome>> + Send;
    /// Update facts from the KB → build table.
    fn import_kb_builds(
        &self,
        source: &str,
        products: &[Product],
        updates: &[Update],
        now: Timestamp,
    ) -> impl Future<Output = Result<ImportOutcome>> + Send;
    /// The KEV catalog: replaces the stored one unless it is older.
    fn import_kev(
        &self,
        source: &str,
        version: &str,
        released: Option<Timestamp>,
        entries: &[KevEntry],
        now: Timestamp,
    ) -> impl Future<Output = Result<ImportOutcome>> + Send;
    /// EPSS scores: a score replaces a stored one for the same CVE unless older.
    fn import_epss(
        &self,
        source: &str,
        scores: &[EpssScore],
        now: Timestamp,
    ) -> impl Future<Output = Result<ImportOutcome>> + Send;
    /// NVD records: a record replaces a stored one unless older (lastModified).
    fn import_nvd(
        &self,
        source: &str,
        records: &[NvdRecord],
        now: Timestamp,
    ) -> impl Future<Output = Result<ImportOutcome>> + Send;
    /// The lifecycle table: replaces the stored one.
    fn import_lifecycle(
        &self,
        source: &str,
        entries: &[LifecycleEntry],
        now: Timestamp,
    ) -> impl Future<Output = Result<ImportOutcome>> + Send;

    // ---- Estate (per tenant) ----

    /// Insert or replace servers (all or nothing).
    fn upsert_servers(
        &self,
        tenant: TenantId,
        servers: &[Server],
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Merge `servers` into what is stored, in one write transaction that holds the write lock
    /// from the read to the commit, so concurrent writers never lose each other's changes: each
    /// stored server of the same name (ASCII case-insensitive) becomes `merge(stored, new)`.
    /// With `rest`, the tenant's non-server estate objects are replaced by it. Returns how many
    /// servers were written. `servers` must not name a server twice.
    fn merge_servers(
        &self,
        tenant: TenantId,
        servers: Vec<Server>,
        rest: Option<Estate>,
        merge: fn(Server, Server) -> Server,
        now: Timestamp,
    ) -> impl Future<Output = Result<usize>> + Send;
    /// Replace the estate's non-server parts and upsert its servers (all or nothing).
    fn import_estate(
        &self,
        tenant: TenantId,
        estate: &Estate,
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The tenant's servers in name order.
    fn servers(&self, tenant: TenantId) -> impl Future<Output = Result<Vec<Server>>> + Send;
    /// The tenant's servers with their ids, in name order.
    fn stored_servers(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<StoredServer>>> + Send;
    fn server(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> impl Future<Output = Result<Option<Server>>> + Send;
    /// A server by id; another tenant's id is `None`, like an id that does not exist.
    fn server_by_id(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> impl Future<Output = Result<Option<StoredServer>>> + Send;
    /// The stored servers among `names` (ASCII case-insensitive), in no particular order; names
    /// not stored are left out. An import merges with these instead of reading every server.
    fn servers_named(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<Server>>> + Send;
    /// Servers plus services, dependencies, windows, ... as one estate.
    fn estate(&self, tenant: TenantId) -> impl Future<Output = Result<Estate>> + Send;
    /// Changes with every write to the tenant's estate (a cache key).
    fn estate_revision(&self, tenant: TenantId) -> impl Future<Output = Result<i64>> + Send;
    /// [`Store::estate_revision`] and [`Store::catalog_revision`] in one round trip (checked
    /// by every request that reads the cached fleet).
    fn revisions(&self, tenant: TenantId) -> impl Future<Output = Result<(i64, String)>> + Send;

    // ---- Catalog and feeds (shared by all tenants) ----

    /// Everything the exposure and priority engines need.
    fn catalog(&self) -> impl Future<Output = Result<Catalog>> + Send;
    /// Changes with every feed import (a cache key for the exposure index).
    fn catalog_revision(&self) -> impl Future<Output = Result<String>> + Send;
    fn feed_status(&self) -> impl Future<Output = Result<Vec<FeedStatus>>> + Send;
    /// Catalog counts, and the servers of `tenant`.
    fn counts(&self, tenant: TenantId) -> impl Future<Output = Result<Counts>> + Send;

    // ---- Plans (per tenant) ----

    /// Store a plan as JSON under its cycle name (replacing an earlier plan of that cycle).
    fn save_plan(
        &self,
        tenant: TenantId,
        cycle: &str,
        plan_json: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    fn plan(
        &self,
        tenant: TenantId,
        cycle: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Cycle names with stored plans, newest first.
    fn plans(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<(String, Timestamp)>>> + Send;
}

/// Tenants, users, API tokens and sessions (the control plane's accounts).
pub trait AccessStore {
    fn tenants(&self) -> impl Future<Output = Result<Vec<Tenant>>> + Send;
    fn tenant_by_name(&self, name: &str) -> impl Future<Output = Result<Option<Tenant>>> + Send;
    fn tenant(&self, id: TenantId) -> impl Future<Output = Result<Option<Tenant>>> + Send;
    /// The tenant of that name (case-insensitive), created if new.
    fn ensure_tenant(
        &self,
        name: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Tenant>> + Send;

    // ---- Users, tokens, sessions ----

    /// A new user; a name already taken (case-insensitive) is [`StoreError::Conflict`].
    fn create_user(
        &self,
        user: &NewUser<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<UserRecord>> + Send;
    fn user_by_name(&self, name: &str) -> impl Future<Output = Result<Option<UserRecord>>> + Send;
    fn user(&self, id: i64) -> impl Future<Output = Result<Option<UserRecord>>> + Send;
    /// Users of a tenant (provider-wide users too when `None`), by name.
    fn users(
        &self,
        tenant: Option<TenantId>,
    ) -> impl Future<Output = Result<Vec<UserRecord>>> + Send;
    /// Disable or enable. Disabling ends the user's sessions and revokes their tokens (as of
    /// `now`) in the same transaction; enabling brings neither back.
    fn set_user_disabled(
        &self,
        id: i64,
        disabled: bool,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// A login attempt, counted before the password is checked so that concurrent attempts
    /// cannot exceed the limit: `ok` resets the count and the lock (returns 0); a failure adds
    /// one and, when the count reaches `lock_after`, locks the account until `lock_until`.
    /// Returns the count after the change (atomically).
    fn record_login(
        &self,
        id: i64,
        ok: bool,
        lock_after: i64,
        lock_until: Timestamp,
    ) -> impl Future<Output = Result<i64>> + Send;
    fn create_token(
        &self,
        token: &NewToken<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<TokenRecord>> + Send;
    /// The token with this hash and its user (revoked and expired ones included: the caller
    /// decides, with its clock).
    fn token_by_hash(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<(TokenRecord, UserRecord)>>> + Send;
    fn token(&self, id: i64) -> impl Future<Output = Result<Option<TokenRecord>>> + Send;
    /// Tokens of one user, or of every user when `None`, newest first.
    fn tokens(&self, user: Option<i64>) -> impl Future<Output = Result<Vec<TokenRecord>>> + Send;
    /// Revoke; `false` when there is no such token or it was revoked before.
    fn revoke_token(&self, id: i64, now: Timestamp) -> impl Future<Output = Result<bool>> + Send;
    fn create_session(&self, session: &SessionRecord) -> impl Future<Output = Result<()>> + Send;
    fn session(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<(SessionRecord, UserRecord)>>> + Send;
    fn delete_session(&self, hash: &str) -> impl Future<Output = Result<()>> + Send;
}

/// The audit log: append-only (there is no update or delete method).
pub trait AuditStore {
    /// Append an entry after the last one, in one write transaction: the store numbers it,
    /// sets `prev_hash` to the last entry's hash ("" for the first) and `hash` to
    /// `chain(&entry)`. Concurrent appends are serialised, so the chain never forks.
    fn append_audit(
        &self,
        entry: NewAuditEntry,
        chain: fn(&AuditEntry) -> String,
    ) -> impl Future<Output = Result<AuditEntry>> + Send;
    /// The last entry's (seq, hash) as recorded beside the log, if any entry was appended.
    fn audit_head(&self) -> impl Future<Output = Result<Option<(i64, String)>>> + Send;
    /// Entries in order, filtered.
    fn audit(&self, q: &AuditQuery) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;
}

/// The change workflow (per tenant): cycles, exceptions and the tenant's workflow rules. The
/// bodies are JSON the application layer encodes; the store keeps versions, never rules.
pub trait WorkflowStore {
    /// A new cycle; a name the tenant already uses (case-insensitive) is [`StoreError::Conflict`].
    fn create_cycle(
        &self,
        tenant: TenantId,
        name: &str,
        state: &str,
        body: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<CycleRecord>> + Send;
    /// Another tenant's id is `None`, like an id that does not exist.
    fn cycle(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> impl Future<Output = Result<Option<CycleRecord>>> + Send;
    /// The tenant's cycles, newest first.
    fn cycles(&self, tenant: TenantId) -> impl Future<Output = Result<Vec<CycleRecord>>> + Send;
    /// Write a cycle only if its stored version is still `version` (optimistic concurrency:
    /// two approvers at once never lose each other's approval); with `plan`, the cycle's plan
    /// is stored under its name in the same transaction. `None`: the version moved on.
    #[allow(clippy::too_many_arguments)] // one write, spelled out: no struct to keep in sync
    fn update_cycle(
        &self,
        tenant: TenantId,
        id: i64,
        version: i64,
        state: &str,
        body: &str,
        plan: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<CycleRecord>>> + Send;
    /// A new exception. Changes the tenant's estate revision (open counts depend on it).
    fn create_exception(
        &self,
        tenant: TenantId,
        server: &str,
        body: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<ExceptionRecord>> + Send;
    /// The tenant's exceptions, oldest first.
    fn exceptions(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<ExceptionRecord>>> + Send;
    fn exception(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> impl Future<Output = Result<Option<ExceptionRecord>>> + Send;
    /// Revoke (with the body that records it); `false` when there is no such exception or it
    /// was revoked before. Changes the tenant's estate revision.
    fn revoke_exception(
        &self,
        tenant: TenantId,
        id: i64,
        body: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn workflow_rules(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    fn set_workflow_rules(
        &self,
        tenant: TenantId,
        body: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Agents (per tenant): enrolment tokens and enrolled agents. Secrets are kept only as their
/// SHA-256; the store redeems a token and creates the agent in one transaction, so a token
/// is never used more often than it allows, even by enrolments at the same instant.
pub trait AgentStore {
    fn create_enrol_token(
        &self,
        token: &NewEnrolToken<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<EnrolTokenRecord>> + Send;
    /// The tenant's enrolment tokens, newest first.
    fn enrol_tokens(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<EnrolTokenRecord>>> + Send;
    /// Revoke; `false` when there is no such token (in this tenant) or it was revoked before.
    fn revoke_enrol_token(
        &self,
        tenant: TenantId,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Redeem the token with `token_hash` (one use, however many agents) and enrol an agent
    /// for each `agents[i].server` in the token's tenant, in order, revoking each server's
    /// earlier active agents (a reinstalled host enrols again). All or nothing: refused, with
    /// nothing changed, when the token is unknown, revoked, expired at `now` or used up. The
    /// caller gives distinct server names.
    fn enrol_agents(
        &self,
        token_hash: &str,
        agents: &[NewAgent<'_>],
        now: Timestamp,
    ) -> impl Future<Output = Result<std::result::Result<Vec<Enrolment>, TokenRefusal>>> + Send;
    /// The agent with this credential hash (revoked ones included: the caller decides).
    fn agent_by_credential(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<AgentRecord>>> + Send;
    /// Another tenant's id is `None`, like an id that does not exist.
    fn agent(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> impl Future<Output = Result<Option<AgentRecord>>> + Send;
    /// The tenant's agents by server name, newest enrolment first within a server.
    fn agents(&self, tenant: TenantId) -> impl Future<Output = Result<Vec<AgentRecord>>> + Send;
    /// Record when agents were last seen, many at once (check-ins are coalesced); a time
    /// older than the stored one is ignored.
    fn touch_agents(&self, seen: &[(i64, Timestamp)]) -> impl Future<Output = Result<()>> + Send;
    /// Keep the agent's latest inventory report (JSON) and its digest.
    fn record_agent_report(
        &self,
        agent: i64,
        digest: &str,
        report: &str,
        agent_version: &str,
        protocol: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The agent's latest inventory report (JSON), if any.
    fn agent_report(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Revoke; `false` when there is no such agent (in this tenant) or it was revoked before.
    fn revoke_agent(
        &self,
        tenant: TenantId,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// Jobs (per tenant): one per server in a running cycle. Every write is versioned, so
/// replicas sharing a database never both lease, advance or finish the same job.
pub trait JobStore {
    /// Create the jobs a cycle does not have yet (one per server; existing ones are kept, so
    /// starting again after a crash creates only what is missing). Returns how many were new.
    fn create_jobs(
        &self,
        tenant: TenantId,
        cycle: i64,
        jobs: &[NewJob],
        now: Timestamp,
    ) -> impl Future<Output = Result<usize>> + Send;
    /// A cycle's jobs by server name.
    fn jobs(
        &self,
        tenant: TenantId,
        cycle: i64,
    ) -> impl Future<Output = Result<Vec<JobRecord>>> + Send;
    /// A cycle's jobs without their bodies (by server name): what ring promotion and the gates
    /// read of the other jobs at every offer.
    fn job_summaries(
        &self,
        tenant: TenantId,
        cycle: i64,
    ) -> impl Future<Output = Result<Vec<JobSummary>>> + Send;
    fn job(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> impl Future<Output = Result<Option<JobRecord>>> + Send;
    /// The server's unfinished jobs (waiting, blocked, running) in running cycles, oldest
    /// first.
    fn open_jobs_for_server(
        &self,
        tenant: TenantId,
        server: &str,
    ) -> impl Future<Output = Result<Vec<JobRecord>>> + Send;
    /// Running jobs whose lease ended before `before` (every tenant): the sweeper's work.
    fn lapsed_jobs(&self, before: Timestamp)
    -> impl Future<Output = Result<Vec<JobRecord>>> + Send;
    /// Write a job only if its version is still `version`. `lease`: grant a new lease (the
    /// fencing token grows by one), keep the current one, or release it. `None`: the version
    /// moved on.
    #[allow(clippy::too_many_arguments)] // one write, spelled out
    fn update_job(
        &self,
        tenant: TenantId,
        id: i64,
        version: i64,
        state: &str,
        body: &str,
        lease: LeaseChange,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<JobRecord>>> + Send;
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub server: String,
    pub ring: Option<String>,
    pub state: String,
    /// JSON.
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseChange {
    Keep,
    /// Lease to this agent until this instant, with the next fencing token.
    Grant {
        agent: i64,
        until: Timestamp,
    },
    /// Extend the current lease (same agent, same token).
    Extend {
        until: Timestamp,
    },
    Release,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: i64,
    pub tenant: TenantId,
    pub cycle: i64,
    pub server: String,
    pub ring: Option<String>,
    pub state: String,
    pub version: i64,
    pub lease_agent: Option<i64>,
    /// Grows with every lease: the token an agent's reports must carry.
    pub lease_token: i64,
    pub lease_until: Option<Timestamp>,
    /// JSON.
    pub body: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A job's row without its body.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    pub id: i64,
    pub server: String,
    pub ring: Option<String>,
    pub state: String,
    pub version: i64,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEnrolToken<'a> {
    pub tenant: TenantId,
    /// SHA-256 of the token, hex.
    pub hash: &'a str,
    pub label: &'a str,
    pub uses: i64,
    pub created_by: &'a str,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnrolTokenRecord {
    pub id: i64,
    pub tenant: TenantId,
    pub label: String,
    pub uses_left: i64,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl EnrolTokenRecord {
    /// Why this token cannot enrol anyone at `now`, if it cannot.
    pub fn refusal(&self, now: Timestamp) -> Option<TokenRefusal> {
        if self.revoked_at.is_some() {
            Some(TokenRefusal::Revoked)
        } else if self.expires_at <= now {
            Some(TokenRefusal::Expired)
        } else if self.uses_left <= 0 {
            Some(TokenRefusal::UsedUp)
        } else {
            None
        }
    }
}

/// Why a token did not enrol an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Unknown,
    Revoked,
    Expired,
    UsedUp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAgent<'a> {
    pub server: &'a str,
    /// SHA-256 of the agent's credential, hex.
    pub credential_hash: &'a str,
    pub agent_version: &'a str,
    pub protocol: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enrolment {
    pub agent: AgentRecord,
    /// The token it used.
    pub token: i64,
    /// Earlier agents of the same server, revoked by this enrolment.
    pub replaced: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub id: i64,
    pub tenant: TenantId,
    pub server: String,
    pub agent_version: String,
    pub protocol: i64,
    pub enrolled_at: Timestamp,
    pub last_seen: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub inventory_digest: Option<String>,
    pub reported_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CycleRecord {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    pub state: String,
    /// 1 when created, one more with every write.
    pub version: i64,
    /// JSON.
    pub body: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionRecord {
    pub id: i64,
    pub tenant: TenantId,
    pub server: String,
    /// JSON.
    pub body: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Everything a server needs from one backend, shareable between request handlers.
pub trait ControlStore:
    Store
    + AccessStore
    + AuditStore
    + WorkflowStore
    + AgentStore
    + JobStore
    + Clone
    + Send
    + Sync
    + 'static
{
}
impl<
    T: Store
        + AccessStore
        + AuditStore
        + WorkflowStore
        + AgentStore
        + JobStore
        + Clone
        + Send
        + Sync
        + 'static,
> ControlStore for T
{
}

/// A tenant's id. Every estate record belongs to one; feeds are shared by all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TenantId(pub i64);

impl TenantId {
    /// The tenant a single-tenant install uses without naming it.
    pub const DEFAULT: TenantId = TenantId(1);
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

/// A server with the id the store gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredServer {
    pub id: i64,
    pub server: Server,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUser<'a> {
    /// `None`: provider-wide (an administrator of every tenant).
    pub tenant: Option<TenantId>,
    pub name: &'a str,
    pub role: &'a str,
    pub password_hash: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: i64,
    pub tenant: Option<TenantId>,
    pub name: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub failed_logins: i64,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewToken<'a> {
    pub user_id: i64,
    /// SHA-256 of the secret, hex.
    pub hash: &'a str,
    pub label: &'a str,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: i64,
    pub user_id: i64,
    pub label: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie value, hex.
    pub hash: String,
    pub user_id: i64,
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub at: Timestamp,
    pub tenant: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON text.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    /// The entry's number among its tenant's entries (provider-wide ones count as one tenant).
    pub tenant_seq: i64,
    pub at: Timestamp,
    pub tenant: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// `Some`: only this tenant's entries (provider-wide ones are left out).
    pub tenant: Option<TenantId>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<Timestamp>,
    /// Entries after this sequence number.
    pub after_seq: Option<i64>,
    /// Entries after this number within the tenant (with `tenant`).
    pub after_tenant_seq: Option<i64>,
    pub limit: Option<i64>,
}
