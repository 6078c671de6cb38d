//! Jobs on SQLite.

use super::SqliteStore;
use crate::codec::{from_ms, ms, random_id};
use crate::{JobRecord, JobStore, JobSummary, LeaseChange, NewJob, Result, TenantId};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const JOB_COLUMNS: &str = "id, tenant_id, cycle_id, server, ring, state, version, lease_agent, \
     lease_token, lease_until, body, created_at, updated_at";

fn job_row(r: &SqliteRow) -> Result<JobRecord> {
    Ok(JobRecord {
        id: r.try_get("id")?,
        tenant: TenantId(r.try_get("tenant_id")?),
        cycle: r.try_get("cycle_id")?,
        server: r.try_get("server")?,
        ring: r.try_get("ring")?,
        state: r.try_get("state")?,
        version: r.try_get("version")?,
        lease_agent: r.try_get("lease_agent")?,
        lease_token: r.try_get("lease_token")?,
        lease_until: from_ms(r.try_get("lease_until")?),
        body: r.try_get("body")?,
        created_at: from_ms(r.try_get("created_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
        updated_at: from_ms(r.try_get("updated_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
    })
}

impl JobStore for SqliteStore {
    async fn create_jobs(
        &self,
        tenant: TenantId,
        cycle: i64,
        jobs: &[NewJob],
        now: Timestamp,
    ) -> Result<usize> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut created = 0;
        for j in jobs {
            let done = sqlx::query(
                "INSERT INTO jobs (id, tenant_id, cycle_id, server, ring, state, version, body,
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
                 ON CONFLICT (cycle_id, server) DO NOTHING",
            )
            .bind(random_id()?)
            .bind(tenant.0)
            .bind(cycle)
            .bind(&j.server)
            .bind(&j.ring)
            .bind(&j.state)
            .bind(&j.body)
            .bind(ms(now))
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            created += done.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn jobs(&self, tenant: TenantId, cycle: i64) -> Result<Vec<JobRecord>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = ? AND cycle_id = ? ORDER BY server"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(cycle)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_row).collect()
    }

    async fn job_summaries(&self, tenant: TenantId, cycle: i64) -> Result<Vec<JobSummary>> {
        let rows = sqlx::query(
            "SELECT id, server, ring, state, version, updated_at FROM jobs
             WHERE tenant_id = ? AND cycle_id = ? ORDER BY server",
        )
        .bind(tenant.0)
        .bind(cycle)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobSummary {
                    id: r.try_get("id")?,
                    server: r.try_get("server")?,
                    ring: r.try_get("ring")?,
                    state: r.try_get("state")?,
                    version: r.try_get("version")?,
                    updated_at: from_ms(r.try_get("updated_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
                })
            })
            .collect()
    }

    async fn job(&self, tenant: TenantId, id: i64) -> Result<Option<JobRecord>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = ? AND id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_row).transpose()
    }

    async fn open_jobs_for_server(&self, tenant: TenantId, server: &str) -> Result<Vec<JobRecord>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = ? AND server = ?
             AND (state = 'rolling_back' OR (state IN ('waiting', 'blocked', 'running')
             AND cycle_id IN (SELECT id FROM cycles WHERE tenant_id = ? AND state = 'running')))
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(server)
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_row).collect()
    }

    async fn lapsed_jobs(&self, before: Timestamp) -> Result<Vec<JobRecord>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('running', 'rolling_back') AND lease_until < ?
             ORDER BY lease_until, id LIMIT 1000"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms(before))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_row).collect()
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
        let lease_sql = match lease {
            LeaseChange::Keep => "",
            LeaseChange::Grant { .. } => {
                ", lease_agent = ?, lease_until = ?, lease_token = lease_token + 1"
            }
            LeaseChange::Extend { .. } => ", lease_until = ?",
            LeaseChange::Release => ", lease_agent = NULL, lease_until = NULL",
        };
        let sql = format!(
            "UPDATE jobs SET state = ?, body = ?, version = version + 1, updated_at = ?{lease_sql}
             WHERE tenant_id = ? AND id = ? AND version = ? RETURNING {JOB_COLUMNS}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .bind(body)
            .bind(ms(now));
        match lease {
            LeaseChange::Grant { agent, until } => q = q.bind(agent).bind(ms(until)),
            LeaseChange::Extend { until } => q = q.bind(ms(until)),
            LeaseChange::Keep | LeaseChange::Release => {}
        }
        let row = q
            .bind(tenant.0)
            .bind(id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_row).transpose()
    }
}
