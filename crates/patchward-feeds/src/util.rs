//! Small value parsers shared by the feed and inventory readers: CVE ids, friendly durations,
//! booleans, lists, timestamps without a zone.

use jiff::civil::DateTime;
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};

/// `CVE-YYYY-NNNN…` (4 or more digits in the sequence number).
pub fn is_cve_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, seq)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=19).contains(&seq.len())
        && seq.bytes().all(|b| b.is_ascii_digit())
}

/// Parse a friendly duration: `90m`, `4h`, `1h 30m`, `3d`, `45s`, `2h30m`, also long unit names
/// (`90 minutes`, `1 hour`) and ISO 8601 (`PT1H30M`). Negative and zero durations are allowed
/// by the syntax; callers decide what they accept.
pub fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.starts_with(['P', 'p']) || t.starts_with("-P") {
        return t
            .parse::<SignedDuration>()
            .map_err(|e| format!("not a duration: {s:?} ({e})"));
    }
    let bad =
        || format!("not a duration: {s:?} (expected e.g. \"90m\", \"4h\", \"1h 30m\" or \"3d\")");
    let mut total: i64 = 0;
    let mut rest = t;
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let ulen = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = rest[..ulen].to_ascii_lowercase();
        rest = rest[ulen..].trim_start_matches([',', ' ']);
        let secs = match unit.as_str() {
            "d" | "day" | "days" => 86_400,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        any = true;
    }
    if !any {
        return Err(bad());
    }
    Ok(SignedDuration::from_secs(total))
}

/// Format a duration in the friendly form read by [`parse_duration`] (`1h 30m`, `3d`, `45s`).
pub fn format_duration(d: SignedDuration) -> String {
    let mut secs = d.as_secs();
    let neg = secs < 0;
    // Sub-second parts are dropped: estate durations are whole seconds.
    secs = secs.unsigned_abs().min(i64::MAX as u64) as i64;
    if secs == 0 {
        return "0m".into();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    let s = parts.join(" ");
    if neg { format!("-{s}") } else { s }
}

/// `true/false/yes/no/1/0/y/n` (case-insensitive). Empty is `None`.
pub fn parse_bool(s: &str) -> Result<Option<bool>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "yes" | "y" | "1" => Ok(Some(true)),
        "false" | "no" | "n" | "0" => Ok(Some(false)),
        _ => Err(format!(
            "not a boolean: {s:?} (expected true/false or yes/no)"
        )),
    }
}

/// Split a list field on `;` or `,` (and newlines), trimming and dropping empty items.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([';', ',', '\n', '\r'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// An instant: RFC 3339 with an offset or `Z`; a date-time *without* a zone is read as UTC
/// (NVD writes `2024-05-14T17:17:12.410`).
pub fn parse_instant_utc_default(s: &str) -> Result<Timestamp, String> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let dt = t
        .parse::<DateTime>()
        .map_err(|e| format!("not a date-time: {s:?} ({e})"))?;
    Offset::UTC
        .to_timestamp(dt)
        .map_err(|e| format!("date-time out of range: {s:?} ({e})"))
}

/// An instant that must carry its offset (`2026-11-27T00:00:00-08:00` or `…Z`).
pub fn parse_instant(s: &str) -> Result<Timestamp, String> {
    s.trim().parse::<Timestamp>().map_err(|e| {
        format!("not an RFC 3339 instant with offset: {s:?} (e.g. 2026-11-27T00:00:00-08:00; {e})")
    })
}

/// Character-safe prefix for messages (never splits a UTF-8 sequence).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_ids() {
        assert!(is_cve_id("CVE-2024-30040"));
        assert!(is_cve_id("CVE-2024-1234"));
        assert!(!is_cve_id("CVE-24-1234"));
        assert!(!is_cve_id("CVE-2024-123"));
        assert!(!is_cve_id("cve-2024-1234"));
        assert!(!is_cve_id("CVE-2024-12a4"));
    }

    #[test]
    fn durations() {
        let p = |s: &str| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(p("90m"), Ok(5400));
        assert_eq!(p("4h"), Ok(14400));
        assert_eq!(p("1h 30m"), Ok(5400));
        assert_eq!(p("1h30m"), Ok(5400));
        assert_eq!(p("3d"), Ok(259_200));
        assert_eq!(p("90 minutes"), Ok(5400));
        assert_eq!(p("PT1H30M"), Ok(5400));
        assert!(p("").is_err());
        assert!(p("h").is_err());
        assert!(p("10").is_err());
        assert!(p("5 parsecs").is_err());
        assert!(p("99999999999999999999h").is_err());
        assert_eq!(format_duration(SignedDuration::from_secs(5400)), "1h 30m");
        assert_eq!(format_duration(SignedDuration::from_secs(259_200)), "3d");
        assert_eq!(format_duration(SignedDuration::ZERO), "0m");
    }

    #[test]
    fn instants() {
        let t = parse_instant_utc_default("2024-05-14T17:17:12.410").map(|t| t.to_string());
        assert_eq!(t.as_deref(), Ok("2024-05-14T17:17:12.41Z"));
        assert!(parse_instant("2026-11-27T00:00:00-08:00").is_ok());
        assert!(parse_instant("2026-11-27T00:00:00").is_err());
    }

    #[test]
    fn bools_lists() {
        assert_eq!(parse_bool("Yes"), Ok(Some(true)));
        assert_eq!(parse_bool(""), Ok(None));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(split_list("a; b,,c"), vec!["a", "b", "c"]);
    }
}
