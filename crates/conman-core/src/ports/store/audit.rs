//! The audit log: reads. Audit entries are written only as part of a
//! [`UnitOfWork`](super::UnitOfWork), never on their own.

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::audit::AuditRecord;
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, UserId};

/// Filter of the audit query (SPEC §2.9, §7).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Only this app's events.
    pub app_id: Option<AppId>,
    /// Only this entity type.
    pub entity_type: Option<String>,
    /// Only this entity id.
    pub entity_id: Option<String>,
    /// Only this actor.
    pub actor_id: Option<UserId>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Events matching `filter`, newest first.
    async fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditRecord>, Error>;
    /// Up to `limit` records with `seq > after_seq`, in chain order.
    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error>;
    /// True when some audit record carries `git_sha`.
    async fn audit_has_sha(&self, app_id: AppId, git_sha: &str) -> Result<bool, Error>;
}
