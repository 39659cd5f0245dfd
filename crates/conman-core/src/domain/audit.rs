//! Audit events (SPEC §2.9): one per mutation, written in the mutation's
//! unit of work, append-only and hash-chained.
//!
//! The chain: `hash = sha256(prev_hash || canonical_json(content))`, hex.
//! [`chain_hash`] is the only definition; stores call it when appending and
//! the verifier calls it when walking, so every store chains identically.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{format_timestamp, Timestamp};
use crate::ids::{AppId, AuditEventId, UserId};

/// The hash before the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestContext {
    /// `x-request-id` of the HTTP request, or a CLI-generated id.
    pub request_id: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

/// An audit event as the core writes it (the store adds sequence and hashes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Identity.
    pub id: AuditEventId,
    /// When.
    pub occurred_at: Timestamp,
    /// Who (`None` for the system itself).
    pub actor_id: Option<UserId>,
    /// App concerned, if any.
    pub app_id: Option<AppId>,
    /// Entity kind (`app`, `workspace`, ...).
    pub entity_type: String,
    /// Entity id.
    pub entity_id: String,
    /// Action (`workspace.file_written`, ...).
    pub action: String,
    /// State before (secrets masked).
    pub before: Option<Value>,
    /// State after (secrets masked).
    pub after: Option<Value>,
    /// Git commit the mutation produced or concerns.
    pub git_sha: Option<String>,
    /// Request context.
    pub request: RequestContext,
}

/// An audit event as stored: its position in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the global chain, from 1.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Hash of the previous record ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
}

/// The canonical text of `entry` that the chain hashes: a JSON object of
/// every field with sorted keys (serde_json maps are sorted without
/// `preserve_order`). Stores that compute hashes themselves hash exactly this.
pub fn chain_content(entry: &AuditEntry) -> String {
    serde_json::json!({
        "id": entry.id,
        "occurred_at": format_timestamp(&entry.occurred_at),
        "actor_id": entry.actor_id,
        "app_id": entry.app_id,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "action": entry.action,
        "before": entry.before,
        "after": entry.after,
        "git_sha": entry.git_sha,
        "request": entry.request,
    })
    .to_string()
}

/// The chain hash of `entry` following `prev_hash`: hex SHA-256 of
/// `prev_hash`, a newline and [`chain_content`].
pub fn chain_hash(prev_hash: &str, entry: &AuditEntry) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(chain_content(entry).as_bytes());
    hex::encode(hasher.finalize())
}

/// Where a chain walk found a break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// Sequence number of the first bad record.
    pub seq: i64,
    /// What is wrong.
    pub reason: String,
}

/// Checks that `records` continue a chain whose last hash was `prev_hash`
/// at sequence `prev_seq`. Returns the last hash and sequence, or the break.
pub fn verify_segment(prev_seq: i64, prev_hash: &str, records: &[AuditRecord]) -> Result<(i64, String), ChainBreak> {
    let (mut seq, mut hash) = (prev_seq, prev_hash.to_owned());
    for r in records {
        if r.seq != seq + 1 {
            return Err(ChainBreak { seq: r.seq, reason: format!("expected sequence {}, found {}", seq + 1, r.seq) });
        }
        if r.prev_hash != hash {
            return Err(ChainBreak { seq: r.seq, reason: "prev_hash does not match the previous record".into() });
        }
        let expected = chain_hash(&hash, &r.entry);
        if r.hash != expected {
            return Err(ChainBreak { seq: r.seq, reason: "hash does not match the record's content".into() });
        }
        seq = r.seq;
        hash = r.hash.clone();
    }
    Ok((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            id: AuditEventId(Uuid::now_v7()),
            occurred_at: chrono::Utc::now(),
            actor_id: None,
            app_id: None,
            entity_type: "app".into(),
            entity_id: "x".into(),
            action: action.into(),
            before: None,
            after: Some(serde_json::json!({"b": 1, "a": [1, 2]})),
            git_sha: None,
            request: RequestContext::default(),
        }
    }

    fn chain(actions: &[&str]) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let e = entry(a);
                let hash = chain_hash(&prev, &e);
                let r = AuditRecord { seq: i as i64 + 1, entry: e, prev_hash: prev.clone(), hash: hash.clone() };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let records = chain(&["a", "b", "c"]);
        let (seq, hash) = verify_segment(0, GENESIS_HASH, &records).unwrap();
        assert_eq!(seq, 3);
        assert_eq!(hash, records[2].hash);
    }

    #[test]
    fn edited_content_breaks_the_chain_at_that_record() {
        let mut records = chain(&["a", "b", "c"]);
        records[1].entry.action = "forged".into();
        assert_eq!(verify_segment(0, GENESIS_HASH, &records).unwrap_err().seq, 2);
    }

    #[test]
    fn a_deleted_record_breaks_the_chain() {
        let mut records = chain(&["a", "b", "c"]);
        records.remove(1);
        assert_eq!(verify_segment(0, GENESIS_HASH, &records).unwrap_err().seq, 3);
    }

    #[test]
    fn the_hash_ignores_map_insertion_order() {
        let mut e = entry("x");
        let h1 = chain_hash(GENESIS_HASH, &e);
        e.after = Some(serde_json::from_str(r#"{"a": [1, 2], "b": 1}"#).unwrap());
        assert_eq!(chain_hash(GENESIS_HASH, &e), h1);
    }
}
