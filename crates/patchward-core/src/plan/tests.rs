//! Planner tests: the Contoso example estate with its waves written out, rule-by-rule unit
//! tests, re-planning, and property tests (checker finds nothing, determinism, first-fit).

use super::generate::{GenConfig, generate};
use super::replan::outcomes_at;
use super::*;
use crate::calendar::occurrences;
use crate::inventory::*;
use jiff::civil::Time;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| unreachable!("{s}: {e}"))
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn window(
    name: &str,
    rrule: &str,
    offset: i32,
    start: (i8, i8),
    dur: i64,
    tz: &str,
) -> MaintenanceWindow {
    MaintenanceWindow {
        name: name.into(),
        rrule: rrule.into(),
        offset_days: offset,
        start: Time::constant(start.0, start.1, 0, 0),
        duration: mins(dur),
        time_zone: tz.into(),
        emergency: false,
    }
}

#[allow(clippy::too_many_arguments)]
fn server(
    name: &str,
    roles: &[&str],
    tier: u8,
    site: &str,
    ring: &str,
    windows: &[&str],
    backup: Option<&str>,
) -> Server {
    Server {
        name: name.into(),
        fqdn: Some(format!("{}.corp.contoso.com", name.to_lowercase())),
        os: "Windows Server 2022 Datacenter".into(),
        roles: roles.iter().map(|r| Role::parse(r)).collect(),
        tier: Tier(tier),
        site: Some(site.into()),
        windows: windows.iter().map(|w| w.to_string()).collect(),
        ring: Some(ring.into()),
        backup_policy: backup.map(str::to_string),
        ..Server::default()
    }
}

fn dep_server(a: &str, b: &str) -> Dependency {
    Dependency {
        dependent: DependencyTarget::Server(a.into()),
        depends_on: DependencyTarget::Server(b.into()),
    }
}

/// The estate of `examples/estates/contoso.toml`, built in Rust (the TOML reader lives in
/// patchward-feeds). Keep the two in sync.
pub(crate) fn contoso() -> Estate {
    let la = "America/Los_Angeles";
    let weeknight = "seattle-weeknight";
    let pt4 = "patch-tuesday+4";
    let fra = "frankfurt-saturday";
    let mut emergency = window("emergency-nightly", "FREQ=DAILY", 0, (23, 0), 120, la);
    emergency.emergency = true;
    Estate {
        capacity: Capacity {
            max_in_flight: Some(4),
            max_in_flight_per_site: Some(3),
            ..Capacity::default()
        },
        rings: vec![
            Ring {
                name: "pilot".into(),
                order: 1,
                soak: SignedDuration::from_hours(24),
                emergency_soak: Some(SignedDuration::from_hours(4)),
            },
            Ring {
                name: "production".into(),
                order: 2,
                soak: SignedDuration::from_hours(48),
                emergency_soak: Some(SignedDuration::from_hours(4)),
            },
            Ring {
                name: "critical".into(),
                order: 3,
                soak: SignedDuration::from_hours(72),
                emergency_soak: Some(SignedDuration::from_hours(8)),
            },
            Ring {
                name: "high-impact".into(),
                order: 4,
                soak: SignedDuration::from_hours(24),
                emergency_soak: None,
            },
        ],
        windows: vec![
            window(weeknight, "FREQ=WEEKLY;BYDAY=TU,WE,TH", 0, (22, 0), 240, la),
            window(pt4, "FREQ=MONTHLY;BYDAY=2TU", 4, (22, 0), 360, la),
            window(
                fra,
                "FREQ=WEEKLY;BYDAY=SA",
                0,
                (20, 0),
                360,
                "Europe/Berlin",
            ),
            emergency,
        ],
        blackouts: vec![Blackout {
            name: "Thanksgiving freeze".into(),
            scope: BlackoutScope::Global,
            start: ts("2026-11-26T00:00:00-08:00"),
            end: ts("2026-11-28T00:00:00-08:00"),
            reason: Some("holiday: minimal staff".into()),
        }],
        backup_policies: vec![BackupPolicy {
            name: "nightly".into(),
            source: "Veeam job 'Nightly'".into(),
            max_age: SignedDuration::from_hours(26),
            job_window: Some(window("nightly backup", "FREQ=DAILY", 0, (1, 0), 180, la)),
        }],
        services: vec![
            Service {
                probes: Vec::new(),
                probe_grace: None,
                name: "domain controllers".into(),
                members: vec!["DC-01".into(), "DC-02".into()],
                budget: DisruptionBudget::MaxUnavailable(1),
                owner: None,
            },
            Service {
                probes: Vec::new(),
                probe_grace: None,
                name: "sql-prod".into(),
                members: vec!["SQL-01".into(), "SQL-02".into()],
                budget: DisruptionBudget::MaxUnavailable(1),
                owner: None,
            },
            Service {
                probes: Vec::new(),
                probe_grace: None,
                name: "rds-farm".into(),
                members: vec![
                    "RDS-01".into(),
                    "RDS-02".into(),
                    "RDS-03".into(),
                    "RDS-04".into(),
                ],
                budget: DisruptionBudget::MaxUnavailablePercent(25),
                owner: None,
            },
            Service {
                probes: Vec::new(),
                probe_grace: None,
                name: "hyper-v cluster".into(),
                members: vec!["HV-01".into(), "HV-02".into()],
                budget: DisruptionBudget::MaxUnavailable(1),
                owner: None,
            },
        ],
        dependencies: vec![
            Dependency {
                dependent: DependencyTarget::Server("APP-01".into()),
                depends_on: DependencyTarget::Service("sql-prod".into()),
            },
            Dependency {
                dependent: DependencyTarget::Server("APP-02".into()),
                depends_on: DependencyTarget::Service("sql-prod".into()),
            },
            Dependency {
                dependent: DependencyTarget::Service("rds-farm".into()),
                depends_on: DependencyTarget::Server("FS-01".into()),
            },
            Dependency {
                dependent: DependencyTarget::Server("FS-01".into()),
                depends_on: DependencyTarget::Service("domain controllers".into()),
            },
            Dependency {
                dependent: DependencyTarget::Server("APP-01".into()),
                depends_on: DependencyTarget::Service("domain controllers".into()),
            },
            dep_server("WEB-01", "HV-01"),
            dep_server("WEB-02", "HV-02"),
        ],
        coverage: None,
        servers: vec![
            server(
                "DC-01",
                &["domain controller", "dns"],
                1,
                "Seattle",
                "critical",
                &[weeknight, "emergency-nightly"],
                None,
            ),
            server(
                "DC-02",
                &["domain controller", "dns"],
                1,
                "Seattle",
                "critical",
                &[weeknight, "emergency-nightly"],
                None,
            ),
            server(
                "FS-01",
                &["file"],
                2,
                "Seattle",
                "pilot",
                &[weeknight],
                Some("nightly"),
            ),
            server(
                "PRN-01",
                &["print"],
                3,
                "Seattle",
                "pilot",
                &[weeknight],
                None,
            ),
            server(
                "MON-01",
                &["monitoring"],
                3,
                "Seattle",
                "pilot",
                &[weeknight],
                None,
            ),
            server(
                "SQL-01",
                &["sql"],
                1,
                "Seattle",
                "high-impact",
                &[pt4],
                Some("nightly"),
            ),
            server(
                "SQL-02",
                &["sql"],
                1,
                "Seattle",
                "high-impact",
                &[pt4],
                Some("nightly"),
            ),
            server(
                "APP-01",
                &["application"],
                2,
                "Seattle",
                "high-impact",
                &[pt4],
                None,
            ),
            server(
                "APP-02",
                &["application"],
                2,
                "Seattle",
                "high-impact",
                &[pt4],
                None,
            ),
            server(
                "RDS-01",
                &["rds"],
                2,
                "Seattle",
                "production",
                &[weeknight],
                None,
            ),
            server(
                "RDS-02",
                &["rds"],
                2,
                "Seattle",
                "production",
                &[weeknight],
                None,
            ),
            server(
                "RDS-03",
                &["rds"],
                2,
                "Seattle",
                "production",
                &[weeknight],
                None,
            ),
            server(
                "RDS-04",
                &["rds"],
                2,
                "Seattle",
                "production",
                &[weeknight],
                None,
            ),
            server(
                "BKP-01",
                &["backup"],
                2,
                "Seattle",
                "production",
                &[weeknight],
                Some("nightly"),
            ),
            server(
                "HV-01",
                &["hyper-v"],
                1,
                "Frankfurt",
                "critical",
                &[fra],
                None,
            ),
            server(
                "HV-02",
                &["hyper-v"],
                1,
                "Frankfurt",
                "critical",
                &[fra],
                None,
            ),
            server("WEB-01", &["web"], 3, "Frankfurt", "critical", &[fra], None),
            server("WEB-02", &["web"], 3, "Frankfurt", "critical", &[fra], None),
        ],
    }
}

fn contoso_input(estate: &Estate) -> PlanInput<'_> {
    let mut input = PlanInput::new(
        "2026-11 Patch Tuesday",
        estate,
        ts("2026-11-16T00:00:00-08:00"),
    );
    input.horizon = SignedDuration::from_hours(60 * 24);
    input
        .due
        .insert("FS-01".into(), ts("2026-11-20T00:00:00-08:00"));
    input
        .due
        .insert("SQL-01".into(), ts("2026-12-08T00:00:00-08:00"));
    input
        .due
        .insert("SQL-02".into(), ts("2026-12-08T00:00:00-08:00"));
    input
}

#[test]
fn contoso_waves_are_as_a_change_manager_would_plan_them() {
    let estate = contoso();
    assert!(estate.validate().is_empty(), "{:?}", estate.validate());
    let input = contoso_input(&estate);
    let plan = plan(&input);
    assert!(plan.unplaced.is_empty(), "{:#?}", plan.unplaced);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert_eq!(verify(&input, &plan), vec![]);

    let got: Vec<(u32, String, Vec<String>)> = plan
        .waves
        .iter()
        .map(|w| (w.number, w.start.to_string(), w.servers.clone()))
        .collect();
    let wave = |n: u32, at: &str, servers: &[&str]| {
        (
            n,
            ts(at).to_string(),
            servers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    let expected = vec![
        // Ring pilot. First weeknight window after the start (Mon 16 Nov): Tue 17 Nov 22:00
        // PST. Three Seattle servers fit the per-site limit of 3. FS-01 depends on the DCs,
        // but across rings the ring order decides: pilot goes first.
        wave(
            1,
            "2026-11-17T22:00:00-08:00",
            &["FS-01", "MON-01", "PRN-01"],
        ),
        // Ring production may start when pilot finished (FS-01, 23:00 Tue) + 24 h soak:
        // Wed 18 Nov 23:00 PST, inside Wednesday's 22:00–02:00 window.
        // BKP-01 and RDS-01 start at once (tier 2, names in order). The RDS farm allows 25 % of
        // 4 = 1 member down, so RDS-02..04 follow one after another.
        wave(2, "2026-11-18T23:00:00-08:00", &["BKP-01", "RDS-01"]),
        wave(3, "2026-11-19T00:00:00-08:00", &["RDS-02"]),
        wave(4, "2026-11-19T01:00:00-08:00", &["RDS-03"]),
        // 02:00 would end after the window closes: Thursday's window.
        wave(5, "2026-11-19T22:00:00-08:00", &["RDS-04"]),
        // Ring critical: production finished Thu 19 Nov 23:00 + 48 h soak = Sat 21 Nov 23:00.
        // The next weeknight window is Tue 24 Nov (before the Thanksgiving freeze on the 26th);
        // 'domain controllers' allows 1 down: DC-01 then DC-02.
        wave(6, "2026-11-24T22:00:00-08:00", &["DC-01"]),
        wave(7, "2026-11-24T23:00:00-08:00", &["DC-02"]),
        // Frankfurt's Saturday window (20:00 CET): 21 Nov is before the ring may start, so
        // 28 Nov (the freeze ended at 00:00 PST that day). The Hyper-V cluster allows one host
        // down; each guest goes after its host (same ring: dependencies first) and never
        // while its host is in flight.
        wave(8, "2026-11-28T20:00:00+01:00", &["HV-01"]),
        wave(9, "2026-11-28T22:00:00+01:00", &["HV-02", "WEB-01"]),
        wave(10, "2026-11-29T00:00:00+01:00", &["WEB-02"]),
        // Ring high-impact: critical finished Sun 29 Nov 00:45 CET + 72 h. The next
        // 'patch-tuesday+4' occurrence is Sat 12 Dec 22:00 PST (second Tuesday 8 Dec + 4).
        // sql-prod allows 1 down: SQL-01 22:00–23:30, SQL-02 23:30–01:00 — ending exactly
        // when the nightly backup job starts at 01:00 (allowed: intervals are half-open).
        wave(11, "2026-12-12T22:00:00-08:00", &["SQL-01"]),
        wave(12, "2026-12-12T23:30:00-08:00", &["SQL-02"]),
        // The app servers depend on both SQL nodes, so they start when SQL-02 ends; they have
        // no backup policy, so the backup job does not stop them.
        wave(13, "2026-12-13T01:00:00-08:00", &["APP-01", "APP-02"]),
    ];
    assert_eq!(got, expected);

    // Explanations read like a change manager's notes.
    let dc2 = plan
        .placement("DC-02")
        .map(|p| p.reasons.clone())
        .unwrap_or_default();
    assert_eq!(
        dc2[0],
        "wave 7, Tue 24 Nov 23:00 – Wed 25 Nov 00:00 PST in window 'seattle-weeknight'"
    );
    assert!(dc2.contains(&"ring 'critical'".to_string()), "{dc2:?}");
    assert!(
        dc2.contains(&"not with DC-01 (service 'domain controllers' allows 1 down)".to_string()),
        "{dc2:?}"
    );
    let dc1 = plan
        .placement("DC-01")
        .map(|p| p.reasons.clone())
        .unwrap_or_default();
    assert_eq!(
        dc1[0],
        "wave 6, Tue 24 Nov 22:00–23:00 PST in window 'seattle-weeknight'"
    );
    assert!(
        dc1.iter()
            .any(|r| r == "ring 'production' finished Thu 19 Nov 23:00 PST and soaks 2d"),
        "{dc1:?}"
    );
    assert!(
        dc1.iter()
            .any(|r| r == "first window after ring 'production' soak ends"),
        "{dc1:?}"
    );
    let web1 = plan
        .placement("WEB-01")
        .map(|p| p.reasons.clone())
        .unwrap_or_default();
    assert!(
        web1.contains(&"after HV-01 (dependency, wave 8)".to_string()),
        "{web1:?}"
    );
    let app1 = plan
        .placement("APP-01")
        .map(|p| p.reasons.clone())
        .unwrap_or_default();
    assert!(
        app1.contains(&"after SQL-01 (dependency, wave 11)".to_string()),
        "{app1:?}"
    );
    assert!(
        app1.contains(&"after SQL-02 (dependency, wave 12)".to_string()),
        "{app1:?}"
    );
    let rds4 = plan
        .placement("RDS-04")
        .map(|p| p.reasons.clone())
        .unwrap_or_default();
    assert!(
        rds4.iter().any(|r| r
            .starts_with("skipped window 'seattle-weeknight' at Wed 18 Nov 22:00 PST: not with")),
        "{rds4:?}"
    );
    // Due dates: FS-01 meets its own, the SQL nodes miss 8 Dec.
    let fs1 = plan
        .placement("FS-01")
        .map(|p| p.reasons.clone())
        .unwrap_or_default();
    assert!(
        fs1.iter().any(|r| r.starts_with("meets its due date")),
        "{fs1:?}"
    );
    let late: Vec<(String, String)> = plan
        .late
        .iter()
        .map(|l| {
            (
                l.server.clone(),
                crate::calendar::format_duration(l.late_by),
            )
        })
        .collect();
    assert_eq!(
        late,
        vec![
            ("SQL-01".to_string(), "4d 23h 30m".to_string()),
            ("SQL-02".to_string(), "5d 1h".to_string())
        ]
    );
    assert_eq!(plan.finish, Some(ts("2026-12-13T02:00:00-08:00")));
    // And it serialises for the store / CLI.
    let json = serde_json::to_string(&plan).unwrap_or_default();
    let back: Plan = serde_json::from_str(&json).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(back, plan);
}

#[test]
fn contoso_emergency_cycle_uses_emergency_windows_and_short_soaks() {
    let estate = contoso();
    let slots = |emergency: bool, scope: &[&str]| {
        let mut input = contoso_input(&estate);
        input.emergency = emergency;
        input.scope = scope.iter().map(|s| s.to_string()).collect();
        let plan = plan(&input);
        assert_eq!(verify(&input, &plan), vec![]);
        ["DC-01", "DC-02"].map(|s| plan.placement(s).map(|p| (p.start, p.window.clone())))
    };
    let at = |t: &str, w: &str| Some((ts(t), w.to_string()));
    // Only the DCs: an emergency cycle may use the daily emergency window (23:00–01:00). The
    // one that opened Sunday 23:00 is still open at the plan's start (Mon 00:00): DC-01 uses
    // its last hour; DC-02 (budget 1) takes Monday night's.
    assert_eq!(
        slots(true, &["DC-01", "DC-02"]),
        [
            at("2026-11-16T00:00:00-08:00", "emergency-nightly"),
            at("2026-11-16T23:00:00-08:00", "emergency-nightly")
        ]
    );
    assert_eq!(
        slots(false, &["DC-01", "DC-02"]),
        [
            at("2026-11-17T22:00:00-08:00", "seattle-weeknight"),
            at("2026-11-17T23:00:00-08:00", "seattle-weeknight")
        ]
    );
    // With FS-01 (pilot, Tue 22:00–23:00) the DCs wait for pilot's soak: 4 h in an emergency
    // (so Wednesday's 22:00 window), 24 h otherwise (Wednesday 23:00).
    assert_eq!(
        slots(true, &["DC-01", "DC-02", "FS-01"]),
        [
            at("2026-11-18T22:00:00-08:00", "seattle-weeknight"),
            at("2026-11-18T23:00:00-08:00", "seattle-weeknight")
        ]
    );
    assert_eq!(
        slots(false, &["DC-01", "DC-02", "FS-01"]),
        [
            at("2026-11-18T23:00:00-08:00", "seattle-weeknight"),
            at("2026-11-19T00:00:00-08:00", "seattle-weeknight")
        ]
    );
}

#[test]
fn unplaceable_servers_say_why() {
    let mut estate = contoso();
    // A cycle: APP-02 → SQL (service) and SQL-01 → APP-02.
    estate.dependencies.push(dep_server("SQL-01", "APP-02"));
    // No windows.
    estate.servers.push(server(
        "LONELY-01",
        &["file"],
        3,
        "Seattle",
        "pilot",
        &[],
        None,
    ));
    // Only an emergency window.
    estate.servers.push(server(
        "EMERG-01",
        &["file"],
        3,
        "Seattle",
        "pilot",
        &["emergency-nightly"],
        None,
    ));
    // Longer than its window.
    let mut long = server(
        "LONG-01",
        &["file"],
        3,
        "Seattle",
        "pilot",
        &["emergency-nightly", "seattle-weeknight"],
        None,
    );
    long.estimated_duration = Some(SignedDuration::from_hours(5));
    estate.servers.push(long);
    // A service with a budget of 0.
    estate.servers.push(server(
        "ZERO-01",
        &["web"],
        3,
        "Seattle",
        "pilot",
        &["seattle-weeknight"],
        None,
    ));
    estate.services.push(Service {
        probes: Vec::new(),
        probe_grace: None,
        name: "fragile".into(),
        members: vec!["ZERO-01".into()],
        budget: DisruptionBudget::MaxUnavailablePercent(50),
        owner: None,
    });
    let mut input = contoso_input(&estate);
    input.scope.push("GHOST-99".into());
    let plan = plan(&input);
    assert_eq!(verify(&input, &plan), vec![]);
    let rule = |s: &str| plan.unplaced(s).map(|u| u.rule);
    assert_eq!(rule("LONELY-01"), Some(UnplacedRule::NoWindows));
    assert_eq!(rule("EMERG-01"), Some(UnplacedRule::OnlyEmergencyWindows));
    assert_eq!(rule("LONG-01"), Some(UnplacedRule::LongerThanWindows));
    assert_eq!(rule("ZERO-01"), Some(UnplacedRule::ServiceBudgetZero));
    assert_eq!(rule("GHOST-99"), Some(UnplacedRule::UnknownServer));
    // The cycle names every member: APP-02 → SQL-01 → APP-02, plus SQL-02? No: SQL-02 is not
    // on the cycle (nothing leads back to it).
    assert_eq!(
        plan.dependency_cycles,
        vec![vec!["APP-02".to_string(), "SQL-01".to_string()]]
    );
    assert_eq!(rule("APP-02"), Some(UnplacedRule::DependencyCycle));
    assert_eq!(rule("SQL-01"), Some(UnplacedRule::DependencyCycle));
    let why = plan
        .unplaced("SQL-01")
        .map(|u| u.reasons[0].clone())
        .unwrap_or_default();
    assert!(why.contains("APP-02, SQL-01"), "{why}");
    // APP-01 depends on SQL-01 (same ring), which is never taken down in this cycle: APP-01
    // is placed, and says so.
    let app = plan
        .placement("APP-01")
        .unwrap_or_else(|| unreachable!("APP-01 is placed: {:?}", plan.unplaced("APP-01")));
    assert!(
        app.reasons.iter().any(|r| r.starts_with(
            "depends on SQL-01, which is not patched in this cycle: dependency cycle (dependency cycle between APP-02, SQL-01"
        )),
        "{:?}",
        app.reasons
    );
    // SQL-02 itself is fine.
    assert!(plan.placement("SQL-02").is_some());
    let zero = plan.explain("ZERO-01").unwrap_or_default();
    assert!(
        zero.contains("service 'fragile' allows 0 of 1 members down"),
        "{zero}"
    );
}

/// A → B → C in one ring, every server in the same nightly window.
fn chain_estate() -> Estate {
    let mut estate = Estate {
        windows: vec![window("nightly", "FREQ=DAILY", 0, (22, 0), 240, "UTC")],
        rings: vec![Ring {
            name: "pilot".into(),
            order: 1,
            soak: SignedDuration::ZERO,
            emergency_soak: None,
        }],
        ..Estate::default()
    };
    for n in ["A", "B", "C"] {
        estate
            .servers
            .push(server(n, &["file"], 3, "HQ", "pilot", &["nightly"], None));
    }
    estate.dependencies = vec![dep_server("A", "B"), dep_server("B", "C")];
    estate
}

#[test]
fn an_unplaced_dependency_in_the_middle_of_a_chain_holds_nothing_back() {
    let mut estate = chain_estate();
    // B has no window: it is not patched in this cycle.
    estate.servers[1].windows.clear();
    let input = PlanInput::new("chain", &estate, ts("2026-11-16T00:00:00Z"));
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    assert_eq!(
        p.unplaced("B").map(|u| u.rule),
        Some(UnplacedRule::NoWindows)
    );
    let a = p
        .placement("A")
        .unwrap_or_else(|| unreachable!("{:?}", p.unplaced("A")));
    let c = p
        .placement("C")
        .unwrap_or_else(|| unreachable!("{:?}", p.unplaced("C")));
    // Neither end waits: both start at the plan start, inside the night that began at 22:00.
    assert_eq!(a.start, ts("2026-11-16T00:00:00Z"));
    assert_eq!(c.start, ts("2026-11-16T00:00:00Z"));
    assert!(
        a.reasons.iter().any(|r| r
            == "depends on B, which is not patched in this cycle: no maintenance windows (no maintenance windows assigned)"),
        "{:?}",
        a.reasons
    );
    // C depends on nothing: no such reason.
    assert!(
        !c.reasons.iter().any(|r| r.contains("not patched")),
        "{:?}",
        c.reasons
    );
}

#[test]
fn dependents_of_servers_held_back_by_budget_or_scope_are_placed() {
    let mut estate = chain_estate();
    // B is the only member of a service that allows 0 down.
    estate.services.push(Service {
        probes: Vec::new(),
        probe_grace: None,
        name: "fragile".into(),
        members: vec!["B".into()],
        budget: DisruptionBudget::MaxUnavailable(0),
        owner: None,
    });
    let input = PlanInput::new("chain", &estate, ts("2026-11-16T00:00:00Z"));
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    assert_eq!(
        p.unplaced("B").map(|u| u.rule),
        Some(UnplacedRule::ServiceBudgetZero)
    );
    let a = p
        .placement("A")
        .map(|x| x.reasons.clone())
        .unwrap_or_default();
    assert!(
        a.iter().any(|r| r.starts_with(
            "depends on B, which is not patched in this cycle: disruption budget of 0 (service 'fragile' allows 0 of 1 members down"
        )),
        "{a:?}"
    );
    // C, B's dependency, is patched: B being held back does not change C.
    assert!(p.placement("C").is_some());
}

fn estate_scope(input: &mut PlanInput<'_>, names: &[&str]) {
    input.scope = names.iter().map(|s| s.to_string()).collect();
}

#[test]
fn out_of_scope_dependency_is_named_in_the_reasons() {
    let estate = chain_estate();
    let mut input = PlanInput::new("chain", &estate, ts("2026-11-16T00:00:00Z"));
    estate_scope(&mut input, &["A", "B"]);
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    let b = p
        .placement("B")
        .map(|x| x.reasons.clone())
        .unwrap_or_default();
    assert!(
        b.contains(
            &"depends on C, which is not patched in this cycle: not in this cycle's scope"
                .to_string()
        ),
        "{b:?}"
    );
    // A still goes after B: B is patched in this cycle.
    let (a, bs) = (p.placement("A"), p.placement("B"));
    assert!(
        matches!((a, bs), (Some(a), Some(b)) if a.start >= b.end),
        "{a:?} {bs:?}"
    );
}

#[test]
fn self_dependency_is_a_cycle_of_one() {
    let mut estate = chain_estate();
    estate.dependencies.push(dep_server("C", "c"));
    let input = PlanInput::new("self", &estate, ts("2026-11-16T00:00:00Z"));
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    let u = p
        .unplaced("C")
        .unwrap_or_else(|| unreachable!("C must not be placed"));
    assert_eq!(u.rule, UnplacedRule::DependencyCycle);
    assert_eq!(
        u.reasons[0],
        "dependency cycle of one: C depends on itself (dependency C → c; an inventory error: remove that dependency)"
    );
    assert_eq!(p.dependency_cycles, vec![vec!["C".to_string()]]);
    // B, which depends on C, is placed: C is not patched in this cycle.
    assert!(p.placement("B").is_some());
    // Through a service C belongs to: the same error.
    let mut estate = chain_estate();
    estate.services.push(Service {
        probes: Vec::new(),
        probe_grace: None,
        name: "farm".into(),
        members: vec!["B".into(), "C".into()],
        budget: DisruptionBudget::MaxUnavailable(1),
        owner: None,
    });
    estate.dependencies.push(Dependency {
        dependent: DependencyTarget::Server("C".into()),
        depends_on: DependencyTarget::Service("farm".into()),
    });
    let input = PlanInput::new("self", &estate, ts("2026-11-16T00:00:00Z"));
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    // B → C → B is a cycle of two that includes C's self-dependency.
    assert_eq!(
        p.dependency_cycles,
        vec![vec!["B".to_string(), "C".to_string()]]
    );
}

#[test]
fn checker_catches_a_placed_self_dependent_server() {
    let estate = chain_estate();
    let input = PlanInput::new("self", &estate, ts("2026-11-16T00:00:00Z"));
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    // The same plan is wrong once C depends on itself.
    let mut bad = estate.clone();
    bad.dependencies.push(dep_server("C", "C"));
    let input = PlanInput::new("self", &bad, ts("2026-11-16T00:00:00Z"));
    let v = verify(&input, &p);
    assert!(
        v.iter()
            .any(|x| x.rule == check::CheckRule::DependencyCycle && x.servers == ["c"]),
        "{v:?}"
    );
}

#[test]
fn horizon_and_due_dates() {
    let estate = contoso();
    let mut input = contoso_input(&estate);
    // 20 days: the high-impact ring (12 Dec) no longer fits.
    input.horizon = SignedDuration::from_hours(20 * 24);
    let plan = plan(&input);
    assert_eq!(verify(&input, &plan), vec![]);
    let u = plan.unplaced("SQL-01").unwrap_or_else(|| unreachable!());
    assert_eq!(u.rule, UnplacedRule::NoSlotBeforeHorizon);
    assert!(
        u.reasons[0].starts_with("no window occurrence before the horizon"),
        "{:?}",
        u.reasons
    );
    assert!(
        u.reasons
            .iter()
            .any(|r| r.contains("after ring 'critical' soak")),
        "{:?}",
        u.reasons
    );
}

#[test]
fn replan_after_a_failure_blocks_dependents_and_uses_the_budget() {
    let estate = contoso();
    let input = contoso_input(&estate);
    let first = plan(&input);
    // Sun 13 Dec 00:00 PST: SQL-01 finished, SQL-02 running (23:30–01:00).
    let now = ts("2026-12-13T00:00:00-08:00");
    let mut outcomes = outcomes_at(&first, now);
    assert!(matches!(
        outcomes.get("SQL-02"),
        Some(JobOutcome::Running { .. })
    ));
    // Now SQL-02 fails instead.
    outcomes.insert("SQL-02".into(), JobOutcome::Failed { at: now });
    let again = replan(&input, now, &outcomes);
    let mut check_input = input.clone();
    check_input.start = now;
    check_input.horizon = now.duration_until(input.horizon_end());
    check_input.outcomes = outcomes.clone();
    assert_eq!(verify(&check_input, &again), vec![]);
    assert_eq!(
        again.unplaced("SQL-02").map(|u| u.rule),
        Some(UnplacedRule::JobFailed)
    );
    assert_eq!(
        again.unplaced("APP-01").map(|u| u.rule),
        Some(UnplacedRule::DependsOnFailed)
    );
    assert_eq!(
        again.unplaced("APP-02").map(|u| u.rule),
        Some(UnplacedRule::DependsOnFailed)
    );
    assert!(again.placements.is_empty());
    // Pilot 3 + production 5 + critical 6 + SQL-01.
    assert_eq!(again.finished.len(), 15);

    // If SQL-02 is still running instead, the apps wait for it and nothing else moves.
    let mut outcomes = outcomes_at(&first, now);
    outcomes.insert(
        "SQL-02".into(),
        JobOutcome::Running {
            started: ts("2026-12-12T23:30:00-08:00"),
            expected_end: ts("2026-12-13T01:00:00-08:00"),
        },
    );
    let again = replan(&input, now, &outcomes);
    assert_eq!(again.in_progress.len(), 1);
    let app = again.placement("APP-01").map(|p| p.start);
    assert_eq!(app, Some(ts("2026-12-13T01:00:00-08:00")));
    let reasons = again
        .placement("APP-01")
        .map(|p| p.reasons.clone())
        .unwrap_or_default();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("after SQL-02 (dependency, still running until")),
        "{reasons:?}"
    );
}

#[test]
fn failed_member_counts_against_the_service_budget() {
    let estate = contoso();
    let mut input = contoso_input(&estate);
    input.outcomes.insert(
        "RDS-01".into(),
        JobOutcome::Failed {
            at: ts("2026-11-16T00:00:00-08:00"),
        },
    );
    let plan = plan(&input);
    assert_eq!(verify(&input, &plan), vec![]);
    // The farm allows 1 down and RDS-01 is down: no other member may go.
    for s in ["RDS-02", "RDS-03", "RDS-04"] {
        let u = plan.unplaced(s).unwrap_or_else(|| unreachable!("{s}"));
        assert_eq!(u.rule, UnplacedRule::ServiceBudgetZero);
        assert!(
            u.reasons.iter().any(|r| r.contains("RDS-01")),
            "{:?}",
            u.reasons
        );
    }
}

#[test]
fn blackout_edge_at_planner_level() {
    // One server, daily window 22:00–23:00 UTC, 60 min job. A blackout starting exactly at
    // 23:00 leaves the slot; one starting at 22:59 pushes it to the next day.
    let mut estate = Estate {
        windows: vec![window("nightly", "FREQ=DAILY", 0, (22, 0), 60, "UTC")],
        servers: vec![Server {
            name: "S1".into(),
            windows: vec!["nightly".into()],
            estimated_duration: Some(mins(60)),
            ..Server::default()
        }],
        ..Estate::default()
    };
    let start = ts("2026-11-16T00:00:00Z");
    for (blackout_start, expected) in [
        ("2026-11-16T23:00:00Z", "2026-11-16T22:00:00Z"),
        ("2026-11-16T22:59:00Z", "2026-11-17T22:00:00Z"),
    ] {
        estate.blackouts = vec![Blackout {
            name: "b".into(),
            scope: BlackoutScope::Server("s1".into()),
            start: ts(blackout_start),
            end: ts("2026-11-17T00:00:00Z"),
            reason: None,
        }];
        let input = PlanInput::new("c", &estate, start);
        let p = plan(&input);
        assert_eq!(verify(&input, &p), vec![]);
        assert_eq!(
            p.placement("S1").map(|x| x.start),
            Some(ts(expected)),
            "blackout at {blackout_start}"
        );
    }
}

#[test]
fn dst_night_window_plans_elapsed_time() {
    // Window 01:00 for 2 h on 1 Nov 2026 (US fall back): 01:00 PDT + 2 h = 02:00 PST. A 90-min
    // job fits; the checker agrees.
    let estate = Estate {
        windows: vec![window(
            "w",
            "DTSTART:20261101\nRRULE:FREQ=DAILY;COUNT=1",
            0,
            (1, 0),
            120,
            "America/Los_Angeles",
        )],
        servers: vec![Server {
            name: "S1".into(),
            windows: vec!["w".into()],
            estimated_duration: Some(mins(90)),
            ..Server::default()
        }],
        ..Estate::default()
    };
    let input = PlanInput::new("c", &estate, ts("2026-10-31T00:00:00Z"));
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    let pl = p.placement("S1").unwrap_or_else(|| unreachable!());
    assert_eq!(pl.start, ts("2026-11-01T01:00:00-07:00"));
    assert_eq!(
        pl.reasons[0],
        "wave 1, Sun 1 Nov 01:00 PDT – Sun 1 Nov 01:30 PST in window 'w'"
    );
}

#[test]
fn coverage_and_capacity_are_respected() {
    let g = generate(&GenConfig {
        coverage: true,
        capacity: Capacity {
            max_in_flight: Some(2),
            max_in_flight_per_site: Some(1),
            ..Capacity::default()
        },
        ..GenConfig::small(7, 25)
    });
    let mut input = PlanInput::new("c", &g.estate, g.start);
    input.due = g.due.clone();
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
}

#[test]
fn per_site_capacity_is_respected_and_checked() {
    let mut estate = Estate {
        windows: vec![window("nightly", "FREQ=DAILY", 0, (22, 0), 240, "UTC")],
        capacity: Capacity {
            max_in_flight: None,
            max_in_flight_per_site: Some(2),
            // The branch has one engineer on call; written in another case than the servers.
            sites: [("BRANCH".to_string(), 1)].into_iter().collect(),
        },
        ..Estate::default()
    };
    for i in 0..4 {
        for site in ["HQ", "Branch"] {
            estate.servers.push(server(
                &format!("{site}-{i}"),
                &["file"],
                3,
                site,
                "",
                &["nightly"],
                None,
            ));
        }
    }
    for s in &mut estate.servers {
        s.ring = None;
    }
    let input = PlanInput::new("sites", &estate, ts("2026-11-16T22:00:00Z"));
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    assert_eq!(p.placements.len(), 8);
    // One hour each, four-hour night: the branch goes one at a time, HQ two at a time.
    let starts = |site: &str| -> Vec<Timestamp> {
        let mut v: Vec<Timestamp> = p
            .placements
            .iter()
            .filter(|x| x.server.starts_with(site))
            .map(|x| x.start)
            .collect();
        v.sort();
        v
    };
    let h = |x: &str| ts(x);
    assert_eq!(
        starts("Branch"),
        vec![
            h("2026-11-16T22:00:00Z"),
            h("2026-11-16T23:00:00Z"),
            h("2026-11-17T00:00:00Z"),
            h("2026-11-17T01:00:00Z")
        ]
    );
    assert_eq!(
        starts("HQ"),
        vec![
            h("2026-11-16T22:00:00Z"),
            h("2026-11-16T22:00:00Z"),
            h("2026-11-16T23:00:00Z"),
            h("2026-11-16T23:00:00Z")
        ]
    );
    let last = p
        .placement("Branch-3")
        .map(|x| x.reasons.clone())
        .unwrap_or_default();
    assert!(
        last.contains(&"site 'Branch' already has 1 in flight (capacity per site)".to_string()),
        "{last:?}"
    );
    // Corrupt the plan: two branch servers at once. The checker names the site and limit.
    let mut bad = p.clone();
    let first = bad
        .placements
        .iter()
        .position(|x| x.server == "Branch-0")
        .unwrap_or_default();
    let second = bad
        .placements
        .iter()
        .position(|x| x.server == "Branch-1")
        .unwrap_or_default();
    let (a, b) = (bad.placements[first].start, bad.placements[first].end);
    bad.placements[second].start = a;
    bad.placements[second].end = b;
    let v = verify(&input, &bad);
    assert!(
        v.iter().any(|x| x.rule == check::CheckRule::SiteCapacity
            && x.detail == "more than 1 in flight at site branch"),
        "{v:?}"
    );
    // Two HQ servers at once are fine (default limit 2).
    assert!(!v.iter().any(|x| x.detail.contains("site hq")), "{v:?}");
    // And a slot moved past the end of the night is outside every window occurrence.
    bad.placements[second].start = ts("2026-11-17T02:30:00Z");
    bad.placements[second].end = ts("2026-11-17T03:30:00Z");
    let v = verify(&input, &bad);
    assert!(
        v.iter()
            .any(|x| x.rule == check::CheckRule::Window && x.servers == ["Branch-1"]),
        "{v:?}"
    );
}

#[test]
fn generated_estates_exercise_unplaceable_dependencies_and_site_limits() {
    // The property tests below draw from these shapes: make sure they really contain
    // dependents of unplaceable servers, self-dependencies and per-site limits.
    let (mut dependents, mut selfdeps, mut sites) = (0, 0, 0);
    for seed in 0..60u64 {
        let g = generate(&GenConfig::small(seed, 20));
        let mut input = PlanInput::new("prop", &g.estate, g.start);
        input.due = g.due.clone();
        let p = plan(&input);
        assert_eq!(verify(&input, &p), vec![], "seed {seed}");
        dependents += p
            .placements
            .iter()
            .filter(|x| x.reasons.iter().any(|r| r.contains("which is not patched")))
            .count();
        selfdeps += p.dependency_cycles.iter().filter(|c| c.len() == 1).count();
        sites += usize::from(!g.estate.capacity.sites.is_empty());
    }
    assert!(dependents > 10, "{dependents}");
    assert!(selfdeps > 3, "{selfdeps}");
    assert!(sites > 10, "{sites}");
}

#[test]
fn a_late_placement_names_the_date_it_misses_and_where_it_came_from() {
    let estate = chain_estate();
    let mut input = PlanInput::new("due", &estate, ts("2026-11-16T00:00:00Z"));
    // C first (A → B → C): one hour each from 00:00. B ends 02:00 (the night lasts to 02:00).
    input.add_due(
        "B",
        ts("2026-11-20T23:59:00Z"),
        "priority Act of CVE-2024-38063",
    );
    input.add_due("B", ts("2026-11-16T01:30:00Z"), "cycle deadline");
    // A later date from a third source does not replace the earlier one.
    input.add_due("B", ts("2026-11-18T23:59:00Z"), "due file due.csv:2");
    input.add_due("C", ts("2026-11-17T23:59:00Z"), "due file due.csv:3");
    assert_eq!(input.due.get("B"), Some(&ts("2026-11-16T01:30:00Z")));
    let p = plan(&input);
    assert_eq!(verify(&input, &p), vec![]);
    let b = p.placement("B").unwrap_or_else(|| unreachable!());
    assert_eq!(b.end, ts("2026-11-16T02:00:00Z"));
    assert_eq!(b.due_source.as_deref(), Some("cycle deadline"));
    assert!(
        b.reasons.contains(
            &"misses its due date Mon 16 Nov 01:30 UTC (cycle deadline) by 30m".to_string()
        ),
        "{:?}",
        b.reasons
    );
    assert_eq!(p.late.len(), 1);
    assert_eq!(p.late[0].due_source.as_deref(), Some("cycle deadline"));
    let c = p
        .placement("C")
        .map(|x| x.reasons.clone())
        .unwrap_or_default();
    assert!(
        c.contains(&"meets its due date Tue 17 Nov 23:59 UTC (due file due.csv:3)".to_string()),
        "{c:?}"
    );
    // The checker compares the source with the input's.
    let mut bad = p.clone();
    if let Some(x) = bad.placements.iter_mut().find(|x| x.server == "B") {
        x.due_source = Some("priority".into());
    }
    assert!(
        verify(&input, &bad)
            .iter()
            .any(|v| v.rule == check::CheckRule::Lateness && v.servers == ["B"]),
    );
}

fn simple_config(seed: u64, servers: usize) -> GenConfig {
    GenConfig {
        edges: 0,
        services: 0,
        rings: 0,
        blackouts: 0,
        backup_policies: 0,
        coverage: false,
        capacity: Capacity::default(),
        cycles: 0,
        unplaceable: 0,
        self_dependencies: 0,
        ..GenConfig::small(seed, servers)
    }
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=N for a longer run.

    #[test]
    fn checker_finds_no_violation(seed in any::<u64>(), n in 1usize..30, emergency in any::<bool>(), offset_h in 0i64..400) {
        let g = generate(&GenConfig::small(seed, n));
        let mut input = PlanInput::new("prop", &g.estate, g.start.checked_add(SignedDuration::from_hours(offset_h)).unwrap_or(g.start));
        input.due = g.due.clone();
        input.emergency = emergency;
        input.horizon = SignedDuration::from_hours(24 * (10 + (seed % 50) as i64));
        if seed % 3 == 0 {
            input.scope.truncate(n / 2 + 1);
        }
        let p = plan(&input);
        let violations = verify(&input, &p);
        prop_assert!(violations.is_empty(), "{:#?}", violations);
        // Deterministic.
        prop_assert_eq!(&plan(&input), &p);
    }

    #[test]
    fn replanning_keeps_the_rules(seed in any::<u64>(), n in 2usize..25, cut in 0u32..100, fail_every in 2usize..5) {
        let g = generate(&GenConfig::small(seed, n));
        let mut input = PlanInput::new("prop", &g.estate, g.start);
        input.due = g.due.clone();
        let first = plan(&input);
        let Some(finish) = first.finish else { return Ok(()) };
        let span = first.start.duration_until(finish).as_secs();
        let now = first.start.checked_add(SignedDuration::from_secs(span * i64::from(cut) / 100)).unwrap_or(first.start);
        let mut outcomes = outcomes_at(&first, now);
        for (i, (_, o)) in outcomes.iter_mut().enumerate() {
            if i % fail_every == 0 {
                *o = JobOutcome::Failed { at: now };
            }
        }
        let again = replan(&input, now, &outcomes);
        let mut check_input = input.clone();
        check_input.start = now;
        check_input.horizon = now.duration_until(input.horizon_end());
        check_input.outcomes = outcomes.clone();
        let violations = verify(&check_input, &again);
        prop_assert!(violations.is_empty(), "{:#?}", violations);
    }

    #[test]
    fn unconstrained_estates_use_the_first_fitting_occurrence(seed in any::<u64>(), n in 1usize..30, offset_h in 0i64..200) {
        let g = generate(&simple_config(seed, n));
        let start = g.start.checked_add(SignedDuration::from_hours(offset_h)).unwrap_or(g.start);
        let input = PlanInput::new("prop", &g.estate, start);
        let p = plan(&input);
        prop_assert!(verify(&input, &p).is_empty());
        let end = input.horizon_end();
        for s in &g.estate.servers {
            let d = input.duration_of(s);
            // Independently: the earliest start over its non-emergency windows.
            let mut best: Option<(Timestamp, String)> = None;
            for w in g.estate.windows.iter().filter(|w| !w.emergency && s.windows.contains(&w.name)) {
                let occ = occurrences(w, start, end).unwrap_or_default();
                if let Some(o) = occ.iter().find(|o| {
                    let t = o.start.max(start);
                    t.checked_add(d).is_ok_and(|e| e <= o.end && e <= end)
                }) {
                    let t = o.start.max(start);
                    if best.as_ref().is_none_or(|b| t < b.0) {
                        best = Some((t, w.name.clone()));
                    }
                }
            }
            let got = p.placement(&s.name).map(|x| x.start);
            prop_assert_eq!(got, best.map(|b| b.0), "server {}", s.name);
        }
    }
}
