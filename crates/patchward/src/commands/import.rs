//! `import feeds` and `import hosts`.
//!
//! Feeds: files are read, decompressed and parsed on worker threads (one per core) while the
//! store writes what they produce; each file is one transaction, so a bad file is reported by
//! name and leaves everything stored before untouched. Files found by walking a folder that are
//! no feed are skipped with a message; a file named on the command line that is no feed stops
//! the whole run before anything is stored (it was surely meant to be imported).
//! Hosts: every file is parsed and checked first; only when all are good are the servers stored,
//! in one transaction (nothing partial).

use super::{now, open};
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use patchward_app::Actor;
use patchward_feeds::input::{FeedKind, detect, read_input, walk};
use patchward_feeds::{ParseError, cvrf, epss, kbbuilds, kev, lifecycle, nvd};
use patchward_store::{AccessStore, DocumentImport, ImportOutcome, Store, TenantId};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one import run did.
#[derive(Debug, Default)]
pub struct FeedSummary {
    pub stored: usize,
    pub unchanged: usize,
    pub older: usize,
    pub skipped: Vec<String>,
    pub errors: Vec<String>,
    pub cves: usize,
    /// A file named on the command line is no feed: the run stopped before storing anything.
    pub refused: bool,
}

enum Parsed {
    Cvrf(Box<cvrf::CvrfDocument>),
    Kev(kev::KevCatalog),
    Epss(Vec<patchward_core::intel::EpssScore>),
    Nvd(Vec<patchward_core::intel::NvdRecord>),
    Lifecycle(Vec<patchward_core::intel::LifecycleEntry>),
    KbBuilds(kbbuilds::KbBuildTable),
    Skip(String),
}

fn parse_feed(path: &Path) -> Result<Parsed, ParseError> {
    let name = path.display().to_string();
    let bytes = read_input(path)?;
    Ok(match detect(&name, &bytes) {
        FeedKind::CvrfXml | FeedKind::CvrfJson => {
            let doc = cvrf::parse(&name, &bytes)?;
            if doc.is_announcement_only() {
                Parsed::Skip(format!(
                    "MSRC {} lists no products and no vulnerabilities (announcement only)",
                    doc.id
                ))
            } else {
                Parsed::Cvrf(Box::new(doc))
            }
        }
        FeedKind::Kev => Parsed::Kev(kev::parse(&name, &bytes)?),
        FeedKind::Epss => Parsed::Epss(epss::parse_daily(&name, &bytes)?.scores),
        FeedKind::EpssTimeSeries => Parsed::Epss(
            epss::newest(epss::parse_timeseries(&name, &bytes)?)
                .into_values()
                .collect(),
        ),
        FeedKind::Nvd => Parsed::Nvd(nvd::parse(&name, &bytes)?),
        FeedKind::Lifecycle => Parsed::Lifecycle(lifecycle::parse(&name, &bytes)?),
        FeedKind::KbBuilds => Parsed::KbBuilds(kbbuilds::parse(&name, &bytes)?),
        FeedKind::MsrcUpdatesIndex => {
            Parsed::Skip("MSRC updates index: lists documents, nothing to import".into())
        }
        kind => Parsed::Skip(not_a_feed(kind).unwrap_or_else(|| kind.label().to_string())),
    })
}

/// Why a file of this kind is no feed (`None`: it is one). Inside a walked folder such files are
/// skipped; a file named on the command line is refused.
fn not_a_feed(kind: FeedKind) -> Option<String> {
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

/// Files named on the command line (not found by walking a folder) that are no feed: each is
/// an error, found before anything is stored.
fn refuse_named_non_feeds(paths: &[PathBuf]) -> Vec<String> {
    let mut refused = Vec::new();
    for p in paths.iter().filter(|p| p.is_file()) {
        let name = p.display().to_string();
        match std::fs::read(p) {
            Err(e) => refused.push(format!("{name}: cannot read file: {e}")),
            Ok(bytes) => {
                if let Some(why) = not_a_feed(detect(&name, &bytes)) {
                    refused.push(format!("{name}: {why}"));
                }
            }
        }
    }
    refused
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {wide_msg}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(what.to_string());
    pb
}

/// `import feeds PATH...` against a database file.
pub async fn feeds(db: &Path, paths: &[PathBuf]) -> Result<FeedSummary> {
    let store = open(db).await?;
    let summary = import_feeds(&store, paths, true).await?;
    report_feeds(&summary);
    if summary.refused {
        bail!(
            "{} named file(s) are not feeds; nothing from this import was stored",
            summary.errors.len()
        );
    }
    if !summary.errors.is_empty() {
        bail!(
            "{} file(s) could not be imported (nothing from them was stored)",
            summary.errors.len()
        );
    }
    Ok(summary)
}

pub fn report_feeds(s: &FeedSummary) {
    for e in &s.errors {
        eprintln!("error: {e}");
    }
    for k in &s.skipped {
        // Licence texts travel with the data on purpose; not worth a line each.
        if !k.contains("/LICENSE") {
            eprintln!("skipped: {k}");
        }
    }
    eprintln!(
        "feeds: {} stored, {} unchanged, {} older than stored, {} skipped, {} failed ({} Windows Server CVEs in stored MSRC documents)",
        s.stored,
        s.unchanged,
        s.older,
        s.skipped.len(),
        s.errors.len(),
        s.cves
    );
}

/// Parse on worker threads, store on this task.
pub async fn import_feeds(
    store: &impl Store,
    paths: &[PathBuf],
    progress: bool,
) -> Result<FeedSummary> {
    // A file the user named must be imported or be an error; only files found by walking a
    // folder may be skipped. Checked first, so a typo'd argument stores nothing at all.
    let refused = refuse_named_non_feeds(paths);
    if !refused.is_empty() {
        return Ok(FeedSummary {
            errors: refused,
            refused: true,
            ..FeedSummary::default()
        });
    }
    let files = walk(paths)?;
    let pb = if progress {
        bar(files.len(), "import feeds")
    } else {
        ProgressBar::hidden()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(PathBuf, Result<Parsed, ParseError>)>(4);
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let files = std::sync::Arc::new(files);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (tx, next, files) = (tx.clone(), next.clone(), files.clone());
        handles.push(std::thread::spawn(move || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                if tx.blocking_send((path.clone(), parse_feed(path))).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut s = FeedSummary::default();
    let at = now();
    while let Some((path, parsed)) = rx.recv().await {
        let name = path.display().to_string();
        pb.set_message(name.clone());
        let outcome = match parsed {
            Err(e) => {
                s.errors.push(e.to_string());
                pb.inc(1);
                continue;
            }
            Ok(Parsed::Skip(why)) => {
                s.skipped.push(format!("{name}: {why}"));
                pb.inc(1);
                continue;
            }
            Ok(Parsed::Cvrf(d)) => {
                s.cves += d.vulnerabilities.len();
                let imp = DocumentImport {
                    id: &d.id,
                    title: &d.title,
                    revision: d.revision.as_deref(),
                    initial_release: d.initial_release,
                    current_release: d.current_release,
                    source: &name,
                    products: &d.products,
                    vulnerabilities: &d.vulnerabilities,
                    affected: &d.affected,
                    fixes: &d.fixes,
                };
                store.import_document(&imp, at).await
            }
            Ok(Parsed::Kev(k)) => {
                store
                    .import_kev(&name, &k.version, k.released, &k.entries, at)
                    .await
            }
            Ok(Parsed::Epss(scores)) => store.import_epss(&name, &scores, at).await,
            Ok(Parsed::Nvd(r)) => store.import_nvd(&name, &r, at).await,
            Ok(Parsed::Lifecycle(l)) => store.import_lifecycle(&name, &l, at).await,
            Ok(Parsed::KbBuilds(t)) => {
                store
                    .import_kb_builds(&name, &t.products, &t.merged(), at)
                    .await
            }
        };
        match outcome {
            Ok(ImportOutcome::Stored) => s.stored += 1,
            Ok(ImportOutcome::Unchanged) => s.unchanged += 1,
            Ok(ImportOutcome::Older) => s.older += 1,
            Err(e) => s.errors.push(format!("{name}: {e}")),
        }
        pb.inc(1);
    }
    for h in handles {
        if h.join().is_err() {
            s.errors.push("a parser thread stopped unexpectedly".into());
        }
    }
    pb.finish_and_clear();
    Ok(s)
}

pub use patchward_app::hosts::{HostBatch, parse_hosts};

/// `import hosts [--tenant T] PATH...` (the tenant is created if new).
pub async fn hosts(db: &Path, tenant: Option<&str>, paths: &[PathBuf]) -> Result<usize> {
    let store = open(db).await?;
    let batch = match parse_hosts(paths) {
        Ok(b) => b,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            bail!(
                "{} error(s) in the input; no server was stored",
                errors.len()
            );
        }
    };
    for w in &batch.warnings {
        eprintln!("warning: {w}");
    }
    let tenant = match tenant {
        None => TenantId::DEFAULT,
        Some(name) => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--tenant: name a tenant");
            }
            store.ensure_tenant(name, now()).await?.id
        }
    };
    let n = store_hosts(&store, tenant, batch).await?;
    eprintln!("hosts: {n} server(s) stored");
    Ok(n)
}

/// Merge with what is stored and store, as the command line (see [`App::import_hosts`]).
pub async fn store_hosts(
    store: &impl patchward_store::ControlStore,
    tenant: TenantId,
    batch: HostBatch,
) -> Result<usize> {
    Ok(super::app(store.clone())
        .import_hosts(&Actor::cli(), tenant, batch)
        .await?)
}
