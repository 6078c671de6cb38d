//! Field values of the estate file: times of day, zones, window rules (one parser with the
//! planner), instants, dates, rollback methods, blackout scopes, dependency targets, durations.

use super::*;

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

pub(super) fn format_time(t: Time) -> String {
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

/// Check a window rule with the parser the planner uses ([`Recurrence::for_window`]): RFC 5545
/// `RRULE` with an optional `DTSTART` line before or after it; a `DTSTART;TZID=` must be the
/// window's `time_zone`.
pub fn check_rrule(s: &str, time_zone: &str) -> Result<(), String> {
    let r = if check_time_zone(time_zone).is_ok() {
        Recurrence::for_window(s, time_zone.trim())
    } else {
        // The zone is reported on its own field; still check the rule itself.
        Recurrence::parse(s)
    };
    r.map(|_| ()).map_err(|e| {
        format!(
            "{} (rule {:?}; expected e.g. \"FREQ=MONTHLY;BYDAY=2TU\" or \"DTSTART;TZID=Europe/Berlin:20261110T220000\\nRRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU\")",
            e.0,
            clip(s, 80)
        )
    })
}

pub(super) fn instant_value(v: &toml::Value) -> Result<Timestamp, String> {
    match v {
        toml::Value::String(s) => parse_instant(s),
        toml::Value::Datetime(d) => parse_instant(&d.to_string()),
        _ => Err("expected an RFC 3339 instant such as \"2026-11-27T00:00:00-08:00\"".into()),
    }
}

pub(super) fn date_value(v: &toml::Value) -> Result<Date, String> {
    let s = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return Err("expected a date (YYYY-MM-DD)".into()),
    };
    s.trim()
        .parse::<Date>()
        .map_err(|_| format!("not a date (YYYY-MM-DD): {:?}", clip(&s, 30)))
}

pub(super) fn parse_method(s: &str) -> Result<RollbackMethod, String> {
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

pub(super) fn method_name(m: RollbackMethod) -> &'static str {
    match m {
        RollbackMethod::UninstallKb => "uninstall_kb",
        RollbackMethod::Snapshot => "snapshot",
        RollbackMethod::RestoreFromBackup => "restore_from_backup",
        RollbackMethod::VendorProcedure => "vendor_procedure",
    }
}

pub(super) fn parse_scope(s: &str) -> Result<BlackoutScope, String> {
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

pub(super) fn parse_target(s: &str) -> Result<DependencyTarget, String> {
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

pub(super) fn positive_duration(s: &str) -> Result<SignedDuration, String> {
    let d = parse_duration(s)?;
    if d.is_positive() {
        Ok(d)
    } else {
        Err(format!("must be longer than zero: {:?}", clip(s, 20)))
    }
}

pub(super) fn non_negative_duration(s: &str) -> Result<SignedDuration, String> {
    let d = parse_duration(s)?;
    if d.is_negative() {
        Err(format!("must not be negative: {:?}", clip(s, 20)))
    } else {
        Ok(d)
    }
}

pub(super) fn window(
    cx: &mut Ctx<'_>,
    path: &str,
    default_name: &str,
    w: &S<RawWindow>,
) -> Option<MaintenanceWindow> {
    let w = w.get_ref();
    let f = |k: &str| format!("{path}.{k}");
    let before = cx.errs.len();
    let rr = cx.check(
        &w.rrule,
        &f("rrule"),
        check_rrule(w.rrule.get_ref(), w.time_zone.get_ref()),
    );
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

/// A dependency target as written in the file (`APP-01`, `service:sql-prod`).
pub(super) fn target(t: &DependencyTarget) -> String {
    match t {
        DependencyTarget::Server(n) => n.clone(),
        DependencyTarget::Service(n) => format!("service:{n}"),
    }
}

/// A service's health probe from its raw table, each error naming the field under `at`.
pub(super) fn probe(cx: &mut Ctx<'_>, at: &str, raw: &S<RawProbe>) -> Option<HealthProbe> {
    let r = raw.get_ref();
    let kinds = [
        r.http.is_some(),
        r.tcp.is_some(),
        r.windows_service.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        cx.fail(
            raw,
            at,
            "give exactly one of http = \"URL\", tcp = PORT or \"HOST:PORT\", \
             windows_service = \"NAME\"",
        );
        return None;
    }
    if r.http.is_none() {
        for (given, key) in [
            (r.status.is_some(), "status"),
            (r.body_contains.is_some(), "body_contains"),
        ] {
            if given {
                cx.fail(raw, &format!("{at}.{key}"), "only an http probe has it");
                return None;
            }
        }
    }
    if let Some(url) = &r.http {
        let url_ok = cx.check(url, &format!("{at}.http"), probe_url(url.get_ref()));
        let status = match &r.status {
            None => Some(200),
            Some(st) => cx.check(
                st,
                &format!("{at}.status"),
                u16::try_from(*st.get_ref())
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| format!("an HTTP status is 100 to 599, got {}", st.get_ref())),
            ),
        };
        let body = match &r.body_contains {
            None => Some(None),
            Some(b) if b.get_ref().is_empty() => {
                cx.fail(
                    b,
                    &format!("{at}.body_contains"),
                    "empty: leave it out instead",
                );
                None
            }
            Some(b) => Some(Some(b.get_ref().clone())),
        };
        return Some(HealthProbe::Http {
            url: url_ok?,
            status: status?,
            body_contains: body?,
        });
    }
    if let Some(t) = &r.tcp {
        let (host, port) = cx.check(t, &format!("{at}.tcp"), tcp_target(t.get_ref()))?;
        return Some(HealthProbe::Tcp { host, port });
    }
    let name = r.windows_service.as_ref()?;
    let n = name.get_ref().trim();
    let ok = !n.is_empty()
        && n.len() <= 256
        && !n.contains(['/', '\\'])
        && !n.chars().any(char::is_control);
    if !ok {
        cx.fail(
            name,
            &format!("{at}.windows_service"),
            format!(
                "not a Windows service name (its short name, e.g. \"MSSQLSERVER\"): {:?}",
                clip(n, 60)
            ),
        );
        return None;
    }
    Some(HealthProbe::WindowsService {
        name: n.to_string(),
    })
}

/// An `http://` or `https://` URL with a host.
fn probe_url(s: &str) -> Result<String, String> {
    let t = s.trim();
    let rest = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .ok_or_else(|| {
            format!(
                "not an http:// or https:// URL: {:?} (e.g. \"http://localhost:8080/health\")",
                clip(t, 80)
            )
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("not a URL with a host: {:?}", clip(t, 80)));
    }
    Ok(t.to_string())
}

/// `tcp = 1433` (this server) or `tcp = "HOST:PORT"` (`"[::1]:443"` for IPv6).
fn tcp_target(v: &toml::Value) -> Result<(String, u16), String> {
    let port = |n: i64| {
        u16::try_from(n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("a TCP port is 1 to 65535, got {n}"))
    };
    match v {
        toml::Value::Integer(n) => Ok(("localhost".into(), port(*n)?)),
        toml::Value::String(s) => {
            let bad = || format!("expected PORT or \"HOST:PORT\", got {:?}", clip(s, 80));
            let (host, p) = s.trim().rsplit_once(':').ok_or_else(bad)?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(bad());
            }
            Ok((
                host.to_string(),
                port(p.parse::<i64>().map_err(|_| bad())?)?,
            ))
        }
        other => Err(format!(
            "expected PORT or \"HOST:PORT\", got a {}",
            other.type_str()
        )),
    }
}
