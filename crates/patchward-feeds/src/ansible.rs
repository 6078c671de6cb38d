//! What `ansible.windows.win_updates` reported for one host, as Patchward's playbook keeps it
//! (the registered result as JSON, one file per host). The shape is the module's documented
//! return value: `updates` and `filtered_updates` keyed by update id, each with `title`, `kb`
//! (numbers without "KB"), `installed`, and on failure `failure_hresult_code` (an unsigned
//! integer) and `failure_msg`; `reboot_required`, `rebooted`, `failed`, `msg`; an unreachable
//! host has `unreachable: true`.

use crate::error::ParseError;
use serde_json::Value;

/// One update in the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutcome {
    pub id: String,
    pub title: String,
    /// `KB5094128` (the module gives `5094128`).
    pub kbs: Vec<String>,
    pub installed: bool,
    /// `0x80070002`.
    pub hresult: Option<String>,
    pub failure_msg: Option<String>,
}

/// The module's result for one host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WinUpdatesResult {
    pub failed: bool,
    pub unreachable: bool,
    pub msg: Option<String>,
    pub reboot_required: bool,
    pub rebooted: bool,
    pub updates: Vec<UpdateOutcome>,
    /// Found but not taken: (title, KBs, reasons).
    pub filtered: Vec<(String, Vec<String>, Vec<String>)>,
}

type Updates<'a> = Vec<(String, &'a serde_json::Map<String, Value>)>;

fn updates<'a>(source: &str, v: Option<&'a Value>, field: &str) -> Result<Updates<'a>, ParseError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(id, u)| match u {
                Value::Object(u) => Ok((id.clone(), u)),
                _ => Err(ParseError::at(
                    source,
                    None,
                    Some(&format!("{field}.{id}")),
                    "an update is an object",
                )),
            })
            .collect(),
        Some(_) => Err(ParseError::at(
            source,
            None,
            Some(field),
            "expected an object keyed by update id",
        )),
    }
}

fn kbs(
    source: &str,
    u: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Vec<String>, ParseError> {
    match u.get("kb") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|k| match k {
                Value::String(s) if !s.trim().is_empty() => {
                    let d = s.trim().trim_start_matches("KB").trim_start_matches("kb");
                    if d.bytes().all(|b| b.is_ascii_digit()) {
                        Ok(format!("KB{d}"))
                    } else {
                        Err(ParseError::at(
                            source,
                            None,
                            Some(field),
                            format!("not a KB number: {s:?}"),
                        ))
                    }
                }
                Value::Number(n) => Ok(format!("KB{n}")),
                other => Err(ParseError::at(
                    source,
                    None,
                    Some(field),
                    format!("not a KB number: {other}"),
                )),
            })
            .collect(),
        Some(_) => Err(ParseError::at(
            source,
            None,
            Some(field),
            "expected a list of KB numbers",
        )),
    }
}

fn flag(v: &serde_json::Map<String, Value>, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// Parse one host's result file.
pub fn parse_result(source: &str, bytes: &[u8]) -> Result<WinUpdatesResult, ParseError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        ParseError::at(
            source,
            Some(e.line() as u64),
            None,
            format!("not JSON: {e}"),
        )
    })?;
    let Value::Object(top) = &v else {
        return Err(ParseError::whole(
            source,
            "expected a JSON object (the registered result)",
        ));
    };
    let mut out = WinUpdatesResult {
        failed: flag(top, "failed"),
        unreachable: flag(top, "unreachable"),
        msg: top.get("msg").and_then(Value::as_str).map(str::to_string),
        reboot_required: flag(top, "reboot_required"),
        rebooted: flag(top, "rebooted"),
        ..WinUpdatesResult::default()
    };
    for (id, u) in updates(source, top.get("updates"), "updates")? {
        let field = format!("updates.{id}");
        let hresult = match u.get("failure_hresult_code") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                let code = n.as_i64().ok_or_else(|| {
                    ParseError::at(
                        source,
                        None,
                        Some(&format!("{field}.failure_hresult_code")),
                        format!("not an HRESULT: {n}"),
                    )
                })?;
                // HRESULTs arrive unsigned (2147942402) or signed (-2147024894).
                Some(format!("0x{:08X}", code as u32))
            }
            Some(other) => {
                return Err(ParseError::at(
                    source,
                    None,
                    Some(&format!("{field}.failure_hresult_code")),
                    format!("not an HRESULT: {other}"),
                ));
            }
        };
        out.updates.push(UpdateOutcome {
            id: id.clone(),
            title: u
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            kbs: kbs(source, u, &format!("{field}.kb"))?,
            installed: flag(u, "installed"),
            hresult,
            failure_msg: u
                .get("failure_msg")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    for (id, u) in updates(source, top.get("filtered_updates"), "filtered_updates")? {
        let reasons = u
            .get("filtered_reasons")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.filtered.push((
            u.get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            kbs(source, u, &format!("filtered_updates.{id}.kb"))?,
            reasons,
        ));
    }
    out.updates
        .sort_by(|a, b| a.kbs.cmp(&b.kbs).then(a.id.cmp(&b.id)));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_result_with_an_installed_and_a_failed_update_reads_both() {
        let json = br#"{"changed": true, "failed": false, "reboot_required": false, "rebooted": true,
          "found_update_count": 2, "installed_update_count": 1, "failed_update_count": 1,
          "updates": {
            "fb95c1c8-de23-4089-ae29-fd3351d55421": {"id": "fb95c1c8-de23-4089-ae29-fd3351d55421",
              "title": "2026-06 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems (KB5094128)",
              "kb": ["5094128"], "categories": ["Security Updates"], "downloaded": true, "installed": true},
            "0a1b": {"id": "0a1b", "title": "2026-06 Cumulative Update for .NET Framework (KB5087068)",
              "kb": ["5087068"], "downloaded": true, "installed": false,
              "failure_hresult_code": 2147942402, "failure_msg": "The system cannot find the file specified."}},
          "filtered_updates": {"99": {"id": "99", "title": "Windows Malicious Software Removal Tool", "kb": ["890830"],
              "installed": false, "filtered_reasons": ["accept_list"]}}}"#;
        let r = parse_result("web01.json", json).unwrap();
        assert!(!r.failed && r.rebooted && !r.reboot_required);
        assert_eq!(r.updates.len(), 2);
        let failed = r.updates.iter().find(|u| !u.installed).unwrap();
        assert_eq!(failed.kbs, vec!["KB5087068"]);
        assert_eq!(failed.hresult.as_deref(), Some("0x80070002"));
        assert_eq!(r.filtered[0].2, vec!["accept_list"]);
        // A signed HRESULT reads the same.
        let signed = br#"{"updates": {"a": {"kb": ["1"], "installed": false, "failure_hresult_code": -2146498530}}}"#;
        assert_eq!(
            parse_result("x", signed).unwrap().updates[0]
                .hresult
                .as_deref(),
            Some("0x800F081E")
        );
    }

    #[test]
    fn bad_shapes_are_errors_that_name_the_field() {
        let e = parse_result(
            "h.json",
            br#"{"updates": {"a": {"kb": ["x1"], "installed": true}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("updates.a.kb"), "{e}");
        let e = parse_result("h.json", br#"{"updates": []}"#).unwrap_err();
        assert!(e.to_string().contains("updates"), "{e}");
        let e = parse_result("h.json", b"[1,").unwrap_err();
        assert!(e.to_string().contains("h.json"), "{e}");
        let unreachable = parse_result(
            "h.json",
            br#"{"unreachable": true, "msg": "winrm: connection refused"}"#,
        )
        .unwrap();
        assert!(unreachable.unreachable && unreachable.updates.is_empty());
    }
}
