//! Plain-language reasons for placements and for servers that could not be placed.
//! Times are written in the zone of the window concerned ("Tue 24 Nov 22:00–23:30 PST").

use super::schedule::{Ctx, Gate, Push, Skip, Slot, St, budget_text, rule_text, to_ts};
use crate::calendar::{format_duration, format_instant, format_slot};
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;

fn tz_of_window(ctx: &Ctx<'_, '_>, w: u32) -> TimeZone {
    ctx.windows
        .get(w as usize)
        .and_then(|x| x.tz.clone())
        .unwrap_or(TimeZone::UTC)
}

/// The zone a server's times are best shown in: that of its first valid window.
fn server_tz(ctx: &Ctx<'_, '_>, s: usize) -> TimeZone {
    ctx.server_windows[s]
        .iter()
        .find_map(|&w| ctx.windows[w as usize].tz.clone())
        .unwrap_or(TimeZone::UTC)
}

fn push_text(ctx: &Ctx<'_, '_>, s: usize, p: &Push, tz: &TimeZone) -> String {
    let est = ctx.input.estate;
    match *p {
        Push::Blackout(b) => match est.blackouts.get(b as usize) {
            Some(bl) => format!(
                "not during blackout '{}' (until {}{})",
                bl.name,
                format_instant(bl.end, tz),
                bl.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            None => "not during a blackout".into(),
        },
        Push::Backup(k) => format!(
            "not during the backup job window of policy '{}'",
            est.backup_policies
                .get(k as usize)
                .map_or("?", |p| p.name.as_str())
        ),
        Push::Coverage => "only while the operations team is on duty (coverage)".into(),
        Push::Service { svc, from, to } => {
            let ku = svc as usize;
            let Some(service) = est.services.get(ku) else {
                return "disruption budget".into();
            };
            let mut others: Vec<&str> = ctx.svc_slots[ku]
                .iter()
                .filter(|(a, b, x)| *a < to && from < *b && *x as usize != s)
                .map(|(_, _, x)| ctx.names[*x as usize])
                .collect();
            others.sort_unstable();
            others.dedup();
            let failed: Vec<&str> = ctx.svc_failed[ku]
                .iter()
                .map(|&x| ctx.names[x as usize])
                .collect();
            let allowed = ctx.svc_allowed[ku];
            let mut text = if others.is_empty() {
                format!(
                    "not with other members of service '{}' ({} allows {allowed} down)",
                    service.name,
                    budget_text(&service.budget)
                )
            } else {
                format!(
                    "not with {} (service '{}' allows {allowed} down)",
                    others.join(", "),
                    service.name
                )
            };
            if !failed.is_empty() {
                text.push_str(&format!(
                    "; failed {} count{} against it until resolved",
                    failed.join(", "),
                    if failed.len() == 1 { "s" } else { "" }
                ));
            }
            text
        }
        Push::Site(site) => format!(
            "site '{}' already has {} in flight (capacity per site)",
            ctx.site_names
                .get(site as usize)
                .map_or("?", |s| s.as_str()),
            ctx.site_limit(site).unwrap_or(0)
        ),
        Push::Global => format!(
            "{} servers already in flight estate-wide (capacity)",
            ctx.cap_global.unwrap_or(0)
        ),
        Push::TooShort => "too little of the window left".into(),
    }
}

fn skip_text(ctx: &Ctx<'_, '_>, s: usize, k: &Skip) -> String {
    let tz = tz_of_window(ctx, k.window);
    format!(
        "skipped window '{}' at {}: {}",
        ctx.windows[k.window as usize].name,
        format_instant(to_ts(k.occ_start), &tz),
        push_text(ctx, s, &k.why, &tz)
    )
}

pub(super) fn placement_reasons(
    ctx: &Ctx<'_, '_>,
    slot: &Slot,
    wave: u32,
    wave_of: &dyn Fn(i64) -> u32,
) -> Vec<String> {
    let s = slot.server as usize;
    let tz = tz_of_window(ctx, slot.window);
    let f = &slot.facts;
    let mut out = Vec::new();
    out.push(format!(
        "wave {wave}, {} in window '{}'",
        format_slot(to_ts(slot.start), to_ts(slot.end), &tz),
        ctx.windows[slot.window as usize].name
    ));
    if let Some(r) = ctx.rings[ctx.ring_of[s] as usize].name.as_deref() {
        out.push(format!("ring '{r}'"));
    }
    if let Gate::Ring { ring, finish, soak } = f.gate {
        out.push(format!(
            "ring '{}' finished {} and soaks {}",
            ctx.ring_label(ring),
            format_instant(to_ts(finish), &tz),
            format_duration(SignedDuration::from_secs(soak))
        ));
    }
    let mut dep_binding = false;
    for &b in &f.deps {
        let name = ctx.names[b as usize];
        match &ctx.state[b as usize] {
            St::Placed(k) => {
                let end = ctx.slots.get(*k as usize).map_or(0, |x| x.end);
                let start = ctx.slots.get(*k as usize).map_or(0, |x| x.start);
                if end == f.earliest {
                    dep_binding = true;
                }
                out.push(format!(
                    "after {name} (dependency, wave {})",
                    wave_of(start)
                ));
            }
            St::Running(_, end) => {
                if *end == f.earliest {
                    dep_binding = true;
                }
                out.push(format!(
                    "after {name} (dependency, still running until {})",
                    format_instant(to_ts(*end), &tz)
                ));
            }
            St::Finished(_) => out.push(format!("after {name} (dependency, already finished)")),
            _ => {}
        }
    }
    out.extend(not_patched_dependencies(ctx, s));
    for &b in &f.running_neighbours {
        if let St::Running(_, end) = ctx.state[b as usize] {
            out.push(format!(
                "not with {} (dependency, still running until {})",
                ctx.names[b as usize],
                format_instant(to_ts(end), &tz)
            ));
        }
    }
    let mut seen = Vec::new();
    for p in &f.pushes {
        let t = push_text(ctx, s, p, &tz);
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    out.extend(seen);
    for k in &f.skipped {
        out.push(skip_text(ctx, s, k));
    }
    if f.skipped_more > 0 {
        out.push(format!(
            "and {} more window occurrence(s) skipped",
            f.skipped_more
        ));
    }
    if f.pushes.is_empty() && f.skipped.is_empty() {
        let gate_binding =
            matches!(f.gate, Gate::Ring { finish, soak, .. } if finish + soak == f.earliest);
        if dep_binding {
            out.push("first window after its dependencies finish".into());
        } else if let (true, Gate::Ring { ring, .. }) = (gate_binding, f.gate) {
            out.push(format!(
                "first window after ring '{}' soak ends",
                ctx.ring_label(ring)
            ));
        } else {
            out.push("first window occurrence that fits".into());
        }
    }
    if let Some(d) = ctx.due[s] {
        let end = to_ts(slot.end);
        // Which date, and where it came from: an operator has to know whom to tell.
        let from = ctx.due_source[s]
            .map(|x| format!(" ({x})"))
            .unwrap_or_default();
        if end > d {
            out.push(format!(
                "misses its due date {}{from} by {}",
                format_instant(d, &tz),
                format_duration(d.duration_until(end))
            ));
        } else {
            out.push(format!(
                "meets its due date {}{from}",
                format_instant(d, &tz)
            ));
        }
    }
    out
}

/// At most this many "not patched in this cycle" dependencies are named per server.
const NOT_PATCHED_SHOWN: usize = 5;

/// Dependencies (any ring) that are never taken down in this cycle, and why: they neither go
/// first nor can be in flight with the server, so they do not hold it back — but an operator
/// should know that the server is patched on top of an unpatched dependency.
fn not_patched_dependencies(ctx: &Ctx<'_, '_>, s: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut more = 0usize;
    for &b in &ctx.deps_of[s] {
        let why = match &ctx.state[b as usize] {
            St::OutOfScope => "not in this cycle's scope".to_string(),
            St::Unplaced(rule, why) => match why.first() {
                Some(w) => format!("{} ({w})", rule_text(*rule)),
                None => rule_text(*rule).to_string(),
            },
            _ => continue,
        };
        if out.len() < NOT_PATCHED_SHOWN {
            out.push(format!(
                "depends on {}, which is not patched in this cycle: {why}",
                ctx.names[b as usize]
            ));
        } else {
            more += 1;
        }
    }
    if more > 0 {
        out.push(format!(
            "and {more} more dependencies not patched in this cycle"
        ));
    }
    out
}

pub(super) fn no_slot_reasons(
    ctx: &Ctx<'_, '_>,
    s: usize,
    earliest: i64,
    ring_start: i64,
    gate: Gate,
    skipped: &[Skip],
) -> Vec<String> {
    let tz = server_tz(ctx, s);
    let mut out = vec![format!(
        "no window occurrence before the horizon ({}) fits its {}",
        format_instant(to_ts(ctx.hz_end), &tz),
        format_duration(SignedDuration::from_secs(ctx.dur[s]))
    )];
    if earliest > ctx.start {
        if let Gate::Ring { ring, .. } = gate
            && earliest == ring_start
        {
            out.push(format!(
                "cannot start before {} (after ring '{}' soak)",
                format_instant(to_ts(earliest), &tz),
                ctx.ring_label(ring)
            ));
        } else {
            out.push(format!(
                "cannot start before {} (after its dependencies)",
                format_instant(to_ts(earliest), &tz)
            ));
        }
    }
    if skipped.is_empty() {
        out.push("its windows have no occurrence in that time".into());
    } else {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for k in skipped {
            *counts.entry(push_text(ctx, s, &k.why, &tz)).or_default() += 1;
        }
        out.push(format!("{} occurrence(s) tried", skipped.len()));
        for (why, c) in counts {
            out.push(format!("{c}× {why}"));
        }
    }
    out
}
