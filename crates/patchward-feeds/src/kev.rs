//! CISA Known Exploited Vulnerabilities catalog (JSON).
//!
//! `{title, catalogVersion, dateReleased, count, vulnerabilities[]}`; each entry has `cveID,
//! vendorProject, product, vulnerabilityName, dateAdded, shortDescription, requiredAction,
//! dueDate, knownRansomwareCampaignUse, notes, cwes`. The due date is always read, never
//! computed. An empty or truncated catalog is an error, not "nothing is exploited".

use crate::error::ParseError;
use crate::util::is_cve_id;
use jiff::Timestamp;
use jiff::civil::Date;
use patchward_core::intel::KevEntry;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A parsed KEV catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct KevCatalog {
    /// `catalogVersion`, e.g. "2026.08.07".
    pub version: String,
    /// `dateReleased`.
    pub released: Option<Timestamp>,
    pub entries: Vec<KevEntry>,
}

impl KevCatalog {
    /// Entries keyed by CVE id.
    pub fn by_cve(&self) -> BTreeMap<&str, &KevEntry> {
        self.entries.iter().map(|e| (e.cve.as_str(), e)).collect()
    }

    pub fn get(&self, cve: &str) -> Option<&KevEntry> {
        self.entries.iter().find(|e| e.cve == cve)
    }
}

/// Parse a KEV catalog. `source` names the file in errors.
pub fn parse(source: &str, bytes: &[u8]) -> Result<KevCatalog, ParseError> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| ParseError::json(source, &e))?;
    let obj = root
        .as_object()
        .ok_or_else(|| ParseError::whole(source, "KEV catalog must be a JSON object"))?;
    let top_str = |k: &str| -> Result<Option<String>, ParseError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ParseError::at(source, None, Some(k), "expected a string")),
        }
    };
    let version = top_str("catalogVersion")?.ok_or_else(|| {
        ParseError::at(
            source,
            None,
            Some("catalogVersion"),
            "missing (not a KEV catalog?)",
        )
    })?;
    let released = match top_str("dateReleased")? {
        None => None,
        Some(s) => Some(s.trim().parse::<Timestamp>().map_err(|e| {
            ParseError::at(
                source,
                None,
                Some("dateReleased"),
                format!("not a timestamp: {s:?} ({e})"),
            )
        })?),
    };
    let vulns = match obj.get("vulnerabilities") {
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(ParseError::at(
                source,
                None,
                Some("vulnerabilities"),
                "expected an array",
            ));
        }
        None => {
            return Err(ParseError::at(
                source,
                None,
                Some("vulnerabilities"),
                "missing",
            ));
        }
    };
    if vulns.is_empty() {
        return Err(ParseError::at(
            source,
            None,
            Some("vulnerabilities"),
            "the catalog lists no vulnerabilities (empty or failed download?)",
        ));
    }
    if let Some(count) = obj.get("count") {
        let n = count.as_u64().ok_or_else(|| {
            ParseError::at(
                source,
                None,
                Some("count"),
                "expected a non-negative integer",
            )
        })?;
        if n != vulns.len() as u64 {
            return Err(ParseError::at(
                source,
                None,
                Some("count"),
                format!(
                    "catalog says {n} entries but lists {} (truncated?)",
                    vulns.len()
                ),
            ));
        }
    }
    let mut entries = Vec::with_capacity(vulns.len());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, v) in vulns.iter().enumerate() {
        let e = entry(source, i, v)?;
        if let Some(prev) = seen.insert(e.cve.clone(), i) {
            return Err(ParseError::at(
                source,
                None,
                Some(&format!("vulnerabilities[{i}] ({})", e.cve)),
                format!("duplicate entry (also vulnerabilities[{prev}])"),
            ));
        }
        entries.push(e);
    }
    Ok(KevCatalog {
        version,
        released,
        entries,
    })
}

fn entry(source: &str, i: usize, v: &Value) -> Result<KevEntry, ParseError> {
    let obj: &Map<String, Value> = v.as_object().ok_or_else(|| {
        ParseError::at(
            source,
            None,
            Some(&format!("vulnerabilities[{i}]")),
            "expected an object",
        )
    })?;
    let cve_hint = obj
        .get("cveID")
        .and_then(Value::as_str)
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let at = |f: &str| format!("vulnerabilities[{i}]{cve_hint}.{f}");
    let req = |f: &str| -> Result<String, ParseError> {
        match obj.get(f) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(Value::String(_)) => Err(ParseError::at(source, None, Some(&at(f)), "empty")),
            None | Some(Value::Null) => Err(ParseError::at(source, None, Some(&at(f)), "missing")),
            Some(_) => Err(ParseError::at(
                source,
                None,
                Some(&at(f)),
                "expected a string",
            )),
        }
    };
    let date = |f: &str| -> Result<Date, ParseError> {
        let s = req(f)?;
        s.parse::<Date>().map_err(|_| {
            ParseError::at(
                source,
                None,
                Some(&at(f)),
                format!("not a date (YYYY-MM-DD): {s:?}"),
            )
        })
    };
    let cve = req("cveID")?;
    if !is_cve_id(&cve) {
        return Err(ParseError::at(
            source,
            None,
            Some(&at("cveID")),
            format!("not a CVE id: {cve:?}"),
        ));
    }
    let date_added = date("dateAdded")?;
    let due = date("dueDate")?;
    let ransomware = match obj.get("knownRansomwareCampaignUse") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "known" => true,
            "unknown" | "" => false,
            other => {
                return Err(ParseError::at(
                    source,
                    None,
                    Some(&at("knownRansomwareCampaignUse")),
                    format!("expected \"Known\" or \"Unknown\", got {other:?}"),
                ));
            }
        },
        Some(_) => {
            return Err(ParseError::at(
                source,
                None,
                Some(&at("knownRansomwareCampaignUse")),
                "expected a string",
            ));
        }
    };
    Ok(KevEntry {
        cve,
        vendor: req("vendorProject")?,
        product: req("product")?,
        name: req("vulnerabilityName")?,
        date_added,
        due,
        known_ransomware: ransomware,
        required_action: req("requiredAction")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"title":"t","catalogVersion":"2026.01.02","dateReleased":"2026-01-02T10:00:00.1Z","count":1,
      "vulnerabilities":[{"cveID":"CVE-2025-33073","vendorProject":"Microsoft","product":"Windows",
      "vulnerabilityName":"SMB","dateAdded":"2025-10-20","shortDescription":"d","requiredAction":"Apply",
      "dueDate":"2025-11-10","knownRansomwareCampaignUse":"Known","notes":"","cwes":[]}]}"#;

    #[test]
    fn parses_minimal() {
        let c = parse("k.json", ONE.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.version, "2026.01.02");
        assert_eq!(c.entries.len(), 1);
        assert!(c.entries[0].known_ransomware);
        assert_eq!(c.entries[0].due.to_string(), "2025-11-10");
        assert!(c.get("CVE-2025-33073").is_some());
    }

    #[test]
    fn names_missing_field() {
        let bad = ONE.replace(r#""dueDate":"2025-11-10","#, "");
        let e = parse("k.json", bad.as_bytes()).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(r#"k.json: field "vulnerabilities[0] (CVE-2025-33073).dueDate": missing"#)
        );
    }

    #[test]
    fn rejects_empty_truncated_and_wrong_count() {
        let empty = r#"{"catalogVersion":"1","count":0,"vulnerabilities":[]}"#;
        assert!(parse("k", empty.as_bytes()).is_err());
        let trunc = &ONE[..ONE.len() / 2];
        let e = parse("k", trunc.as_bytes()).err();
        assert!(e.is_some_and(|e| e.message.contains("truncated")));
        let wrong = ONE.replace(r#""count":1"#, r#""count":2"#);
        assert!(parse("k", wrong.as_bytes()).is_err());
        assert!(parse("k", b"[]").is_err());
    }
}
