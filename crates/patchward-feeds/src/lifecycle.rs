//! Windows Server lifecycle table from endoflife.date (`products/windows-server.md`): Markdown
//! with YAML front matter whose `releases:` list holds one map per release cycle
//! (`releaseCycle, releaseLabel?, releaseDate, eoas, eol, eoes?, latest, lts, link`).
//!
//! The front matter uses a small YAML subset (block maps and lists of flat maps with scalar
//! values), read here by hand rather than with a YAML dependency. Anything outside that subset
//! inside a release is skipped if nested, or reported with its line.

use crate::error::ParseError;
use crate::input::decode_text;
use crate::util::clip;
use jiff::civil::Date;
use patchward_core::intel::LifecycleEntry;
use patchward_core::product::ServerRelease;

/// A scalar from the front matter.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Str(String),
}

/// Map endoflife.date's `releaseCycle` to a release. SAC/AC cycles other than 23H2 and
/// pre-2008 releases have none.
pub fn release_for_cycle(cycle: &str) -> Option<ServerRelease> {
    let c = cycle.trim().to_ascii_lowercase();
    if let Some(r) = ServerRelease::ALL
        .into_iter()
        .find(|r| r.lifecycle_key() == c)
    {
        return Some(r);
    }
    match c.as_str() {
        "2008-sp2" | "2008-sp1" => Some(ServerRelease::Server2008),
        "2008-r2-sp1" | "2008r2" | "2008-r2-sp0" => Some(ServerRelease::Server2008R2),
        "2012r2" => Some(ServerRelease::Server2012R2),
        "23h2" | "2022-23h2" => Some(ServerRelease::Server2022_23H2),
        _ => None,
    }
}

/// Parse the endoflife.date Windows Server page into lifecycle entries (file order).
pub fn parse(source: &str, bytes: &[u8]) -> Result<Vec<LifecycleEntry>, ParseError> {
    let text = decode_text(bytes);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .filter(|&i| lines[i].trim_end() == "---")
        .ok_or_else(|| {
            ParseError::at_line(
                source,
                1,
                "no YAML front matter (expected a first line \"---\")",
            )
        })?;
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, l)| {
            let t = l.trim_end();
            t == "---" || t == "..."
        })
        .map(|(i, _)| i)
        .ok_or_else(|| {
            ParseError::at_line(
                source,
                start as u64 + 1,
                "front matter is not closed (no second \"---\" line)",
            )
        })?;
    let fm = &lines[start + 1..end];
    // 0-based index into `lines` of front-matter line k is start + 1 + k; 1-based line adds 1.
    let lineno = |k: usize| (start + 2 + k) as u64;

    let mut label_template: Option<String> = None;
    let mut releases_at: Option<usize> = None;
    for (k, l) in fm.iter().enumerate() {
        if l.starts_with([' ', '\t', '-', '#']) || l.trim().is_empty() {
            continue;
        }
        if let Some((key, val)) = split_key(l) {
            match key {
                "releases" => releases_at = Some(k),
                "releaseLabel" => {
                    if let Scalar::Str(s) = scalar(source, lineno(k), val)? {
                        label_template = Some(s);
                    }
                }
                _ => {}
            }
        }
    }
    let rk = releases_at
        .ok_or_else(|| ParseError::whole(source, "front matter has no \"releases:\" list"))?;

    // Collect the release items: (line of the dash, key column, [(line, key, raw value)]).
    struct Item<'a> {
        line: u64,
        entries: Vec<(u64, &'a str, &'a str)>,
    }
    let mut items: Vec<Item> = Vec::new();
    let mut key_col: Option<usize> = None;
    let mut list_indent: Option<usize> = None;
    for (k, l) in fm.iter().enumerate().skip(rk + 1) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let indent = l.len() - t.len();
        if indent == 0 && !t.starts_with('-') {
            break; // next top-level key
        }
        let nested_dash = list_indent.is_some_and(|li| indent > li);
        if let (Some(after), false) = (t.strip_prefix('-'), nested_dash) {
            if list_indent.is_some_and(|li| indent < li) {
                return Err(ParseError::at_line(
                    source,
                    lineno(k),
                    format!("unexpected indentation: {:?}", clip(t, 60)),
                ));
            }
            list_indent = Some(indent);
            if !(after.is_empty() || after.starts_with([' ', '\t'])) {
                return Err(ParseError::at_line(
                    source,
                    lineno(k),
                    format!("expected \"- key: value\", got {:?}", clip(t, 60)),
                ));
            }
            let body = after.trim_start();
            let col = indent + 1 + (after.len() - body.len());
            key_col = Some(col);
            let mut item = Item {
                line: lineno(k),
                entries: Vec::new(),
            };
            if !body.is_empty() {
                let (key, val) = split_key(body).ok_or_else(|| {
                    ParseError::at_line(
                        source,
                        lineno(k),
                        format!("expected \"key: value\", got {:?}", clip(body, 60)),
                    )
                })?;
                item.entries.push((lineno(k), key, val));
            }
            items.push(item);
            continue;
        }
        let Some(item) = items.last_mut() else {
            return Err(ParseError::at_line(
                source,
                lineno(k),
                "expected a list item (\"- releaseCycle: …\") under releases:",
            ));
        };
        let col = key_col.unwrap_or(indent);
        if indent > col {
            continue; // nested value of the previous key: not used
        }
        if indent < col {
            return Err(ParseError::at_line(
                source,
                lineno(k),
                format!("unexpected indentation: {:?}", clip(t, 60)),
            ));
        }
        let (key, val) = split_key(t).ok_or_else(|| {
            ParseError::at_line(
                source,
                lineno(k),
                format!("expected \"key: value\", got {:?}", clip(t, 60)),
            )
        })?;
        item.entries.push((lineno(k), key, val));
    }
    if items.is_empty() {
        return Err(ParseError::at_line(
            source,
            lineno(rk),
            "the releases: list is empty",
        ));
    }

    let mut out: Vec<LifecycleEntry> = Vec::with_capacity(items.len());
    for item in items {
        let mut cycle: Option<String> = None;
        let mut label: Option<String> = None;
        let mut release_date = None;
        let mut eoas = None;
        let mut eol = None;
        let mut eoes = None;
        for &(n, key, raw) in &item.entries {
            let v = scalar(source, n, raw)?;
            match key {
                "releaseCycle" => match v {
                    Scalar::Str(s) if !s.is_empty() => cycle = Some(s),
                    _ => {
                        return Err(ParseError::at(
                            source,
                            Some(n),
                            Some("releaseCycle"),
                            "must be a non-empty string",
                        ));
                    }
                },
                "releaseLabel" => {
                    if let Scalar::Str(s) = v {
                        label = Some(s);
                    }
                }
                "releaseDate" => release_date = date_value(source, n, key, &v)?,
                "eoas" => eoas = Some((n, v)),
                "eol" => eol = Some((n, v)),
                "eoes" => eoes = Some((n, v)),
                _ => {}
            }
        }
        let cycle = cycle.ok_or_else(|| {
            ParseError::at(
                source,
                Some(item.line),
                Some("releaseCycle"),
                "missing in this release",
            )
        })?;
        if let Some(prev) = out.iter().find(|e| e.cycle == cycle) {
            return Err(ParseError::at(
                source,
                Some(item.line),
                Some("releaseCycle"),
                format!("{:?} is listed twice", prev.cycle),
            ));
        }
        let end = |v: Option<(u64, Scalar)>, key: &str| -> Result<Option<Date>, ParseError> {
            match v {
                None => Ok(None),
                // `true` = already ended, date unknown: count it as ended at release (the most
                // conservative reading); `false` = no end date (yet).
                Some((_, Scalar::Bool(true))) => Ok(Some(release_date.unwrap_or(Date::MIN))),
                Some((n, v)) => date_value(source, n, key, &v),
            }
        };
        let label = label.or_else(|| {
            label_template
                .as_ref()
                .map(|t| t.replace("__RELEASE_CYCLE__", &cycle))
        });
        out.push(LifecycleEntry {
            release: release_for_cycle(&cycle),
            label,
            release_date,
            mainstream_end: end(eoas, "eoas")?,
            extended_end: end(eol, "eol")?,
            esu_end: end(eoes, "eoes")?,
            cycle,
        });
    }
    Ok(out)
}

/// `key: value` → (key, raw value). The key must be a plain identifier.
fn split_key(s: &str) -> Option<(&str, &str)> {
    let (k, v) = s.split_once(':')?;
    let k = k.trim();
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    if !(v.is_empty() || v.starts_with([' ', '\t'])) {
        return None; // "http://…" is not a key
    }
    Some((k, v.trim()))
}

fn scalar(source: &str, line: u64, raw: &str) -> Result<Scalar, ParseError> {
    let r = raw.trim();
    if let Some(body) = r.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.chars();
        loop {
            match chars.next() {
                None => {
                    return Err(ParseError::at_line(
                        source,
                        line,
                        format!("unterminated string: {:?}", clip(r, 60)),
                    ));
                }
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c) => out.push(c),
                    None => {
                        return Err(ParseError::at_line(source, line, "unterminated string"));
                    }
                },
                Some(c) => out.push(c),
            }
        }
        let rest = chars.as_str().trim();
        if !(rest.is_empty() || rest.starts_with('#')) {
            return Err(ParseError::at_line(
                source,
                line,
                format!("text after a quoted string: {:?}", clip(rest, 40)),
            ));
        }
        return Ok(Scalar::Str(out));
    }
    if let Some(body) = r.strip_prefix('\'') {
        let mut out = String::new();
        let mut rest = body;
        loop {
            match rest.find('\'') {
                None => {
                    return Err(ParseError::at_line(
                        source,
                        line,
                        format!("unterminated string: {:?}", clip(r, 60)),
                    ));
                }
                Some(i) => {
                    out.push_str(&rest[..i]);
                    rest = &rest[i + 1..];
                    if let Some(more) = rest.strip_prefix('\'') {
                        out.push('\'');
                        rest = more;
                    } else {
                        break;
                    }
                }
            }
        }
        return Ok(Scalar::Str(out));
    }
    // Plain scalar: a " #" starts a comment.
    let plain = match r.find(" #") {
        Some(i) => r[..i].trim_end(),
        None if r.starts_with('#') => "",
        None => r,
    };
    Ok(match plain {
        "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
        "true" | "True" | "TRUE" => Scalar::Bool(true),
        "false" | "False" | "FALSE" => Scalar::Bool(false),
        s => Scalar::Str(s.to_string()),
    })
}

fn date_value(source: &str, line: u64, key: &str, v: &Scalar) -> Result<Option<Date>, ParseError> {
    match v {
        Scalar::Null | Scalar::Bool(false) => Ok(None),
        Scalar::Bool(true) => Err(ParseError::at(
            source,
            Some(line),
            Some(key),
            "expected a date (YYYY-MM-DD), got true",
        )),
        Scalar::Str(s) => s.parse::<Date>().map(Some).map_err(|_| {
            ParseError::at(
                source,
                Some(line),
                Some(key),
                format!("not a date (YYYY-MM-DD): {:?}", clip(s, 40)),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "---\ntitle: X\nreleaseLabel: \"Windows Server __RELEASE_CYCLE__\"\nalternate_urls:\n  - /x\n\nreleases:\n  - releaseCycle: \"2022\" # LTSC\n    releaseDate: 2021-08-18\n    eoas: 2026-10-13\n    eol: 2031-10-14\n    link: https://example.com/a\n\n  -   releaseCycle: '2012-r2'\n      releaseLabel: \"Windows Server 2012 R2\"\n      eoas: 2018-10-09\n      eol: true\n      eoes: false\n      nested:\n        - a\n---\n\n> body\n";

    #[test]
    fn parses_subset() {
        let r = parse("ws.md", SAMPLE.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].cycle, "2022");
        assert_eq!(r[0].release, Some(ServerRelease::Server2022));
        assert_eq!(r[0].label.as_deref(), Some("Windows Server 2022"));
        assert_eq!(
            r[0].mainstream_end.map(|d| d.to_string()).as_deref(),
            Some("2026-10-13")
        );
        assert_eq!(r[1].release, Some(ServerRelease::Server2012R2));
        assert_eq!(r[1].esu_end, None);
        assert!(r[1].extended_end.is_some());
    }

    #[test]
    fn errors_name_line() {
        let bad = SAMPLE.replace("eol: 2031-10-14", "eol: 2031-13-14");
        let e = parse("ws.md", bad.as_bytes()).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("ws.md:11: field \"eol\": not a date (YYYY-MM-DD): \"2031-13-14\"")
        );
        assert!(parse("ws.md", b"no front matter").is_err());
        assert!(parse("ws.md", b"---\ntitle: x\n").is_err());
        assert!(parse("ws.md", b"---\ntitle: x\n---\n").is_err());
        assert!(parse("ws.md", b"---\nreleases:\n  - eol: 2020-01-01\n---\n").is_err());
    }

    #[test]
    fn cycles() {
        assert_eq!(
            release_for_cycle("2008-r2-sp1"),
            Some(ServerRelease::Server2008R2)
        );
        assert_eq!(
            release_for_cycle("2008-sp2"),
            Some(ServerRelease::Server2008)
        );
        assert_eq!(
            release_for_cycle("23h2-ac"),
            Some(ServerRelease::Server2022_23H2)
        );
        assert_eq!(release_for_cycle("20h2-sac"), None);
        assert_eq!(release_for_cycle("2003-sp2"), None);
    }
}
