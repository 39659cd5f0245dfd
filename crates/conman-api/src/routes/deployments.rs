//! Deployments (SPEC §2.5, §7): `/api/apps/:appId/environments/:envId/`
//! deploy, promote, rollback, drift-check, status and freeze windows, and
//! `/api/apps/:appId/deployments` (list, show, approve, reject, cancel).
//! Every rule is the core's; these only translate.

use axum::extract::Path;
use conman_core::domain::deployment::DeploymentState;
use conman_core::ids::{AppId, DeploymentId, EnvironmentId, FreezeWindowId, ReleaseId};
use conman_core::ports::store::{DeploymentFilter, PageRequest};

use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed};

fn env_ids(app_id: &str, env_id: &str) -> ApiResult<(AppId, EnvironmentId)> {
    Ok((path_id(app_id)?, path_id(env_id)?))
}

fn deployment_ids(app_id: &str, id: &str) -> ApiResult<(AppId, DeploymentId)> {
    Ok((path_id(app_id)?, path_id(id)?))
}

/// Passes `result` on, counting a refusal because the environment drifted
/// (`conflict` with `details.reason` `drifted`) in the metrics.
fn drift_counted<T>(app_id: AppId, result: Result<T, conman_core::Error>) -> Result<T, conman_core::Error> {
    if let Err(e) = &result {
        if e.details().is_some_and(|d| d["reason"] == "drifted") {
            crate::runtime::metrics::observe_drift_blocked(app_id);
        }
    }
    result
}

fn started(list: &[conman_core::services::DeploymentStarted]) -> Vec<DeploymentStartedDto> {
    list.iter().map(DeploymentStartedDto::from).collect()
}

/// Deploy a published release to the environment (config managers): it
/// runs now (`job` set), or, for a skip-stage or a concurrent batch, waits
/// `pending` for two approvals. 409 when the environment is busy, drifted
/// (`details.keys` names what changed) or frozen.
#[utoipa::path(post, path = "/api/apps/{app_id}/environments/{env_id}/deploy", operation_id = "deploy_release",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id")),
    request_body = DeployBody,
    responses((status = 201, body = Envelope<Vec<DeploymentStartedDto>>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn deploy(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<DeployBody>,
) -> ApiResult<Data<Vec<DeploymentStartedDto>>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    let done = drift_counted(app_id, c.deploy_release(&actor, app_id, req.into_request(env_id)).await)?;
    Ok(created(started(&done)))
}

/// Promote the release running on the stage before to this environment
/// (config managers): the exact artifact, no approvals.
#[utoipa::path(post, path = "/api/apps/{app_id}/environments/{env_id}/promote", operation_id = "promote_release",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id")),
    request_body = PromoteBody,
    responses((status = 201, body = Envelope<DeploymentStartedDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn promote(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PromoteBody>,
) -> ApiResult<Data<DeploymentStartedDto>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    let release = req.release_id.map(ReleaseId);
    let done = drift_counted(
        app_id,
        c.promote_release(&actor, app_id, env_id, release, req.freeze_override.as_deref()).await,
    )?;
    Ok(created(DeploymentStartedDto::from(&done)))
}

/// Roll the environment back (config managers): deploy an earlier
/// published release again (`redeploy_prior`), or revert the running
/// release on the integration branch, publish the revert as a new release
/// and deploy it (`revert_and_release`; 409 `revert_conflict` when later
/// changes conflict). The release rolled back is marked `rolled_back` once
/// it succeeds.
#[utoipa::path(post, path = "/api/apps/{app_id}/environments/{env_id}/rollback", operation_id = "rollback_environment",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id")),
    request_body = RollbackBody,
    responses((status = 201, body = Envelope<DeploymentStartedDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn rollback(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<RollbackBody>,
) -> ApiResult<Data<DeploymentStartedDto>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    let (release, reason) = (req.release_id.map(ReleaseId), req.freeze_override.as_deref());
    let done = match req.mode()? {
        RollbackMode::RedeployPrior => c.redeploy_prior(&actor, app_id, env_id, release, reason).await,
        RollbackMode::RevertAndRelease => c.revert_and_release(&actor, app_id, env_id, release, reason).await,
    };
    let done = drift_counted(app_id, done)?;
    Ok(created(DeploymentStartedDto::from(&done)))
}

/// Create a drift-fix changeset for a drifted environment (config
/// managers): a new workspace of the caller's with the file
/// `.conman/drift-fix/<env>.json` recording the environment's current
/// profile, revision and migration fingerprint as intended, and a changeset
/// on it. Reviewed, released and deployed like any changeset, its release
/// is let through the drift block while the record matches the
/// environment. 400 `not_drifted` when there is nothing to fix.
#[utoipa::path(post, path = "/api/apps/{app_id}/environments/{env_id}/create-drift-fix-changeset",
    operation_id = "create_drift_fix_changeset", tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id")),
    responses((status = 201, body = Envelope<ChangesetDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn create_drift_fix_changeset(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
) -> ApiResult<Data<ChangesetDto>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    Ok(created(ChangesetDto::from(&c.create_drift_fix_changeset(&actor, app_id, env_id).await?)))
}

/// Start a drift check of a deployed environment (config managers): the
/// `drift_check` job runs the deploy gate against the current profile; a
/// pass makes it the environment's new baseline.
#[utoipa::path(post, path = "/api/apps/{app_id}/environments/{env_id}/drift-check", operation_id = "start_drift_check",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id")),
    responses((status = 201, body = Envelope<JobEnvelope>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn drift_check(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
) -> ApiResult<Data<JobEnvelope>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    let job = c.start_drift_check(&actor, app_id, env_id).await?;
    Ok(created(JobEnvelope { job: JobDto::from(&job) }))
}

/// What the environment runs, the deployment holding it, its drift and
/// freeze state and its last deployment.
#[utoipa::path(get, path = "/api/apps/{app_id}/environments/{env_id}/status", operation_id = "environment_status",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id")),
    responses((status = 200, body = Envelope<EnvironmentStatusDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn status(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
) -> ApiResult<Data<EnvironmentStatusDto>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    Ok(ok(EnvironmentStatusDto::from(&c.environment_status(&actor, app_id, env_id).await?)))
}

/// The environment's migration execution records, newest first: what each
/// successful deployment ran of its profile's migrations.
#[utoipa::path(get, path = "/api/apps/{app_id}/environments/{env_id}/migrations",
    operation_id = "list_migration_executions", tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id"),
        PageQuery),
    responses((status = 200, body = PagedEnvelope<MigrationExecutionDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list_migrations(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<MigrationExecutionDto>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    let page = PageRequest::new(q.page, q.limit)?;
    let found = c.list_migration_executions(&actor, app_id, env_id, page).await?;
    Ok(paged(found, page, |m| MigrationExecutionDto::from(&m)))
}

/// The environment's deploy freeze windows.
#[utoipa::path(get, path = "/api/apps/{app_id}/environments/{env_id}/freeze-windows", operation_id = "list_freeze_windows",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id")),
    responses((status = 200, body = Envelope<Vec<FreezeWindowDto>>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list_freezes(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
) -> ApiResult<Data<Vec<FreezeWindowDto>>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    let windows = c.list_freeze_windows(&actor, app_id, env_id).await?;
    Ok(ok(windows.iter().map(FreezeWindowDto::from).collect()))
}

/// Add a deploy freeze window (app admins): one-off, or weekly in local
/// time of an IANA zone.
#[utoipa::path(post, path = "/api/apps/{app_id}/environments/{env_id}/freeze-windows", operation_id = "create_freeze_window",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("env_id" = Uuid, Path, description = "Environment id")),
    request_body = CreateFreezeWindowBody,
    responses((status = 201, body = Envelope<FreezeWindowDto>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn create_freeze(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, env_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<CreateFreezeWindowBody>,
) -> ApiResult<Data<FreezeWindowDto>> {
    let (app_id, env_id) = env_ids(&app_id, &env_id)?;
    let schedule = req.schedule.into_schedule()?;
    let window = c.create_freeze_window(&actor, app_id, env_id, schedule, &req.reason).await?;
    Ok(created(FreezeWindowDto::from(&window)))
}

/// Remove a deploy freeze window (app admins).
#[utoipa::path(delete, path = "/api/apps/{app_id}/freeze-windows/{freeze_id}", operation_id = "delete_freeze_window",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("freeze_id" = Uuid, Path, description = "Freeze window id")),
    responses((status = 200, body = Envelope<Done>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn delete_freeze(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, freeze_id)): Path<(String, String)>,
) -> ApiResult<Data<Done>> {
    c.delete_freeze_window(&actor, path_id::<AppId>(&app_id)?, path_id::<FreezeWindowId>(&freeze_id)?).await?;
    Ok(ok(Done::ok()))
}

/// Deployments of the app, newest first.
#[utoipa::path(get, path = "/api/apps/{app_id}/deployments", operation_id = "list_deployments", tag = "deployments",
    security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id"), DeploymentQuery),
    responses((status = 200, body = PagedEnvelope<DeploymentDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<DeploymentQuery>,
) -> ApiResult<Paged<DeploymentDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let filter = DeploymentFilter {
        environment_id: q.environment.map(EnvironmentId),
        state: q.state.as_deref().map(DeploymentState::parse).transpose()?,
        release_id: q.release_id.map(ReleaseId),
        group_id: None,
    };
    let found = c.list_deployments(&actor, path_id(&app_id)?, filter, page).await?;
    Ok(paged(found, page, |d| DeploymentDto::from(&d)))
}

/// One deployment (its logs are its job's: `/jobs/{job_id}/logs`).
#[utoipa::path(get, path = "/api/apps/{app_id}/deployments/{deployment_id}", operation_id = "get_deployment",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("deployment_id" = Uuid, Path, description = "Deployment id")),
    responses((status = 200, body = Envelope<DeploymentDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn get(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, id)): Path<(String, String)>,
) -> ApiResult<Data<DeploymentDto>> {
    let (app_id, id) = deployment_ids(&app_id, &id)?;
    Ok(ok(DeploymentDto::from(&c.get_deployment(&actor, app_id, id).await?)))
}

/// Approve a pending exception as yourself (reviewers, config managers,
/// admins; not its requester unless the app allows it). The second
/// qualifying approval starts it (and every deployment of its batch).
#[utoipa::path(post, path = "/api/apps/{app_id}/deployments/{deployment_id}/approve", operation_id = "approve_deployment",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("deployment_id" = Uuid, Path, description = "Deployment id")),
    responses((status = 200, body = Envelope<Vec<DeploymentStartedDto>>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn approve(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, id)): Path<(String, String)>,
) -> ApiResult<Data<Vec<DeploymentStartedDto>>> {
    let (app_id, id) = deployment_ids(&app_id, &id)?;
    Ok(ok(started(&c.approve_deployment(&actor, app_id, id).await?)))
}

/// Reject a pending exception (reviewers, config managers, admins): it
/// and its batch end `canceled`.
#[utoipa::path(post, path = "/api/apps/{app_id}/deployments/{deployment_id}/reject", operation_id = "reject_deployment",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("deployment_id" = Uuid, Path, description = "Deployment id")),
    request_body = RejectDeploymentBody,
    responses((status = 200, body = Envelope<Vec<DeploymentDto>>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn reject(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<RejectDeploymentBody>,
) -> ApiResult<Data<Vec<DeploymentDto>>> {
    let (app_id, id) = deployment_ids(&app_id, &id)?;
    let ended = c.reject_deployment(&actor, app_id, id, req.reason.as_deref()).await?;
    Ok(ok(ended.iter().map(DeploymentDto::from).collect()))
}

/// Withdraw a pending deployment (config managers): it and its batch end
/// `canceled`. A running one is stopped by canceling its job; a finished
/// one cannot be undone (roll back instead).
#[utoipa::path(post, path = "/api/apps/{app_id}/deployments/{deployment_id}/cancel", operation_id = "cancel_deployment",
    tag = "deployments", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("deployment_id" = Uuid, Path, description = "Deployment id")),
    responses((status = 200, body = Envelope<Vec<DeploymentDto>>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn cancel(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, id)): Path<(String, String)>,
) -> ApiResult<Data<Vec<DeploymentDto>>> {
    let (app_id, id) = deployment_ids(&app_id, &id)?;
    let ended = c.cancel_deployment(&actor, app_id, id).await?;
    Ok(ok(ended.iter().map(DeploymentDto::from).collect()))
}
