//! Recognising an inventory file (what `import hosts` takes) by parsing it, not by a peek at its
//! first lines: content sniffing ([`detect`]) picks the format when the head shows it; when it
//! does not, the file is tried as each format that could hold it, and a file that is none of
//! them gets an error naming the formats tried and the most useful parse error (with its line)
//! of the likeliest one.

use crate::error::{ParseError, ParseErrors};
use crate::hosts::{self, HostCapture};
use crate::input::{FeedKind, decode_text, detect};
use crate::{estate, inventory_csv};
use patchward_core::inventory::Estate;

/// The inventory formats `import hosts` reads, as named in errors.
pub const INVENTORY_FORMATS: &str =
    "estate TOML, server inventory CSV, systeminfo (list or CSV), wmic qfe, Get-HotFix";

/// A parsed inventory file.
#[derive(Debug, Clone)]
pub enum Inventory {
    Estate(Box<Estate>),
    Csv(inventory_csv::InventoryImport),
    Captures(Vec<HostCapture>),
}

/// Parse an inventory file of any supported format. Feeds are refused with a pointer to
/// `import feeds`.
pub fn parse(source: &str, bytes: &[u8]) -> Result<Inventory, ParseErrors> {
    match detect(source, bytes) {
        FeedKind::Estate => Ok(Inventory::Estate(Box::new(estate::parse(source, bytes)?))),
        FeedKind::InventoryCsv => Ok(Inventory::Csv(inventory_csv::parse(source, bytes)?)),
        FeedKind::Systeminfo
        | FeedKind::SysteminfoCsv
        | FeedKind::WmicQfe
        | FeedKind::GetHotFix => Ok(Inventory::Captures(hosts::parse_capture(source, bytes)?)),
        FeedKind::Unknown => by_parsing(source, bytes),
        kind => Err(ParseError::whole(
            source,
            format!(
                "{} is a feed, not an inventory file (use `import feeds`)",
                kind.label()
            ),
        )
        .into()),
    }
}

/// The head did not say: try the formats whose shape cannot be told from a few lines.
fn by_parsing(source: &str, bytes: &[u8]) -> Result<Inventory, ParseErrors> {
    let text = decode_text(bytes);
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err(ParseError::whole(
            source,
            format!("empty file: not an inventory file (expected one of: {INVENTORY_FORMATS})"),
        )
        .into());
    }
    let lower = source.to_ascii_lowercase();
    // A TOML document with an estate section is an estate, whatever its head showed; any other
    // TOML document is still most likely meant as one (its errors say which key is wrong).
    if let Ok(table) = text.parse::<toml::Table>() {
        let r = estate::parse(source, bytes);
        if table.keys().any(|k| estate::SECTIONS.contains(&k.as_str())) {
            return r.map(|e| Inventory::Estate(Box::new(e)));
        }
        return r
            .map(|e| Inventory::Estate(Box::new(e)))
            .map_err(|e| explain(source, "estate TOML", e));
    }
    let first = text.lines().next().unwrap_or("");
    if lower.ends_with(".csv") || first.contains(',') {
        return match inventory_csv::parse(source, bytes) {
            Ok(inv) => Ok(Inventory::Csv(inv)),
            Err(e) => Err(explain(source, "server inventory CSV", e)),
        };
    }
    if lower.ends_with(".toml") || text.lines().any(|l| l.trim_start().starts_with('[')) {
        let e = estate::parse(source, bytes).err().unwrap_or_default();
        return Err(explain(source, "estate TOML", e));
    }
    Err(ParseError::whole(
        source,
        format!(
            "not an inventory file: tried {INVENTORY_FORMATS}; it is not TOML, has no CSV header with name and os, and no systeminfo, wmic qfe or Get-HotFix header"
        ),
    )
    .into())
}

/// Prefix the likeliest format's first error with what was tried.
fn explain(source: &str, likeliest: &str, mut e: ParseErrors) -> ParseErrors {
    let tried = format!("not an inventory file (tried {INVENTORY_FORMATS})");
    match e.errors.first_mut() {
        Some(first) => {
            first.message = format!("{tried}; read as {likeliest}: {}", first.message);
            e
        }
        None => ParseError::whole(source, format!("{tried}; not a valid {likeliest}")).into(),
    }
}
