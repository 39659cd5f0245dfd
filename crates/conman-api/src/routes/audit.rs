//! `/api/apps/:appId/audit`: the app's audit events, filtered and paginated.

use axum::extract::Path;
use conman_core::ids::{AppId, UserId};
use conman_core::ports::store::{AuditFilter, PageRequest};

use super::{St, State};
use crate::dto::*;
use crate::envelope::{paged, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiQuery, Authed};

/// Audit events of the app, newest first.
#[utoipa::path(operation_id = "list_audit", get, path = "/api/apps/{app_id}/audit", tag = "audit", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), AuditQuery),
    responses((status = 200, body = PagedEnvelope<AuditEventDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Paged<AuditEventDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let filter = AuditFilter {
        app_id: None,
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        actor_id: q.actor.map(UserId),
        since: q.since,
        until: q.until,
    };
    let events = c.query_audit(&actor, path_id::<AppId>(&app_id)?, filter, page).await?;
    Ok(paged(events, page, AuditEventDto::from))
}
