//! The audit log (PRODUCT.md C12): every write appends who, tenant, when, what and the detail
//! (before/after). Entries are hash-chained: each hash covers the previous entry's hash and
//! every field of its own, so changing or deleting a stored entry breaks the chain at it.

use crate::{Actor, App, AppError, Result};
use jiff::Timestamp;
use patchward_core::access::Permission;
use patchward_proto::AuditVerification;
use patchward_store::{AuditEntry, AuditQuery, ControlStore, NewAuditEntry, TenantId};
use sha2::{Digest, Sha256};

/// The entry's hash: SHA-256 over a JSON array of the previous hash and every field, so no
/// two different entries serialise alike.
pub fn chain(e: &AuditEntry) -> String {
    let canonical = serde_json::json!([
        e.prev_hash,
        e.seq,
        e.at.as_millisecond(),
        e.tenant.map(|t| t.0),
        e.actor,
        e.action,
        e.target,
        e.detail,
    ]);
    hex(&Sha256::digest(canonical.to_string().as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// How many entries verification reads at a time (bounded memory on long logs).
const VERIFY_BATCH: i64 = 5_000;

impl<S: ControlStore> App<S> {
    /// Append an entry for `actor`'s action (`target` names what it acted on).
    pub async fn record(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<AuditEntry> {
        Ok(self
            .store
            .append_audit(
                NewAuditEntry {
                    at: self.now(),
                    tenant,
                    actor: actor.name.clone(),
                    action: action.to_string(),
                    target: target.to_string(),
                    detail: detail.to_string(),
                },
                chain,
            )
            .await?)
    }

    /// Entries the actor may read: administrators of a tenant read its entries; provider-wide
    /// administrators read everything (or one tenant's).
    pub async fn audit_entries(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        mut q: AuditQuery,
    ) -> Result<Vec<AuditEntry>> {
        actor.require(Permission::Administer)?;
        q.tenant = actor.tenant.or(tenant);
        Ok(self.store.audit(&q).await?)
    }

    /// Check the whole chain: numbering without gaps from 1, each `prev_hash` equal to the
    /// previous entry's hash, each hash recomputed, and the recorded head at the last entry.
    /// Names the first entry that does not match.
    pub async fn verify_audit(&self, actor: &Actor) -> Result<AuditVerification> {
        actor.require(Permission::Administer)?;
        if !actor.provider_wide() {
            return Err(AppError::forbidden(
                "the chain covers every tenant: only a provider-wide administrator verifies it",
            ));
        }
        let mut checked = 0u64;
        let mut prev: Option<AuditEntry> = None;
        let bad = |seq: i64, problem: String, checked: u64| AuditVerification {
            entries: checked,
            ok: false,
            first_bad: Some(seq),
            problem: Some(problem),
        };
        loop {
            let batch = self
                .store
                .audit(&AuditQuery {
                    after_seq: prev.as_ref().map(|p| p.seq),
                    limit: Some(VERIFY_BATCH),
                    ..AuditQuery::default()
                })
                .await?;
            if batch.is_empty() {
                break;
            }
            for e in batch {
                let expected_seq = prev.as_ref().map_or(1, |p| p.seq + 1);
                if e.seq != expected_seq {
                    return Ok(bad(
                        expected_seq,
                        format!(
                            "entry {expected_seq} is missing (the next stored entry is {})",
                            e.seq
                        ),
                        checked,
                    ));
                }
                let expected_prev = prev.as_ref().map_or("", |p| p.hash.as_str());
                if e.prev_hash != expected_prev {
                    return Ok(bad(
                        e.seq,
                        format!(
                            "entry {} does not follow entry {}: its previous hash differs",
                            e.seq,
                            e.seq - 1
                        ),
                        checked,
                    ));
                }
                if chain(&e) != e.hash {
                    return Ok(bad(
                        e.seq,
                        format!(
                            "entry {} was changed after it was written: its hash does not match its content",
                            e.seq
                        ),
                        checked,
                    ));
                }
                checked += 1;
                prev = Some(e);
            }
        }
        let head = self.store.audit_head().await?;
        match (head, &prev) {
            (None, None) => {}
            (Some((seq, hash)), Some(last)) if seq == last.seq && hash == last.hash => {}
            (Some((seq, _)), last) => {
                let at = last.as_ref().map_or(1, |l| l.seq + 1);
                return Ok(bad(
                    at.min(seq),
                    format!(
                        "the log ends at entry {} but entry {seq} was written: entries were deleted",
                        last.as_ref().map_or(0, |l| l.seq)
                    ),
                    checked,
                ));
            }
            (None, Some(last)) => {
                return Ok(bad(
                    last.seq,
                    "the chain's recorded head is missing".into(),
                    checked,
                ));
            }
        }
        Ok(AuditVerification {
            entries: checked,
            ok: true,
            first_bad: None,
            problem: None,
        })
    }
}

/// An RFC 3339 instant in UTC for the wire.
pub(crate) fn instant(t: Timestamp) -> String {
    t.to_string()
}
