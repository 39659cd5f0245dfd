//! Drift baselines and migration records (mirrors the SQL stores'
//! `environment_validations` and `migration_executions`).

use async_trait::async_trait;

use super::{page, reference, unique, ReferenceStore, State};
use crate::domain::drift::{EnvironmentValidation, MigrationExecution};
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId};
use crate::ports::store::{DriftMutation, DriftStore, Page, PageRequest, Record};

/// The drift slice's collections (append-only).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Drift {
    pub(crate) validations: Vec<EnvironmentValidation>,
    pub(crate) migrations: Vec<MigrationExecution>,
}

impl Drift {
    /// True when a record is on `environment_id` (it cannot be removed).
    pub(crate) fn refer_to(&self, environment_id: EnvironmentId) -> bool {
        self.validations.iter().any(|v| v.environment_id == environment_id)
            || self.migrations.iter().any(|m| m.environment_id == environment_id)
    }
}

#[async_trait]
impl DriftStore for ReferenceStore {
    async fn last_validation(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<EnvironmentValidation>, Error> {
        let state = self.lock();
        let found = state
            .drift
            .validations
            .iter()
            .filter(|v| v.app_id == app_id && v.environment_id == environment_id)
            .max_by_key(|v| (v.at, v.id));
        Ok(found.cloned())
    }

    async fn migration_executions(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
        request: PageRequest,
    ) -> Result<Page<MigrationExecution>, Error> {
        let mut found: Vec<MigrationExecution> = self
            .lock()
            .drift
            .migrations
            .iter()
            .filter(|m| m.app_id == app_id && m.environment_id == environment_id)
            .cloned()
            .collect();
        found.sort_by_key(|m| std::cmp::Reverse((m.recorded_at, m.id)));
        Ok(page(found, request))
    }
}

fn environment_exists(state: &State, id: EnvironmentId) -> bool {
    state.profiles.environments.iter().any(|e| e.id == id)
}

fn insert_validation(state: &mut State, v: &EnvironmentValidation) -> Result<(), Error> {
    unique(state.drift.validations.iter().any(|x| x.id == v.id), Record::EnvironmentValidation, "id")?;
    reference(state.apps.exists(v.app_id) && environment_exists(state, v.environment_id))?;
    state.drift.validations.push(v.clone());
    Ok(())
}

fn insert_migration(state: &mut State, m: &MigrationExecution) -> Result<(), Error> {
    unique(state.drift.migrations.iter().any(|x| x.id == m.id), Record::MigrationExecution, "id")?;
    reference(
        state.apps.exists(m.app_id)
            && environment_exists(state, m.environment_id)
            && state.releases.releases.iter().any(|r| r.id == m.release_id)
            && state.deployments.deployments.iter().any(|d| d.id == m.deployment_id),
    )?;
    state.drift.migrations.push(m.clone());
    Ok(())
}

/// Applies one drift mutation.
pub(crate) fn apply(state: &mut State, mutation: &DriftMutation) -> Result<(), Error> {
    match mutation {
        DriftMutation::InsertValidation(v) => insert_validation(state, v),
        DriftMutation::InsertMigrationExecution(m) => insert_migration(state, m),
    }
}
