//! The audit log: one hash chain over every unit (mirrors the SQL stores'
//! `audit`), chained with the core's [`chain_hash`].

use async_trait::async_trait;

use super::{page, unique, ReferenceStore, State};
use crate::domain::audit::{chain_hash, AuditEntry, AuditRecord, GENESIS_HASH};
use crate::error::Error;
use crate::ids::AppId;
use crate::ports::store::{AuditFilter, AuditStore, Page, PageRequest, Record};

/// The audit chain, in chain order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Audit {
    pub(crate) records: Vec<AuditRecord>,
}

fn matches(filter: &AuditFilter, e: &AuditEntry) -> bool {
    filter.app_id.is_none_or(|a| e.app_id == Some(a))
        && filter.entity_type.as_ref().is_none_or(|t| &e.entity_type == t)
        && filter.entity_id.as_ref().is_none_or(|i| &e.entity_id == i)
        && filter.actor_id.is_none_or(|a| e.actor_id == Some(a))
        && filter.since.is_none_or(|s| e.occurred_at >= s)
        && filter.until.is_none_or(|u| e.occurred_at < u)
}

#[async_trait]
impl AuditStore for ReferenceStore {
    async fn list_audit(&self, filter: &AuditFilter, request: PageRequest) -> Result<Page<AuditRecord>, Error> {
        let found: Vec<AuditRecord> =
            self.lock().audit.records.iter().rev().filter(|r| matches(filter, &r.entry)).cloned().collect();
        Ok(page(found, request))
    }

    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error> {
        let state = self.lock();
        Ok(state.audit.records.iter().filter(|r| r.seq > after_seq).take(limit as usize).cloned().collect())
    }

    async fn audit_has_sha(&self, app_id: AppId, git_sha: &str) -> Result<bool, Error> {
        let state = self.lock();
        Ok(state
            .audit
            .records
            .iter()
            .any(|r| r.entry.app_id == Some(app_id) && r.entry.git_sha.as_deref() == Some(git_sha)))
    }
}

/// Appends `entries` to the chain, after the last record.
pub(crate) fn append(state: &mut State, entries: &[AuditEntry]) -> Result<(), Error> {
    for e in entries {
        let records = &mut state.audit.records;
        unique(records.iter().any(|r| r.entry.id == e.id), Record::AuditEvent, "id")?;
        let (seq, prev_hash) =
            records.last().map_or((1, GENESIS_HASH.to_owned()), |last| (last.seq + 1, last.hash.clone()));
        let hash = chain_hash(&prev_hash, e);
        records.push(AuditRecord { seq, entry: e.clone(), prev_hash, hash });
    }
    Ok(())
}
