//! A small, date-only RFC 5545 RRULE evaluator.
//!
//! Maintenance windows only need *dates*: the time of day, duration and time zone are fields of
//! the window itself. So a rule is evaluated on civil (local) dates, which keeps it free of DST
//! questions; the window layer turns each date into instants afterwards.
//!
//! Supported: `FREQ=DAILY|WEEKLY|MONTHLY|YEARLY`, `INTERVAL`, `BYDAY` (with ordinals such as
//! `2TU`, `-1FR` in monthly and yearly rules), `BYMONTHDAY` (negative counts from the month's
//! end), `BYMONTH`, `BYSETPOS`, `COUNT`, `UNTIL` (date, local date-time or UTC `…Z`) and `WKST`.
//! Anything else (`BYWEEKNO`, `BYYEARDAY`, `BYHOUR`, `FREQ=HOURLY`, …) is rejected with an
//! error, never silently ignored.
//!
//! The rule text may be a bare `FREQ=…` rule, `RRULE:FREQ=…`, or carry an anchor in the RFC 5545
//! form: a `DTSTART` line before or after the rule line — `DTSTART:20261110T220000`,
//! `DTSTART;TZID=America/Los_Angeles:20261110T220000`, `DTSTART;VALUE=DATE:20261110` or UTC
//! `DTSTART:20261111T060000Z` (only the date part is used, read in the window's zone; the
//! window's own `start` gives the time). A `TZID` must be a known zone and, for a window, the
//! window's own zone ([`Recurrence::for_window`], the one entry point of estate files, iCalendar
//! import and the planner). Without a `DTSTART` the rule has
//! no first occurrence, so parts that depend on one are refused with an error that says so:
//! `COUNT`, `INTERVAL` > 1, and a default day (`FREQ=WEEKLY` without `BYDAY`, `FREQ=MONTHLY`
//! without `BYDAY`/`BYMONTHDAY`, `FREQ=YEARLY` without a day part).
//!
//! We evaluate rules ourselves rather than through the `rrule` crate because that crate is built
//! on chrono/chrono-tz while the whole domain uses jiff, and the date-only subset is small.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::{Span, Timestamp};

/// Recurrence frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// End of a recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `UNTIL=20261231`: the last occurrence date (inclusive).
    Date(Date),
    /// `UNTIL=20261231T235959`: compared with the occurrence's local start.
    Local(DateTime),
    /// `UNTIL=20261231T235959Z`: compared with the occurrence's start instant.
    Utc(Timestamp),
}

/// A parsed recurrence rule (see the module documentation for the supported subset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    pub freq: Freq,
    pub interval: u32,
    /// `(ordinal, weekday)`; ordinal `None` means every such weekday in the period.
    pub by_day: Vec<(Option<i32>, Weekday)>,
    pub by_month_day: Vec<i32>,
    pub by_month: Vec<i8>,
    pub by_set_pos: Vec<i32>,
    pub count: Option<u32>,
    pub until: Option<Until>,
    pub week_start: Weekday,
    /// First date of the series (from `DTSTART`), in the window's zone.
    pub dtstart: Option<Date>,
    /// `DTSTART;TZID=…`: the zone the anchor was written in (checked against the window's).
    pub dtstart_zone: Option<String>,
}

/// Why a rule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RruleError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, RruleError> {
    Err(RruleError(msg.into()))
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

fn parse_int(name: &str, v: &str) -> Result<i32, RruleError> {
    let t = v.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    t.parse::<i32>()
        .or_else(|_| err(format!("{name}: {v:?} is not a number")))
}

/// Parse `YYYYMMDD`, `YYYYMMDDTHHMMSS` or `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_ical_datetime(v: &str) -> Result<Until, RruleError> {
    let v = v.trim();
    let bad = || {
        RruleError(format!(
            "{v:?} is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS[Z])"
        ))
    };
    let num = |s: &str| -> Result<i32, RruleError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i32>().map_err(|_| bad())
    };
    if v.len() < 8 || !v.is_ascii() {
        return Err(bad());
    }
    let (y, m, d) = (num(&v[0..4])?, num(&v[4..6])?, num(&v[6..8])?);
    let date = Date::new(y as i16, m as i8, d as i8).map_err(|_| bad())?;
    let rest = &v[8..];
    if rest.is_empty() {
        return Ok(Until::Date(date));
    }
    let (utc, rest) = match rest.strip_suffix('Z') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.strip_prefix('T').ok_or_else(bad)?;
    if rest.len() != 6 || !rest.is_ascii() {
        return Err(bad());
    }
    let (h, mi, s) = (num(&rest[0..2])?, num(&rest[2..4])?, num(&rest[4..6])?);
    let time = jiff::civil::Time::new(h as i8, mi as i8, s.min(59) as i8, 0).map_err(|_| bad())?;
    let dt = date.to_datetime(time);
    if utc {
        let ts = dt
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map_err(|_| bad())?
            .timestamp();
        Ok(Until::Utc(ts))
    } else {
        Ok(Until::Local(dt))
    }
}

/// `DTSTART[;TZID=Zone][;VALUE=DATE|DATE-TIME]:value` → (TZID, value). The value is after the
/// first `:` outside a quoted parameter (`TZID="W. Europe Standard Time"`).
fn split_dtstart(line: &str) -> Result<(Option<String>, &str), RruleError> {
    let mut quoted = false;
    let colon = line.char_indices().find_map(|(i, c)| {
        if c == '"' {
            quoted = !quoted;
        }
        (c == ':' && !quoted).then_some(i)
    });
    let Some(colon) = colon else {
        return err(format!("DTSTART {line:?} has no value"));
    };
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut tzid = None;
    for param in head.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else {
            return err(format!("DTSTART parameter {param:?} is not NAME=VALUE"));
        };
        match k.trim().to_ascii_uppercase().as_str() {
            "TZID" => tzid = Some(v.trim().trim_matches('"').to_string()),
            "VALUE" => match v.trim().to_ascii_uppercase().as_str() {
                "DATE" | "DATE-TIME" => {}
                other => return err(format!("DTSTART VALUE={other} is not DATE or DATE-TIME")),
            },
            other => return err(format!("unknown DTSTART parameter {other:?}")),
        }
    }
    Ok((tzid, value))
}

impl Recurrence {
    /// The one parser of window rules: [`Recurrence::parse`], then the anchor is read in the
    /// window's zone (`zone`, an IANA name). A `DTSTART;TZID=` must name the same zone (the
    /// window's `time_zone` decides when it opens; two zones would make the anchor ambiguous);
    /// a UTC `DTSTART:…Z` is converted to the window's local date.
    pub fn for_window(text: &str, zone: &str) -> Result<Recurrence, RruleError> {
        let (mut r, utc) = Recurrence::parse_anchored(text)?;
        let Some(tz) = super::time_zone(zone) else {
            return err(format!("unknown time zone {zone:?}"));
        };
        if let Some(z) = &r.dtstart_zone
            && !z.trim().eq_ignore_ascii_case(zone.trim())
            && super::time_zone(z).map(|t| t.iana_name().map(str::to_owned))
                != Some(tz.iana_name().map(str::to_owned))
        {
            return err(format!(
                "DTSTART TZID={z:?} disagrees with the window's time_zone {zone:?} (give DTSTART in the window's zone, or without TZID)"
            ));
        }
        if let Some(ts) = utc {
            r.dtstart = Some(ts.to_zoned_datetime(tz).date());
        }
        Ok(r)
    }

    /// Parse a rule; see the module documentation for accepted forms. Without a window zone a
    /// UTC `DTSTART` counts by its UTC date; windows use [`Recurrence::for_window`].
    pub fn parse(text: &str) -> Result<Recurrence, RruleError> {
        Recurrence::parse_anchored(text).map(|(r, _)| r)
    }

    /// The rule, and the instant of a UTC `DTSTART` (its local date depends on the zone).
    fn parse_anchored(text: &str) -> Result<(Recurrence, Option<Timestamp>), RruleError> {
        let mut dtstart = None;
        let mut dtstart_zone = None;
        let mut utc = None;
        let mut rule_text = None;
        for raw in text.split(['\n', '\r']) {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("DTSTART") {
                if dtstart.is_some() {
                    return err("more than one DTSTART line");
                }
                let (tzid, value) = split_dtstart(line)?;
                if let Some(z) = &tzid
                    && super::time_zone(z).is_none()
                {
                    return err(format!("DTSTART TZID={z:?} is not a known IANA time zone"));
                }
                let d = match parse_ical_datetime(value)? {
                    Until::Date(d) => d,
                    Until::Local(dt) => dt.date(),
                    Until::Utc(ts) => {
                        if tzid.is_some() {
                            return err("DTSTART with TZID must be a local time (no trailing Z)");
                        }
                        utc = Some(ts);
                        ts.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()
                    }
                };
                dtstart = Some(d);
                dtstart_zone = tzid;
            } else if let Some(r) = upper.strip_prefix("RRULE:") {
                if rule_text.is_some() {
                    return err("more than one RRULE");
                }
                rule_text = Some(r.to_string());
            } else if upper.starts_with("FREQ=") || upper.contains(";FREQ=") {
                if rule_text.is_some() {
                    return err("more than one RRULE");
                }
                rule_text = Some(upper);
            } else {
                return err(format!(
                    "not an RRULE: unexpected line {line:?} (expected FREQ=…, RRULE:FREQ=… or DTSTART…)"
                ));
            }
        }
        let Some(rule_text) = rule_text else {
            return err("no RRULE (expected e.g. FREQ=MONTHLY;BYDAY=2TU)");
        };
        let mut freq = None;
        let mut r = Recurrence {
            freq: Freq::Daily,
            interval: 1,
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_month: Vec::new(),
            by_set_pos: Vec::new(),
            count: None,
            until: None,
            week_start: Weekday::Monday,
            dtstart,
            dtstart_zone,
        };
        for part in rule_text.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((k, v)) = part.split_once('=') else {
                return err(format!("{part:?} is not NAME=VALUE"));
            };
            let v = v.trim();
            match k.trim() {
                "FREQ" => {
                    freq = Some(match v {
                        "DAILY" => Freq::Daily,
                        "WEEKLY" => Freq::Weekly,
                        "MONTHLY" => Freq::Monthly,
                        "YEARLY" => Freq::Yearly,
                        "SECONDLY" | "MINUTELY" | "HOURLY" => {
                            return err(format!(
                                "FREQ={v} is not supported for maintenance windows (use DAILY, WEEKLY, MONTHLY or YEARLY)"
                            ));
                        }
                        _ => return err(format!("FREQ={v} is not a frequency")),
                    })
                }
                "INTERVAL" => {
                    let n = parse_int("INTERVAL", v)?;
                    if n < 1 {
                        return err("INTERVAL must be at least 1");
                    }
                    r.interval = n as u32;
                }
                "COUNT" => {
                    let n = parse_int("COUNT", v)?;
                    if n < 1 {
                        return err("COUNT must be at least 1");
                    }
                    r.count = Some(n as u32);
                }
                "UNTIL" => r.until = Some(parse_ical_datetime(v)?),
                "WKST" => {
                    r.week_start = parse_weekday(v)
                        .ok_or_else(|| RruleError(format!("WKST={v} is not a weekday")))?
                }
                "BYDAY" => {
                    for item in v.split(',') {
                        let item = item.trim();
                        if item.len() < 2 || !item.is_ascii() {
                            return err(format!("BYDAY item {item:?} is not e.g. TU, 2TU or -1FR"));
                        }
                        let (ord, wd) = item.split_at(item.len() - 2);
                        let wd = parse_weekday(wd).ok_or_else(|| {
                            RruleError(format!("BYDAY item {item:?} is not e.g. TU, 2TU or -1FR"))
                        })?;
                        let ord = if ord.is_empty() {
                            None
                        } else {
                            let n = parse_int("BYDAY", ord)?;
                            if n == 0 || !(-53..=53).contains(&n) {
                                return err(format!(
                                    "BYDAY ordinal in {item:?} must be 1..53 or -53..-1"
                                ));
                            }
                            Some(n)
                        };
                        r.by_day.push((ord, wd));
                    }
                }
                "BYMONTHDAY" => {
                    for item in v.split(',') {
                        let n = parse_int("BYMONTHDAY", item)?;
                        if n == 0 || !(-31..=31).contains(&n) {
                            return err(format!("BYMONTHDAY={n} must be 1..31 or -31..-1"));
                        }
                        r.by_month_day.push(n);
                    }
                }
                "BYMONTH" => {
                    for item in v.split(',') {
                        let n = parse_int("BYMONTH", item)?;
                        if !(1..=12).contains(&n) {
                            return err(format!("BYMONTH={n} must be 1..12"));
                        }
                        r.by_month.push(n as i8);
                    }
                }
                "BYSETPOS" => {
                    for item in v.split(',') {
                        let n = parse_int("BYSETPOS", item)?;
                        if n == 0 || !(-366..=366).contains(&n) {
                            return err(format!("BYSETPOS={n} must be 1..366 or -366..-1"));
                        }
                        r.by_set_pos.push(n);
                    }
                }
                "BYWEEKNO" | "BYYEARDAY" | "BYHOUR" | "BYMINUTE" | "BYSECOND" => {
                    return err(format!(
                        "{k} is not supported (supported: FREQ, INTERVAL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL, WKST)"
                    ));
                }
                other => return err(format!("unknown RRULE part {other:?}")),
            }
        }
        let Some(freq) = freq else {
            return err("RRULE has no FREQ");
        };
        r.freq = freq;
        if r.count.is_some() && r.until.is_some() {
            return err("COUNT and UNTIL cannot both be given");
        }
        if matches!(freq, Freq::Weekly | Freq::Daily) && r.by_day.iter().any(|(o, _)| o.is_some()) {
            return err("BYDAY ordinals (e.g. 2TU) need FREQ=MONTHLY or FREQ=YEARLY");
        }
        if freq == Freq::Weekly && !r.by_month_day.is_empty() {
            return err("BYMONTHDAY cannot be used with FREQ=WEEKLY");
        }
        if r.dtstart.is_none() {
            if r.count.is_some() {
                return err("COUNT needs a DTSTART line to count from");
            }
            if r.interval > 1 {
                return err("INTERVAL greater than 1 needs a DTSTART line to count from");
            }
            let needs_anchor = match freq {
                Freq::Daily => false,
                Freq::Weekly => r.by_day.is_empty(),
                Freq::Monthly => r.by_day.is_empty() && r.by_month_day.is_empty(),
                Freq::Yearly => r.by_day.is_empty() && r.by_month_day.is_empty(),
            };
            if needs_anchor {
                return err(format!(
                    "FREQ={} without a day part (BYDAY/BYMONTHDAY) needs a DTSTART line",
                    match freq {
                        Freq::Daily => "DAILY",
                        Freq::Weekly => "WEEKLY",
                        Freq::Monthly => "MONTHLY",
                        Freq::Yearly => "YEARLY",
                    }
                ));
            }
        }
        Ok((r, utc))
    }

    /// Index of the period containing `d` (days, weeks, months or years since an epoch).
    fn period_index(&self, d: Date) -> i64 {
        match self.freq {
            Freq::Daily => days_since_epoch(d),
            Freq::Weekly => (days_since_epoch(week_start_of(d, self.week_start))
                - self.week_base())
            .div_euclid(7),
            Freq::Monthly => i64::from(d.year()) * 12 + i64::from(d.month()) - 1,
            Freq::Yearly => i64::from(d.year()),
        }
    }

    /// Day number of the first week start on or before 1970-01-01.
    fn week_base(&self) -> i64 {
        days_since_epoch(week_start_of(Date::constant(1970, 1, 1), self.week_start))
    }

    /// First date of period `idx`.
    fn period_start(&self, idx: i64) -> Option<Date> {
        match self.freq {
            Freq::Daily => date_from_days(idx),
            Freq::Weekly => date_from_days(self.week_base() + idx * 7),
            Freq::Monthly => {
                let y = idx.div_euclid(12);
                let m = idx.rem_euclid(12) + 1;
                Date::new(i16::try_from(y).ok()?, m as i8, 1).ok()
            }
            Freq::Yearly => Date::new(i16::try_from(idx).ok()?, 1, 1).ok(),
        }
    }

    /// Candidate dates of one period, sorted, before `BYSETPOS` and `DTSTART`/`COUNT`/`UNTIL`.
    fn expand_period(&self, start: Date, out: &mut Vec<Date>) {
        out.clear();
        let anchor = self.dtstart;
        match self.freq {
            Freq::Daily => {
                if self.passes_limits(start, true, true) {
                    out.push(start);
                }
            }
            Freq::Weekly => {
                for i in 0..7 {
                    let Some(d) = add_days(start, i) else {
                        continue;
                    };
                    let keep = if self.by_day.is_empty() {
                        anchor.is_some_and(|a| a.weekday() == d.weekday())
                    } else {
                        self.by_day.iter().any(|(_, w)| *w == d.weekday())
                    };
                    if keep && self.month_ok(d) {
                        out.push(d);
                    }
                }
            }
            Freq::Monthly => {
                if !self.month_ok(start) {
                    return;
                }
                self.expand_month(start, anchor, out);
            }
            Freq::Yearly => {
                let year = start.year();
                let months: Vec<i8> = if !self.by_month.is_empty() {
                    let mut m = self.by_month.clone();
                    m.sort_unstable();
                    m.dedup();
                    m
                } else if !self.by_month_day.is_empty() {
                    (1..=12).collect()
                } else if !self.by_day.is_empty() {
                    Vec::new() // year-wide BYDAY, handled below
                } else {
                    anchor.map(|a| vec![a.month()]).unwrap_or_default()
                };
                if self.by_month.is_empty()
                    && self.by_month_day.is_empty()
                    && !self.by_day.is_empty()
                {
                    // BYDAY over the whole year (e.g. 20MO = 20th Monday of the year).
                    let first = start;
                    let Some(last) = Date::new(year, 12, 31).ok() else {
                        return;
                    };
                    expand_by_day(&self.by_day, first, last, out);
                } else {
                    for m in months {
                        let Ok(first) = Date::new(year, m, 1) else {
                            continue;
                        };
                        self.expand_month(first, anchor, out);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    fn month_ok(&self, d: Date) -> bool {
        self.by_month.is_empty() || self.by_month.contains(&d.month())
    }

    fn monthday_ok(&self, d: Date) -> bool {
        if self.by_month_day.is_empty() {
            return true;
        }
        let dim = i32::from(d.days_in_month());
        let day = i32::from(d.day());
        self.by_month_day
            .iter()
            .any(|&n| if n > 0 { n == day } else { dim + 1 + n == day })
    }

    fn passes_limits(&self, d: Date, by_day: bool, by_month_day: bool) -> bool {
        self.month_ok(d)
            && (!by_month_day || self.monthday_ok(d))
            && (!by_day
                || self.by_day.is_empty()
                || self.by_day.iter().any(|(_, w)| *w == d.weekday()))
    }

    /// Expand one month (`first` = its first day) by BYMONTHDAY / BYDAY / the anchor's day.
    fn expand_month(&self, first: Date, anchor: Option<Date>, out: &mut Vec<Date>) {
        let last = first.last_of_month();
        if !self.by_day.is_empty() {
            let mut days = Vec::new();
            expand_by_day(&self.by_day, first, last, &mut days);
            for d in days {
                if self.monthday_ok(d) {
                    out.push(d);
                }
            }
        } else if !self.by_month_day.is_empty() {
            let dim = i32::from(first.days_in_month());
            for &n in &self.by_month_day {
                let day = if n > 0 { n } else { dim + 1 + n };
                if (1..=dim).contains(&day)
                    && let Ok(d) = Date::new(first.year(), first.month(), day as i8)
                {
                    out.push(d);
                }
            }
        } else if let Some(a) = anchor
            && a.day() <= first.days_in_month()
            && let Ok(d) = Date::new(first.year(), first.month(), a.day())
        {
            out.push(d);
        }
    }

    /// Rule dates `d` with `from <= d <= to` (local dates), in order. `resolve` turns a rule
    /// date into its start instant (needed only for `UNTIL=…Z`).
    pub fn dates_between(
        &self,
        from: Date,
        to: Date,
        start_local: jiff::civil::Time,
        resolve: &dyn Fn(Date) -> Option<Timestamp>,
    ) -> Vec<Date> {
        let mut result = Vec::new();
        if from > to {
            return result;
        }
        let interval = i64::from(self.interval.max(1));
        // With COUNT every occurrence from DTSTART counts, so start there; otherwise jump to the
        // first period of the series that can contain `from`.
        let anchor_idx = self.dtstart.map(|a| self.period_index(a));
        let mut idx = match (anchor_idx, self.count) {
            (Some(a), Some(_)) => a,
            (Some(a), None) => {
                let f = self.period_index(from.max(self.dtstart.unwrap_or(from)));
                a + (f - a).div_euclid(interval) * interval
            }
            (None, _) => self.period_index(from),
        };
        let last_idx = self.period_index(to);
        let mut emitted: u32 = 0;
        let mut buf = Vec::new();
        while idx <= last_idx {
            let Some(pstart) = self.period_start(idx) else {
                break;
            };
            self.expand_period(pstart, &mut buf);
            if !self.by_set_pos.is_empty() {
                let n = buf.len() as i64;
                let mut picked: Vec<Date> = self
                    .by_set_pos
                    .iter()
                    .filter_map(|&p| {
                        let i = if p > 0 {
                            i64::from(p) - 1
                        } else {
                            n + i64::from(p)
                        };
                        (0..n)
                            .contains(&i)
                            .then(|| buf.get(i as usize).copied())
                            .flatten()
                    })
                    .collect();
                picked.sort_unstable();
                picked.dedup();
                buf = picked;
            }
            for &d in &buf {
                if self.dtstart.is_some_and(|a| d < a) {
                    continue;
                }
                if let Some(until) = self.until {
                    let past = match until {
                        Until::Date(u) => d > u,
                        Until::Local(u) => d.to_datetime(start_local) > u,
                        Until::Utc(u) => resolve(d).is_none_or(|ts| ts > u),
                    };
                    if past {
                        return result;
                    }
                }
                if let Some(c) = self.count {
                    if emitted >= c {
                        return result;
                    }
                    emitted += 1;
                }
                if d > to {
                    return result;
                }
                if d >= from {
                    result.push(d);
                }
            }
            idx += interval;
        }
        result
    }
}

fn days_since_epoch(d: Date) -> i64 {
    let epoch = Date::constant(1970, 1, 1);
    epoch
        .until((jiff::Unit::Day, d))
        .map(|s| i64::from(s.get_days()))
        .unwrap_or(0)
}

fn date_from_days(n: i64) -> Option<Date> {
    let epoch = Date::constant(1970, 1, 1);
    epoch.checked_add(Span::new().try_days(n).ok()?).ok()
}

pub(crate) fn add_days(d: Date, n: i64) -> Option<Date> {
    d.checked_add(Span::new().try_days(n).ok()?).ok()
}

fn week_start_of(d: Date, wkst: Weekday) -> Date {
    let back = i64::from(
        (d.weekday().to_monday_zero_offset() - wkst.to_monday_zero_offset()).rem_euclid(7),
    );
    add_days(d, -back).unwrap_or(d)
}

/// Expand BYDAY over `[first, last]` (a month or a year): plain weekdays give every such day,
/// ordinals pick the n-th (or n-th from the end).
fn expand_by_day(by_day: &[(Option<i32>, Weekday)], first: Date, last: Date, out: &mut Vec<Date>) {
    for &(ord, wd) in by_day {
        // first occurrence of wd on or after `first`
        let shift = i64::from(
            (wd.to_monday_zero_offset() - first.weekday().to_monday_zero_offset()).rem_euclid(7),
        );
        let Some(first_wd) = add_days(first, shift) else {
            continue;
        };
        let mut all = Vec::new();
        let mut d = first_wd;
        while d <= last {
            all.push(d);
            match add_days(d, 7) {
                Some(n) => d = n,
                None => break,
            }
        }
        match ord {
            None => out.extend(all),
            Some(n) if n > 0 => {
                if let Some(d) = all.get(n as usize - 1) {
                    out.push(*d);
                }
            }
            Some(n) => {
                let i = all.len() as i64 + i64::from(n);
                if i >= 0
                    && let Some(d) = all.get(i as usize)
                {
                    out.push(*d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn dates(rule: &str, from: Date, to: Date) -> Vec<Date> {
        let r = Recurrence::parse(rule).unwrap_or_else(|e| unreachable!("{rule}: {e}"));
        r.dates_between(from, to, time(22, 0, 0, 0), &|_| None)
    }

    #[test]
    fn second_tuesday_of_each_month() {
        let got = dates(
            "FREQ=MONTHLY;BYDAY=2TU",
            date(2026, 1, 1),
            date(2026, 12, 31),
        );
        let days: Vec<i8> = got.iter().map(|d| d.day()).collect();
        assert_eq!(days, vec![13, 10, 10, 14, 12, 9, 14, 11, 8, 13, 10, 8]);
    }

    #[test]
    fn last_friday_and_negative_monthday() {
        let got = dates(
            "FREQ=MONTHLY;BYDAY=-1FR",
            date(2026, 2, 1),
            date(2026, 3, 31),
        );
        assert_eq!(got, vec![date(2026, 2, 27), date(2026, 3, 27)]);
        let got = dates(
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            date(2026, 2, 1),
            date(2026, 4, 30),
        );
        assert_eq!(
            got,
            vec![date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]
        );
    }

    #[test]
    fn weekly_days_and_daily() {
        let got = dates(
            "FREQ=WEEKLY;BYDAY=SA,SU",
            date(2026, 11, 1),
            date(2026, 11, 8),
        );
        assert_eq!(
            got,
            vec![date(2026, 11, 1), date(2026, 11, 7), date(2026, 11, 8)]
        );
        let got = dates(
            "FREQ=DAILY;BYDAY=MO,FR",
            date(2026, 11, 1),
            date(2026, 11, 8),
        );
        assert_eq!(got, vec![date(2026, 11, 2), date(2026, 11, 6)]);
    }

    #[test]
    fn bysetpos_last_weekday_of_month() {
        let got = dates(
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            date(2026, 10, 1),
            date(2026, 11, 30),
        );
        assert_eq!(got, vec![date(2026, 10, 30), date(2026, 11, 30)]);
    }

    #[test]
    fn interval_count_until_need_and_use_dtstart() {
        assert!(Recurrence::parse("FREQ=WEEKLY;INTERVAL=2;BYDAY=SA").is_err());
        assert!(Recurrence::parse("FREQ=DAILY;COUNT=3").is_err());
        assert!(Recurrence::parse("FREQ=WEEKLY").is_err());
        let got = dates(
            "DTSTART:20261107T220000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SA;COUNT=3",
            date(2026, 1, 1),
            date(2027, 12, 31),
        );
        assert_eq!(
            got,
            vec![date(2026, 11, 7), date(2026, 11, 21), date(2026, 12, 5)]
        );
        // Asking for a later range still honours COUNT from DTSTART.
        let got = dates(
            "DTSTART:20261107\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SA;COUNT=3",
            date(2026, 11, 20),
            date(2027, 12, 31),
        );
        assert_eq!(got, vec![date(2026, 11, 21), date(2026, 12, 5)]);
        let got = dates(
            "FREQ=DAILY;UNTIL=20261103",
            date(2026, 11, 1),
            date(2026, 11, 30),
        );
        assert_eq!(got.len(), 3);
        let got = dates(
            "DTSTART:20261107\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SA",
            date(2027, 1, 1),
            date(2027, 1, 31),
        );
        assert_eq!(
            got,
            vec![date(2027, 1, 2), date(2027, 1, 16), date(2027, 1, 30)]
        );
    }

    #[test]
    fn yearly_forms() {
        let got = dates(
            "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
            date(2026, 1, 1),
            date(2027, 12, 31),
        );
        assert_eq!(got, vec![date(2026, 11, 26), date(2027, 11, 25)]);
        let got = dates(
            "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24,31",
            date(2026, 1, 1),
            date(2026, 12, 31),
        );
        assert_eq!(got, vec![date(2026, 12, 24), date(2026, 12, 31)]);
        let got = dates(
            "DTSTART:20250704\nRRULE:FREQ=YEARLY",
            date(2026, 1, 1),
            date(2027, 12, 31),
        );
        assert_eq!(got, vec![date(2026, 7, 4), date(2027, 7, 4)]);
    }

    #[test]
    fn rejects_unsupported_and_garbage() {
        for bad in [
            "",
            "FREQ=HOURLY",
            "FREQ=MONTHLY;BYWEEKNO=3",
            "FREQ=MONTHLY;BYDAY=9XX",
            "FREQ=WEEKLY;BYDAY=2TU",
            "FREQ=MONTHLY;BYMONTHDAY=0",
            "FREQ=MONTHLY;BYDAY=TU;FOO=1",
            "BYDAY=TU",
        ] {
            assert!(
                Recurrence::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
