//! Wire types of deployments, environment status and freeze windows.

use chrono::{DateTime, Utc};
use conman_core::domain::deployment::{Deployment, DeploymentException, DeploymentKind};
use conman_core::domain::drift::{DriftReason, MigrationExecution};
use conman_core::domain::freeze::{FreezeSchedule, FreezeWindow, Weekday};
use conman_core::error::Error;
use conman_core::ids::{EnvironmentId, ReleaseId};
use conman_core::services::{DeployRequest, DeploymentStarted, DriftReport, EnvironmentStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{EnvironmentDto, JobDto};

fn kind_str(kind: DeploymentKind) -> &'static str {
    match kind {
        DeploymentKind::Deploy => "deploy",
        DeploymentKind::Promote => "promote",
        DeploymentKind::RedeployPrior => "redeploy_prior",
        DeploymentKind::RevertAndRelease => "revert_and_release",
    }
}

fn exception_str(exception: DeploymentException) -> &'static str {
    match exception {
        DeploymentException::SkipStage => "skip_stage",
        DeploymentException::MultiEnvironment => "concurrent_batch",
    }
}

/// A deployment (SPEC §2.5): a release moving to an environment, its
/// approvals when it is an exception, and how it ended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeploymentDto {
    /// Id.
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// The environment.
    pub environment_id: Uuid,
    /// The release deployed.
    pub release_id: Uuid,
    /// The release commit the environment ref moves to.
    pub commit: String,
    /// `deploy`, `promote`, `redeploy_prior` or `revert_and_release`.
    #[schema(schema_with = crate::dto::schemas::deployment_kind)]
    pub kind: String,
    /// `skip_stage` or `concurrent_batch` when it needs two approvals.
    #[schema(schema_with = crate::dto::schemas::deployment_exception_opt)]
    pub exception: Option<String>,
    /// Shared by the deployments of one concurrent batch.
    pub group_id: Option<Uuid>,
    /// `pending`, `running`, `succeeded`, `failed` or `canceled`.
    #[schema(schema_with = crate::dto::schemas::deployment_state)]
    pub state: String,
    /// Approvals, each recorded by its approver.
    pub approvals: Vec<DeploymentApprovalDto>,
    /// The rejection that ended it.
    pub rejection: Option<DeploymentRejectionDto>,
    /// When a pending exception lapses without its approvals.
    pub approval_expires_at: Option<DateTime<Utc>>,
    /// Holds its environment now.
    pub active: bool,
    /// Who requested it.
    pub requested_by: Uuid,
    /// Its `deploy_release` job (logs at `/jobs/:id/logs`).
    pub job_id: Option<Uuid>,
    /// What the environment ran before.
    pub previous_commit: Option<String>,
    /// The release the environment ran before.
    pub previous_release_id: Option<Uuid>,
    /// For a rollback: the release rolled back.
    pub rolled_back_release_id: Option<Uuid>,
    /// The effective profile revision it deployed with.
    pub profile_revision: Option<u32>,
    /// An `app_admin`'s reason for deploying inside a freeze window.
    pub freeze_override: Option<String>,
    /// Why it did not succeed.
    pub failure: Option<String>,
    /// Requested at.
    pub created_at: DateTime<Utc>,
    /// Started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished at.
    pub finished_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// One approval of an exception.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeploymentApprovalDto {
    /// The approver.
    pub user_id: Uuid,
    /// Their role when they approved.
    #[schema(schema_with = crate::dto::schemas::role)]
    pub role: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The rejection of a pending deployment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeploymentRejectionDto {
    /// Who rejected it.
    pub user_id: Uuid,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<&Deployment> for DeploymentDto {
    fn from(d: &Deployment) -> Self {
        DeploymentDto {
            id: d.id.0,
            app_id: d.app_id.0,
            environment_id: d.environment_id.0,
            release_id: d.release_id.0,
            commit: d.commit.clone(),
            kind: kind_str(d.kind).to_owned(),
            exception: d.exception.map(|e| exception_str(e).to_owned()),
            group_id: d.group_id.map(|g| g.0),
            state: d.state.as_str().to_owned(),
            approvals: d
                .approvals
                .iter()
                .map(|a| DeploymentApprovalDto { user_id: a.user_id.0, role: a.role.to_string(), at: a.at })
                .collect(),
            rejection: d.rejection.as_ref().map(|r| DeploymentRejectionDto {
                user_id: r.user_id.0,
                reason: r.reason.clone(),
                at: r.at,
            }),
            approval_expires_at: d.approval_expires_at,
            active: d.active,
            requested_by: d.requested_by.0,
            job_id: d.job_id.map(|j| j.0),
            previous_commit: d.previous_commit.clone(),
            previous_release_id: d.previous_release_id.map(|r| r.0),
            rolled_back_release_id: d.rolled_back_release_id.map(|r| r.0),
            profile_revision: d.profile_revision,
            freeze_override: d.freeze_override.clone(),
            failure: d.failure.clone(),
            created_at: d.created_at,
            started_at: d.started_at,
            finished_at: d.finished_at,
            updated_at: d.updated_at,
            version: d.version,
        }
    }
}

/// A deployment and the job running it (null while it waits for approvals).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeploymentStartedDto {
    /// The deployment.
    pub deployment: DeploymentDto,
    /// Its `deploy_release` job, when it runs now.
    pub job: Option<JobDto>,
}

impl From<&DeploymentStarted> for DeploymentStartedDto {
    fn from(s: &DeploymentStarted) -> Self {
        DeploymentStartedDto { deployment: DeploymentDto::from(&s.deployment), job: s.job.as_ref().map(JobDto::from) }
    }
}

/// `POST .../environments/:envId/deploy` (config managers): deploy a
/// published release there. A skip-stage (the release does not run on the
/// stage before) must say `is_skip_stage`; naming more environments in
/// `with_environment_ids` deploys them all at once and must say
/// `is_concurrent_batch`. Both wait `pending` for two approvals.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    /// A published release of the app.
    pub release_id: Uuid,
    /// Acknowledges a skip-stage (must match the stage order).
    #[serde(default)]
    pub is_skip_stage: bool,
    /// Acknowledges a concurrent batch (required with `with_environment_ids`).
    #[serde(default)]
    pub is_concurrent_batch: bool,
    /// Further environments deployed in the same batch.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub with_environment_ids: Vec<Uuid>,
    /// An `app_admin`'s reason for deploying inside a freeze window.
    #[schema(schema_with = crate::dto::schemas::reason_opt)]
    pub freeze_override: Option<String>,
}

impl DeployBody {
    /// The core's request for a deploy to `environment` and the batch.
    pub fn into_request(self, environment: EnvironmentId) -> DeployRequest {
        let mut environment_ids = vec![environment];
        environment_ids.extend(self.with_environment_ids.into_iter().map(EnvironmentId));
        DeployRequest {
            release_id: ReleaseId(self.release_id),
            environment_ids,
            is_skip_stage: self.is_skip_stage,
            is_concurrent_batch: self.is_concurrent_batch,
            freeze_override: self.freeze_override,
        }
    }
}

/// `POST .../environments/:envId/promote` (config managers): move the
/// release running on the stage before to this one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    /// The release expected on the stage before (refused when another runs
    /// there); default: whatever runs there.
    pub release_id: Option<Uuid>,
    /// An `app_admin`'s reason for deploying inside a freeze window.
    #[schema(schema_with = crate::dto::schemas::reason_opt)]
    pub freeze_override: Option<String>,
}

/// `POST .../environments/:envId/rollback` (config managers): deploy an
/// earlier published release again (`mode: redeploy_prior`), or revert the
/// release the environment runs on the integration branch, publish the
/// revert as a new release and deploy it (`mode: revert_and_release`); the
/// release rolled back is marked `rolled_back` when it succeeds.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// `redeploy_prior` or `revert_and_release`.
    #[schema(schema_with = crate::dto::schemas::rollback_mode)]
    pub mode: String,
    /// `redeploy_prior`: the release to go back to (default: the one the
    /// environment ran before its current one). `revert_and_release`: the
    /// release reverted, which must be the one it runs (default).
    pub release_id: Option<Uuid>,
    /// An `app_admin`'s reason for deploying inside a freeze window.
    #[schema(schema_with = crate::dto::schemas::reason_opt)]
    pub freeze_override: Option<String>,
}

/// How a rollback goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackMode {
    /// Deploy an earlier published release.
    RedeployPrior,
    /// Revert the running release, publish and deploy the revert.
    RevertAndRelease,
}

impl RollbackBody {
    /// The mode, or a validation error naming the modes.
    pub fn mode(&self) -> Result<RollbackMode, Error> {
        match self.mode.as_str() {
            "redeploy_prior" => Ok(RollbackMode::RedeployPrior),
            "revert_and_release" => Ok(RollbackMode::RevertAndRelease),
            other => Err(Error::invalid(
                "mode",
                "invalid",
                format!("unknown rollback mode {other:?} (redeploy_prior or revert_and_release)"),
            )),
        }
    }
}

/// `POST .../deployments/:id/reject`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectDeploymentBody {
    /// Why.
    #[schema(schema_with = crate::dto::schemas::reason_opt)]
    pub reason: Option<String>,
}

/// `?environment_id=&state=&release_id=` plus paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeploymentQuery {
    /// Only this environment (its id).
    pub environment: Option<Uuid>,
    /// Only this state.
    #[param(schema_with = crate::dto::schemas::deployment_state)]
    pub state: Option<String>,
    /// Only this release.
    pub release_id: Option<Uuid>,
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1-100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// What an environment runs and whether it may be deployed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnvironmentStatusDto {
    /// The environment.
    pub environment: EnvironmentDto,
    /// The release its last successful deployment put there.
    pub current_release_id: Option<Uuid>,
    /// The commit on `refs/heads/env/<name>`.
    pub current_commit: Option<String>,
    /// Its last deployment of any outcome.
    pub last_deployment: Option<DeploymentDto>,
    /// The deployment holding it now.
    pub active_deployment: Option<DeploymentDto>,
    /// Why it refuses deploys for drift (null: not drifted).
    pub drift: Option<DriftDto>,
    /// The freeze window in force now (null: not frozen).
    pub freeze: Option<FreezeWindowDto>,
}

/// An environment's drift from its last validation, by name only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DriftDto {
    /// The profile differs (which one, or its revision).
    pub profile_changed: bool,
    /// The profile revision validated, and now.
    pub validated_profile_revision: Option<u32>,
    /// The profile revision now.
    pub current_profile_revision: Option<u32>,
    /// The migration records differ.
    pub migrations_changed: bool,
    /// The profile keys changed since (`env_vars.X`, `secrets.Y`, ...), never a value.
    pub keys: Vec<String>,
}

impl From<&DriftReport> for DriftDto {
    fn from(d: &DriftReport) -> Self {
        let DriftReason { profile, migrations } = &d.reason;
        DriftDto {
            profile_changed: profile.is_some(),
            validated_profile_revision: profile.as_ref().and_then(|p| p.validated.revision),
            current_profile_revision: profile.as_ref().and_then(|p| p.current.revision),
            migrations_changed: migrations.is_some(),
            keys: d.keys.clone(),
        }
    }
}

impl From<&EnvironmentStatus> for EnvironmentStatusDto {
    fn from(s: &EnvironmentStatus) -> Self {
        EnvironmentStatusDto {
            environment: EnvironmentDto::from(&s.environment),
            current_release_id: s.current_release_id.map(|r| r.0),
            current_commit: s.current_commit.clone(),
            last_deployment: s.last_deployment.as_ref().map(DeploymentDto::from),
            active_deployment: s.active_deployment.as_ref().map(DeploymentDto::from),
            drift: s.drift.as_ref().map(DriftDto::from),
            freeze: s.freeze.as_ref().map(FreezeWindowDto::from),
        }
    }
}

/// When a freeze window applies: `one_off` between two instants, or
/// `weekly` between two local weekday times in an IANA zone (it may wrap
/// the week, e.g. Fri 16:00 – Mon 08:00 Europe/Berlin).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FreezeScheduleDto {
    /// Once: `[starts_at, ends_at)`.
    OneOff {
        /// First frozen instant.
        starts_at: DateTime<Utc>,
        /// First instant no longer frozen.
        ends_at: DateTime<Utc>,
    },
    /// Every week, local time in `timezone`.
    Weekly {
        /// `monday` .. `sunday`.
        #[schema(schema_with = crate::dto::schemas::weekday)]
        start_day: String,
        /// `HH:MM`.
        start_time: String,
        /// `monday` .. `sunday`.
        #[schema(schema_with = crate::dto::schemas::weekday)]
        end_day: String,
        /// `HH:MM` (excluded).
        end_time: String,
        /// IANA zone, e.g. `Europe/Berlin`.
        timezone: String,
    },
}

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "monday"),
    (Weekday::Tuesday, "tuesday"),
    (Weekday::Wednesday, "wednesday"),
    (Weekday::Thursday, "thursday"),
    (Weekday::Friday, "friday"),
    (Weekday::Saturday, "saturday"),
    (Weekday::Sunday, "sunday"),
];

/// The weekday names of the wire.
pub const WEEKDAY_NAMES: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

fn weekday(field: &str, name: &str) -> Result<Weekday, Error> {
    WEEKDAYS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(d, _)| *d)
        .ok_or_else(|| Error::invalid(field, "invalid_day", format!("{name:?} is not a weekday (monday .. sunday)")))
}

fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS.iter().find(|(d, _)| *d == day).map_or("monday", |(_, n)| n)
}

impl FreezeScheduleDto {
    /// The core's schedule.
    pub fn into_schedule(self) -> Result<FreezeSchedule, Error> {
        Ok(match self {
            FreezeScheduleDto::OneOff { starts_at, ends_at } => FreezeSchedule::OneOff { starts_at, ends_at },
            FreezeScheduleDto::Weekly { start_day, start_time, end_day, end_time, timezone } => {
                FreezeSchedule::Weekly {
                    start_day: weekday("schedule.start_day", &start_day)?,
                    start_time,
                    end_day: weekday("schedule.end_day", &end_day)?,
                    end_time,
                    timezone,
                }
            }
        })
    }
}

impl From<&FreezeSchedule> for FreezeScheduleDto {
    fn from(s: &FreezeSchedule) -> Self {
        match s.clone() {
            FreezeSchedule::OneOff { starts_at, ends_at } => FreezeScheduleDto::OneOff { starts_at, ends_at },
            FreezeSchedule::Weekly { start_day, start_time, end_day, end_time, timezone } => {
                FreezeScheduleDto::Weekly {
                    start_day: weekday_name(start_day).to_owned(),
                    start_time,
                    end_day: weekday_name(end_day).to_owned(),
                    end_time,
                    timezone,
                }
            }
        }
    }
}

/// A deploy freeze window of one environment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FreezeWindowDto {
    /// Id.
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// The frozen environment.
    pub environment_id: Uuid,
    /// When it applies.
    pub schedule: FreezeScheduleDto,
    /// Why (shown to whoever is refused).
    pub reason: String,
    /// Who created it.
    pub created_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<&FreezeWindow> for FreezeWindowDto {
    fn from(w: &FreezeWindow) -> Self {
        FreezeWindowDto {
            id: w.id.0,
            app_id: w.app_id.0,
            environment_id: w.environment_id.0,
            schedule: FreezeScheduleDto::from(&w.schedule),
            reason: w.reason.clone(),
            created_by: w.created_by.0,
            created_at: w.created_at,
        }
    }
}

/// `POST .../environments/:envId/freeze-windows` (app admins).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFreezeWindowBody {
    /// When it applies.
    pub schedule: FreezeScheduleDto,
    /// Why: 1-500 characters.
    #[schema(schema_with = crate::dto::schemas::reason)]
    pub reason: String,
}

/// A migration execution record: what a successful deployment ran of its
/// environment profile's migrations (drift checks compare them).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MigrationExecutionDto {
    /// Id.
    pub id: Uuid,
    /// The environment migrated.
    pub environment_id: Uuid,
    /// The release deployed.
    pub release_id: Uuid,
    /// The deployment that ran them.
    pub deployment_id: Uuid,
    /// The profile's migration paths.
    pub paths: Vec<String>,
    /// The command that applied them, if any.
    pub command: Option<String>,
    /// What they left applied, when known.
    pub applied_state: Option<super::AppliedStateDto>,
    /// The effective profile revision they ran with.
    pub profile_revision: u32,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

impl From<&MigrationExecution> for MigrationExecutionDto {
    fn from(m: &MigrationExecution) -> Self {
        MigrationExecutionDto {
            id: m.id.0,
            environment_id: m.environment_id.0,
            release_id: m.release_id.0,
            deployment_id: m.deployment_id.0,
            paths: m.paths.clone(),
            command: m.command.clone(),
            applied_state: m.applied_state.as_ref().map(super::AppliedStateDto::from),
            profile_revision: m.profile_revision,
            recorded_at: m.recorded_at,
        }
    }
}
