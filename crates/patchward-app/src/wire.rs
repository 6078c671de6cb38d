//! Core results → wire types (`patchward-proto`). The only place that knows both shapes.

use jiff::civil::Date;
use patchward_core::exposure::{Determination, ServerExposure};
use patchward_core::intel::SupportPhase;
use patchward_core::inventory::Server;
use patchward_core::priority::{Decision, ServerSummary};
use patchward_proto::{Finding, MissingUpdate, ServerDetail, ServerItem};

pub fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Act => "act",
        Decision::Attend => "attend",
        Decision::TrackStar => "track-star",
        Decision::Track => "track",
    }
}

fn phase_word(p: SupportPhase) -> &'static str {
    match p {
        SupportPhase::Mainstream => "mainstream",
        SupportPhase::Extended => "extended",
        SupportPhase::Esu => "esu",
        SupportPhase::Unsupported => "unsupported",
        SupportPhase::Unknown => "unknown",
    }
}

/// A serde enum's name (`"domain_controller"` → `domain_controller`).
pub(crate) fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The counts a list item shows: open CVEs, per decision (Track, Track*, Attend, Act), KEV,
/// overdue, and the worst decision with its earliest due date.
struct ItemCounts {
    open: usize,
    by_decision: [usize; 4],
    kev: usize,
    overdue: usize,
    worst: Option<(Decision, Date)>,
    excepted: usize,
}

fn server_item(id: i64, s: &Server, e: &ServerExposure, c: ItemCounts) -> ServerItem {
    ServerItem {
        id,
        name: s.name.clone(),
        fqdn: s.fqdn.clone(),
        os: s.os.clone(),
        release: s.release.or(e.release).map(|r| r.to_string()),
        build: s.build.or(e.build).map(|b| b.to_string()),
        owner: s.owner.as_ref().map(|o| o.name.clone()),
        tier: s.tier.0.to_string(),
        environment: s.environment.clone(),
        site: s.site.clone(),
        ring: s.ring.clone(),
        tags: s.tags.clone(),
        support: e.support.as_ref().map(|p| phase_word(p.phase).to_string()),
        open: count(c.open),
        act: count(c.by_decision[3]),
        attend: count(c.by_decision[2]),
        track_star: count(c.by_decision[1]),
        track: count(c.by_decision[0]),
        kev: count(c.kev),
        overdue: count(c.overdue),
        excepted: count(c.excepted),
        worst_decision: c.worst.map(|w| decision_word(w.0).to_string()),
        next_due: c.worst.map(|w| w.1.to_string()),
    }
}

/// A list item from the fleet's summary (no findings kept).
pub fn item(id: i64, s: &Server, sum: &ServerSummary, excepted: u32) -> ServerItem {
    let counts = ItemCounts {
        open: sum.open,
        by_decision: sum.by_decision,
        kev: sum.kev,
        overdue: sum.overdue,
        worst: sum.worst,
        excepted: excepted as usize,
    };
    server_item(id, s, &sum.exposure, counts)
}

/// A server's findings: `e` holds the open CVEs counted, `excepted` those under an active
/// exception (id, expiry), which are shown but not counted.
pub fn detail(
    id: i64,
    s: &Server,
    e: &ServerExposure,
    excepted: &[(patchward_core::exposure::OpenCve, i64, Date)],
    as_of: Date,
    limit: usize,
) -> ServerDetail {
    // The list's counts, from the full assessment.
    let mut by_decision = [0usize; 4];
    let (mut kev, mut overdue) = (0, 0);
    for c in &e.open_cves {
        if let Some(p) = &c.priority {
            by_decision[p.decision as usize] += 1;
            overdue += usize::from(p.overdue);
        }
        kev += usize::from(c.facts.kev);
    }
    let counts = ItemCounts {
        open: e.open_cves.len(),
        by_decision,
        kev,
        overdue,
        worst: patchward_core::priority::worst(e),
        excepted: excepted.len(),
    };
    let summary = server_item(id, s, e, counts);
    // Most urgent first (decision, then due date, then CVE id); reasons only for those shown.
    let mut order: Vec<&patchward_core::exposure::OpenCve> = e.open_cves.iter().collect();
    order.sort_by(|a, b| {
        let key = |c: &patchward_core::exposure::OpenCve| {
            c.priority
                .as_ref()
                .map(|p| (std::cmp::Reverse(p.decision), p.due))
        };
        match (key(a), key(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.facts.cve.cmp(&b.facts.cve))
    });
    let findings: Vec<Finding> = order
        .into_iter()
        .take(limit)
        .map(|c| finding(c, as_of, None))
        .collect();
    let mut excepted: Vec<&(patchward_core::exposure::OpenCve, i64, Date)> =
        excepted.iter().collect();
    excepted.sort_by(|a, b| {
        a.2.cmp(&b.2)
            .then_with(|| a.0.facts.cve.cmp(&b.0.facts.cve))
    });
    let excepted = excepted
        .into_iter()
        .map(|(c, id, until)| finding(c, as_of, Some((*id, *until))))
        .collect();
    ServerDetail {
        summary,
        installation: Some(e.installation.to_string()),
        roles: s.roles.iter().map(word).collect(),
        installed_kbs: s.installed_kbs.iter().map(|k| k.to_string()).collect(),
        windows: s.windows.clone(),
        backup_policy: s.backup_policy.clone(),
        last_scan: s.last_scan.map(|t| t.to_string()),
        findings,
        findings_total: count(e.open_cves.len()),
        excepted,
        missing: e
            .missing_updates
            .iter()
            .map(|m| MissingUpdate {
                kb: m.kb.to_string(),
                title: m.title.clone(),
                classification: m.classification_label.to_string(),
                closes: count(m.closes.len()),
                closes_kev: count(m.closes.iter().filter(|c| c.kev).count()),
            })
            .collect(),
        notes: e.notes.clone(),
    }
}

fn finding(
    c: &patchward_core::exposure::OpenCve,
    as_of: Date,
    exception: Option<(i64, Date)>,
) -> Finding {
    let f = &c.facts;
    Finding {
        cve: f.cve.to_string(),
        title: f.title.to_string(),
        product: f.product_id.to_string(),
        severity: f.severity.map(str::to_string),
        cvss: f.cvss,
        kev: f.kev,
        epss: f.epss.map(|x| x as f32),
        exploited: f.exploited,
        decision: c
            .priority
            .as_ref()
            .map(|p| decision_word(p.decision).to_string()),
        due: c.priority.as_ref().map(|p| p.due.to_string()),
        overdue: c
            .priority
            .as_ref()
            .is_some_and(|p| p.overdue || p.due < as_of),
        reasons: c.reasons(),
        fixed_by: f.fixed_by.iter().map(|k| k.to_string()).collect(),
        determined_by: match c.determined_by {
            Determination::Build => "build",
            Determination::Kb => "kb",
            Determination::KbUnlisted => "kb_unlisted",
        }
        .to_string(),
        exception_id: exception.map(|x| x.0),
        exception_expires: exception.map(|x| x.1.to_string()),
    }
}

use patchward_core::inventory::{
    BlackoutScope, DependencyTarget, DisruptionBudget, Estate, MaintenanceWindow,
};
use patchward_proto::{
    BackupPolicyView, BlackoutView, DependencyEnd, DependencyView, EstateView, RingView,
    RollbackPlanView, ServiceView, WindowView,
};

fn window(w: &MaintenanceWindow) -> WindowView {
    WindowView {
        name: w.name.clone(),
        rrule: w.rrule.clone(),
        offset_days: w.offset_days,
        start: w.start.strftime("%H:%M").to_string(),
        duration_minutes: w.duration.as_mins(),
        time_zone: w.time_zone.clone(),
        emergency: w.emergency,
    }
}

fn end(t: &DependencyTarget) -> DependencyEnd {
    match t {
        DependencyTarget::Server(n) => DependencyEnd {
            kind: "server".into(),
            name: n.clone(),
        },
        DependencyTarget::Service(n) => DependencyEnd {
            kind: "service".into(),
            name: n.clone(),
        },
    }
}

/// The estate's objects as the API shows them; `servers` are (id, server) of the fleet view
/// the caller may see (owners: their own), and server-identifying objects are kept to those.
pub fn estate(e: &Estate, servers: &[(i64, &Server)]) -> EstateView {
    let seen: std::collections::HashSet<String> = servers
        .iter()
        .map(|(_, s)| s.name.to_ascii_lowercase())
        .collect();
    let sees = |n: &str| seen.contains(&n.to_ascii_lowercase());
    let services: Vec<ServiceView> = e
        .services
        .iter()
        .filter(|s| s.members.iter().any(|m| sees(m)))
        .map(|s| {
            let (n, p) = match s.budget {
                DisruptionBudget::MaxUnavailable(n) => (Some(n), None),
                DisruptionBudget::MaxUnavailablePercent(p) => (None, Some(p)),
            };
            ServiceView {
                name: s.name.clone(),
                members: s.members.iter().filter(|m| sees(m)).cloned().collect(),
                max_unavailable: n,
                max_unavailable_percent: p,
                owner: s.owner.as_ref().map(|o| o.name.clone()),
            }
        })
        .collect();
    let visible_service = |n: &str| services.iter().any(|s| s.name.eq_ignore_ascii_case(n));
    let visible_end = |t: &DependencyTarget| match t {
        DependencyTarget::Server(n) => sees(n),
        DependencyTarget::Service(n) => visible_service(n),
    };
    EstateView {
        dependencies: e
            .dependencies
            .iter()
            .filter(|d| visible_end(&d.dependent) && visible_end(&d.depends_on))
            .map(|d| DependencyView {
                dependent: end(&d.dependent),
                depends_on: end(&d.depends_on),
            })
            .collect(),
        windows: e.windows.iter().map(window).collect(),
        blackouts: e
            .blackouts
            .iter()
            .filter(|b| match &b.scope {
                BlackoutScope::Server(n) => sees(n),
                BlackoutScope::Service(n) => visible_service(n),
                _ => true,
            })
            .map(|b| BlackoutView {
                name: b.name.clone(),
                scope: match &b.scope {
                    BlackoutScope::Global => "global".into(),
                    BlackoutScope::Site(n) => format!("site:{n}"),
                    BlackoutScope::Service(n) => format!("service:{n}"),
                    BlackoutScope::Server(n) => format!("server:{n}"),
                },
                start: b.start.to_string(),
                end: b.end.to_string(),
                reason: b.reason.clone(),
            })
            .collect(),
        backup_policies: e
            .backup_policies
            .iter()
            .map(|p| BackupPolicyView {
                name: p.name.clone(),
                source: p.source.clone(),
                max_age_hours: p.max_age.as_hours(),
                job_window: p.job_window.as_ref().map(window),
            })
            .collect(),
        rings: e
            .rings
            .iter()
            .map(|r| RingView {
                name: r.name.clone(),
                order: r.order,
                soak_hours: r.soak.as_hours(),
                emergency_soak_hours: r.emergency_soak.map(|d| d.as_hours()),
            })
            .collect(),
        rollback_plans: servers
            .iter()
            .filter_map(|(id, s)| {
                s.rollback.as_ref().map(|r| RollbackPlanView {
                    server_id: *id,
                    server: s.name.clone(),
                    method: word(&r.method),
                    who: r.who.clone(),
                    tested_on: r.tested_on.map(|d| d.to_string()),
                    notes: r.notes.clone(),
                    automatic: r.automatic,
                })
            })
            .collect(),
        services,
    }
}

/// A health probe as the agent protocol carries it.
pub fn probe(p: &patchward_core::inventory::HealthProbe) -> patchward_proto::agent::Probe {
    use patchward_core::inventory::HealthProbe as H;
    use patchward_proto::agent::Probe as W;
    match p.clone() {
        H::Http {
            url,
            status,
            body_contains,
        } => W::Http {
            url,
            status,
            body_contains,
        },
        H::Tcp { host, port } => W::Tcp { host, port },
        H::WindowsService { name } => W::WindowsService { name },
    }
}

/// An agent's probe result, for verification.
pub fn probe_outcome(
    r: &patchward_proto::agent::ProbeResult,
) -> patchward_core::execution::ProbeOutcome {
    use patchward_core::inventory::HealthProbe as H;
    use patchward_proto::agent::Probe as W;
    patchward_core::execution::ProbeOutcome {
        probe: match r.probe.clone() {
            W::Http {
                url,
                status,
                body_contains,
            } => H::Http {
                url,
                status,
                body_contains,
            },
            W::Tcp { host, port } => H::Tcp { host, port },
            W::WindowsService { name } => H::WindowsService { name },
        },
        passed: r.passed,
        // What an agent says is kept, but not without bound.
        detail: r.detail.chars().take(500).collect(),
    }
}

/// An update a job's scan found, as the agent protocol carries it.
pub fn update_ref(f: &patchward_core::execution::FoundUpdate) -> patchward_proto::agent::UpdateRef {
    patchward_proto::agent::UpdateRef {
        kb: f.kb.clone(),
        update_id: f.update_id.clone(),
        revision: f.revision,
        title: f.title.clone(),
    }
}
