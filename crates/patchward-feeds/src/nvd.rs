//! NVD CVE API 2.0 records: either a single `cve` object (as the fkie-cad mirror stores them) or
//! the API envelope `{"vulnerabilities":[{"cve":{…}}], …}` (or a bare array of `cve` objects).
//!
//! Metrics are read from `cvssMetricV40`, `cvssMetricV31` and `cvssMetricV30` by key name (key
//! order inside `cvssData` varies). Timestamps carry milliseconds and no zone (UTC).
//! `cisaExploitAdd` / `cisaActionDue` become `kev_added` / `kev_due`.

use crate::error::ParseError;
use crate::util::{clip, is_cve_id, parse_instant_utc_default};
use jiff::civil::Date;
use patchward_core::intel::{CvssMetric, NvdRecord};
use serde_json::{Map, Value};

/// Parse one NVD document into records (one for a single `cve` object).
pub fn parse(source: &str, bytes: &[u8]) -> Result<Vec<NvdRecord>, ParseError> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| ParseError::json(source, &e))?;
    match &root {
        Value::Object(o) if o.contains_key("vulnerabilities") => {
            let arr = o
                .get("vulnerabilities")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    ParseError::at(source, None, Some("vulnerabilities"), "expected an array")
                })?;
            if let Some(total) = o.get("totalResults").and_then(Value::as_u64)
                && total > 0
                && arr.is_empty()
            {
                return Err(ParseError::at(
                    source,
                    None,
                    Some("vulnerabilities"),
                    format!("empty page although totalResults is {total}"),
                ));
            }
            arr.iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = format!("vulnerabilities[{i}].cve");
                    let cve = item
                        .as_object()
                        .and_then(|o| o.get("cve"))
                        .and_then(Value::as_object)
                        .ok_or_else(|| {
                            ParseError::at(source, None, Some(&path), "missing or not an object")
                        })?;
                    record(source, &path, cve)
                })
                .collect()
        }
        Value::Object(o) if o.contains_key("cve") && !o.contains_key("id") => {
            let cve = o
                .get("cve")
                .and_then(Value::as_object)
                .ok_or_else(|| ParseError::at(source, None, Some("cve"), "expected an object"))?;
            Ok(vec![record(source, "cve", cve)?])
        }
        Value::Object(o) => Ok(vec![record(source, "", o)?]),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("[{i}]");
                let o = v.as_object().ok_or_else(|| {
                    ParseError::at(source, None, Some(&path), "expected an object")
                })?;
                record(source, &path, o)
            })
            .collect(),
        _ => Err(ParseError::whole(
            source,
            "expected an NVD cve object or API response",
        )),
    }
}

fn join(prefix: &str, f: &str) -> String {
    if prefix.is_empty() {
        f.to_string()
    } else {
        format!("{prefix}.{f}")
    }
}

fn opt_str<'a>(
    source: &str,
    prefix: &str,
    o: &'a Map<String, Value>,
    f: &str,
) -> Result<Option<&'a str>, ParseError> {
    match o.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ParseError::at(
            source,
            None,
            Some(&join(prefix, f)),
            "expected a string",
        )),
    }
}

fn record(source: &str, prefix: &str, o: &Map<String, Value>) -> Result<NvdRecord, ParseError> {
    let id = opt_str(source, prefix, o, "id")?
        .ok_or_else(|| ParseError::at(source, None, Some(&join(prefix, "id")), "missing"))?
        .trim()
        .to_string();
    if !is_cve_id(&id) {
        return Err(ParseError::at(
            source,
            None,
            Some(&join(prefix, "id")),
            format!("not a CVE id: {:?}", clip(&id, 40)),
        ));
    }
    // Name errors by CVE from here on.
    let p = if prefix.is_empty() {
        id.clone()
    } else {
        format!("{prefix} ({id})")
    };
    let instant = |f: &str| -> Result<Option<jiff::Timestamp>, ParseError> {
        opt_str(source, &p, o, f)?
            .map(|s| {
                parse_instant_utc_default(s)
                    .map_err(|m| ParseError::at(source, None, Some(&join(&p, f)), m))
            })
            .transpose()
    };
    let date = |f: &str| -> Result<Option<Date>, ParseError> {
        opt_str(source, &p, o, f)?
            .map(|s| {
                s.trim().parse::<Date>().map_err(|_| {
                    ParseError::at(
                        source,
                        None,
                        Some(&join(&p, f)),
                        format!("not a date (YYYY-MM-DD): {:?}", clip(s, 40)),
                    )
                })
            })
            .transpose()
    };
    let description = match o.get("descriptions") {
        Some(Value::Array(a)) => {
            let text = |lang: Option<&str>| {
                a.iter().find_map(|d| {
                    let d = d.as_object()?;
                    let l = d.get("lang").and_then(Value::as_str);
                    if lang.is_none() || l == lang {
                        d.get("value").and_then(Value::as_str).map(str::to_string)
                    } else {
                        None
                    }
                })
            };
            text(Some("en")).or_else(|| text(None))
        }
        _ => None,
    };
    let mut cwes: Vec<String> = Vec::new();
    if let Some(Value::Array(ws)) = o.get("weaknesses") {
        for w in ws {
            if let Some(Value::Array(ds)) = w.get("description") {
                for d in ds {
                    if let Some(v) = d.get("value").and_then(Value::as_str) {
                        let v = v.trim();
                        if v.starts_with("CWE-") && !cwes.iter().any(|c| c == v) {
                            cwes.push(v.to_string());
                        }
                    }
                }
            }
        }
    }
    let mut metrics = Vec::new();
    match o.get("metrics") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (key, version) in [
                ("cvssMetricV40", "4.0"),
                ("cvssMetricV31", "3.1"),
                ("cvssMetricV30", "3.0"),
            ] {
                match m.get(key) {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(list)) => {
                        for (i, entry) in list.iter().enumerate() {
                            let path = format!("{}.{key}[{i}]", join(&p, "metrics"));
                            metrics.push(metric(source, &path, version, entry)?);
                        }
                    }
                    Some(_) => {
                        return Err(ParseError::at(
                            source,
                            None,
                            Some(&format!("{}.{key}", join(&p, "metrics"))),
                            "expected an array",
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Err(ParseError::at(
                source,
                None,
                Some(&join(&p, "metrics")),
                "expected an object",
            ));
        }
    }
    Ok(NvdRecord {
        published: instant("published")?,
        last_modified: instant("lastModified")?,
        status: opt_str(source, &p, o, "vulnStatus")?.map(str::to_string),
        description,
        metrics,
        cwes,
        kev_added: date("cisaExploitAdd")?,
        kev_due: date("cisaActionDue")?,
        cve: id,
    })
}

fn metric(source: &str, path: &str, version: &str, v: &Value) -> Result<CvssMetric, ParseError> {
    let err = |f: &str, m: &str| ParseError::at(source, None, Some(&join(path, f)), m.to_string());
    let o = v.as_object().ok_or_else(|| err("", "expected an object"))?;
    let data = o
        .get("cvssData")
        .and_then(Value::as_object)
        .ok_or_else(|| err("cvssData", "missing or not an object"))?;
    let vector = data
        .get("vectorString")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err("cvssData.vectorString", "missing"))?;
    let score = data
        .get("baseScore")
        .and_then(Value::as_f64)
        .ok_or_else(|| err("cvssData.baseScore", "missing or not a number"))?;
    if !(0.0..=10.0).contains(&score) {
        return Err(err(
            "cvssData.baseScore",
            &format!("must be between 0 and 10, got {score}"),
        ));
    }
    let severity = data
        .get("baseSeverity")
        .or_else(|| o.get("baseSeverity"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let source_name = o
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let primary = o
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("primary"));
    let version = data
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or(version)
        .to_string();
    Ok(CvssMetric {
        version,
        source: source_name,
        primary,
        vector: vector.to_string(),
        base_score: score as f32,
        base_severity: severity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-written: the shape of an NVD record with a CVSS v4.0 metric (no fixture has one).
    const V4: &str = r#"{"resultsPerPage":1,"startIndex":0,"totalResults":1,"format":"NVD_CVE","version":"2.0",
      "timestamp":"2026-01-01T00:00:00.000","vulnerabilities":[{"cve":{
        "id":"CVE-2026-0001","published":"2026-01-13T18:15:00.123","lastModified":"2026-01-14T01:02:03.456",
        "vulnStatus":"Analyzed","descriptions":[{"lang":"es","value":"x"},{"lang":"en","value":"Remote code execution"}],
        "metrics":{
          "cvssMetricV40":[{"source":"secure@microsoft.com","type":"Secondary","cvssData":{
             "baseSeverity":"CRITICAL","baseScore":9.3,"version":"4.0",
             "vectorString":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
             "attackVector":"NETWORK"}}],
          "cvssMetricV31":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{
             "version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8,"baseSeverity":"CRITICAL"},
             "exploitabilityScore":3.9,"impactScore":5.9}]},
        "weaknesses":[{"source":"a","type":"Primary","description":[{"lang":"en","value":"CWE-787"},{"lang":"en","value":"NVD-CWE-noinfo"}]}],
        "cisaExploitAdd":"2026-01-13","cisaActionDue":"2026-02-03"}}]}"#;

    #[test]
    fn v4_metric_from_envelope() {
        let r = parse("api.json", V4.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(r.cve, "CVE-2026-0001");
        assert_eq!(r.metrics.len(), 2);
        let best = r.best_metric().map(|m| (m.version.as_str(), m.base_score));
        assert_eq!(best, Some(("4.0", 9.3)));
        assert_eq!(r.description.as_deref(), Some("Remote code execution"));
        assert_eq!(r.cwes, vec!["CWE-787".to_string()]);
        assert_eq!(
            r.kev_added.map(|d| d.to_string()).as_deref(),
            Some("2026-01-13")
        );
        assert_eq!(
            r.published.map(|t| t.to_string()).as_deref(),
            Some("2026-01-13T18:15:00.123Z")
        );
    }

    #[test]
    fn errors_name_the_metric() {
        let bad = V4.replace(r#""baseScore":9.8,"#, "");
        let e = parse("api.json", bad.as_bytes()).err();
        assert_eq!(
            e.and_then(|e| e.field).as_deref(),
            Some(
                "vulnerabilities[0].cve (CVE-2026-0001).metrics.cvssMetricV31[0].cvssData.baseScore"
            )
        );
        assert!(parse("x", b"{\"id\":\"nope\"}").is_err());
        assert!(parse("x", b"42").is_err());
        assert!(
            parse(
                "x",
                b"{\"id\":\"CVE-2024-1234\",\"published\":\"yesterday\"}"
            )
            .is_err()
        );
    }
}
