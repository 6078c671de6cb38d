//! `import feeds`: one file's bytes → its kind (by content) → parsed → stored in one
//! transaction. The command line runs these over many files in parallel; the API takes one
//! uploaded file. Feeds are shared by every tenant, so only provider-wide administrators
//! import them.

use crate::{Actor, App, AppError, Result};
use jiff::Timestamp;
use patchward_core::access::Permission;
use patchward_feeds::input::{FeedKind, decompress, detect};
use patchward_feeds::{ParseError, cvrf, epss, kbbuilds, kev, lifecycle, nvd};
use patchward_proto::ImportResult;
use patchward_store::{ControlStore, DocumentImport, FeedStatus, ImportOutcome, Store, StoreError};
use std::collections::BTreeMap;

/// A parsed feed file, ready to store.
pub enum Parsed {
    Cvrf(Box<cvrf::CvrfDocument>),
    Kev(kev::KevCatalog),
    Epss(Vec<patchward_core::intel::EpssScore>),
    Nvd(Vec<patchward_core::intel::NvdRecord>),
    Lifecycle(Vec<patchward_core::intel::LifecycleEntry>),
    KbBuilds(kbbuilds::KbBuildTable),
    /// Not imported, and why (an announcement-only MSRC month, the updates index, no feed).
    Skip(String),
}

/// Why a file of this kind is no feed (`None`: it is one). Inside a walked folder such files
/// are skipped; a file named on the command line or uploaded is refused.
pub fn not_a_feed(kind: FeedKind) -> Option<String> {
    match kind {
        FeedKind::Systeminfo
        | FeedKind::SysteminfoCsv
        | FeedKind::WmicQfe
        | FeedKind::GetHotFix
        | FeedKind::InventoryCsv
        | FeedKind::Estate => Some(format!("{}: inventory, use `import hosts`", kind.label())),
        FeedKind::Unknown => Some(
            "not a feed Patchward recognises (MSRC CVRF XML/JSON, CISA KEV, FIRST EPSS, NVD 2.0, lifecycle, KB build table)"
                .into(),
        ),
        FeedKind::Wesng => Some(format!("{}: not a feed Patchward imports", kind.label())),
        FeedKind::CvrfXml
        | FeedKind::CvrfJson
        | FeedKind::MsrcUpdatesIndex
        | FeedKind::Kev
        | FeedKind::Nvd
        | FeedKind::Epss
        | FeedKind::EpssTimeSeries
        | FeedKind::Lifecycle
        | FeedKind::KbBuilds => None,
    }
}

/// Parse one file's (decompressed) bytes by what they contain.
pub fn parse_feed(name: &str, bytes: &[u8]) -> std::result::Result<Parsed, ParseError> {
    Ok(match detect(name, bytes) {
        FeedKind::CvrfXml | FeedKind::CvrfJson => {
            let doc = cvrf::parse(name, bytes)?;
            if doc.is_announcement_only() {
                Parsed::Skip(format!(
                    "MSRC {} lists no products and no vulnerabilities (announcement only)",
                    doc.id
                ))
            } else {
                Parsed::Cvrf(Box::new(doc))
            }
        }
        FeedKind::Kev => Parsed::Kev(kev::parse(name, bytes)?),
        FeedKind::Epss => Parsed::Epss(epss::parse_daily(name, bytes)?.scores),
        FeedKind::EpssTimeSeries => Parsed::Epss(
            epss::newest(epss::parse_timeseries(name, bytes)?)
                .into_values()
                .collect(),
        ),
        FeedKind::Nvd => Parsed::Nvd(nvd::parse(name, bytes)?),
        FeedKind::Lifecycle => Parsed::Lifecycle(lifecycle::parse(name, bytes)?),
        FeedKind::KbBuilds => Parsed::KbBuilds(kbbuilds::parse(name, bytes)?),
        FeedKind::MsrcUpdatesIndex => {
            Parsed::Skip("MSRC updates index: lists documents, nothing to import".into())
        }
        kind => Parsed::Skip(not_a_feed(kind).unwrap_or_else(|| kind.label().to_string())),
    })
}

/// Store one parsed file (one transaction). `Ok(None)` for a skipped file.
pub async fn store_parsed(
    store: &impl Store,
    name: &str,
    parsed: &Parsed,
    at: Timestamp,
) -> std::result::Result<Option<ImportOutcome>, StoreError> {
    let outcome = match parsed {
        Parsed::Skip(_) => return Ok(None),
        Parsed::Cvrf(d) => {
            let imp = DocumentImport {
                id: &d.id,
                title: &d.title,
                revision: d.revision.as_deref(),
                initial_release: d.initial_release,
                current_release: d.current_release,
                source: name,
                products: &d.products,
                vulnerabilities: &d.vulnerabilities,
                affected: &d.affected,
                fixes: &d.fixes,
            };
            store.import_document(&imp, at).await?
        }
        Parsed::Kev(k) => {
            store
                .import_kev(name, &k.version, k.released, &k.entries, at)
                .await?
        }
        Parsed::Epss(scores) => store.import_epss(name, scores, at).await?,
        Parsed::Nvd(r) => store.import_nvd(name, r, at).await?,
        Parsed::Lifecycle(l) => store.import_lifecycle(name, l, at).await?,
        Parsed::KbBuilds(t) => {
            store
                .import_kb_builds(name, &t.products, &t.merged(), at)
                .await?
        }
    };
    Ok(Some(outcome))
}

fn outcome_word(o: ImportOutcome) -> &'static str {
    match o {
        ImportOutcome::Stored => "stored",
        ImportOutcome::Unchanged => "unchanged",
        ImportOutcome::Older => "older",
    }
}

impl<S: ControlStore> App<S> {
    /// Import one uploaded feed file (zstd or gzip allowed): refused unless it is a feed;
    /// stored in one transaction or not at all.
    pub async fn import_feed(
        &self,
        actor: &Actor,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<ImportResult> {
        actor.require(Permission::ImportFeeds)?;
        if !actor.provider_wide() {
            return Err(AppError::forbidden(
                "feeds are shared by every tenant: only a provider-wide administrator imports them",
            ));
        }
        let owned = name.to_string();
        let parsed = tokio::task::spawn_blocking(move || {
            let bytes = decompress(&owned, bytes)?;
            if let Some(why) = not_a_feed(detect(&owned, &bytes)) {
                return Err(ParseError::whole(&owned, &why));
            }
            parse_feed(&owned, &bytes)
        })
        .await
        .map_err(|e| AppError::internal(e.to_string()))?
        .map_err(|e| AppError::field("body", format!("nothing was stored: {e}")))?;
        if let Parsed::Skip(why) = &parsed {
            return Err(AppError::field("body", format!("{name}: {why}")));
        }
        let outcome = store_parsed(&self.store, name, &parsed, self.now())
            .await?
            .unwrap_or(ImportOutcome::Unchanged);
        self.record_feed_import(actor, &[(name.to_string(), outcome_word(outcome))])
            .await?;
        Ok(ImportResult {
            servers: 0,
            stored: u64::from(outcome == ImportOutcome::Stored),
            unchanged: u64::from(outcome == ImportOutcome::Unchanged),
            older: u64::from(outcome == ImportOutcome::Older),
            warnings: Vec::new(),
        })
    }

    /// One audit entry for a feed import run (file names and what happened to each).
    pub async fn record_feed_import(&self, actor: &Actor, files: &[(String, &str)]) -> Result<()> {
        let changed = files.iter().filter(|f| f.1 == "stored").count();
        let list: Vec<serde_json::Value> = files
            .iter()
            .take(200)
            .map(|(n, o)| serde_json::json!({"file": n, "outcome": o}))
            .collect();
        self.record(
            actor,
            None,
            "feeds.import",
            &format!("feeds:{changed}"),
            serde_json::json!({"files": files.len(), "stored": changed, "first": list}),
        )
        .await?;
        Ok(())
    }
}

/// How old each feed may be before it is shown as stale.
pub fn max_age_days(feed: &str) -> i64 {
    match feed {
        "msrc-cvrf" => 35,
        "kev" | "epss" => 7,
        "nvd" => 30,
        _ => 365,
    }
}

/// One feed's status, judged against [`max_age_days`] (the CLI's `feeds status`, the dashboard).
#[derive(serde::Serialize)]
pub struct FeedLine {
    pub feed: String,
    pub documents: usize,
    pub newest: Option<Timestamp>,
    pub records: i64,
    pub source: String,
    pub imported_at: Timestamp,
    pub stale: bool,
}

pub fn summarise(status: &[FeedStatus], as_of: jiff::civil::Date) -> Vec<FeedLine> {
    use jiff::ToSpan;
    let mut by: BTreeMap<&str, Vec<&FeedStatus>> = BTreeMap::new();
    for s in status {
        by.entry(s.feed.as_str()).or_default().push(s);
    }
    let cutoff = |feed: &str| {
        as_of
            .checked_sub(max_age_days(feed).days())
            .ok()
            .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    };
    by.into_iter()
        .map(|(feed, list)| {
            let newest = list.iter().filter_map(|s| s.as_of).max();
            let imported_at = list
                .iter()
                .map(|s| s.imported_at)
                .max()
                .unwrap_or(Timestamp::UNIX_EPOCH);
            let last = list.iter().max_by_key(|s| s.as_of);
            FeedLine {
                feed: feed.to_string(),
                documents: list.len(),
                newest,
                records: list.iter().map(|s| s.records).sum(),
                source: last.map(|s| s.source.clone()).unwrap_or_default(),
                imported_at,
                stale: match (newest, cutoff(feed)) {
                    (Some(n), Some(c)) => n < c,
                    (None, _) => feed != "kb-builds" && feed != "lifecycle",
                    _ => false,
                },
            }
        })
        .collect()
}
