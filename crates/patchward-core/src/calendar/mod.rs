//! Calendars: when maintenance windows, backup job windows and coverage are open, and when
//! blackouts close things (PRODUCT.md C6, issue 3 part 1).
//!
//! # How a window becomes instants
//!
//! A [`MaintenanceWindow`] is evaluated in four steps:
//! 1. its RRULE is evaluated on **local civil dates** in the window's IANA zone (see
//!    [`rrule`] for the supported subset); e.g. `FREQ=MONTHLY;BYDAY=2TU` gives every second
//!    Tuesday;
//! 2. each date is shifted by `offset_days` calendar days ("second Tuesday + 18 days" moves
//!    14 Jul 2026 to 1 Aug 2026 — the month may change);
//! 3. the local date at the window's `start` time becomes an instant in the zone;
//! 4. the occurrence lasts `duration` of **elapsed** time from that instant, so a 22:00 + 4 h
//!    window ends at 02:00 the next morning, and on a DST night the crew still gets 4 real hours
//!    (22:00 PDT + 4 h on 31 Oct/1 Nov 2026 ends at 01:00 PST).
//!
//! # DST gaps and folds (deterministic, RFC 5545 §3.3.5 behaviour)
//! - **Gap** (the local start time does not exist, e.g. 02:30 on 8 Mar 2026 in
//!   America/Los_Angeles): the start moves *forward by the length of the gap* — 02:30 PST
//!   does not exist, so the window starts at 03:30 PDT (jiff's "compatible" disambiguation).
//! - **Fold** (the local start time happens twice, e.g. 01:30 on 1 Nov 2026 in
//!   America/Los_Angeles): the **earlier** of the two instants is used (01:30 PDT).
//!
//! # Time zones
//! Zones come from the IANA database bundled into the binary ([`time_zone`]), not from the host,
//! so plans are identical on every machine and this crate never touches the file system. An
//! unknown zone name is a [`CalendarError::UnknownTimeZone`].
//!
//! # Intervals
//! All intervals are half-open `[start, end)`: a slot that ends exactly when a blackout starts
//! does not overlap it.

pub mod ics;
pub mod rrule;

use crate::inventory::{Blackout, BlackoutScope, MaintenanceWindow};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

pub use ics::{IcsError, IcsEvent, IcsItem, parse_ics, parse_ics_events};
pub use rrule::{Recurrence, RruleError};

/// A half-open span of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interval {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Interval {
    pub fn new(start: Timestamp, end: Timestamp) -> Interval {
        Interval { start, end }
    }

    /// Whether the two half-open intervals share any instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn duration(&self) -> SignedDuration {
        self.start.duration_until(self.end)
    }
}

/// Errors in calendar definitions. Each names the window (or blackout) it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "window {window:?}: unknown time zone {zone:?} (expected an IANA name such as America/Los_Angeles or Europe/Berlin)"
    )]
    UnknownTimeZone { window: String, zone: String },
    #[error("window {window:?}: RRULE {rrule:?}: {reason}")]
    BadRrule {
        window: String,
        rrule: String,
        reason: String,
    },
    #[error("window {window:?}: duration must be positive, got {duration}")]
    BadDuration { window: String, duration: String },
}

/// Look up an IANA time zone in the database bundled with the binary (case-insensitive).
pub fn time_zone(name: &str) -> Option<TimeZone> {
    jiff::tz::TimeZoneDatabase::bundled().get(name.trim()).ok()
}

/// A maintenance window (or backup job / coverage window) ready to produce occurrences.
#[derive(Debug, Clone)]
pub struct WindowCalendar {
    pub name: String,
    tz: TimeZone,
    rule: Recurrence,
    offset_days: i32,
    start: Time,
    duration: SignedDuration,
}

impl WindowCalendar {
    /// Validate a window: time zone, RRULE, positive duration.
    pub fn new(w: &MaintenanceWindow) -> Result<WindowCalendar, CalendarError> {
        let tz = time_zone(&w.time_zone).ok_or_else(|| CalendarError::UnknownTimeZone {
            window: w.name.clone(),
            zone: w.time_zone.clone(),
        })?;
        let rule = Recurrence::for_window(&w.rrule, &w.time_zone).map_err(|e| {
            CalendarError::BadRrule {
                window: w.name.clone(),
                rrule: w.rrule.clone(),
                reason: e.0,
            }
        })?;
        if w.duration <= SignedDuration::ZERO {
            return Err(CalendarError::BadDuration {
                window: w.name.clone(),
                duration: format!("{:#}", w.duration),
            });
        }
        Ok(WindowCalendar {
            name: w.name.clone(),
            tz,
            rule,
            offset_days: w.offset_days,
            start: w.start,
            duration: w.duration,
        })
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    pub fn duration(&self) -> SignedDuration {
        self.duration
    }

    /// The instant a local date + time means in this window's zone (gap → forward by the gap
    /// length, fold → earlier instant).
    fn resolve(&self, d: Date) -> Option<Timestamp> {
        self.tz
            .to_ambiguous_timestamp(d.to_datetime(self.start))
            .compatible()
            .ok()
    }

    /// The occurrence produced by a rule date (before `offset_days` is applied).
    pub fn occurrence_for_rule_date(&self, rule_date: Date) -> Option<Interval> {
        let d = rrule::add_days(rule_date, i64::from(self.offset_days))?;
        let start = self.resolve(d)?;
        let end = start.checked_add(self.duration).ok()?;
        Some(Interval { start, end })
    }

    /// Every occurrence that overlaps `[from, to)`, in start order. An occurrence that began
    /// before `from` and is still open is included whole (callers clip it).
    pub fn occurrences(&self, from: Timestamp, to: Timestamp) -> Vec<Interval> {
        if from >= to {
            return Vec::new();
        }
        let from_local = from.to_zoned_datetime(self.tz.clone()).date();
        let to_local = to.to_zoned_datetime(self.tz.clone()).date();
        // Rule dates whose shifted occurrence can overlap the range: back off by the offset and
        // by the duration in whole days (plus one for DST and midnight crossings).
        let dur_days = self.duration.as_secs().div_euclid(86_400) + 1;
        let off = i64::from(self.offset_days);
        let (Some(lo), Some(hi)) = (
            rrule::add_days(from_local, -off - dur_days - 1),
            rrule::add_days(to_local, -off + 1),
        ) else {
            return Vec::new();
        };
        let resolve_rule_date = |d: Date| self.resolve(d);
        let mut out: Vec<Interval> = self
            .rule
            .dates_between(lo, hi, self.start, &resolve_rule_date)
            .into_iter()
            .filter_map(|d| self.occurrence_for_rule_date(d))
            .filter(|iv| iv.start < to && iv.end > from)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Occurrences of a window overlapping `[from, to)`.
pub fn occurrences(
    w: &MaintenanceWindow,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Interval>, CalendarError> {
    Ok(WindowCalendar::new(w)?.occurrences(from, to))
}

/// A sorted set of disjoint intervals (overlapping and touching intervals are merged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntervalSet {
    items: Vec<Interval>,
}

impl IntervalSet {
    pub fn from_intervals(items: impl IntoIterator<Item = Interval>) -> IntervalSet {
        let mut v: Vec<Interval> = items.into_iter().filter(|i| i.start < i.end).collect();
        v.sort();
        let mut merged: Vec<Interval> = Vec::with_capacity(v.len());
        for iv in v {
            match merged.last_mut() {
                Some(last) if iv.start <= last.end => {
                    if iv.end > last.end {
                        last.end = iv.end;
                    }
                }
                _ => merged.push(iv),
            }
        }
        IntervalSet { items: merged }
    }

    pub fn intervals(&self) -> &[Interval] {
        &self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The first member interval overlapping `probe`, if any.
    pub fn first_overlap(&self, probe: &Interval) -> Option<Interval> {
        let i = self.items.partition_point(|iv| iv.end <= probe.start);
        self.items.get(i).filter(|iv| iv.start < probe.end).copied()
    }

    /// Whether `probe` lies entirely inside one member interval.
    pub fn covers(&self, probe: &Interval) -> bool {
        let i = self.items.partition_point(|iv| iv.end <= probe.start);
        self.items.get(i).is_some_and(|iv| iv.contains(probe))
    }
}

/// Whether a blackout applies to a server given its site and the services it belongs to
/// (all names compared case-insensitively).
pub fn blackout_applies(b: &Blackout, server: &str, site: Option<&str>, services: &[&str]) -> bool {
    match &b.scope {
        BlackoutScope::Global => true,
        BlackoutScope::Site(s) => site.is_some_and(|x| x.eq_ignore_ascii_case(s)),
        BlackoutScope::Service(s) => services.iter().any(|x| x.eq_ignore_ascii_case(s)),
        BlackoutScope::Server(s) => server.eq_ignore_ascii_case(s),
    }
}

/// Human-readable slot in a zone: `Tue 24 Nov 22:00–23:30 PST`; when the slot crosses midnight
/// or a DST change, both ends are written in full: `Sat 31 Oct 23:00 PDT – Sun 1 Nov 01:30 PST`.
pub fn format_slot(start: Timestamp, end: Timestamp, tz: &TimeZone) -> String {
    let s = start.to_zoned_datetime(tz.clone());
    let e = end.to_zoned_datetime(tz.clone());
    let s_abbr = tz.to_offset_info(start).abbreviation().to_string();
    let e_abbr = tz.to_offset_info(end).abbreviation().to_string();
    let day = |z: &jiff::ZonedDateTime| z.strftime("%a %-d %b").to_string();
    let hm = |z: &jiff::ZonedDateTime| z.strftime("%H:%M").to_string();
    if s.date() == e.date() && s_abbr == e_abbr {
        format!("{} {}–{} {}", day(&s), hm(&s), hm(&e), s_abbr)
    } else if s_abbr == e_abbr {
        format!("{} {} – {} {} {}", day(&s), hm(&s), day(&e), hm(&e), s_abbr)
    } else {
        format!(
            "{} {} {} – {} {} {}",
            day(&s),
            hm(&s),
            s_abbr,
            day(&e),
            hm(&e),
            e_abbr
        )
    }
}

/// Human-readable instant in a zone: `Tue 24 Nov 22:00 PST`.
pub fn format_instant(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned_datetime(tz.clone());
    format!(
        "{} {}",
        z.strftime("%a %-d %b %H:%M"),
        tz.to_offset_info(t).abbreviation()
    )
}

/// Friendly duration: `90m` → `1h 30m`, `2d 4h`.
pub fn format_duration(d: SignedDuration) -> String {
    let neg = d.is_negative();
    let mut secs = d.as_secs().unsigned_abs();
    let days = secs / 86_400;
    secs %= 86_400;
    let hours = secs / 3600;
    secs %= 3600;
    let mins = secs / 60;
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if mins > 0 || parts.is_empty() {
        parts.push(format!("{mins}m"));
    }
    let s = parts.join(" ");
    if neg { format!("-{s}") } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    fn window(rrule: &str, offset: i32, start: Time, dur_min: i64, tz: &str) -> MaintenanceWindow {
        MaintenanceWindow {
            name: "w".into(),
            rrule: rrule.into(),
            offset_days: offset,
            start,
            duration: SignedDuration::from_mins(dur_min),
            time_zone: tz.into(),
            emergency: false,
        }
    }

    fn occ(w: &MaintenanceWindow, from: &str, to: &str) -> Vec<(String, String)> {
        occurrences(w, ts(from), ts(to))
            .unwrap_or_else(|e| unreachable!("{e}"))
            .into_iter()
            .map(|i| (i.start.to_string(), i.end.to_string()))
            .collect()
    }

    #[test]
    fn us_spring_forward_gap_moves_start_forward_by_gap() {
        // 8 Mar 2026: 02:00 PST jumps to 03:00 PDT in America/Los_Angeles.
        let w = window(
            "FREQ=DAILY",
            0,
            time(2, 30, 0, 0),
            60,
            "America/Los_Angeles",
        );
        let got = occ(&w, "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z");
        assert_eq!(
            got,
            vec![
                // 7 Mar 02:30 PST = 10:30Z
                ("2026-03-07T10:30:00Z".into(), "2026-03-07T11:30:00Z".into()),
                // 8 Mar 02:30 does not exist: 03:30 PDT = 10:30Z
                ("2026-03-08T10:30:00Z".into(), "2026-03-08T11:30:00Z".into()),
                // 9 Mar 02:30 PDT = 09:30Z
                ("2026-03-09T09:30:00Z".into(), "2026-03-09T10:30:00Z".into()),
            ]
        );
    }

    #[test]
    fn us_fall_back_fold_takes_earlier_instant_and_duration_is_elapsed() {
        // 1 Nov 2026: 02:00 PDT falls back to 01:00 PST; 01:30 happens twice.
        let w = window(
            "FREQ=DAILY",
            0,
            time(1, 30, 0, 0),
            60,
            "America/Los_Angeles",
        );
        let got = occ(&w, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z");
        assert_eq!(
            got,
            vec![("2026-11-01T08:30:00Z".into(), "2026-11-01T09:30:00Z".into())]
        );
        // A 22:00 + 4 h window on the night of the change ends at 01:00 PST (4 elapsed hours).
        let w = window(
            "FREQ=DAILY",
            0,
            time(22, 0, 0, 0),
            240,
            "America/Los_Angeles",
        );
        let c = WindowCalendar::new(&w).unwrap_or_else(|e| unreachable!("{e}"));
        let o = c.occurrence_for_rule_date(date(2026, 10, 31));
        let o = o.unwrap_or_else(|| unreachable!());
        assert_eq!(o.start, ts("2026-11-01T05:00:00Z"));
        assert_eq!(o.end, ts("2026-11-01T09:00:00Z"));
        assert_eq!(
            format_slot(o.start, o.end, c.time_zone()),
            "Sat 31 Oct 22:00 PDT – Sun 1 Nov 01:00 PST"
        );
    }

    #[test]
    fn eu_spring_forward_and_fall_back() {
        // 29 Mar 2026: 02:00 CET jumps to 03:00 CEST in Europe/Berlin.
        let w = window("FREQ=DAILY", 0, time(2, 15, 0, 0), 30, "Europe/Berlin");
        let got = occ(&w, "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z");
        assert_eq!(
            got,
            vec![
                // 29 Mar 02:15 does not exist → 03:15 CEST = 01:15Z
                ("2026-03-29T01:15:00Z".into(), "2026-03-29T01:45:00Z".into()),
                // 30 Mar 02:15 CEST = 00:15Z
                ("2026-03-30T00:15:00Z".into(), "2026-03-30T00:45:00Z".into()),
            ]
        );
        // 25 Oct 2026: 03:00 CEST falls back to 02:00 CET; 02:15 happens twice → earlier (CEST).
        let got = occ(&w, "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z");
        assert_eq!(
            got,
            vec![
                ("2026-10-25T00:15:00Z".into(), "2026-10-25T00:45:00Z".into()),
                // 26 Oct 02:15 CET = 01:15Z
                ("2026-10-26T01:15:00Z".into(), "2026-10-26T01:45:00Z".into()),
            ]
        );
    }

    #[test]
    fn window_crossing_midnight() {
        let w = window(
            "FREQ=WEEKLY;BYDAY=SA",
            0,
            time(23, 0, 0, 0),
            180,
            "Europe/Berlin",
        );
        let got = occ(&w, "2026-11-01T00:00:00Z", "2026-11-10T00:00:00Z");
        assert_eq!(
            got,
            vec![
                // Sat 31 Oct 23:00 CET started before `from` but is still open at 00:00Z.
                ("2026-10-31T22:00:00Z".into(), "2026-11-01T01:00:00Z".into()),
                // Sat 7 Nov 23:00 CET = 22:00Z, ends Sun 8 Nov 02:00 CET.
                ("2026-11-07T22:00:00Z".into(), "2026-11-08T01:00:00Z".into()),
            ]
        );
        // An occurrence that started before `from` but is still open is returned.
        let got = occ(&w, "2026-11-08T00:30:00Z", "2026-11-09T00:00:00Z");
        assert_eq!(got.len(), 1);
        let c = WindowCalendar::new(&w).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            format_slot(
                ts("2026-11-07T22:00:00Z"),
                ts("2026-11-08T01:00:00Z"),
                c.time_zone()
            ),
            "Sat 7 Nov 23:00 – Sun 8 Nov 02:00 CET"
        );
    }

    #[test]
    fn second_tuesday_plus_offset_moves_into_next_month() {
        // Second Tuesday of July 2026 is the 14th; +18 days = Sat 1 Aug.
        let w = window(
            "FREQ=MONTHLY;BYDAY=2TU",
            18,
            time(22, 0, 0, 0),
            240,
            "America/Los_Angeles",
        );
        let got = occ(&w, "2026-07-01T00:00:00Z", "2026-09-01T00:00:00Z");
        assert_eq!(
            got,
            vec![
                // 14 Jul + 18 = 1 Aug 22:00 PDT = 2 Aug 05:00Z
                ("2026-08-02T05:00:00Z".into(), "2026-08-02T09:00:00Z".into()),
                // 11 Aug + 18 = 29 Aug 22:00 PDT
                ("2026-08-30T05:00:00Z".into(), "2026-08-30T09:00:00Z".into()),
            ]
        );
        // Asking only for August still finds the July-rule occurrence.
        let got = occ(&w, "2026-08-01T00:00:00Z", "2026-08-03T00:00:00Z");
        assert_eq!(got.len(), 1);
        // And "second Tuesday + 4" in November 2026: 10 Nov + 4 = Sat 14 Nov.
        let w = window(
            "FREQ=MONTHLY;BYDAY=2TU",
            4,
            time(22, 0, 0, 0),
            240,
            "America/Los_Angeles",
        );
        let got = occ(&w, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
        assert_eq!(
            got,
            vec![("2026-11-15T06:00:00Z".into(), "2026-11-15T10:00:00Z".into())]
        );
    }

    #[test]
    fn unknown_zone_and_bad_rule_are_named() {
        let w = window("FREQ=DAILY", 0, time(22, 0, 0, 0), 60, "Mars/Olympus_Mons");
        let e = WindowCalendar::new(&w)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("unknown time zone \"Mars/Olympus_Mons\""), "{e}");
        let w = window("FREQ=SOMETIMES", 0, time(22, 0, 0, 0), 60, "UTC");
        let e = WindowCalendar::new(&w)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("FREQ=SOMETIMES"), "{e}");
        let w = window("FREQ=DAILY", 0, time(22, 0, 0, 0), 0, "UTC");
        assert!(WindowCalendar::new(&w).is_err());
    }

    #[test]
    fn blackout_edges_are_half_open() {
        let blackout = IntervalSet::from_intervals([Interval::new(
            ts("2026-11-28T08:00:00Z"),
            ts("2026-12-02T08:00:00Z"),
        )]);
        // Ends exactly when the blackout starts: allowed.
        let before = Interval::new(ts("2026-11-28T06:30:00Z"), ts("2026-11-28T08:00:00Z"));
        assert_eq!(blackout.first_overlap(&before), None);
        // Overlaps by one minute: not allowed.
        let overlap = Interval::new(ts("2026-11-28T06:31:00Z"), ts("2026-11-28T08:01:00Z"));
        assert!(blackout.first_overlap(&overlap).is_some());
        // Starts exactly when it ends: allowed.
        let after = Interval::new(ts("2026-12-02T08:00:00Z"), ts("2026-12-02T09:00:00Z"));
        assert_eq!(blackout.first_overlap(&after), None);
        let inside_by_a_minute =
            Interval::new(ts("2026-12-02T07:59:00Z"), ts("2026-12-02T09:00:00Z"));
        assert!(blackout.first_overlap(&inside_by_a_minute).is_some());
    }

    #[test]
    fn interval_set_merges_touching_and_covers() {
        let s = IntervalSet::from_intervals([
            Interval::new(ts("2026-11-02T16:00:00Z"), ts("2026-11-03T08:00:00Z")),
            Interval::new(ts("2026-11-03T08:00:00Z"), ts("2026-11-03T12:00:00Z")),
            Interval::new(ts("2026-11-04T08:00:00Z"), ts("2026-11-04T12:00:00Z")),
        ]);
        assert_eq!(s.intervals().len(), 2);
        assert!(s.covers(&Interval::new(
            ts("2026-11-03T07:00:00Z"),
            ts("2026-11-03T09:00:00Z")
        )));
        assert!(!s.covers(&Interval::new(
            ts("2026-11-03T11:00:00Z"),
            ts("2026-11-04T09:00:00Z")
        )));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(SignedDuration::from_mins(90)), "1h 30m");
        assert_eq!(format_duration(SignedDuration::from_hours(52)), "2d 4h");
        assert_eq!(format_duration(SignedDuration::ZERO), "0m");
    }
}
