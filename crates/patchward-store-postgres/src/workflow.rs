//! Cycles, exceptions and workflow rules on PostgreSQL.

use crate::PgStore;
use jiff::Timestamp;
use patchward_store::codec::{from_ms, ms};
use patchward_store::{CycleRecord, ExceptionRecord, Result, StoreError, TenantId, WorkflowStore};
use sqlx::Row;
use sqlx::postgres::PgRow;

const CYCLE_COLUMNS: &str = "id, tenant_id, name, state, version, body, created_at, updated_at";
const EXCEPTION_COLUMNS: &str = "id, tenant_id, server, body, created_at, revoked_at";

fn cycle_row(r: &PgRow) -> Result<CycleRecord> {
    Ok(CycleRecord {
        id: r.try_get("id")?,
        tenant: TenantId(r.try_get("tenant_id")?),
        name: r.try_get("name")?,
        state: r.try_get("state")?,
        version: r.try_get("version")?,
        body: r.try_get("body")?,
        created_at: from_ms(r.try_get("created_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
        updated_at: from_ms(r.try_get("updated_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
    })
}

fn exception_row(r: &PgRow) -> Result<ExceptionRecord> {
    Ok(ExceptionRecord {
        id: r.try_get("id")?,
        tenant: TenantId(r.try_get("tenant_id")?),
        server: r.try_get("server")?,
        body: r.try_get("body")?,
        created_at: from_ms(r.try_get("created_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
        revoked_at: from_ms(r.try_get("revoked_at")?),
    })
}

impl WorkflowStore for PgStore {
    async fn create_cycle(
        &self,
        tenant: TenantId,
        name: &str,
        state: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<CycleRecord> {
        let sql = format!(
            "INSERT INTO cycles (id, tenant_id, name, state, version, body, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7) RETURNING {CYCLE_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(patchward_store::codec::random_id()?)
            .bind(tenant.0)
            .bind(name)
            .bind(state)
            .bind(body)
            .bind(ms(now))
            .bind(ms(now))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    StoreError::Conflict(format!("cycle {name:?}"))
                }
                _ => StoreError::Db(e),
            })?;
        cycle_row(&row)
    }

    async fn cycle(&self, tenant: TenantId, id: i64) -> Result<Option<CycleRecord>> {
        let sql = format!("SELECT {CYCLE_COLUMNS} FROM cycles WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cycle_row).transpose()
    }

    async fn cycles(&self, tenant: TenantId) -> Result<Vec<CycleRecord>> {
        let sql = format!(
            "SELECT {CYCLE_COLUMNS} FROM cycles WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(cycle_row).collect()
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
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE cycles SET state = $1, body = $2, version = version + 1, updated_at = $3
             WHERE tenant_id = $4 AND id = $5 AND version = $6 RETURNING {CYCLE_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(body)
            .bind(ms(now))
            .bind(tenant.0)
            .bind(id)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rec = cycle_row(&row)?;
        if let Some(plan) = plan {
            sqlx::query(
                "INSERT INTO plans (tenant_id, cycle, created_at, record) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, cycle) DO UPDATE SET created_at = excluded.created_at, record = excluded.record",
            )
            .bind(tenant.0)
            .bind(&rec.name)
            .bind(ms(now))
            .bind(plan)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(rec))
    }

    async fn create_exception(
        &self,
        tenant: TenantId,
        server: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<ExceptionRecord> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO exceptions (id, tenant_id, server, body, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING {EXCEPTION_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(patchward_store::codec::random_id()?)
            .bind(tenant.0)
            .bind(server)
            .bind(body)
            .bind(ms(now))
            .fetch_one(&mut *tx)
            .await?;
        let rec = exception_row(&row)?;
        PgStore::bump_revision(&mut tx, tenant).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn exceptions(&self, tenant: TenantId) -> Result<Vec<ExceptionRecord>> {
        let sql = format!(
            "SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE tenant_id = $1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(exception_row).collect()
    }

    async fn exception(&self, tenant: TenantId, id: i64) -> Result<Option<ExceptionRecord>> {
        let sql =
            format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(exception_row).transpose()
    }

    async fn revoke_exception(
        &self,
        tenant: TenantId,
        id: i64,
        body: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE exceptions SET revoked_at = $1, body = $2
             WHERE tenant_id = $3 AND id = $4 AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(body)
        .bind(tenant.0)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            PgStore::bump_revision(&mut tx, tenant).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn workflow_rules(&self, tenant: TenantId) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT body FROM workflow_rules WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    async fn set_workflow_rules(&self, tenant: TenantId, body: &str, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO workflow_rules (tenant_id, body, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(body)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
