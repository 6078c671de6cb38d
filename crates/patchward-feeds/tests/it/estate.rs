//! The estate TOML file: the documented format, errors with lines, and round trips.

use crate::fixture;
use patchward_core::inventory::{
    BlackoutScope, DependencyTarget, DisruptionBudget, RollbackMethod,
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
        None,
        "unknown field `soaked`",
    );
    check(
        "order = 2",
        "order = \"two\"",
        line_of("order = 2"),
        None,
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
