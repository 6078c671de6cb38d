//! Integration tests of the binary crate: golden facts on real Microsoft/CISA data, exposure
//! rules, properties, and the command line end to end against a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agents;
mod api;
mod browser;
mod cli;
mod execution;
mod exposure;
mod golden;
mod hosts;
mod lab;
mod plan;
mod probes;
mod props;
mod rollback;
mod workflow;

use patchward_core::exposure::Catalog;
use patchward_feeds::input::read_input;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Parse one MSRC month from the fixtures.
pub fn month(id: &str) -> patchward_feeds::cvrf::CvrfDocument {
    let p = fixtures().join(format!("msrc-cvrf/{id}.xml.zst"));
    let bytes = read_input(&p).unwrap();
    patchward_feeds::cvrf::parse(id, &bytes).unwrap()
}

/// An in-memory catalog from some months plus the newest KEV, EPSS subset and lifecycle table.
pub fn catalog_of(months: &[&str]) -> Catalog {
    let mut c = Catalog::default();
    for m in months {
        let d = month(m);
        for p in d.products {
            if !c.products.iter().any(|x| x.id == p.id) {
                c.products.push(p);
            }
        }
        c.vulnerabilities.extend(d.vulnerabilities);
        c.affected.extend(d.affected);
        c.fixes.extend(d.fixes);
    }
    let kev =
        read_input(&fixtures().join("kev/known_exploited_vulnerabilities_2026-08-07.json.zst"))
            .unwrap();
    c.kev = patchward_feeds::kev::parse("kev", &kev).unwrap().entries;
    let epss = read_input(&fixtures().join("epss/epss_scores-2026-09-29_subset.csv")).unwrap();
    c.epss = patchward_feeds::epss::parse_daily("epss", &epss)
        .unwrap()
        .scores;
    let lc = read_input(&fixtures().join("lifecycle/endoflife-date_windows-server.md")).unwrap();
    c.lifecycle = patchward_feeds::lifecycle::parse("lifecycle", &lc).unwrap();
    c
}

/// Every bundled month (2022-May, 2023-Feb, 2024-Jan … 2026-Jul), parsed once.
pub fn full_catalog() -> Arc<Catalog> {
    static C: OnceLock<Arc<Catalog>> = OnceLock::new();
    C.get_or_init(|| {
        let mut ids: Vec<String> = std::fs::read_dir(fixtures().join("msrc-cvrf"))
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .trim_end_matches(".xml.zst")
                    .to_string()
            })
            .collect();
        ids.sort();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        Arc::new(catalog_of(&refs))
    })
    .clone()
}

/// A fresh folder for one test (unique per process and name).
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("patchward-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run the real binary against a database file.
pub fn pw(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchward"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

/// Its stdout, after asserting it succeeded.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}
