//! `/api/apps/:appId/releases`: create, list, show, select, reorder,
//! assemble, publish.

use axum::extract::Path;
use conman_core::domain::release::ReleaseState;
use conman_core::ids::{AppId, ReleaseId};
use conman_core::ports::store::{PageRequest, ReleaseFilter};

use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed};

fn ids(app_id: &str, rel_id: &str) -> ApiResult<(AppId, ReleaseId)> {
    Ok((path_id(app_id)?, path_id(rel_id)?))
}

/// Releases of the app, newest first.
#[utoipa::path(get, path = "/api/apps/{app_id}/releases", operation_id = "list_releases", tag = "releases",
    security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id"), ReleaseQuery),
    responses((status = 200, body = PagedEnvelope<ReleaseDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<ReleaseQuery>,
) -> ApiResult<Paged<ReleaseDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let filter = ReleaseFilter { state: q.state.as_deref().map(ReleaseState::parse).transpose()? };
    let releases = c.list_releases(&actor, path_id(&app_id)?, filter, page).await?;
    Ok(paged(releases, page, |r| ReleaseDto::from(&r)))
}

/// Create a draft release with an empty selection (config managers).
#[utoipa::path(post, path = "/api/apps/{app_id}/releases", operation_id = "create_release", tag = "releases",
    security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id")),
    request_body = CreateReleaseRequest,
    responses((status = 201, body = Envelope<ReleaseDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn create(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<CreateReleaseRequest>,
) -> ApiResult<Data<ReleaseDto>> {
    let release = c.create_release(&actor, path_id(&app_id)?, req.title.as_deref()).await?;
    Ok(created(ReleaseDto::from(&release)))
}

/// One release: its ordered changesets with their composition outcomes,
/// base and composed commits, gate results, tag and history fields.
#[utoipa::path(get, path = "/api/apps/{app_id}/releases/{rel_id}", operation_id = "get_release", tag = "releases",
    security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("rel_id" = Uuid, Path, description = "Release id")),
    responses((status = 200, body = Envelope<ReleaseDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn get(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, rel_id)): Path<(String, String)>,
) -> ApiResult<Data<ReleaseDto>> {
    let (app_id, rel_id) = ids(&app_id, &rel_id)?;
    Ok(ok(ReleaseDto::from(&c.get_release(&actor, app_id, rel_id).await?)))
}

/// Set a draft release's selection, in release order (config managers):
/// queued changesets of the app, each once, dependencies released or first.
#[utoipa::path(post, path = "/api/apps/{app_id}/releases/{rel_id}/changesets", operation_id = "set_release_changesets",
    tag = "releases", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("rel_id" = Uuid, Path, description = "Release id")),
    request_body = ReleaseSelectionRequest,
    responses((status = 200, body = Envelope<ReleaseDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn set_changesets(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, rel_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<ReleaseSelectionRequest>,
) -> ApiResult<Data<ReleaseDto>> {
    let (app_id, rel_id) = ids(&app_id, &rel_id)?;
    Ok(ok(ReleaseDto::from(&c.set_release_changesets(&actor, app_id, rel_id, &req.ids()).await?)))
}

/// Reorder a draft release's selection: the same changesets, dependencies
/// still first (config managers).
#[utoipa::path(post, path = "/api/apps/{app_id}/releases/{rel_id}/reorder", operation_id = "reorder_release",
    tag = "releases", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("rel_id" = Uuid, Path, description = "Release id")),
    request_body = ReleaseSelectionRequest,
    responses((status = 200, body = Envelope<ReleaseDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn reorder(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, rel_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<ReleaseSelectionRequest>,
) -> ApiResult<Data<ReleaseDto>> {
    let (app_id, rel_id) = ids(&app_id, &rel_id)?;
    Ok(ok(ReleaseDto::from(&c.reorder_release(&actor, app_id, rel_id, &req.ids()).await?)))
}

/// Start assembling (config managers): the `release_assemble` job composes
/// the selection onto the integration head and runs the release gate.
#[utoipa::path(post, path = "/api/apps/{app_id}/releases/{rel_id}/assemble", operation_id = "assemble_release",
    tag = "releases", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("rel_id" = Uuid, Path, description = "Release id")),
    responses((status = 200, body = Envelope<AssembleEnvelope>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn assemble(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, rel_id)): Path<(String, String)>,
) -> ApiResult<Data<AssembleEnvelope>> {
    let (app_id, rel_id) = ids(&app_id, &rel_id)?;
    let (release, job) = c.assemble_release(&actor, app_id, rel_id).await?;
    Ok(ok(AssembleEnvelope { release: ReleaseDto::from(&release), job: JobDto::from(&job) }))
}

/// Publish a validated release (config managers): the integration branch
/// moves to the composed commit and the tag `rYYYY.MM.DD.N` is created, or
/// 409 when the branch moved since assembly (re-assemble).
#[utoipa::path(post, path = "/api/apps/{app_id}/releases/{rel_id}/publish", operation_id = "publish_release",
    tag = "releases", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("rel_id" = Uuid, Path, description = "Release id")),
    responses((status = 200, body = Envelope<ReleaseDto>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn publish(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, rel_id)): Path<(String, String)>,
) -> ApiResult<Data<ReleaseDto>> {
    let (app_id, rel_id) = ids(&app_id, &rel_id)?;
    Ok(ok(ReleaseDto::from(&c.publish_release(&actor, app_id, rel_id).await?)))
}
