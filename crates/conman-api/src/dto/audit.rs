//! Wire types of the audit log.

use chrono::{DateTime, Utc};
use conman_core::services::AuditView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `GET /api/apps/:appId/audit` filters and paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entity type (`app`, `workspace`, `invite`, `membership`, ...).
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// Actor user id.
    pub actor: Option<Uuid>,
    /// At or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1-100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// One audit event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEventDto {
    /// Position in the chain.
    pub seq: i64,
    /// Id.
    pub id: Uuid,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Actor (null for the system).
    pub actor_id: Option<Uuid>,
    /// App.
    pub app_id: Option<Uuid>,
    /// Entity type.
    pub entity_type: String,
    /// Entity id.
    pub entity_id: String,
    /// Action.
    pub action: String,
    /// State before (secrets masked): the entity's JSON snapshot, whose
    /// shape is the entity type's (an object, or a list for list-valued
    /// settings such as environments and profile overrides); null when the
    /// entity did not exist.
    pub before: Option<serde_json::Value>,
    /// State after (secrets masked), shaped as `before`; null when the
    /// entity no longer exists.
    pub after: Option<serde_json::Value>,
    /// Git commit concerned.
    pub git_sha: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Client IP (shown to `app_admin`s only).
    pub ip: Option<String>,
    /// Client user agent (shown to `app_admin`s only).
    pub user_agent: Option<String>,
    /// Fields removed because the reader's role may not see them
    /// (`request.ip`, `request.user_agent`, `before.email`, `after.email`);
    /// the hashes are of the full event.
    pub redacted: Vec<String>,
    /// Previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

impl From<AuditView> for AuditEventDto {
    fn from(view: AuditView) -> Self {
        let (r, redacted) = (view.record, view.redacted);
        let e = r.entry;
        AuditEventDto {
            seq: r.seq,
            id: e.id.0,
            occurred_at: e.occurred_at,
            actor_id: e.actor_id.map(|a| a.0),
            app_id: e.app_id.map(|a| a.0),
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            action: e.action,
            before: e.before,
            after: e.after,
            git_sha: e.git_sha,
            request_id: e.request.request_id,
            ip: e.request.ip,
            user_agent: e.request.user_agent,
            redacted: redacted.into_iter().map(str::to_owned).collect(),
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}
