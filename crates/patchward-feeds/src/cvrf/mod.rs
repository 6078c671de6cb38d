//! MSRC Security Update Guide documents (CVRF 1.1), XML and JSON.
//!
//! Both forms are read into the same raw model ([`RawVuln`]) and then turned into catalog
//! records by one function, so the two can never disagree. Only products that are Windows
//! Server or serviced on it are kept (see [`patchward_core::product::classify_product_name`]).
//!
//! Rules taken from Microsoft's data (see fixtures/PROVENANCE.md and FORMATS.md):
//! - only `Vendor Fix` remediations are fixes; `Known Issue`/`Release Notes` carry the same KB
//!   and must be ignored;
//! - a fixed build counts only when it is a well-formed `a.b.c.d` on the product's own release
//!   (MSRC has typos such as 26200 for 26100 and junk such as `1.000`);
//! - the Exploit Status threat has no ProductID and is parsed key by key;
//! - a document without Vulnerability elements is an error (the API sometimes returns one).

mod json;
mod xml;

use crate::error::ParseError;
use jiff::Timestamp;
use patchward_core::build::OsBuild;
use patchward_core::catalog::{
    Affected, Classification, Fix, Kb, Product, Severity, Vulnerability, parse_supersedence,
};
use patchward_core::product::{ProductKind, ServerRelease, classify_product_name};
use std::collections::HashMap;

pub use json::parse_json;
pub use xml::parse_xml;

/// One month's document, reduced to what concerns Windows Server.
#[derive(Debug, Clone, PartialEq)]
pub struct CvrfDocument {
    /// "2024-Jul".
    pub id: String,
    pub title: String,
    pub revision: Option<String>,
    pub initial_release: Option<Timestamp>,
    pub current_release: Option<Timestamp>,
    pub products: Vec<Product>,
    pub vulnerabilities: Vec<Vulnerability>,
    pub affected: Vec<Affected>,
    pub fixes: Vec<Fix>,
    /// Vulnerability elements in the whole document (all products). Zero only for a document
    /// that also lists no products (see [`CvrfDocument::is_announcement_only`]).
    pub total_vulnerabilities: usize,
}

impl CvrfDocument {
    /// A release note without products or vulnerabilities (e.g. 2017-May-B): nothing to store.
    pub fn is_announcement_only(&self) -> bool {
        self.total_vulnerabilities == 0
    }
}

/// Parse a CVRF document in either form (sniffed: JSON starts with `{`).
pub fn parse(source: &str, bytes: &[u8]) -> Result<CvrfDocument, ParseError> {
    let first = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace() && **b != 0xEF && **b != 0xBB && **b != 0xBF);
    if first == Some(&b'{') {
        parse_json(source, bytes)
    } else {
        parse_xml(source, bytes)
    }
}

/// What both readers collect per Vulnerability element.
#[derive(Debug, Default, Clone)]
pub(crate) struct RawVuln {
    pub cve: String,
    pub title: String,
    pub tag: Option<String>,
    pub cwe: Option<String>,
    pub known_affected: Vec<String>,
    pub threats: Vec<RawThreat>,
    pub scores: Vec<RawScore>,
    pub remediations: Vec<RawRemediation>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct RawThreat {
    pub kind: String,
    pub description: String,
    pub product_ids: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct RawScore {
    pub base: Option<f32>,
    pub vector: Option<String>,
    pub product_ids: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct RawRemediation {
    pub kind: String,
    pub description: String,
    pub supercedence: String,
    pub product_ids: Vec<String>,
    pub restart: Option<String>,
    pub subtype: String,
    pub fixed_build: String,
}

/// Document-level facts both readers collect.
#[derive(Debug, Default)]
pub(crate) struct RawDoc {
    pub id: String,
    pub title: String,
    pub revision: Option<String>,
    pub initial_release: Option<String>,
    pub current_release: Option<String>,
    pub products: Vec<(String, String)>,
    /// The document has a ProductTree element and release notes (even if both say little):
    /// what a complete, deliberately empty release looks like.
    pub has_product_tree: bool,
    pub has_notes: bool,
}

/// Accumulates records from raw vulnerabilities, keeping only Windows Server products.
pub(crate) struct Builder {
    source: String,
    doc: RawDoc,
    kinds: HashMap<String, ProductKind>,
    released: Option<Timestamp>,
    out: CvrfDocument,
}

impl Builder {
    pub(crate) fn new(source: &str, doc: RawDoc) -> Result<Builder, ParseError> {
        if doc.id.trim().is_empty() {
            return Err(ParseError::new(
                source,
                None,
                Some("DocumentTracking/Identification/ID"),
                "missing document ID",
            ));
        }
        let mut kinds = HashMap::new();
        let mut products = Vec::new();
        for (id, name) in &doc.products {
            if let Some(kind) = classify_product_name(name)
                && !kinds.contains_key(id)
            {
                kinds.insert(id.clone(), kind.clone());
                products.push(Product {
                    id: id.clone(),
                    name: collapse(name),
                    kind,
                });
            }
        }
        let initial = doc.initial_release.as_deref().and_then(parse_msrc_time);
        let current = doc.current_release.as_deref().and_then(parse_msrc_time);
        let out = CvrfDocument {
            id: doc.id.trim().to_string(),
            title: doc.title.trim().to_string(),
            revision: doc.revision.clone(),
            initial_release: initial,
            current_release: current,
            products,
            vulnerabilities: Vec::new(),
            affected: Vec::new(),
            fixes: Vec::new(),
            total_vulnerabilities: 0,
        };
        Ok(Builder {
            source: source.to_string(),
            doc,
            kinds,
            released: initial,
            out,
        })
    }

    pub(crate) fn push(&mut self, v: RawVuln) -> Result<(), ParseError> {
        self.out.total_vulnerabilities += 1;
        let cve = v.cve.trim();
        if cve.is_empty() {
            return Err(ParseError::new(
                &self.source,
                None,
                Some(&format!(
                    "Vulnerability #{}/CVE",
                    self.out.total_vulnerabilities
                )),
                "vulnerability without a CVE id",
            ));
        }
        let relevant = |id: &str| self.kinds.contains_key(id);
        let mut touched = false;

        // Per-product facts: severity, impact, CVSS.
        let mut per_product: HashMap<String, Affected> = HashMap::new();
        for pid in v.known_affected.iter().filter(|p| relevant(p)) {
            affected_entry(&mut per_product, cve, pid);
        }
        let (mut exploited, mut disclosed, mut exploit_status) = (false, false, None);
        for t in &v.threats {
            match threat_kind(&t.kind) {
                ThreatKind::ExploitStatus => {
                    let (e, d) = parse_exploit_status(&t.description);
                    exploited |= e;
                    disclosed |= d;
                    exploit_status = Some(t.description.trim().to_string());
                }
                ThreatKind::Severity => {
                    for pid in t.product_ids.iter().filter(|p| relevant(p)) {
                        let a = affected_entry(&mut per_product, cve, pid);
                        let s = Severity::parse(&t.description);
                        a.severity = a.severity.max(s);
                    }
                }
                ThreatKind::Impact => {
                    for pid in t.product_ids.iter().filter(|p| relevant(p)) {
                        let d = t.description.trim();
                        if !d.is_empty() {
                            affected_entry(&mut per_product, cve, pid).impact = Some(d.to_string());
                        }
                    }
                }
                ThreatKind::Other => {}
            }
        }
        for s in &v.scores {
            for pid in s.product_ids.iter().filter(|p| relevant(p)) {
                let a = affected_entry(&mut per_product, cve, pid);
                if s.base.is_some() {
                    a.cvss_base = s.base;
                }
                if let Some(vec) = s.vector.as_deref().map(str::trim).filter(|x| !x.is_empty()) {
                    a.cvss_vector = Some(vec.to_string());
                }
            }
        }

        // Fixes: Vendor Fix only; one row per (product, KB), supersedence unioned.
        let mut fixes: Vec<Fix> = Vec::new();
        for r in &v.remediations {
            if !is_vendor_fix(&r.kind) {
                continue;
            }
            let Ok(kb) = r.description.parse::<Kb>() else {
                continue;
            };
            let supersedes = parse_supersedence(&r.supercedence);
            let restart = Some(r.restart.as_deref().unwrap_or("").trim().to_string())
                .filter(|s| !s.is_empty());
            for pid in r.product_ids.iter() {
                let Some(kind) = self.kinds.get(pid) else {
                    continue;
                };
                let fixed_build = validate_build(&r.fixed_build, kind.release());
                if let Some(f) = fixes
                    .iter_mut()
                    .find(|f| f.product_id == *pid && f.kb == kb)
                {
                    f.supersedes.extend(supersedes.iter().copied());
                    f.supersedes.sort();
                    f.supersedes.dedup();
                    if f.fixed_build.is_none() {
                        f.fixed_build = fixed_build;
                    }
                    continue;
                }
                fixes.push(Fix {
                    cve: cve.to_string(),
                    product_id: pid.clone(),
                    kb,
                    subtype: r.subtype.trim().to_string(),
                    classification: Classification::from_subtype(&r.subtype, Some(kind)),
                    fixed_build,
                    supersedes: supersedes.clone(),
                    restart_required: restart.clone(),
                    document: self.out.id.clone(),
                });
                affected_entry(&mut per_product, cve, pid);
            }
        }
        if !per_product.is_empty() {
            touched = true;
        }
        if !touched {
            return Ok(());
        }
        let mut affected: Vec<Affected> = per_product.into_values().collect();
        affected.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        self.out.affected.extend(affected);
        self.out.fixes.extend(fixes);
        self.out.vulnerabilities.push(Vulnerability {
            cve: cve.to_string(),
            title: collapse(&v.title),
            tag: v.tag.map(|t| collapse(&t)).filter(|t| !t.is_empty()),
            cwe: v.cwe.filter(|c| !c.is_empty()),
            exploited,
            publicly_disclosed: disclosed,
            exploit_status,
            document: self.out.id.clone(),
            released: self.released,
        });
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<CvrfDocument, ParseError> {
        // A release with no vulnerabilities *and* no products is a real (if rare) document:
        // 2017-May-B announced Forefront/Defender engine updates only. Zero vulnerabilities
        // beside a product list is the API's broken response and must not read as "no CVEs".
        let announcement =
            self.doc.products.is_empty() && self.doc.has_product_tree && self.doc.has_notes;
        if self.out.total_vulnerabilities == 0 && !announcement {
            return Err(ParseError::new(
                &self.source,
                None,
                Some("Vulnerability"),
                &format!(
                    "document {} has no Vulnerability elements: an empty or truncated response, not \"no CVEs\"",
                    self.doc.id
                ),
            ));
        }
        Ok(self.out)
    }
}

fn affected_entry<'a>(
    map: &'a mut HashMap<String, Affected>,
    cve: &str,
    pid: &str,
) -> &'a mut Affected {
    map.entry(pid.to_string()).or_insert_with(|| Affected {
        cve: cve.to_string(),
        product_id: pid.to_string(),
        severity: None,
        impact: None,
        cvss_base: None,
        cvss_vector: None,
    })
}

enum ThreatKind {
    Impact,
    Severity,
    ExploitStatus,
    Other,
}

/// XML uses names, JSON uses integers (0 Impact, 1 Exploit Status, 3 Severity).
fn threat_kind(k: &str) -> ThreatKind {
    match k.trim() {
        "Impact" | "0" => ThreatKind::Impact,
        "Exploit Status" | "1" => ThreatKind::ExploitStatus,
        "Severity" | "3" => ThreatKind::Severity,
        _ => ThreatKind::Other,
    }
}

/// XML "Vendor Fix"; JSON integer 2.
fn is_vendor_fix(k: &str) -> bool {
    matches!(k.trim(), "Vendor Fix" | "2")
}

/// "Publicly Disclosed:No;Exploited:Yes;Latest Software Release:Exploitation Detected".
pub fn parse_exploit_status(s: &str) -> (bool, bool) {
    let (mut exploited, mut disclosed) = (false, false);
    for part in s.split(';') {
        let Some((k, v)) = part.split_once(':') else {
            continue;
        };
        let yes = v.trim().eq_ignore_ascii_case("yes");
        match k.trim().to_ascii_lowercase().as_str() {
            "exploited" => exploited |= yes,
            "publicly disclosed" => disclosed |= yes,
            _ => {}
        }
    }
    (exploited, disclosed)
}

/// A fixed build counts only if it is `a.b.c.d` on the product's own release.
pub fn validate_build(s: &str, release: ServerRelease) -> Option<OsBuild> {
    let b: OsBuild = s.trim().parse().ok()?;
    b.ubr?;
    (ServerRelease::from_build(&b) == Some(release)).then_some(b)
}

/// MSRC dates carry no zone ("2024-07-09T07:00:00"); the index adds "Z". Both are UTC.
pub fn parse_msrc_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    dt.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exploit_status_variants() {
        assert_eq!(
            parse_exploit_status(
                "Publicly Disclosed:No;Exploited:Yes;Latest Software Release:Exploitation Detected"
            ),
            (true, false)
        );
        assert_eq!(
            parse_exploit_status(
                "Publicly Disclosed:Yes;Exploited:No;Latest Software Release:Exploitation Less Likely;DOS:N/A"
            ),
            (false, true)
        );
        assert_eq!(parse_exploit_status("DOS:N/A"), (false, false));
        // "Yes" elsewhere must not count as exploited.
        assert_eq!(
            parse_exploit_status("Publicly Disclosed:No;Exploited:No;Latest Software Release:Yes"),
            (false, false)
        );
    }

    #[test]
    fn builds_are_validated_against_the_release() {
        assert!(validate_build("10.0.20348.2582", ServerRelease::Server2022).is_some());
        assert!(validate_build("10.0.26200.4349", ServerRelease::Server2025).is_none());
        assert!(validate_build("1.000", ServerRelease::Server2016).is_none());
        assert!(validate_build("10.0.20348", ServerRelease::Server2022).is_none());
        assert!(validate_build("6.0.6003.22000", ServerRelease::Server2008).is_some());
    }

    #[test]
    fn msrc_times() {
        assert_eq!(
            parse_msrc_time("2024-07-09T07:00:00").map(|t| t.to_string()),
            Some("2024-07-09T07:00:00Z".into())
        );
        assert_eq!(
            parse_msrc_time("2024-07-09T07:00:00Z").map(|t| t.to_string()),
            Some("2024-07-09T07:00:00Z".into())
        );
        assert_eq!(parse_msrc_time("yesterday"), None);
    }
}
