//! Tenants, users, API tokens and sessions on PostgreSQL.

use crate::{PgStore, conflict, fold};
use jiff::Timestamp;
use patchward_store::codec::{from_ms, ms};
use patchward_store::{
    AccessStore, NewToken, NewUser, Result, SessionRecord, StoreError, Tenant, TenantId,
    TokenRecord, UserRecord,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

const USER_COLUMNS: &str = "u.id, u.tenant_id, u.name, u.role, u.password_hash, u.disabled, u.failed_logins, u.locked_until, u.created_at";

const TOKEN_COLUMNS: &str = "t.id AS t_id, t.user_id AS t_user_id, t.label AS t_label, \
     t.created_at AS t_created_at, t.expires_at AS t_expires_at, t.revoked_at AS t_revoked_at";

fn user_row(r: &PgRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: r.try_get("id")?,
        tenant: r.try_get::<Option<i64>, _>("tenant_id")?.map(TenantId),
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        disabled: r.try_get("disabled")?,
        failed_logins: r.try_get("failed_logins")?,
        locked_until: from_ms(r.try_get("locked_until")?),
        created_at: from_ms(r.try_get("created_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
    })
}

fn token_row(r: &PgRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.try_get("t_id")?,
        user_id: r.try_get("t_user_id")?,
        label: r.try_get("t_label")?,
        created_at: from_ms(r.try_get("t_created_at")?).unwrap_or(Timestamp::UNIX_EPOCH),
        expires_at: from_ms(r.try_get("t_expires_at")?),
        revoked_at: from_ms(r.try_get("t_revoked_at")?),
    })
}

fn tenant_row(r: (i64, String, i64)) -> Tenant {
    Tenant {
        id: TenantId(r.0),
        name: r.1,
        created_at: from_ms(Some(r.2)).unwrap_or(Timestamp::UNIX_EPOCH),
    }
}

impl AccessStore for PgStore {
    async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT id, name, created_at FROM tenants ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(tenant_row).collect())
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let row: Option<(i64, String, i64)> =
            sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE lower(name) = $1")
                .bind(fold(name))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(tenant_row))
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        let row: Option<(i64, String, i64)> =
            sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(tenant_row))
    }

    async fn ensure_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant> {
        sqlx::query(
            "INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (lower(name)) DO NOTHING",
        )
        .bind(name)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        self.tenant_by_name(name)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("tenant {name} could not be created")))
    }

    async fn create_user(&self, user: &NewUser<'_>, now: Timestamp) -> Result<UserRecord> {
        let id: (i64,) = sqlx::query_as(
            "INSERT INTO users (id, tenant_id, name, role, password_hash, created_at) VALUES ($6, $1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user.tenant.map(|t| t.0))
        .bind(user.name)
        .bind(user.role)
        .bind(user.password_hash)
        .bind(ms(now))
        .bind(patchward_store::codec::random_id()?)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, || format!("user {}", user.name)))?;
        self.user(id.0)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("user {} vanished", user.name)))
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE lower(u.name) = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(fold(name))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn users(&self, tenant: Option<TenantId>) -> Result<Vec<UserRecord>> {
        let rows = match tenant {
            Some(t) => {
                let sql = format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 ORDER BY lower(u.name)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(t.0)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY lower(u.name)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(user_row).collect()
    }

    async fn set_user_disabled(&self, id: i64, disabled: bool, now: Timestamp) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if disabled {
            // A disabled user's tokens are revoked and sessions ended at once: enabling the
            // account again brings neither back.
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn record_login(
        &self,
        id: i64,
        ok: bool,
        lock_after: i64,
        lock_until: Timestamp,
    ) -> Result<i64> {
        if ok {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
            return Ok(0);
        }
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE users SET failed_logins = failed_logins + 1, locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END WHERE id = $3 RETURNING failed_logins",
        )
        .bind(lock_after)
        .bind(ms(lock_until))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    async fn create_token(&self, token: &NewToken<'_>, now: Timestamp) -> Result<TokenRecord> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (id, user_id, hash, label, created_at, expires_at) VALUES ($6, $1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(token.user_id)
        .bind(token.hash)
        .bind(token.label)
        .bind(ms(now))
        .bind(token.expires_at.map(ms))
        .bind(patchward_store::codec::random_id()?)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, || "token".to_string()))?;
        self.token(id)
            .await?
            .ok_or_else(|| StoreError::Invalid("token vanished".into()))
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<(TokenRecord, UserRecord)>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((token_row(&r)?, user_row(&r)?))).transpose()
    }

    async fn token(&self, id: i64) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn tokens(&self, user: Option<i64>) -> Result<Vec<TokenRecord>> {
        let rows = match user {
            Some(u) => {
                let sql = format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = $1 ORDER BY t.created_at DESC, t.id DESC"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(u)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens t ORDER BY t.created_at DESC, t.id DESC"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(token_row).collect()
    }

    async fn revoke_token(&self, id: i64, now: Timestamp) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.hash)
        .bind(s.user_id)
        .bind(&s.csrf)
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, hash: &str) -> Result<Option<(SessionRecord, UserRecord)>> {
        let sql = format!(
            "SELECT s.hash AS s_hash, s.user_id AS s_user_id, s.csrf AS s_csrf, s.created_at AS s_created_at, \
             s.expires_at AS s_expires_at, {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok((
                SessionRecord {
                    hash: r.try_get("s_hash")?,
                    user_id: r.try_get("s_user_id")?,
                    csrf: r.try_get("s_csrf")?,
                    created_at: from_ms(r.try_get("s_created_at")?)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                    expires_at: from_ms(r.try_get("s_expires_at")?)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                },
                user_row(&r)?,
            ))
        })
        .transpose()
    }

    async fn delete_session(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
