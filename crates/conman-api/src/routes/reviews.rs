//! `/api/apps/:appId/changesets/:csId/review`: approve, request changes or
//! reject the latest revision.

use axum::extract::Path;

use super::changesets::ids;
use super::{St, State};
use crate::dto::*;
use crate::envelope::{ok, Data};
use crate::error::ApiResult;
use crate::extract::{ApiJson, Authed};

/// Vote on the latest revision of an `in_review` changeset (reviewers and
/// above; a later vote replaces the reviewer's earlier one).
#[utoipa::path(post, path = "/api/apps/{app_id}/changesets/{cs_id}/review", operation_id = "review_changeset",
    tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    request_body = ReviewRequest,
    responses((status = 200, body = Envelope<ReviewResultDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn review(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> ApiResult<Data<ReviewResultDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let outcome = c.review_changeset(&actor, app_id, cs_id, req.into()).await?;
    Ok(ok(ReviewResultDto::from(&outcome)))
}
