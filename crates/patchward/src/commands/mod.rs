//! One module per command family. Each opens the store, calls the domain, renders.

pub mod access;
pub mod assess;
pub mod bench;
pub mod bench_api;
pub mod bench_plan;
pub mod demo;
pub mod import;
pub mod list;
pub mod plan;
pub mod serve;
pub mod sync;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use jiff::civil::Date;
use patchward_core::priority::Policy;
use patchward_store::SqliteStore;
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
pub fn app(store: SqliteStore) -> patchward_app::App<SqliteStore> {
    patchward_app::App::new(store, std::sync::Arc::new(SystemClock), Policy::default())
}

pub async fn open(db: &Path) -> Result<SqliteStore> {
    SqliteStore::open(db)
        .await
        .with_context(|| format!("cannot open database {}", db.display()))
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
