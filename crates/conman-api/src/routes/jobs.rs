//! `/api/apps/:appId/jobs`: list, show, follow logs, cancel, start a gate run.

use axum::extract::Path;
use conman_core::domain::job::{JobState, JobType};
use conman_core::ids::{AppId, JobId};
use conman_core::ports::store::{JobFilter, PageRequest};
use conman_core::services::GateKind;
use conman_core::Error;

use super::{St, State};
use crate::dto::*;
use crate::envelope::{created, ok, paged, Data, Paged};
use crate::error::ApiResult;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed};

fn ids(app_id: &str, job_id: &str) -> ApiResult<(AppId, JobId)> {
    Ok((path_id(app_id)?, path_id(job_id)?))
}

/// Jobs of the app, newest first.
#[utoipa::path(get, path = "/api/apps/{app_id}/jobs", operation_id = "list_jobs", tag = "jobs",
    security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id"), JobQuery),
    responses((status = 200, body = PagedEnvelope<JobDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn list(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> ApiResult<Paged<JobDto>> {
    let page = PageRequest::new(q.page, q.limit)?;
    let filter = JobFilter {
        job_type: q.job_type.as_deref().map(JobType::parse).transpose()?,
        state: q.state.as_deref().map(JobState::parse).transpose()?,
    };
    let jobs = c.list_jobs(&actor, path_id(&app_id)?, filter, page).await?;
    Ok(paged(jobs, page, |j| JobDto::from(&j)))
}

/// Start a gate run on a commit (config managers and admins).
#[utoipa::path(post, path = "/api/apps/{app_id}/jobs", operation_id = "start_job", tag = "jobs",
    security(("bearer" = [])), params(("app_id" = Uuid, Path, description = "App id")),
    request_body = StartJobRequest,
    responses((status = 201, body = Envelope<JobEnvelope>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn start(
    State(c): St,
    Authed(actor): Authed,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<StartJobRequest>,
) -> ApiResult<Data<JobEnvelope>> {
    let gate = match JobType::parse(&req.job_type)? {
        JobType::GateSubmit => GateKind::Submit,
        JobType::GateRelease => GateKind::Release,
        JobType::GateDeploy => GateKind::Deploy,
        other => {
            return Err(Error::invalid(
                "type",
                "not_startable",
                format!("{} jobs are started by Conman itself; only gate runs can be started here", other.as_str()),
            )
            .into())
        }
    };
    let job = c.start_gate_run(&actor, path_id(&app_id)?, gate, req.commit.as_deref()).await?;
    Ok(created(JobEnvelope { job: JobDto::from(&job) }))
}

/// One job.
#[utoipa::path(get, path = "/api/apps/{app_id}/jobs/{job_id}", operation_id = "get_job", tag = "jobs",
    security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("job_id" = Uuid, Path, description = "Job id")),
    responses((status = 200, body = Envelope<JobEnvelope>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn get(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, job_id)): Path<(String, String)>,
) -> ApiResult<Data<JobEnvelope>> {
    let (app_id, job_id) = ids(&app_id, &job_id)?;
    let job = c.get_job(&actor, app_id, job_id).await?;
    Ok(ok(JobEnvelope { job: JobDto::from(&job) }))
}

/// A job's log lines after `after`; follow with `next_after` until `complete`.
#[utoipa::path(get, path = "/api/apps/{app_id}/jobs/{job_id}/logs", operation_id = "get_job_logs", tag = "jobs",
    security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("job_id" = Uuid, Path, description = "Job id"), LogQuery),
    responses((status = 200, body = Envelope<JobLogDto>), (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn logs(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, job_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Data<JobLogDto>> {
    let (app_id, job_id) = ids(&app_id, &job_id)?;
    let after = q.after.unwrap_or(0);
    let read = c.read_job_log(&actor, app_id, job_id, after, q.limit.unwrap_or(1000)).await?;
    Ok(ok(JobLogDto::new(read, after)))
}

/// Cancel a queued or running job (409 when it already finished).
#[utoipa::path(post, path = "/api/apps/{app_id}/jobs/{job_id}/cancel", operation_id = "cancel_job", tag = "jobs",
    security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("job_id" = Uuid, Path, description = "Job id")),
    responses((status = 200, body = Envelope<JobEnvelope>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn cancel(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, job_id)): Path<(String, String)>,
) -> ApiResult<Data<JobEnvelope>> {
    let (app_id, job_id) = ids(&app_id, &job_id)?;
    let job = c.cancel_job(&actor, app_id, job_id).await?;
    Ok(ok(JobEnvelope { job: JobDto::from(&job) }))
}
