//! The embedded SQLite store (WAL mode, one file): catalog and estate here, accounts in
//! `access`, the audit log in `audit`.

mod access;
mod agents;
mod audit;
mod jobs;
mod workflow;

use crate::codec::{
    class_text, corrupt, estate_object_rows, from_ms, kbs_parse, kbs_text, ms, push_estate_object,
    reclassify, stored_server, to_json, unpack,
};
use crate::{
    Counts, DocumentImport, FeedStatus, ImportOutcome, Result, Store, StoreError, StoredServer,
    TenantId,
};
use futures_util::TryStreamExt;
use jiff::Timestamp;
use jiff::civil::Date;
use patchward_core::build::OsBuild;
use patchward_core::catalog::{Affected, Fix, Kb, Product, Severity, Update, Vulnerability};
use patchward_core::exposure::Catalog;
use patchward_core::intel::{EpssScore, KevEntry, LifecycleEntry, NvdRecord};
use patchward_core::inventory::{Estate, Server};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

/// Rows per multi-row INSERT (9 columns × 400 stays far below SQLite's variable limit).
const BATCH: usize = 400;

/// One row of `feed_imports`: where a feed came from and how current it is.
struct FeedRow<'a> {
    feed: &'a str,
    key: &'a str,
    source: &'a str,
    as_of: Option<Timestamp>,
    revision: Option<&'a str>,
    records: usize,
}

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// The update columns `fixes` and `kb_builds` share, decoded.
fn update_row(
    row: &sqlx::sqlite::SqliteRow,
    kinds: &std::collections::HashMap<String, patchward_core::product::ProductKind>,
    table: &str,
) -> Result<Update> {
    let kb: i64 = row.try_get("kb")?;
    let class: String = row.try_get("classification")?;
    let subtype: String = row.try_get("subtype")?;
    let product_id: String = row.try_get("product_id")?;
    let fb: Option<String> = row.try_get("fixed_build")?;
    let sup: String = row.try_get("supersedes")?;
    Ok(Update {
        kb: Kb(u32::try_from(kb).map_err(|e| corrupt(format!("{table}.kb"), e))?),
        classification: reclassify(&class, &subtype, kinds.get(&product_id)),
        product_id,
        subtype,
        fixed_build: fb.and_then(|b| OsBuild::from_str(&b).ok()),
        supersedes: kbs_parse(&sup),
        restart_required: row.try_get("restart_required")?,
        document: row.try_get("document")?,
        released: None,
    })
}

impl SqliteStore {
    /// The `record` column of `table` rows matching `filter`, in `order`, packed by SQLite into
    /// one string (records joined by the ASCII record separator, which JSON text never holds
    /// unescaped): one row through the driver instead of one per record, which dominates
    /// loading 100,000 servers and 300,000 dependencies. `None` when the query fails or a record
    /// does not decode (callers fall back to a row-by-row read that names the bad record).
    /// [`Self::packed`] for one kind of estate object, in name order.
    async fn packed_kind<T: serde::de::DeserializeOwned>(
        &self,
        tenant: TenantId,
        kind: &'static str,
    ) -> Option<Vec<T>> {
        // Built from a fixed kind and an integer only, never from text input.
        let sql = format!(
            "SELECT group_concat(record, char(30) ORDER BY name) FROM estate_objects WHERE tenant_id = {} AND kind = '{kind}'",
            tenant.0
        );
        self.packed_sql(sql).await
    }

    /// The tenant's servers, packed (see [`Self::packed_kind`]).
    async fn packed_servers<T: serde::de::DeserializeOwned>(
        &self,
        tenant: TenantId,
    ) -> Option<Vec<T>> {
        let sql = format!(
            "SELECT group_concat(record, char(30) ORDER BY name COLLATE NOCASE) FROM servers WHERE tenant_id = {}",
            tenant.0
        );
        self.packed_sql(sql).await
    }

    /// Runs a packing query (static parts only) and decodes each record.
    async fn packed_sql<T: serde::de::DeserializeOwned>(&self, sql: String) -> Option<Vec<T>> {
        let (text,): (Option<String>,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await
            .ok()?;
        unpack(text)
    }

    /// Open (creating if missing) the database file and apply migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// A consistent copy of the whole database into a new file (benchmarks, backups).
    pub async fn vacuum_into(&self, path: &Path) -> Result<()> {
        sqlx::query("VACUUM INTO ?")
            .bind(path.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An in-memory database (tests).
    pub async fn memory() -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Record where the feed came from and commit the import.
    async fn commit_feed(
        mut tx: Transaction<'_, Sqlite>,
        row: FeedRow<'_>,
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        Self::record_feed(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(ImportOutcome::Stored)
    }

    async fn record_feed(
        tx: &mut Transaction<'_, Sqlite>,
        row: FeedRow<'_>,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO feed_imports (feed, key, source, as_of, revision, records, imported_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (feed, key) DO UPDATE SET source = excluded.source, as_of = excluded.as_of,
               revision = excluded.revision, records = excluded.records, imported_at = excluded.imported_at",
        )
        .bind(row.feed)
        .bind(row.key)
        .bind(row.source)
        .bind(row.as_of.map(ms))
        .bind(row.revision)
        .bind(row.records as i64)
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn upsert_products(tx: &mut Transaction<'_, Sqlite>, products: &[Product]) -> Result<()> {
        for chunk in products.chunks(BATCH) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO products (id, name, kind) ");
            let mut rows = Vec::with_capacity(chunk.len());
            for p in chunk {
                rows.push((
                    p.id.clone(),
                    p.name.clone(),
                    to_json("product kind", &p.kind)?,
                ));
            }
            qb.push_values(rows, |mut b, (id, name, kind)| {
                b.push_bind(id).push_bind(name).push_bind(kind);
            });
            qb.push(" ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind");
            qb.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn insert_servers(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: TenantId,
        servers: &[Server],
        now: Timestamp,
    ) -> Result<()> {
        Self::require_tenant(tx, tenant).await?;
        for chunk in servers.chunks(BATCH) {
            let mut rows = Vec::with_capacity(chunk.len());
            for s in chunk {
                rows.push((
                    crate::codec::random_id()?,
                    s.name.clone(),
                    to_json("server", s)?,
                ));
            }
            // A new server gets a random id; a stored one keeps its id (not in the update).
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO servers (id, tenant_id, name, record, updated_at) ");
            qb.push_values(rows, |mut b, (id, name, rec)| {
                b.push_bind(id)
                    .push_bind(tenant.0)
                    .push_bind(name)
                    .push_bind(rec)
                    .push_bind(ms(now));
            });
            qb.push(" ON CONFLICT (tenant_id, name) DO UPDATE SET name = excluded.name, record = excluded.record, updated_at = excluded.updated_at");
            qb.build().execute(&mut **tx).await?;
        }
        Self::bump_revision(tx, tenant).await
    }

    async fn require_tenant(tx: &mut Transaction<'_, Sqlite>, tenant: TenantId) -> Result<()> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM tenants WHERE id = ?")
            .bind(tenant.0)
            .fetch_optional(&mut **tx)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::Invalid(format!(
                "no tenant with id {}",
                tenant.0
            ))),
        }
    }

    pub(super) async fn bump_revision(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: TenantId,
    ) -> Result<()> {
        sqlx::query("UPDATE tenants SET revision = revision + 1 WHERE id = ?")
            .bind(tenant.0)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Replace the tenant's non-server estate objects (inside the caller's transaction).
    async fn replace_estate_objects(
        tx: &mut Transaction<'_, Sqlite>,
        tenant: TenantId,
        estate: &Estate,
    ) -> Result<()> {
        sqlx::query("DELETE FROM estate_objects WHERE tenant_id = ?")
            .bind(tenant.0)
            .execute(&mut **tx)
            .await?;
        let rows = estate_object_rows(estate)?;
        for chunk in rows.chunks(BATCH) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR REPLACE INTO estate_objects (tenant_id, kind, name, record) ",
            );
            qb.push_values(chunk, |mut b, (k, n, r)| {
                b.push_bind(tenant.0)
                    .push_bind(k.to_string())
                    .push_bind(n.clone())
                    .push_bind(r.clone());
            });
            qb.build().execute(&mut **tx).await?;
        }
        Self::bump_revision(tx, tenant).await
    }

    /// The stored servers among `names`, read inside `tx` (or the pool).
    async fn named<'e, E>(executor: E, tenant: TenantId, chunk: &[String]) -> Result<Vec<Server>>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT name, record FROM servers WHERE tenant_id = ");
        qb.push_bind(tenant.0);
        qb.push(" AND name IN (");
        let mut list = qb.separated(", ");
        for n in chunk {
            list.push_bind(n.as_str());
        }
        qb.push(")");
        let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(executor).await?;
        rows.into_iter()
            .map(|(name, rec)| {
                serde_json::from_str(&rec).map_err(|e| corrupt(format!("server {name}"), e))
            })
            .collect()
    }
}

impl Store for SqliteStore {
    async fn import_document(
        &self,
        doc: &DocumentImport<'_>,
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let prev = sqlx::query(
            "SELECT revision, as_of FROM feed_imports WHERE feed = 'msrc-cvrf' AND key = ?",
        )
        .bind(doc.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = prev {
            let rev: Option<String> = row.try_get("revision")?;
            let as_of: Option<i64> = row.try_get("as_of")?;
            let cur = doc.current_release.map(ms);
            if rev.as_deref() == doc.revision && as_of == cur {
                return Ok(ImportOutcome::Unchanged);
            }
            if let (Some(old), Some(new)) = (as_of, cur)
                && new < old
            {
                return Ok(ImportOutcome::Older);
            }
        }
        for sql in [
            "DELETE FROM vulnerabilities WHERE document = ?",
            "DELETE FROM affected WHERE document = ?",
            "DELETE FROM fixes WHERE document = ?",
        ] {
            sqlx::query(sql).bind(doc.id).execute(&mut *tx).await?;
        }
        Self::upsert_products(&mut tx, doc.products).await?;

        for chunk in doc.vulnerabilities.chunks(BATCH) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO vulnerabilities (cve, document, title, tag, cwe, exploited, publicly_disclosed, exploit_status, released) ",
            );
            qb.push_values(chunk, |mut b, v| {
                b.push_bind(v.cve.clone())
                    .push_bind(v.document.clone())
                    .push_bind(v.title.clone())
                    .push_bind(v.tag.clone())
                    .push_bind(v.cwe.clone())
                    .push_bind(v.exploited)
                    .push_bind(v.publicly_disclosed)
                    .push_bind(v.exploit_status.clone())
                    .push_bind(v.released.map(ms));
            });
            qb.push(
                " ON CONFLICT (cve, document) DO UPDATE SET title = excluded.title, tag = excluded.tag,
                  cwe = excluded.cwe, exploited = excluded.exploited, publicly_disclosed = excluded.publicly_disclosed,
                  exploit_status = excluded.exploit_status, released = excluded.released",
            );
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in doc.affected.chunks(BATCH) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO affected (cve, product_id, document, severity, impact, cvss_base, cvss_vector) ",
            );
            qb.push_values(chunk, |mut b, a| {
                b.push_bind(a.cve.clone())
                    .push_bind(a.product_id.clone())
                    .push_bind(doc.id.to_string())
                    .push_bind(a.severity.map(|s| s.label().to_string()))
                    .push_bind(a.impact.clone())
                    .push_bind(a.cvss_base.map(f64::from))
                    .push_bind(a.cvss_vector.clone());
            });
            qb.push(
                " ON CONFLICT (cve, product_id, document) DO UPDATE SET severity = excluded.severity,
                  impact = excluded.impact, cvss_base = excluded.cvss_base, cvss_vector = excluded.cvss_vector",
            );
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in doc.fixes.chunks(BATCH) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO fixes (cve, product_id, kb, document, subtype, classification, fixed_build, supersedes, restart_required) ",
            );
            qb.push_values(chunk, |mut b, f| {
                b.push_bind(f.cve.clone())
                    .push_bind(f.product_id.clone())
                    .push_bind(i64::from(f.kb.0))
                    .push_bind(f.document.clone())
                    .push_bind(f.subtype.clone())
                    .push_bind(class_text(f.classification))
                    .push_bind(f.fixed_build.map(|b| b.to_string()))
                    .push_bind(kbs_text(&f.supersedes))
                    .push_bind(f.restart_required.clone());
            });
            qb.push(
                " ON CONFLICT (cve, product_id, kb, document) DO UPDATE SET subtype = excluded.subtype,
                  classification = excluded.classification, fixed_build = excluded.fixed_build,
                  supersedes = excluded.supersedes, restart_required = excluded.restart_required",
            );
            qb.build().execute(&mut *tx).await?;
        }
        Self::commit_feed(
            tx,
            FeedRow {
                feed: "msrc-cvrf",
                key: doc.id,
                source: doc.source,
                as_of: doc.current_release,
                revision: doc.revision,
                records: doc.vulnerabilities.len(),
            },
            now,
        )
        .await
    }

    async fn import_kb_builds(
        &self,
        source: &str,
        products: &[Product],
        updates: &[Update],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0u64;
        Self::upsert_products(&mut tx, products).await?;
        for chunk in updates.chunks(BATCH) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO kb_builds (product_id, kb, document, subtype, classification, fixed_build, supersedes, restart_required) ",
            );
            qb.push_values(chunk, |mut b, u| {
                b.push_bind(u.product_id.clone())
                    .push_bind(i64::from(u.kb.0))
                    .push_bind(u.document.clone())
                    .push_bind(u.subtype.clone())
                    .push_bind(class_text(u.classification))
                    .push_bind(u.fixed_build.map(|b| b.to_string()))
                    .push_bind(kbs_text(&u.supersedes))
                    .push_bind(u.restart_required.clone());
            });
            qb.push(
                " ON CONFLICT (product_id, kb, document) DO UPDATE SET subtype = excluded.subtype,
                  classification = excluded.classification, fixed_build = excluded.fixed_build,
                  supersedes = excluded.supersedes, restart_required = excluded.restart_required
                  WHERE kb_builds.subtype IS NOT excluded.subtype OR kb_builds.classification IS NOT excluded.classification
                     OR kb_builds.fixed_build IS NOT excluded.fixed_build OR kb_builds.supersedes IS NOT excluded.supersedes
                     OR kb_builds.restart_required IS NOT excluded.restart_required",
            );
            changed += qb.build().execute(&mut *tx).await?.rows_affected();
        }
        if changed == 0 {
            return Ok(ImportOutcome::Unchanged);
        }
        Self::commit_feed(
            tx,
            FeedRow {
                feed: "kb-builds",
                key: "",
                source,
                as_of: None,
                revision: None,
                records: updates.len(),
            },
            now,
        )
        .await
    }

    async fn import_kev(
        &self,
        source: &str,
        version: &str,
        released: Option<Timestamp>,
        entries: &[KevEntry],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let prev: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT revision, as_of FROM feed_imports WHERE feed = 'kev' AND key = ''",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((rev, as_of)) = prev {
            if rev.as_deref() == Some(version) {
                return Ok(ImportOutcome::Unchanged);
            }
            if let (Some(old), Some(new)) = (as_of, released.map(ms))
                && new < old
            {
                return Ok(ImportOutcome::Older);
            }
        }
        sqlx::query("DELETE FROM kev").execute(&mut *tx).await?;
        for chunk in entries.chunks(BATCH) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR REPLACE INTO kev (cve, vendor, product, name, date_added, due, ransomware, required_action) ",
            );
            qb.push_values(chunk, |mut b, k| {
                b.push_bind(k.cve.clone())
                    .push_bind(k.vendor.clone())
                    .push_bind(k.product.clone())
                    .push_bind(k.name.clone())
                    .push_bind(k.date_added.to_string())
                    .push_bind(k.due.to_string())
                    .push_bind(k.known_ransomware)
                    .push_bind(k.required_action.clone());
            });
            qb.build().execute(&mut *tx).await?;
        }
        Self::commit_feed(
            tx,
            FeedRow {
                feed: "kev",
                key: "",
                source,
                as_of: released,
                revision: Some(version),
                records: entries.len(),
            },
            now,
        )
        .await
    }

    async fn import_epss(
        &self,
        source: &str,
        scores: &[EpssScore],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0u64;
        for chunk in scores.chunks(BATCH) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO epss (cve, epss, percentile, model_version, score_date) ",
            );
            qb.push_values(chunk, |mut b, s| {
                b.push_bind(s.cve.clone())
                    .push_bind(s.epss)
                    .push_bind(s.percentile)
                    .push_bind(s.model_version.clone())
                    .push_bind(s.score_date.to_string());
            });
            qb.push(
                " ON CONFLICT (cve) DO UPDATE SET epss = excluded.epss, percentile = excluded.percentile,
                  model_version = excluded.model_version, score_date = excluded.score_date
                  WHERE excluded.score_date > epss.score_date
                     OR (excluded.score_date = epss.score_date AND (excluded.epss <> epss.epss
                         OR excluded.percentile <> epss.percentile OR excluded.model_version <> epss.model_version))",
            );
            changed += qb.build().execute(&mut *tx).await?.rows_affected();
        }
        if changed == 0 {
            return Ok(ImportOutcome::Unchanged);
        }
        let newest = scores.iter().map(|s| s.score_date).max();
        let as_of = newest
            .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp());
        let model = scores
            .iter()
            .max_by_key(|s| s.score_date)
            .map(|s| s.model_version.as_str());
        Self::commit_feed(
            tx,
            FeedRow {
                feed: "epss",
                key: source,
                source,
                as_of,
                revision: model,
                records: scores.len(),
            },
            now,
        )
        .await
    }

    async fn import_nvd(
        &self,
        source: &str,
        records: &[NvdRecord],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0u64;
        for chunk in records.chunks(BATCH) {
            let mut rows = Vec::with_capacity(chunk.len());
            for r in chunk {
                rows.push((
                    r.cve.clone(),
                    r.last_modified.map(ms),
                    to_json("NVD record", r)?,
                ));
            }
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO nvd (cve, last_modified, record) ");
            qb.push_values(rows, |mut b, (cve, lm, rec)| {
                b.push_bind(cve).push_bind(lm).push_bind(rec);
            });
            qb.push(
                " ON CONFLICT (cve) DO UPDATE SET last_modified = excluded.last_modified, record = excluded.record
                  WHERE (excluded.last_modified IS NULL OR nvd.last_modified IS NULL
                         OR excluded.last_modified >= nvd.last_modified) AND excluded.record <> nvd.record",
            );
            changed += qb.build().execute(&mut *tx).await?.rows_affected();
        }
        if changed == 0 {
            return Ok(ImportOutcome::Unchanged);
        }
        let as_of = records.iter().filter_map(|r| r.last_modified).max();
        Self::commit_feed(
            tx,
            FeedRow {
                feed: "nvd",
                key: source,
                source,
                as_of,
                revision: None,
                records: records.len(),
            },
            now,
        )
        .await
    }

    async fn import_lifecycle(
        &self,
        source: &str,
        entries: &[LifecycleEntry],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut stored: Vec<(String, String)> =
            sqlx::query_as("SELECT cycle, record FROM lifecycle")
                .fetch_all(&mut *tx)
                .await?;
        let mut incoming = Vec::with_capacity(entries.len());
        for e in entries {
            incoming.push((e.cycle.clone(), to_json("lifecycle entry", e)?));
        }
        incoming.sort();
        stored.sort();
        if stored == incoming {
            return Ok(ImportOutcome::Unchanged);
        }
        sqlx::query("DELETE FROM lifecycle")
            .execute(&mut *tx)
            .await?;
        for e in entries {
            sqlx::query("INSERT OR REPLACE INTO lifecycle (cycle, record) VALUES (?, ?)")
                .bind(&e.cycle)
                .bind(to_json("lifecycle entry", e)?)
                .execute(&mut *tx)
                .await?;
        }
        Self::commit_feed(
            tx,
            FeedRow {
                feed: "lifecycle",
                key: "",
                source,
                as_of: None,
                revision: None,
                records: entries.len(),
            },
            now,
        )
        .await
    }

    async fn upsert_servers(
        &self,
        tenant: TenantId,
        servers: &[Server],
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::insert_servers(&mut tx, tenant, servers, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn merge_servers(
        &self,
        tenant: TenantId,
        servers: Vec<Server>,
        rest: Option<Estate>,
        merge: fn(Server, Server) -> Server,
        now: Timestamp,
    ) -> Result<usize> {
        // IMMEDIATE takes the write lock before the read: no other writer can change these
        // servers between our read and our write (a DEFERRED read-then-write would fail with
        // SQLITE_BUSY_SNAPSHOT instead of waiting).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
        let mut stored: HashMap<String, Server> = HashMap::new();
        for chunk in names.chunks(BATCH) {
            for s in Self::named(&mut *tx, tenant, chunk).await? {
                stored.insert(s.name.to_ascii_lowercase(), s);
            }
        }
        let merged: Vec<Server> = servers
            .into_iter()
            .map(|s| match stored.remove(&s.name.to_ascii_lowercase()) {
                Some(old) => merge(old, s),
                None => s,
            })
            .collect();
        Self::insert_servers(&mut tx, tenant, &merged, now).await?;
        if let Some(rest) = &rest {
            Self::replace_estate_objects(&mut tx, tenant, rest).await?;
        }
        tx.commit().await?;
        Ok(merged.len())
    }

    async fn import_estate(&self, tenant: TenantId, estate: &Estate, now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Self::insert_servers(&mut tx, tenant, &estate.servers, now).await?;
        Self::replace_estate_objects(&mut tx, tenant, estate).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn servers(&self, tenant: TenantId) -> Result<Vec<Server>> {
        if let Some(all) = self.packed_servers(tenant).await {
            return Ok(all);
        }
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, record FROM servers WHERE tenant_id = ? ORDER BY name COLLATE NOCASE",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(name, rec)| {
                serde_json::from_str(&rec).map_err(|e| corrupt(format!("server {name}"), e))
            })
            .collect()
    }

    async fn stored_servers(&self, tenant: TenantId) -> Result<Vec<StoredServer>> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, record, updated_at FROM servers WHERE tenant_id = ? ORDER BY name COLLATE NOCASE",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, name, rec, at)| stored_server(id, &name, &rec, at))
            .collect()
    }

    async fn server(&self, tenant: TenantId, name: &str) -> Result<Option<Server>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT record FROM servers WHERE tenant_id = ? AND name = ?")
                .bind(tenant.0)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(rec,)| {
            serde_json::from_str(&rec).map_err(|e| corrupt(format!("server {name}"), e))
        })
        .transpose()
    }

    async fn server_by_id(&self, tenant: TenantId, id: i64) -> Result<Option<StoredServer>> {
        let row: Option<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, record, updated_at FROM servers WHERE tenant_id = ? AND id = ?",
        )
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, name, rec, at)| stored_server(id, &name, &rec, at))
            .transpose()
    }

    async fn servers_named(&self, tenant: TenantId, names: &[String]) -> Result<Vec<Server>> {
        let mut out = Vec::new();
        // `name` is COLLATE NOCASE, so `IN` compares case-insensitively (ASCII).
        for chunk in names.chunks(BATCH) {
            out.extend(Self::named(&self.pool, tenant, chunk).await?);
        }
        Ok(out)
    }

    async fn estate_revision(&self, tenant: TenantId) -> Result<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT revision FROM tenants WHERE id = ?")
            .bind(tenant.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0).unwrap_or(-1))
    }

    async fn estate(&self, tenant: TenantId) -> Result<Estate> {
        let mut estate = Estate {
            servers: self.servers(tenant).await?,
            ..Default::default()
        };
        // Each kind packed into one row (see `packed`); a record that does not decode sends us
        // to the row-by-row read below, which names it.
        if let (Some(services), Some(dependencies), Some(windows), Some(blackouts)) = (
            self.packed_kind(tenant, "service").await,
            self.packed_kind(tenant, "dependency").await,
            self.packed_kind(tenant, "window").await,
            self.packed_kind(tenant, "blackout").await,
        ) && let (Some(backup_policies), Some(mut rings), Some(coverage), Some(capacity)) = (
            self.packed_kind(tenant, "backup_policy").await,
            self.packed_kind::<patchward_core::inventory::Ring>(tenant, "ring")
                .await,
            self.packed_kind(tenant, "coverage").await,
            self.packed_kind(tenant, "capacity").await,
        ) {
            rings.sort_by_key(|r| r.order);
            return Ok(Estate {
                services,
                dependencies,
                windows,
                blackouts,
                backup_policies,
                rings,
                coverage: coverage.into_iter().next(),
                capacity: capacity.into_iter().next().unwrap_or_default(),
                ..estate
            });
        }
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT kind, name, record FROM estate_objects WHERE tenant_id = ? ORDER BY kind, name",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await?;
        for (kind, name, rec) in rows {
            push_estate_object(&mut estate, &kind, &name, &rec)?;
        }
        estate.rings.sort_by_key(|r| r.order);
        Ok(estate)
    }

    async fn catalog(&self) -> Result<Catalog> {
        let mut c = Catalog::default();
        let mut rows =
            sqlx::query("SELECT id, name, kind FROM products ORDER BY id").fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let id: String = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            c.products.push(Product {
                kind: serde_json::from_str(&kind)
                    .map_err(|e| corrupt(format!("product {id}"), e))?,
                name: row.try_get("name")?,
                id,
            });
        }
        let mut rows = sqlx::query(
            "SELECT cve, document, title, tag, cwe, exploited, publicly_disclosed, exploit_status, released FROM vulnerabilities ORDER BY cve, document",
        )
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            c.vulnerabilities.push(Vulnerability {
                cve: row.try_get("cve")?,
                document: row.try_get("document")?,
                title: row.try_get("title")?,
                tag: row.try_get("tag")?,
                cwe: row.try_get("cwe")?,
                exploited: row.try_get("exploited")?,
                publicly_disclosed: row.try_get("publicly_disclosed")?,
                exploit_status: row.try_get("exploit_status")?,
                released: from_ms(row.try_get("released")?),
            });
        }
        let mut rows = sqlx::query(
            "SELECT cve, product_id, severity, impact, cvss_base, cvss_vector FROM affected ORDER BY cve, product_id, document",
        )
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let sev: Option<String> = row.try_get("severity")?;
            let base: Option<f64> = row.try_get("cvss_base")?;
            c.affected.push(Affected {
                cve: row.try_get("cve")?,
                product_id: row.try_get("product_id")?,
                severity: sev.as_deref().and_then(Severity::parse),
                impact: row.try_get("impact")?,
                cvss_base: base.map(|b| b as f32),
                cvss_vector: row.try_get("cvss_vector")?,
            });
        }
        // Classification is derived again from MSRC's SubType on every load, so a refined
        // rule applies to data imported before it.
        let kinds: std::collections::HashMap<String, patchward_core::product::ProductKind> = c
            .products
            .iter()
            .map(|p| (p.id.clone(), p.kind.clone()))
            .collect();
        let mut rows = sqlx::query(
            "SELECT cve, product_id, kb, document, subtype, classification, fixed_build, supersedes, restart_required FROM fixes",
        )
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let u = update_row(&row, &kinds, "fixes")?;
            c.fixes.push(Fix {
                cve: row.try_get("cve")?,
                product_id: u.product_id,
                kb: u.kb,
                subtype: u.subtype,
                classification: u.classification,
                fixed_build: u.fixed_build,
                supersedes: u.supersedes,
                restart_required: u.restart_required,
                document: u.document,
            });
        }
        let mut rows = sqlx::query(
            "SELECT product_id, kb, document, subtype, classification, fixed_build, supersedes, restart_required FROM kb_builds",
        )
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            c.updates.push(update_row(&row, &kinds, "kb_builds")?);
        }
        let mut rows = sqlx::query("SELECT cve, vendor, product, name, date_added, due, ransomware, required_action FROM kev")
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let cve: String = row.try_get("cve")?;
            let added: String = row.try_get("date_added")?;
            let due: String = row.try_get("due")?;
            c.kev.push(KevEntry {
                date_added: Date::from_str(&added).map_err(|e| corrupt(format!("kev {cve}"), e))?,
                due: Date::from_str(&due).map_err(|e| corrupt(format!("kev {cve}"), e))?,
                vendor: row.try_get("vendor")?,
                product: row.try_get("product")?,
                name: row.try_get("name")?,
                known_ransomware: row.try_get("ransomware")?,
                required_action: row.try_get("required_action")?,
                cve,
            });
        }
        let mut rows =
            sqlx::query("SELECT cve, epss, percentile, model_version, score_date FROM epss")
                .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let cve: String = row.try_get("cve")?;
            let d: String = row.try_get("score_date")?;
            c.epss.push(EpssScore {
                score_date: Date::from_str(&d).map_err(|e| corrupt(format!("epss {cve}"), e))?,
                epss: row.try_get("epss")?,
                percentile: row.try_get("percentile")?,
                model_version: row.try_get("model_version")?,
                cve,
            });
        }
        for (cve, rec) in sqlx::query_as::<_, (String, String)>("SELECT cve, record FROM nvd")
            .fetch_all(&self.pool)
            .await?
        {
            c.nvd
                .push(serde_json::from_str(&rec).map_err(|e| corrupt(format!("nvd {cve}"), e))?);
        }
        for (cycle, rec) in
            sqlx::query_as::<_, (String, String)>("SELECT cycle, record FROM lifecycle")
                .fetch_all(&self.pool)
                .await?
        {
            c.lifecycle.push(
                serde_json::from_str(&rec).map_err(|e| corrupt(format!("lifecycle {cycle}"), e))?,
            );
        }
        c.merge_duplicates();
        Ok(c)
    }

    async fn feed_status(&self) -> Result<Vec<FeedStatus>> {
        let rows = sqlx::query(
            "SELECT feed, key, source, as_of, revision, records, imported_at FROM feed_imports ORDER BY feed, key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(FeedStatus {
                    feed: r.try_get("feed")?,
                    key: r.try_get("key")?,
                    source: r.try_get("source")?,
                    as_of: from_ms(r.try_get("as_of")?),
                    revision: r.try_get("revision")?,
                    records: r.try_get("records")?,
                    imported_at: from_ms(r.try_get("imported_at")?)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                })
            })
            .collect()
    }

    async fn revisions(&self, tenant: TenantId) -> Result<(i64, String)> {
        let (rev, n, latest): (Option<i64>, i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT revision FROM tenants WHERE id = ?), COUNT(*), MAX(imported_at) FROM feed_imports",
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
                "SELECT COUNT(*) FROM servers WHERE tenant_id = ?",
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
            "INSERT INTO plans (tenant_id, cycle, created_at, record) VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant_id, cycle) DO UPDATE SET created_at = excluded.created_at, record = excluded.record",
        )
        .bind(tenant.0)
        .bind(cycle)
        .bind(ms(now))
        .bind(plan_json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn plan(&self, tenant: TenantId, cycle: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT record FROM plans WHERE tenant_id = ? AND cycle = ?")
                .bind(tenant.0)
                .bind(cycle)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    async fn plans(&self, tenant: TenantId) -> Result<Vec<(String, Timestamp)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT cycle, created_at FROM plans WHERE tenant_id = ? ORDER BY created_at DESC, cycle",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, t)| (c, from_ms(Some(t)).unwrap_or(Timestamp::UNIX_EPOCH)))
            .collect())
    }
}
