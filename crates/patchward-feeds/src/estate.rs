//! The estate file (TOML), exactly as documented in `docs/estate-format.md`: servers and
//! everything the planner needs (capacity, rings, maintenance windows, blackouts, backup
//! policies, services, dependencies, coverage). [`parse`] reads it into an [`Estate`] and runs
//! [`Estate::validate`]; [`to_toml`] writes an estate back in the same format.
//!
//! Errors name the file, the line and the field (`estate.toml:42: field "servers[3] (DC-01).build":
//! not an OS build: …`). Unknown keys are errors (a typo must not silently drop a setting).

use crate::error::{ParseError, ParseErrors, line_of_offset};
use crate::inventory_csv::{
    exposure_name, parse_exposure, parse_kb_list, release_of, valid_server_name,
};
use crate::util::{clip, format_duration, parse_duration, parse_instant};
use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use patchward_core::OsBuild;
use patchward_core::inventory::{
    BackupPolicy, Blackout, BlackoutScope, Capacity, Coverage, Dependency, DependencyTarget,
    DisruptionBudget, Estate, MaintenanceWindow, Owner, Ring, Role, RollbackMethod, RollbackPlan,
    Server, Service, Tier,
};
use patchward_core::product::Installation;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use toml::Spanned;

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEstate {
    capacity: Option<S<RawCapacity>>,
    #[serde(default)]
    rings: Vec<S<RawRing>>,
    #[serde(default)]
    windows: Vec<S<RawWindow>>,
    #[serde(default)]
    blackouts: Vec<S<RawBlackout>>,
    #[serde(default)]
    backup_policies: Vec<S<RawPolicy>>,
    #[serde(default)]
    services: Vec<S<RawService>>,
    #[serde(default)]
    dependencies: Vec<S<RawDependency>>,
    coverage: Option<S<RawCoverage>>,
    servers: Option<Vec<S<RawServer>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapacity {
    max_in_flight: Option<S<i64>>,
    max_in_flight_per_site: Option<S<i64>>,
    /// Site name → its own limit (overrides `max_in_flight_per_site`).
    #[serde(default)]
    sites: BTreeMap<String, S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRing {
    name: S<String>,
    order: S<i64>,
    soak: S<String>,
    emergency_soak: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    name: Option<S<String>>,
    rrule: S<String>,
    offset_days: Option<S<i64>>,
    start: S<String>,
    duration: S<String>,
    time_zone: S<String>,
    emergency: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlackout {
    name: S<String>,
    scope: S<String>,
    start: S<toml::Value>,
    end: S<toml::Value>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: S<String>,
    source: String,
    max_age: S<String>,
    job_window: Option<S<RawWindow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOwner {
    name: String,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: S<String>,
    members: Vec<String>,
    max_unavailable: Option<S<i64>>,
    max_unavailable_percent: Option<S<i64>>,
    owner: Option<RawOwner>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependency {
    dependent: S<String>,
    depends_on: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoverage {
    windows: Vec<S<RawWindow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollback {
    method: S<String>,
    who: Option<String>,
    tested_on: Option<S<toml::Value>>,
    notes: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: S<String>,
    fqdn: Option<String>,
    os: S<String>,
    build: Option<S<String>>,
    installation: Option<S<String>>,
    hotpatch: Option<bool>,
    #[serde(default)]
    roles: Vec<String>,
    owner: Option<RawOwner>,
    tier: Option<S<i64>>,
    environment: Option<String>,
    site: Option<String>,
    exposure: Option<S<String>>,
    #[serde(default)]
    tags: Vec<String>,
    kbs: Option<S<Vec<String>>>,
    #[serde(default)]
    windows: Vec<String>,
    ring: Option<String>,
    backup_policy: Option<String>,
    estimated_duration: Option<S<String>>,
    #[serde(default)]
    pending_reboot: Vec<String>,
    rollback: Option<S<RawRollback>>,
    last_boot: Option<S<toml::Value>>,
    last_scan: Option<S<toml::Value>>,
}

/// Conversion context: the file, its text (for line numbers) and the collected errors.
struct Ctx<'a> {
    source: &'a str,
    text: &'a str,
    errs: ParseErrors,
}

impl Ctx<'_> {
    fn line<T>(&self, s: &S<T>) -> u64 {
        line_of_offset(self.text, s.span().start)
    }
    fn fail<T>(&mut self, at: &S<T>, field: &str, msg: impl Into<String>) {
        let line = self.line(at);
        self.errs
            .push(ParseError::at(self.source, Some(line), Some(field), msg));
    }
    fn check<T, U>(&mut self, at: &S<U>, field: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.fail(at, field, m);
                None
            }
        }
    }
}

/// `HH:MM` or `HH:MM:SS`.
pub fn parse_time_of_day(s: &str) -> Result<Time, String> {
    let bad = || {
        format!(
            "not a time of day: {:?} (expected HH:MM, e.g. \"22:00\")",
            clip(s, 30)
        )
    };
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let n = |i: usize| parts.get(i).and_then(|p| p.parse::<i8>().ok()).unwrap_or(0);
    Time::new(n(0), n(1), n(2), 0).map_err(|_| bad())
}

fn format_time(t: Time) -> String {
    if t.second() == 0 {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    }
}

/// Check an IANA time zone name against the bundled tz database.
pub fn check_time_zone(name: &str) -> Result<(), String> {
    jiff::tz::TimeZone::get(name.trim()).map(|_| ()).map_err(|_| {
        format!(
            "unknown time zone {:?} (expected an IANA name such as \"America/Los_Angeles\" or \"Europe/Berlin\")",
            clip(name, 40)
        )
    })
}

/// Shallow RRULE check (the planner validates fully): `FREQ=` must be present and valid.
pub fn check_rrule(s: &str) -> Result<(), String> {
    let up = s.trim().trim_start_matches("RRULE:").to_ascii_uppercase();
    let freq = up
        .split(';')
        .find_map(|p| p.trim().strip_prefix("FREQ="))
        .ok_or_else(|| {
            format!(
                "not an RRULE: {:?} (expected e.g. \"FREQ=MONTHLY;BYDAY=2TU\")",
                clip(s, 60)
            )
        })?;
    match freq {
        "YEARLY" | "MONTHLY" | "WEEKLY" | "DAILY" | "HOURLY" => Ok(()),
        other => Err(format!("unsupported RRULE FREQ={other:?}")),
    }
}

fn instant_value(v: &toml::Value) -> Result<Timestamp, String> {
    match v {
        toml::Value::String(s) => parse_instant(s),
        toml::Value::Datetime(d) => parse_instant(&d.to_string()),
        _ => Err("expected an RFC 3339 instant such as \"2026-11-27T00:00:00-08:00\"".into()),
    }
}

fn date_value(v: &toml::Value) -> Result<Date, String> {
    let s = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return Err("expected a date (YYYY-MM-DD)".into()),
    };
    s.trim()
        .parse::<Date>()
        .map_err(|_| format!("not a date (YYYY-MM-DD): {:?}", clip(&s, 30)))
}

fn parse_method(s: &str) -> Result<RollbackMethod, String> {
    let n: String = s
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    match n.as_str() {
        "uninstallkb" | "uninstall" => Ok(RollbackMethod::UninstallKb),
        "snapshot" | "checkpoint" | "vmsnapshot" => Ok(RollbackMethod::Snapshot),
        "restorefrombackup" | "restore" | "backup" => Ok(RollbackMethod::RestoreFromBackup),
        "vendorprocedure" | "vendor" => Ok(RollbackMethod::VendorProcedure),
        _ => Err(format!(
            "unknown rollback method {:?} (expected uninstall_kb, snapshot, restore_from_backup or vendor_procedure)",
            clip(s, 30)
        )),
    }
}

fn method_name(m: RollbackMethod) -> &'static str {
    match m {
        RollbackMethod::UninstallKb => "uninstall_kb",
        RollbackMethod::Snapshot => "snapshot",
        RollbackMethod::RestoreFromBackup => "restore_from_backup",
        RollbackMethod::VendorProcedure => "vendor_procedure",
    }
}

fn parse_scope(s: &str) -> Result<BlackoutScope, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("global") {
        return Ok(BlackoutScope::Global);
    }
    let (kind, name) = t.split_once(':').ok_or_else(|| {
        format!("unknown scope {:?} (expected \"global\", \"site:NAME\", \"service:NAME\" or \"server:NAME\")", clip(s, 40))
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("scope {:?} names nothing", clip(s, 40)));
    }
    match kind.trim().to_ascii_lowercase().as_str() {
        "site" => Ok(BlackoutScope::Site(name.into())),
        "service" => Ok(BlackoutScope::Service(name.into())),
        "server" => Ok(BlackoutScope::Server(name.into())),
        _ => Err(format!(
            "unknown scope kind {:?} (expected site, service or server)",
            clip(kind, 20)
        )),
    }
}

fn parse_target(s: &str) -> Result<DependencyTarget, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty".into());
    }
    if let Some((k, n)) = t.split_once(':') {
        let n = n.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "service" if !n.is_empty() => return Ok(DependencyTarget::Service(n.into())),
            "server" if !n.is_empty() => return Ok(DependencyTarget::Server(n.into())),
            _ => {
                return Err(format!(
                    "expected a server name or \"service:NAME\", got {:?}",
                    clip(s, 40)
                ));
            }
        }
    }
    Ok(DependencyTarget::Server(t.into()))
}

fn positive_duration(s: &str) -> Result<SignedDuration, String> {
    let d = parse_duration(s)?;
    if d.is_positive() {
        Ok(d)
    } else {
        Err(format!("must be longer than zero: {:?}", clip(s, 20)))
    }
}

fn non_negative_duration(s: &str) -> Result<SignedDuration, String> {
    let d = parse_duration(s)?;
    if d.is_negative() {
        Err(format!("must not be negative: {:?}", clip(s, 20)))
    } else {
        Ok(d)
    }
}

/// Parse an estate file. On success the estate has passed [`Estate::validate`].
pub fn parse(source: &str, bytes: &[u8]) -> Result<Estate, ParseErrors> {
    let text = crate::input::decode_text(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let raw: RawEstate = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        let msg = e.message().trim().to_string();
        ParseError::at(source, line, None, msg)
    })?;
    let mut cx = Ctx {
        source,
        text,
        errs: ParseErrors::new(),
    };
    let estate = convert(&mut cx, raw);
    if !cx.errs.is_empty() {
        return Err(cx.errs);
    }
    let mut errs = ParseErrors::new();
    for p in estate.validate() {
        errs.push(ParseError::whole(source, p.what));
    }
    errs.into_result(estate)
}

fn check_unique(cx: &mut Ctx<'_>, what: &str, names: &[&S<String>]) {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for n in names {
        let line = cx.line(n);
        if n.get_ref().trim().is_empty() {
            cx.fail(n, &format!("{what}.name"), "empty");
            continue;
        }
        if let Some(prev) = seen.insert(n.get_ref().to_lowercase(), line) {
            cx.fail(
                n,
                &format!("{what}.name"),
                format!("{:?} is already defined on line {prev}", n.get_ref()),
            );
        }
    }
}

fn window(
    cx: &mut Ctx<'_>,
    path: &str,
    default_name: &str,
    w: &S<RawWindow>,
) -> Option<MaintenanceWindow> {
    let w = w.get_ref();
    let f = |k: &str| format!("{path}.{k}");
    let before = cx.errs.len();
    let rr = cx.check(&w.rrule, &f("rrule"), check_rrule(w.rrule.get_ref()));
    let offset_days = match &w.offset_days {
        None => Some(0),
        Some(o) => cx.check(
            o,
            &f("offset_days"),
            i32::try_from(*o.get_ref())
                .ok()
                .filter(|d| (-31..=31).contains(d))
                .ok_or_else(|| format!("must be between -31 and 31, got {}", o.get_ref())),
        ),
    };
    let start = cx.check(&w.start, &f("start"), parse_time_of_day(w.start.get_ref()));
    let duration = cx.check(
        &w.duration,
        &f("duration"),
        positive_duration(w.duration.get_ref()),
    );
    let tz = cx.check(
        &w.time_zone,
        &f("time_zone"),
        check_time_zone(w.time_zone.get_ref()),
    );
    if cx.errs.len() > before || cx.errs.truncated {
        return None;
    }
    let (_, offset_days, start, duration, _) = (rr?, offset_days?, start?, duration?, tz?);
    Some(MaintenanceWindow {
        name: w
            .name
            .as_ref()
            .map(|n| n.get_ref().trim().to_string())
            .unwrap_or_else(|| default_name.to_string()),
        rrule: w.rrule.get_ref().trim().to_string(),
        offset_days,
        start,
        duration,
        time_zone: w.time_zone.get_ref().trim().to_string(),
        emergency: w.emergency.unwrap_or(false),
    })
}

fn owner(o: &Option<RawOwner>) -> Option<Owner> {
    o.as_ref().map(|o| Owner {
        name: o.name.trim().to_string(),
        email: o.email.as_ref().map(|e| e.trim().to_string()),
    })
}

fn convert(cx: &mut Ctx<'_>, raw: RawEstate) -> Estate {
    let mut estate = Estate::default();

    if let Some(c) = &raw.capacity {
        let c = c.get_ref();
        let at_least_one = |v: &S<i64>| {
            u32::try_from(*v.get_ref())
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("must be at least 1, got {}", v.get_ref()))
        };
        let mut cap = |v: &Option<S<i64>>, field: &str| -> Option<u32> {
            let v = v.as_ref()?;
            cx.check(v, field, at_least_one(v))
        };
        let max_in_flight = cap(&c.max_in_flight, "capacity.max_in_flight");
        let max_in_flight_per_site =
            cap(&c.max_in_flight_per_site, "capacity.max_in_flight_per_site");
        let mut sites = BTreeMap::new();
        // Sites compare trimmed and case-insensitively, as servers' sites do.
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        // In file order, so that errors come in line order and a duplicate is reported at its
        // second mention (the map itself is sorted by name).
        let mut entries: Vec<(&String, &S<i64>)> = c.sites.iter().collect();
        entries.sort_by_key(|(_, v)| v.span().start);
        for (name, v) in entries {
            let field = format!("capacity.sites.{}", clip(name, 40));
            let Some(n) = cx.check(v, &field, at_least_one(v)) else {
                continue;
            };
            let key = name.trim();
            if key.is_empty() {
                cx.fail(v, &field, "empty site name");
            } else if let Some(first) = seen.insert(key.to_lowercase(), name) {
                cx.fail(
                    v,
                    &field,
                    format!("site {key:?} is listed twice (also as {first:?})"),
                );
            } else {
                sites.insert(key.to_string(), n);
            }
        }
        estate.capacity = Capacity {
            max_in_flight,
            max_in_flight_per_site,
            sites,
        };
    }

    check_unique(
        cx,
        "rings",
        &raw.rings
            .iter()
            .map(|r| &r.get_ref().name)
            .collect::<Vec<_>>(),
    );
    for (i, r) in raw.rings.iter().enumerate() {
        let r = r.get_ref();
        let p = format!("rings[{i}] ({})", clip(r.name.get_ref(), 40));
        let order = cx.check(
            &r.order,
            &format!("{p}.order"),
            u32::try_from(*r.order.get_ref())
                .map_err(|_| format!("must be 0 or more, got {}", r.order.get_ref())),
        );
        let soak = cx.check(
            &r.soak,
            &format!("{p}.soak"),
            non_negative_duration(r.soak.get_ref()),
        );
        let emergency_soak = match &r.emergency_soak {
            None => Some(None),
            Some(e) => cx
                .check(
                    e,
                    &format!("{p}.emergency_soak"),
                    non_negative_duration(e.get_ref()),
                )
                .map(Some),
        };
        if let (Some(order), Some(soak), Some(emergency_soak)) = (order, soak, emergency_soak) {
            estate.rings.push(Ring {
                name: r.name.get_ref().trim().to_string(),
                order,
                soak,
                emergency_soak,
            });
        }
    }

    let window_names: Vec<&S<String>> = raw
        .windows
        .iter()
        .filter_map(|w| w.get_ref().name.as_ref())
        .collect();
    check_unique(cx, "windows", &window_names);
    for (i, w) in raw.windows.iter().enumerate() {
        let Some(name) = w.get_ref().name.as_ref() else {
            cx.fail(w, &format!("windows[{i}].name"), "missing");
            continue;
        };
        let p = format!("windows[{i}] ({})", clip(name.get_ref(), 40));
        if let Some(mw) = window(cx, &p, name.get_ref(), w) {
            estate.windows.push(mw);
        }
    }

    for (i, b) in raw.blackouts.iter().enumerate() {
        let b = b.get_ref();
        let p = format!("blackouts[{i}] ({})", clip(b.name.get_ref(), 40));
        let scope = cx.check(
            &b.scope,
            &format!("{p}.scope"),
            parse_scope(b.scope.get_ref()),
        );
        let start = cx.check(
            &b.start,
            &format!("{p}.start"),
            instant_value(b.start.get_ref()),
        );
        let end = cx.check(&b.end, &format!("{p}.end"), instant_value(b.end.get_ref()));
        if let (Some(scope), Some(start), Some(end)) = (scope, start, end) {
            if end <= start {
                cx.fail(&b.end, &format!("{p}.end"), "must be after start");
                continue;
            }
            estate.blackouts.push(Blackout {
                name: b.name.get_ref().trim().to_string(),
                scope,
                start,
                end,
                reason: b.reason.clone(),
            });
        }
    }

    check_unique(
        cx,
        "backup_policies",
        &raw.backup_policies
            .iter()
            .map(|p| &p.get_ref().name)
            .collect::<Vec<_>>(),
    );
    for (i, bp) in raw.backup_policies.iter().enumerate() {
        let bp = bp.get_ref();
        let name = bp.name.get_ref().trim().to_string();
        let p = format!("backup_policies[{i}] ({})", clip(&name, 40));
        let max_age = cx.check(
            &bp.max_age,
            &format!("{p}.max_age"),
            positive_duration(bp.max_age.get_ref()),
        );
        let job_window = match &bp.job_window {
            None => Some(None),
            Some(w) => window(
                cx,
                &format!("{p}.job_window"),
                &format!("{name} backup job"),
                w,
            )
            .map(Some),
        };
        if let (Some(max_age), Some(job_window)) = (max_age, job_window) {
            estate.backup_policies.push(BackupPolicy {
                name,
                source: bp.source.clone(),
                max_age,
                job_window,
            });
        }
    }

    check_unique(
        cx,
        "services",
        &raw.services
            .iter()
            .map(|s| &s.get_ref().name)
            .collect::<Vec<_>>(),
    );
    for (i, s) in raw.services.iter().enumerate() {
        let sv = s.get_ref();
        let p = format!("services[{i}] ({})", clip(sv.name.get_ref(), 40));
        let budget = match (&sv.max_unavailable, &sv.max_unavailable_percent) {
            (Some(n), None) => cx.check(
                n,
                &format!("{p}.max_unavailable"),
                u32::try_from(*n.get_ref())
                    .map(DisruptionBudget::MaxUnavailable)
                    .map_err(|_| format!("must be 0 or more, got {}", n.get_ref())),
            ),
            (None, Some(n)) => cx.check(
                n,
                &format!("{p}.max_unavailable_percent"),
                u8::try_from(*n.get_ref())
                    .ok()
                    .filter(|v| *v <= 100)
                    .map(DisruptionBudget::MaxUnavailablePercent)
                    .ok_or_else(|| format!("must be between 0 and 100, got {}", n.get_ref())),
            ),
            (Some(n), Some(_)) => {
                cx.fail(
                    n,
                    &format!("{p}.max_unavailable"),
                    "give max_unavailable or max_unavailable_percent, not both",
                );
                None
            }
            (None, None) => {
                cx.fail(
                    &sv.name,
                    &format!("{p}.max_unavailable"),
                    "missing: every service needs max_unavailable or max_unavailable_percent",
                );
                None
            }
        };
        if let Some(budget) = budget {
            estate.services.push(Service {
                name: sv.name.get_ref().trim().to_string(),
                members: sv.members.iter().map(|m| m.trim().to_string()).collect(),
                budget,
                owner: owner(&sv.owner),
            });
        }
    }

    for (i, d) in raw.dependencies.iter().enumerate() {
        let d = d.get_ref();
        let p = format!("dependencies[{i}]");
        let a = cx.check(
            &d.dependent,
            &format!("{p}.dependent"),
            parse_target(d.dependent.get_ref()),
        );
        let b = cx.check(
            &d.depends_on,
            &format!("{p}.depends_on"),
            parse_target(d.depends_on.get_ref()),
        );
        if let (Some(dependent), Some(depends_on)) = (a, b) {
            estate.dependencies.push(Dependency {
                dependent,
                depends_on,
            });
        }
    }

    if let Some(c) = &raw.coverage {
        let mut ws = Vec::new();
        for (i, w) in c.get_ref().windows.iter().enumerate() {
            if let Some(mw) = window(
                cx,
                &format!("coverage.windows[{i}]"),
                &format!("coverage {}", i + 1),
                w,
            ) {
                ws.push(mw);
            }
        }
        estate.coverage = Some(Coverage { windows: ws });
    }

    match &raw.servers {
        None => {
            cx.errs.push(ParseError::at(
                cx.source,
                None,
                Some("servers"),
                "missing: the estate needs at least one [[servers]] table",
            ));
        }
        Some(list) => {
            if list.is_empty() {
                cx.errs
                    .push(ParseError::at(cx.source, None, Some("servers"), "empty"));
            }
            let mut seen: BTreeMap<String, u64> = BTreeMap::new();
            for (i, s) in list.iter().enumerate() {
                let line = cx.line(&s.get_ref().name);
                let key = s.get_ref().name.get_ref().trim().to_lowercase();
                if let Some(prev) = seen.insert(key, line) {
                    let p = format!("servers[{i}] ({})", clip(s.get_ref().name.get_ref(), 40));
                    cx.fail(
                        &s.get_ref().name,
                        &format!("{p}.name"),
                        format!(
                            "{:?} is already listed on line {prev}",
                            s.get_ref().name.get_ref()
                        ),
                    );
                    continue;
                }
                if let Some(sv) = server(cx, i, s.get_ref()) {
                    estate.servers.push(sv);
                }
                if cx.errs.truncated {
                    break;
                }
            }
        }
    }
    estate
}

fn server(cx: &mut Ctx<'_>, i: usize, s: &RawServer) -> Option<Server> {
    let name = s.name.get_ref().trim().to_string();
    let p = format!("servers[{i}] ({})", clip(&name, 40));
    let f = |k: &str| format!("{p}.{k}");
    let before = cx.errs.len();
    if !valid_server_name(&name) {
        cx.fail(
            &s.name,
            &f("name"),
            format!(
                "not a host name: {:?} (letters, digits, '-', '_', '.')",
                clip(&name, 40)
            ),
        );
    }
    let os =
        s.os.get_ref()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
    if !os.to_lowercase().contains("windows") {
        cx.fail(
            &s.os,
            &f("os"),
            format!(
                "not a Windows OS: {:?} (e.g. \"Windows Server 2022 Datacenter\")",
                clip(&os, 40)
            ),
        );
    }
    let build = match &s.build {
        None => None,
        Some(b) => cx.check(
            b,
            &f("build"),
            b.get_ref().parse::<OsBuild>().map_err(|e| e.to_string()),
        ),
    };
    let release = match &s.build {
        Some(b) => cx
            .check(b, &f("build"), release_of(&os, build.as_ref()))
            .flatten(),
        None => release_of(&os, None).ok().flatten(),
    };
    let installation = match &s.installation {
        None => None,
        Some(v) => cx.check(
            v,
            &f("installation"),
            Installation::parse(v.get_ref()).ok_or_else(|| {
                format!("unknown installation {:?} (expected \"Desktop Experience\" or \"Server Core\")", clip(v.get_ref(), 40))
            }),
        ),
    };
    let tier = match &s.tier {
        None => Some(Tier::default()),
        Some(t) => cx.check(
            t,
            &f("tier"),
            u8::try_from(*t.get_ref())
                .ok()
                .and_then(Tier::new)
                .ok_or_else(|| format!("must be 1 (most critical) to 4, got {}", t.get_ref())),
        ),
    };
    let exposure = match &s.exposure {
        None => Some(Default::default()),
        Some(e) => cx.check(e, &f("exposure"), parse_exposure(e.get_ref())),
    };
    let kbs = match &s.kbs {
        None => Some(Default::default()),
        Some(k) => cx.check(k, &f("kbs"), parse_kb_list(&k.get_ref().join(" "))),
    };
    let estimated_duration = match &s.estimated_duration {
        None => Some(None),
        Some(d) => cx
            .check(d, &f("estimated_duration"), positive_duration(d.get_ref()))
            .map(Some),
    };
    let rollback = match &s.rollback {
        None => Some(None),
        Some(r) => {
            let rr = r.get_ref();
            let method = cx.check(
                &rr.method,
                &f("rollback.method"),
                parse_method(rr.method.get_ref()),
            );
            let tested_on = match &rr.tested_on {
                None => Some(None),
                Some(t) => cx
                    .check(t, &f("rollback.tested_on"), date_value(t.get_ref()))
                    .map(Some),
            };
            match (method, tested_on) {
                (Some(method), Some(tested_on)) => Some(Some(RollbackPlan {
                    method,
                    who: rr.who.clone(),
                    tested_on,
                    notes: rr.notes.clone(),
                })),
                _ => None,
            }
        }
    };
    let instant = |cx: &mut Ctx<'_>, v: &Option<S<toml::Value>>, k: &str| match v {
        None => Some(None),
        Some(t) => cx.check(t, &f(k), instant_value(t.get_ref())).map(Some),
    };
    let last_boot = instant(cx, &s.last_boot, "last_boot");
    let last_scan = instant(cx, &s.last_scan, "last_scan");
    if cx.errs.len() > before || cx.errs.truncated {
        return None;
    }
    Some(Server {
        name,
        fqdn: s
            .fqdn
            .as_ref()
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty()),
        os,
        release,
        installation,
        build,
        hotpatch: s.hotpatch.unwrap_or(false),
        roles: s.roles.iter().map(|r| Role::parse(r)).collect(),
        owner: owner(&s.owner),
        tier: tier?,
        environment: s.environment.clone(),
        site: s.site.clone(),
        exposure: exposure?,
        tags: s.tags.clone(),
        installed_kbs: kbs?,
        pending_reboot: s.pending_reboot.clone(),
        last_boot: last_boot?,
        last_scan: last_scan?,
        windows: s.windows.clone(),
        ring: s.ring.clone(),
        backup_policy: s.backup_policy.clone(),
        rollback: rollback?,
        estimated_duration: estimated_duration?,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

/// A TOML basic string, escaped.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn arr(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| q(&s)).collect();
    format!("[{}]", v.join(", "))
}

fn owner_inline(o: &Owner) -> String {
    match &o.email {
        Some(e) => format!("{{ name = {}, email = {} }}", q(&o.name), q(e)),
        None => format!("{{ name = {} }}", q(&o.name)),
    }
}

fn window_inline(w: &MaintenanceWindow, name: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(n) = name {
        parts.push(format!("name = {}", q(n)));
    }
    parts.push(format!("rrule = {}", q(&w.rrule)));
    if w.offset_days != 0 {
        parts.push(format!("offset_days = {}", w.offset_days));
    }
    parts.push(format!("start = {}", q(&format_time(w.start))));
    parts.push(format!("duration = {}", q(&format_duration(w.duration))));
    parts.push(format!("time_zone = {}", q(&w.time_zone)));
    if w.emergency {
        parts.push("emergency = true".into());
    }
    format!("{{ {} }}", parts.join(", "))
}

fn target(t: &DependencyTarget) -> String {
    match t {
        DependencyTarget::Server(n) => n.clone(),
        DependencyTarget::Service(n) => format!("service:{n}"),
    }
}

/// Write an estate in the documented TOML format. `parse(to_toml(e))` gives `e` back for any
/// estate that `parse` produced (instants are written in UTC).
pub fn to_toml(e: &Estate) -> String {
    let mut o = String::new();
    // `write!` into a String cannot fail; results are ignored rather than unwrapped.
    if e.capacity.max_in_flight.is_some()
        || e.capacity.max_in_flight_per_site.is_some()
        || !e.capacity.sites.is_empty()
    {
        o.push_str("[capacity]\n");
        if let Some(n) = e.capacity.max_in_flight {
            let _ = writeln!(o, "max_in_flight = {n}");
        }
        if let Some(n) = e.capacity.max_in_flight_per_site {
            let _ = writeln!(o, "max_in_flight_per_site = {n}");
        }
        if !e.capacity.sites.is_empty() {
            o.push_str("\n[capacity.sites]\n");
            for (site, n) in &e.capacity.sites {
                let _ = writeln!(o, "{} = {n}", q(site));
            }
        }
        o.push('\n');
    }
    for r in &e.rings {
        let _ = writeln!(
            o,
            "[[rings]]\nname = {}\norder = {}\nsoak = {}",
            q(&r.name),
            r.order,
            q(&format_duration(r.soak))
        );
        if let Some(s) = r.emergency_soak {
            let _ = writeln!(o, "emergency_soak = {}", q(&format_duration(s)));
        }
        o.push('\n');
    }
    for w in &e.windows {
        let _ = writeln!(
            o,
            "[[windows]]\nname = {}\nrrule = {}",
            q(&w.name),
            q(&w.rrule)
        );
        if w.offset_days != 0 {
            let _ = writeln!(o, "offset_days = {}", w.offset_days);
        }
        let _ = writeln!(
            o,
            "start = {}\nduration = {}\ntime_zone = {}",
            q(&format_time(w.start)),
            q(&format_duration(w.duration)),
            q(&w.time_zone)
        );
        if w.emergency {
            o.push_str("emergency = true\n");
        }
        o.push('\n');
    }
    for b in &e.blackouts {
        let scope = match &b.scope {
            BlackoutScope::Global => "global".to_string(),
            BlackoutScope::Site(n) => format!("site:{n}"),
            BlackoutScope::Service(n) => format!("service:{n}"),
            BlackoutScope::Server(n) => format!("server:{n}"),
        };
        let _ = writeln!(
            o,
            "[[blackouts]]\nname = {}\nscope = {}\nstart = {}\nend = {}",
            q(&b.name),
            q(&scope),
            q(&b.start.to_string()),
            q(&b.end.to_string())
        );
        if let Some(r) = &b.reason {
            let _ = writeln!(o, "reason = {}", q(r));
        }
        o.push('\n');
    }
    for p in &e.backup_policies {
        let _ = writeln!(
            o,
            "[[backup_policies]]\nname = {}\nsource = {}\nmax_age = {}",
            q(&p.name),
            q(&p.source),
            q(&format_duration(p.max_age))
        );
        if let Some(w) = &p.job_window {
            let default = format!("{} backup job", p.name);
            let name = (w.name != default).then_some(w.name.as_str());
            let _ = writeln!(o, "job_window = {}", window_inline(w, name));
        }
        o.push('\n');
    }
    for s in &e.services {
        let _ = writeln!(
            o,
            "[[services]]\nname = {}\nmembers = {}",
            q(&s.name),
            arr(s.members.iter().cloned())
        );
        match s.budget {
            DisruptionBudget::MaxUnavailable(n) => {
                let _ = writeln!(o, "max_unavailable = {n}");
            }
            DisruptionBudget::MaxUnavailablePercent(n) => {
                let _ = writeln!(o, "max_unavailable_percent = {n}");
            }
        }
        if let Some(ow) = &s.owner {
            let _ = writeln!(o, "owner = {}", owner_inline(ow));
        }
        o.push('\n');
    }
    for d in &e.dependencies {
        let _ = writeln!(
            o,
            "[[dependencies]]\ndependent = {}\ndepends_on = {}\n",
            q(&target(&d.dependent)),
            q(&target(&d.depends_on))
        );
    }
    if let Some(c) = &e.coverage {
        let ws: Vec<String> = c
            .windows
            .iter()
            .map(|w| window_inline(w, Some(&w.name)))
            .collect();
        let _ = writeln!(o, "[coverage]\nwindows = [{}]\n", ws.join(", "));
    }
    for s in &e.servers {
        let _ = writeln!(o, "[[servers]]\nname = {}", q(&s.name));
        if let Some(f) = &s.fqdn {
            let _ = writeln!(o, "fqdn = {}", q(f));
        }
        let _ = writeln!(o, "os = {}", q(&s.os));
        if let Some(b) = s.build {
            let _ = writeln!(o, "build = {}", q(&b.to_string()));
        }
        if let Some(i) = s.installation {
            let _ = writeln!(o, "installation = {}", q(i.name()));
        }
        let _ = writeln!(o, "hotpatch = {}", s.hotpatch);
        let _ = writeln!(
            o,
            "roles = {}",
            arr(s.roles.iter().map(|r| r.label().to_string()))
        );
        if let Some(ow) = &s.owner {
            let _ = writeln!(o, "owner = {}", owner_inline(ow));
        }
        let _ = writeln!(o, "tier = {}", s.tier.0);
        if let Some(v) = &s.environment {
            let _ = writeln!(o, "environment = {}", q(v));
        }
        if let Some(v) = &s.site {
            let _ = writeln!(o, "site = {}", q(v));
        }
        let _ = writeln!(o, "exposure = {}", q(exposure_name(s.exposure)));
        let _ = writeln!(o, "tags = {}", arr(s.tags.iter().cloned()));
        let _ = writeln!(
            o,
            "kbs = {}",
            arr(s.installed_kbs.iter().map(|k| k.to_string()))
        );
        let _ = writeln!(o, "windows = {}", arr(s.windows.iter().cloned()));
        if let Some(v) = &s.ring {
            let _ = writeln!(o, "ring = {}", q(v));
        }
        if let Some(v) = &s.backup_policy {
            let _ = writeln!(o, "backup_policy = {}", q(v));
        }
        if let Some(d) = s.estimated_duration {
            let _ = writeln!(o, "estimated_duration = {}", q(&format_duration(d)));
        }
        let _ = writeln!(
            o,
            "pending_reboot = {}",
            arr(s.pending_reboot.iter().cloned())
        );
        if let Some(t) = s.last_boot {
            let _ = writeln!(o, "last_boot = {}", q(&t.to_string()));
        }
        if let Some(t) = s.last_scan {
            let _ = writeln!(o, "last_scan = {}", q(&t.to_string()));
        }
        if let Some(r) = &s.rollback {
            let mut parts = vec![format!("method = {}", q(method_name(r.method)))];
            if let Some(w) = &r.who {
                parts.push(format!("who = {}", q(w)));
            }
            if let Some(d) = r.tested_on {
                parts.push(format!("tested_on = {}", q(&d.to_string())));
            }
            if let Some(n) = &r.notes {
                parts.push(format!("notes = {}", q(n)));
            }
            let _ = writeln!(o, "rollback = {{ {} }}", parts.join(", "));
        }
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
[[windows]]
name = "sat"
rrule = "FREQ=MONTHLY;BYDAY=2TU"
offset_days = 4
start = "22:00"
duration = "4h"
time_zone = "America/Los_Angeles"

[[servers]]
name = "DC-01"
os = "Windows Server 2022 Datacenter"
build = "10.0.20348.2582"
windows = ["sat"]
"#;

    #[test]
    fn parses_small() {
        let e = parse("e.toml", SMALL.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(e.servers.len(), 1);
        assert_eq!(e.windows[0].offset_days, 4);
        assert_eq!(e.windows[0].duration.as_secs(), 4 * 3600);
    }

    #[test]
    fn errors_name_line_and_field() {
        let bad = SMALL.replace("10.0.20348.2582", "10.0.x");
        let e = parse("e.toml", bad.as_bytes()).err().unwrap_or_default();
        assert_eq!(
            e.errors[0].to_string(),
            "e.toml:13: field \"servers[0] (DC-01).build\": not an OS build: \"10.0.x\" (expected major.minor.build[.revision], e.g. 10.0.20348.2582)"
        );
        let bad = SMALL.replace("America/Los_Angeles", "Mars/Olympus_Mons");
        let e = parse("e.toml", bad.as_bytes()).err().unwrap_or_default();
        assert_eq!(e.errors[0].line, Some(8));
        assert!(e.errors[0].message.contains("unknown time zone"));
        let bad = SMALL.replace("windows = [\"sat\"]", "windoes = [\"sat\"]");
        let e = parse("e.toml", bad.as_bytes()).err().unwrap_or_default();
        assert_eq!(e.errors[0].line, Some(14));
        assert!(
            e.errors[0].message.contains("unknown field"),
            "{}",
            e.errors[0]
        );
        let bad = SMALL.replace("windows = [\"sat\"]", "windows = [\"sun\"]");
        let e = parse("e.toml", bad.as_bytes()).err().unwrap_or_default();
        assert!(e.errors[0].message.contains("unknown maintenance window"));
        let e = parse("e.toml", b"[capacity]\nmax_in_flight = 3\n")
            .err()
            .unwrap_or_default();
        assert_eq!(e.errors[0].field.as_deref(), Some("servers"));
    }

    #[test]
    fn round_trips() {
        let a = parse("e.toml", SMALL.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        let t = to_toml(&a);
        let b = parse("out.toml", t.as_bytes()).unwrap_or_else(|e| unreachable!("{e}\n{t}"));
        assert_eq!(a, b);
    }

    #[test]
    fn small_values() {
        assert!(parse_time_of_day("22:00").is_ok());
        assert!(parse_time_of_day("24:00").is_err());
        assert!(parse_time_of_day("7:00").is_err());
        assert!(check_rrule("FREQ=WEEKLY;BYDAY=MO").is_ok());
        assert!(check_rrule("BYDAY=MO").is_err());
        assert!(check_time_zone("Europe/Berlin").is_ok());
        assert!(check_time_zone("Nowhere/Special").is_err());
        let v: Result<toml::Table, _> = toml::from_str(&format!("k = {}", q("a\"b'\\c\n")));
        assert_eq!(
            v.ok()
                .and_then(|t| t.get("k").and_then(|v| v.as_str().map(str::to_string))),
            Some("a\"b'\\c\n".to_string())
        );
    }

    #[test]
    fn capacity_per_site() {
        let head = "[capacity]\nmax_in_flight_per_site = 2\n\n[capacity.sites]\n\"Seattle \" = 3\nBranch = 1\n";
        let text = format!("{head}{SMALL}");
        let e = parse("e.toml", text.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(e.capacity.max_in_flight_per_site, Some(2));
        assert_eq!(e.capacity.site_limit("seattle"), Some(3));
        assert_eq!(e.capacity.site_limit("BRANCH"), Some(1));
        assert_eq!(e.capacity.site_limit("Frankfurt"), Some(2));
        let back =
            parse("out.toml", to_toml(&e).as_bytes()).unwrap_or_else(|err| unreachable!("{err}"));
        assert_eq!(back.capacity, e.capacity);
        // Bad values and duplicates name the line and the field.
        let bad = format!("{}{SMALL}", head.replace("Branch = 1", "Branch = 0"));
        let err = parse("e.toml", bad.as_bytes()).err().unwrap_or_default();
        assert_eq!(
            err.errors[0].to_string(),
            "e.toml:6: field \"capacity.sites.Branch\": must be at least 1, got 0"
        );
        let bad = format!("{}{SMALL}", head.replace("Branch = 1", "SEATTLE = 1"));
        let err = parse("e.toml", bad.as_bytes()).err().unwrap_or_default();
        assert_eq!(err.errors[0].line, Some(6));
        assert!(
            err.errors[0].message.contains("listed twice"),
            "{}",
            err.errors[0]
        );
        let bad = format!("{}{SMALL}", head.replace("Branch = 1", "Branch = \"one\""));
        let err = parse("e.toml", bad.as_bytes()).err().unwrap_or_default();
        assert_eq!(err.errors[0].line, Some(6), "{}", err.errors[0]);
    }
}
