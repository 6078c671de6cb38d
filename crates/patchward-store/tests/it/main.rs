//! The Store contract on SQLite: every story of `contract` on a fresh database file (WAL, a
//! pool of connections, so the concurrency stories really race), the first story in memory too,
//! and what only a file shows (reopening, a damaged record). `patchward-store-postgres` runs the
//! same stories on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;

use contract::{T, story};
use patchward_store::{SqliteStore, Store};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh SQLite file per story, removed afterwards (left behind when the story fails).
async fn sqlite<F, Fut>(story: F)
where
    F: FnOnce(SqliteStore) -> Fut,
    Fut: Future<Output = ()>,
{
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "patchward-store-contract-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    story(SqliteStore::open(&dir.join("contract.db")).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

contract::contract_tests!(sqlite);

#[tokio::test]
async fn sqlite_in_memory() {
    story(&SqliteStore::memory().await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_file_survives_reopen() {
    let dir = std::env::temp_dir().join(format!("patchward-store-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("contract.db");
    story(&SqliteStore::open(&path).await.unwrap()).await;
    // Reopening applies no migration twice and keeps everything.
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(again.counts(T).await.unwrap().servers, 2);
    assert_eq!(again.catalog().await.unwrap().fixes.len(), 1);
    assert_eq!(again.catalog().await.unwrap().vulnerabilities.len(), 2);
}

#[tokio::test]
async fn a_corrupt_estate_record_is_named_when_the_estate_is_loaded() {
    let dir = std::env::temp_dir().join(format!("patchward-store-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corrupt.db");
    let store = SqliteStore::open(&path).await.unwrap();
    story(&store).await;
    let good = store.estate(T).await.unwrap();
    assert!(!good.dependencies.is_empty() && !good.servers.is_empty());
    // Damage one dependency record behind the store's back (valid JSON, wrong shape).
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE estate_objects SET record = '{\"oops\": 1}' WHERE kind = 'dependency' AND rowid = (SELECT min(rowid) FROM estate_objects WHERE kind = 'dependency')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
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
}
