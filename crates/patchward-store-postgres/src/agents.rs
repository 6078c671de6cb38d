//! Enrolment tokens and agents on PostgreSQL.

use crate::PgStore;
use jiff::Timestamp;
use patchward_store::codec::{from_ms, ms, random_id};
use patchward_store::{
    AgentRecord, AgentStore, EnrolTokenRecord, Enrolment, NewAgent, NewEnrolToken, Result,
    TenantId, TokenRefusal,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

const TOKEN_COLUMNS: &str =
    "id, tenant_id, label, uses_left, created_by, created_at, expires_at, revoked_at";
const AGENT_COLUMNS: &str = "id, tenant_id, server, agent_version, protocol, enrolled_at, \
     last_seen, revoked_at, inventory_digest, reported_at";

fn token_row(r: &PgRow) -> Result<EnrolTokenRecord> {
    Ok(EnrolTokenRecord {
        id: r.try_get("id")?,
        tenant: TenantId(r.try_get("tenant_id")?),
        label: r.try_get("label")?,
        uses_left: r.try_get("uses_left")?,
        created_by: r.try_get("created_by")?,
        created_at: from_ms(r.try_get("created_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
        expires_at: from_ms(r.try_get("expires_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
        revoked_at: from_ms(r.try_get("revoked_at")?),
    })
}

fn agent_row(r: &PgRow) -> Result<AgentRecord> {
    Ok(AgentRecord {
        id: r.try_get("id")?,
        tenant: TenantId(r.try_get("tenant_id")?),
        server: r.try_get("server")?,
        agent_version: r.try_get("agent_version")?,
        protocol: r.try_get("protocol")?,
        enrolled_at: from_ms(r.try_get("enrolled_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
        last_seen: from_ms(r.try_get("last_seen")?).unwrap_or(Timestamp::UNIX_EPOCH),
        revoked_at: from_ms(r.try_get("revoked_at")?),
        inventory_digest: r.try_get("inventory_digest")?,
        reported_at: from_ms(r.try_get("reported_at")?),
    })
}

impl AgentStore for PgStore {
    async fn create_enrol_token(
        &self,
        t: &NewEnrolToken<'_>,
        now: Timestamp,
    ) -> Result<EnrolTokenRecord> {
        let sql = format!(
            "INSERT INTO enrol_tokens (id, tenant_id, hash, label, uses_left, created_by,
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TOKEN_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(random_id()?)
            .bind(t.tenant.0)
            .bind(t.hash)
            .bind(t.label)
            .bind(t.uses)
            .bind(t.created_by)
            .bind(ms(now))
            .bind(ms(t.expires_at))
            .fetch_one(&self.pool)
            .await?;
        token_row(&row)
    }

    async fn enrol_tokens(&self, tenant: TenantId) -> Result<Vec<EnrolTokenRecord>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM enrol_tokens WHERE tenant_id = $1
             ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_enrol_token(&self, tenant: TenantId, id: i64, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE enrol_tokens SET revoked_at = $1
             WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(tenant.0)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enrol_agents(
        &self,
        token_hash: &str,
        agents: &[NewAgent<'_>],
        now: Timestamp,
    ) -> Result<std::result::Result<Vec<Enrolment>, TokenRefusal>> {
        // FOR UPDATE: the token's row is locked from reading it to the commit, so two
        // enrolments cannot both take its last use.
        let mut tx = self.pool.begin().await?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM enrol_tokens WHERE hash = $1 FOR UPDATE");
        let token = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(token) = token.as_ref().map(token_row).transpose()? else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        if let Some(refusal) = token.refusal(now) {
            return Ok(Err(refusal));
        }
        sqlx::query("UPDATE enrol_tokens SET uses_left = uses_left - 1 WHERE id = $1")
            .bind(token.id)
            .execute(&mut *tx)
            .await?;
        let mut enrolled = Vec::with_capacity(agents.len());
        for agent in agents {
            let replaced: Vec<i64> = sqlx::query_scalar(
                "UPDATE agents SET revoked_at = $1
                 WHERE tenant_id = $2 AND lower(server) = lower($3) AND revoked_at IS NULL
                 RETURNING id",
            )
            .bind(ms(now))
            .bind(token.tenant.0)
            .bind(agent.server)
            .fetch_all(&mut *tx)
            .await?;
            let sql = format!(
                "INSERT INTO agents (id, tenant_id, server, credential_hash, agent_version, protocol,
                 enrolled_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {AGENT_COLUMNS}"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(random_id()?)
                .bind(token.tenant.0)
                .bind(agent.server)
                .bind(agent.credential_hash)
                .bind(agent.agent_version)
                .bind(agent.protocol)
                .bind(ms(now))
                .bind(ms(now))
                .fetch_one(&mut *tx)
                .await?;
            enrolled.push(Enrolment {
                agent: agent_row(&row)?,
                token: token.id,
                replaced,
            });
        }
        tx.commit().await?;
        Ok(Ok(enrolled))
    }

    async fn agent_by_credential(&self, hash: &str) -> Result<Option<AgentRecord>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE credential_hash = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(agent_row).transpose()
    }

    async fn agent(&self, tenant: TenantId, id: i64) -> Result<Option<AgentRecord>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(agent_row).transpose()
    }

    async fn agents(&self, tenant: TenantId) -> Result<Vec<AgentRecord>> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1
             ORDER BY lower(server), enrolled_at DESC, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(agent_row).collect()
    }

    async fn touch_agents(&self, seen: &[(i64, Timestamp)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
        let ats: Vec<i64> = seen.iter().map(|(_, at)| ms(*at)).collect();
        sqlx::query(
            "UPDATE agents SET last_seen = s.at
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS s (id, at)
             WHERE agents.id = s.id AND agents.last_seen < s.at",
        )
        .bind(&ids)
        .bind(&ats)
        .execute(&self.pool)
        .await?;
        Ok(())
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
        sqlx::query(
            "UPDATE agents SET inventory_digest = $1, report = $2, reported_at = $3,
             agent_version = $4, protocol = $5, last_seen = GREATEST(last_seen, $6) WHERE id = $7",
        )
        .bind(digest)
        .bind(report)
        .bind(ms(now))
        .bind(agent_version)
        .bind(protocol)
        .bind(ms(now))
        .bind(agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn agent_report(&self, tenant: TenantId, id: i64) -> Result<Option<String>> {
        let report: Option<Option<String>> =
            sqlx::query_scalar("SELECT report FROM agents WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(report.flatten())
    }

    async fn revoke_agent(&self, tenant: TenantId, id: i64, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE agents SET revoked_at = $1
             WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(tenant.0)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
