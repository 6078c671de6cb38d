//! One module per command family. Each opens the store, calls the domain, renders.

pub mod access;
pub mod agents;
pub mod ansible;
pub mod assess;
pub mod bench;
pub mod bench_agents;
pub mod bench_api;
pub mod bench_plan;
pub mod demo;
mod demo_lab;
pub mod import;
pub mod list;
pub mod plan;
pub mod serve;
pub mod sync;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use jiff::civil::Date;
use patchward_app::AnyStore;
use patchward_core::priority::Policy;
use std::path::Path;

/// The binary is where the clock is read; everything below takes time as a parameter.
pub fn now() -> Timestamp {
    Timestamp::now()
}

pub fn today() -> Date {
    now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date()
}

/// The system clock, handed to the application layer (which never reads the time itself).
pub struct SystemClock;

impl patchward_app::Clock for SystemClock {
    fn now(&self) -> Timestamp {
        now()
    }
}

/// The application over a store, with the system clock and the default policy.
/// (`AnyStore` from [`open`]; the demo and benchmarks pass their SQLite store.)
pub fn app<S: patchward_store::ControlStore>(store: S) -> patchward_app::App<S> {
    patchward_app::App::new(store, std::sync::Arc::new(SystemClock), Policy::default())
}

/// The store `--db` names: a SQLite file (created if missing), or a PostgreSQL server
/// (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`).
/// The tenant `--tenant` names (which must exist), or the default one.
pub async fn tenant(store: &AnyStore, name: Option<&str>) -> Result<patchward_store::TenantId> {
    use patchward_store::AccessStore;
    match name.map(str::trim) {
        None => Ok(patchward_store::TenantId::DEFAULT),
        Some(n) => match store.tenant_by_name(n).await? {
            Some(t) => Ok(t.id),
            None => {
                let known: Vec<String> =
                    store.tenants().await?.into_iter().map(|t| t.name).collect();
                bail!(
                    "--tenant {n:?}: no such tenant (there are: {})",
                    known.join(", ")
                )
            }
        },
    }
}

pub async fn open(db: &Path) -> Result<AnyStore> {
    let db = db.to_string_lossy();
    AnyStore::open(&db)
        .await
        .with_context(|| format!("cannot open database {}", redact(&db)))
}

/// A database name fit for messages: a URL's password is replaced by `***`.
pub fn redact(db: &str) -> String {
    if !AnyStore::is_url(db) {
        return db.to_string();
    }
    let Some((scheme, rest)) = db.split_once("://") else {
        return db.to_string();
    };
    match rest.rsplit_once('@') {
        Some((user_pass, host)) => match user_pass.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => db.to_string(),
        },
        None => db.to_string(),
    }
}

/// `--as-of YYYY-MM-DD`, defaulting to today.
pub fn as_of(s: Option<&str>) -> Result<Date> {
    match s {
        None => Ok(today()),
        Some(s) => s
            .parse::<Date>()
            .with_context(|| format!("--as-of {s:?}: expected a date like 2026-11-25")),
    }
}

/// The priority policy: defaults, or a TOML file (unknown keys and bad values are errors).
pub fn load_policy(path: Option<&Path>) -> Result<Policy> {
    let Some(path) = path else {
        return Ok(Policy::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read policy {}", path.display()))?;
    let p: Policy =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let problems = p.validate();
    if !problems.is_empty() {
        bail!("{}: {}", path.display(), problems.join("; "));
    }
    Ok(p)
}
