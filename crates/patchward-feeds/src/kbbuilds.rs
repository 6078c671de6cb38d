//! The derived KB → fixed OS build table (extracted from every MSRC CVRF month): columns
//! `cvrf_id, product_id, product_name, kb, subtype, fixed_build, supercedence,
//! restart_required, cve_count`, one row per (month, Windows Server product, KB).
//!
//! Rows for products that are not Windows Server (Itanium, Semi-Annual Channel) are skipped.
//! Fixed builds are validated: junk (`1.000`, `-`) and typos that name another release
//! (`10.0.26200.x` for Server 2025) become `None`.

use crate::error::ParseError;
use crate::util::clip;
use patchward_core::OsBuild;
use patchward_core::catalog::{Classification, Kb, Product, Update, parse_supersedence};
use patchward_core::product::{ServerRelease, classify_product_name};
use std::collections::BTreeMap;

/// One row of the table, as an update plus the row's own facts.
#[derive(Debug, Clone, PartialEq)]
pub struct KbBuildRow {
    pub update: Update,
    /// CVEs this KB fixes on this product in this month.
    pub cve_count: u32,
    /// The raw fixed build text when it was rejected (kept for diagnostics).
    pub rejected_build: Option<String>,
    /// 1-based line in the file.
    pub line: u64,
}

/// The parsed table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KbBuildTable {
    /// Windows Server products seen, in order of first appearance.
    pub products: Vec<Product>,
    /// One entry per Windows Server row, in file order.
    pub rows: Vec<KbBuildRow>,
    /// Rows skipped because the product is not a Windows Server line.
    pub skipped_rows: usize,
}

impl KbBuildTable {
    /// One update per row.
    pub fn updates(&self) -> Vec<Update> {
        self.rows.iter().map(|r| r.update.clone()).collect()
    }

    /// One update per (KB, product): the same KB appears in several months when MSRC re-lists
    /// it; keep the month where it fixes the most CVEs (its release month; ties: the first),
    /// filling a missing fixed build from the other rows.
    pub fn merged(&self) -> Vec<Update> {
        let mut best: BTreeMap<(Kb, &str), (u32, Update)> = BTreeMap::new();
        for r in &self.rows {
            let key = (r.update.kb, r.update.product_id.as_str());
            match best.get_mut(&key) {
                None => {
                    best.insert(key, (r.cve_count, r.update.clone()));
                }
                Some((count, u)) => {
                    let fill = u.fixed_build.or(r.update.fixed_build);
                    if r.cve_count > *count {
                        *count = r.cve_count;
                        *u = r.update.clone();
                    }
                    u.fixed_build = u.fixed_build.or(fill);
                }
            }
        }
        best.into_values().map(|(_, u)| u).collect()
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.id == id)
    }
}

const COLUMNS: [&str; 9] = [
    "cvrf_id",
    "product_id",
    "product_name",
    "kb",
    "subtype",
    "fixed_build",
    "supercedence",
    "restart_required",
    "cve_count",
];

/// A fixed build is accepted only if it parses with a revision and belongs to `release`.
pub fn validate_fixed_build(raw: &str, release: ServerRelease) -> Option<OsBuild> {
    let b: OsBuild = raw.trim().parse().ok()?;
    b.ubr?;
    (ServerRelease::from_build(&b) == Some(release)).then_some(b)
}

/// Parse the table.
pub fn parse(source: &str, bytes: &[u8]) -> Result<KbBuildTable, ParseError> {
    let text = crate::input::decode_text(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| ParseError::at_line(source, 1, format!("cannot read the header: {e}")))?
        .clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(ParseError::whole(source, "empty file: no header line"));
    }
    let mut idx = [0usize; 9];
    for (i, col) in COLUMNS.iter().enumerate() {
        idx[i] = headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(col))
            .ok_or_else(|| ParseError::at(source, Some(1), Some(col), "missing column"))?;
    }
    let mut table = KbBuildTable::default();
    let mut products: BTreeMap<String, usize> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            let msg = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("expected {expected_len} fields, found {len}"),
                _ => format!("malformed CSV: {e}"),
            };
            ParseError::at(source, (line > 0).then_some(line), None, msg)
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let get = |i: usize| rec.get(idx[i]).unwrap_or("").trim();
        let err = |i: usize, m: String| ParseError::at(source, Some(line), Some(COLUMNS[i]), m);
        let name = get(2);
        let Some(kind) = classify_product_name(name) else {
            table.skipped_rows += 1;
            continue;
        };
        let document = get(0);
        if document.is_empty() {
            return Err(err(0, "empty".into()));
        }
        let product_id = get(1);
        if product_id.is_empty() {
            return Err(err(1, "empty".into()));
        }
        let kb: Kb = get(3)
            .parse()
            .map_err(|_| err(3, format!("not a KB number: {:?}", clip(get(3), 40))))?;
        let subtype = get(4).to_string();
        let raw_build = get(5);
        let fixed_build = validate_fixed_build(raw_build, kind.release());
        let rejected_build =
            (fixed_build.is_none() && !raw_build.is_empty()).then(|| raw_build.to_string());
        let cve_count: u32 = if get(8).is_empty() {
            0
        } else {
            get(8)
                .parse()
                .map_err(|_| err(8, format!("not a count: {:?}", clip(get(8), 40))))?
        };
        let restart = get(7);
        let classification = Classification::from_subtype(&subtype, Some(&kind));
        match products.get(product_id) {
            Some(&i) => {
                if table.products[i].kind != kind {
                    return Err(err(
                        2,
                        format!(
                            "product {product_id} was {:?} earlier, now {:?}",
                            table.products[i].name, name
                        ),
                    ));
                }
            }
            None => {
                products.insert(product_id.to_string(), table.products.len());
                table.products.push(Product {
                    id: product_id.to_string(),
                    name: name.split_whitespace().collect::<Vec<_>>().join(" "),
                    kind,
                });
            }
        }
        table.rows.push(KbBuildRow {
            update: Update {
                kb,
                product_id: product_id.to_string(),
                classification,
                subtype,
                fixed_build,
                supersedes: parse_supersedence(get(6)),
                restart_required: (!restart.is_empty()).then(|| restart.to_string()),
                document: document.to_string(),
                released: None,
            },
            cve_count,
            rejected_build,
            line,
        });
    }
    if table.rows.is_empty() && table.skipped_rows == 0 {
        return Err(ParseError::whole(source, "the table has no rows"));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "cvrf_id,product_id,product_name,kb,subtype,fixed_build,supercedence,restart_required,cve_count\n";

    #[test]
    fn rows_and_validation() {
        let csv = format!(
            "{HEAD}2025-Jul,12436,Windows Server 2025,5060842,Security Update,10.0.26200.4349,5060526,Yes,100\n\
             2025-Jul,12437,Windows Server 2025 (Server Core installation),5060842,Security Update,10.0.26100.4349,5060526,Yes,100\n\
             2016-Jan,10050,Windows Server 2008 R2 for Itanium-Based Systems Service Pack 1,3108664,,,,,1\n\
             2024-May,11923,Windows Server 2022,5037782,SecurityHotpatchUpdate,10.0.20348.2461,\"MS13-056, 2845187\",No,3\n"
        );
        let t = parse("b.csv", csv.as_bytes()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.skipped_rows, 1);
        assert_eq!(
            t.rows[0].update.fixed_build, None,
            "26200 is a typo for 26100"
        );
        assert_eq!(t.rows[0].rejected_build.as_deref(), Some("10.0.26200.4349"));
        assert_eq!(
            t.rows[1]
                .update
                .fixed_build
                .map(|b| b.to_string())
                .as_deref(),
            Some("10.0.26100.4349")
        );
        assert_eq!(t.rows[2].update.classification, Classification::Hotpatch);
        assert_eq!(t.rows[2].update.supersedes, vec![Kb(2845187)]);
        assert_eq!(t.rows[2].line, 5);
    }

    #[test]
    fn errors() {
        let e = parse("b.csv", b"cvrf_id,product_id,product_name,kb\n").err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("b.csv:1: field \"subtype\": missing column")
        );
        let csv = format!("{HEAD}2025-Jul,1,Windows Server 2022,KBx,,,,,1\n");
        let e = parse("b.csv", csv.as_bytes()).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("b.csv:2: field \"kb\": not a KB number: \"KBx\"")
        );
        let csv = format!("{HEAD}2025-Jul,1,Windows Server 2022\n");
        assert!(parse("b.csv", csv.as_bytes()).is_err());
        assert!(parse("b.csv", b"").is_err());
    }
}
