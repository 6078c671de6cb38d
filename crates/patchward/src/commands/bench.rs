//! `bench`: measured speed on real or generated data (release build, this machine). Peak
//! memory is the process high-water mark (VmHWM) read from /proc; for `bench hosts` it includes
//! generating the file (time `import hosts` alone with `--keep-file` and `/usr/bin/time -v`).

use super::{import, load_policy};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use patchward_core::build::OsBuild;
use patchward_core::catalog::{Classification, Kb};
use patchward_core::exposure::{Catalog, ExposureIndex};
use patchward_core::inventory::{InternetExposure, Role, Server, Tier};
use patchward_core::plan::generate::{self, GenConfig};
use patchward_core::product::ProductKind;
use patchward_store::{SqliteStore, Store, TenantId};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Import a folder of feeds into a fresh temporary database and time it.
    Import(BenchImportArgs),
    /// Assess generated servers (seeded) against an imported catalog and time it.
    Exposure(BenchExposureArgs),
    /// Write a generated estate (seeded: servers, services, dependencies, windows, rings) as an
    /// estate TOML or inventory CSV, then time `import hosts` of it into a fresh SQLite file.
    Hosts(BenchHostsArgs),
    /// Store a generated estate and time `plan` over it end to end (child process).
    Plan(super::bench_plan::BenchPlanArgs),
    /// Serve a stored catalog and generated fleet (child process) and measure the API under
    /// concurrent clients: start, list and detail latencies, the exposure summary, memory.
    Api(super::bench_api::BenchApiArgs),
    /// Enrol N simulated agents and measure check-ins against the server (child processes;
    /// `--replicas 2 --pg URL` for two replicas sharing PostgreSQL): paced and saturated.
    Agents(super::bench_agents::BenchAgentsArgs),
}

#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum HostsFormat {
    Toml,
    Csv,
}

#[derive(Args)]
pub struct BenchHostsArgs {
    /// Number of generated servers.
    #[arg(long, default_value_t = 10_000)]
    pub servers: usize,
    /// File format to import: the estate TOML (everything) or the inventory CSV (servers).
    #[arg(long, value_enum, default_value = "toml")]
    pub format: HostsFormat,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Timed repetitions, each into a fresh database (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Keep the generated file here (e.g. to time `patchward import hosts FILE` under
    /// `/usr/bin/time -v`), instead of a temporary file.
    #[arg(long)]
    pub keep_file: Option<PathBuf>,
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
    /// Measure one path only, so that the peak memory is that path's: `findings` (every open
    /// CVE with its priority, kept for all servers) or `summary` (counts per server).
    #[arg(long, value_parser = ["findings", "summary"])]
    pub only: Option<String>,
    /// Give every server one hotfix of its own (a KB number below any in the catalog), so that
    /// no two servers share a patch state: the worst case for the fleet functions, which
    /// assess each patch state once.
    #[arg(long)]
    pub distinct_states: bool,
}

/// Peak resident memory of this process in MiB (Linux), if known.
pub fn peak_rss_mib() -> Option<f64> {
    proc_status_mib("VmHWM:")
}

/// Current resident memory of this process in MiB (Linux), if known.
pub fn rss_mib() -> Option<f64> {
    proc_status_mib("VmRSS:")
}

fn proc_status_mib(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Plan(a) => super::bench_plan::run(a).await,
        BenchCommand::Api(a) => super::bench_api::run(a).await,
        BenchCommand::Agents(a) => super::bench_agents::run(a).await,
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
        BenchCommand::Hosts(a) => bench_hosts(a).await,
        BenchCommand::Exposure(a) => {
            let store = SqliteStore::open(&a.catalog_db).await?;
            let catalog = store.catalog().await?;
            if catalog.fixes.is_empty() {
                bail!(
                    "{} has no MSRC data: run `bench import --keep FILE DIR` first",
                    a.catalog_db.display()
                );
            }
            let catalog_rss = rss_mib().unwrap_or(f64::NAN);
            let mut servers = generate(&catalog, a.servers, a.seed);
            if a.distinct_states {
                for (i, s) in servers.iter_mut().enumerate() {
                    s.installed_kbs.insert(Kb(1_000_000 + i as u32));
                }
            }
            let policy = load_policy(None)?;
            let as_of = super::today();
            let t = Instant::now();
            let index = ExposureIndex::new(catalog.clone());
            let index_s = t.elapsed().as_secs_f64();
            println!(
                "memory: catalog loaded {catalog_rss:.0} MiB (peak so far {:.0} MiB)",
                peak_rss_mib().unwrap_or(f64::NAN)
            );
            let runs = a.runs.max(1);
            let median = |mut v: Vec<f64>| {
                v.sort_by(|a, b| a.total_cmp(b));
                (v[v.len() / 2], v[0], v[v.len() - 1])
            };
            // Servers in one patch state are assessed once (see priority::assess_fleet): say how
            // many states the fleet has, so the figures can be read for other fleets.
            let states: std::collections::BTreeSet<_> = servers
                .iter()
                .map(|s| {
                    (
                        &s.os,
                        s.release,
                        s.build,
                        s.installation,
                        s.hotpatch,
                        &s.installed_kbs,
                    )
                })
                .collect();
            println!(
                "exposure: {} servers in {} patch states; index {index_s:.3}s; generated fleet and catalog loaded: RSS {:.0} MiB",
                servers.len(),
                states.len(),
                rss_mib().unwrap_or(f64::NAN)
            );
            if a.only.as_deref() != Some("summary") {
                let mut times = Vec::new();
                let mut open = 0;
                for _ in 0..runs {
                    let t = Instant::now();
                    let r = super::assess::assess_all(&index, &servers, &policy, as_of);
                    times.push(t.elapsed().as_secs_f64());
                    open = r.iter().map(|s| s.open_cves.len()).sum::<usize>();
                }
                let (med, min, max) = median(times);
                println!(
                    "  findings (assess + prioritise, all kept): {open} open CVE findings; median {med:.3}s (min {min:.3}s, max {max:.3}s, {runs} runs); peak RSS {:.0} MiB",
                    peak_rss_mib().unwrap_or(f64::NAN)
                );
            }
            if a.only.as_deref() != Some("findings") {
                let mut times = Vec::new();
                let mut open = 0;
                for _ in 0..runs {
                    let t = Instant::now();
                    let r = super::assess::summarise_all(&index, &servers, &policy, as_of);
                    times.push(t.elapsed().as_secs_f64());
                    open = r.iter().map(|s| s.open).sum::<usize>();
                }
                let (med, min, max) = median(times);
                println!(
                    "  summary (counts per server): {open} open CVE findings counted; median {med:.3}s (min {min:.3}s, max {max:.3}s, {runs} runs); peak RSS {:.0} MiB",
                    peak_rss_mib().unwrap_or(f64::NAN)
                );
            }
            Ok(())
        }
    }
}

/// The generated estate of `bench hosts`, written as the user would give it to `import hosts`.
pub fn hosts_file(servers: usize, seed: u64, format: HostsFormat) -> String {
    let cfg = GenConfig {
        seed,
        ..GenConfig::benchmark(servers)
    };
    let estate = generate::generate(&cfg).estate;
    match format {
        // Windows, services and dependencies come first, servers last (as people write it).
        HostsFormat::Toml => patchward_feeds::estate::to_toml(&estate),
        HostsFormat::Csv => patchward_feeds::inventory_csv::to_csv(&estate.servers),
    }
}

async fn bench_hosts(a: BenchHostsArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("patchward-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ext = match a.format {
        HostsFormat::Toml => "toml",
        HostsFormat::Csv => "csv",
    };
    let file = a
        .keep_file
        .clone()
        .unwrap_or_else(|| dir.join(format!("estate.{ext}")));
    let t = Instant::now();
    let text = hosts_file(a.servers, a.seed, a.format);
    std::fs::write(&file, &text)?;
    let gen_s = t.elapsed().as_secs_f64();
    let (bytes, lines) = (text.len(), text.lines().count());
    drop(text);
    let mut times = Vec::new();
    let mut phases = Vec::new();
    let mut stored = 0;
    for run in 0..a.runs.max(1) {
        let db = dir.join(format!("hosts-{run}.db"));
        let t = Instant::now();
        // What `import hosts FILE` does, minus the printing.
        let store = SqliteStore::open(&db).await?;
        let batch = match import::parse_hosts(std::slice::from_ref(&file)) {
            Ok(b) => b,
            Err(errors) => bail!("{}", errors.join("\n")),
        };
        let parsed = t.elapsed().as_secs_f64();
        stored = import::store_hosts(&store, TenantId::DEFAULT, batch).await?;
        let total = t.elapsed().as_secs_f64();
        times.push(total);
        phases.push((total, parsed));
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    phases.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median, parse_s) = phases[phases.len() / 2];
    println!(
        "hosts ({ext}): {stored} servers, {:.1} MB, {lines} lines (generated in {gen_s:.2}s); import hosts median {median:.3}s (parse {parse_s:.3}s + merge/store {:.3}s; min {:.3}s, max {:.3}s, {} runs); peak RSS {:.0} MiB",
        bytes as f64 / 1e6,
        median - parse_s,
        times[0],
        times[times.len() - 1],
        times.len(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    if a.keep_file.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(())
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
