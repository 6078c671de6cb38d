//! Showing plans: `--explain`, `--list`, and the table / JSON / CSV renderings.

use super::{find_server, load};
use crate::Format;
use crate::render::{Table, csv};
use anyhow::{Result, anyhow};
use jiff::tz::TimeZone;
use patchward_app::AnyStore;
use patchward_core::calendar::{format_duration, format_instant, format_slot, time_zone};
use patchward_core::inventory::Estate;
use patchward_core::plan::Plan;
use patchward_store::{Store, TenantId};
use std::collections::{BTreeMap, HashMap, HashSet};

pub(super) async fn explain(
    store: &AnyStore,
    tenant: TenantId,
    cycle: Option<&str>,
    server: &str,
    format: Format,
    tz: &TimeZone,
) -> Result<()> {
    let p = load(store, tenant, cycle).await?;
    let estate = store.estate(tenant).await.unwrap_or_default();
    let missing = || match find_server(&estate, server) {
        Some(name) => anyhow!(
            "server {name} was not in the scope of plan {:?} (no open CVEs or missing updates, or left out by --servers/--ring)",
            p.cycle
        ),
        None => anyhow!(
            "no server named {server:?} in plan {:?} or in the estate (see `patchward servers`)",
            p.cycle
        ),
    };
    let out = match format {
        Format::Json => {
            let v = if let Some(x) = p.placement(server) {
                serde_json::json!({"cycle": p.cycle, "status": status_of(&p, &x.server), "placement": x})
            } else if let Some(u) = p.unplaced(server) {
                serde_json::json!({"cycle": p.cycle, "status": "unplaced", "unplaced": u})
            } else {
                let line = p.explain(server).ok_or_else(missing)?;
                serde_json::json!({"cycle": p.cycle, "explanation": line})
            };
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        Format::Csv => {
            let rows: Vec<Vec<String>> = csv_rows(&p)
                .into_iter()
                .filter(|r| r[2].eq_ignore_ascii_case(server))
                .collect();
            if rows.is_empty() {
                return Err(missing());
            }
            csv(CSV_HEADERS, &rows)?
        }
        Format::Table => {
            let mut s = String::new();
            if let Some(x) = p.placement(server) {
                let wtz = window_tz(&estate, &x.window);
                s.push_str(&format!(
                    "{}: wave {} of plan {:?}{}\n  slot: {} (window '{}')\n",
                    x.server,
                    x.wave,
                    p.cycle,
                    x.ring
                        .as_deref()
                        .map(|r| format!(", ring '{r}'"))
                        .unwrap_or_default(),
                    format_slot(x.start, x.end, &wtz),
                    x.window
                ));
                if let Some(d) = x.due {
                    s.push_str(&format!("  due: {}", format_instant(d, tz)));
                    if let Some(l) = x.late_by {
                        s.push_str(&format!(" (LATE by {})", format_duration(l)));
                    }
                    s.push('\n');
                }
                s.push_str("  reasons:\n");
                for r in &x.reasons {
                    s.push_str(&format!("    - {r}\n"));
                }
            } else if let Some(u) = p.unplaced(server) {
                s.push_str(&format!(
                    "{}: NOT PLACED in plan {:?}{}\n  rule: {}\n",
                    u.server,
                    p.cycle,
                    u.ring
                        .as_deref()
                        .map(|r| format!(", ring '{r}'"))
                        .unwrap_or_default(),
                    rule_label(u.rule)
                ));
                if let Some(d) = u.due {
                    s.push_str(&format!("  due: {}\n", format_instant(d, tz)));
                }
                s.push_str("  reasons:\n");
                for r in &u.reasons {
                    s.push_str(&format!("    - {r}\n"));
                }
            } else {
                s.push_str(&p.explain(server).ok_or_else(missing)?);
                s.push('\n');
            }
            s
        }
    };
    print!("{out}");
    Ok(())
}

pub(super) async fn list(
    store: &AnyStore,
    tenant: TenantId,
    format: Format,
    tz: &TimeZone,
) -> Result<()> {
    let plans = store.plans(tenant).await?;
    let out = match format {
        Format::Json => {
            let v: Vec<_> = plans
                .iter()
                .map(|(c, t)| serde_json::json!({"cycle": c, "created_at": t}))
                .collect();
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        Format::Csv => csv(
            &["cycle", "created_at"],
            &plans
                .iter()
                .map(|(c, t)| vec![c.clone(), t.to_string()])
                .collect::<Vec<_>>(),
        )?,
        Format::Table => {
            if plans.is_empty() {
                "no plans stored: make one with `patchward plan --cycle NAME --start WHEN`\n"
                    .to_string()
            } else {
                let mut t = Table::new(&["CYCLE", "CREATED"]);
                for (c, at) in &plans {
                    t.row(vec![c.clone(), format_instant(*at, tz)]);
                }
                t.render()
            }
        }
    };
    print!("{out}");
    Ok(())
}

/// The zone a window's slots are shown in (UTC when the window is no longer in the estate).
fn window_tz(estate: &Estate, window: &str) -> TimeZone {
    estate
        .windows
        .iter()
        .find(|w| w.name == window)
        .and_then(|w| time_zone(&w.time_zone))
        .unwrap_or(TimeZone::UTC)
}

fn rule_label(r: patchward_core::plan::UnplacedRule) -> String {
    match serde_json::to_value(r) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{r:?}"),
    }
}

fn status_of(p: &Plan, server: &str) -> &'static str {
    if p.late.iter().any(|l| l.server == server) {
        "late"
    } else {
        "placed"
    }
}

/// `status_of` for every placement at once (a set, not a scan of `late` per row).
fn late_set(p: &Plan) -> HashSet<&str> {
    p.late.iter().map(|l| l.server.as_str()).collect()
}

const CSV_HEADERS: &[&str] = &[
    "cycle", "wave", "server", "ring", "start", "end", "status", "reasons",
];

/// One row per placement, unplaced server, running job and finished server.
fn csv_rows(p: &Plan) -> Vec<Vec<String>> {
    let mut rows = Vec::with_capacity(p.placements.len() + p.unplaced.len());
    let late = late_set(p);
    for x in &p.placements {
        rows.push(vec![
            p.cycle.clone(),
            x.wave.to_string(),
            x.server.clone(),
            x.ring.clone().unwrap_or_default(),
            x.start.to_string(),
            x.end.to_string(),
            if late.contains(x.server.as_str()) {
                "late"
            } else {
                "placed"
            }
            .to_string(),
            x.reasons.join("; "),
        ]);
    }
    for u in &p.unplaced {
        rows.push(vec![
            p.cycle.clone(),
            String::new(),
            u.server.clone(),
            u.ring.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            "unplaced".into(),
            u.reasons.join("; "),
        ]);
    }
    for r in &p.in_progress {
        rows.push(vec![
            p.cycle.clone(),
            String::new(),
            r.server.clone(),
            r.ring.clone().unwrap_or_default(),
            r.start.to_string(),
            r.end.to_string(),
            "running".into(),
            "still running (keeps its slot)".into(),
        ]);
    }
    for f in &p.finished {
        rows.push(vec![
            p.cycle.clone(),
            String::new(),
            f.clone(),
            String::new(),
            String::new(),
            String::new(),
            "finished".into(),
            "already finished in this cycle".into(),
        ]);
    }
    rows
}

pub fn render(p: &Plan, estate: &Estate, format: Format, tz: &TimeZone) -> Result<String> {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(p)?;
            s.push('\n');
            Ok(s)
        }
        Format::Csv => csv(CSV_HEADERS, &csv_rows(p)),
        Format::Table => Ok(render_table(p, estate, tz)),
    }
}

fn render_table(p: &Plan, estate: &Estate, tz: &TimeZone) -> String {
    let mut out = format!(
        "Plan {:?}{}: from {} (horizon {}): {} server(s) in {} wave(s){}; {} not placed; {} late\n",
        p.cycle,
        if p.emergency { " (EMERGENCY)" } else { "" },
        format_instant(p.start, tz),
        format_instant(p.horizon_end, tz),
        p.placements.len(),
        p.waves.len(),
        p.finish
            .map(|f| format!(", finishing {}", format_instant(f, tz)))
            .unwrap_or_default(),
        p.unplaced.len(),
        p.late.len()
    );
    // Each window's zone, parsed once (not once per placement).
    let zones: HashMap<&str, TimeZone> = estate
        .windows
        .iter()
        .map(|w| {
            (
                w.name.as_str(),
                time_zone(&w.time_zone).unwrap_or(TimeZone::UTC),
            )
        })
        .collect();
    let wtz_of = |w: &str| zones.get(w).cloned().unwrap_or(TimeZone::UTC);
    let by_server: BTreeMap<&str, &patchward_core::plan::Placement> = p
        .placements
        .iter()
        .map(|x| (x.server.as_str(), x))
        .collect();
    for w in &p.waves {
        let first_tz = w
            .servers
            .first()
            .and_then(|s| by_server.get(s.as_str()))
            .map(|x| wtz_of(&x.window))
            .unwrap_or(TimeZone::UTC);
        out.push_str(&format!(
            "\nWave {}: {} ({} server(s))\n",
            w.number,
            format_slot(w.start, w.end, &first_tz),
            w.servers.len()
        ));
        let mut t = Table::new(&["  SERVER", "RING", "WINDOW", "SLOT", "REASONS"]);
        for s in &w.servers {
            let Some(x) = by_server.get(s.as_str()) else {
                continue;
            };
            let wtz = wtz_of(&x.window);
            let mut slot = format_slot(x.start, x.end, &wtz);
            if let Some(l) = x.late_by {
                slot.push_str(&format!(" LATE {}", format_duration(l)));
            }
            t.row(vec![
                format!("  {}", x.server),
                x.ring.clone().unwrap_or_else(|| "-".into()),
                x.window.clone(),
                slot,
                // The first reason restates wave, slot and window, which have columns here.
                x.reasons
                    .iter()
                    .skip(1)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            ]);
        }
        out.push_str(&t.render());
    }
    if !p.in_progress.is_empty() {
        out.push_str("\nStill running (keep their slots):\n");
        let mut t = Table::new(&["  SERVER", "RING", "SLOT"]);
        for r in &p.in_progress {
            t.row(vec![
                format!("  {}", r.server),
                r.ring.clone().unwrap_or_else(|| "-".into()),
                format_slot(r.start, r.end, tz),
            ]);
        }
        out.push_str(&t.render());
    }
    if !p.finished.is_empty() {
        out.push_str(&format!(
            "\nAlready finished in this cycle: {}\n",
            p.finished.join(", ")
        ));
    }
    if !p.unplaced.is_empty() {
        out.push_str("\nNot placed:\n");
        let mut t = Table::new(&["  SERVER", "RING", "RULE", "REASONS"]);
        for u in &p.unplaced {
            t.row(vec![
                format!("  {}", u.server),
                u.ring.clone().unwrap_or_else(|| "-".into()),
                rule_label(u.rule),
                u.reasons.join("; "),
            ]);
        }
        out.push_str(&t.render());
    }
    if !p.late.is_empty() {
        out.push_str("\nLate (finish after their due date):\n");
        let mut t = Table::new(&["  SERVER", "DUE", "ENDS", "LATE BY"]);
        for l in &p.late {
            t.row(vec![
                format!("  {}", l.server),
                format_instant(l.due, tz),
                format_instant(l.end, tz),
                format_duration(l.late_by),
            ]);
        }
        out.push_str(&t.render());
    }
    if !p.dependency_cycles.is_empty() {
        out.push_str("\nDependency cycles (inventory errors):\n");
        for c in &p.dependency_cycles {
            out.push_str(&format!("  {}\n", c.join(", ")));
        }
    }
    if !p.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in &p.warnings {
            out.push_str(&format!("  {w}\n"));
        }
    }
    out.push_str("\nWhy a server is where it is: patchward plan --explain SERVER\n");
    out
}
