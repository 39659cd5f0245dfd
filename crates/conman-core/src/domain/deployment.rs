//! Deployments: one release on one environment (SPEC §2.5, §4).
//!
//! Invariants of a [`Deployment`]:
//! - its `state` moves only along [`DEPLOYMENT_EDGES`] ([`Deployment::start`],
//!   [`Deployment::finish`]); every other move is `invalid_transition` and
//!   leaves the value as it was;
//! - `active` is true exactly while it holds its environment: from the
//!   moment it may run (inserted ready, or its second approval landed) until
//!   it finishes. A finished deployment is never active. The store keeps at
//!   most one active deployment per environment (decision 0017);
//! - `started_at` is set by `start`, `finished_at` by `finish`, and each
//!   step bumps `version` by one and sets `updated_at`.
//!
//! The pure rules of SPEC §2.5 live here too: [`approval_verdict`] (two
//! distinct approvers, one of them at least `reviewer`) and [`stage_check`]
//! (promotion in stage order, anything else a skip-stage). The use cases
//! live in the deployment services.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::environment::Environment;
use super::machine::StateMachine;
use super::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, DeploymentId, EnvironmentId, JobId, ReleaseId, UserId};
use crate::rbac::Role;

/// One release on one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Identity.
    pub id: DeploymentId,
    /// Owning app.
    pub app_id: AppId,
    /// The environment whose ref it moves.
    pub environment_id: EnvironmentId,
    /// The release it puts there.
    pub release_id: ReleaseId,
    /// The release commit the environment ref moves to.
    pub commit: String,
    /// How it was requested.
    pub kind: DeploymentKind,
    /// Why it needs two approvals, if it does.
    pub exception: Option<DeploymentException>,
    /// Deployments requested together (multi-environment) share it.
    pub group_id: Option<DeploymentId>,
    /// Where it is in its life.
    pub state: DeploymentState,
    /// Approvals recorded by the approvers themselves, in order.
    pub approvals: Vec<DeploymentApproval>,
    /// The rejection that ended it, if any.
    pub rejection: Option<DeploymentRejection>,
    /// When a pending deployment waiting for approvals lapses.
    pub approval_expires_at: Option<Timestamp>,
    /// Holds its environment: true from the moment it may run until it
    /// finishes.
    pub active: bool,
    /// Who requested it.
    pub requested_by: UserId,
    /// The `deploy_release` job.
    pub job_id: Option<JobId>,
    /// The commit the environment was on before.
    pub previous_commit: Option<String>,
    /// The release the environment was on before.
    pub previous_release_id: Option<ReleaseId>,
    /// For rollbacks: the release being rolled back.
    pub rolled_back_release_id: Option<ReleaseId>,
    /// The effective profile revision it deployed with.
    pub profile_revision: Option<u32>,
    /// An `app_admin`'s reason for deploying inside a freeze window.
    pub freeze_override: Option<String>,
    /// Why it did not succeed (failed or canceled).
    pub failure: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it started running.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// How a deployment was requested (SPEC §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentKind {
    /// A release deployed to an environment.
    Deploy,
    /// The release of stage k moved to stage k+1.
    Promote,
    /// Rollback: an earlier release deployed again.
    RedeployPrior,
    /// Rollback: the release reverted, the revert released and deployed.
    RevertAndRelease,
}

/// Why a deployment needs two approvals (SPEC §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentException {
    /// Out of stage order.
    SkipStage,
    /// Part of a request for several environments at once.
    MultiEnvironment,
}

/// One approval, recorded by the approver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentApproval {
    /// The approver.
    pub user_id: UserId,
    /// The approver's role in the app when they approved.
    pub role: Role,
    /// When.
    pub at: Timestamp,
}

/// The rejection of a pending deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRejection {
    /// Who rejected it.
    pub user_id: UserId,
    /// When.
    pub at: Timestamp,
    /// Why, if they said.
    pub reason: Option<String>,
}

/// How a finished deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentOutcome {
    /// The gate and the deploy command passed.
    Succeeded,
    /// The gate or the command failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// Stopped (canceled, rejected, approvals expired).
    Canceled {
        /// Why, if known.
        reason: Option<String>,
    },
}

impl Deployment {
    /// The next version of `self` at `at`.
    fn step(&self, state: DeploymentState, at: Timestamp) -> Deployment {
        Deployment { state, updated_at: at, version: self.version + 1, ..self.clone() }
    }

    /// `pending -> running`: it runs, and holds its environment.
    pub fn start(&self, at: Timestamp) -> Result<Deployment, Error> {
        let state = self.state.apply(DeploymentEvent::Start)?;
        Ok(Deployment { active: true, started_at: Some(at), ..self.step(state, at) })
    }

    /// Ends it with `outcome` (`running -> succeeded | failed | canceled`,
    /// `pending -> canceled`), releasing its environment.
    pub fn finish(&self, outcome: DeploymentOutcome, at: Timestamp) -> Result<Deployment, Error> {
        let (event, failure) = match outcome {
            DeploymentOutcome::Succeeded => (DeploymentEvent::Succeed, None),
            DeploymentOutcome::Failed { reason } => (DeploymentEvent::Fail, Some(reason)),
            DeploymentOutcome::Canceled { reason } => (DeploymentEvent::Cancel, reason),
        };
        let state = self.state.apply(event)?;
        Ok(Deployment { active: false, failure, finished_at: Some(at), ..self.step(state, at) })
    }

    /// True when a pending deployment's approval window has passed at `now`.
    pub fn approvals_expired(&self, now: Timestamp) -> bool {
        self.state == DeploymentState::Pending && self.approval_expires_at.is_some_and(|t| now >= t)
    }
}

/// How long a deployment waits for its approvals by default (issue 14).
pub const DEFAULT_APPROVAL_TTL_HOURS: i64 = 24;

/// Distinct approvers an exception needs (SPEC §2.5).
pub const EXCEPTION_APPROVALS: usize = 2;

/// Whether an exception's approvals are complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalVerdict {
    /// Not yet; `missing` says what is still needed, in words.
    Incomplete {
        /// What is still needed.
        missing: String,
    },
    /// Two distinct approvers, one of them at least `reviewer`.
    Complete,
}

/// True for the roles whose approval SPEC §2.5 requires at least one of.
fn senior(role: Role) -> bool {
    role >= Role::Reviewer
}

/// The SPEC §2.5 rule for a deployment exception: complete when two
/// distinct users approved and at least one of them with role `reviewer`,
/// `config_manager` or `app_admin`. The requester's own approval counts
/// only when `allow_requester` (the app's self-approval setting). Several
/// approvals of one user count once; the user counts as senior when any of
/// them was given with a senior role.
pub fn approval_verdict(requester: UserId, approvals: &[DeploymentApproval], allow_requester: bool) -> ApprovalVerdict {
    let eligible: Vec<&DeploymentApproval> =
        approvals.iter().filter(|a| allow_requester || a.user_id != requester).collect();
    let distinct: BTreeSet<UserId> = eligible.iter().map(|a| a.user_id).collect();
    let has_senior = eligible.iter().any(|a| senior(a.role));
    if distinct.len() >= EXCEPTION_APPROVALS && has_senior {
        return ApprovalVerdict::Complete;
    }
    let more = EXCEPTION_APPROVALS.saturating_sub(distinct.len());
    let mut missing = match (more, has_senior) {
        (0, _) => "1 more approval by a reviewer, config_manager or app_admin".to_owned(),
        (1, true) => "1 more approval by another user".to_owned(),
        (1, false) => "1 more approval by a reviewer, config_manager or app_admin".to_owned(),
        (n, _) => format!("{n} approvals by distinct users, at least one a reviewer, config_manager or app_admin"),
    };
    if !allow_requester && approvals.iter().any(|a| a.user_id == requester) {
        missing.push_str(" (the requester's own approval does not count)");
    }
    ApprovalVerdict::Incomplete { missing }
}

/// Where a deployment to one environment stands in stage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageVerdict {
    /// The target is the first environment: any published release may go
    /// there.
    FirstStage,
    /// The release runs on the stage before the target: a plain promotion.
    Promotion {
        /// The stage before the target.
        from: EnvironmentId,
    },
    /// Out of order: the stage before the target does not run the release.
    SkipStage {
        /// The stage before the target.
        previous: EnvironmentId,
    },
}

/// Where deploying `release` to `target` stands in the stage order of
/// `envs` (an app's environments, in any order: they are ordered by
/// `position` here). `current` maps an environment to the release it runs
/// now (its last succeeded deployment); an environment missing from it runs
/// nothing. The first environment needs no exception; stage k+1 is a
/// promotion when stage k runs `release`; anything else is a skip-stage
/// (SPEC §2.5). An unknown `target` is `not_found`.
pub fn stage_check(
    envs: &[Environment],
    target: EnvironmentId,
    release: ReleaseId,
    current: &HashMap<EnvironmentId, ReleaseId>,
) -> Result<StageVerdict, Error> {
    let mut ordered: Vec<&Environment> = envs.iter().collect();
    ordered.sort_by_key(|e| (e.position, e.id));
    let at = ordered.iter().position(|e| e.id == target).ok_or(Error::NotFound(EnvironmentId::KIND))?;
    let Some(previous) = at.checked_sub(1).map(|k| ordered[k].id) else {
        return Ok(StageVerdict::FirstStage);
    };
    if current.get(&previous) == Some(&release) {
        Ok(StageVerdict::Promotion { from: previous })
    } else {
        Ok(StageVerdict::SkipStage { previous })
    }
}

/// The exception a deployment needs: one of `environments` requested
/// together (more than one is a multi-environment deploy), at `stage`.
pub fn required_exception(stage: StageVerdict, environments: usize) -> Option<DeploymentException> {
    if environments > 1 {
        Some(DeploymentException::MultiEnvironment)
    } else if matches!(stage, StageVerdict::SkipStage { .. }) {
        Some(DeploymentException::SkipStage)
    } else {
        None
    }
}

/// Where a deployment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Recorded, not started.
    Pending,
    /// Gate and deploy command running.
    Running,
    /// Done.
    Succeeded,
    /// Gate or command failed.
    Failed,
    /// Stopped before it finished.
    Canceled,
}

/// What can happen to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentEvent {
    /// Start running.
    Start,
    /// Finished well.
    Succeed,
    /// Finished badly.
    Fail,
    /// Stopped.
    Cancel,
}

use DeploymentEvent as E;
use DeploymentState as S;

/// The SPEC §4 deployment table. Cancel is allowed while pending or running.
pub const DEPLOYMENT_EDGES: &[(S, E, S)] = &[
    (S::Pending, E::Start, S::Running),
    (S::Pending, E::Cancel, S::Canceled),
    (S::Running, E::Succeed, S::Succeeded),
    (S::Running, E::Fail, S::Failed),
    (S::Running, E::Cancel, S::Canceled),
];

impl StateMachine for DeploymentState {
    type Event = DeploymentEvent;
    const ENTITY: &'static str = "deployment";
    const STATES: &'static [Self] = &[S::Pending, S::Running, S::Succeeded, S::Failed, S::Canceled];
    const EVENTS: &'static [E] = &[E::Start, E::Succeed, E::Fail, E::Cancel];

    fn next(self, event: E) -> Option<Self> {
        DEPLOYMENT_EDGES.iter().find(|(f, e, _)| *f == self && *e == event).map(|(_, _, t)| *t)
    }
}

impl DeploymentState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            S::Pending => "pending",
            S::Running => "running",
            S::Succeeded => "succeeded",
            S::Failed => "failed",
            S::Canceled => "canceled",
        }
    }

    /// Parses the wire name (a `state` filter).
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::STATES.iter().copied().find(|st| st.as_str() == s).ok_or_else(|| {
            Error::invalid("state", "invalid_deployment_state", format!("unknown deployment state {s:?}"))
        })
    }
}

#[cfg(test)]
mod tests;
