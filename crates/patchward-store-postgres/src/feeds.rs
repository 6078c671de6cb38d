//! Feed imports (MSRC months, KB builds, KEV, EPSS, NVD, lifecycle) and the catalog read.

use crate::{BATCH, PgStore, fold_rows};
use futures_util::TryStreamExt;
use jiff::Timestamp;
use jiff::civil::Date;
use patchward_core::build::OsBuild;
use patchward_core::catalog::{Affected, Fix, Kb, Product, Severity, Update, Vulnerability};
use patchward_core::exposure::Catalog;
use patchward_core::intel::{EpssScore, KevEntry, LifecycleEntry, NvdRecord};
use patchward_core::product::ProductKind;
use patchward_store::codec::{
    class_text, corrupt, from_ms, kbs_parse, kbs_text, ms, reclassify, to_json,
};
use patchward_store::{DocumentImport, FeedStatus, ImportOutcome, Result};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use std::collections::HashMap;
use std::str::FromStr;

/// One row of `feed_imports`: where a feed came from and how current it is.
struct FeedRow<'a> {
    feed: &'a str,
    key: &'a str,
    source: &'a str,
    as_of: Option<Timestamp>,
    revision: Option<&'a str>,
    records: usize,
}

/// The update columns `fixes` and `kb_builds` share, decoded.
fn update_row(row: &PgRow, kinds: &HashMap<String, ProductKind>, table: &str) -> Result<Update> {
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

type Tx = Transaction<'static, Postgres>;

impl PgStore {
    /// Record where the feed came from and commit the import.
    async fn commit_feed(mut tx: Tx, row: FeedRow<'_>, now: Timestamp) -> Result<ImportOutcome> {
        sqlx::query(
            "INSERT INTO feed_imports (feed, key, source, as_of, revision, records, imported_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ImportOutcome::Stored)
    }

    async fn upsert_products(tx: &mut Tx, products: &[Product]) -> Result<()> {
        let mut rows = Vec::with_capacity(products.len());
        for p in products {
            rows.push((
                p.id.clone(),
                p.name.clone(),
                to_json("product kind", &p.kind)?,
            ));
        }
        let rows = fold_rows(rows, |r| r.0.clone(), |_, _| true);
        for chunk in rows.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> =
                QueryBuilder::new("INSERT INTO products (id, name, kind) ");
            qb.push_values(chunk, |mut b, (id, name, kind)| {
                b.push_bind(id.clone())
                    .push_bind(name.clone())
                    .push_bind(kind.clone());
            });
            qb.push(" ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind");
            qb.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub(crate) async fn document(
        &self,
        doc: &DocumentImport<'_>,
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let prev: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT revision, as_of FROM feed_imports WHERE feed = 'msrc-cvrf' AND key = $1",
        )
        .bind(doc.id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((rev, as_of)) = prev {
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
            "DELETE FROM vulnerabilities WHERE document = $1",
            "DELETE FROM affected WHERE document = $1",
            "DELETE FROM fixes WHERE document = $1",
        ] {
            sqlx::query(sql).bind(doc.id).execute(&mut *tx).await?;
        }
        Self::upsert_products(&mut tx, doc.products).await?;

        let vulns = fold_rows(
            doc.vulnerabilities,
            |v| (v.cve.clone(), v.document.clone()),
            |_, _| true,
        );
        for chunk in vulns.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
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
        let affected = fold_rows(
            doc.affected,
            |a| (a.cve.clone(), a.product_id.clone()),
            |_, _| true,
        );
        for chunk in affected.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
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
        let fixes = fold_rows(
            doc.fixes,
            |f| {
                (
                    f.cve.clone(),
                    f.product_id.clone(),
                    f.kb,
                    f.document.clone(),
                )
            },
            |_, _| true,
        );
        for chunk in fixes.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
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

    pub(crate) async fn kb_builds(
        &self,
        source: &str,
        products: &[Product],
        updates: &[Update],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0u64;
        Self::upsert_products(&mut tx, products).await?;
        let updates_once = fold_rows(
            updates,
            |u| (u.product_id.clone(), u.kb, u.document.clone()),
            |_, _| true,
        );
        for chunk in updates_once.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
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
                  WHERE kb_builds.subtype IS DISTINCT FROM excluded.subtype
                     OR kb_builds.classification IS DISTINCT FROM excluded.classification
                     OR kb_builds.fixed_build IS DISTINCT FROM excluded.fixed_build
                     OR kb_builds.supersedes IS DISTINCT FROM excluded.supersedes
                     OR kb_builds.restart_required IS DISTINCT FROM excluded.restart_required",
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

    pub(crate) async fn kev(
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
        let once = fold_rows(entries, |k| k.cve.clone(), |_, _| true);
        for chunk in once.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO kev (cve, vendor, product, name, date_added, due, ransomware, required_action) ",
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

    pub(crate) async fn epss(
        &self,
        source: &str,
        scores: &[EpssScore],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0u64;
        // A later score of the same CVE wins unless it is older (the upsert's own rule).
        let once = fold_rows(
            scores,
            |s| s.cve.clone(),
            |kept, new| new.score_date >= kept.score_date,
        );
        for chunk in once.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
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

    pub(crate) async fn nvd(
        &self,
        source: &str,
        records: &[NvdRecord],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0u64;
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            rows.push((
                r.cve.clone(),
                r.last_modified.map(ms),
                to_json("NVD record", r)?,
            ));
        }
        // A later record of the same CVE wins unless it is older (the upsert's own rule).
        let rows = fold_rows(
            rows,
            |r| r.0.clone(),
            |kept, new| match (kept.1, new.1) {
                (Some(old), Some(new)) => new >= old,
                _ => true,
            },
        );
        for chunk in rows.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> =
                QueryBuilder::new("INSERT INTO nvd (cve, last_modified, record) ");
            qb.push_values(chunk, |mut b, (cve, lm, rec)| {
                b.push_bind(cve.clone())
                    .push_bind(*lm)
                    .push_bind(rec.clone());
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

    pub(crate) async fn lifecycle(
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
        let rows = fold_rows(incoming.clone(), |r| r.0.clone(), |_, _| true);
        incoming.sort();
        stored.sort();
        if stored == incoming {
            return Ok(ImportOutcome::Unchanged);
        }
        sqlx::query("DELETE FROM lifecycle")
            .execute(&mut *tx)
            .await?;
        for (cycle, record) in rows {
            sqlx::query("INSERT INTO lifecycle (cycle, record) VALUES ($1, $2)")
                .bind(cycle)
                .bind(record)
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

    pub(crate) async fn read_catalog(&self) -> Result<Catalog> {
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
        drop(rows);
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
        drop(rows);
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
        drop(rows);
        // Classification is derived again from MSRC's SubType on every load, so a refined
        // rule applies to data imported before it.
        let kinds: HashMap<String, ProductKind> = c
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
        drop(rows);
        let mut rows = sqlx::query(
            "SELECT product_id, kb, document, subtype, classification, fixed_build, supersedes, restart_required FROM kb_builds",
        )
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            c.updates.push(update_row(&row, &kinds, "kb_builds")?);
        }
        drop(rows);
        let mut rows = sqlx::query(
            "SELECT cve, vendor, product, name, date_added, due, ransomware, required_action FROM kev",
        )
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
        drop(rows);
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
        drop(rows);
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

    pub(crate) async fn feeds(&self) -> Result<Vec<FeedStatus>> {
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
}
