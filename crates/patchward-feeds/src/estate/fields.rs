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
