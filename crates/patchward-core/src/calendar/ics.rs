//! iCalendar (RFC 5545 `.ics`) import of maintenance windows and blackouts. Text in, domain
//! types out; the caller reads the file.
//!
//! Each `VEVENT` needs `DTSTART` (`;TZID=Zone:YYYYMMDDTHHMMSS`, UTC `…Z`, or an all-day
//! `;VALUE=DATE:YYYYMMDD`) and either `DTEND` or `DURATION`; `SUMMARY` names it (else `UID`).
//! Floating times (no `TZID`, no `Z`) use the calendar's `X-WR-TIMEZONE`. A handful of Windows
//! zone names exported by Outlook (`Pacific Standard Time`, `W. Europe Standard Time`, …) are
//! mapped to their IANA names.
//!
//! Classification ([`parse_ics`]): an event whose `CATEGORIES` mention `BLACKOUT` or `FREEZE`
//! is a blackout, one mentioning `MAINTENANCE`/`WINDOW` is a window; otherwise an event with an
//! `RRULE` is a maintenance window and a one-off event is a blackout. `CATEGORIES:EMERGENCY`
//! marks an emergency window. `X-PATCHWARD-SCOPE:site:Seattle` (or `service:…`, `server:…`,
//! `global`) scopes a blackout; the default is global. Recurring blackouts are refused (list
//! each period as its own event).
//!
//! Errors name the line (1-based, of the property's first physical line) and the field.

use super::rrule::{Recurrence, Until, parse_ical_datetime};
use super::time_zone;
use crate::inventory::{Blackout, BlackoutScope, MaintenanceWindow};
use jiff::SignedDuration;
use jiff::civil::{Date, DateTime};

/// An iCalendar parse error: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {reason}")]
pub struct IcsError {
    pub line: usize,
    pub field: String,
    pub reason: String,
}

fn ics_err<T>(line: usize, field: &str, reason: impl Into<String>) -> Result<T, IcsError> {
    Err(IcsError {
        line,
        field: field.to_string(),
        reason: reason.into(),
    })
}

/// One `VEVENT`, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct IcsEvent {
    /// Line of `BEGIN:VEVENT`.
    pub line: usize,
    pub uid: Option<String>,
    pub summary: Option<String>,
    /// Local start in `time_zone`.
    pub start: DateTime,
    pub time_zone: String,
    pub all_day: bool,
    pub duration: SignedDuration,
    /// The `RRULE` value (without the `RRULE:` prefix).
    pub rrule: Option<String>,
    pub categories: Vec<String>,
    pub scope: Option<String>,
    pub description: Option<String>,
    rrule_line: usize,
    scope_line: usize,
}

/// What an event becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum IcsItem {
    Window(MaintenanceWindow),
    Blackout(Blackout),
}

/// Windows zone ids commonly found in Outlook/Exchange exports → IANA.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Mountain Standard Time", "America/Denver"),
    ("Central Standard Time", "America/Chicago"),
    ("Eastern Standard Time", "America/New_York"),
    ("GMT Standard Time", "Europe/London"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("India Standard Time", "Asia/Kolkata"),
    ("UTC", "UTC"),
];

fn normalise_zone(line: usize, field: &str, name: &str) -> Result<String, IcsError> {
    let n = name.trim().trim_matches('"');
    if let Some(tz) = time_zone(n) {
        return Ok(tz.iana_name().unwrap_or(n).to_string());
    }
    if let Some((_, iana)) = WINDOWS_ZONES
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(n))
    {
        return Ok((*iana).to_string());
    }
    ics_err(
        line,
        field,
        format!("unknown time zone {n:?} (expected an IANA name such as America/Los_Angeles)"),
    )
}

/// Unfold lines (RFC 5545 §3.1): a line starting with space or tab continues the previous one.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = raw.strip_prefix([' ', '\t'])
            && let Some(last) = out.last_mut()
        {
            last.1.push_str(cont);
            continue;
        }
        if raw.trim().is_empty() {
            continue;
        }
        out.push((i + 1, raw.to_string()));
    }
    out
}

struct Prop {
    line: usize,
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

fn split_prop(line: usize, s: &str) -> Result<Prop, IcsError> {
    // The value starts at the first ':' that is not inside a quoted parameter value.
    let mut in_quotes = false;
    let mut colon = None;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(colon) = colon else {
        return ics_err(
            line,
            s.split(';').next().unwrap_or(s),
            "expected NAME:VALUE",
        );
    };
    let (head, value) = (&s[..colon], &s[colon + 1..]);
    let mut parts = head.split(';');
    let name = parts.next().unwrap_or("").trim().to_ascii_uppercase();
    let mut params = Vec::new();
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            params.push((
                k.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_string(),
            ));
        }
    }
    Ok(Prop {
        line,
        name,
        params,
        value: value.to_string(),
    })
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parse an RFC 5545 duration: `PT4H`, `PT1H30M`, `P1D`, `P2W`, `-PT15M`.
fn parse_duration(line: usize, v: &str) -> Result<SignedDuration, IcsError> {
    let bad = || IcsError {
        line,
        field: "DURATION".into(),
        reason: format!("{v:?} is not a duration such as PT4H, PT1H30M or P1D"),
    };
    let t = v.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let t = t.strip_prefix('P').ok_or_else(bad)?;
    let mut secs: i64 = 0;
    let mut num = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in t.chars() {
        match c {
            '0'..='9' => num.push(c),
            'T' if num.is_empty() => in_time = true,
            'W' | 'D' | 'H' | 'M' | 'S' => {
                let n: i64 = num.parse().map_err(|_| bad())?;
                num.clear();
                let unit = match (c, in_time) {
                    ('W', false) => 7 * 86_400,
                    ('D', false) => 86_400,
                    ('H', true) => 3600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return Err(bad()),
                };
                secs = n
                    .checked_mul(unit)
                    .and_then(|x| secs.checked_add(x))
                    .ok_or_else(bad)?;
                any = true;
            }
            _ => return Err(bad()),
        }
    }
    if !any || !num.is_empty() {
        return Err(bad());
    }
    Ok(SignedDuration::from_secs(if neg { -secs } else { secs }))
}

/// A parsed `DTSTART`/`DTEND` value: local date-time + zone, and whether it was a bare date.
fn parse_when(p: &Prop, default_tz: Option<&str>) -> Result<(DateTime, String, bool), IcsError> {
    let field = p.name.as_str();
    let tzid = p
        .params
        .iter()
        .find(|(k, _)| k == "TZID")
        .map(|(_, v)| v.as_str());
    let value = parse_ical_datetime(&p.value).or_else(|e| ics_err(p.line, field, e.0))?;
    match value {
        Until::Utc(ts) => Ok((
            ts.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime(),
            "UTC".into(),
            false,
        )),
        Until::Date(d) => {
            let zone = match tzid.or(default_tz) {
                Some(z) => normalise_zone(p.line, field, z)?,
                None => "UTC".to_string(),
            };
            Ok((d.to_datetime(jiff::civil::Time::midnight()), zone, true))
        }
        Until::Local(dt) => {
            let Some(z) = tzid.or(default_tz) else {
                return ics_err(
                    p.line,
                    field,
                    "floating local time: add TZID=… or X-WR-TIMEZONE to the calendar",
                );
            };
            Ok((dt, normalise_zone(p.line, field, z)?, false))
        }
    }
}

/// Parse every `VEVENT` of a calendar.
pub fn parse_ics_events(text: &str) -> Result<Vec<IcsEvent>, IcsError> {
    let lines = unfold(text);
    let mut default_tz: Option<String> = None;
    for (n, l) in &lines {
        if l.to_ascii_uppercase().starts_with("X-WR-TIMEZONE") {
            let p = split_prop(*n, l)?;
            default_tz = Some(normalise_zone(*n, "X-WR-TIMEZONE", &p.value)?);
        }
    }
    let mut events = Vec::new();
    let mut saw_calendar = false;
    let mut current: Option<(usize, Vec<Prop>)> = None;
    let mut nested = 0usize; // VALARM etc. inside an event
    for (n, l) in lines {
        let p = split_prop(n, &l)?;
        match (
            p.name.as_str(),
            p.value.trim().to_ascii_uppercase().as_str(),
        ) {
            ("BEGIN", "VCALENDAR") => saw_calendar = true,
            ("BEGIN", "VEVENT") => {
                if current.is_some() {
                    return ics_err(n, "BEGIN", "VEVENT inside VEVENT");
                }
                current = Some((n, Vec::new()));
            }
            ("END", "VEVENT") => {
                let Some((start_line, props)) = current.take() else {
                    return ics_err(n, "END", "END:VEVENT without BEGIN:VEVENT");
                };
                events.push(build_event(start_line, props, default_tz.as_deref())?);
                nested = 0;
            }
            ("BEGIN", _) if current.is_some() => nested += 1,
            ("END", _) if current.is_some() && nested > 0 => nested -= 1,
            _ => {
                if nested == 0
                    && let Some((_, props)) = current.as_mut()
                {
                    props.push(p);
                }
            }
        }
    }
    if let Some((line, _)) = current {
        return ics_err(line, "VEVENT", "not closed with END:VEVENT");
    }
    if !saw_calendar {
        return ics_err(1, "BEGIN", "not an iCalendar file (no BEGIN:VCALENDAR)");
    }
    Ok(events)
}

fn build_event(
    line: usize,
    props: Vec<Prop>,
    default_tz: Option<&str>,
) -> Result<IcsEvent, IcsError> {
    let find = |name: &str| props.iter().find(|p| p.name == name);
    let Some(dtstart) = find("DTSTART") else {
        return ics_err(line, "DTSTART", "VEVENT has no DTSTART");
    };
    let (start, zone, all_day) = parse_when(dtstart, default_tz)?;
    let duration = if let Some(d) = find("DURATION") {
        parse_duration(d.line, &d.value)?
    } else if let Some(e) = find("DTEND") {
        let (end, end_zone, _) = parse_when(e, default_tz)?;
        let tz_of = |z: &str, l: usize, f: &str| {
            time_zone(z).ok_or_else(|| IcsError {
                line: l,
                field: f.into(),
                reason: format!("unknown time zone {z:?}"),
            })
        };
        let s_ts = tz_of(&zone, dtstart.line, "DTSTART")?
            .to_ambiguous_timestamp(start)
            .compatible()
            .or_else(|e| ics_err(dtstart.line, "DTSTART", e.to_string()))?;
        let e_ts = tz_of(&end_zone, e.line, "DTEND")?
            .to_ambiguous_timestamp(end)
            .compatible()
            .or_else(|err| ics_err(e.line, "DTEND", err.to_string()))?;
        s_ts.duration_until(e_ts)
    } else if all_day {
        SignedDuration::from_hours(24)
    } else {
        return ics_err(line, "DTEND", "VEVENT needs DTEND or DURATION");
    };
    if duration <= SignedDuration::ZERO {
        return ics_err(
            find("DTEND").or(find("DURATION")).map_or(line, |p| p.line),
            if find("DURATION").is_some() {
                "DURATION"
            } else {
                "DTEND"
            },
            "the event must end after it starts",
        );
    }
    let rrule_prop = find("RRULE");
    let rrule = rrule_prop.map(|p| p.value.trim().to_string());
    if let (Some(p), Some(r)) = (rrule_prop, &rrule) {
        Recurrence::for_window(&window_rule(start, &zone, all_day, r), &zone)
            .or_else(|e| ics_err(p.line, "RRULE", e.0))?;
    }
    let text = |name: &str| find(name).map(|p| unescape(p.value.trim()));
    let categories = props
        .iter()
        .filter(|p| p.name == "CATEGORIES")
        .flat_map(|p| {
            unescape(&p.value)
                .split(',')
                .map(|c| c.trim().to_ascii_uppercase())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    let scope_prop = find("X-PATCHWARD-SCOPE");
    Ok(IcsEvent {
        line,
        uid: text("UID"),
        summary: text("SUMMARY").filter(|s| !s.trim().is_empty()),
        start,
        time_zone: zone,
        all_day,
        duration,
        rrule,
        categories,
        scope: scope_prop.map(|p| unescape(p.value.trim())),
        description: text("DESCRIPTION"),
        rrule_line: rrule_prop.map_or(line, |p| p.line),
        scope_line: scope_prop.map_or(line, |p| p.line),
    })
}

fn ymd(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// The window rule of an event, in RFC 5545 form with the event's start as its anchor (the same
/// text [`Recurrence::for_window`] reads from estate files).
fn window_rule(start: DateTime, zone: &str, all_day: bool, rule: &str) -> String {
    if all_day {
        format!("DTSTART;VALUE=DATE:{}\nRRULE:{rule}", ymd(start.date()))
    } else {
        format!(
            "DTSTART;TZID={zone}:{}T{:02}{:02}{:02}\nRRULE:{rule}",
            ymd(start.date()),
            start.hour(),
            start.minute(),
            start.second()
        )
    }
}

impl IcsEvent {
    fn name(&self) -> String {
        self.summary
            .clone()
            .or_else(|| self.uid.clone())
            .unwrap_or_else(|| format!("event at line {}", self.line))
    }

    /// Whether [`parse_ics`] classifies this event as a blackout.
    pub fn is_blackout(&self) -> bool {
        let has = |words: &[&str]| {
            self.categories
                .iter()
                .any(|c| words.iter().any(|w| c.contains(w)))
        };
        if has(&["BLACKOUT", "FREEZE"]) {
            true
        } else if has(&["MAINTENANCE", "WINDOW", "EMERGENCY"]) {
            false
        } else {
            self.rrule.is_none()
        }
    }

    /// This event as a maintenance window. The rule carries the event's `DTSTART` date as its
    /// anchor; a one-off event becomes a rule with `COUNT=1`.
    pub fn to_window(&self) -> MaintenanceWindow {
        let rule = self
            .rrule
            .clone()
            .unwrap_or_else(|| "FREQ=DAILY;COUNT=1".into());
        MaintenanceWindow {
            name: self.name(),
            rrule: window_rule(self.start, &self.time_zone, self.all_day, &rule),
            offset_days: 0,
            start: self.start.time(),
            duration: self.duration,
            time_zone: self.time_zone.clone(),
            emergency: self.categories.iter().any(|c| c.contains("EMERGENCY")),
        }
    }

    /// This event as a blackout (`X-PATCHWARD-SCOPE` or global).
    pub fn to_blackout(&self) -> Result<Blackout, IcsError> {
        if self.rrule.is_some() {
            return ics_err(
                self.rrule_line,
                "RRULE",
                "recurring blackouts are not supported: list each period as its own VEVENT",
            );
        }
        let scope = match self.scope.as_deref().map(str::trim) {
            None | Some("") => BlackoutScope::Global,
            Some(s) if s.eq_ignore_ascii_case("global") => BlackoutScope::Global,
            Some(s) => match s.split_once(':') {
                Some((k, v)) if k.eq_ignore_ascii_case("site") => {
                    BlackoutScope::Site(v.trim().into())
                }
                Some((k, v)) if k.eq_ignore_ascii_case("service") => {
                    BlackoutScope::Service(v.trim().into())
                }
                Some((k, v)) if k.eq_ignore_ascii_case("server") => {
                    BlackoutScope::Server(v.trim().into())
                }
                _ => {
                    return ics_err(
                        self.scope_line,
                        "X-PATCHWARD-SCOPE",
                        format!("{s:?} is not global, site:NAME, service:NAME or server:NAME"),
                    );
                }
            },
        };
        let Some(tz) = time_zone(&self.time_zone) else {
            return ics_err(
                self.line,
                "DTSTART",
                format!("unknown time zone {:?}", self.time_zone),
            );
        };
        let start = tz
            .to_ambiguous_timestamp(self.start)
            .compatible()
            .or_else(|e| ics_err(self.line, "DTSTART", e.to_string()))?;
        let end = start
            .checked_add(self.duration)
            .or_else(|e| ics_err(self.line, "DURATION", e.to_string()))?;
        Ok(Blackout {
            name: self.name(),
            scope,
            start,
            end,
            reason: self.description.clone(),
        })
    }
}

/// Parse a calendar and turn every event into a maintenance window or a blackout (see the
/// module documentation for the classification rule).
pub fn parse_ics(text: &str) -> Result<Vec<IcsItem>, IcsError> {
    parse_ics_events(text)?
        .into_iter()
        .map(|e| {
            if e.is_blackout() {
                e.to_blackout().map(IcsItem::Blackout)
            } else {
                Ok(IcsItem::Window(e.to_window()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::occurrences;
    use jiff::Timestamp;
    use jiff::civil::time;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    const CAL: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Contoso//Change calendar//EN\r\n\
X-WR-TIMEZONE:Europe/Berlin\r\n\
BEGIN:VEVENT\r\n\
UID:w1@contoso\r\n\
SUMMARY:Patch Tuesday +4\\, Seattle\r\n\
DTSTART;TZID=America/Los_Angeles:20261114T220000\r\n\
DURATION:PT4H\r\n\
RRULE:FREQ=MONTHLY;BYDAY=2TU\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
TRIGGER:-PT15M\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:b1@contoso\r\n\
SUMMARY:Month-end close\r\n\
DESCRIPTION:Finance close\\; no changes\r\n\
DTSTART;VALUE=DATE:20261128\r\n\
DTEND;VALUE=DATE:20261202\r\n\
X-PATCHWARD-SCOPE:site:Seattle\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
SUMMARY:Emergency slot\r\n\
CATEGORIES:Maintenance,Emergency\r\n\
DTSTART:20261120T020000Z\r\n\
DTEND:20261120T040000Z\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn imports_windows_and_blackouts() {
        let items = parse_ics(CAL).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(items.len(), 3);
        let IcsItem::Window(w) = &items[0] else {
            unreachable!()
        };
        assert_eq!(w.name, "Patch Tuesday +4, Seattle");
        assert_eq!(w.time_zone, "America/Los_Angeles");
        assert_eq!(w.start, time(22, 0, 0, 0));
        assert_eq!(w.duration, SignedDuration::from_hours(4));
        assert!(!w.emergency);
        // The anchor is the DTSTART date; the rule still means "second Tuesday" (10 Dec 2026
        // is not; 8 Dec is).
        let occ = occurrences(w, ts("2026-12-01T00:00:00Z"), ts("2027-01-01T00:00:00Z"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(occ.len(), 1);
        assert_eq!(occ[0].start, ts("2026-12-09T06:00:00Z"));
        // November's second Tuesday (10th) is before DTSTART (14th): not an occurrence.
        let occ = occurrences(w, ts("2026-11-01T00:00:00Z"), ts("2026-12-01T00:00:00Z"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(occ.is_empty());

        let IcsItem::Blackout(b) = &items[1] else {
            unreachable!()
        };
        assert_eq!(b.name, "Month-end close");
        assert_eq!(b.scope, BlackoutScope::Site("Seattle".into()));
        // All-day dates are midnight in X-WR-TIMEZONE (Europe/Berlin, CET = UTC+1).
        assert_eq!(b.start, ts("2026-11-27T23:00:00Z"));
        assert_eq!(b.end, ts("2026-12-01T23:00:00Z"));
        assert_eq!(b.reason.as_deref(), Some("Finance close; no changes"));

        let IcsItem::Window(e) = &items[2] else {
            unreachable!()
        };
        assert!(e.emergency);
        assert_eq!(e.time_zone, "UTC");
        let occ = occurrences(e, ts("2026-11-01T00:00:00Z"), ts("2027-01-01T00:00:00Z"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(occ.len(), 1, "a one-off event is a single occurrence");
        assert_eq!(occ[0].start, ts("2026-11-20T02:00:00Z"));
    }

    #[test]
    fn folded_lines_and_windows_zone_names() {
        let cal = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:Long\n  name\nDTSTART;TZID=\"W. Europe Standard Time\":20261107T230000\nDTEND;TZID=W. Europe Standard Time:20261108T020000\nRRULE:FREQ=WEEKLY;BYDAY=SA\nEND:VEVENT\nEND:VCALENDAR\n";
        let items = parse_ics(cal).unwrap_or_else(|e| unreachable!("{e}"));
        let IcsItem::Window(w) = &items[0] else {
            unreachable!()
        };
        assert_eq!(w.name, "Long name");
        assert_eq!(w.time_zone, "Europe/Berlin");
        assert_eq!(w.duration, SignedDuration::from_hours(3));
    }

    #[test]
    fn errors_name_line_and_field() {
        let cases = [
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART;TZID=Mars/Base:20261107T230000\nDURATION:PT1H\nEND:VEVENT\nEND:VCALENDAR\n",
                "line 4: DTSTART: unknown time zone \"Mars/Base\"",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART;TZID=UTC:20261107T230000\nDURATION:4 hours\nEND:VEVENT\nEND:VCALENDAR\n",
                "line 5: DURATION:",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART;TZID=UTC:20261107T230000\nDURATION:PT1H\nRRULE:FREQ=MONTHLY;BYDAY=9ZZ\nEND:VEVENT\nEND:VCALENDAR\n",
                "line 6: RRULE:",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART:20261107T230000\nDURATION:PT1H\nEND:VEVENT\nEND:VCALENDAR\n",
                "line 4: DTSTART: floating",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART;TZID=UTC:20261107T230000\nEND:VEVENT\nEND:VCALENDAR\n",
                "line 2: DTEND:",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART;TZID=UTC:2026-11-07\nDURATION:PT1H\nEND:VEVENT\nEND:VCALENDAR\n",
                "line 4: DTSTART:",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nCATEGORIES:BLACKOUT\nDTSTART;TZID=UTC:20261107T230000\nDURATION:PT1H\nRRULE:FREQ=DAILY\nEND:VEVENT\nEND:VCALENDAR\n",
                "line 7: RRULE: recurring blackouts",
            ),
            ("hello", "line 1: hello: expected NAME:VALUE"),
        ];
        for (text, want) in cases {
            let got = parse_ics(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(got.starts_with(want), "got {got:?}, want prefix {want:?}");
        }
    }

    #[test]
    fn never_panics_on_junk() {
        for junk in [
            "",
            ":",
            ";;;",
            "BEGIN:VEVENT",
            "END:VEVENT",
            "BEGIN:VCALENDAR\nDTSTART:\u{e9}\u{e9}\u{e9}",
        ] {
            let _ = parse_ics(junk);
        }
    }
}
