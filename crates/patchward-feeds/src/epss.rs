//! FIRST EPSS scores.
//!
//! Daily file (`epss_scores-YYYY-MM-DD.csv[.gz]`): a comment line
//! `#model_version:v2026.06.15,score_date:2026-09-29T12:00:22Z`, the header
//! `cve,epss,percentile`, then one row per CVE — unsorted, numbers sometimes in scientific
//! notation (`6e-05`). Time series (`CVE-2025-33053.epss`): `date,model,epss,percentile`, one
//! row per day; the CVE comes from the file name.

use crate::error::ParseError;
use crate::input::decode_text;
use crate::util::{clip, is_cve_id};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::Offset;
use patchward_core::intel::EpssScore;
use std::collections::BTreeMap;
use std::path::Path;

/// One daily EPSS file.
#[derive(Debug, Clone, PartialEq)]
pub struct EpssFile {
    pub model_version: String,
    pub score_date: Date,
    pub scores: Vec<EpssScore>,
}

impl EpssFile {
    pub fn get(&self, cve: &str) -> Option<&EpssScore> {
        self.scores.iter().find(|s| s.cve == cve)
    }

    pub fn by_cve(&self) -> BTreeMap<&str, &EpssScore> {
        self.scores.iter().map(|s| (s.cve.as_str(), s)).collect()
    }
}

/// Numbered, non-empty lines (1-based line numbers; CR stripped).
fn lines(text: &str) -> impl Iterator<Item = (u64, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

fn split_row(l: &str) -> Vec<&str> {
    l.split(',')
        .map(|c| c.trim().trim_matches('"').trim())
        .collect()
}

/// Column indices for the named columns (case-insensitive).
fn columns(
    source: &str,
    line: u64,
    header: &[&str],
    want: &[&str],
) -> Result<Vec<usize>, ParseError> {
    want.iter()
        .map(|w| {
            header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(w))
                .ok_or_else(|| {
                    ParseError::at(
                        source,
                        Some(line),
                        Some(w),
                        format!(
                            "missing column (header is {:?})",
                            clip(&header.join(","), 80)
                        ),
                    )
                })
        })
        .collect()
}

fn probability(source: &str, line: u64, field: &str, s: &str) -> Result<f64, ParseError> {
    let v: f64 = s.parse().map_err(|_| {
        ParseError::at(
            source,
            Some(line),
            Some(field),
            format!("not a number: {:?}", clip(s, 40)),
        )
    })?;
    if !(0.0..=1.0).contains(&v) {
        // NaN also fails `contains`.
        return Err(ParseError::at(
            source,
            Some(line),
            Some(field),
            format!("must be between 0 and 1, got {:?}", clip(s, 40)),
        ));
    }
    Ok(v)
}

/// The date in a name like `epss_scores-2026-09-29.csv.gz`.
fn date_from_name(name: &str) -> Option<Date> {
    let base = Path::new(name).file_name()?.to_string_lossy().into_owned();
    let b = base.as_bytes();
    (0..b.len().saturating_sub(9)).find_map(|i| {
        let cand = base.get(i..i + 10)?;
        let shaped = cand.bytes().enumerate().all(|(j, c)| {
            if j == 4 || j == 7 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
        if shaped { cand.parse().ok() } else { None }
    })
}

/// Parse the comment line `#model_version:…,score_date:…`.
fn parse_comment(
    source: &str,
    line: u64,
    l: &str,
) -> Result<(Option<String>, Option<Date>), ParseError> {
    let mut model = None;
    let mut date = None;
    for part in l.trim_start_matches('#').split(',') {
        let Some((k, v)) = part.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "model_version" if !v.is_empty() => model = Some(v.to_string()),
            "score_date" => {
                let d = if let Ok(ts) = v.parse::<Timestamp>() {
                    Offset::UTC.to_datetime(ts).date()
                } else {
                    v.get(..10)
                        .and_then(|p| p.parse::<Date>().ok())
                        .ok_or_else(|| {
                            ParseError::at(
                                source,
                                Some(line),
                                Some("score_date"),
                                format!("not a date: {:?}", clip(v, 40)),
                            )
                        })?
                };
                date = Some(d);
            }
            _ => {}
        }
    }
    Ok((model, date))
}

/// Parse a daily EPSS CSV. The score date comes from the comment line, else from the file name
/// (`epss_scores-2026-09-29.csv`); without either it is an error. A duplicate CVE is an error.
pub fn parse_daily(source: &str, bytes: &[u8]) -> Result<EpssFile, ParseError> {
    let text = decode_text(bytes);
    let mut it = lines(&text).peekable();
    let mut model = None;
    let mut date = None;
    while let Some((n, l)) = it.peek().copied() {
        if !l.trim_start().starts_with('#') {
            break;
        }
        let (m, d) = parse_comment(source, n, l)?;
        model = model.or(m);
        date = date.or(d);
        it.next();
    }
    let (hline, header) = it
        .next()
        .ok_or_else(|| ParseError::whole(source, "empty EPSS file: no header line"))?;
    let header = split_row(header);
    let idx = columns(source, hline, &header, &["cve", "epss", "percentile"])?;
    let score_date = date.or_else(|| date_from_name(source)).ok_or_else(|| {
        ParseError::whole(
            source,
            "no score date: expected a \"#model_version:…,score_date:…\" line or a file name like epss_scores-2026-09-29.csv",
        )
    })?;
    let model_version = model.unwrap_or_else(|| "unknown".to_string());
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut scores = Vec::new();
    for (n, l) in it {
        if l.trim_start().starts_with('#') {
            continue;
        }
        let row = split_row(l);
        if row.len() != header.len() {
            return Err(ParseError::at_line(
                source,
                n,
                format!("expected {} fields, found {}", header.len(), row.len()),
            ));
        }
        let cve = row[idx[0]];
        if !is_cve_id(cve) {
            return Err(ParseError::at(
                source,
                Some(n),
                Some("cve"),
                format!("not a CVE id: {:?}", clip(cve, 40)),
            ));
        }
        if let Some(prev) = seen.insert(cve.to_string(), n) {
            return Err(ParseError::at(
                source,
                Some(n),
                Some("cve"),
                format!("{cve} is listed twice (also line {prev})"),
            ));
        }
        scores.push(EpssScore {
            cve: cve.to_string(),
            epss: probability(source, n, "epss", row[idx[1]])?,
            percentile: probability(source, n, "percentile", row[idx[2]])?,
            model_version: model_version.clone(),
            score_date,
        });
    }
    if scores.is_empty() {
        return Err(ParseError::whole(source, "the EPSS file has no scores"));
    }
    Ok(EpssFile {
        model_version,
        score_date,
        scores,
    })
}

/// The CVE id in a time-series file name (`…/CVE-2025-33053.epss`).
pub fn cve_from_name(name: &str) -> Option<String> {
    let base = Path::new(name).file_name()?.to_string_lossy().into_owned();
    let stem = base.split('.').next()?.to_ascii_uppercase();
    is_cve_id(&stem).then_some(stem)
}

/// Parse an EPSS time series (`date,model,epss,percentile`) for the CVE named by the file name.
/// Returns one score per row, oldest first as in the file (callers keep the newest).
pub fn parse_timeseries(source: &str, bytes: &[u8]) -> Result<Vec<EpssScore>, ParseError> {
    let cve = cve_from_name(source).ok_or_else(|| {
        ParseError::whole(
            source,
            "the file name must be the CVE id, e.g. CVE-2025-33053.epss",
        )
    })?;
    parse_timeseries_for(source, &cve, bytes)
}

/// Parse an EPSS time series for an explicitly given CVE.
pub fn parse_timeseries_for(
    source: &str,
    cve: &str,
    bytes: &[u8],
) -> Result<Vec<EpssScore>, ParseError> {
    if !is_cve_id(cve) {
        return Err(ParseError::whole(
            source,
            format!("not a CVE id: {:?}", clip(cve, 40)),
        ));
    }
    let text = decode_text(bytes);
    let mut it = lines(&text).filter(|(_, l)| !l.trim_start().starts_with('#'));
    let (hline, header) = it
        .next()
        .ok_or_else(|| ParseError::whole(source, "empty EPSS time series: no header line"))?;
    let header = split_row(header);
    let idx = columns(
        source,
        hline,
        &header,
        &["date", "model", "epss", "percentile"],
    )?;
    let mut out = Vec::new();
    let mut seen: BTreeMap<Date, u64> = BTreeMap::new();
    for (n, l) in it {
        let row = split_row(l);
        if row.len() != header.len() {
            return Err(ParseError::at_line(
                source,
                n,
                format!("expected {} fields, found {}", header.len(), row.len()),
            ));
        }
        let d: Date = row[idx[0]].parse().map_err(|_| {
            ParseError::at(
                source,
                Some(n),
                Some("date"),
                format!("not a date (YYYY-MM-DD): {:?}", clip(row[idx[0]], 40)),
            )
        })?;
        if let Some(prev) = seen.insert(d, n) {
            return Err(ParseError::at(
                source,
                Some(n),
                Some("date"),
                format!("{d} is listed twice (also line {prev})"),
            ));
        }
        let model = row[idx[1]];
        if model.is_empty() {
            return Err(ParseError::at(source, Some(n), Some("model"), "empty"));
        }
        out.push(EpssScore {
            cve: cve.to_string(),
            epss: probability(source, n, "epss", row[idx[2]])?,
            percentile: probability(source, n, "percentile", row[idx[3]])?,
            model_version: model.to_string(),
            score_date: d,
        });
    }
    if out.is_empty() {
        return Err(ParseError::whole(
            source,
            "the EPSS time series has no rows",
        ));
    }
    Ok(out)
}

/// The newest score per CVE (by score date) from any number of scores.
pub fn newest(scores: impl IntoIterator<Item = EpssScore>) -> BTreeMap<String, EpssScore> {
    let mut out: BTreeMap<String, EpssScore> = BTreeMap::new();
    for s in scores {
        match out.get(&s.cve) {
            Some(cur) if cur.score_date >= s.score_date => {}
            _ => {
                out.insert(s.cve.clone(), s);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_with_scientific_notation() {
        let f = "#model_version:v2026.06.15,score_date:2026-09-29T12:00:22Z\r\ncve,epss,percentile\r\nCVE-2023-20914,0.0006,6e-05\r\nCVE-2023-1000,1,1.0\r\n";
        let e = parse_daily("e.csv", f.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(e.model_version, "v2026.06.15");
        assert_eq!(e.score_date.to_string(), "2026-09-29");
        assert_eq!(e.scores[0].percentile, 6e-05);
        assert_eq!(e.scores.len(), 2);
    }

    #[test]
    fn daily_errors_name_line_and_field() {
        let f = "cve,epss,percentile\nCVE-2023-1000,0.1,0.2\nCVE-2023-1001,NaN,0.2\n";
        let e = parse_daily("epss_scores-2026-01-02.csv", f.as_bytes()).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(
                "epss_scores-2026-01-02.csv:3: field \"epss\": must be between 0 and 1, got \"NaN\""
            )
        );
        let f = "cve,epss,percentile\nCVE-2023-1000,1.5,0.2\n";
        assert!(parse_daily("epss_scores-2026-01-02.csv", f.as_bytes()).is_err());
        // No date anywhere.
        let f = "cve,epss,percentile\nCVE-2023-1000,0.5,0.2\n";
        assert!(parse_daily("x.csv", f.as_bytes()).is_err());
        let f = "cve,score\nCVE-2023-1000,0.5\n";
        let e = parse_daily("epss_scores-2026-01-02.csv", f.as_bytes()).err();
        assert!(e.is_some_and(|e| e.field.as_deref() == Some("epss")));
    }

    #[test]
    fn timeseries_and_newest() {
        let f = "date,model,epss,percentile\n2025-06-11,v4,0.5,0.9\n2025-06-12,v4,0.25,0.8\n";
        let s = parse_timeseries("dir/CVE-2025-33053.epss", f.as_bytes())
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].cve, "CVE-2025-33053");
        let n = newest(s);
        assert_eq!(n["CVE-2025-33053"].epss, 0.25);
        assert!(parse_timeseries("x.epss", f.as_bytes()).is_err());
    }
}
