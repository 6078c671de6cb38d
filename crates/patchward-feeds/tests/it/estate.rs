//! The estate TOML file: the documented format, errors with lines, and round trips.

use crate::fixture;
use patchward_core::inventory::{
    BlackoutScope, DependencyTarget, DisruptionBudget, HealthProbe, RebootPolicy, RollbackMethod,
};
use patchward_core::product::ServerRelease;
use patchward_feeds::estate;

#[test]
fn documented_example_parses() {
    let e = estate::parse("estate.toml", &fixture("inventory/estate.toml")).unwrap();
    assert_eq!(e.servers.len(), 4);
    assert_eq!(e.capacity.max_in_flight, Some(10));
    assert_eq!(e.rings.len(), 2);
    assert_eq!(e.rings[1].soak.as_secs(), 3 * 86_400);
    assert_eq!(e.windows[0].offset_days, 4);
    assert_eq!(e.windows[0].start.to_string(), "22:00:00");
    assert_eq!(e.windows[1].duration.as_secs(), 5400);
    assert!(e.windows[1].emergency);
    assert_eq!(e.blackouts[0].start.to_string(), "2026-11-28T08:00:00Z");
    assert_eq!(e.blackouts[1].scope, BlackoutScope::Site("Seattle".into()));
    let bp = &e.backup_policies[0];
    assert_eq!(bp.max_age.as_secs(), 26 * 3600);
    assert_eq!(bp.job_window.as_ref().unwrap().name, "nightly backup job");
    assert_eq!(
        e.services[1].budget,
        DisruptionBudget::MaxUnavailablePercent(25)
    );
    assert_eq!(
        e.dependencies[0].depends_on,
        DependencyTarget::Service("sql-prod".into())
    );
    assert_eq!(e.coverage.as_ref().unwrap().windows.len(), 1);
    let dc = &e.servers[0];
    assert_eq!(dc.release, Some(ServerRelease::Server2022));
    assert_eq!(
        dc.rollback.as_ref().unwrap().method,
        RollbackMethod::Snapshot
    );
    assert_eq!(dc.installed_kbs.len(), 2);
    assert_eq!(e.servers[3].release, Some(ServerRelease::Server2025));
    assert_eq!(e.servers[2].reboot, RebootPolicy::Always);
    assert_eq!(e.servers[0].reboot, RebootPolicy::IfRequired);
    assert_eq!(
        e.services[1].probes,
        vec![
            HealthProbe::WindowsService {
                name: "MSSQLSERVER".into()
            },
            HealthProbe::Tcp {
                host: "localhost".into(),
                port: 1433
            },
            HealthProbe::Http {
                url: "https://localhost:8443/health".into(),
                status: 200,
                body_contains: Some("Healthy".into())
            },
        ]
    );
    assert_eq!(e.services[1].probe_grace.map(|g| g.as_secs()), Some(180));
    assert!(e.services[0].probes.is_empty());
}

#[test]
fn probes_take_each_form_and_errors_name_the_probe_and_field() {
    let text = String::from_utf8(fixture("inventory/estate.toml")).unwrap();
    let probes_line = |probes: &str| {
        text.replacen(
            "probes = [{ windows_service = \"MSSQLSERVER\" }",
            &format!("probes = [{probes}, {{ windows_service = \"MSSQLSERVER\" }}"),
            1,
        )
    };
    let ok = estate::parse(
        "estate.toml",
        probes_line("{ tcp = \"sql-listener.corp:1433\" }, { tcp = \"[::1]:5022\" }, { http = \"http://localhost/\" }").as_bytes(),
    )
    .unwrap();
    let p = &ok.services[1].probes;
    assert_eq!(
        p[..3],
        [
            HealthProbe::Tcp {
                host: "sql-listener.corp".into(),
                port: 1433
            },
            HealthProbe::Tcp {
                host: "::1".into(),
                port: 5022
            },
            HealthProbe::Http {
                url: "http://localhost/".into(),
                status: 200,
                body_contains: None
            },
        ]
    );
    // What it writes reads back the same.
    let out = estate::to_toml(&ok);
    assert_eq!(estate::parse("out.toml", out.as_bytes()).unwrap(), ok);

    let line = text
        .lines()
        .position(|l| l.starts_with("probes = "))
        .unwrap() as u64
        + 1;
    for (probe, field, msg) in [
        (
            "{ tcp = 1433, windows_service = \"X\" }",
            "services[1] (sql-prod).probes[0]",
            "exactly one of",
        ),
        ("{ }", "services[1] (sql-prod).probes[0]", "exactly one of"),
        (
            "{ tcp = 70000 }",
            "services[1] (sql-prod).probes[0].tcp",
            "1 to 65535, got 70000",
        ),
        (
            "{ tcp = \"sql01\" }",
            "services[1] (sql-prod).probes[0].tcp",
            "HOST:PORT",
        ),
        (
            "{ http = \"localhost:8080/health\" }",
            "services[1] (sql-prod).probes[0].http",
            "not an http:// or https:// URL",
        ),
        (
            "{ http = \"http://x/\", status = 99 }",
            "services[1] (sql-prod).probes[0].status",
            "100 to 599",
        ),
        (
            "{ tcp = 1, status = 200 }",
            "services[1] (sql-prod).probes[0].status",
            "only an http probe",
        ),
        (
            "{ windows_service = \"a\\\\b\" }",
            "services[1] (sql-prod).probes[0].windows_service",
            "not a Windows service name",
        ),
    ] {
        let e = estate::parse("estate.toml", probes_line(probe).as_bytes()).unwrap_err();
        let e0 = &e.errors[0];
        assert_eq!(
            (e0.line, e0.field.as_deref()),
            (Some(line), Some(field)),
            "{probe}: {e}"
        );
        assert!(e0.message.contains(msg), "{probe}: {e}");
    }
    let e = estate::parse(
        "estate.toml",
        text.replacen("probe_grace = \"3m\"", "probe_grace = \"1h\"", 1)
            .as_bytes(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("probe_grace\": must be 10 minutes or less"),
        "{e}"
    );
    let e = estate::parse(
        "estate.toml",
        text.replacen("reboot = \"always\"", "reboot = \"sometimes\"", 1)
            .as_bytes(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("servers[2] (SQL-01).reboot\": expected if_required, never or always"),
        "{e}"
    );
}

#[test]
fn round_trip() {
    let a = estate::parse("estate.toml", &fixture("inventory/estate.toml")).unwrap();
    let text = estate::to_toml(&a);
    let b = estate::parse("out.toml", text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(a, b);
    assert_eq!(estate::to_toml(&b), text);
}

#[test]
fn an_automatic_rollback_plan_round_trips() {
    let text = String::from_utf8(fixture("inventory/estate.toml"))
        .unwrap()
        .replace(
            "rollback = { method = \"uninstall_kb\" }",
            "rollback = { method = \"uninstall_kb\", automatic = true }",
        );
    let a = estate::parse("estate.toml", text.as_bytes()).unwrap();
    let plans: Vec<bool> = a
        .servers
        .iter()
        .filter_map(|s| s.rollback.as_ref().map(|r| r.automatic))
        .collect();
    assert_eq!(plans, [false, true]);
    let out = estate::to_toml(&a);
    assert!(out.contains("automatic = true"), "{out}");
    assert_eq!(estate::parse("out.toml", out.as_bytes()).unwrap(), a);
}

#[test]
fn errors_name_file_line_and_field() {
    let text = String::from_utf8(fixture("inventory/estate.toml")).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1;
    let check = |from: &str, to: &str, line: u64, field: Option<&str>, msg: &str| {
        let bad = text.replacen(from, to, 1);
        let e = estate::parse("estate.toml", bad.as_bytes()).unwrap_err();
        let e0 = &e.errors[0];
        assert_eq!((e0.line, e0.field.as_deref()), (Some(line), field), "{e}");
        assert!(e0.message.contains(msg), "{e}");
    };
    // Errors of the TOML reader itself (types, missing keys, numbers too large) name the
    // field as the others do.
    check(
        "rollback = { method = \"uninstall_kb\" }",
        "rollback = { method = \"uninstall_kb\", automatic = \"yes\" }",
        line_of("rollback = { method = \"uninstall_kb\" }"),
        Some("servers[1] (DC-02).rollback.automatic"),
        "expected a boolean",
    );
    check(
        "name = \"SQL-01\"\nos = \"Windows Server 2019 Standard\"\n",
        "name = \"SQL-01\"\n",
        line_of("name = \"SQL-01\"") - 1,
        Some("servers[2] (SQL-01).os"),
        "missing field `os`",
    );
    check(
        "tier = 2",
        "tier = 99999999999999999999",
        line_of("tier = 2"),
        Some("servers[2] (SQL-01).tier"),
        "expected i64",
    );
    // Inside a service's probes: the probe's index.
    let probes = "probes = [{ windows_service = \"MSSQLSERVER\" }";
    check(
        probes,
        "probes = [{ tcp = 1 }, { http = \"http://x/\", status = \"200\" }",
        line_of(probes),
        Some("services[1] (sql-prod).probes[1].status"),
        "invalid type",
    );
    check(
        probes,
        "probes = [{ tcp = 2, foo = 3 }",
        line_of(probes),
        Some("services[1] (sql-prod).probes[0].foo"),
        "unknown field `foo`",
    );
    check(
        probes,
        "probes = [{ windows_service = 5 }",
        line_of(probes),
        Some("services[1] (sql-prod).probes[0].windows_service"),
        "invalid type",
    );
    check(
        "max_in_flight = 10",
        "max_in_flight = \"ten\"",
        line_of("max_in_flight = 10"),
        Some("capacity.max_in_flight"),
        "invalid type",
    );
    check(
        "time_zone = \"Europe/Berlin\"",
        "time_zone = \"Europe/Atlantis\"",
        line_of("Europe/Berlin"),
        Some("windows[1] (emergency).time_zone"),
        "unknown time zone",
    );
    check(
        "build = \"10.0.17763.6054\"",
        "build = \"10.0.20348.1\"",
        line_of("10.0.17763.6054"),
        Some("servers[2] (SQL-01).build"),
        "belongs to Windows Server 2022",
    );
    check(
        "duration = \"4h\"",
        "duration = \"4 fortnights\"",
        line_of("duration = \"4h\""),
        Some("windows[0] (patch-tuesday+4).duration"),
        "not a duration",
    );
    check(
        "rrule = \"FREQ=DAILY\"\nstart",
        "rrule = \"DAILY\"\nstart",
        line_of("rrule = \"FREQ=DAILY\""),
        Some("windows[1] (emergency).rrule"),
        "not an RRULE",
    );
    check(
        "tier = 2",
        "tier = 7",
        line_of("tier = 2"),
        Some("servers[2] (SQL-01).tier"),
        "1 (most critical) to 4",
    );
    check(
        "method = \"snapshot\"",
        "method = \"pray\"",
        line_of("method = \"snapshot\""),
        Some("servers[0] (DC-01).rollback.method"),
        "unknown rollback method",
    );
    check(
        "method = \"snapshot\"",
        "method = \"vendor_procedure\", automatic = true",
        line_of("method = \"snapshot\""),
        Some("servers[0] (DC-01).rollback.automatic"),
        "automatic rollback needs method uninstall_kb or snapshot",
    );
    check(
        "scope = \"global\"",
        "scope = \"planet:earth\"",
        line_of("scope = \"global\""),
        Some("blackouts[0] (month-end close).scope"),
        "unknown scope kind",
    );
    check(
        "exposure = \"limited\"",
        "exposure = \"very\"",
        line_of("exposure = \"limited\""),
        Some("servers[2] (SQL-01).exposure"),
        "unknown exposure",
    );
    // TOML-level errors: unknown key and wrong type, with their lines.
    check(
        "soak = \"3d\"",
        "soak = \"3d\"\nsoaked = true",
        line_of("soak = \"3d\"") + 1,
        Some("rings[1] (critical-infra).soaked"),
        "unknown field `soaked`",
    );
    check(
        "order = 2",
        "order = \"two\"",
        line_of("order = 2"),
        Some("rings[1] (critical-infra).order"),
        "invalid type",
    );
    // Reference errors from Estate::validate name the file.
    let bad = text.replacen(
        "ring = \"pilot\"\nbackup_policy",
        "ring = \"canary\"\nbackup_policy",
        1,
    );
    let e = estate::parse("estate.toml", bad.as_bytes()).unwrap_err();
    assert_eq!(
        e.errors[0].to_string(),
        "estate.toml: server \"SQL-01\" names unknown ring \"canary\""
    );
    // Duplicate names.
    let bad = text.replacen("name = \"DC-02\"", "name = \"dc-01\"", 1);
    let e = estate::parse("estate.toml", bad.as_bytes()).unwrap_err();
    assert!(
        e.errors[0].message.contains("already listed on line"),
        "{e}"
    );
}

// ---- self-dependency, recognition, window rules ---------------------------------------------

const HEAD: &str = r#"[[windows]]
name = "sat"
rrule = "FREQ=WEEKLY;BYDAY=SA"
start = "22:00"
duration = "4h"
time_zone = "America/Los_Angeles"

[[services]]
name = "web"
members = ["WEB-01", "WEB-02"]
max_unavailable = 1
"#;

fn servers(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!(
                "\n[[servers]]\nname = \"{n}\"\nos = \"Windows Server 2022 Datacenter\"\nwindows = [\"sat\"]\n"
            )
        })
        .collect()
}

#[test]
fn self_dependency_is_an_error_naming_file_line_and_server() {
    let base = format!("{HEAD}{}", servers(&["APP-01", "WEB-01", "WEB-02"]));
    // Directly (names are case-insensitive).
    let text =
        format!("{base}\n[[dependencies]]\ndependent = \"APP-01\"\ndepends_on = \"app-01\"\n");
    let line = text.lines().position(|l| l.contains("\"app-01\"")).unwrap() as u64 + 1;
    let e = estate::parse("estate.toml", text.as_bytes()).unwrap_err();
    let first = &e.errors[0];
    assert_eq!(first.line, Some(line), "{e}");
    assert_eq!(first.field.as_deref(), Some("dependencies[0].depends_on"));
    assert!(first.to_string().starts_with("estate.toml:"), "{first}");
    assert!(
        first.message.contains("\"APP-01\" depends on itself"),
        "{first}"
    );

    // Through a service the server belongs to.
    let text =
        format!("{base}\n[[dependencies]]\ndependent = \"WEB-02\"\ndepends_on = \"service:web\"\n");
    let e = estate::parse("estate.toml", text.as_bytes()).unwrap_err();
    assert!(
        e.errors[0].message.contains("\"WEB-02\" depends on itself"),
        "{e}"
    );
    // A real dependency next to it is fine.
    let text =
        format!("{base}\n[[dependencies]]\ndependent = \"APP-01\"\ndepends_on = \"service:web\"\n");
    assert_eq!(
        estate::parse("estate.toml", text.as_bytes())
            .unwrap()
            .dependencies
            .len(),
        1
    );
}

#[test]
fn estate_with_servers_after_line_500_is_recognised() {
    use patchward_feeds::inventory::{self, Inventory};
    // 80 windows (~560 lines) first, servers last: the order a person writes.
    let mut text = String::new();
    for k in 0..80 {
        text.push_str(&format!(
            "[[windows]]\nname = \"w{k}\"\nrrule = \"FREQ=DAILY\"\nstart = \"22:00\"\nduration = \"2h\"\ntime_zone = \"UTC\"\n\n"
        ));
    }
    let first_server = text.lines().count() + 2;
    assert!(first_server > 500);
    text.push_str(&servers(&["SRV-1"]).replace("\"sat\"", "\"w3\""));
    match inventory::parse("estate.toml", text.as_bytes()).unwrap() {
        Inventory::Estate(e) => assert_eq!((e.servers.len(), e.windows.len()), (1, 80)),
        other => panic!("{other:?}"),
    }
    // Even when the head shows no section at all (80 KB of comments), parsing decides.
    let padded = format!("{}{text}", "# notes\n".repeat(10_000));
    assert!(matches!(
        inventory::parse("estate.txt", padded.as_bytes()).unwrap(),
        Inventory::Estate(_)
    ));
}

#[test]
fn unrecognised_inventory_says_what_was_tried_and_the_likeliest_error() {
    use patchward_feeds::inventory;
    // Broken TOML named .toml: the TOML error with its line.
    let e = inventory::parse("estate.toml", b"# estate\n\n[[servers]\nname = \"A\"\n").unwrap_err();
    let m = e.to_string();
    assert!(m.contains("estate.toml:3"), "{m}");
    // A TOML document that is no estate.
    let e = inventory::parse("policy.toml", b"[sla]\nact = 3\n").unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("tried estate TOML, server inventory CSV") && m.contains("read as estate TOML"),
        "{m}"
    );
    // Plain text: every format named.
    let e = inventory::parse("notes.txt", b"hello world\nnothing here\n").unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("notes.txt") && m.contains("Get-HotFix") && m.contains("wmic qfe"),
        "{m}"
    );
    // A feed is pointed at `import feeds`.
    let e = inventory::parse(
        "kev.json",
        br#"{"catalogVersion":"1","vulnerabilities":[]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("import feeds"), "{e}");
}

fn window_with(rrule: &str, tz: &str) -> String {
    format!(
        "[[windows]]\nname = \"w\"\nrrule = \"{rrule}\"\nstart = \"22:00\"\nduration = \"4h\"\ntime_zone = \"{tz}\"\n{}",
        servers(&["SRV-1"]).replace("\"sat\"", "\"w\"")
    )
}

#[test]
fn dtstart_before_or_after_rrule_with_tzid() {
    use patchward_core::calendar::occurrences;
    let la = "America/Los_Angeles";
    let forms = [
        "DTSTART;TZID=America/Los_Angeles:20261110T220000\\nRRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU",
        "RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU\\nDTSTART;TZID=America/Los_Angeles:20261110T220000",
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU\\nDTSTART;VALUE=DATE:20261110",
        "DTSTART:20261110T220000\\nRRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU",
        // 2026-11-11 06:00 UTC is 10 Nov 22:00 in Los Angeles: the anchor is read in the zone.
        "DTSTART:20261111T060000Z\\nRRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU",
    ];
    let from: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    let to: jiff::Timestamp = "2027-06-01T00:00:00Z".parse().unwrap();
    for rule in forms {
        let e = estate::parse("estate.toml", window_with(rule, la).as_bytes())
            .unwrap_or_else(|e| panic!("{rule}: {e}"));
        let w = &e.windows[0];
        // Every other month from the anchor: Nov, Jan, Mar, May (second Tuesdays, 22:00 local).
        let got: Vec<String> = occurrences(w, from, to)
            .unwrap()
            .iter()
            .map(|iv| {
                iv.start
                    .to_zoned_datetime(jiff::tz::TimeZone::get(la).unwrap())
                    .date()
                    .to_string()
            })
            .collect();
        assert_eq!(
            got,
            ["2026-11-10", "2027-01-12", "2027-03-09", "2027-05-11"],
            "{rule}"
        );
        // Written back and read again: the same window.
        let again = estate::parse("out.toml", estate::to_toml(&e).as_bytes()).unwrap();
        assert_eq!(again.windows, e.windows);
    }
}

#[test]
fn dtstart_zone_errors_name_the_field() {
    let wrong =
        "DTSTART;TZID=Europe/Berlin:20261110T220000\\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU";
    let e = estate::parse(
        "estate.toml",
        window_with(wrong, "America/Los_Angeles").as_bytes(),
    )
    .unwrap_err();
    let first = &e.errors[0];
    assert_eq!(first.field.as_deref(), Some("windows[0] (w).rrule"), "{e}");
    assert_eq!(first.line, Some(3));
    assert!(
        first.message.contains(
            "TZID=\"Europe/Berlin\" disagrees with the window's time_zone \"America/Los_Angeles\""
        ),
        "{first}"
    );
    let unknown = "DTSTART;TZID=Mars/Olympus:20261110T220000\\nRRULE:FREQ=WEEKLY;BYDAY=TU";
    let e = estate::parse("estate.toml", window_with(unknown, "UTC").as_bytes()).unwrap_err();
    assert_eq!(e.errors[0].field.as_deref(), Some("windows[0] (w).rrule"));
    assert!(
        e.errors[0]
            .message
            .contains("\"Mars/Olympus\" is not a known IANA time zone"),
        "{e}"
    );
    // Without an anchor, INTERVAL=2 is still refused, saying why.
    let e = estate::parse(
        "estate.toml",
        window_with("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", "UTC").as_bytes(),
    )
    .unwrap_err();
    assert!(e.errors[0].message.contains("needs a DTSTART"), "{e}");
}
