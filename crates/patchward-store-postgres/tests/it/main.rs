//! The Store contract on PostgreSQL: the same stories as SQLite (`contract.rs`, included from
//! `patchward-store`), each on a database of its own, created on the server that
//! `PATCHWARD_TEST_PG` names and dropped afterwards, so runs never see each other's data.
//!
//! Without `PATCHWARD_TEST_PG` the tests say why and pass, unless `CI=true`: CI must run them
//! (`.ci/run` installs and starts PostgreSQL and sets the variable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../patchward-store/tests/it/contract.rs"]
mod contract;

use contract::{T, story};
use patchward_store::Store;
use patchward_store_postgres::PgStore;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server to test on, or `None` (after saying why) when there is none outside CI.
fn server_url() -> Option<String> {
    match std::env::var("PATCHWARD_TEST_PG") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "PATCHWARD_TEST_PG is not set but CI=true: the PostgreSQL contract tests must run in \
             CI. Set PATCHWARD_TEST_PG=postgres://USER:PASSWORD@HOST:PORT/DATABASE (a role that \
             may create databases); .ci/run starts a local server and sets it."
        ),
        _ => {
            eprintln!(
                "skipped: PATCHWARD_TEST_PG is not set (postgres://USER:PASSWORD@HOST:PORT/DATABASE, \
                 a role that may create databases)"
            );
            None
        }
    }
}

/// A database of its own for one test, on the server `PATCHWARD_TEST_PG` names.
struct TestDb {
    admin: PgConnectOptions,
    name: String,
}

impl TestDb {
    async fn create() -> Option<TestDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let url = server_url()?;
        let admin =
            PgConnectOptions::from_str(&url).expect("PATCHWARD_TEST_PG is a postgres:// URL");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "patchward_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to PATCHWARD_TEST_PG");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE (does the role have CREATEDB?)");
        conn.close().await.unwrap();
        Some(TestDb { admin, name })
    }

    fn options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }

    /// Cleanup. `WITH (FORCE)` cannot end a backend of another role (an autovacuum worker
    /// busy with the test's tables): such a drop is retried, and a database still left
    /// behind is reported, not a test failure (the test's own outcome is decided elsewhere).
    async fn drop_db(self) {
        let mut conn = PgConnection::connect_with(&self.admin).await.unwrap();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let mut last = None;
        for _ in 0..10 {
            match sqlx::query(AssertSqlSafe(sql.clone()))
                .execute(&mut conn)
                .await
            {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
            }
        }
        if let Some(e) = last {
            eprintln!("warning: test database {} left behind: {e}", self.name);
        }
        conn.close().await.unwrap();
    }

    /// Run `f` on a store over this database, drop the database, then fail if `f` failed.
    async fn run<F, Fut>(self, f: F)
    where
        F: FnOnce(PgStore) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let store = PgStore::connect_with(self.options()).await.unwrap();
        let outcome = tokio::spawn(f(store.clone())).await;
        store.close().await;
        self.drop_db().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// The runner `contract_tests!` expands with: a fresh database per story.
async fn pg<F, Fut>(f: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if let Some(db) = TestDb::create().await {
        db.run(f).await;
    }
}

contract::contract_tests!(pg);

#[tokio::test]
async fn reconnecting_applies_no_migration_twice_and_keeps_everything() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let opts = db.options();
    db.run(|store| async move {
        story(&store).await;
        store.close().await;
        let again = PgStore::connect_with(opts).await.unwrap();
        assert_eq!(again.counts(T).await.unwrap().servers, 2);
        assert_eq!(again.catalog().await.unwrap().fixes.len(), 1);
        assert_eq!(again.catalog().await.unwrap().vulnerabilities.len(), 2);
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(again.pool())
            .await
            .unwrap();
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            })
            .count();
        assert!(files >= 4);
        assert_eq!(n as usize, files, "every migration once");
        again.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_estate_record_is_named_when_the_estate_is_loaded() {
    pg(|store| async move {
        story(&store).await;
        let good = store.estate(T).await.unwrap();
        assert!(!good.dependencies.is_empty() && !good.servers.is_empty());
        // Damage one dependency record behind the store's back (valid JSON, wrong shape).
        sqlx::query(
            "UPDATE estate_objects SET record = '{\"oops\": 1}' WHERE kind = 'dependency' AND name = (SELECT min(name) FROM estate_objects WHERE kind = 'dependency')",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let err = store.estate(T).await.unwrap_err().to_string();
        assert!(err.contains("dependency"), "{err}");
        // Servers still load in bulk, and in name order.
        let servers = store.servers(T).await.unwrap();
        assert_eq!(
            servers.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            good.servers
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        );
    })
    .await;
}
