//! `patchward plan` end to end: the Contoso and demo estates imported from their TOML files,
//! real MSRC data for exposure and due dates, plans stored in a real SQLite file and checked
//! by the planner's independent checker.

use crate::{fixtures, ok, pw};

fn tmpdir(name: &str) -> std::path::PathBuf {
    crate::tmpdir(&format!("plan-{name}"))
}
use patchward_core::inventory::Estate;
use patchward_core::plan::{JobOutcome, Plan, PlanInput, UnplacedRule, verify};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The command fails cleanly (no panic) and its error says `want`.
fn fails(o: &Output, want: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "succeeded, expected {want:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(want), "expected {want:?} in:\n{err}");
    err
}

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(p)
}

const CONTOSO: &str = "examples/estates/contoso.toml";
const DEMO: &str = "examples/demo/estate.toml";

/// A fresh database with June 2026's MSRC month, the KEV catalog and an estate.
fn setup(name: &str, estate: &str) -> (PathBuf, PathBuf) {
    let d = tmpdir(name);
    let db = d.join("p.db");
    let feeds = [
        fixtures().join("msrc-cvrf/2026-Jun.xml.zst"),
        fixtures().join("kev/known_exploited_vulnerabilities_2026-08-07.json.zst"),
    ];
    let mut args = vec!["import", "feeds"];
    args.extend(feeds.iter().map(|p| p.to_str().unwrap()));
    ok(&pw(&db, &args));
    ok(&pw(
        &db,
        &["import", "hosts", repo(estate).to_str().unwrap()],
    ));
    (d, db)
}

fn estate_of(path: &str) -> Estate {
    let bytes = std::fs::read(repo(path)).unwrap();
    patchward_feeds::estate::parse(path, &bytes).unwrap()
}

/// The input a stored plan was made from: scope, due dates, start, horizon, emergency — all
/// recorded in the plan itself (this is also how `plan --replan` rebuilds it).
fn input_of<'e>(estate: &'e Estate, p: &Plan) -> PlanInput<'e> {
    let mut input = PlanInput::new(p.cycle.clone(), estate, p.start);
    input.scope = p
        .placements
        .iter()
        .map(|x| x.server.clone())
        .chain(p.unplaced.iter().map(|u| u.server.clone()))
        .chain(p.in_progress.iter().map(|r| r.server.clone()))
        .chain(p.finished.iter().cloned())
        .collect();
    input.due = p
        .placements
        .iter()
        .filter_map(|x| x.due.map(|d| (x.server.clone(), d)))
        .chain(
            p.unplaced
                .iter()
                .filter_map(|u| u.due.map(|d| (u.server.clone(), d))),
        )
        .collect();
    input.due_sources = p
        .placements
        .iter()
        .filter_map(|x| x.due_source.clone().map(|d| (x.server.clone(), d)))
        .chain(
            p.unplaced
                .iter()
                .filter_map(|u| u.due_source.clone().map(|d| (u.server.clone(), d))),
        )
        .collect();
    input.emergency = p.emergency;
    input.horizon = p.start.duration_until(p.horizon_end);
    input
}

fn plan_json(db: &Path, args: &[&str]) -> Plan {
    let mut a = vec!["plan"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--format", "json"]);
    serde_json::from_str(&ok(&pw(db, &a))).unwrap()
}

const START: [&str; 4] = ["--start", "2026-06-15", "--tz", "America/Los_Angeles"];

#[test]
fn contoso_plan_is_stored_explained_and_valid() {
    let (_d, db) = setup("contoso", CONTOSO);
    let mut args = vec!["--cycle", "2026-06 Patch Tuesday"];
    args.extend_from_slice(&START);
    let p = plan_json(&db, &args);

    // Every Contoso server runs Server 2022 without June's update: all 18 are in scope.
    assert_eq!(p.cycle, "2026-06 Patch Tuesday");
    assert_eq!(p.start.to_string(), "2026-06-15T07:00:00Z");
    assert_eq!(p.placements.len(), 18, "{:?}", p.unplaced);
    assert!(p.unplaced.is_empty());
    for x in &p.placements {
        assert!(!x.reasons.is_empty(), "{} has no reasons", x.server);
        assert!(x.reasons[0].starts_with(&format!("wave {}", x.wave)));
        // Due dates: the earliest priority due date of the server's CVEs, at 23:59 UTC.
        let due = x.due.unwrap().to_string();
        assert!(due.ends_with("T23:59:00Z"), "{due}");
    }
    assert!(p.waves.windows(2).all(|w| w[0].start < w[1].start));
    let at = |s: &str| p.placement(s).unwrap();
    // Dependencies first within a ring, redundancy kept, pilot before production.
    assert!(at("SQL-01").end <= at("APP-01").start);
    assert!(at("SQL-02").end <= at("APP-01").start);
    assert!(
        at("APP-01")
            .reasons
            .iter()
            .any(|r| r.contains("after SQL-01 (dependency"))
    );
    assert!(at("DC-01").end <= at("DC-02").start || at("DC-02").end <= at("DC-01").start);
    assert!(at("FS-01").end <= at("RDS-01").start);
    for l in &p.late {
        assert!(l.late_by.is_positive());
        assert_eq!(at(&l.server).late_by, Some(l.late_by));
    }

    // The independent checker accepts the stored plan.
    let estate = estate_of(CONTOSO);
    let violations = verify(&input_of(&estate, &p), &p);
    assert!(violations.is_empty(), "{violations:#?}");

    // Stored: listed, and --explain (latest plan) prints every reason of the server.
    let list = ok(&pw(&db, &["plan", "--list"]));
    assert!(list.contains("2026-06 Patch Tuesday"), "{list}");
    let ex = ok(&pw(&db, &["plan", "--explain", "app-01"]));
    assert!(
        ex.starts_with(&format!("APP-01: wave {}", at("APP-01").wave)),
        "{ex}"
    );
    for r in &at("APP-01").reasons {
        assert!(ex.contains(r.as_str()), "missing {r:?} in\n{ex}");
    }
    let ex = ok(&pw(
        &db,
        &[
            "plan",
            "--explain",
            "DC-02",
            "--cycle",
            "2026-06 Patch Tuesday",
        ],
    ));
    assert!(
        ex.contains("service 'domain controllers' allows 1 down"),
        "{ex}"
    );

    // The table: waves in time order, slots in the window's zone, the late list.
    let mut targs = vec!["plan", "--cycle", "2026-06 Patch Tuesday"];
    targs.extend_from_slice(&START);
    let table = ok(&pw(&db, &targs));
    let w1 = table.find("Wave 1:").unwrap();
    let w2 = table.find("Wave 2:").unwrap();
    assert!(w1 < w2);
    assert!(table.contains("PDT") && table.contains("CEST"), "{table}");
    if !p.late.is_empty() {
        assert!(table.contains("Late (finish after their due date):"));
    }

    // CSV: one row per server with the documented columns.
    targs.extend_from_slice(&["--format", "csv"]);
    let csv = ok(&pw(&db, &targs));
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    let headers: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        headers,
        [
            "cycle", "wave", "server", "ring", "start", "end", "status", "reasons"
        ]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 18);
    for r in &rows {
        let late = p.late.iter().any(|l| l.server == r[2]);
        assert_eq!(&r[6], if late { "late" } else { "placed" });
        assert!(!r[7].is_empty());
    }
}

#[test]
fn replan_after_failure_keeps_dependents_unplaced() {
    let (d, db) = setup("replan", CONTOSO);
    let mut args = vec!["--cycle", "june"];
    args.extend_from_slice(&START);
    let first = plan_json(&db, &args);
    let fs = first.placement("FS-01").unwrap().clone();
    let mon = first.placement("MON-01").unwrap().clone();

    // FS-01 (pilot; the RDS farm depends on it) fails, MON-01 finishes.
    let outcomes = d.join("outcomes.csv");
    std::fs::write(
        &outcomes,
        format!(
            "server,outcome,at,expected_end\n# pilot night\nfs-01,failed,{}\nMON-01,finished,{}\n",
            fs.end, mon.end
        ),
    )
    .unwrap();
    let from = fs.end.to_string();
    let p = plan_json(
        &db,
        &[
            "--cycle",
            "june",
            "--replan",
            "--outcomes",
            outcomes.to_str().unwrap(),
            "--start",
            &from,
        ],
    );
    assert_eq!(p.cycle, "june");
    assert_eq!(p.start, fs.end);
    assert_eq!(p.finished, ["MON-01"]);
    let failed = p.unplaced("FS-01").unwrap();
    assert_eq!(failed.rule, UnplacedRule::JobFailed);
    for rds in ["RDS-01", "RDS-02", "RDS-03", "RDS-04"] {
        let u = p
            .unplaced(rds)
            .unwrap_or_else(|| panic!("{rds} placed although FS-01 failed"));
        assert_eq!(u.rule, UnplacedRule::DependsOnFailed, "{rds}");
        assert!(
            u.reasons.iter().any(|r| r.contains("FS-01")),
            "{rds}: {u:?}"
        );
    }
    assert!(p.placement("SQL-01").is_some());

    // The checker accepts the re-plan, with the outcomes it was made from.
    let estate = estate_of(CONTOSO);
    let mut input = input_of(&estate, &p);
    input.outcomes = BTreeMap::from([
        ("FS-01".to_string(), JobOutcome::Failed { at: fs.end }),
        ("MON-01".to_string(), JobOutcome::Finished { at: mon.end }),
    ]);
    let violations = verify(&input, &p);
    assert!(violations.is_empty(), "{violations:#?}");

    // Stored under the same cycle: --explain names the rule and the failed server.
    let ex = ok(&pw(
        &db,
        &["plan", "--explain", "RDS-02", "--cycle", "june"],
    ));
    assert!(ex.contains("NOT PLACED"), "{ex}");
    assert!(ex.contains("depends_on_failed"), "{ex}");
    assert!(ex.contains("FS-01"), "{ex}");
    let list = ok(&pw(&db, &["plan", "--list", "--format", "csv"]));
    assert_eq!(list.lines().filter(|l| l.starts_with("june,")).count(), 1);

    // A bad outcomes file names the file, the line and the field.
    std::fs::write(&outcomes, "server,outcome,at\nFS-01,exploded,2026-06-17\n").unwrap();
    let o = pw(
        &db,
        &[
            "plan",
            "--cycle",
            "june",
            "--replan",
            "--outcomes",
            outcomes.to_str().unwrap(),
        ],
    );
    fails(&o, "outcomes.csv:2: outcome: \"exploded\"");
    std::fs::write(&outcomes, "NOPE-01,finished,2026-06-17\n").unwrap();
    let o = pw(
        &db,
        &[
            "plan",
            "--cycle",
            "june",
            "--replan",
            "--outcomes",
            outcomes.to_str().unwrap(),
        ],
    );
    fails(&o, "outcomes.csv:1: server: \"NOPE-01\"");
    let o = pw(
        &db,
        &[
            "plan",
            "--cycle",
            "no-such-cycle",
            "--replan",
            "--outcomes",
            outcomes.to_str().unwrap(),
        ],
    );
    fails(&o, "no plan stored for cycle \"no-such-cycle\"");
}

#[test]
fn bad_input_fails_clearly() {
    let (_d, db) = setup("bad", CONTOSO);
    let o = pw(&db, &["plan", "--explain", "FS-01"]);
    fails(&o, "no plan stored yet");
    let o = pw(&db, &["plan", "--cycle", "c", "--start", "2026-13-45"]);
    fails(&o, "--start \"2026-13-45\": not a date/time");
    let o = pw(&db, &["plan", "--cycle", "c", "--start", "next tuesday"]);
    fails(&o, "--start \"next tuesday\"");
    let o = pw(
        &db,
        &[
            "plan",
            "--cycle",
            "c",
            "--start",
            "2026-06-15",
            "--tz",
            "Mars/Olympus",
        ],
    );
    fails(&o, "unknown time zone \"Mars/Olympus\"");
    let o = pw(&db, &["plan", "--cycle", "c"]);
    fails(&o, "--start WHEN is required");
    let o = pw(
        &db,
        &[
            "plan",
            "--cycle",
            "c",
            "--start",
            "2026-06-15",
            "--servers",
            "FS-01,NOPE-9",
        ],
    );
    fails(&o, "unknown server(s) in --servers: NOPE-9");
    let o = pw(
        &db,
        &[
            "plan",
            "--cycle",
            "c",
            "--start",
            "2026-06-15",
            "--ring",
            "canary",
        ],
    );
    fails(&o, "unknown ring \"canary\"");

    // A scoped plan: only the named servers, then explain errors.
    let p = plan_json(
        &db,
        &[
            "--cycle",
            "c",
            "--start",
            "2026-06-15T18:00",
            "--tz",
            "America/Los_Angeles",
            "--servers",
            "fs-01,DC-01",
        ],
    );
    assert_eq!(p.start.to_string(), "2026-06-16T01:00:00Z");
    let names: Vec<&str> = p.placements.iter().map(|x| x.server.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"FS-01") && names.contains(&"DC-01"));
    let o = pw(&db, &["plan", "--explain", "SQL-01", "--cycle", "c"]);
    fails(&o, "SQL-01 was not in the scope of plan \"c\"");
    let o = pw(&db, &["plan", "--explain", "NOPE-9"]);
    fails(&o, "no server named \"NOPE-9\"");
    let o = pw(&db, &["plan", "--explain", "FS-01", "--cycle", "other"]);
    fails(&o, "no plan stored for cycle \"other\"");
    let ring = plan_json(
        &db,
        &[
            "--cycle",
            "pilot-only",
            "--ring",
            "PILOT",
            "--start",
            "2026-06-15",
        ],
    );
    assert_eq!(ring.placements.len(), 3);
}

#[test]
fn demo_estate_plans_without_violations() {
    let (_d, db) = setup("demo", DEMO);
    let estate = estate_of(DEMO);
    for (cycle, emergency) in [("demo", false), ("demo-emergency", true)] {
        let mut args = vec!["--cycle", cycle];
        args.extend_from_slice(&START);
        if emergency {
            args.push("--emergency");
        }
        let printed = plan_json(&db, &args);
        assert_eq!(printed.emergency, emergency);
        assert!(!printed.placements.is_empty());
        // Load the stored JSON (through the store's own reader) and check it.
        let store_json = {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use patchward_store::Store;
                let s = patchward_store::SqliteStore::open(&db).await.unwrap();
                s.plan(patchward_store::TenantId::DEFAULT, cycle)
                    .await
                    .unwrap()
                    .unwrap()
            })
        };
        let stored: Plan = serde_json::from_str(&store_json).unwrap();
        assert_eq!(stored, printed);
        let violations = verify(&input_of(&estate, &stored), &stored);
        assert!(violations.is_empty(), "{cycle}: {violations:#?}");
        for x in &stored.placements {
            assert!(!x.reasons.is_empty());
        }
        for u in &stored.unplaced {
            assert!(!u.reasons.is_empty());
        }
    }
}

#[test]
fn deadline_and_due_file_flag_late_placements_and_name_their_source() {
    let (d, db) = setup("due", CONTOSO);
    let due = d.join("due.csv");
    // FS-01 is patched in the first night (Tue 16 Jun 22:00 PDT = 17 Jun 05:00 UTC): a due date
    // of 16 Jun (23:59 UTC) is missed. DC-01's line is later than the deadline: the deadline wins.
    std::fs::write(
        &due,
        "server,due\n# promised to the auditor\nfs-01,2026-06-16\nDC-01,2026-12-01T00:00:00Z\n",
    )
    .unwrap();
    let mut args = vec!["--cycle", "2026-06 Patch Tuesday"];
    args.extend_from_slice(&START);
    args.extend_from_slice(&["--deadline", "2026-06-20", "--due", due.to_str().unwrap()]);
    let p = plan_json(&db, &args);
    let file = due.display().to_string();
    let fs = p.placement("FS-01").unwrap();
    assert_eq!(fs.due.unwrap().to_string(), "2026-06-16T23:59:00Z");
    assert_eq!(
        fs.due_source.as_deref(),
        Some(format!("due file {file}:3").as_str())
    );
    assert!(
        fs.reasons
            .iter()
            .any(|r| r.starts_with("misses its due date")
                && r.contains(&format!("(due file {file}:3) by"))),
        "{:?}",
        fs.reasons
    );
    let late = p.late.iter().find(|l| l.server == "FS-01").unwrap();
    assert_eq!(late.due_source, fs.due_source);
    // The deadline (20 Jun, 23:59 UTC) is earlier than every priority date here, and than
    // DC-01's line in the file: every other server is due then.
    let dc = p.placement("DC-01").unwrap();
    assert_eq!(dc.due.unwrap().to_string(), "2026-06-20T23:59:00Z");
    assert!(
        dc.due_source
            .as_deref()
            .unwrap()
            .starts_with("cycle deadline"),
        "{:?}",
        dc.due_source
    );
    // Servers finishing after the deadline are late, and say which date they miss.
    let after: Vec<_> = p
        .placements
        .iter()
        .filter(|x| x.end.to_string().as_str() > "2026-06-20T23:59:00Z")
        .collect();
    assert!(!after.is_empty());
    for x in &after {
        assert!(p.late.iter().any(|l| l.server == x.server), "{}", x.server);
        assert!(
            x.reasons
                .iter()
                .any(|r| r.starts_with("misses its due date") && r.contains("(cycle deadline")),
            "{:?}",
            x.reasons
        );
    }
    // The stored plan passes the checker with its sources; --explain shows the source.
    let estate = estate_of(CONTOSO);
    assert_eq!(verify(&input_of(&estate, &p), &p), vec![]);
    let ex = ok(&pw(&db, &["plan", "--explain", "FS-01"]));
    assert!(ex.contains(&format!("(due file {file}:3)")), "{ex}");
}

#[test]
fn bad_due_file_fails_naming_file_line_and_field_and_stores_nothing() {
    let (d, db) = setup("baddue", CONTOSO);
    let mut base = vec!["plan", "--cycle", "c"];
    base.extend_from_slice(&START);
    let try_file = |name: &str, text: &str, want: &str| {
        let f = d.join(name);
        std::fs::write(&f, text).unwrap();
        let mut args = base.clone();
        let path = f.to_str().unwrap().to_string();
        args.extend_from_slice(&["--due", &path]);
        let err = fails(&pw(&db, &args), &format!("{path}:{want}"));
        assert!(!err.contains("plan: stored"), "{err}");
    };
    try_file(
        "unknown.csv",
        "server,due\nFS-01,2026-06-20\nGHOST-01,2026-06-20\n",
        "3: server: \"GHOST-01\" is not in the estate",
    );
    try_file(
        "date.csv",
        "# comment\nserver,due\nFS-01,20/06/2026\n",
        "3: due: \"20/06/2026\" is not a date",
    );
    try_file(
        "column.csv",
        "server,when\nFS-01,2026-06-20\n",
        "1: due: missing column",
    );
    try_file("short.csv", "server,due\nFS-01\n", "2: due: missing value");
    let o = pw(
        &db,
        &[
            "plan",
            "--cycle",
            "c",
            "--start",
            "2026-06-15",
            "--deadline",
            "soon",
        ],
    );
    fails(&o, "--deadline \"soon\"");
    // Nothing was stored by any of these.
    let list = ok(&pw(&db, &["plan", "--list"]));
    assert!(list.contains("no plans stored"), "{list}");
}

#[test]
fn servers_file_gives_the_scope() {
    let (d, db) = setup("servers-file", CONTOSO);
    let f = d.join("servers.txt");
    std::fs::write(&f, "# two servers\nfs-01\n\nDC-01\nFS-01\n").unwrap();
    let mut args = vec!["--cycle", "c"];
    args.extend_from_slice(&START);
    args.extend_from_slice(&["--servers-file", f.to_str().unwrap()]);
    let p = plan_json(&db, &args);
    let mut names: Vec<&str> = p.placements.iter().map(|x| x.server.as_str()).collect();
    names.sort();
    assert_eq!(names, ["DC-01", "FS-01"]);
    std::fs::write(&f, "FS-01\nNOPE-01\n").unwrap();
    let mut args = vec!["plan", "--cycle", "c"];
    args.extend_from_slice(&START);
    args.extend_from_slice(&["--servers-file", f.to_str().unwrap()]);
    fails(
        &pw(&db, &args),
        "unknown server(s) in --servers-file: NOPE-01",
    );
}
