//! `/api/apps`: apps and settings.

use axum::extract::Path;
use conman_core::ids::AppId;
use conman_core::ports::store::PageRequest;

use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed};

/// Apps the caller belongs to.
#[utoipa::path(operation_id = "list_apps", get, path = "/api/apps", tag = "apps", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = PagedEnvelope<AppDto>), (status = 401, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<AppDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let apps = c.list_apps(&actor, page).await?;
    Ok(paged(apps, page, |a| AppDto::new(&a.app, Some(a.role))))
}

/// Create an app (server operators); the creator becomes `app_admin`.
#[utoipa::path(operation_id = "create_app", post, path = "/api/apps", tag = "apps", security(("bearer" = [])), request_body = CreateAppRequest,
    responses((status = 201, body = Envelope<AppDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn create(
    State(c): St,
    Authed(actor): Authed,
    ApiJson(req): ApiJson<CreateAppRequest>,
) -> ApiResult<Data<AppDto>> {
    let app = c.create_app(&actor, req.into()).await?;
    Ok(created(AppDto::new(&app, Some(conman_core::rbac::Role::AppAdmin))))
}

/// One app.
#[utoipa::path(operation_id = "get_app", get, path = "/api/apps/{app_id}", tag = "apps", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id")),
    responses((status = 200, body = Envelope<AppDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn get(State(c): St, Authed(actor): Authed, Path(app_id): Path<String>) -> ApiResult<Data<AppDto>> {
    let scope = c.get_app(&actor, path_id::<AppId>(&app_id)?).await?;
    Ok(ok(AppDto::new(&scope.app, Some(scope.role))))
}

/// Change settings (`app_admin`).
#[utoipa::path(patch, path = "/api/apps/{app_id}/settings", tag = "apps", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id")), request_body = SettingsPatchDto,
    responses((status = 200, body = Envelope<AppDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn patch_settings(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<SettingsPatchDto>,
) -> ApiResult<Data<AppDto>> {
    let app = c.update_settings(&actor, path_id::<AppId>(&app_id)?, req.into()).await?;
    Ok(ok(AppDto::new(&app, Some(conman_core::rbac::Role::AppAdmin))))
}
