//! Reading and verifying the audit log (SPEC §2.9).
//!
//! Invariant: a member reads only what the role may see elsewhere. The
//! request context of an event (client IP, user agent) is shown to those who
//! manage members (`app_admin`) only, and an invite's email address to the
//! roles that may list invites (the same capability); for everyone else
//! those fields are removed from the answer and named in
//! [`AuditView::redacted`]. The chain's hashes are of the full record, so a
//! reader given a redacted view verifies the chain through
//! [`Conman::verify_audit_chain`] (operators), not by rehashing the view.

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

/// An audit event as one reader may see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditView {
    /// The event, with the fields the reader may not see removed.
    #[serde(flatten)]
    pub record: AuditRecord,
    /// The fields removed for this reader (`request.ip`,
    /// `request.user_agent`, `before.email`, `after.email`), in that order;
    /// empty when the reader sees the whole event.
    pub redacted: Vec<&'static str>,
}

impl AuditView {
    /// `record` as a reader who may (or may not) see request context and
    /// invite emails sees it.
    fn of(mut record: AuditRecord, sees_request_context: bool, sees_invite_emails: bool) -> AuditView {
        let mut redacted = Vec::new();
        if !sees_request_context {
            let request = &mut record.entry.request;
            if request.ip.take().is_some() {
                redacted.push("request.ip");
            }
            if request.user_agent.take().is_some() {
                redacted.push("request.user_agent");
            }
        }
        if !sees_invite_emails && record.entry.entity_type == "invite" {
            for (side, name) in [(&mut record.entry.before, "before.email"), (&mut record.entry.after, "after.email")] {
                if let Some(serde_json::Value::Object(fields)) = side.as_mut() {
                    if fields.remove("email").is_some() {
                        redacted.push(name);
                    }
                }
            }
        }
        AuditView { record, redacted }
    }
}

impl Conman {
    /// Audit events of an app, newest first. Any member may read them, each
    /// as the role may see it (see the module doc).
    pub async fn query_audit(
        &self,
        actor: &Actor,
        app_id: AppId,
        mut filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditView>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        if let (Some(s), Some(u)) = (filter.since, filter.until) {
            if s > u {
                return Err(Error::invalid("since", "out_of_range", "since must not be after until"));
            }
        }
        filter.app_id = Some(app_id);
        // Listing invites and seeing who connected from where are both the
        // member managers' (SPEC §3: "invite users, manage members").
        let manages_members = scope.require(Capability::ManageMembers, None).is_ok();
        let page = self.store().list_audit(&filter, page).await?;
        Ok(page.map(|record| AuditView::of(record, manages_members, manages_members)))
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
