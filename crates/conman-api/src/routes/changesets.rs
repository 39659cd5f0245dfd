//! `/api/apps/:appId/changesets`: list, create, show (with revisions,
//! votes and approval), edit, submit, resubmit, queue, move to draft.

use axum::extract::Path;
use conman_core::domain::changeset::ChangesetState;
use conman_core::domain::runtime_profile::overrides::ProfileOverrideInput;
use conman_core::ids::{parse_uuid, AppId, ChangesetId, UserId};
use conman_core::ports::store::{ChangesetFilter, PageRequest};

use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed, OptionalJson};

/// Parses the app and changeset ids of a path.
pub(super) fn ids(app_id: &str, cs_id: &str) -> ApiResult<(AppId, ChangesetId)> {
    Ok((path_id(app_id)?, path_id(cs_id)?))
}

/// Changesets of the app, newest first.
#[utoipa::path(get, path = "/api/apps/{app_id}/changesets", operation_id = "list_changesets", tag = "changesets",
    security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id"), ChangesetQuery),
    responses((status = 200, body = PagedEnvelope<ChangesetDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<ChangesetQuery>,
) -> ApiResult<Paged<ChangesetDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let filter = ChangesetFilter {
        state: q.state.as_deref().map(ChangesetState::parse).transpose()?,
        author_id: q.author.as_deref().map(|a| parse_uuid(a, "author").map(UserId)).transpose()?,
        ..Default::default()
    };
    let list = c.list_changesets(&actor, path_id(&app_id)?, filter, page).await?;
    Ok(paged(list, page, |cs| ChangesetDto::from(&cs)))
}

/// Open a changeset on one of the caller's workspaces (one open changeset per workspace).
#[utoipa::path(post, path = "/api/apps/{app_id}/changesets", operation_id = "create_changeset", tag = "changesets",
    security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id")),
    request_body = CreateChangesetRequest,
    responses((status = 201, body = Envelope<ChangesetDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn create(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<CreateChangesetRequest>,
) -> ApiResult<Data<ChangesetDto>> {
    let cs = c.create_changeset(&actor, path_id(&app_id)?, req.into()).await?;
    Ok(created(ChangesetDto::from(&cs)))
}

/// One changeset with its revisions, votes and the approval status of the latest revision.
#[utoipa::path(get, path = "/api/apps/{app_id}/changesets/{cs_id}", operation_id = "get_changeset", tag = "changesets",
    security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    responses((status = 200, body = Envelope<ChangesetDetailDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn get(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
) -> ApiResult<Data<ChangesetDetailDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let view = c.get_changeset(&actor, app_id, cs_id).await?;
    Ok(ok(ChangesetDetailDto::from(&view)))
}

/// Edit title, description or dependencies (the author, before approval).
#[utoipa::path(patch, path = "/api/apps/{app_id}/changesets/{cs_id}", operation_id = "update_changeset", tag = "changesets",
    security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    request_body = UpdateChangesetRequest,
    responses((status = 200, body = Envelope<ChangesetDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn update(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdateChangesetRequest>,
) -> ApiResult<Data<ChangesetDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let cs = c.update_changeset(&actor, app_id, cs_id, req.into()).await?;
    Ok(ok(ChangesetDto::from(&cs)))
}

/// Freeze the workspace head as revision 1 with the draft's profile
/// overrides (replaced first by `profile_overrides` when given) and start
/// the submit gate (`draft` only).
#[utoipa::path(post, path = "/api/apps/{app_id}/changesets/{cs_id}/submit", operation_id = "submit_changeset",
    tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    request_body = Option<SubmitRequest>,
    responses((status = 200, body = Envelope<SubmitDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn submit(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
    OptionalJson(req): OptionalJson<SubmitRequest>,
) -> ApiResult<Data<SubmitDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let outcome = match req.profile_overrides {
        Some(list) => {
            let input = list.into_iter().map(ProfileOverrideInput::from).collect();
            c.submit_changeset_with_overrides(&actor, app_id, cs_id, input).await?
        }
        None => c.submit_changeset(&actor, app_id, cs_id).await?,
    };
    Ok(ok(SubmitDto::from(&outcome)))
}

/// Freeze a new revision, reset approvals and re-run the submit gate
/// (`submitted`, `in_review` or `changes_requested`).
#[utoipa::path(post, path = "/api/apps/{app_id}/changesets/{cs_id}/resubmit", operation_id = "resubmit_changeset",
    tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    request_body = Option<ResubmitRequest>,
    responses((status = 200, body = Envelope<SubmitDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn resubmit(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
    OptionalJson(ResubmitRequest {}): OptionalJson<ResubmitRequest>,
) -> ApiResult<Data<SubmitDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let outcome = c.resubmit_changeset(&actor, app_id, cs_id).await?;
    Ok(ok(SubmitDto::from(&outcome)))
}

/// Put an approved changeset into the release queue (its author, or a config manager).
#[utoipa::path(post, path = "/api/apps/{app_id}/changesets/{cs_id}/queue", operation_id = "queue_changeset",
    tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    responses((status = 200, body = Envelope<ChangesetDto>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn queue(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
) -> ApiResult<Data<ChangesetDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let cs = c.queue_changeset(&actor, app_id, cs_id).await?;
    Ok(ok(ChangesetDto::from(&cs)))
}

/// Send a changeset back to draft (from `changes_requested`, `queued`,
/// `conflicted` or `needs_revalidation`; own, or any for config managers).
#[utoipa::path(post, path = "/api/apps/{app_id}/changesets/{cs_id}/move-to-draft",
    operation_id = "move_changeset_to_draft", tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    responses((status = 200, body = Envelope<ChangesetDto>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn move_to_draft(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
) -> ApiResult<Data<ChangesetDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let cs = c.move_changeset_to_draft(&actor, app_id, cs_id).await?;
    Ok(ok(ChangesetDto::from(&cs)))
}
