//! The estate file (TOML), exactly as documented in `docs/estate-format.md`: servers and
//! everything the planner needs (capacity, rings, maintenance windows, blackouts, backup
//! policies, services, dependencies, coverage). [`parse`] reads it into an [`Estate`] and runs
//! [`Estate::validate`]; [`to_toml`] writes an estate back in the same format.
//!
//! Errors name the file, the line and the field (`estate.toml:42: field "servers[3] (DC-01).build":
//! not an OS build: …`). Unknown keys are errors (a typo must not silently drop a setting).

use crate::error::{LineIndex, ParseError, ParseErrors, line_of_offset};
use crate::inventory_csv::{
    exposure_name, parse_exposure, parse_kb_list, release_of, valid_server_name,
};
use crate::util::{clip, format_duration, parse_duration, parse_instant};
use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use patchward_core::OsBuild;
use patchward_core::calendar::Recurrence;
use patchward_core::inventory::{
    BackupPolicy, Blackout, BlackoutScope, Capacity, Coverage, Dependency, DependencyTarget,
    DisruptionBudget, Estate, HealthProbe, MaintenanceWindow, Owner, RebootPolicy, Ring, Role,
    RollbackMethod, RollbackPlan, Server, Service, Tier,
};
use patchward_core::product::Installation;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use toml::Spanned;

mod fields;
mod server;
mod write;

use fields::*;
pub use fields::{check_rrule, check_time_zone, parse_time_of_day};
use server::{owner, self_dependency, server};
pub use write::to_toml;

type S<T> = Spanned<T>;

/// The top-level sections of an estate file (tables and arrays of tables).
pub const SECTIONS: &[&str] = &[
    "capacity",
    "rings",
    "windows",
    "blackouts",
    "backup_policies",
    "services",
    "dependencies",
    "coverage",
    "servers",
];

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
    sites: std::collections::BTreeMap<String, S<i64>>,
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
    #[serde(default)]
    probes: Vec<S<RawProbe>>,
    probe_grace: Option<S<String>>,
}

/// One health probe: exactly one of `http`, `tcp`, `windows_service`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    http: Option<S<String>>,
    status: Option<S<i64>>,
    body_contains: Option<S<String>>,
    tcp: Option<S<toml::Value>>,
    windows_service: Option<S<String>>,
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
    automatic: Option<S<bool>>,
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
    reboot: Option<S<String>>,
    #[serde(default)]
    pending_reboot: Vec<String>,
    rollback: Option<S<RawRollback>>,
    last_boot: Option<S<toml::Value>>,
    last_scan: Option<S<toml::Value>>,
}

/// Conversion context: the file, its line index (for line numbers) and the collected errors.
struct Ctx<'a> {
    source: &'a str,
    lines: LineIndex,
    errs: ParseErrors,
}

impl Ctx<'_> {
    fn line<T>(&self, s: &S<T>) -> u64 {
        self.lines.line(s.span().start)
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

/// Parse an estate file. On success the estate has passed [`Estate::validate`].
pub fn parse(source: &str, bytes: &[u8]) -> Result<Estate, ParseErrors> {
    let text = crate::input::decode_text(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let raw: RawEstate = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        let msg = e.message().trim().to_string();
        let field = e.span().and_then(|s| field_at(text, s.start, &msg));
        ParseError::at(source, line, field.as_deref(), msg)
    })?;
    let mut cx = Ctx {
        source,
        lines: LineIndex::new(text),
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
        let mut sites = std::collections::BTreeMap::new();
        // Sites compare trimmed and case-insensitively, as servers' sites do.
        let mut seen: std::collections::BTreeMap<String, &str> = std::collections::BTreeMap::new();
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
        let mut probes = Vec::new();
        for (k, raw) in sv.probes.iter().enumerate() {
            if let Some(probe) = probe(cx, &format!("{p}.probes[{k}]"), raw) {
                probes.push(probe);
            }
        }
        let probe_grace = match &sv.probe_grace {
            None => Some(None),
            Some(g) => cx
                .check(
                    g,
                    &format!("{p}.probe_grace"),
                    non_negative_duration(g.get_ref()).and_then(|d| {
                        // Within the job's lease (15 minutes) with room to report.
                        if d > SignedDuration::from_mins(10) {
                            Err(format!(
                                "must be 10 minutes or less, got {:?}",
                                clip(g.get_ref(), 20)
                            ))
                        } else {
                            Ok(d)
                        }
                    }),
                )
                .map(Some),
        };
        if let (Some(budget), Some(probe_grace)) = (budget, probe_grace) {
            estate.services.push(Service {
                probes,
                probe_grace,
                name: sv.name.get_ref().trim().to_string(),
                members: sv.members.iter().map(|m| m.trim().to_string()).collect(),
                budget,
                owner: owner(&sv.owner),
            });
        }
    }

    // Service members by service name, to see a server depend on itself through a service.
    let members: HashMap<String, Vec<String>> = estate
        .services
        .iter()
        .map(|s| (s.name.to_lowercase(), s.members.clone()))
        .collect();
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
            if let Some(why) = self_dependency(&members, &dependent, &depends_on) {
                cx.fail(&d.depends_on, &format!("{p}.depends_on"), why);
                continue;
            }
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

/// The keys open at the end of `prefix`, a line of TOML up to an error: `a = { b = [{ c = 1 },
/// { d = ` gives `a.b[1].d` as `["a", "b[1]", "d"]` (strings skipped).
fn inline_path(prefix: &str) -> Vec<String> {
    // Per open table or array: its name, and for an array the element now open.
    let mut stack: Vec<(String, Option<usize>)> = Vec::new();
    let mut key: Option<String> = None;
    let mut word = String::new();
    let mut chars = prefix.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                // A string: skip to its end (basic strings may escape the quote).
                while let Some(d) = chars.next() {
                    if d == '\\' && c == '"' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
                word.clear();
            }
            '=' => {
                key = Some(std::mem::take(&mut word).trim().to_string());
            }
            '{' => {
                let name = match stack.last() {
                    Some((_, Some(i))) if key.is_none() => format!("[{i}]"),
                    _ => key.take().unwrap_or_default(),
                };
                stack.push((name, None));
                word.clear();
            }
            '[' => {
                stack.push((key.take().unwrap_or_default(), Some(0)));
                word.clear();
            }
            '}' | ']' => {
                stack.pop();
                key = None;
                word.clear();
            }
            ',' => {
                if let Some((_, Some(i))) = stack.last_mut() {
                    *i += 1;
                }
                key = None;
                word.clear();
            }
            // Keys and bare values (numbers, booleans): a key's value keeps it open until ','.
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' => word.push(c),
            _ => {}
        }
    }
    let mut out: Vec<String> = Vec::new();
    for (name, _) in &stack {
        if name.starts_with('[') {
            if let Some(last) = out.last_mut() {
                last.push_str(name);
            }
        } else if !name.is_empty() {
            out.push(name.clone());
        }
    }
    // Inside an array whose element is not a table: the element's index.
    if let Some((_, Some(i))) = stack.last()
        && let Some(last) = out.last_mut()
    {
        last.push_str(&format!("[{i}]"));
    }
    match key {
        Some(k) if !k.is_empty() => out.push(k),
        _ if !word.trim().is_empty() => out.push(word.trim().to_string()),
        _ => {}
    }
    out
}

/// The field a TOML error at byte `at` is about, as the other errors name fields
/// (`servers[2] (SQL-01).rollback.automatic`): the table it is in (an array of tables counted,
/// with its `name`), the inline table and key before the value, or the field a "missing field"
/// message names.
fn field_at(text: &str, at: usize, message: &str) -> Option<String> {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    // The table: the last header at or before this line.
    let mut table: Option<String> = None;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut header_end = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > at {
            break;
        }
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            table = Some(format!("{name}[{n}]"));
            *n += 1;
            header_end = offset + line.len();
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = Some(name.trim().to_string());
            header_end = offset + line.len();
        }
        offset += line.len();
    }
    // The record's name, for arrays of tables.
    if let Some(t) = table.as_mut()
        && t.ends_with(']')
    {
        let body = &text[header_end.min(text.len())..];
        let name = body
            .lines()
            .take_while(|l| !l.trim_start().starts_with('['))
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
            });
        if let Some(n) = name {
            t.push_str(&format!(" ({})", clip(&n, 40)));
        }
    }
    let mut path: Vec<String> = table.into_iter().collect();
    // The keys, inline tables and arrays open before the error on its line.
    let mut inner = inline_path(&text[line_start..at]);
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.split(p).nth(1))
        .and_then(|r| r.split('`').next());
    if let Some(name) = named {
        // The key the span points at is the unknown one: name it once.
        if inner.last().is_some_and(|k| k == name) {
            inner.pop();
        }
        inner.push(name.to_string());
    }
    path.extend(inner);
    (!path.is_empty()).then(|| path.join("."))
}

#[cfg(test)]
mod tests {
    use super::write::q;
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
        let la = "America/Los_Angeles";
        assert!(check_rrule("FREQ=WEEKLY;BYDAY=MO", la).is_ok());
        assert!(check_rrule("BYDAY=MO", la).is_err());
        // The full rule is checked here, not only FREQ.
        assert!(check_rrule("FREQ=MONTHLY;BYDAY=9ZZ", la).is_err());
        assert!(check_rrule("FREQ=WEEKLY;INTERVAL=2;BYDAY=SA", la).is_err());
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
