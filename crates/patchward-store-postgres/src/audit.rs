//! The audit log on PostgreSQL: appends lock the log first, so the chain never forks.

use crate::PgStore;
use jiff::Timestamp;
use patchward_store::codec::{from_ms, ms};
use patchward_store::{AuditEntry, AuditQuery, AuditStore, NewAuditEntry, Result, TenantId};
use sqlx::{Postgres, QueryBuilder, Row};

impl AuditStore for PgStore {
    async fn append_audit(
        &self,
        e: NewAuditEntry,
        chain: fn(&AuditEntry) -> String,
    ) -> Result<AuditEntry> {
        let mut tx = self.pool.begin().await?;
        // EXCLUSIVE blocks other appends (and any other write to the log) until we commit,
        // while readers go on; the read of the last entry below then sees every earlier append.
        sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (seq, prev_hash) = match last {
            Some((s, h)) => (s + 1, h),
            None => (1, String::new()),
        };
        let (tenant_seq,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(tenant_seq), 0) + 1 FROM audit_log WHERE tenant_id IS NOT DISTINCT FROM $1",
        )
        .bind(e.tenant.map(|t| t.0))
        .fetch_one(&mut *tx)
        .await?;
        let mut entry = AuditEntry {
            seq,
            tenant_seq,
            at: e.at,
            tenant: e.tenant,
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
            prev_hash,
            hash: String::new(),
        };
        entry.hash = chain(&entry);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, tenant_id, actor, action, target, detail, prev_hash, hash, tenant_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(entry.seq)
        .bind(ms(entry.at))
        .bind(entry.tenant.map(|t| t.0))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .bind(entry.tenant_seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(entry.seq)
        .bind(&entry.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT seq, at, tenant_id, actor, action, target, detail, prev_hash, hash, tenant_seq FROM audit_log WHERE 1 = 1",
        );
        if let Some(t) = q.tenant {
            qb.push(" AND tenant_id = ").push_bind(t.0);
        }
        if let Some(a) = &q.actor {
            qb.push(" AND actor = ").push_bind(a.clone());
        }
        if let Some(a) = &q.action {
            qb.push(" AND action = ").push_bind(a.clone());
        }
        if let Some(s) = q.since {
            qb.push(" AND at >= ").push_bind(ms(s));
        }
        if let Some(s) = q.after_seq {
            qb.push(" AND seq > ").push_bind(s);
        }
        if let Some(s) = q.after_tenant_seq {
            qb.push(" AND tenant_seq > ").push_bind(s);
        }
        qb.push(" ORDER BY seq");
        if let Some(l) = q.limit {
            qb.push(" LIMIT ").push_bind(l);
        }
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get("seq")?,
                    tenant_seq: r.try_get::<Option<i64>, _>("tenant_seq")?.unwrap_or(0),
                    at: from_ms(r.try_get("at")?).unwrap_or(Timestamp::UNIX_EPOCH),
                    tenant: r.try_get::<Option<i64>, _>("tenant_id")?.map(TenantId),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }
}
