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
use patchward_app::feeds::{self, Parsed};
use patchward_feeds::ParseError;
use patchward_feeds::input::{detect, read_input, walk};
use patchward_store::{ControlStore, ImportOutcome, TenantId};
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

fn parse_feed(path: &Path) -> Result<Parsed, ParseError> {
    let name = path.display().to_string();
    let bytes = read_input(path)?;
    feeds::parse_feed(&name, &bytes)
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
                if let Some(why) = feeds::not_a_feed(detect(&name, &bytes)) {
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
    store: &impl ControlStore,
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
    let mut files: Vec<(String, &str)> = Vec::new();
    let at = now();
    while let Some((path, parsed)) = rx.recv().await {
        let name = path.display().to_string();
        pb.set_message(name.clone());
        let parsed = match parsed {
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
            Ok(p) => p,
        };
        if let Parsed::Cvrf(d) = &parsed {
            s.cves += d.vulnerabilities.len();
        }
        let outcome = feeds::store_parsed(store, &name, &parsed, at)
            .await
            .map(|o| o.unwrap_or(ImportOutcome::Unchanged));
        if let Ok(o) = &outcome {
            files.push((
                name.clone(),
                match o {
                    ImportOutcome::Stored => "stored",
                    ImportOutcome::Unchanged => "unchanged",
                    ImportOutcome::Older => "older",
                },
            ));
        }
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
    if !files.is_empty() {
        super::app(store.clone())
            .record_feed_import(&Actor::cli(), &files)
            .await?;
    }
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
            super::app(store.clone())
                .ensure_tenant(&Actor::cli(), name)
                .await?
                .id
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
