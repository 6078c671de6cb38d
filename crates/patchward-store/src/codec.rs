//! Encoding and decoding shared by the backends (SQLite here, PostgreSQL in
//! `patchward-store-postgres`): how instants, KB lists, classifications and JSON records are
//! stored, and how estate records are read back. Not for use outside the store crates.

use crate::{Result, StoreError, StoredServer};
use jiff::Timestamp;
use patchward_core::catalog::{Classification, Kb};
use patchward_core::inventory::Estate;

/// The ASCII record separator that packed reads join records with (JSON text never holds it
/// unescaped).
pub const RECORD_SEPARATOR: char = '\u{1e}';

pub fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub fn from_ms(v: Option<i64>) -> Option<Timestamp> {
    v.and_then(|m| Timestamp::from_millisecond(m).ok())
}

pub fn corrupt(what: impl Into<String>, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        why: why.to_string(),
    }
}

pub fn kbs_text(k: &[Kb]) -> String {
    k.iter()
        .map(|k| k.0.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn kbs_parse(s: &str) -> Vec<Kb> {
    s.split_whitespace()
        .filter_map(|t| t.parse::<u32>().ok().map(Kb))
        .collect()
}

pub fn class_text(c: Classification) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "other".into())
}

/// The classification from MSRC's SubType and the product (as the parser would give it now);
/// the stored value only where the SubType says nothing.
pub fn reclassify(
    stored: &str,
    subtype: &str,
    kind: Option<&patchward_core::product::ProductKind>,
) -> Classification {
    match Classification::from_subtype(subtype, kind) {
        Classification::Other => class_parse(stored),
        c => c,
    }
}

pub fn class_parse(s: &str) -> Classification {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .unwrap_or(Classification::Other)
}

pub fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(format!("cannot encode {what}: {e}")))
}

/// The estate's non-server objects as (kind, name, JSON record) rows.
pub fn estate_object_rows(estate: &Estate) -> Result<Vec<(&'static str, String, String)>> {
    let mut rows: Vec<(&'static str, String, String)> = Vec::new();
    for s in &estate.services {
        rows.push(("service", s.name.clone(), to_json("service", s)?));
    }
    for (i, d) in estate.dependencies.iter().enumerate() {
        rows.push(("dependency", format!("{i:08}"), to_json("dependency", d)?));
    }
    for w in &estate.windows {
        rows.push(("window", w.name.clone(), to_json("window", w)?));
    }
    for b in &estate.blackouts {
        rows.push(("blackout", b.name.clone(), to_json("blackout", b)?));
    }
    for p in &estate.backup_policies {
        rows.push((
            "backup_policy",
            p.name.clone(),
            to_json("backup policy", p)?,
        ));
    }
    for r in &estate.rings {
        rows.push(("ring", r.name.clone(), to_json("ring", r)?));
    }
    if let Some(c) = &estate.coverage {
        rows.push(("coverage", String::new(), to_json("coverage", c)?));
    }
    rows.push((
        "capacity",
        String::new(),
        to_json("capacity", &estate.capacity)?,
    ));
    Ok(rows)
}

pub fn stored_server(id: i64, name: &str, rec: &str, updated_at: i64) -> Result<StoredServer> {
    Ok(StoredServer {
        id,
        server: serde_json::from_str(rec).map_err(|e| corrupt(format!("server {name}"), e))?,
        updated_at: from_ms(Some(updated_at)).unwrap_or(Timestamp::UNIX_EPOCH),
    })
}

/// Records packed into one string by the database (joined by [`RECORD_SEPARATOR`]), decoded;
/// `None` when one does not decode (the caller then reads row by row to name it).
pub fn unpack<T: serde::de::DeserializeOwned>(text: Option<String>) -> Option<Vec<T>> {
    let Some(text) = text else {
        return Some(Vec::new());
    };
    text.split(RECORD_SEPARATOR)
        .map(|r| serde_json::from_str(r).ok())
        .collect()
}

/// One stored estate object (the row-by-row read), added to `estate`; a record that does not
/// decode is [`StoreError::Corrupt`] naming its kind and name. Unknown kinds are skipped.
pub fn push_estate_object(estate: &mut Estate, kind: &str, name: &str, rec: &str) -> Result<()> {
    let what = || format!("{kind} {name}");
    match kind {
        "service" => estate
            .services
            .push(serde_json::from_str(rec).map_err(|e| corrupt(what(), e))?),
        "dependency" => estate
            .dependencies
            .push(serde_json::from_str(rec).map_err(|e| corrupt(what(), e))?),
        "window" => estate
            .windows
            .push(serde_json::from_str(rec).map_err(|e| corrupt(what(), e))?),
        "blackout" => estate
            .blackouts
            .push(serde_json::from_str(rec).map_err(|e| corrupt(what(), e))?),
        "backup_policy" => estate
            .backup_policies
            .push(serde_json::from_str(rec).map_err(|e| corrupt(what(), e))?),
        "ring" => estate
            .rings
            .push(serde_json::from_str(rec).map_err(|e| corrupt(what(), e))?),
        "coverage" => {
            estate.coverage = Some(serde_json::from_str(rec).map_err(|e| corrupt(what(), e))?)
        }
        "capacity" => {
            estate.capacity = serde_json::from_str(rec).map_err(|e| corrupt(what(), e))?
        }
        _ => {}
    }
    Ok(())
}

/// A random id for a new server, user or token: positive, below 2^53 (exact in JSON numbers),
/// so that ids say nothing about how many records exist or in which order they came (a
/// tenant must not infer another's data from the gaps in its ids).
pub fn random_id() -> crate::Result<i64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)
        .map_err(|e| crate::StoreError::Invalid(format!("no randomness for an id: {e}")))?;
    Ok(((u64::from_le_bytes(b) >> 11) as i64).max(1))
}
