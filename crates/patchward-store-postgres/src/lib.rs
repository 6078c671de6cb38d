//! The PostgreSQL store: the same [`Store`], [`AccessStore`] and [`AuditStore`] as
//! `patchward_store::SqliteStore`, for installations that run several servers on one database.
//! Its migrations (`migrations/`) carry the same version numbers as SQLite's and end in an
//! equivalent schema; both backends pass the same contract suite (`tests/it`).
//!
//! Differences of the engine, not of behaviour:
//! - Names compared case-insensitively (servers, estate objects, tenants, users) have unique
//!   indexes on `lower(name)` over `"C"`-collated columns: `lower` then folds ASCII letters
//!   only, like SQLite's `NOCASE`, and names are ordered by code point, like SQLite.
//! - Writers that read before they write take a lock first: estate writes lock the tenant's
//!   row (`SELECT ... FOR UPDATE`), audit appends lock the log (`LOCK TABLE ... EXCLUSIVE`),
//!   where SQLite takes its one write lock with `BEGIN IMMEDIATE`.
//! - A multi-row upsert may not touch a row twice in PostgreSQL, so rows a batch names twice
//!   are folded first, the way SQLite's row-by-row upsert would have left them.

mod access;
mod agents;
mod audit;
mod estate;
mod feeds;
mod jobs;
mod workflow;

use jiff::Timestamp;
use patchward_core::catalog::{Product, Update};
use patchward_core::exposure::Catalog;
use patchward_core::intel::{EpssScore, KevEntry, LifecycleEntry, NvdRecord};
use patchward_core::inventory::{Estate, Server};
use patchward_store::{
    Counts, DocumentImport, FeedStatus, ImportOutcome, Result, Store, StoreError, StoredServer,
    TenantId,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::collections::HashMap;
use std::hash::Hash;
use std::str::FromStr;

/// Rows per multi-row INSERT (9 columns × 400 stays far below PostgreSQL's 65,535 parameters).
const BATCH: usize = 400;

/// The PostgreSQL store. Cloning shares the connection pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/database`) and apply migrations.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let opts = PgConnectOptions::from_str(url)?;
        Self::connect_with(opts).await
    }

    /// Connect with options built by the caller and apply migrations.
    pub async fn connect_with(opts: PgConnectOptions) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// The connection pool (tests and tools that need to reach behind the store).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Close every connection (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The ASCII case folding of SQLite's `NOCASE`, which `lower()` on a `"C"`-collated column
/// also applies: bound values are folded here, so the indexes on `lower(name)` serve lookups.
fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// `rows` with one row per key, in first-seen order: a later row takes an earlier one's place
/// when `replaces(earlier, later)`, as SQLite's row-by-row upsert of the same batch would.
fn fold_rows<T, K: Hash + Eq>(
    rows: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> K,
    replaces: impl Fn(&T, &T) -> bool,
) -> Vec<T> {
    let mut at: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<T> = Vec::new();
    for r in rows {
        match at.get(&key(&r)) {
            Some(&i) => {
                if replaces(&out[i], &r) {
                    out[i] = r;
                }
            }
            None => {
                at.insert(key(&r), out.len());
                out.push(r);
            }
        }
    }
    out
}

/// A unique-constraint violation becomes [`StoreError::Conflict`] naming `what`.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Db(e),
    }
}

impl Store for PgStore {
    async fn import_document(
        &self,
        doc: &DocumentImport<'_>,
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        self.document(doc, now).await
    }

    async fn import_kb_builds(
        &self,
        source: &str,
        products: &[Product],
        updates: &[Update],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        self.kb_builds(source, products, updates, now).await
    }

    async fn import_kev(
        &self,
        source: &str,
        version: &str,
        released: Option<Timestamp>,
        entries: &[KevEntry],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        self.kev(source, version, released, entries, now).await
    }

    async fn import_epss(
        &self,
        source: &str,
        scores: &[EpssScore],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        self.epss(source, scores, now).await
    }

    async fn import_nvd(
        &self,
        source: &str,
        records: &[NvdRecord],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        self.nvd(source, records, now).await
    }

    async fn import_lifecycle(
        &self,
        source: &str,
        entries: &[LifecycleEntry],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        self.lifecycle(source, entries, now).await
    }

    async fn upsert_servers(
        &self,
        tenant: TenantId,
        servers: &[Server],
        now: Timestamp,
    ) -> Result<()> {
        self.upsert(tenant, servers, now).await
    }

    async fn merge_servers(
        &self,
        tenant: TenantId,
        servers: Vec<Server>,
        rest: Option<Estate>,
        merge: fn(Server, Server) -> Server,
        now: Timestamp,
    ) -> Result<usize> {
        self.merge(tenant, servers, rest, merge, now).await
    }

    async fn import_estate(&self, tenant: TenantId, estate: &Estate, now: Timestamp) -> Result<()> {
        self.replace_estate(tenant, estate, now).await
    }

    async fn servers(&self, tenant: TenantId) -> Result<Vec<Server>> {
        self.all_servers(tenant).await
    }

    async fn stored_servers(&self, tenant: TenantId) -> Result<Vec<StoredServer>> {
        self.all_stored_servers(tenant).await
    }

    async fn server(&self, tenant: TenantId, name: &str) -> Result<Option<Server>> {
        self.one_server(tenant, name).await
    }

    async fn server_by_id(&self, tenant: TenantId, id: i64) -> Result<Option<StoredServer>> {
        self.one_server_by_id(tenant, id).await
    }

    async fn servers_named(&self, tenant: TenantId, names: &[String]) -> Result<Vec<Server>> {
        Self::named(&self.pool, tenant, names).await
    }

    async fn estate(&self, tenant: TenantId) -> Result<Estate> {
        self.whole_estate(tenant).await
    }

    async fn estate_revision(&self, tenant: TenantId) -> Result<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT revision FROM tenants WHERE id = $1")
            .bind(tenant.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0).unwrap_or(-1))
    }

    async fn catalog(&self) -> Result<Catalog> {
        self.read_catalog().await
    }

    async fn revisions(&self, tenant: TenantId) -> Result<(i64, String)> {
        let (rev, n, latest): (Option<i64>, i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT revision FROM tenants WHERE id = $1), COUNT(*), MAX(imported_at) FROM feed_imports",
        )
        .bind(tenant.0)
        .fetch_one(&self.pool)
        .await?;
        Ok((rev.unwrap_or(-1), format!("{n}:{}", latest.unwrap_or(0))))
    }

    async fn catalog_revision(&self) -> Result<String> {
        let (n, latest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MAX(imported_at) FROM feed_imports")
                .fetch_one(&self.pool)
                .await?;
        Ok(format!("{n}:{}", latest.unwrap_or(0)))
    }

    async fn feed_status(&self) -> Result<Vec<FeedStatus>> {
        self.feeds().await
    }

    async fn counts(&self, tenant: TenantId) -> Result<Counts> {
        let one = |sql: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&self.pool).await?;
            Ok::<i64, StoreError>(n)
        };
        Ok(Counts {
            documents: one("SELECT COUNT(*) FROM feed_imports WHERE feed = 'msrc-cvrf'").await?,
            vulnerabilities: one("SELECT COUNT(DISTINCT cve) FROM vulnerabilities").await?,
            fixes: one("SELECT COUNT(*) FROM fixes").await?,
            kev: one("SELECT COUNT(*) FROM kev").await?,
            epss: one("SELECT COUNT(*) FROM epss").await?,
            nvd: one("SELECT COUNT(*) FROM nvd").await?,
            servers: sqlx::query_as::<_, (i64,)>(
                "SELECT COUNT(*) FROM servers WHERE tenant_id = $1",
            )
            .bind(tenant.0)
            .fetch_one(&self.pool)
            .await?
            .0,
        })
    }

    async fn save_plan(
        &self,
        tenant: TenantId,
        cycle: &str,
        plan_json: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO plans (tenant_id, cycle, created_at, record) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, cycle) DO UPDATE SET created_at = excluded.created_at, record = excluded.record",
        )
        .bind(tenant.0)
        .bind(cycle)
        .bind(now.as_millisecond())
        .bind(plan_json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn plan(&self, tenant: TenantId, cycle: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT record FROM plans WHERE tenant_id = $1 AND cycle = $2")
                .bind(tenant.0)
                .bind(cycle)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    async fn plans(&self, tenant: TenantId) -> Result<Vec<(String, Timestamp)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT cycle, created_at FROM plans WHERE tenant_id = $1 ORDER BY created_at DESC, cycle",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, t)| {
                (
                    c,
                    Timestamp::from_millisecond(t).unwrap_or(Timestamp::UNIX_EPOCH),
                )
            })
            .collect())
    }
}
