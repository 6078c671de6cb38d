//! The files `plan` reads besides the store: job outcomes (`--outcomes`) and external due
//! dates (`--due`). Small CSVs read line by line, so that every error names the file's own
//! line number and the field.

use super::{Names, parse_due, parse_when};
use anyhow::{Result, anyhow, bail};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use patchward_core::plan::JobOutcome;
use std::collections::{BTreeMap, HashMap};

/// The non-blank, non-comment lines of a small CSV, each read as one record with its line
/// number, so that errors name the file's own line numbers.
fn csv_lines<'a>(
    file: &'a str,
    text: &'a str,
) -> impl Iterator<Item = Result<(usize, ::csv::StringRecord)>> + 'a {
    text.lines().enumerate().filter_map(move |(i, raw)| {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return None;
        }
        Some(
            ::csv::ReaderBuilder::new()
                .has_headers(false)
                .trim(::csv::Trim::All)
                .from_reader(trimmed.as_bytes())
                .records()
                .next()
                .unwrap_or_else(|| Ok(::csv::StringRecord::new()))
                .map(|rec| (line, rec))
                .map_err(|e| anyhow!("{file}:{line}: {e}")),
        )
    })
}

/// `server,outcome,at[,expected_end]`, one job a line; an optional header line; `#` comments.
/// Server names must be in the plan's scope; errors name the file, line and field.
pub fn parse_outcomes(
    file: &str,
    text: &str,
    scope: &[String],
    tz: &TimeZone,
) -> Result<BTreeMap<String, JobOutcome>> {
    let mut out: BTreeMap<String, JobOutcome> = BTreeMap::new();
    let in_scope: HashMap<String, &String> =
        scope.iter().map(|s| (s.trim().to_lowercase(), s)).collect();
    let mut first = true;
    for row in csv_lines(file, text) {
        let (line, rec) = row?;
        let is_header = first && rec.get(0).is_some_and(|f| f.eq_ignore_ascii_case("server"));
        first = false;
        if is_header {
            continue;
        }
        let at_line = |field: &str, msg: String| anyhow!("{file}:{line}: {field}: {msg}");
        if rec.len() < 3 || rec.len() > 4 {
            bail!(
                "{file}:{line}: expected server,outcome,at[,expected_end], got {} field(s)",
                rec.len()
            );
        }
        let name = rec.get(0).unwrap_or_default();
        let Some(&server) = in_scope.get(&name.trim().to_lowercase()) else {
            return Err(at_line(
                "server",
                format!("{name:?} is not in this plan's scope"),
            ));
        };
        let when = |i: usize, field: &str| -> Result<Timestamp> {
            let v = rec.get(i).unwrap_or_default();
            parse_when(v, tz).map_err(|e| at_line(field, format!("{v:?}: {e:#}")))
        };
        let outcome_word = rec.get(1).unwrap_or_default();
        let expected = rec.get(3).filter(|v| !v.is_empty());
        let outcome = match outcome_word.to_ascii_lowercase().as_str() {
            "finished" | "failed" if expected.is_some() => {
                return Err(at_line(
                    "expected_end",
                    format!("only running jobs have an expected end, this one is {outcome_word}"),
                ));
            }
            "finished" => JobOutcome::Finished { at: when(2, "at")? },
            "failed" => JobOutcome::Failed { at: when(2, "at")? },
            "running" => {
                let started = when(2, "at")?;
                if expected.is_none() {
                    return Err(at_line(
                        "expected_end",
                        "a running job needs its expected end".into(),
                    ));
                }
                let expected_end = when(3, "expected_end")?;
                if expected_end <= started {
                    return Err(at_line(
                        "expected_end",
                        "must be after the start (`at`)".into(),
                    ));
                }
                JobOutcome::Running {
                    started,
                    expected_end,
                }
            }
            other => {
                return Err(at_line(
                    "outcome",
                    format!("{other:?} is not finished, failed or running"),
                ));
            }
        };
        if out.insert(server.clone(), outcome).is_some() {
            return Err(at_line(
                "server",
                format!("{server} has more than one outcome"),
            ));
        }
    }
    Ok(out)
}

/// One line of a due file: the server (as the estate spells it), its due date, and where it
/// came from ("due file due.csv:3").
#[derive(Debug, Clone, PartialEq)]
pub struct DueRow {
    pub server: String,
    pub due: Timestamp,
    pub source: String,
}

/// `plan --due FILE`: a CSV with a header naming the columns `server` and `due` (others are
/// ignored), `#` comments and blank lines allowed. `due` is `YYYY-MM-DD` (23:59 UTC that day)
/// or an RFC 3339 instant. Every server must be in the estate. Errors name file:line and field.
pub fn parse_due_file(
    file: &str,
    text: &str,
    names: &Names<'_>,
    tz: &TimeZone,
) -> Result<Vec<DueRow>> {
    let mut columns: Option<(usize, usize)> = None;
    let mut out = Vec::new();
    for row in csv_lines(file, text) {
        let (line, rec) = row?;
        let Some((si, di)) = columns else {
            // The header: both columns by name, in any order.
            let find = |want: &str| rec.iter().position(|f| f.eq_ignore_ascii_case(want));
            match (find("server"), find("due")) {
                (Some(si), Some(di)) => columns = Some((si, di)),
                (None, _) => bail!(
                    "{file}:{line}: server: missing column (the first line must be a header naming the columns server,due)"
                ),
                (_, None) => bail!(
                    "{file}:{line}: due: missing column (the first line must be a header naming the columns server,due)"
                ),
            }
            continue;
        };
        let field = |i: usize, name: &str| -> Result<&str> {
            match rec.get(i) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(anyhow!("{file}:{line}: {name}: missing value")),
            }
        };
        let name = field(si, "server")?;
        let Some(server) = names.get(name) else {
            bail!("{file}:{line}: server: {name:?} is not in the estate");
        };
        let value = field(di, "due")?;
        let due = parse_due(value, tz).map_err(|e| {
            anyhow!("{file}:{line}: due: {value:?} is not a date (YYYY-MM-DD) or an RFC 3339 instant: {e:#}")
        })?;
        out.push(DueRow {
            server: server.to_string(),
            due,
            source: format!("due file {file}:{line}"),
        });
    }
    if columns.is_none() {
        bail!("{file}: empty: expected a header line server,due");
    }
    Ok(out)
}

/// `plan --servers-file FILE`: one server name a line (blank lines and `#` comments allowed),
/// or a CSV whose header's first column is `server` (its first column is then used).
pub fn parse_server_list(file: &str, text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let name = t
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"');
        if first && name.eq_ignore_ascii_case("server") {
            first = false;
            continue;
        }
        first = false;
        if name.is_empty() {
            bail!("{file}:{}: server: empty name", i + 1);
        }
        out.push(name.to_string());
    }
    Ok(out)
}
