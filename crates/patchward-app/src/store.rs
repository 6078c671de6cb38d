//! [`AnyStore`]: the backend chosen at run time by `--db` (a SQLite file, or a PostgreSQL URL).

use jiff::Timestamp;
use patchward_core::catalog::{Product, Update};
use patchward_core::exposure::Catalog;
use patchward_core::intel::{EpssScore, KevEntry, LifecycleEntry, NvdRecord};
use patchward_core::inventory::{Estate, Server};
use patchward_store::{
    AccessStore, AgentRecord, AgentStore, AuditEntry, AuditQuery, AuditStore, Counts, CycleRecord,
    DocumentImport, EnrolTokenRecord, Enrolment, ExceptionRecord, FeedStatus, ImportOutcome,
    JobRecord, JobStore, JobSummary, LeaseChange, NewAgent, NewAuditEntry, NewEnrolToken, NewJob,
    NewToken, NewUser, Result, SessionRecord, SqliteStore, Store, StoredServer, Tenant, TenantId,
    TokenRecord, TokenRefusal, UserRecord, WorkflowStore,
};
use patchward_store_postgres::PgStore;
use std::path::Path;

/// One of the stores, chosen when opened; every call goes to it.
#[derive(Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl AnyStore {
    /// `postgres://…` or `postgresql://…` connects to PostgreSQL; anything else is the path of
    /// a SQLite file (created if missing). Migrations are applied either way.
    pub async fn open(db: &str) -> Result<AnyStore> {
        if Self::is_url(db) {
            Ok(AnyStore::Postgres(PgStore::connect(db).await?))
        } else {
            Ok(AnyStore::Sqlite(SqliteStore::open(Path::new(db)).await?))
        }
    }

    /// Whether `db` names a PostgreSQL server rather than a SQLite file.
    pub fn is_url(db: &str) -> bool {
        db.starts_with("postgres://") || db.starts_with("postgresql://")
    }

    /// `postgres` or `sqlite`, for messages.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }
}

impl From<SqliteStore> for AnyStore {
    fn from(s: SqliteStore) -> AnyStore {
        AnyStore::Sqlite(s)
    }
}

impl From<PgStore> for AnyStore {
    fn from(s: PgStore) -> AnyStore {
        AnyStore::Postgres(s)
    }
}

/// `$s.$call` on whichever store this is.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $call.await,
            AnyStore::Postgres($s) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn import_document(
        &self,
        doc: &DocumentImport<'_>,
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        dispatch!(self, s => s.import_document(doc, now))
    }
    async fn import_kb_builds(
        &self,
        source: &str,
        products: &[Product],
        updates: &[Update],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        dispatch!(self, s => s.import_kb_builds(source, products, updates, now))
    }
    async fn import_kev(
        &self,
        source: &str,
        version: &str,
        released: Option<Timestamp>,
        entries: &[KevEntry],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        dispatch!(self, s => s.import_kev(source, version, released, entries, now))
    }
    async fn import_epss(
        &self,
        source: &str,
        scores: &[EpssScore],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        dispatch!(self, s => s.import_epss(source, scores, now))
    }
    async fn import_nvd(
        &self,
        source: &str,
        records: &[NvdRecord],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        dispatch!(self, s => s.import_nvd(source, records, now))
    }
    async fn import_lifecycle(
        &self,
        source: &str,
        entries: &[LifecycleEntry],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        dispatch!(self, s => s.import_lifecycle(source, entries, now))
    }
    async fn upsert_servers(
        &self,
        tenant: TenantId,
        servers: &[Server],
        now: Timestamp,
    ) -> Result<()> {
        dispatch!(self, s => s.upsert_servers(tenant, servers, now))
    }
    async fn merge_servers(
        &self,
        tenant: TenantId,
        servers: Vec<Server>,
        rest: Option<Estate>,
        merge: fn(Server, Server) -> Server,
        now: Timestamp,
    ) -> Result<usize> {
        dispatch!(self, s => s.merge_servers(tenant, servers, rest, merge, now))
    }
    async fn import_estate(&self, tenant: TenantId, estate: &Estate, now: Timestamp) -> Result<()> {
        dispatch!(self, s => s.import_estate(tenant, estate, now))
    }
    async fn servers(&self, tenant: TenantId) -> Result<Vec<Server>> {
        dispatch!(self, s => s.servers(tenant))
    }
    async fn stored_servers(&self, tenant: TenantId) -> Result<Vec<StoredServer>> {
        dispatch!(self, s => s.stored_servers(tenant))
    }
    async fn server(&self, tenant: TenantId, name: &str) -> Result<Option<Server>> {
        dispatch!(self, s => s.server(tenant, name))
    }
    async fn server_by_id(&self, tenant: TenantId, id: i64) -> Result<Option<StoredServer>> {
        dispatch!(self, s => s.server_by_id(tenant, id))
    }
    async fn servers_named(&self, tenant: TenantId, names: &[String]) -> Result<Vec<Server>> {
        dispatch!(self, s => s.servers_named(tenant, names))
    }
    async fn estate(&self, tenant: TenantId) -> Result<Estate> {
        dispatch!(self, s => s.estate(tenant))
    }
    async fn estate_revision(&self, tenant: TenantId) -> Result<i64> {
        dispatch!(self, s => s.estate_revision(tenant))
    }
    async fn revisions(&self, tenant: TenantId) -> Result<(i64, String)> {
        dispatch!(self, s => s.revisions(tenant))
    }
    async fn catalog(&self) -> Result<Catalog> {
        dispatch!(self, s => s.catalog())
    }
    async fn catalog_revision(&self) -> Result<String> {
        dispatch!(self, s => s.catalog_revision())
    }
    async fn feed_status(&self) -> Result<Vec<FeedStatus>> {
        dispatch!(self, s => s.feed_status())
    }
    async fn counts(&self, tenant: TenantId) -> Result<Counts> {
        dispatch!(self, s => s.counts(tenant))
    }
    async fn save_plan(
        &self,
        tenant: TenantId,
        cycle: &str,
        plan_json: &str,
        now: Timestamp,
    ) -> Result<()> {
        dispatch!(self, s => s.save_plan(tenant, cycle, plan_json, now))
    }
    async fn plan(&self, tenant: TenantId, cycle: &str) -> Result<Option<String>> {
        dispatch!(self, s => s.plan(tenant, cycle))
    }
    async fn plans(&self, tenant: TenantId) -> Result<Vec<(String, Timestamp)>> {
        dispatch!(self, s => s.plans(tenant))
    }
}

impl AccessStore for AnyStore {
    async fn tenants(&self) -> Result<Vec<Tenant>> {
        dispatch!(self, s => s.tenants())
    }
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        dispatch!(self, s => s.tenant_by_name(name))
    }
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        dispatch!(self, s => s.tenant(id))
    }
    async fn ensure_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant> {
        dispatch!(self, s => s.ensure_tenant(name, now))
    }
    async fn create_user(&self, user: &NewUser<'_>, now: Timestamp) -> Result<UserRecord> {
        dispatch!(self, s => s.create_user(user, now))
    }
    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        dispatch!(self, s => s.user_by_name(name))
    }
    async fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        dispatch!(self, s => s.user(id))
    }
    async fn users(&self, tenant: Option<TenantId>) -> Result<Vec<UserRecord>> {
        dispatch!(self, s => s.users(tenant))
    }
    async fn set_user_disabled(&self, id: i64, disabled: bool, now: Timestamp) -> Result<bool> {
        dispatch!(self, s => s.set_user_disabled(id, disabled, now))
    }
    async fn record_login(
        &self,
        id: i64,
        ok: bool,
        lock_after: i64,
        lock_until: Timestamp,
    ) -> Result<i64> {
        dispatch!(self, s => s.record_login(id, ok, lock_after, lock_until))
    }
    async fn create_token(&self, token: &NewToken<'_>, now: Timestamp) -> Result<TokenRecord> {
        dispatch!(self, s => s.create_token(token, now))
    }
    async fn token_by_hash(&self, hash: &str) -> Result<Option<(TokenRecord, UserRecord)>> {
        dispatch!(self, s => s.token_by_hash(hash))
    }
    async fn token(&self, id: i64) -> Result<Option<TokenRecord>> {
        dispatch!(self, s => s.token(id))
    }
    async fn tokens(&self, user: Option<i64>) -> Result<Vec<TokenRecord>> {
        dispatch!(self, s => s.tokens(user))
    }
    async fn revoke_token(&self, id: i64, now: Timestamp) -> Result<bool> {
        dispatch!(self, s => s.revoke_token(id, now))
    }
    async fn create_session(&self, session: &SessionRecord) -> Result<()> {
        dispatch!(self, s => s.create_session(session))
    }
    async fn session(&self, hash: &str) -> Result<Option<(SessionRecord, UserRecord)>> {
        dispatch!(self, s => s.session(hash))
    }
    async fn delete_session(&self, hash: &str) -> Result<()> {
        dispatch!(self, s => s.delete_session(hash))
    }
}

impl AuditStore for AnyStore {
    async fn append_audit(
        &self,
        entry: NewAuditEntry,
        chain: fn(&AuditEntry) -> String,
    ) -> Result<AuditEntry> {
        dispatch!(self, s => s.append_audit(entry, chain))
    }
    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        dispatch!(self, s => s.audit_head())
    }
    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        dispatch!(self, s => s.audit(q))
    }
}

impl WorkflowStore for AnyStore {
    async fn create_cycle(
        &self,
        tenant: TenantId,
        name: &str,
        state: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<CycleRecord> {
        dispatch!(self, s => s.create_cycle(tenant, name, state, body, now))
    }
    async fn cycle(&self, tenant: TenantId, id: i64) -> Result<Option<CycleRecord>> {
        dispatch!(self, s => s.cycle(tenant, id))
    }
    async fn cycles(&self, tenant: TenantId) -> Result<Vec<CycleRecord>> {
        dispatch!(self, s => s.cycles(tenant))
    }
    async fn update_cycle(
        &self,
        tenant: TenantId,
        id: i64,
        version: i64,
        state: &str,
        body: &str,
        plan: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<CycleRecord>> {
        dispatch!(self, s => s.update_cycle(tenant, id, version, state, body, plan, now))
    }
    async fn create_exception(
        &self,
        tenant: TenantId,
        server: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<ExceptionRecord> {
        dispatch!(self, s => s.create_exception(tenant, server, body, now))
    }
    async fn exceptions(&self, tenant: TenantId) -> Result<Vec<ExceptionRecord>> {
        dispatch!(self, s => s.exceptions(tenant))
    }
    async fn exception(&self, tenant: TenantId, id: i64) -> Result<Option<ExceptionRecord>> {
        dispatch!(self, s => s.exception(tenant, id))
    }
    async fn revoke_exception(
        &self,
        tenant: TenantId,
        id: i64,
        body: &str,
        now: Timestamp,
    ) -> Result<bool> {
        dispatch!(self, s => s.revoke_exception(tenant, id, body, now))
    }
    async fn workflow_rules(&self, tenant: TenantId) -> Result<Option<String>> {
        dispatch!(self, s => s.workflow_rules(tenant))
    }
    async fn set_workflow_rules(&self, tenant: TenantId, body: &str, now: Timestamp) -> Result<()> {
        dispatch!(self, s => s.set_workflow_rules(tenant, body, now))
    }
}

impl AgentStore for AnyStore {
    async fn create_enrol_token(
        &self,
        token: &NewEnrolToken<'_>,
        now: Timestamp,
    ) -> Result<EnrolTokenRecord> {
        dispatch!(self, s => s.create_enrol_token(token, now))
    }
    async fn enrol_tokens(&self, tenant: TenantId) -> Result<Vec<EnrolTokenRecord>> {
        dispatch!(self, s => s.enrol_tokens(tenant))
    }
    async fn revoke_enrol_token(&self, tenant: TenantId, id: i64, now: Timestamp) -> Result<bool> {
        dispatch!(self, s => s.revoke_enrol_token(tenant, id, now))
    }
    async fn enrol_agents(
        &self,
        token_hash: &str,
        agents: &[NewAgent<'_>],
        now: Timestamp,
    ) -> Result<std::result::Result<Vec<Enrolment>, TokenRefusal>> {
        dispatch!(self, s => s.enrol_agents(token_hash, agents, now))
    }
    async fn agent_by_credential(&self, hash: &str) -> Result<Option<AgentRecord>> {
        dispatch!(self, s => s.agent_by_credential(hash))
    }
    async fn agent(&self, tenant: TenantId, id: i64) -> Result<Option<AgentRecord>> {
        dispatch!(self, s => s.agent(tenant, id))
    }
    async fn agents(&self, tenant: TenantId) -> Result<Vec<AgentRecord>> {
        dispatch!(self, s => s.agents(tenant))
    }
    async fn touch_agents(&self, seen: &[(i64, Timestamp)]) -> Result<()> {
        dispatch!(self, s => s.touch_agents(seen))
    }
    async fn record_agent_report(
        &self,
        agent: i64,
        digest: &str,
        report: &str,
        agent_version: &str,
        protocol: i64,
        now: Timestamp,
    ) -> Result<()> {
        dispatch!(self, s => s.record_agent_report(agent, digest, report, agent_version, protocol, now))
    }
    async fn agent_report(&self, tenant: TenantId, id: i64) -> Result<Option<String>> {
        dispatch!(self, s => s.agent_report(tenant, id))
    }
    async fn revoke_agent(&self, tenant: TenantId, id: i64, now: Timestamp) -> Result<bool> {
        dispatch!(self, s => s.revoke_agent(tenant, id, now))
    }
}

impl JobStore for AnyStore {
    async fn create_jobs(
        &self,
        tenant: TenantId,
        cycle: i64,
        jobs: &[NewJob],
        now: Timestamp,
    ) -> Result<usize> {
        dispatch!(self, s => s.create_jobs(tenant, cycle, jobs, now))
    }
    async fn jobs(&self, tenant: TenantId, cycle: i64) -> Result<Vec<JobRecord>> {
        dispatch!(self, s => s.jobs(tenant, cycle))
    }
    async fn job_summaries(&self, tenant: TenantId, cycle: i64) -> Result<Vec<JobSummary>> {
        dispatch!(self, s => s.job_summaries(tenant, cycle))
    }
    async fn job(&self, tenant: TenantId, id: i64) -> Result<Option<JobRecord>> {
        dispatch!(self, s => s.job(tenant, id))
    }
    async fn open_jobs_for_server(&self, tenant: TenantId, server: &str) -> Result<Vec<JobRecord>> {
        dispatch!(self, s => s.open_jobs_for_server(tenant, server))
    }
    async fn lapsed_jobs(&self, before: Timestamp) -> Result<Vec<JobRecord>> {
        dispatch!(self, s => s.lapsed_jobs(before))
    }
    async fn update_job(
        &self,
        tenant: TenantId,
        id: i64,
        version: i64,
        state: &str,
        body: &str,
        lease: LeaseChange,
        now: Timestamp,
    ) -> Result<Option<JobRecord>> {
        dispatch!(self, s => s.update_job(tenant, id, version, state, body, lease, now))
    }
}
