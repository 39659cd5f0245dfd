//! Environments (SPEC §2.5): the ordered list of an app's deploy stages,
//! read by members and replaced whole by `app_admin`.
//!
//! Invariants: a stored list always passes `validate_environment_list`
//! (unique names, unique positions, exactly one canonical when non-empty);
//! every referenced runtime profile is a persistent profile of the same
//! app; an environment keeps its id when its name is kept, so deployments
//! refer to it; an environment with deployment history is never removed
//! (refused with `conflict`; the store's foreign keys refuse it too); the
//! replacement and its audit entry are one unit of work.

use super::{Actor, AuditWhat, Conman};
use crate::domain::environment::{validate_environment_list, Environment};
use crate::domain::runtime_profile::ProfileKind;
use crate::error::Error;
use crate::ids::{AppId, RuntimeProfileId};
use crate::ports::store::{DeploymentFilter, PageRequest, ProfileMutation, UnitOfWork};
use crate::rbac::Capability;

/// One environment of a replacement list (the wire form is
/// `conman_api::dto::EnvironmentInputDto`).
#[derive(Debug, Clone)]
pub struct EnvironmentInput {
    /// Name (lowercase slug, unique).
    pub name: String,
    /// Order, from 0.
    pub position: u32,
    /// The user-facing environment.
    pub is_canonical: bool,
    /// Its runtime profile.
    pub runtime_profile_id: Option<RuntimeProfileId>,
}

impl Conman {
    /// An app's environments, by position.
    pub async fn list_environments(&self, actor: &Actor, app_id: AppId) -> Result<Vec<Environment>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().environments(app_id).await
    }

    /// Replaces the app's environment list (app admins). Environments are
    /// matched to existing ones by name, keeping their ids.
    pub async fn replace_environments(
        &self,
        actor: &Actor,
        app_id: AppId,
        input: Vec<EnvironmentInput>,
    ) -> Result<Vec<Environment>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageSettings, None)?;
        let current = self.store().environments(app_id).await?;
        let mut next = Vec::with_capacity(input.len());
        for env in input {
            if let Some(profile_id) = env.runtime_profile_id {
                let profile = self.store().runtime_profile(app_id, profile_id).await?.ok_or_else(|| {
                    Error::invalid(
                        "runtime_profile_id",
                        "unknown_profile",
                        format!("runtime profile {profile_id} does not exist in this app"),
                    )
                })?;
                if profile.kind != ProfileKind::PersistentEnv {
                    return Err(Error::invalid(
                        "runtime_profile_id",
                        "not_persistent",
                        format!("environment {:?} needs a persistent_env profile", env.name),
                    ));
                }
            }
            let id = current.iter().find(|e| e.name == env.name).map_or_else(|| self.new_id(), |e| e.id);
            next.push(Environment {
                id,
                app_id,
                name: env.name,
                position: env.position,
                is_canonical: env.is_canonical,
                runtime_profile_id: env.runtime_profile_id,
            });
        }
        next.sort_by_key(|e| e.position);
        validate_environment_list(&next)?;
        if next == current {
            return Ok(current);
        }
        for removed in current.iter().filter(|e| !next.iter().any(|n| n.id == e.id)) {
            let filter = DeploymentFilter { environment_id: Some(removed.id), ..Default::default() };
            let history = self.store().list_deployments(app_id, &filter, PageRequest { page: 1, limit: 1 }).await?;
            if history.total > 0 || !history.items.is_empty() {
                return Err(Error::Conflict {
                    message: format!(
                        "environment {} has deployment history and cannot be removed: keep it in \
                         the list",
                        removed.name
                    ),
                    details: Some(serde_json::json!({ "reason": "has_deployments", "environment": removed.name })),
                });
            }
        }
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("app", app_id, "environments.replaced").before(&current).after(&next),
        );
        let unit = UnitOfWork::new()
            .record(ProfileMutation::ReplaceEnvironments { app_id, environments: next.clone() }, audit);
        self.store().commit(unit).await?;
        Ok(next)
    }
}
