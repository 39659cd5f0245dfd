//! `/api/apps/:appId/members` and `/invites`.

use axum::extract::Path;
use conman_core::ids::{AppId, InviteId, UserId};
use conman_core::ports::store::PageRequest;

use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed};

/// Members of the app.
#[utoipa::path(operation_id = "list_members", get, path = "/api/apps/{app_id}/members", tag = "members", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), PageQuery),
    responses((status = 200, body = PagedEnvelope<MemberDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<MemberDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let members = c.list_members(&actor, path_id::<AppId>(&app_id)?, page).await?;
    Ok(paged(members, page, MemberDto::from))
}

/// Add a member or change their role (`app_admin`).
#[utoipa::path(operation_id = "put_member", post, path = "/api/apps/{app_id}/members", tag = "members", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id")), request_body = PutMemberRequest,
    responses((status = 200, body = Envelope<MembershipChangeDto>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn put(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<PutMemberRequest>,
) -> ApiResult<Data<MembershipChangeDto>> {
    let m = c.put_member(&actor, path_id::<AppId>(&app_id)?, UserId(req.user_id), req.role).await?;
    Ok(ok(MembershipChangeDto::from(&m)))
}

/// Remove a member (`app_admin`); the last `app_admin` cannot be removed.
#[utoipa::path(operation_id = "remove_member", delete, path = "/api/apps/{app_id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("user_id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = Envelope<Done>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn remove(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, user_id)): Path<(String, String)>,
) -> ApiResult<Data<Done>> {
    c.remove_member(&actor, path_id::<AppId>(&app_id)?, path_id::<UserId>(&user_id)?).await?;
    Ok(ok(Done::ok()))
}

/// A server operator makes themself `app_admin` of the app (audited as
/// `member.operator_granted`): the way back into an app left without admins.
#[utoipa::path(operation_id = "grant_operator_admin", post, path = "/api/apps/{app_id}/admins", tag = "members", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id")),
    responses((status = 200, body = Envelope<MembershipChangeDto>), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn grant_operator_admin(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
) -> ApiResult<Data<MembershipChangeDto>> {
    let m = c.grant_operator_admin(&actor, path_id::<AppId>(&app_id)?).await?;
    Ok(ok(MembershipChangeDto::from(&m)))
}

/// Invites of the app (`app_admin`).
#[utoipa::path(get, path = "/api/apps/{app_id}/invites", tag = "members", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), PageQuery),
    responses((status = 200, body = PagedEnvelope<InviteDto>), (status = 403, body = ErrorEnvelope)))]
pub(crate) async fn list_invites(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<InviteDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let invites = c.list_invites(&actor, path_id::<AppId>(&app_id)?, page).await?;
    Ok(paged(invites, page, |i| InviteDto::from(&i)))
}

/// Invite an email with a role (`app_admin`); the token is answered once and mailed.
#[utoipa::path(post, path = "/api/apps/{app_id}/invites", tag = "members", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id")), request_body = CreateInviteRequest,
    responses((status = 201, body = Envelope<IssuedInviteDto>), (status = 403, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn create_invite(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<CreateInviteRequest>,
) -> ApiResult<Data<IssuedInviteDto>> {
    let issued = c.create_invite(&actor, path_id::<AppId>(&app_id)?, &req.email, req.role).await?;
    Ok(created(IssuedInviteDto::from(issued)))
}

/// Re-send an invite with a fresh token and expiry.
#[utoipa::path(post, path = "/api/apps/{app_id}/invites/{invite_id}/resend", tag = "members", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("invite_id" = Uuid, Path, description = "Invite id")),
    responses((status = 200, body = Envelope<IssuedInviteDto>), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn resend_invite(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, invite_id)): Path<(String, String)>,
) -> ApiResult<Data<IssuedInviteDto>> {
    let issued = c.resend_invite(&actor, path_id::<AppId>(&app_id)?, path_id::<InviteId>(&invite_id)?).await?;
    Ok(ok(IssuedInviteDto::from(issued)))
}

/// Revoke an invite.
#[utoipa::path(delete, path = "/api/apps/{app_id}/invites/{invite_id}", tag = "members", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("invite_id" = Uuid, Path, description = "Invite id")),
    responses((status = 200, body = Envelope<InviteDto>), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn revoke_invite(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, invite_id)): Path<(String, String)>,
) -> ApiResult<Data<InviteDto>> {
    let invite = c.revoke_invite(&actor, path_id::<AppId>(&app_id)?, path_id::<InviteId>(&invite_id)?).await?;
    Ok(ok(InviteDto::from(&invite)))
}
