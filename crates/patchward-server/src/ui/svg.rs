//! Charts as plain SVG written here (UI guide: the plan timeline, a titled bar chart with a
//! table beside it). Every text is escaped; every mark has a `<title>` for screen readers and
//! hover.

use jiff::Timestamp;
use patchward_proto::{PlanView, TrendPoint};
use std::collections::HashMap;
use std::fmt::Write;

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const ROW: f64 = 22.0;
const HEAD: f64 = 22.0;

/// "Tue 02:00" in UTC.
fn short(t: Timestamp) -> String {
    t.strftime("%a %d %b %H:%M").to_string()
}

/// The plan as a timeline: one row per server, grouped by ring then wave, x = time. Server
/// names sit in an HTML column beside the scrolling SVG; each bar links to its server and
/// says why it is there.
pub fn timeline(plan: &PlanView, ids: &HashMap<String, i64>, now: Timestamp) -> String {
    let mut rows: Vec<(&str, Option<&patchward_proto::PlacementView>)> = Vec::new();
    let mut order: Vec<&str> = Vec::new();
    for p in &plan.placements {
        let r = p.ring.as_deref().unwrap_or("(no ring)");
        if !order.contains(&r) {
            order.push(r);
        }
    }
    let parse = |s: &str| s.parse::<Timestamp>().ok();
    let spans: Vec<(Timestamp, Timestamp)> = plan
        .placements
        .iter()
        .filter_map(|p| Some((parse(&p.start)?, parse(&p.end)?)))
        .collect();
    let (Some(t0), Some(t1)) = (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.1).max(),
    ) else {
        return String::new();
    };
    for r in &order {
        rows.push((r, None));
        let mut mine: Vec<&patchward_proto::PlacementView> = plan
            .placements
            .iter()
            .filter(|p| p.ring.as_deref().unwrap_or("(no ring)") == *r)
            .collect();
        mine.sort_by(|a, b| (a.wave, &a.start, &a.server).cmp(&(b.wave, &b.start, &b.server)));
        rows.extend(mine.into_iter().map(|p| (p.server.as_str(), Some(p))));
    }
    let span = (t1.as_second() - t0.as_second()).max(3600) as f64;
    let days = span / 86_400.0;
    let width = (days * 160.0).clamp(720.0, 4000.0);
    let x = |t: Timestamp| (t.as_second() - t0.as_second()) as f64 / span * (width - 20.0) + 10.0;
    let height = HEAD + ROW * rows.len() as f64;
    let mut names = String::new();
    let _ = write!(
        names,
        "<div class=\"names\" aria-hidden=\"true\"><div>&nbsp;</div>"
    );
    for (label, p) in &rows {
        match p {
            None => {
                let _ = write!(names, "<div class=\"group\">{}</div>", esc(label));
            }
            Some(_) => {
                let _ = write!(names, "<div>{}</div>", esc(label));
            }
        }
    }
    names.push_str("</div>");
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"Plan timeline of {} servers from {} to {} (UTC); the table below lists the same slots\">",
        plan.placements.len(),
        esc(&short(t0)),
        esc(&short(t1))
    );
    // Day lines and labels.
    let mut day =
        Timestamp::from_second(t0.as_second() - t0.as_second().rem_euclid(86_400)).unwrap_or(t0);
    while day <= t1 {
        if day >= t0 {
            let dx = x(day);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{dx:.1}\" y1=\"0\" x2=\"{dx:.1}\" y2=\"{height:.0}\"/><text x=\"{:.1}\" y=\"14\">{}</text>",
                dx + 3.0,
                esc(&day.strftime("%a %d %b").to_string())
            );
        }
        match day.checked_add(jiff::SignedDuration::from_hours(24)) {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    for (i, (_, p)) in rows.iter().enumerate() {
        let Some(p) = p else { continue };
        let (Some(s), Some(e)) = (parse(&p.start), parse(&p.end)) else {
            continue;
        };
        let y = HEAD + ROW * i as f64 + 3.0;
        let (x0, x1) = (x(s), x(e));
        let late = p.late_minutes.is_some();
        let title = format!(
            "{} · {} · wave {} · {}–{} UTC · {}{}",
            p.server,
            p.ring.as_deref().unwrap_or("no ring"),
            p.wave,
            short(s),
            e.strftime("%H:%M"),
            p.reasons.first().map(String::as_str).unwrap_or(""),
            if late {
                " · LATE: past its due date"
            } else {
                ""
            }
        );
        let href = ids
            .get(&p.server.to_ascii_lowercase())
            .map(|id| format!("/servers/{id}"))
            .unwrap_or_default();
        let _ = write!(
            svg,
            "<a href=\"{}\"><rect class=\"slot{}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\"><title>{}</title></rect></a>",
            esc(&href),
            if late { " late" } else { "" },
            (x1 - x0).max(3.0),
            ROW - 6.0,
            esc(&title)
        );
    }
    if now >= t0 && now <= t1 {
        let nx = x(now);
        let _ = write!(
            svg,
            "<line class=\"now\" x1=\"{nx:.1}\" y1=\"0\" x2=\"{nx:.1}\" y2=\"{height:.0}\"><title>now</title></line>"
        );
    }
    svg.push_str("</svg>");
    format!("<div class=\"timeline\" id=\"timeline\">{names}<div class=\"chart\">{svg}</div></div>")
}

/// Open findings at each cycle's planning and now, as bars with their numbers.
pub fn trend(points: &[TrendPoint]) -> String {
    if points.is_empty() {
        return String::new();
    }
    let max = points.iter().map(|p| p.open).max().unwrap_or(0).max(1) as f64;
    let (bw, gap, h) = (56.0, 18.0, 140.0);
    let width = points.len() as f64 * (bw + gap) + gap;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"trend\" width=\"{width:.0}\" height=\"{:.0}\" role=\"img\" aria-label=\"Open findings at each cycle's planning and now: {}\">",
        h + 40.0,
        esc(&points
            .iter()
            .map(|p| format!("{} {}", p.label, p.open))
            .collect::<Vec<_>>()
            .join(", "))
    );
    for (i, p) in points.iter().enumerate() {
        let bh = (p.open as f64 / max * h).max(1.0);
        let x = gap + i as f64 * (bw + gap);
        let y = 16.0 + h - bh;
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{x:.0}\" y=\"{y:.1}\" width=\"{bw:.0}\" height=\"{bh:.1}\"><title>{}: {} open, {} Act, {} KEV</title></rect><text x=\"{x:.0}\" y=\"{:.1}\">{}</text><text x=\"{x:.0}\" y=\"{:.0}\">{}</text>",
            esc(&p.label),
            p.open,
            p.act,
            p.kev,
            y - 3.0,
            p.open,
            h + 32.0,
            esc(&truncate(&p.label, 9))
        );
    }
    s.push_str("</svg>");
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_in_marks() {
        let p = TrendPoint {
            label: "<script>".into(),
            at: "2026-12-01T00:00:00Z".into(),
            open: 3,
            act: 1,
            kev: 0,
        };
        let s = trend(&[p]);
        assert!(!s.contains("<script>") && s.contains("&lt;script&gt;"));
        assert!(s.contains("3 open, 1 Act"));
    }
}
