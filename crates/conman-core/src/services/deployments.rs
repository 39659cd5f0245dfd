//! Deployments (SPEC §2.5, §4): deploy a published release to environments,
//! promote it stage by stage, two-person exceptions, rollback by redeploying
//! an earlier release, and the status of an environment.
//!
//! Invariants:
//! - only a published release (`published`, `deployed_partial`,
//!   `deployed_full`) of the same app is deployed; its composed commit is
//!   what the environment ref moves to;
//! - a deployment that needs an exception (skip-stage, several environments
//!   at once) is created `pending`, inactive, and waits for two approvals
//!   recorded by the approvers themselves ([`approval_verdict`]); any other
//!   is created `running` and active with its `deploy_release` job in the
//!   same unit;
//! - the store holds at most one active deployment per environment: a
//!   second deploy to a busy environment is refused with `conflict` (the
//!   store's unique index decides a race, never a read);
//! - a drifted environment (its profile or migration records differ from
//!   its last validation) refuses deploys with `conflict`, naming the
//!   drifted keys, never a value; a freeze window refuses them unless an
//!   `app_admin` gives a reason (kept on the deployment and audited);
//! - the approval that starts a pending exception checks drift and freeze
//!   again (the environment may have changed since the request): it is
//!   refused, recording nothing, while the environment is drifted, or
//!   frozen without an override by a requester who is an `app_admin`;
//! - rollbacks (`redeploy_prior`) need the deploy capability only: they are
//!   the emergency path and are not stage-checked (decision 0018);
//! - every request, approval, rejection and cancel writes one audit entry
//!   in the same unit as the change.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::jobs::NewJob;
use super::{Actor, AppScope, AuditWhat, Conman};
use crate::domain::app::App;
use crate::domain::deployment::{
    approval_verdict, required_exception, stage_check, ApprovalVerdict, Deployment, DeploymentApproval,
    DeploymentException, DeploymentKind, DeploymentOutcome, DeploymentRejection, DeploymentState, StageVerdict,
    DEFAULT_APPROVAL_TTL_HOURS,
};
use crate::domain::drift::{drift_between, migrations_fingerprint, DriftReason, ProfileState};
use crate::domain::environment::Environment;
use crate::domain::freeze::{active_freeze, FreezeWindow};
use crate::domain::job::{Job, JobType};
use crate::domain::release::{Release, ReleaseState};
use crate::error::Error;
use crate::ids::{AppId, DeploymentId, EnvironmentId, ReleaseId};
use crate::ports::store::{collect_pages, DeploymentFilter, DeploymentMutation, Page, PageRequest, UnitOfWork};
use crate::rbac::{Capability, Role};

/// The timeout of a `deploy_release` attempt beyond its commands' own.
const DEPLOY_MARGIN_SECS: u64 = 120;

/// Longest freeze-override reason or rejection reason.
const MAX_REASON_CHARS: usize = 500;

/// Serde here is persistence: the stored payload of a `deploy_release` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployPayload {
    /// The deployment it carries out.
    pub deployment_id: DeploymentId,
}

/// A request to deploy a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    /// The published release.
    pub release_id: ReleaseId,
    /// One environment, or several at once (an exception).
    pub environment_ids: Vec<EnvironmentId>,
    /// The requester's acknowledgement that this single-environment deploy
    /// skips a stage (and so waits for two approvals); it must match what
    /// the stage order says.
    pub is_skip_stage: bool,
    /// The requester's acknowledgement that several environments are
    /// deployed at once (two approvals, one group); required exactly when
    /// more than one environment is named.
    pub is_concurrent_batch: bool,
    /// An `app_admin`'s reason for deploying inside a freeze window.
    pub freeze_override: Option<String>,
}

/// A deployment and the job carrying it out (none while it waits for
/// approvals).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentStarted {
    /// The deployment.
    pub deployment: Deployment,
    /// Its `deploy_release` job, when it runs now.
    pub job: Option<Job>,
}

/// What an environment runs and whether it may be deployed.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentStatus {
    /// The environment.
    pub environment: Environment,
    /// The release its last succeeded deployment put there.
    pub current_release_id: Option<ReleaseId>,
    /// The commit on its ref.
    pub current_commit: Option<String>,
    /// Its last deployment of any outcome.
    pub last_deployment: Option<Deployment>,
    /// The deployment holding it now.
    pub active_deployment: Option<Deployment>,
    /// Why it refuses deploys for drift, if it does.
    pub drift: Option<DriftReport>,
    /// The freeze window in force now, if any.
    pub freeze: Option<FreezeWindow>,
}

/// An environment's drift: what differs, by name only.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReport {
    /// What differs from the last validation.
    pub reason: DriftReason,
    /// The profile keys that changed since (`env_vars.X`, `secrets.Y`,
    /// `database`, ...), never a value.
    pub keys: Vec<String>,
}

pub(super) fn check_reason(field: &str, reason: Option<&str>) -> Result<Option<String>, Error> {
    let Some(reason) = reason else { return Ok(None) };
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "invalid",
            format!("{field} must be 1-{MAX_REASON_CHARS} characters without control characters"),
        ));
    }
    Ok(Some(reason.to_owned()))
}

/// Refuses a single-environment deploy whose `is_skip_stage` does not
/// match the stage order: a skip-stage is never requested by accident, and
/// the flag never claims one that is not.
fn check_skip_acknowledged(
    env: &Environment,
    stage: StageVerdict,
    is_skip_stage: bool,
    envs: &[Environment],
) -> Result<(), Error> {
    match (stage, is_skip_stage) {
        (StageVerdict::SkipStage { previous }, false) => {
            let name = envs.iter().find(|e| e.id == previous).map_or("the previous stage", |e| e.name.as_str());
            Err(Error::invalid(
                "is_skip_stage",
                "required",
                format!(
                    "the release does not run on {name}, the stage before {}: promote it stage by stage, or set \
                     is_skip_stage to request a skip-stage (two approvals)",
                    env.name
                ),
            ))
        }
        (StageVerdict::SkipStage { .. }, true) | (_, false) => Ok(()),
        (_, true) => Err(Error::invalid(
            "is_skip_stage",
            "not_skip_stage",
            format!("deploying this release to {} skips no stage: leave is_skip_stage unset", env.name),
        )),
    }
}

/// True for the release states a deployment may take a release from.
fn deployable(state: ReleaseState) -> bool {
    matches!(state, ReleaseState::Published | ReleaseState::DeployedPartial | ReleaseState::DeployedFull)
}

impl Conman {
    /// Deploys a published release to one environment (stage-checked: a
    /// skip-stage needs two approvals) or to several at once (always two
    /// approvals, one group). Config managers and admins.
    pub async fn deploy_release(
        &self,
        actor: &Actor,
        app_id: AppId,
        request: DeployRequest,
    ) -> Result<Vec<DeploymentStarted>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Deploy, None)?;
        if request.environment_ids.is_empty() {
            return Err(Error::invalid("environment_ids", "empty", "name at least one environment"));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = request.environment_ids.iter().find(|e| !seen.insert(**e)) {
            return Err(Error::invalid("environment_ids", "duplicate", format!("environment {dup} is named twice")));
        }
        let batch = request.environment_ids.len() > 1;
        if batch != request.is_concurrent_batch {
            return Err(if batch {
                Error::invalid(
                    "is_concurrent_batch",
                    "required",
                    "deploying several environments at once is an exception needing two approvals: set \
                     is_concurrent_batch to request it",
                )
            } else {
                Error::invalid("is_concurrent_batch", "not_a_batch", "is_concurrent_batch needs several environments")
            });
        }
        if batch && request.is_skip_stage {
            return Err(Error::invalid(
                "is_skip_stage",
                "batch",
                "a concurrent batch is approved as one exception: leave is_skip_stage unset",
            ));
        }
        let release = self.deployable_release(app_id, request.release_id).await?;
        let envs = self.store().environments(app_id).await?;
        let current = self.current_releases(app_id, &envs).await?;
        let mut targets = Vec::new();
        for id in &request.environment_ids {
            let env = envs.iter().find(|e| e.id == *id).ok_or(Error::NotFound("environment"))?;
            let stage = stage_check(&envs, env.id, release.id, &current)?;
            let exception = required_exception(stage, request.environment_ids.len());
            if !batch {
                check_skip_acknowledged(env, stage, request.is_skip_stage, &envs)?;
            }
            targets.push((env.clone(), exception));
        }
        let freeze_override = check_reason("freeze_override", request.freeze_override.as_deref())?;
        self.request_deployments(&scope, &release, targets, DeploymentKind::Deploy, None, freeze_override).await
    }

    /// Promotes a release to `target` from the stage just before it,
    /// where it must run now (`release_id`, or whatever runs there): the
    /// exact artifact, no approvals. Config managers and admins.
    pub async fn promote_release(
        &self,
        actor: &Actor,
        app_id: AppId,
        target: EnvironmentId,
        release_id: Option<ReleaseId>,
        freeze_override: Option<&str>,
    ) -> Result<DeploymentStarted, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Deploy, None)?;
        let mut envs = self.store().environments(app_id).await?;
        envs.sort_by_key(|e| (e.position, e.id));
        let at = envs.iter().position(|e| e.id == target).ok_or(Error::NotFound("environment"))?;
        let Some(previous) = at.checked_sub(1).map(|k| envs[k].clone()) else {
            return Err(Error::invalid(
                "environment_id",
                "first_stage",
                format!("{} is the first stage: deploy to it, there is nothing to promote from", envs[at].name),
            ));
        };
        let running = self.store().last_succeeded_deployment(app_id, previous.id).await?.ok_or_else(|| {
            Error::invalid("environment_id", "nothing_deployed", format!("nothing is deployed on {}", previous.name))
        })?;
        if let Some(wanted) = release_id.filter(|id| *id != running.release_id) {
            return Err(Error::invalid(
                "release_id",
                "not_on_previous_stage",
                format!(
                    "release {wanted} does not run on {} (the stage before {}): promote what runs there, or \
                     deploy it as a skip-stage",
                    previous.name, envs[at].name
                ),
            ));
        }
        let release = self.deployable_release(app_id, running.release_id).await?;
        let freeze_override = check_reason("freeze_override", freeze_override)?;
        let next = envs[at].clone();
        let mut started = self
            .request_deployments(&scope, &release, vec![(next, None)], DeploymentKind::Promote, None, freeze_override)
            .await?;
        started.pop().ok_or_else(|| Error::internal("a promotion made no deployment"))
    }

    /// Rolls an environment back by deploying an earlier published release
    /// of the app (`release_id`, or the release the environment ran before
    /// its current one); the current one is marked `rolled_back` when the
    /// rollback succeeds. Config managers and admins.
    pub async fn redeploy_prior(
        &self,
        actor: &Actor,
        app_id: AppId,
        environment_id: EnvironmentId,
        release_id: Option<ReleaseId>,
        freeze_override: Option<&str>,
    ) -> Result<DeploymentStarted, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Deploy, None)?;
        let envs = self.store().environments(app_id).await?;
        let env = envs.iter().find(|e| e.id == environment_id).cloned().ok_or(Error::NotFound("environment"))?;
        let running = self.store().last_succeeded_deployment(app_id, env.id).await?.ok_or_else(|| {
            Error::invalid("environment_id", "nothing_deployed", format!("nothing is deployed on {}", env.name))
        })?;
        let target = match release_id.or(running.previous_release_id) {
            Some(id) => id,
            None => {
                return Err(Error::invalid(
                    "release_id",
                    "no_prior_release",
                    format!("{} ran no release before its current one: name the release to roll back to", env.name),
                ))
            }
        };
        if target == running.release_id {
            return Err(Error::invalid("release_id", "already_running", "that release is the one running there"));
        }
        let release = self.deployable_release(app_id, target).await?;
        let current = self.store().release(app_id, running.release_id).await?.ok_or(Error::NotFound("release"))?;
        if release.published_at >= current.published_at {
            return Err(Error::invalid(
                "release_id",
                "not_prior",
                "a rollback deploys a release published before the one running there",
            ));
        }
        let freeze_override = check_reason("freeze_override", freeze_override)?;
        let mut started = self
            .request_deployments(
                &scope,
                &release,
                vec![(env, None)],
                DeploymentKind::RedeployPrior,
                Some(running.release_id),
                freeze_override,
            )
            .await?;
        started.pop().ok_or_else(|| Error::internal("a rollback made no deployment"))
    }

    /// Records the actor's approval of a pending deployment (and of every
    /// pending deployment requested with it); the second qualifying
    /// approval starts them. Reviewers, config managers and admins; the
    /// requester only when the app allows it.
    pub async fn approve_deployment(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: DeploymentId,
    ) -> Result<Vec<DeploymentStarted>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        let deployment = self.store().deployment(app_id, id).await?.ok_or(Error::NotFound("deployment"))?;
        scope.require(Capability::ApproveDeployException, None)?;
        let allow_requester = scope.app.settings.allow_deploy_self_approval;
        if deployment.requested_by == actor.user.id && !allow_requester {
            return Err(Error::Forbidden(
                "the requester of a deployment may not approve it (app setting allow_deploy_self_approval)".into(),
            ));
        }
        let group = self.deployment_group(&deployment).await?;
        let now = self.now();
        let mut unit = UnitOfWork::new();
        let mut started = Vec::new();
        for d in &group {
            if d.state != DeploymentState::Pending || d.exception.is_none() {
                return Err(Error::InvalidTransition {
                    entity: "deployment",
                    from: d.state.as_str().to_owned(),
                    event: "approve".into(),
                });
            }
            if d.approvals_expired(now) {
                return Err(Error::conflict(format!(
                    "the approvals of deployment {} expired at {}: request it again",
                    d.id,
                    d.approval_expires_at.map(|t| t.to_rfc3339()).unwrap_or_default()
                )));
            }
            if d.approvals.iter().any(|a| a.user_id == actor.user.id) {
                return Err(Error::conflict(format!("you already approved deployment {}", d.id)));
            }
            let mut approved = d.clone();
            approved.approvals.push(DeploymentApproval { user_id: actor.user.id, role: scope.role, at: now });
            approved.updated_at = now;
            let complete =
                approval_verdict(d.requested_by, &approved.approvals, allow_requester) == ApprovalVerdict::Complete;
            // One new version per approval: `start` takes the step itself.
            let (after, job) = if complete {
                // The environment may have drifted or frozen since the
                // request: the last approval never starts a blind deploy.
                // The request's freeze override stands while its requester
                // is an app admin.
                let env = self.environment(app_id, d.environment_id).await?;
                let release = self.store().release(app_id, d.release_id).await?.ok_or(Error::NotFound("release"))?;
                self.refuse_drifted(&env, Some(&release)).await?;
                let requester = self.store().membership(app_id, d.requested_by).await?;
                let overridden = d.freeze_override.is_some() && requester.is_some_and(|m| m.role >= Role::AppAdmin);
                self.refuse_frozen(&env, overridden).await?;
                let running = approved.start(now)?;
                let job = self.deploy_job(actor, &scope.app, &running);
                (Deployment { job_id: Some(job.id), ..running }, Some(job))
            } else {
                approved.version += 1;
                (approved, None)
            };
            let action = if complete { "deployment.approved_and_started" } else { "deployment.approved" };
            let audit = self.audit_entry(
                Some(actor),
                Some(app_id),
                AuditWhat::new("deployment", d.id, action).before(d).after(&after).sha(&d.commit),
            );
            unit = unit.record(DeploymentMutation::UpdateDeployment(after.clone()), audit);
            if let Some(job) = &job {
                unit = self.enqueue_in(unit, Some(actor), job);
            }
            started.push(DeploymentStarted { deployment: after, job });
        }
        self.commit_deployments(unit).await?;
        Ok(started)
    }

    /// Rejects a pending deployment (and every one requested with it): they
    /// end `canceled` with the rejection recorded. Reviewers, config
    /// managers and admins.
    pub async fn reject_deployment(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: DeploymentId,
        reason: Option<&str>,
    ) -> Result<Vec<Deployment>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        let deployment = self.store().deployment(app_id, id).await?.ok_or(Error::NotFound("deployment"))?;
        scope.require(Capability::ApproveDeployException, None)?;
        let reason = check_reason("reason", reason)?;
        let now = self.now();
        let rejection = DeploymentRejection { user_id: actor.user.id, at: now, reason: reason.clone() };
        let why = format!("rejected by {}{}", actor.user.email, reason.map(|r| format!(": {r}")).unwrap_or_default());
        self.end_pending(actor, &scope, &deployment, "deployment.rejected", Some(rejection), why).await
    }

    /// Cancels a deployment still waiting for approvals (its requester, a
    /// config manager or an admin). A running one is stopped by canceling
    /// its job; a finished one cannot be undone.
    pub async fn cancel_deployment(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: DeploymentId,
    ) -> Result<Vec<Deployment>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        let deployment = self.store().deployment(app_id, id).await?.ok_or(Error::NotFound("deployment"))?;
        scope.require(Capability::Deploy, None)?;
        let why = format!("canceled by {}", actor.user.email);
        self.end_pending(actor, &scope, &deployment, "deployment.canceled", None, why).await
    }

    /// Deployments of an app, newest first. Every member.
    pub async fn list_deployments(
        &self,
        actor: &Actor,
        app_id: AppId,
        filter: DeploymentFilter,
        page: PageRequest,
    ) -> Result<Page<Deployment>, Error> {
        self.app_scope(actor, app_id).await?.require(Capability::Read, None)?;
        self.store().list_deployments(app_id, &filter, page).await
    }

    /// One deployment. Every member.
    pub async fn get_deployment(&self, actor: &Actor, app_id: AppId, id: DeploymentId) -> Result<Deployment, Error> {
        self.app_scope(actor, app_id).await?.require(Capability::Read, None)?;
        self.store().deployment(app_id, id).await?.ok_or(Error::NotFound("deployment"))
    }

    /// The migration execution records of an environment, newest first:
    /// what each successful deployment ran of its profile's migrations.
    /// Every member.
    pub async fn list_migration_executions(
        &self,
        actor: &Actor,
        app_id: AppId,
        environment_id: EnvironmentId,
        page: PageRequest,
    ) -> Result<Page<crate::domain::drift::MigrationExecution>, Error> {
        self.app_scope(actor, app_id).await?.require(Capability::Read, None)?;
        let env = self.environment(app_id, environment_id).await?;
        self.store().migration_executions(app_id, env.id, page).await
    }

    /// What an environment runs, what holds it, its drift and freeze state.
    /// Every member.
    pub async fn environment_status(
        &self,
        actor: &Actor,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<EnvironmentStatus, Error> {
        self.app_scope(actor, app_id).await?.require(Capability::Read, None)?;
        let environment = self.environment(app_id, environment_id).await?;
        let current = self.store().last_succeeded_deployment(app_id, environment_id).await?;
        let filter = DeploymentFilter { environment_id: Some(environment_id), ..Default::default() };
        let last = self.store().list_deployments(app_id, &filter, PageRequest { page: 1, limit: 1 }).await?;
        let windows = self.store().freeze_windows(app_id, environment_id).await?;
        Ok(EnvironmentStatus {
            current_release_id: current.as_ref().map(|d| d.release_id),
            current_commit: self.git().resolve_ref(app_id, &environment.git_ref()).await?.map(|s| s.to_string()),
            last_deployment: last.items.into_iter().next(),
            active_deployment: self.store().active_deployment(app_id, environment_id).await?,
            drift: self.drift_of(&environment).await?,
            freeze: active_freeze(&windows, self.now()).cloned(),
            environment,
        })
    }

    // ---- shared steps ------------------------------------------------

    /// A release of the app that may be deployed.
    async fn deployable_release(&self, app_id: AppId, id: ReleaseId) -> Result<Release, Error> {
        let release = self.store().release(app_id, id).await?.ok_or(Error::NotFound("release"))?;
        if !deployable(release.state) {
            return Err(Error::InvalidTransition {
                entity: "release",
                from: release.state.as_str().to_owned(),
                event: "deploy".into(),
            });
        }
        Ok(release)
    }

    /// An environment of the app.
    pub(super) async fn environment(&self, app_id: AppId, id: EnvironmentId) -> Result<Environment, Error> {
        self.store().environments(app_id).await?.into_iter().find(|e| e.id == id).ok_or(Error::NotFound("environment"))
    }

    /// The release each environment runs (its last succeeded deployment).
    pub(super) async fn current_releases(
        &self,
        app_id: AppId,
        envs: &[Environment],
    ) -> Result<HashMap<EnvironmentId, ReleaseId>, Error> {
        let mut current = HashMap::new();
        for env in envs {
            if let Some(d) = self.store().last_succeeded_deployment(app_id, env.id).await? {
                current.insert(env.id, d.release_id);
            }
        }
        Ok(current)
    }

    /// The deployments requested together with `deployment` (itself alone
    /// when it has no group).
    async fn deployment_group(&self, deployment: &Deployment) -> Result<Vec<Deployment>, Error> {
        let Some(group) = deployment.group_id else { return Ok(vec![deployment.clone()]) };
        let filter = DeploymentFilter { group_id: Some(group), ..Default::default() };
        let mut all = collect_pages(|page| self.store().list_deployments(deployment.app_id, &filter, page)).await?;
        all.sort_by_key(|d| d.id);
        Ok(all)
    }

    /// Refuses a deploy of `release` to `env` while it has drifted (unless
    /// the release carries the drift fix of its current state) or is frozen
    /// (unless an `app_admin` overrides the freeze with a reason).
    pub(super) async fn check_deployable_environment(
        &self,
        scope: &AppScope,
        env: &Environment,
        release: Option<&Release>,
        freeze_override: Option<&str>,
    ) -> Result<(), Error> {
        self.refuse_drifted(env, release).await?;
        self.refuse_frozen(env, freeze_override.is_some() && scope.role >= Role::AppAdmin).await
    }

    /// Refuses a deploy of `release` to a drifted `env`, unless the release
    /// carries the drift fix of its current state.
    async fn refuse_drifted(&self, env: &Environment, release: Option<&Release>) -> Result<(), Error> {
        let drift = match self.drift_of(env).await? {
            Some(drift) => match release {
                Some(r) if self.release_fixes_drift(r, env).await? => None,
                _ => Some(drift),
            },
            None => None,
        };
        if let Some(drift) = drift {
            return Err(Error::Conflict {
                message: format!(
                    "environment {} has drifted since its last validation ({}): run a drift check or release a \
                     drift-fix changeset (POST .../create-drift-fix-changeset)",
                    env.name,
                    if drift.keys.is_empty() { "migration records".to_owned() } else { drift.keys.join(", ") }
                ),
                details: Some(serde_json::json!({ "reason": "drifted", "environment": env.name, "keys": drift.keys })),
            });
        }
        Ok(())
    }

    /// Refuses a deploy to a frozen `env` unless `overridden` (an
    /// `app_admin` gave a reason).
    async fn refuse_frozen(&self, env: &Environment, overridden: bool) -> Result<(), Error> {
        let windows = self.store().freeze_windows(env.app_id, env.id).await?;
        if let Some(window) = active_freeze(&windows, self.now()) {
            if !overridden {
                return Err(Error::Conflict {
                    message: format!(
                        "environment {} is frozen ({}); an app_admin may deploy with a freeze_override reason",
                        env.name, window.reason
                    ),
                    details: Some(serde_json::json!({
                        "reason": "frozen", "environment": env.name, "freeze_window_id": window.id,
                    })),
                });
            }
        }
        Ok(())
    }

    /// The drift of `env` from its last validation, if any.
    pub(super) async fn drift_of(&self, env: &Environment) -> Result<Option<DriftReport>, Error> {
        let Some(validated) = self.store().last_validation(env.app_id, env.id).await? else { return Ok(None) };
        let (state, profile) = self.profile_state(env).await?;
        let records = collect_pages(|page| self.store().migration_executions(env.app_id, env.id, page)).await?;
        let Some(reason) = drift_between(&validated, state, &migrations_fingerprint(&records)) else {
            return Ok(None);
        };
        let mut keys = Vec::new();
        if let (Some(profile), Some(was_rev)) = (&profile, validated.profile_revision) {
            if validated.profile_id == Some(profile.id) {
                if let Some(was) = self.store().profile_revision(profile.id, was_rev).await? {
                    keys = crate::domain::drift::drifted_keys(&was.document, &profile.document());
                }
            } else {
                keys.push("runtime_profile_id".into());
            }
        } else if validated.profile_id != state.profile_id {
            keys.push("runtime_profile_id".into());
        }
        Ok(Some(DriftReport { reason, keys }))
    }

    /// The environment's profile as drift compares it, and the profile.
    pub(super) async fn profile_state(
        &self,
        env: &Environment,
    ) -> Result<(ProfileState, Option<crate::domain::runtime_profile::RuntimeProfile>), Error> {
        let profile = match env.runtime_profile_id {
            Some(id) => self.store().runtime_profile(env.app_id, id).await?,
            None => None,
        };
        let state = ProfileState { profile_id: env.runtime_profile_id, revision: profile.as_ref().map(|p| p.revision) };
        Ok((state, profile))
    }

    /// The `deploy_release` job of a running deployment.
    fn deploy_job(&self, actor: &Actor, app: &App, deployment: &Deployment) -> Job {
        let (_, gate_timeout) = super::gates::gate_command(self, app, super::gates::GateKind::Deploy);
        let payload = DeployPayload { deployment_id: deployment.id };
        self.new_job(
            Some(actor),
            NewJob {
                app_id: app.id,
                job_type: JobType::DeployRelease,
                entity_type: Some("deployment".into()),
                entity_id: Some(deployment.id.to_string()),
                payload: serde_json::to_value(payload).unwrap_or_default(),
                // The gate and the deploy command each get the gate timeout.
                timeout_secs: 2 * gate_timeout.as_secs() + DEPLOY_MARGIN_SECS,
            },
        )
    }

    /// Records one deployment per target, in one unit (see the module doc).
    pub(super) async fn request_deployments(
        &self,
        scope: &AppScope,
        release: &Release,
        targets: Vec<(Environment, Option<DeploymentException>)>,
        kind: DeploymentKind,
        rolled_back: Option<ReleaseId>,
        freeze_override: Option<String>,
    ) -> Result<Vec<DeploymentStarted>, Error> {
        let actor = &scope.actor;
        let commit = release
            .composed_sha
            .clone()
            .ok_or_else(|| Error::internal(format!("published release {} has no commit", release.id)))?;
        let now = self.now();
        let group_id: Option<DeploymentId> = (targets.len() > 1).then(|| self.new_id());
        let mut unit = UnitOfWork::new();
        let mut started = Vec::new();
        for (env, exception) in targets {
            self.check_deployable_environment(scope, &env, Some(release), freeze_override.as_deref()).await?;
            if let Some(busy) = self.store().active_deployment(scope.app.id, env.id).await? {
                return Err(busy_environment(&env, &busy));
            }
            let previous = self.store().last_succeeded_deployment(scope.app.id, env.id).await?;
            let pending = Deployment {
                id: self.new_id(),
                app_id: scope.app.id,
                environment_id: env.id,
                release_id: release.id,
                commit: commit.clone(),
                kind,
                exception,
                group_id,
                state: DeploymentState::Pending,
                approvals: Vec::new(),
                rejection: None,
                approval_expires_at: exception.map(|_| now + chrono::TimeDelta::hours(DEFAULT_APPROVAL_TTL_HOURS)),
                active: false,
                requested_by: actor.user.id,
                job_id: None,
                previous_commit: previous.as_ref().map(|d| d.commit.clone()),
                previous_release_id: previous.as_ref().map(|d| d.release_id),
                rolled_back_release_id: rolled_back,
                profile_revision: None,
                freeze_override: freeze_override.clone(),
                failure: None,
                created_at: now,
                started_at: None,
                finished_at: None,
                updated_at: now,
                version: 1,
            };
            let (deployment, job) = if exception.is_some() {
                (pending, None)
            } else {
                let running = Deployment { version: 1, ..pending.start(now)? };
                let job = self.deploy_job(actor, &scope.app, &running);
                (Deployment { job_id: Some(job.id), ..running }, Some(job))
            };
            let action = if job.is_some() { "deployment.started" } else { "deployment.awaiting_approval" };
            let audit = self.audit_entry(
                Some(actor),
                Some(scope.app.id),
                AuditWhat::new("deployment", deployment.id, action).after(&deployment).sha(&commit),
            );
            unit = unit.record(DeploymentMutation::InsertDeployment(deployment.clone()), audit);
            if let Some(job) = &job {
                unit = self.enqueue_in(unit, Some(actor), job);
            }
            started.push(DeploymentStarted { deployment, job });
        }
        self.commit_deployments(unit).await?;
        Ok(started)
    }

    /// Ends `deployment`'s group while pending: `canceled`, with the
    /// rejection (if any) and why.
    async fn end_pending(
        &self,
        actor: &Actor,
        scope: &AppScope,
        deployment: &Deployment,
        action: &str,
        rejection: Option<DeploymentRejection>,
        why: String,
    ) -> Result<Vec<Deployment>, Error> {
        let now = self.now();
        let mut unit = UnitOfWork::new();
        let mut ended = Vec::new();
        for d in self.deployment_group(deployment).await? {
            if d.state != DeploymentState::Pending {
                return Err(Error::InvalidTransition {
                    entity: "deployment",
                    from: d.state.as_str().to_owned(),
                    event: if rejection.is_some() { "reject".into() } else { "cancel".into() },
                });
            }
            let after = Deployment {
                rejection: rejection.clone(),
                ..d.finish(DeploymentOutcome::Canceled { reason: Some(why.clone()) }, now)?
            };
            let audit = self.audit_entry(
                Some(actor),
                Some(scope.app.id),
                AuditWhat::new("deployment", d.id, action).before(&d).after(&after),
            );
            unit = unit.record(DeploymentMutation::UpdateDeployment(after.clone()), audit);
            ended.push(after);
        }
        self.commit_deployments(unit).await?;
        Ok(ended)
    }

    /// Commits a unit of deployment changes, waking the workers for its
    /// jobs; a lost race for an environment reads as `conflict`.
    async fn commit_deployments(&self, unit: UnitOfWork) -> Result<(), Error> {
        self.commit_and_wake(unit).await.map_err(|e| match &e {
            Error::Conflict { details: Some(d), .. } if d["field"] == "environment" => Error::Conflict {
                message: "another deployment holds that environment now: wait for it to finish".into(),
                details: Some(serde_json::json!({ "reason": "environment_busy" })),
            },
            _ => e,
        })
    }
}

/// The refusal of a deploy to an environment another deployment holds.
pub(super) fn busy_environment(env: &Environment, busy: &Deployment) -> Error {
    Error::Conflict {
        message: format!(
            "environment {} is busy: deployment {} ({}) holds it until it finishes",
            env.name,
            busy.id,
            busy.state.as_str()
        ),
        details: Some(serde_json::json!({ "reason": "environment_busy", "deployment_id": busy.id })),
    }
}
