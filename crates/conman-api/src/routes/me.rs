//! `/api/me`: the caller, their notification preferences and API tokens.

use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, Data};
use crate::error::ApiResult;
use crate::extract::{ApiJson, Authed};

/// The caller with memberships.
#[utoipa::path(get, path = "/api/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Envelope<MeDto>), (status = 401, body = ErrorEnvelope)))]
pub(crate) async fn me(State(c): St, Authed(actor): Authed) -> ApiResult<Data<MeDto>> {
    Ok(ok(MeDto::from(c.me(&actor).await?)))
}

/// Notification preferences.
#[utoipa::path(get, path = "/api/me/notification-preferences", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Envelope<NotificationPreferences>), (status = 401, body = ErrorEnvelope)))]
pub(crate) async fn get_preferences(Authed(actor): Authed) -> ApiResult<Data<NotificationPreferences>> {
    Ok(ok(NotificationPreferences { email_enabled: actor.user.email_notifications }))
}

/// Change notification preferences.
#[utoipa::path(patch, path = "/api/me/notification-preferences", tag = "me", security(("bearer" = [])),
    request_body = NotificationPreferences,
    responses((status = 200, body = Envelope<NotificationPreferences>), (status = 400, body = ErrorEnvelope)))]
pub(crate) async fn patch_preferences(
    State(c): St,
    Authed(actor): Authed,
    ApiJson(req): ApiJson<NotificationPreferences>,
) -> ApiResult<Data<NotificationPreferences>> {
    let email_enabled = c.set_notification_preferences(&actor, req.email_enabled).await?;
    Ok(ok(NotificationPreferences { email_enabled }))
}

/// The caller's personal API tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/me/tokens", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Envelope<Vec<ApiTokenDto>>), (status = 401, body = ErrorEnvelope)))]
pub(crate) async fn list_tokens(State(c): St, Authed(actor): Authed) -> ApiResult<Data<Vec<ApiTokenDto>>> {
    Ok(ok(c.list_api_tokens(&actor).await?.into_iter().map(ApiTokenDto::from).collect()))
}

/// Create a personal API token; the answer is the only time it is shown.
#[utoipa::path(post, path = "/api/me/tokens", tag = "me", security(("bearer" = [])), request_body = CreateTokenRequest,
    responses((status = 201, body = Envelope<ApiTokenDto>), (status = 400, body = ErrorEnvelope)))]
pub(crate) async fn create_token(
    State(c): St,
    Authed(actor): Authed,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<Data<ApiTokenDto>> {
    Ok(created(ApiTokenDto::from(c.create_api_token(&actor, &req.name, req.expires_in_days).await?)))
}

/// Revoke one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/me/tokens", tag = "me", security(("bearer" = [])), request_body = RevokeTokenRequest,
    responses((status = 200, body = Envelope<Done>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn revoke_token(
    State(c): St,
    Authed(actor): Authed,
    ApiJson(req): ApiJson<RevokeTokenRequest>,
) -> ApiResult<Data<Done>> {
    c.revoke_api_token(&actor, req.id.into()).await?;
    Ok(ok(Done::ok()))
}
