//! `bench plan`: `patchward plan` end to end over a stored, generated estate (issue 9 point 8).
//!
//! A seeded estate (`plan::generate::GenConfig::benchmark`: 3 dependencies and 0.01 services
//! per server, 20 windows, 4 rings, 10 sites) is stored in a fresh SQLite file; then this
//! binary is run as a child process, as an operator would run it:
//! `patchward --db DB plan --cycle bench-K --start … --servers-file servers.txt --format json`.
//! Each run is timed from spawn to exit (store open, estate and catalog load, scope, exposure,
//! planning, checking, storing, rendering); the median is reported, and the child's peak RSS
//! when `/usr/bin/time` is there.
//!
//! Scope: the generated servers carry no OS build, so without MSRC data nothing is exposed and
//! the default scope would be empty. `--scope names` (the default) names every server in a
//! `--servers-file`; `--scope exposed --feeds FILE…` imports MSRC data, gives every server an
//! old Server 2022 build and lets `plan` take its default scope (every exposed server), which
//! includes assessing the whole estate.

use super::import;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use patchward_core::OsBuild;
use patchward_core::plan::generate::{GenConfig, generate};
use patchward_store::{SqliteStore, Store, TenantId};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchScope {
    /// Every server named in a --servers-file.
    Names,
    /// plan's default scope: every exposed server (needs --feeds).
    Exposed,
}

#[derive(Args)]
pub struct BenchPlanArgs {
    /// Number of generated servers.
    #[arg(long, default_value_t = 10_000)]
    pub servers: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Timed runs of `plan` (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// How the scope is given.
    #[arg(long, value_enum, default_value = "names")]
    pub scope: BenchScope,
    /// MSRC/KEV files to import first (needed for --scope exposed).
    #[arg(long, num_args = 1..)]
    pub feeds: Vec<PathBuf>,
    /// Keep the database and the server list in this folder (default: a temporary folder,
    /// removed afterwards).
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

/// Peak RSS in MiB from `/usr/bin/time -f %M` output (the last line, in KiB).
fn rss_from_time(stderr: &str) -> Option<f64> {
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty())?;
    last.trim().parse::<f64>().ok().map(|kb| kb / 1024.0)
}

pub async fn run(a: BenchPlanArgs) -> Result<()> {
    if a.scope == BenchScope::Exposed && a.feeds.is_empty() {
        bail!("--scope exposed needs MSRC data: add --feeds fixtures/msrc-cvrf/2024-Aug.xml.zst");
    }
    let dir = match &a.keep {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("patchward-bench-plan-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("bench.db");
    if db.exists() {
        bail!("{} exists: use another --keep folder", db.display());
    }

    let t = Instant::now();
    let mut cfg = GenConfig::benchmark(a.servers);
    cfg.seed = a.seed;
    let mut g = generate(&cfg);
    if a.scope == BenchScope::Exposed {
        // An old Server 2022 build (July 2024): open CVEs in any later month.
        let build: OsBuild = "10.0.20348.2582"
            .parse()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for s in &mut g.estate.servers {
            s.build = Some(build);
        }
    }
    let gen_s = t.elapsed().as_secs_f64();
    let store = SqliteStore::open(&db).await?;
    if !a.feeds.is_empty() {
        let s = import::import_feeds(&store, &a.feeds, false).await?;
        if !s.errors.is_empty() {
            bail!("{} feed file(s) failed", s.errors.len());
        }
    }
    let t = Instant::now();
    store
        .import_estate(TenantId::DEFAULT, &g.estate, super::now())
        .await?;
    let store_s = t.elapsed().as_secs_f64();
    drop(store);
    let list = dir.join("servers.txt");
    let names: Vec<&str> = g.estate.servers.iter().map(|s| s.name.as_str()).collect();
    std::fs::write(&list, names.join("\n"))?;

    let exe = std::env::current_exe().context("cannot find this binary")?;
    let time = std::path::Path::new("/usr/bin/time");
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for k in 0..a.runs.max(1) {
        let mut cmd = if time.exists() {
            let mut c = Command::new(time);
            c.args(["-f", "%M"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.arg("--db")
            .arg(&db)
            .args(["plan", "--cycle", &format!("bench-{k}"), "--start"])
            .arg(g.start.to_string())
            .args(["--format", "json"]);
        if a.scope == BenchScope::Names {
            cmd.arg("--servers-file").arg(&list);
        }
        let t = Instant::now();
        let out = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("cannot run plan")?;
        times.push(t.elapsed().as_secs_f64());
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("plan failed:\n{err}");
        }
        if time.exists()
            && let Some(m) = rss_from_time(&err)
        {
            rss.push(m);
        }
    }
    times.sort_by(|x, y| x.total_cmp(y));
    rss.sort_by(|x, y| x.total_cmp(y));
    println!(
        "plan: {} servers ({} dependencies, {} services), scope {}; generate {gen_s:.2}s, store {store_s:.2}s; plan end to end median {:.2}s (min {:.2}s, max {:.2}s, {} runs); peak RSS {}",
        g.estate.servers.len(),
        g.estate.dependencies.len(),
        g.estate.services.len(),
        match a.scope {
            BenchScope::Names => "by name (--servers-file)",
            BenchScope::Exposed => "by default (exposed servers)",
        },
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len(),
        rss.get(rss.len() / 2)
            .map_or("unknown (no /usr/bin/time)".to_string(), |m| format!(
                "{m:.0} MiB"
            )),
    );
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!(
            "kept: {} and {} (e.g. /usr/bin/time -v {} --db {} plan --cycle x --start {} --servers-file {} --format json >/dev/null)",
            db.display(),
            list.display(),
            exe.display(),
            db.display(),
            g.start,
            list.display()
        );
    }
    Ok(())
}
