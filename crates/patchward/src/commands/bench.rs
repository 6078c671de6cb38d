//! `bench`: measured speed on real data (release build, this machine). Peak memory is the
//! process high-water mark (VmHWM) read from /proc.

use super::{import, load_policy};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use patchward_core::build::OsBuild;
use patchward_core::catalog::{Classification, Kb};
use patchward_core::exposure::{Catalog, ExposureIndex};
use patchward_core::inventory::{InternetExposure, Role, Server, Tier};
use patchward_core::product::ProductKind;
use patchward_store::{SqliteStore, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Import a folder of feeds into a fresh temporary database and time it.
    Import(BenchImportArgs),
    /// Assess generated servers (seeded) against an imported catalog and time it.
    Exposure(BenchExposureArgs),
    /// Store a generated estate and time `plan` over it end to end (child process).
    Plan(super::bench_plan::BenchPlanArgs),
}

#[derive(Args)]
pub struct BenchImportArgs {
    /// Folder or files to import (e.g. the full MSRC history).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Keep the database here instead of a temporary file.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchExposureArgs {
    /// Database with an imported catalog.
    #[arg(long)]
    pub catalog_db: PathBuf,
    /// Number of generated servers.
    #[arg(long, default_value_t = 10_000)]
    pub servers: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

/// Peak resident memory of this process in MiB (Linux), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Plan(a) => super::bench_plan::run(a).await,
        BenchCommand::Import(a) => {
            let dir = std::env::temp_dir().join(format!("patchward-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let db = a.keep.clone().unwrap_or_else(|| dir.join("bench.db"));
            let store = SqliteStore::open(&db).await?;
            let t = Instant::now();
            let s = import::import_feeds(&store, &a.paths, false).await?;
            let import_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let catalog = store.catalog().await?;
            let load_s = t.elapsed().as_secs_f64();
            import::report_feeds(&s);
            println!(
                "import: {} files stored in {import_s:.2}s; catalog load {load_s:.2}s ({} CVEs, {} fixes); peak RSS {:.0} MiB",
                s.stored,
                catalog.vulnerabilities.len(),
                catalog.fixes.len(),
                peak_rss_mib().unwrap_or(f64::NAN)
            );
            if a.keep.is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            if !s.errors.is_empty() {
                bail!("{} file(s) failed", s.errors.len());
            }
            Ok(())
        }
        BenchCommand::Exposure(a) => {
            let store = SqliteStore::open(&a.catalog_db).await?;
            let catalog = store.catalog().await?;
            if catalog.fixes.is_empty() {
                bail!(
                    "{} has no MSRC data: run `bench import --keep FILE DIR` first",
                    a.catalog_db.display()
                );
            }
            let servers = generate(&catalog, a.servers, a.seed);
            let policy = load_policy(None)?;
            let as_of = super::today();
            let t = Instant::now();
            let index = ExposureIndex::new(&catalog);
            let index_s = t.elapsed().as_secs_f64();
            let mut exposure_times = Vec::new();
            for _ in 0..a.runs.max(1) {
                let t = Instant::now();
                let r: Vec<_> = servers.iter().map(|s| index.assess(s, as_of)).collect();
                exposure_times.push(t.elapsed().as_secs_f64());
                drop(r);
            }
            exposure_times.sort_by(|a, b| a.total_cmp(b));
            let mut times = Vec::new();
            let mut open = 0;
            for _ in 0..a.runs.max(1) {
                let t = Instant::now();
                let r = super::assess::assess_all(&index, &servers, &policy, as_of);
                times.push(t.elapsed().as_secs_f64());
                open = r.iter().map(|s| s.open_cves.len()).sum::<usize>();
            }
            times.sort_by(|a, b| a.total_cmp(b));
            println!(
                "exposure: {} servers, {open} open CVE findings; index {index_s:.3}s; exposure only median {:.3}s; assess+prioritise median {:.3}s (min {:.3}s, max {:.3}s, {} runs); peak RSS {:.0} MiB",
                servers.len(),
                exposure_times[exposure_times.len() / 2],
                times[times.len() / 2],
                times[0],
                times[times.len() - 1],
                times.len(),
                peak_rss_mib().unwrap_or(f64::NAN)
            );
            Ok(())
        }
    }
}

/// A deterministic fleet: every OS product in the catalog, builds drawn from its real
/// cumulative updates (some at the newest, most behind), some with only KBs known.
pub fn generate(catalog: &Catalog, n: usize, seed: u64) -> Vec<Server> {
    let mut rng = seed.max(1);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut lcus: BTreeMap<&str, Vec<(OsBuild, Kb)>> = BTreeMap::new();
    for f in &catalog.fixes {
        if let Some(b) = f.fixed_build
            && f.classification == Classification::SecurityCumulativeUpdate
        {
            lcus.entry(f.product_id.as_str())
                .or_default()
                .push((b, f.kb));
        }
    }
    for v in lcus.values_mut() {
        v.sort();
        v.dedup();
    }
    let products: Vec<_> = catalog
        .products
        .iter()
        .filter_map(|p| match &p.kind {
            ProductKind::Os {
                release,
                installation,
            } => lcus
                .get(p.id.as_str())
                .map(|l| (*release, *installation, l)),
            _ => None,
        })
        .collect();
    if products.is_empty() {
        return Vec::new();
    }
    let roles = [
        Role::DomainController,
        Role::File,
        Role::SqlServer,
        Role::Rds,
        Role::Web,
        Role::Application,
    ];
    (0..n)
        .map(|i| {
            let (release, installation, l) = products[(next() % products.len() as u64) as usize];
            // Skew towards recent builds: most fleets are a few months behind.
            let back = (next() % 12) as usize;
            let (b, kb) = l[l.len().saturating_sub(1 + back)];
            let kb_only = next() % 5 == 0;
            Server {
                name: format!("SRV-{i:06}"),
                os: release.name().to_string(),
                release: Some(release),
                installation: Some(installation),
                build: Some(if kb_only {
                    OsBuild { ubr: None, ..b }
                } else {
                    b
                }),
                roles: vec![roles[(next() % roles.len() as u64) as usize].clone()],
                tier: Tier::new((next() % 4) as u8 + 1).unwrap_or_default(),
                exposure: if next() % 10 == 0 {
                    InternetExposure::Exposed
                } else {
                    InternetExposure::Internal
                },
                installed_kbs: [kb].into_iter().collect(),
                ..Server::default()
            }
        })
        .collect()
}
