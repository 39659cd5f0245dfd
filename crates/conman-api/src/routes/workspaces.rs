//! `/api/apps/:appId/workspaces`: workspaces, files, batches, checkpoints,
//! reset and sync.

use axum::extract::{Path, Request};
use conman_core::ids::{AppId, WorkspaceId};
use conman_core::ports::store::PageRequest;

use super::{St, State};
use crate::body::{file_write_limit, BATCH_OVERHEAD, FILE_WRITE_OVERHEAD};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{json_body, path_id, ApiJson, ApiQuery, Authed, OptionalJson};

fn ids(app_id: &str, ws_id: &str) -> ApiResult<(AppId, WorkspaceId)> {
    Ok((path_id(app_id)?, path_id(ws_id)?))
}

/// Workspaces of the app (creates the caller's default workspace on first use).
#[utoipa::path(operation_id = "list_workspaces", get, path = "/api/apps/{app_id}/workspaces", tag = "workspaces", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), PageQuery),
    responses((status = 200, body = PagedEnvelope<WorkspaceDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<WorkspaceDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let list = c.list_workspaces(&actor, path_id(&app_id)?, page).await?;
    Ok(paged(list, page, |w| WorkspaceDto::new(&w, None)))
}

/// Create a workspace from the app baseline.
#[utoipa::path(operation_id = "create_workspace", post, path = "/api/apps/{app_id}/workspaces", tag = "workspaces", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id")), request_body = Option<CreateWorkspaceRequest>,
    responses((status = 201, body = Envelope<WorkspaceDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn create(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    OptionalJson(req): OptionalJson<CreateWorkspaceRequest>,
) -> ApiResult<Data<WorkspaceDto>> {
    let ws = c.create_workspace(&actor, path_id(&app_id)?, req.title).await?;
    Ok(created(WorkspaceDto::new(&ws, None)))
}

/// One workspace with its head.
#[utoipa::path(operation_id = "get_workspace", get, path = "/api/apps/{app_id}/workspaces/{ws_id}", tag = "workspaces", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id")),
    responses((status = 200, body = Envelope<WorkspaceDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn get(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
) -> ApiResult<Data<WorkspaceDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    let (ws, head) = c.get_workspace(&actor, app_id, ws_id).await?;
    Ok(ok(WorkspaceDto::new(&ws, Some(&head))))
}

/// Rename a workspace or set its commit mode (owner only).
#[utoipa::path(operation_id = "update_workspace", patch, path = "/api/apps/{app_id}/workspaces/{ws_id}", tag = "workspaces", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id")),
    request_body = UpdateWorkspaceRequest,
    responses((status = 200, body = Envelope<WorkspaceDto>), (status = 403, body = ErrorEnvelope)))]
pub(crate) async fn update(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdateWorkspaceRequest>,
) -> ApiResult<Data<WorkspaceDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    let ws = c.update_workspace(&actor, app_id, ws_id, req.title, req.commit_mode).await?;
    Ok(ok(WorkspaceDto::new(&ws, None)))
}

/// Discard edits: back to the current baseline.
#[utoipa::path(operation_id = "reset_workspace", post, path = "/api/apps/{app_id}/workspaces/{ws_id}/reset", tag = "workspaces", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id")),
    responses((status = 200, body = Envelope<WorkspaceDto>), (status = 403, body = ErrorEnvelope)))]
pub(crate) async fn reset(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
) -> ApiResult<Data<WorkspaceDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    let ws = c.reset_workspace(&actor, app_id, ws_id).await?;
    Ok(ok(WorkspaceDto::new(&ws, None)))
}

/// Bring the baseline's new commits in (409 with the paths on conflict; nothing changes then).
#[utoipa::path(post, path = "/api/apps/{app_id}/workspaces/{ws_id}/sync-integration", tag = "workspaces",
    security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id")),
    request_body = Option<SyncIntegrationRequest>,
    responses((status = 200, body = Envelope<WorkspaceDto>), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn sync_integration(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
    OptionalJson(req): OptionalJson<SyncIntegrationRequest>,
) -> ApiResult<Data<WorkspaceDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    let (ws, head) = c.sync_integration(&actor, app_id, ws_id, req.strategy).await?;
    Ok(ok(WorkspaceDto::new(&ws, Some(&head))))
}

/// Read a file (base64) or list a directory at the workspace head.
#[utoipa::path(get, path = "/api/apps/{app_id}/workspaces/{ws_id}/files", tag = "files", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id"),
        FileQuery),
    responses((status = 200, body = Envelope<FileDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn read_files(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> ApiResult<Data<FileDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    let (head, node) = c.read_workspace_path(&actor, app_id, ws_id, q.path.as_deref()).await?;
    Ok(ok(FileDto::new(q.path.unwrap_or_default(), &head, node)))
}

/// Create or replace a file. The body may carry the app's
/// `file_size_limit_bytes` of content in base64 (and the path and message);
/// a larger body is refused with 413 before it is read.
#[utoipa::path(put, path = "/api/apps/{app_id}/workspaces/{ws_id}/files", tag = "files", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id")),
    request_body = PutFileRequest,
    responses((status = 200, body = Envelope<WriteResultDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope)))]
pub(crate) async fn put_file(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
    body: Request,
) -> ApiResult<Data<WriteResultDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    let limit = file_write_limit(&c, &actor, app_id, FILE_WRITE_OVERHEAD).await?;
    let req: PutFileRequest = json_body(body, limit).await?;
    let content = req.content_bytes()?;
    Ok(ok(c.write_file(&actor, app_id, ws_id, &req.path, content, req.message).await?.into()))
}

/// Delete a file.
#[utoipa::path(delete, path = "/api/apps/{app_id}/workspaces/{ws_id}/files", tag = "files", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id")),
    request_body = DeleteFileRequest,
    responses((status = 200, body = Envelope<WriteResultDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn delete_file(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<DeleteFileRequest>,
) -> ApiResult<Data<WriteResultDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    Ok(ok(c.delete_file(&actor, app_id, ws_id, &req.path, req.message).await?.into()))
}

/// Apply a batch of put/delete/move operations as one atomic change. The
/// batch carries at most the app's `file_size_limit_bytes` of content in
/// total (in base64); a larger body is refused with 413 before it is read.
#[utoipa::path(post, path = "/api/apps/{app_id}/workspaces/{ws_id}/changes", tag = "files", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id")),
    request_body = ChangesRequest,
    responses((status = 200, body = Envelope<WriteResultDto>), (status = 400, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn changes(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
    body: Request,
) -> ApiResult<Data<WriteResultDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    let limit = file_write_limit(&c, &actor, app_id, BATCH_OVERHEAD).await?;
    let req: ChangesRequest = json_body(body, limit).await?;
    let message = req.message.clone();
    Ok(ok(c.apply_changes(&actor, app_id, ws_id, req.into_ops()?, message).await?.into()))
}

/// Commit the saved edits to the workspace branch (`manual_checkpoint` mode).
#[utoipa::path(post, path = "/api/apps/{app_id}/workspaces/{ws_id}/checkpoints", tag = "workspaces",
    security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("ws_id" = Uuid, Path, description = "Workspace id")),
    request_body = CheckpointRequest,
    responses((status = 201, body = Envelope<CheckpointDto>), (status = 400, body = ErrorEnvelope)))]
pub(crate) async fn checkpoint(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, ws_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<CheckpointRequest>,
) -> ApiResult<Data<CheckpointDto>> {
    let (app_id, ws_id) = ids(&app_id, &ws_id)?;
    let outcome = c.checkpoint(&actor, app_id, ws_id, &req.message).await?;
    Ok(created(CheckpointDto { commit_sha: outcome.commit.map(|s| s.to_string()) }))
}
