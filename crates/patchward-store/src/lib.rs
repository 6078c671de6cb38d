//! Storage. The [`Store`] trait is what the rest of Patchward sees; [`SqliteStore`] is the
//! embedded default. This is the only crate that knows SQL.
//!
//! Every import is one transaction: a bad batch leaves what was stored before untouched.

mod sqlite;

pub use sqlite::SqliteStore;

use jiff::Timestamp;
use patchward_core::catalog::{Affected, Fix, Product, Update, Vulnerability};
use patchward_core::exposure::Catalog;
use patchward_core::intel::{EpssScore, KevEntry, LifecycleEntry, NvdRecord};
use patchward_core::inventory::{Estate, Server};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored record {what} is unreadable: {why}")]
    Corrupt { what: String, why: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One MSRC month, ready to store (replaces what the same document stored before).
#[derive(Debug, Clone)]
pub struct DocumentImport<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub revision: Option<&'a str>,
    pub initial_release: Option<Timestamp>,
    pub current_release: Option<Timestamp>,
    pub source: &'a str,
    pub products: &'a [Product],
    pub vulnerabilities: &'a [Vulnerability],
    pub affected: &'a [Affected],
    pub fixes: &'a [Fix],
}

/// Where a feed came from and how current it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedStatus {
    pub feed: String,
    pub key: String,
    pub source: String,
    pub as_of: Option<Timestamp>,
    pub revision: Option<String>,
    pub records: i64,
    pub imported_at: Timestamp,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    /// New or changed data stored.
    Stored,
    /// The same revision was already stored; nothing changed.
    Unchanged,
    /// Older than what is stored; kept the newer data.
    Older,
}

/// Counts of what is stored, for status output.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub documents: i64,
    pub vulnerabilities: i64,
    pub fixes: i64,
    pub kev: i64,
    pub epss: i64,
    pub nvd: i64,
    pub servers: i64,
}

/// The storage interface. Implementations must pass the contract tests in `tests/it`.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// MSRC month: replaces the document's previous facts, unless the same revision is stored.
    async fn import_document(
        &self,
        doc: &DocumentImport<'_>,
        now: Timestamp,
    ) -> Result<ImportOutcome>;
    /// Update facts from the KB → build table.
    async fn import_kb_builds(
        &self,
        source: &str,
        products: &[Product],
        updates: &[Update],
        now: Timestamp,
    ) -> Result<ImportOutcome>;
    /// The KEV catalog: replaces the stored one unless it is older.
    async fn import_kev(
        &self,
        source: &str,
        version: &str,
        released: Option<Timestamp>,
        entries: &[KevEntry],
        now: Timestamp,
    ) -> Result<ImportOutcome>;
    /// EPSS scores: a score replaces a stored one for the same CVE unless older.
    async fn import_epss(
        &self,
        source: &str,
        scores: &[EpssScore],
        now: Timestamp,
    ) -> Result<ImportOutcome>;
    /// NVD records: a record replaces a stored one unless older (lastModified).
    async fn import_nvd(
        &self,
        source: &str,
        records: &[NvdRecord],
        now: Timestamp,
    ) -> Result<ImportOutcome>;
    /// The lifecycle table: replaces the stored one.
    async fn import_lifecycle(
        &self,
        source: &str,
        entries: &[LifecycleEntry],
        now: Timestamp,
    ) -> Result<ImportOutcome>;

    /// Insert or replace servers (all or nothing).
    async fn upsert_servers(&self, servers: &[Server], now: Timestamp) -> Result<()>;
    /// Replace the estate's non-server parts and upsert its servers (all or nothing).
    async fn import_estate(&self, estate: &Estate, now: Timestamp) -> Result<()>;
    async fn servers(&self) -> Result<Vec<Server>>;
    async fn server(&self, name: &str) -> Result<Option<Server>>;
    /// The stored servers among `names` (ASCII case-insensitive), in no particular order; names
    /// not stored are left out. An import merges with these instead of reading every server.
    async fn servers_named(&self, names: &[String]) -> Result<Vec<Server>>;
    /// Servers plus services, dependencies, windows, ... as one estate.
    async fn estate(&self) -> Result<Estate>;

    /// Everything the exposure and priority engines need.
    async fn catalog(&self) -> Result<Catalog>;
    async fn feed_status(&self) -> Result<Vec<FeedStatus>>;
    async fn counts(&self) -> Result<Counts>;

    /// Store a plan as JSON under its cycle name (replacing an earlier plan of that cycle).
    async fn save_plan(&self, cycle: &str, plan_json: &str, now: Timestamp) -> Result<()>;
    async fn plan(&self, cycle: &str) -> Result<Option<String>>;
    /// Cycle names with stored plans, newest first.
    async fn plans(&self) -> Result<Vec<(String, Timestamp)>>;
}
