//! Reading and verifying the audit log (SPEC §2.9).

use serde::Serialize;

use super::{Actor, Conman};
use crate::domain::audit::{verify_segment, AuditRecord, ChainBreak, GENESIS_HASH};
use crate::error::Error;
use crate::ids::AppId;
use crate::ports::store::{AuditFilter, Page, PageRequest};
use crate::rbac::Capability;

/// Result of walking the whole chain.
#[derive(Debug, Clone, Serialize)]
pub struct AuditVerification {
    /// Records checked.
    pub records: u64,
    /// Hash of the last record (the chain head).
    pub head_hash: String,
    /// The first break, if any.
    pub first_break: Option<ChainBreak>,
}

impl AuditVerification {
    /// True when the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

impl Conman {
    /// Audit events of an app, newest first (any member may read them).
    pub async fn query_audit(
        &self,
        actor: &Actor,
        app_id: AppId,
        mut filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        if let (Some(s), Some(u)) = (filter.since, filter.until) {
            if s > u {
                return Err(Error::invalid("since", "out_of_range", "since must not be after until"));
            }
        }
        filter.app_id = Some(app_id);
        self.store().list_audit(&filter, page).await
    }

    /// Walks the whole hash chain from the first record.
    pub async fn verify_audit_chain(&self) -> Result<AuditVerification, Error> {
        const BATCH: u32 = 1000;
        let (mut seq, mut hash, mut records) = (0i64, GENESIS_HASH.to_owned(), 0u64);
        loop {
            let batch = self.store().audit_chain(seq, BATCH).await?;
            if batch.is_empty() {
                return Ok(AuditVerification { records, head_hash: hash, first_break: None });
            }
            match verify_segment(seq, &hash, &batch) {
                Ok((s, h)) => {
                    records += batch.len() as u64;
                    seq = s;
                    hash = h;
                }
                Err(b) => return Ok(AuditVerification { records, head_hash: hash, first_break: Some(b) }),
            }
        }
    }
}
