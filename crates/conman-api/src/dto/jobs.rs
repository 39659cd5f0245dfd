//! Wire types of jobs and their logs.

use chrono::{DateTime, Utc};
use conman_core::domain::job::{Job, JobLogLine, JobType};
use conman_core::services::{AssemblePayload, GatePayload, JobLogRead, RevalidatePayload};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The input of a job, one variant per job type that takes one. A new job
/// type adds its variant here.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum JobPayloadDto {
    /// `gate_submit`, `gate_release` and `gate_deploy`.
    Gate(GatePayloadDto),
    /// `release_assemble`.
    Assembly(AssemblePayloadDto),
    /// `revalidate_queued`.
    Revalidation(RevalidatePayloadDto),
}

/// The input of a `release_assemble` job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AssemblePayloadDto {
    /// The release.
    pub release_id: Uuid,
    /// The integration head the assembly starts from.
    pub base: String,
}

/// The input of a `revalidate_queued` job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevalidatePayloadDto {
    /// The release whose publish moved the integration branch.
    pub release_id: Uuid,
    /// The new integration head the queue is checked against.
    pub head: String,
}

impl JobPayloadDto {
    /// The typed input of `job`, read as its job type says.
    pub fn of(job: &Job) -> Option<Self> {
        match job.job_type {
            JobType::GateSubmit | JobType::GateRelease | JobType::GateDeploy => {
                serde_json::from_value::<GatePayload>(job.payload.clone()).ok().map(|p| JobPayloadDto::Gate(p.into()))
            }
            JobType::ReleaseAssemble => serde_json::from_value::<AssemblePayload>(job.payload.clone())
                .ok()
                .map(|p| JobPayloadDto::Assembly(AssemblePayloadDto { release_id: p.release_id.0, base: p.base })),
            JobType::RevalidateQueued => {
                serde_json::from_value::<RevalidatePayload>(job.payload.clone()).ok().map(|p| {
                    JobPayloadDto::Revalidation(RevalidatePayloadDto { release_id: p.release_id.0, head: p.head })
                })
            }
            _ => None,
        }
    }
}

/// The input of a gate job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GatePayloadDto {
    /// `submit`, `release` or `deploy`.
    #[schema(schema_with = crate::dto::schemas::gate_kind)]
    pub gate: String,
    /// The commit under test.
    pub commit: String,
    /// The changeset under test, if any.
    pub changeset_id: Option<String>,
    /// The release under test, if any.
    pub release_id: Option<String>,
    /// The environment the gate runs for, if any.
    pub environment: Option<String>,
}

impl From<GatePayload> for GatePayloadDto {
    fn from(p: GatePayload) -> Self {
        GatePayloadDto {
            gate: p.gate.as_str().to_owned(),
            commit: p.commit,
            changeset_id: p.changeset_id,
            release_id: p.release_id,
            environment: p.environment,
        }
    }
}

/// The result of a job, one variant per job type that reports one. A new
/// job type adds its variant here.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum JobResultDto {
    /// A gate's verdict.
    Gate(GateResultDto),
    /// What an assembly composed.
    Assembly(AssemblyResultDto),
    /// What a revalidation of the queue found.
    Revalidation(RevalidationResultDto),
}

/// The result of a `release_assemble` job: what it composed, or `stale`
/// when the release no longer waited for it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssemblyResultDto {
    /// The release no longer waited for this job: nothing was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    /// The composed commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composed_sha: Option<String>,
    /// Changesets included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included: Option<u64>,
    /// Changesets dropped for a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// Release gate runs started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<u64>,
    /// Time spent composing, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_ms: Option<f64>,
}

/// The result of a `revalidate_queued` job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevalidationResultDto {
    /// Queued changesets checked.
    pub checked: u64,
    /// Of them, moved to `conflicted`.
    pub conflicted: u64,
    /// Of them, whose submit gate runs again on the merged tree (absent in
    /// results of earlier versions).
    #[serde(default)]
    pub regated: u64,
    /// Time the conflict check took, milliseconds.
    pub check_ms: f64,
}

impl JobResultDto {
    /// The typed result `value` of `job`, read as its job type says.
    pub fn of(job: &Job, value: &serde_json::Value) -> Option<Self> {
        match job.job_type {
            JobType::GateSubmit | JobType::GateRelease | JobType::GateDeploy => {
                serde_json::from_value::<GateResultDto>(value.clone()).ok().map(JobResultDto::Gate)
            }
            JobType::ReleaseAssemble => {
                serde_json::from_value::<AssemblyResultDto>(value.clone()).ok().map(JobResultDto::Assembly)
            }
            JobType::RevalidateQueued => {
                serde_json::from_value::<RevalidationResultDto>(value.clone()).ok().map(JobResultDto::Revalidation)
            }
            _ => None,
        }
    }
}

/// A gate's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateResultDto {
    /// The gate passed.
    pub passed: bool,
    /// No command is configured, so the gate passed without running one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<bool>,
    /// The command's exit code, when it ran to an end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The command ran out of time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
}

/// A job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobDto {
    /// Id.
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// `gate_submit`, `gate_release`, `gate_deploy`, ... (SPEC §6.1).
    #[serde(rename = "type")]
    pub job_type: String,
    /// `queued`, `running`, `succeeded`, `failed` or `canceled`.
    pub state: String,
    /// Kind of the entity it concerns.
    pub entity_type: Option<String>,
    /// Id of that entity.
    pub entity_id: Option<String>,
    /// Handler input, by job type (`null` when the job type takes none or
    /// its input is not one this server reads).
    pub payload: Option<JobPayloadDto>,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Not before (backoff).
    pub run_after: DateTime<Utc>,
    /// Worker holding it.
    pub lease_owner: Option<String>,
    /// Lease expiry.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Attempt timeout, seconds.
    pub timeout_secs: u64,
    /// Cancellation requested.
    pub cancel_requested: bool,
    /// Result, by job type (`null` until the job ends, and for an attempt
    /// that failed before it could say anything).
    pub result: Option<JobResultDto>,
    /// Last error.
    pub error: Option<String>,
    /// Who started it (null: the system).
    pub created_by: Option<Uuid>,
    /// Enqueue time.
    pub created_at: DateTime<Utc>,
    /// First start.
    pub started_at: Option<DateTime<Utc>>,
    /// Terminal time.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Job> for JobDto {
    fn from(j: &Job) -> Self {
        JobDto {
            id: j.id.0,
            app_id: j.app_id.0,
            job_type: j.job_type.as_str().to_owned(),
            state: j.state.as_str().to_owned(),
            entity_type: j.entity_type.clone(),
            entity_id: j.entity_id.clone(),
            payload: JobPayloadDto::of(j),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_after: j.run_after,
            lease_owner: j.lease_owner.clone(),
            lease_expires_at: j.lease_expires_at,
            timeout_secs: j.timeout_secs,
            cancel_requested: j.cancel_requested,
            result: j.result.as_ref().and_then(|r| JobResultDto::of(j, r)),
            error: j.error.clone(),
            created_by: j.created_by.map(|u| u.0),
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

/// `{"job": ...}` (SPEC §7: `GET .../jobs/:jobId -> {job}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobEnvelope {
    /// The job.
    pub job: JobDto,
}

/// `?type=&state=` plus paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    /// Job type.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = crate::dto::schemas::job_type)]
    pub job_type: Option<String>,
    /// Job state.
    #[param(schema_with = crate::dto::schemas::job_state)]
    pub state: Option<String>,
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1-100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// `?after=&limit=` of log reads.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only lines after this sequence number (0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Lines per answer, 1-5000 (default 1000).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<u32>,
}

/// One log line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogLineDto {
    /// Sequence number; follow with `after`.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// `stdout`, `stderr` or `system`.
    pub stream: String,
    /// Text.
    pub text: String,
}

impl From<JobLogLine> for LogLineDto {
    fn from(l: JobLogLine) -> Self {
        LogLineDto { seq: l.seq, at: l.at, stream: l.stream.as_str().to_owned(), text: l.text }
    }
}

/// A page of a job's log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobLogDto {
    /// Lines, in order.
    pub lines: Vec<LogLineDto>,
    /// Pass as `after` to get the next lines.
    pub next_after: i64,
    /// Older lines were dropped to keep the log within 1 MiB.
    pub truncated: bool,
    /// The job's state, read before the lines.
    pub state: String,
    /// The job had finished before these lines were read and they are the
    /// rest of its log: stop following. Never true while lines are missing
    /// (a terminal `state` alone does not mean that).
    pub complete: bool,
}

impl JobLogDto {
    /// Converts, given the `after` asked for.
    pub fn new(read: JobLogRead, after: i64) -> Self {
        let JobLogRead { page, state, complete } = read;
        let next_after = page.lines.last().map_or(after, |l| l.seq);
        JobLogDto {
            lines: page.lines.into_iter().map(LogLineDto::from).collect(),
            next_after,
            truncated: page.truncated,
            state: state.as_str().to_owned(),
            complete,
        }
    }
}

/// `POST /api/apps/:appId/jobs`: start a gate run.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartJobRequest {
    /// `gate_submit`, `gate_release` or `gate_deploy`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::dto::schemas::startable_job_type)]
    pub job_type: String,
    /// Full commit sha (default: the app's baseline).
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::commit_sha_opt)]
    pub commit: Option<String>,
}
