//! `/api/apps/:appId/changesets/:csId/comments`: list (oldest first), add
//! (optionally anchored to a path and line of a revision), edit (its author;
//! earlier bodies are kept).

use axum::extract::Path;
use conman_core::ids::CommentId;
use conman_core::ports::store::PageRequest;

use super::changesets::ids;
use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed};

/// Comments of a changeset, oldest first.
#[utoipa::path(get, path = "/api/apps/{app_id}/changesets/{cs_id}/comments", operation_id = "list_comments",
    tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id"),
        PageQuery),
    responses((status = 200, body = PagedEnvelope<CommentDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<CommentDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let page = PageRequest::new(q.page, q.limit)?;
    let list = c.list_comments(&actor, app_id, cs_id, page).await?;
    Ok(paged(list, page, |comment| CommentDto::from(&comment)))
}

/// Comment on a changeset.
#[utoipa::path(post, path = "/api/apps/{app_id}/changesets/{cs_id}/comments", operation_id = "create_comment",
    tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    request_body = CreateCommentRequest,
    responses((status = 201, body = Envelope<CommentDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn create(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<CreateCommentRequest>,
) -> ApiResult<Data<CommentDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let comment = c.add_comment(&actor, app_id, cs_id, req.into()).await?;
    Ok(created(CommentDto::from(&comment)))
}

/// Replace a comment's body (its author only); the earlier body goes to `edits`.
#[utoipa::path(patch, path = "/api/apps/{app_id}/changesets/{cs_id}/comments/{comment_id}",
    operation_id = "edit_comment", tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id"),
        ("comment_id" = Uuid, Path, description = "Comment id")),
    request_body = EditCommentRequest,
    responses((status = 200, body = Envelope<CommentDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn edit(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id, comment_id)): Path<(String, String, String)>,
    ApiJson(req): ApiJson<EditCommentRequest>,
) -> ApiResult<Data<CommentDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let comment_id: CommentId = path_id(&comment_id)?;
    let comment = c.edit_comment(&actor, app_id, cs_id, comment_id, &req.body).await?;
    Ok(ok(CommentDto::from(&comment)))
}
