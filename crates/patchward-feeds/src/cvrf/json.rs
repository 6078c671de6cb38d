//! The JSON form of the same CVRF API (`Accept: application/json`): PascalCase names, text
//! nodes wrapped as `{"Value": "…"}`, lists as arrays and the `Type` attributes as integers
//! (Threat 0 Impact / 1 Exploit Status / 3 Severity; Remediation 2 Vendor Fix; Status 3 Known
//! Affected). The reader accepts names as well as numbers and plain as well as wrapped values,
//! then feeds the same [`Builder`] as the XML reader.

use super::{Builder, CvrfDocument, RawDoc, RawRemediation, RawScore, RawThreat, RawVuln};
use crate::error::ParseError;
use serde_json::Value;

pub fn parse_json(source: &str, bytes: &[u8]) -> Result<CvrfDocument, ParseError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        ParseError::new(
            source,
            Some(e.line() as u64),
            None,
            &format!("malformed JSON: {e}"),
        )
    })?;
    let Some(root) = v.as_object() else {
        return Err(ParseError::new(
            source,
            Some(1),
            None,
            "CVRF JSON must be an object",
        ));
    };
    let tracking = root.get("DocumentTracking");
    let mut doc = RawDoc {
        id: text(
            tracking
                .and_then(|t| t.get("Identification"))
                .and_then(|i| i.get("ID")),
        ),
        title: text(root.get("DocumentTitle")),
        ..Default::default()
    };
    if let Some(t) = tracking {
        doc.revision = list(t.get("RevisionHistory"))
            .last()
            .map(|r| text(r.get("Number")))
            .filter(|s| !s.is_empty());
        doc.initial_release = Some(text(t.get("InitialReleaseDate"))).filter(|s| !s.is_empty());
        doc.current_release = Some(text(t.get("CurrentReleaseDate"))).filter(|s| !s.is_empty());
    }
    doc.has_product_tree = root.get("ProductTree").is_some_and(|t| t.is_object());
    doc.has_notes = !list(root.get("DocumentNotes")).is_empty();
    if let Some(tree) = root.get("ProductTree") {
        collect_products(tree, &mut doc.products);
    }
    let mut b = Builder::new(source, doc)?;
    for (i, v) in list(root.get("Vulnerability")).iter().enumerate() {
        let Some(o) = v.as_object() else {
            return Err(ParseError::new(
                source,
                None,
                Some(&format!("Vulnerability[{i}]")),
                "expected an object",
            ));
        };
        let mut raw = RawVuln {
            cve: text(o.get("CVE")),
            title: text(o.get("Title")),
            cwe: list(o.get("CWE"))
                .first()
                .map(|c| text(c.get("ID")).to_string())
                .filter(|s| !s.is_empty()),
            ..Default::default()
        };
        for n in list(o.get("Notes")) {
            let ty = text(n.get("Type"));
            if ty == "Tag" {
                raw.tag = Some(text(Some(n)));
            }
        }
        for s in list(o.get("ProductStatuses")) {
            let ty = text(s.get("Type"));
            if ty == "Known Affected" || ty == "3" {
                raw.known_affected.extend(ids(s.get("ProductID")));
            }
        }
        for t in list(o.get("Threats")) {
            raw.threats.push(RawThreat {
                kind: text(t.get("Type")),
                description: text(t.get("Description")),
                product_ids: ids(t.get("ProductID")),
            });
        }
        for s in list(o.get("CVSSScoreSets")) {
            raw.scores.push(RawScore {
                base: s.get("BaseScore").and_then(|x| {
                    x.as_f64()
                        .map(|f| f as f32)
                        .or_else(|| text(Some(x)).parse().ok())
                }),
                vector: Some(text(s.get("Vector"))).filter(|s| !s.is_empty()),
                product_ids: ids(s.get("ProductID")),
            });
        }
        for r in list(o.get("Remediations")) {
            raw.remediations.push(RawRemediation {
                kind: text(r.get("Type")),
                description: text(r.get("Description")),
                supercedence: text(r.get("Supercedence")),
                product_ids: ids(r.get("ProductID")),
                restart: Some(text(r.get("RestartRequired"))).filter(|s| !s.is_empty()),
                subtype: text(r.get("SubType")),
                fixed_build: text(r.get("FixedBuild")),
            });
        }
        b.push(raw)?;
    }
    b.finish()
}

/// `{"Value": x}`, a string, or a number, as text.
fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Object(o)) => text(o.get("Value")),
        _ => String::new(),
    }
}

fn list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

fn ids(v: Option<&Value>) -> Vec<String> {
    list(v)
        .into_iter()
        .map(|x| text(Some(x)))
        .filter(|s| !s.is_empty())
        .collect()
}

fn collect_products(node: &Value, out: &mut Vec<(String, String)>) {
    for p in list(node.get("FullProductName")) {
        let id = text(p.get("ProductID"));
        if !id.is_empty() {
            out.push((id, text(p.get("Value"))));
        }
    }
    for key in ["Branch", "Items"] {
        for b in list(node.get(key)) {
            if b.get("ProductID").is_some() && b.get("Value").is_some() {
                out.push((text(b.get("ProductID")), text(b.get("Value"))));
            }
            collect_products(b, out);
        }
    }
}
