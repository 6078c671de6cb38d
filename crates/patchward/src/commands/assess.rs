//! `assess`: exposure and priorities, most urgent first.

use super::{as_of, load_policy, open};
use crate::Format;
use crate::render::{Table, csv, opt};
use anyhow::{Result, bail};
use clap::Args;
use jiff::civil::Date;
use patchward_core::exposure::{ExposureIndex, ServerExposure};
use patchward_core::priority::Decision;
use patchward_store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args, Clone)]
pub struct AssessArgs {
    /// Only this server (case-insensitive); shows every finding in full.
    #[arg(long)]
    pub host: Option<String>,
    /// Assess as of this date (support status, due dates, overdue); default today.
    #[arg(long)]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Policy file (TOML, see `patchward policy`); default policy otherwise.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Only CVEs in CISA KEV.
    #[arg(long)]
    pub kev_only: bool,
    /// Only findings at or above this decision (act, attend, track-star, track).
    #[arg(long, value_parser = parse_decision)]
    pub min_decision: Option<Decision>,
    /// How many of the most urgent findings the table lists (all with --host).
    #[arg(long, default_value_t = 15)]
    pub top: usize,
}

fn parse_decision(s: &str) -> Result<Decision, String> {
    match s.to_ascii_lowercase().as_str() {
        "act" => Ok(Decision::Act),
        "attend" => Ok(Decision::Attend),
        "track*" | "track-star" | "trackstar" => Ok(Decision::TrackStar),
        "track" => Ok(Decision::Track),
        _ => Err(format!(
            "{s:?} is not a decision (act, attend, track-star, track)"
        )),
    }
}

#[derive(Serialize)]
pub struct Assessment {
    pub as_of: Date,
    pub servers: Vec<ServerExposure>,
}

pub use patchward_app::fleet::{assess_all, summarise_all};

pub async fn run(db: &Path, tenant: Option<&str>, a: AssessArgs) -> Result<()> {
    let store = open(db).await?;
    let tenant = super::tenant(&store, tenant).await?;
    let policy = load_policy(a.policy.as_deref())?;
    let as_of = as_of(a.as_of.as_deref())?;
    let mut servers = store.servers(tenant).await?;
    if let Some(h) = &a.host {
        servers.retain(|s| s.name.eq_ignore_ascii_case(h));
        if servers.is_empty() {
            bail!(
                "no server named {h:?} in {} (see `patchward servers`)",
                db.display()
            );
        }
    }
    if servers.is_empty() {
        bail!(
            "no servers in {}: import some with `patchward import hosts`",
            db.display()
        );
    }
    let catalog = store.catalog().await?;
    if catalog.fixes.is_empty() {
        eprintln!(
            "warning: no MSRC data imported yet: import feeds first (`patchward import feeds`)"
        );
    }
    let index = ExposureIndex::new(catalog);
    let mut result = assess_all(&index, &servers, &policy, as_of);
    for s in &mut result {
        s.open_cves.retain(|c| {
            (!a.kev_only || c.kev)
                && a.min_decision
                    .is_none_or(|m| c.priority.as_ref().is_some_and(|p| p.decision >= m))
        });
    }
    print!(
        "{}",
        render(&result, as_of, a.format, a.host.is_some(), a.top)?
    );
    Ok(())
}

pub fn render(
    servers: &[ServerExposure],
    as_of: Date,
    format: Format,
    detail: bool,
    top: usize,
) -> Result<String> {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&Assessment {
                as_of,
                servers: servers.to_vec(),
            })?;
            s.push('\n');
            Ok(s)
        }
        Format::Csv => render_csv(servers),
        Format::Table => Ok(render_table(servers, as_of, detail, top)),
    }
}

fn render_csv(servers: &[ServerExposure]) -> Result<String> {
    let mut rows = Vec::new();
    for s in servers {
        for c in &s.open_cves {
            let p = c.priority.as_ref();
            rows.push(vec![
                s.name.clone(),
                opt(s.product.as_ref()),
                opt(s.build),
                serde_json::to_value(s.build_source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                c.cve.to_string(),
                opt(c.severity.as_ref()),
                opt(c.cvss),
                c.kev.to_string(),
                c.exploited.to_string(),
                opt(c.epss),
                c.fixed_by
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                c.install.to_string(),
                serde_json::to_value(c.determined_by)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                p.map(|p| p.decision.label().to_string())
                    .unwrap_or_default(),
                opt(p.map(|p| p.due)),
                p.map(|p| p.overdue.to_string()).unwrap_or_default(),
                c.reasons().join("; "),
            ]);
        }
    }
    csv(
        &[
            "server",
            "product",
            "build",
            "build_source",
            "cve",
            "severity",
            "cvss",
            "kev",
            "exploited",
            "epss",
            "fixed_by",
            "install",
            "determined_by",
            "decision",
            "due",
            "overdue",
            "reasons",
        ],
        &rows,
    )
}

fn support_word(s: &ServerExposure) -> String {
    match &s.support {
        Some(st) => match st.phase {
            patchward_core::intel::SupportPhase::Mainstream => "mainstream".into(),
            patchward_core::intel::SupportPhase::Extended => "extended".into(),
            patchward_core::intel::SupportPhase::Esu => "ESU only".into(),
            patchward_core::intel::SupportPhase::Unsupported => "UNSUPPORTED".into(),
            patchward_core::intel::SupportPhase::Unknown => "?".into(),
        },
        None => "?".into(),
    }
}

fn render_table(servers: &[ServerExposure], as_of: Date, detail: bool, top: usize) -> String {
    let mut out = String::new();
    let open: usize = servers.iter().map(|s| s.open_cves.len()).sum();
    let exposed = servers.iter().filter(|s| !s.open_cves.is_empty()).count();
    let mut kev_cves: BTreeMap<&str, usize> = BTreeMap::new();
    let mut emergency: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in servers {
        for c in &s.open_cves {
            if c.kev {
                *kev_cves.entry(&c.cve).or_default() += 1;
            }
            if c.priority.as_ref().is_some_and(|p| p.emergency) {
                emergency.entry(&c.cve).or_default().push(&s.name);
            }
        }
    }
    out.push_str(&format!(
        "Patchward assessment as of {as_of}: {} server(s); {open} open CVE finding(s) on {exposed} server(s); {} distinct KEV CVE(s) open\n",
        servers.len(),
        kev_cves.len()
    ));
    if !emergency.is_empty() {
        let mut list: Vec<(&&str, &Vec<&str>)> = emergency.iter().collect();
        list.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        out.push_str(&format!(
            "EMERGENCY: {} actively exploited / internet-exposed critical CVE(s) call for an emergency cycle, e.g. {}\n",
            emergency.len(),
            list.iter()
                .take(3)
                .map(|(c, s)| format!("{c} on {}", s.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    out.push('\n');

    let mut t = Table::new(&[
        "SERVER", "PRODUCT", "BUILD", "SUPPORT", "OPEN", "ACT", "ATTEND", "TRACK*", "TRACK", "KEV",
        "NEXT DUE", "INSTALL",
    ]);
    for s in servers {
        let count = |d: Decision| {
            s.open_cves
                .iter()
                .filter(|c| c.priority.as_ref().is_some_and(|p| p.decision == d))
                .count()
        };
        let next_due = s
            .open_cves
            .iter()
            .filter_map(|c| c.priority.as_ref().map(|p| p.due))
            .min();
        let build = match (s.build, s.build_source) {
            (Some(b), patchward_core::inventory::BuildSource::InferredFromKb) => {
                format!("{b} (inferred)")
            }
            (Some(b), _) => b.to_string(),
            (None, _) => "?".into(),
        };
        t.row(vec![
            s.name.clone(),
            s.product.clone().unwrap_or_else(|| "unrecognised".into()),
            build,
            support_word(s),
            s.open_cves.len().to_string(),
            count(Decision::Act).to_string(),
            count(Decision::Attend).to_string(),
            count(Decision::TrackStar).to_string(),
            count(Decision::Track).to_string(),
            s.open_cves.iter().filter(|c| c.kev).count().to_string(),
            next_due
                .map(|d| {
                    if d < as_of {
                        format!("{d} OVERDUE")
                    } else {
                        d.to_string()
                    }
                })
                .unwrap_or_else(|| "-".into()),
            s.missing_updates
                .iter()
                .take(3)
                .map(|m| m.kb.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    out.push_str(&t.render());

    let notes: Vec<String> = servers
        .iter()
        .flat_map(|s| s.notes.iter().map(move |n| format!("  {}: {n}", s.name)))
        .collect();
    if !notes.is_empty() {
        out.push_str("\nServer findings:\n");
        for n in &notes {
            out.push_str(n);
            out.push('\n');
        }
    }

    // The most urgent findings across the fleet (or all of one server's).
    let mut findings: Vec<(&ServerExposure, &patchward_core::exposure::OpenCve)> = servers
        .iter()
        .flat_map(|s| s.open_cves.iter().map(move |c| (s, c)))
        .collect();
    findings.sort_by(|(sa, a), (sb, b)| {
        let k = |c: &patchward_core::exposure::OpenCve| {
            c.priority
                .as_ref()
                .map(|p| (std::cmp::Reverse(p.decision), p.due))
        };
        k(a).cmp(&k(b))
            .then(b.kev.cmp(&a.kev))
            .then(
                b.cvss
                    .partial_cmp(&a.cvss)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(sa.name.cmp(&sb.name))
            .then(a.cve.cmp(&b.cve))
    });
    let limit = if detail { findings.len() } else { top };
    if !findings.is_empty() {
        out.push_str(&format!(
            "\n{} (of {}):\n",
            if detail {
                "Open CVEs, most urgent first"
            } else {
                "Most urgent findings"
            },
            findings.len()
        ));
        let mut t = Table::new(&[
            "DECISION", "DUE", "SERVER", "CVE", "SEV", "CVSS", "KEV", "EPSS", "INSTALL", "WHY",
        ]);
        for (s, c) in findings.iter().take(limit) {
            let p = c.priority.as_ref();
            t.row(vec![
                p.map(|p| p.decision.label().to_string())
                    .unwrap_or_default(),
                p.map(|p| {
                    if p.overdue {
                        format!("{} !", p.due)
                    } else {
                        p.due.to_string()
                    }
                })
                .unwrap_or_default(),
                s.name.clone(),
                c.cve.to_string(),
                c.severity.unwrap_or_default().to_string(),
                opt(c.cvss),
                if c.kev { "KEV".into() } else { String::new() },
                c.epss.map(|e| format!("{e:.3}")).unwrap_or_default(),
                c.install.to_string(),
                format!(
                    "{} — {}",
                    c.title,
                    c.reasons()
                        .into_iter()
                        .take(3)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ]);
        }
        out.push_str(&t.render());
    }
    if detail {
        for s in servers {
            if s.missing_updates.is_empty() {
                continue;
            }
            out.push_str(&format!("\nMissing updates on {}:\n", s.name));
            let mut t = Table::new(&["KB", "CLASSIFICATION", "FIXED BUILD", "CLOSES", "TITLE"]);
            for m in &s.missing_updates {
                t.row(vec![
                    m.kb.to_string(),
                    m.classification_label.to_string(),
                    opt(m.fixed_build),
                    format!("{} CVE(s)", m.closes.len()),
                    m.title.clone(),
                ]);
            }
            out.push_str(&t.render());
        }
    }
    out
}
