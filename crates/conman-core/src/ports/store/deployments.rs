//! Deployments: reads and mutations.
//!
//! Invariants every store keeps (pinned by `conformance::deployments`):
//! - a deployment is stored whole and read back equal; lookups are scoped
//!   by app;
//! - `UpdateDeployment` is a compare-and-swap on `version`
//!   ([`ConflictReason::StaleVersion`](super::ConflictReason::StaleVersion));
//! - at most one deployment per environment is `active`, enforced by the
//!   store itself (a unique partial index), never by a read before the
//!   write: inserting or updating a second active deployment of an
//!   environment is [`ConflictReason::Taken`](super::ConflictReason::Taken)
//!   (`environment`) and the whole unit is refused — so of two deploys
//!   racing for one environment exactly one holds it;
//! - a deployment refers to an existing app, environment, release and
//!   requesting user (`missing_reference` otherwise), and an environment
//!   with deployments cannot be removed;
//! - listings are newest first (creation time, then id, descending); the
//!   last succeeded deployment of an environment is the one that finished
//!   last (then the highest id).

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::deployment::{Deployment, DeploymentState};
use crate::error::Error;
use crate::ids::{AppId, DeploymentId, EnvironmentId, ReleaseId};

/// Filter of the deployment listing; every set field must match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeploymentFilter {
    /// Only this environment.
    pub environment_id: Option<EnvironmentId>,
    /// Only this state.
    pub state: Option<DeploymentState>,
    /// Only this release.
    pub release_id: Option<ReleaseId>,
    /// Only deployments requested together under this group.
    pub group_id: Option<DeploymentId>,
}

impl DeploymentFilter {
    /// True when `d` matches.
    pub fn matches(&self, d: &Deployment) -> bool {
        self.environment_id.is_none_or(|e| d.environment_id == e)
            && self.state.is_none_or(|s| d.state == s)
            && self.release_id.is_none_or(|r| d.release_id == r)
            && self.group_id.is_none_or(|g| d.group_id == Some(g))
    }
}

/// How many deployments an environment has in one state (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentCount {
    /// The app.
    pub app_id: AppId,
    /// The environment.
    pub environment_id: EnvironmentId,
    /// The state.
    pub state: DeploymentState,
    /// How many (never 0: pairs with none are left out).
    pub count: u64,
}

/// A change to deployments.
#[derive(Debug, Clone, PartialEq)]
pub enum DeploymentMutation {
    /// Insert a deployment.
    InsertDeployment(Deployment),
    /// Update a deployment (CAS on version).
    UpdateDeployment(Deployment),
}

/// Deployments.
#[async_trait]
pub trait DeploymentStore: Send + Sync {
    /// A deployment of an app.
    async fn deployment(&self, app_id: AppId, id: DeploymentId) -> Result<Option<Deployment>, Error>;
    /// Deployments of an app matching `filter`, newest first.
    async fn list_deployments(
        &self,
        app_id: AppId,
        filter: &DeploymentFilter,
        page: PageRequest,
    ) -> Result<Page<Deployment>, Error>;
    /// The deployment holding an environment (`active`), if any.
    async fn active_deployment(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, Error>;
    /// The environment's succeeded deployment that finished last, if any:
    /// what the environment runs.
    async fn last_succeeded_deployment(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, Error>;
    /// How many deployments every environment of every app has in each
    /// state, ordered by app id, environment id and state wire name: the
    /// deployments-by-outcome metric.
    async fn deployment_counts(&self) -> Result<Vec<DeploymentCount>, Error>;
}
