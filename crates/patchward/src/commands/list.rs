//! Listing commands: `servers`, `cves`, `feeds status`.

use super::{as_of, open};
use crate::Format;
use crate::render::{Table, csv, opt};
use anyhow::{Result, bail};
use clap::Args;
use jiff::Timestamp;
use jiff::civil::Date;
use patchward_core::product::{ServerRelease, classify_product_name};
use patchward_store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Args)]
pub struct ServersArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub async fn servers(db: &Path, tenant: Option<&str>, a: ServersArgs) -> Result<()> {
    let store = open(db).await?;
    let tenant = super::tenant(&store, tenant).await?;
    let servers = store.servers(tenant).await?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&servers)?),
        Format::Csv | Format::Table => {
            let headers = [
                "name",
                "os",
                "build",
                "installation",
                "roles",
                "tier",
                "site",
                "exposure",
                "ring",
                "kbs",
            ];
            let rows: Vec<Vec<String>> = servers
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.os.clone(),
                        opt(s.build),
                        s.installation
                            .map(|i| i.name().to_string())
                            .unwrap_or_default(),
                        s.roles
                            .iter()
                            .map(|r| r.label().to_string())
                            .collect::<Vec<_>>()
                            .join(";"),
                        s.tier.0.to_string(),
                        opt(s.site.as_ref()),
                        format!("{:?}", s.exposure).to_lowercase(),
                        opt(s.ring.as_ref()),
                        if a.format == Format::Csv {
                            s.installed_kbs
                                .iter()
                                .map(|k| k.to_string())
                                .collect::<Vec<_>>()
                                .join(" ")
                        } else {
                            s.installed_kbs.len().to_string()
                        },
                    ]
                })
                .collect();
            if a.format == Format::Csv {
                print!("{}", csv(&headers, &rows)?);
            } else {
                let mut t = Table::new(&[
                    "NAME",
                    "OS",
                    "BUILD",
                    "INSTALLATION",
                    "ROLES",
                    "TIER",
                    "SITE",
                    "EXPOSURE",
                    "RING",
                    "KBS",
                ]);
                for r in rows {
                    t.row(r);
                }
                print!("{}", t.render());
                eprintln!("{} server(s)", servers.len());
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct CvesArgs {
    /// Only CVEs in CISA KEV.
    #[arg(long)]
    pub kev: bool,
    /// Only CVEs Microsoft flags as exploited (or in KEV).
    #[arg(long)]
    pub exploited: bool,
    /// Only CVEs affecting this release ("2022", "2019", "2012 R2", "2022 23H2", ...).
    #[arg(long)]
    pub product: Option<String>,
    /// Minimum MSRC severity (low, moderate, important, critical).
    #[arg(long)]
    pub severity: Option<String>,
    /// Only CVEs released on or after this date.
    #[arg(long)]
    pub since: Option<String>,
    /// Only this CVE (shows its fixes).
    #[arg(long)]
    pub cve: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Serialize)]
struct CveRow {
    cve: String,
    title: String,
    document: String,
    released: Option<Timestamp>,
    severity: Option<String>,
    cvss: Option<f32>,
    exploited: bool,
    publicly_disclosed: bool,
    kev: bool,
    kev_due: Option<Date>,
    epss: Option<f64>,
    products: Vec<String>,
    fixes: Vec<String>,
}

fn release_arg(s: &str) -> Option<ServerRelease> {
    let n = s
        .trim()
        .to_lowercase()
        .replace("windows server", "")
        .replace(['-', ','], " ");
    let n = n.split_whitespace().collect::<Vec<_>>().join(" ");
    ServerRelease::ALL.into_iter().find(|r| {
        let label = serde_json::to_value(r)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.to_lowercase()))
            .unwrap_or_default();
        label == n
    })
}

pub async fn cves(db: &Path, a: CvesArgs) -> Result<()> {
    let store = open(db).await?;
    let catalog = store.catalog().await?;
    let release = match &a.product {
        Some(p) => Some(release_arg(p).ok_or_else(|| {
            anyhow::anyhow!(
                "--product {p:?}: expected 2012 R2, 2016, 2019, 2022, 2022 23H2 or 2025"
            )
        })?),
        None => None,
    };
    let min_sev = match &a.severity {
        Some(s) => Some(patchward_core::catalog::Severity::parse(s).ok_or_else(|| {
            anyhow::anyhow!("--severity {s:?}: expected low, moderate, important or critical")
        })?),
        None => None,
    };
    let since = match &a.since {
        Some(s) => Some(
            s.parse::<Date>()
                .map_err(|e| anyhow::anyhow!("--since {s:?}: {e}"))?,
        ),
        None => None,
    };
    let products: BTreeMap<&str, &patchward_core::catalog::Product> = catalog
        .products
        .iter()
        .map(|p| (p.id.as_str(), p))
        .collect();
    let kev: BTreeMap<&str, &patchward_core::intel::KevEntry> =
        catalog.kev.iter().map(|k| (k.cve.as_str(), k)).collect();
    let epss: BTreeMap<&str, f64> = catalog
        .epss
        .iter()
        .map(|e| (e.cve.as_str(), e.epss))
        .collect();
    let mut affected: BTreeMap<&str, Vec<&patchward_core::catalog::Affected>> = BTreeMap::new();
    for x in &catalog.affected {
        affected.entry(x.cve.as_str()).or_default().push(x);
    }
    let mut fixes: BTreeMap<&str, Vec<&patchward_core::catalog::Fix>> = BTreeMap::new();
    for f in &catalog.fixes {
        fixes.entry(f.cve.as_str()).or_default().push(f);
    }
    let mut rows = Vec::new();
    for v in &catalog.vulnerabilities {
        if a.cve
            .as_ref()
            .is_some_and(|c| !c.eq_ignore_ascii_case(&v.cve))
        {
            continue;
        }
        let k = kev.get(v.cve.as_str());
        if a.kev && k.is_none() || a.exploited && !(v.exploited || k.is_some()) {
            continue;
        }
        let aff = affected.get(v.cve.as_str()).cloned().unwrap_or_default();
        let aff: Vec<_> = aff
            .into_iter()
            .filter(|x| {
                release.is_none_or(|r| {
                    products.get(x.product_id.as_str()).is_some_and(|p| {
                        classify_product_name(&p.name).is_some_and(|k| k.release() == r)
                    })
                })
            })
            .collect();
        if aff.is_empty() {
            continue;
        }
        let severity = aff.iter().filter_map(|x| x.severity).max();
        if min_sev.is_some_and(|m| severity.is_none_or(|s| s < m)) {
            continue;
        }
        let released_date = v
            .released
            .map(|t| t.to_zoned_datetime(jiff::tz::TimeZone::UTC).date());
        if since.is_some_and(|s| released_date.is_none_or(|d| d < s)) {
            continue;
        }
        let ids: BTreeSet<&str> = aff.iter().map(|x| x.product_id.as_str()).collect();
        let mut fx: Vec<String> = fixes
            .get(v.cve.as_str())
            .into_iter()
            .flatten()
            .filter(|f| ids.contains(f.product_id.as_str()))
            .map(|f| {
                format!(
                    "{} {} {}",
                    f.kb,
                    f.classification.label(),
                    opt(f.fixed_build)
                )
                .trim()
                .to_string()
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        fx.dedup();
        rows.push(CveRow {
            cve: v.cve.clone(),
            title: v.title.clone(),
            document: v.document.clone(),
            released: v.released,
            severity: severity.map(|s| s.label().to_string()),
            cvss: aff
                .iter()
                .filter_map(|x| x.cvss_base)
                .fold(None, |m: Option<f32>, x| Some(m.map_or(x, |m| m.max(x)))),
            exploited: v.exploited,
            publicly_disclosed: v.publicly_disclosed,
            kev: k.is_some(),
            kev_due: k.map(|k| k.due),
            epss: epss.get(v.cve.as_str()).copied(),
            products: ids
                .iter()
                .filter_map(|i| products.get(i).map(|p| p.name.clone()))
                .collect(),
            fixes: fx,
        });
    }
    rows.sort_by(|a, b| b.released.cmp(&a.released).then(a.cve.cmp(&b.cve)));
    if a.cve.is_some() && rows.is_empty() {
        bail!(
            "{} is not in the catalog for Windows Server",
            a.cve.as_deref().unwrap_or_default()
        );
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Csv => {
            let r: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.cve.clone(),
                        r.document.clone(),
                        opt(r.severity.as_ref()),
                        opt(r.cvss),
                        r.exploited.to_string(),
                        r.kev.to_string(),
                        opt(r.kev_due),
                        opt(r.epss),
                        r.title.clone(),
                        r.fixes.join("; "),
                    ]
                })
                .collect();
            print!(
                "{}",
                csv(
                    &[
                        "cve",
                        "month",
                        "severity",
                        "cvss",
                        "exploited",
                        "kev",
                        "kev_due",
                        "epss",
                        "title",
                        "fixes"
                    ],
                    &r
                )?
            );
        }
        Format::Table => {
            let mut t = Table::new(&[
                "CVE", "MONTH", "SEV", "CVSS", "EXPL", "KEV", "EPSS", "TITLE",
            ]);
            for r in &rows {
                t.row(vec![
                    r.cve.clone(),
                    r.document.clone(),
                    opt(r.severity.as_ref()),
                    opt(r.cvss),
                    if r.exploited {
                        "yes".into()
                    } else {
                        String::new()
                    },
                    r.kev_due.map(|d| format!("due {d}")).unwrap_or_default(),
                    r.epss.map(|e| format!("{e:.3}")).unwrap_or_default(),
                    r.title.clone(),
                ]);
            }
            print!("{}", t.render());
            if a.cve.is_some() {
                for r in &rows {
                    println!(
                        "\nProducts: {}\nFixes:\n  {}",
                        r.products.join(", "),
                        r.fixes.join("\n  ")
                    );
                }
            }
            eprintln!("{} CVE(s)", rows.len());
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct FeedStatusArgs {
    /// Judge staleness as of this date (default today).
    #[arg(long)]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub use patchward_app::feeds::summarise;

pub async fn feed_status(db: &Path, tenant: Option<&str>, a: FeedStatusArgs) -> Result<()> {
    let store = open(db).await?;
    let as_of = as_of(a.as_of.as_deref())?;
    let lines = summarise(&store.feed_status().await?, as_of);
    let tenant = super::tenant(&store, tenant).await?;
    let counts = store.counts(tenant).await?;
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"feeds": lines, "counts": counts}))?
        ),
        Format::Csv | Format::Table => {
            let rows: Vec<Vec<String>> = lines
                .iter()
                .map(|l| {
                    vec![
                        l.feed.clone(),
                        l.documents.to_string(),
                        l.newest
                            .map(|t| t.strftime("%Y-%m-%d").to_string())
                            .unwrap_or_else(|| "-".into()),
                        l.records.to_string(),
                        if l.stale {
                            "STALE".into()
                        } else {
                            "current".into()
                        },
                        l.imported_at.strftime("%Y-%m-%d %H:%M").to_string(),
                        l.source.clone(),
                    ]
                })
                .collect();
            let headers = [
                "feed", "files", "as_of", "records", "status", "imported", "source",
            ];
            if a.format == Format::Csv {
                print!("{}", csv(&headers, &rows)?);
            } else {
                let mut t = Table::new(&[
                    "FEED",
                    "FILES",
                    "AS OF",
                    "RECORDS",
                    "STATUS",
                    "IMPORTED (UTC)",
                    "LAST SOURCE",
                ]);
                for r in rows {
                    t.row(r);
                }
                print!("{}", t.render());
                println!(
                    "stored: {} MSRC documents, {} Windows Server CVEs, {} fixes, {} KEV, {} EPSS, {} NVD, {} servers",
                    counts.documents,
                    counts.vulnerabilities,
                    counts.fixes,
                    counts.kev,
                    counts.epss,
                    counts.nvd,
                    counts.servers
                );
            }
        }
    }
    Ok(())
}
