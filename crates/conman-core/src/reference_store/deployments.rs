//! Deployments (mirrors the SQL stores' `deployments`).

use async_trait::async_trait;

use super::{cas, page, reference, unique, ReferenceStore, State};
use crate::domain::deployment::{Deployment, DeploymentState};
use crate::error::Error;
use crate::ids::{AppId, DeploymentId, EnvironmentId};
use crate::ports::store::{
    DeploymentCount, DeploymentFilter, DeploymentMutation, DeploymentStore, Page, PageRequest, Record,
};

/// The deployments slice's collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Deployments {
    pub(crate) deployments: Vec<Deployment>,
}

impl Deployments {
    /// True when a deployment is on `environment_id` (it cannot be removed).
    pub(crate) fn refer_to(&self, environment_id: EnvironmentId) -> bool {
        self.deployments.iter().any(|d| d.environment_id == environment_id)
    }
}

#[async_trait]
impl DeploymentStore for ReferenceStore {
    async fn deployment(&self, app_id: AppId, id: DeploymentId) -> Result<Option<Deployment>, Error> {
        Ok(self.lock().deployments.deployments.iter().find(|d| d.id == id && d.app_id == app_id).cloned())
    }

    async fn list_deployments(
        &self,
        app_id: AppId,
        filter: &DeploymentFilter,
        request: PageRequest,
    ) -> Result<Page<Deployment>, Error> {
        let mut found: Vec<Deployment> = self
            .lock()
            .deployments
            .deployments
            .iter()
            .filter(|d| d.app_id == app_id && filter.matches(d))
            .cloned()
            .collect();
        found.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
        Ok(page(found, request))
    }

    async fn active_deployment(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, Error> {
        let state = self.lock();
        let found = state
            .deployments
            .deployments
            .iter()
            .find(|d| d.app_id == app_id && d.environment_id == environment_id && d.active);
        Ok(found.cloned())
    }

    async fn last_succeeded_deployment(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, Error> {
        let state = self.lock();
        let found = state
            .deployments
            .deployments
            .iter()
            .filter(|d| {
                d.app_id == app_id && d.environment_id == environment_id && d.state == DeploymentState::Succeeded
            })
            .max_by_key(|d| (d.finished_at, d.id));
        Ok(found.cloned())
    }

    async fn deployment_counts(&self) -> Result<Vec<DeploymentCount>, Error> {
        let mut counts = std::collections::BTreeMap::<_, (DeploymentState, u64)>::new();
        for d in &self.lock().deployments.deployments {
            counts.entry((d.app_id, d.environment_id, d.state.as_str())).or_insert((d.state, 0)).1 += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((app_id, environment_id, _), (state, count))| DeploymentCount {
                app_id,
                environment_id,
                state,
                count,
            })
            .collect())
    }
}

/// True when another deployment than `d` holds `d`'s environment while `d` would.
fn environment_taken(all: &[Deployment], d: &Deployment) -> bool {
    d.active && all.iter().any(|x| x.id != d.id && x.environment_id == d.environment_id && x.active)
}

fn insert_deployment(state: &mut State, d: &Deployment) -> Result<(), Error> {
    let all = &state.deployments.deployments;
    unique(all.iter().any(|x| x.id == d.id), Record::Deployment, "id")?;
    unique(environment_taken(all, d), Record::Deployment, "environment")?;
    reference(
        state.apps.exists(d.app_id)
            && state.profiles.environments.iter().any(|e| e.id == d.environment_id)
            && state.releases.releases.iter().any(|r| r.id == d.release_id)
            && state.users.exists(d.requested_by),
    )?;
    state.deployments.deployments.push(d.clone());
    Ok(())
}

fn update_deployment(state: &mut State, d: &Deployment) -> Result<(), Error> {
    let all = &mut state.deployments.deployments;
    let found = all.iter_mut().find(|x| x.id == d.id && x.app_id == d.app_id);
    cas(found, |x| x.version, d.version, DeploymentId::KIND)?;
    unique(environment_taken(all, d), Record::Deployment, "environment")?;
    let environment = state.profiles.environments.iter().any(|e| e.id == d.environment_id);
    let release = state.releases.releases.iter().any(|r| r.id == d.release_id);
    reference(environment && release && state.users.exists(d.requested_by))?;
    if let Some(row) = state.deployments.deployments.iter_mut().find(|x| x.id == d.id) {
        *row = d.clone();
    }
    Ok(())
}

/// Applies one deployment mutation.
pub(crate) fn apply(state: &mut State, mutation: &DeploymentMutation) -> Result<(), Error> {
    match mutation {
        DeploymentMutation::InsertDeployment(d) => insert_deployment(state, d),
        DeploymentMutation::UpdateDeployment(d) => update_deployment(state, d),
    }
}
