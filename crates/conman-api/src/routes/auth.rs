//! `/api/auth`: login, logout, password reset, invite acceptance.

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{St, State};
use crate::dto::*;
use crate::envelope::{ok, Data};
use crate::error::ApiResult;
use crate::extract::{ApiJson, AuthJson, Authed, Ctx};

/// Log in; answers a session token valid for 24 h.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Envelope<SessionDto>), (status = 401, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
pub(crate) async fn login(
    State(c): St,
    Ctx(ctx): Ctx,
    ApiJson(req): AuthJson<LoginRequest>,
) -> ApiResult<Data<SessionDto>> {
    Ok(ok(SessionDto::from(c.login(&req.email, &req.password, ctx).await?)))
}

/// Revoke the presented token.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Envelope<Done>), (status = 401, body = ErrorEnvelope)))]
pub(crate) async fn logout(State(c): St, Authed(actor): Authed) -> ApiResult<Data<Done>> {
    c.logout(&actor).await?;
    Ok(ok(Done::ok()))
}

/// Ask for a password reset; the token goes to the account's mail/outbox only.
#[utoipa::path(post, path = "/api/auth/forgot-password", tag = "auth", request_body = ForgotPasswordRequest,
    responses((status = 202, body = Envelope<Done>), (status = 429, body = ErrorEnvelope)))]
pub(crate) async fn forgot_password(
    State(c): St,
    Ctx(ctx): Ctx,
    ApiJson(req): AuthJson<ForgotPasswordRequest>,
) -> ApiResult<impl IntoResponse> {
    c.forgot_password(&req.email, ctx).await?;
    Ok(Data(StatusCode::ACCEPTED, Done::ok()))
}

/// Set a new password with a reset token; revokes every session and token.
#[utoipa::path(post, path = "/api/auth/reset-password", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 200, body = Envelope<Done>), (status = 400, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope)))]
pub(crate) async fn reset_password(
    State(c): St,
    Ctx(ctx): Ctx,
    ApiJson(req): AuthJson<ResetPasswordRequest>,
) -> ApiResult<Data<Done>> {
    c.reset_password(&req.token, &req.new_password, ctx).await?;
    Ok(ok(Done::ok()))
}

/// Accept an invite: creates the account, or proves an existing one's password.
#[utoipa::path(post, path = "/api/auth/accept-invite", tag = "auth", request_body = AcceptInviteRequest,
    responses((status = 200, body = Envelope<SessionDto>), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope)))]
pub(crate) async fn accept_invite(
    State(c): St,
    Ctx(ctx): Ctx,
    ApiJson(req): AuthJson<AcceptInviteRequest>,
) -> ApiResult<Data<SessionDto>> {
    Ok(ok(SessionDto::from(c.accept_invite(&req.token, &req.name, &req.password, ctx).await?)))
}
