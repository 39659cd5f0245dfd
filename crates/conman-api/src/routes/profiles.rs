//! `/api/apps/:appId/runtime-profiles` (list, create, show, patch,
//! revisions, revert, reveal a secret), `/api/apps/:appId/environments`
//! (list, replace) and `/api/apps/:appId/changesets/:csId/profile-overrides`
//! (show, replace). Secret plaintexts come in request bodies only; answers
//! carry masks, except the audited `app_admin` reveal.

use axum::extract::Path;
use conman_core::ids::{AppId, RuntimeProfileId};
use conman_core::ports::store::PageRequest;

use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed, ProfileJson};

/// Parses the app and profile ids of a path.
fn ids(app_id: &str, profile_id: &str) -> ApiResult<(AppId, RuntimeProfileId)> {
    Ok((path_id(app_id)?, path_id(profile_id)?))
}

/// Runtime profiles of the app, by name, secrets masked.
#[utoipa::path(get, path = "/api/apps/{app_id}/runtime-profiles", operation_id = "list_runtime_profiles",
    tag = "runtime_profiles", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), PageQuery),
    responses((status = 200, body = PagedEnvelope<RuntimeProfileDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<RuntimeProfileDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let list = c.list_runtime_profiles(&actor, path_id(&app_id)?, page).await?;
    Ok(paged(list, page, |p| RuntimeProfileDto::from(&p)))
}

/// Create a runtime profile as revision 1 (app admins). Secret values are
/// sealed at once; the answer shows them masked.
#[utoipa::path(post, path = "/api/apps/{app_id}/runtime-profiles", operation_id = "create_runtime_profile",
    tag = "runtime_profiles", security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id")),
    request_body = CreateProfileRequest,
    responses((status = 201, body = Envelope<RuntimeProfileDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn create(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiJson(req): ProfileJson<CreateProfileRequest>,
) -> ApiResult<Data<RuntimeProfileDto>> {
    let view = c.create_runtime_profile(&actor, path_id(&app_id)?, req.into()).await?;
    Ok(created(RuntimeProfileDto::from(&view)))
}

/// One runtime profile, secrets masked.
#[utoipa::path(get, path = "/api/apps/{app_id}/runtime-profiles/{profile_id}", operation_id = "get_runtime_profile",
    tag = "runtime_profiles", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("profile_id" = Uuid, Path, description = "Profile id")),
    responses((status = 200, body = Envelope<RuntimeProfileDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn get(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, profile_id)): Path<(String, String)>,
) -> ApiResult<Data<RuntimeProfileDto>> {
    let (app_id, profile_id) = ids(&app_id, &profile_id)?;
    let view = c.get_runtime_profile(&actor, app_id, profile_id).await?;
    Ok(ok(RuntimeProfileDto::from(&view)))
}

/// Patch a runtime profile as one new revision (app admins; audited).
#[utoipa::path(patch, path = "/api/apps/{app_id}/runtime-profiles/{profile_id}",
    operation_id = "patch_runtime_profile", tag = "runtime_profiles", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("profile_id" = Uuid, Path, description = "Profile id")),
    request_body = PatchProfileRequest,
    responses((status = 200, body = Envelope<RuntimeProfileDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn patch(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, profile_id)): Path<(String, String)>,
    ApiJson(req): ProfileJson<PatchProfileRequest>,
) -> ApiResult<Data<RuntimeProfileDto>> {
    let (app_id, profile_id) = ids(&app_id, &profile_id)?;
    let view = c.patch_runtime_profile(&actor, app_id, profile_id, req.into()).await?;
    Ok(ok(RuntimeProfileDto::from(&view)))
}

/// Revisions of a runtime profile, newest first.
#[utoipa::path(get, path = "/api/apps/{app_id}/runtime-profiles/{profile_id}/revisions",
    operation_id = "list_runtime_profile_revisions", tag = "runtime_profiles", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("profile_id" = Uuid, Path, description = "Profile id"),
        PageQuery),
    responses((status = 200, body = PagedEnvelope<ProfileRevisionDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn revisions(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, profile_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<ProfileRevisionDto>> {
    let (app_id, profile_id) = ids(&app_id, &profile_id)?;
    let page = PageRequest::new(q.page, q.limit)?;
    let list = c.runtime_profile_revisions(&actor, app_id, profile_id, page).await?;
    Ok(paged(list, page, |r| ProfileRevisionDto::from(&r)))
}

/// Restore an older revision as a new one (app admins; audited).
#[utoipa::path(post, path = "/api/apps/{app_id}/runtime-profiles/{profile_id}/revert",
    operation_id = "revert_runtime_profile", tag = "runtime_profiles", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("profile_id" = Uuid, Path, description = "Profile id")),
    request_body = RevertProfileRequest,
    responses((status = 200, body = Envelope<RuntimeProfileDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn revert(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, profile_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<RevertProfileRequest>,
) -> ApiResult<Data<RuntimeProfileDto>> {
    let (app_id, profile_id) = ids(&app_id, &profile_id)?;
    let view = c.revert_runtime_profile(&actor, app_id, profile_id, req.revision).await?;
    Ok(ok(RuntimeProfileDto::from(&view)))
}

/// Reveal a secret's plaintext (app admins only; the reveal is audited as
/// `runtime_profile.secret_revealed`, without the value).
#[utoipa::path(post, path = "/api/apps/{app_id}/runtime-profiles/{profile_id}/secrets/{key}/reveal",
    operation_id = "reveal_runtime_profile_secret", tag = "runtime_profiles", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("profile_id" = Uuid, Path, description = "Profile id"),
        ("key" = String, Path, description = "Secret name")),
    responses((status = 200, body = Envelope<RevealedSecretDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn reveal(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, profile_id, key)): Path<(String, String, String)>,
) -> ApiResult<Data<RevealedSecretDto>> {
    let (app_id, profile_id) = ids(&app_id, &profile_id)?;
    let value = c.reveal_secret(&actor, app_id, profile_id, &key).await?;
    let value = String::from_utf8_lossy(value.expose()).into_owned();
    Ok(ok(RevealedSecretDto { key, value }))
}

/// The app's environments, by position.
#[utoipa::path(get, path = "/api/apps/{app_id}/environments", operation_id = "list_environments",
    tag = "runtime_profiles", security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id")),
    responses((status = 200, body = Envelope<Vec<EnvironmentDto>>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list_environments(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
) -> ApiResult<Data<Vec<EnvironmentDto>>> {
    let envs = c.list_environments(&actor, path_id(&app_id)?).await?;
    Ok(ok(envs.iter().map(EnvironmentDto::from).collect()))
}

/// Replace the app's environment list (app admins; audited): unique names
/// and positions, exactly one canonical, each profile a `persistent_env`
/// profile of this app. Environments keep their ids when names are kept.
#[utoipa::path(patch, path = "/api/apps/{app_id}/environments", operation_id = "replace_environments",
    tag = "runtime_profiles", security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id")),
    request_body = ReplaceEnvironmentsRequest,
    responses((status = 200, body = Envelope<Vec<EnvironmentDto>>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn replace_environments(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<ReplaceEnvironmentsRequest>,
) -> ApiResult<Data<Vec<EnvironmentDto>>> {
    let envs = c.replace_environments(&actor, path_id(&app_id)?, req.into_input()).await?;
    Ok(ok(envs.iter().map(EnvironmentDto::from).collect()))
}

/// A changeset's profile overrides, in order (secret names only).
#[utoipa::path(get, path = "/api/apps/{app_id}/changesets/{cs_id}/profile-overrides",
    operation_id = "get_changeset_profile_overrides", tag = "runtime_profiles", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    responses((status = 200, body = Envelope<ProfileOverridesDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn get_overrides(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
) -> ApiResult<Data<ProfileOverridesDto>> {
    let (app_id, cs_id) = super::changesets::ids(&app_id, &cs_id)?;
    let list = c.changeset_profile_overrides(&actor, app_id, cs_id).await?;
    Ok(ok(ProfileOverridesDto::new(&list)))
}

/// Replace a draft changeset's profile overrides (its author). The body is
/// the object `{"profile_overrides": [...]}` — a bare list is refused; an
/// empty list removes every override. Each override is checked against its
/// target's profile (no type changes); secret values are sealed, never echoed.
/// 409 `invalid_transition` unless the changeset is `draft`.
#[utoipa::path(put, path = "/api/apps/{app_id}/changesets/{cs_id}/profile-overrides",
    operation_id = "put_changeset_profile_overrides", tag = "runtime_profiles", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id")),
    request_body = PutProfileOverridesRequest,
    responses((status = 200, body = Envelope<ProfileOverridesDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn put_overrides(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
    ApiJson(req): ProfileJson<PutProfileOverridesRequest>,
) -> ApiResult<Data<ProfileOverridesDto>> {
    let (app_id, cs_id) = super::changesets::ids(&app_id, &cs_id)?;
    let list = c.put_changeset_profile_overrides(&actor, app_id, cs_id, req.into_input()).await?;
    Ok(ok(ProfileOverridesDto::new(&list)))
}

/// Rotate the secrets master key (operators): every data key is re-wrapped
/// under the new key in one transaction and this server switches to it at
/// once. Other servers and workers must be restarted with the new key
/// (`CONMAN_SECRETS_MASTER_KEY` or `master.key`); until then they refuse to
/// open secrets, and at start they refuse the old key.
#[utoipa::path(post, path = "/api/admin/secrets/rotate", operation_id = "rotate_master_key",
    tag = "runtime_profiles", security(("bearer" = [])), request_body = RotateKeyRequest,
    responses((status = 200, body = Envelope<RotationDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn rotate_master_key(
    State(c): St,
    Authed(actor): Authed,
    ApiJson(req): ApiJson<RotateKeyRequest>,
) -> ApiResult<Data<RotationDto>> {
    let key = crate::compose::MasterKey::parse(&req.new_master_key, "new_master_key")?;
    let report = c.rotate_master_key(&actor, crate::compose::secrets_cipher(&key)).await?;
    Ok(ok(RotationDto {
        rewrapped: report.rewrapped,
        from_key_id: report.from_key_id,
        to_key_id: report.to_key_id,
        next_step: "put the new key in CONMAN_SECRETS_MASTER_KEY (or the data directory's master.key) and restart \
                    every other server and worker"
            .into(),
    }))
}
