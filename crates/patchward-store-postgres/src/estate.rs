//! Servers and the rest of each tenant's estate.

use crate::{BATCH, PgStore, fold, fold_rows};
use jiff::Timestamp;
use patchward_core::inventory::{Estate, Ring, Server};
use patchward_store::codec::{
    corrupt, estate_object_rows, ms, push_estate_object, stored_server, to_json, unpack,
};
use patchward_store::{Result, StoreError, StoredServer, TenantId};
use sqlx::{Postgres, QueryBuilder, Transaction};
use std::collections::HashMap;

type Tx = Transaction<'static, Postgres>;

impl PgStore {
    /// Lock the tenant's row until the transaction ends: every estate writer takes this lock
    /// before it reads, so a read-merge-write never loses another writer's change (the
    /// equivalent of SQLite's `BEGIN IMMEDIATE`). A tenant that does not exist is an error.
    async fn lock_tenant(tx: &mut Tx, tenant: TenantId) -> Result<()> {
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM tenants WHERE id = $1 FOR UPDATE")
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

    pub(crate) async fn bump_revision(tx: &mut Tx, tenant: TenantId) -> Result<()> {
        sqlx::query("UPDATE tenants SET revision = revision + 1 WHERE id = $1")
            .bind(tenant.0)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Insert or replace servers by name (ASCII case-insensitive), inside the caller's
    /// transaction, which holds the tenant's lock.
    async fn insert_servers(
        tx: &mut Tx,
        tenant: TenantId,
        servers: &[Server],
        now: Timestamp,
    ) -> Result<()> {
        let mut rows = Vec::with_capacity(servers.len());
        for s in servers {
            rows.push((s.name.clone(), to_json("server", s)?));
        }
        let rows = fold_rows(rows, |r| fold(&r.0), |_, _| true);
        for chunk in rows.chunks(BATCH) {
            let ids: Vec<i64> = chunk
                .iter()
                .map(|_| patchward_store::codec::random_id())
                .collect::<Result<_>>()?;
            // A new server gets a random id; a stored one keeps its id (not in the update).
            let mut qb: QueryBuilder<Postgres> =
                QueryBuilder::new("INSERT INTO servers (id, tenant_id, name, record, updated_at) ");
            qb.push_values(chunk.iter().zip(ids), |mut b, ((name, rec), id)| {
                b.push_bind(id)
                    .push_bind(tenant.0)
                    .push_bind(name.clone())
                    .push_bind(rec.clone())
                    .push_bind(ms(now));
            });
            qb.push(
                " ON CONFLICT (tenant_id, lower(name)) DO UPDATE SET name = excluded.name, record = excluded.record, updated_at = excluded.updated_at",
            );
            qb.build().execute(&mut **tx).await?;
        }
        Self::bump_revision(tx, tenant).await
    }

    /// Replace the tenant's non-server estate objects (inside the caller's transaction).
    async fn replace_estate_objects(tx: &mut Tx, tenant: TenantId, estate: &Estate) -> Result<()> {
        sqlx::query("DELETE FROM estate_objects WHERE tenant_id = $1")
            .bind(tenant.0)
            .execute(&mut **tx)
            .await?;
        let rows = estate_object_rows(estate)?;
        let rows = fold_rows(rows, |r| (r.0, fold(&r.1)), |_, _| true);
        for chunk in rows.chunks(BATCH) {
            let mut qb: QueryBuilder<Postgres> =
                QueryBuilder::new("INSERT INTO estate_objects (tenant_id, kind, name, record) ");
            qb.push_values(chunk, |mut b, (k, n, r)| {
                b.push_bind(tenant.0)
                    .push_bind(k.to_string())
                    .push_bind(n.clone())
                    .push_bind(r.clone());
            });
            qb.push(
                " ON CONFLICT (tenant_id, kind, lower(name)) DO UPDATE SET name = excluded.name, record = excluded.record",
            );
            qb.build().execute(&mut **tx).await?;
        }
        Self::bump_revision(tx, tenant).await
    }

    /// The stored servers among `names` (ASCII case-insensitive), read inside a transaction or
    /// from the pool.
    pub(crate) async fn named<'e, E>(
        executor: E,
        tenant: TenantId,
        names: &[String],
    ) -> Result<Vec<Server>>
    where
        E: sqlx::Executor<'e, Database = Postgres>,
    {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let folded: Vec<String> = names.iter().map(|n| fold(n)).collect();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, record FROM servers WHERE tenant_id = $1 AND lower(name) = ANY($2)",
        )
        .bind(tenant.0)
        .bind(folded)
        .fetch_all(executor)
        .await?;
        rows.into_iter()
            .map(|(name, rec)| {
                serde_json::from_str(&rec).map_err(|e| corrupt(format!("server {name}"), e))
            })
            .collect()
    }

    pub(crate) async fn upsert(
        &self,
        tenant: TenantId,
        servers: &[Server],
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::lock_tenant(&mut tx, tenant).await?;
        Self::insert_servers(&mut tx, tenant, servers, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn merge(
        &self,
        tenant: TenantId,
        servers: Vec<Server>,
        rest: Option<Estate>,
        merge: fn(Server, Server) -> Server,
        now: Timestamp,
    ) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        // The tenant's lock before the read: no other writer changes these servers between
        // our read and our commit. (READ COMMITTED: the read after the lock sees what the
        // previous holder committed.)
        Self::lock_tenant(&mut tx, tenant).await?;
        let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
        let mut stored: HashMap<String, Server> = HashMap::new();
        for s in Self::named(&mut *tx, tenant, &names).await? {
            stored.insert(fold(&s.name), s);
        }
        let merged: Vec<Server> = servers
            .into_iter()
            .map(|s| match stored.remove(&fold(&s.name)) {
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

    pub(crate) async fn replace_estate(
        &self,
        tenant: TenantId,
        estate: &Estate,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::lock_tenant(&mut tx, tenant).await?;
        Self::insert_servers(&mut tx, tenant, &estate.servers, now).await?;
        Self::replace_estate_objects(&mut tx, tenant, estate).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The `record` column of the rows a query selects, packed by PostgreSQL into one string
    /// (`string_agg` with the record separator): one row through the driver instead of one
    /// per record. `None` when the query fails or a record does not decode (callers fall back
    /// to a row-by-row read that names the bad record).
    async fn packed<T: serde::de::DeserializeOwned>(
        &self,
        sql: &'static str,
        tenant: TenantId,
        kind: Option<&'static str>,
    ) -> Option<Vec<T>> {
        let mut q = sqlx::query_as(sql).bind(tenant.0);
        if let Some(kind) = kind {
            q = q.bind(kind);
        }
        let (text,): (Option<String>,) = q.fetch_one(&self.pool).await.ok()?;
        unpack(text)
    }

    async fn packed_kind<T: serde::de::DeserializeOwned>(
        &self,
        tenant: TenantId,
        kind: &'static str,
    ) -> Option<Vec<T>> {
        self.packed(
            "SELECT string_agg(record, chr(30) ORDER BY lower(name)) FROM estate_objects WHERE tenant_id = $1 AND kind = $2",
            tenant,
            Some(kind),
        )
        .await
    }

    pub(crate) async fn all_servers(&self, tenant: TenantId) -> Result<Vec<Server>> {
        if let Some(all) = self
            .packed(
                "SELECT string_agg(record, chr(30) ORDER BY lower(name)) FROM servers WHERE tenant_id = $1",
                tenant,
                None,
            )
            .await
        {
            return Ok(all);
        }
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, record FROM servers WHERE tenant_id = $1 ORDER BY lower(name)",
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

    pub(crate) async fn all_stored_servers(&self, tenant: TenantId) -> Result<Vec<StoredServer>> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, record, updated_at FROM servers WHERE tenant_id = $1 ORDER BY lower(name)",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, name, rec, at)| stored_server(id, &name, &rec, at))
            .collect()
    }

    pub(crate) async fn one_server(&self, tenant: TenantId, name: &str) -> Result<Option<Server>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT record FROM servers WHERE tenant_id = $1 AND lower(name) = $2")
                .bind(tenant.0)
                .bind(fold(name))
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(rec,)| {
            serde_json::from_str(&rec).map_err(|e| corrupt(format!("server {name}"), e))
        })
        .transpose()
    }

    pub(crate) async fn one_server_by_id(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Option<StoredServer>> {
        let row: Option<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, record, updated_at FROM servers WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, name, rec, at)| stored_server(id, &name, &rec, at))
            .transpose()
    }

    pub(crate) async fn whole_estate(&self, tenant: TenantId) -> Result<Estate> {
        let mut estate = Estate {
            servers: self.all_servers(tenant).await?,
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
            self.packed_kind::<Ring>(tenant, "ring").await,
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
            "SELECT kind, name, record FROM estate_objects WHERE tenant_id = $1 ORDER BY kind, lower(name)",
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
}
