//! Deploy freeze windows (issue 14): per-environment windows during which
//! deploys are refused unless an `app_admin` overrides with a reason.
//!
//! Invariants: only `app_admin` creates and removes windows (they are app
//! settings); every member reads them; a stored window passed
//! [`FreezeWindow::validate`] and names an environment of its app; each
//! creation and removal is one unit with its audit entry. The refusal
//! itself lives with the deploy requests (`deployments.rs`).

use super::{Actor, AuditWhat, Conman};
use crate::domain::freeze::{FreezeSchedule, FreezeWindow};
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId, FreezeWindowId};
use crate::ports::store::{FreezeMutation, UnitOfWork};
use crate::rbac::Capability;

impl Conman {
    /// The freeze windows of an environment. Every member.
    pub async fn list_freeze_windows(
        &self,
        actor: &Actor,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Vec<FreezeWindow>, Error> {
        self.app_scope(actor, app_id).await?.require(Capability::Read, None)?;
        self.environment(app_id, environment_id).await?;
        self.store().freeze_windows(app_id, environment_id).await
    }

    /// Adds a freeze window to an environment. App admins.
    pub async fn create_freeze_window(
        &self,
        actor: &Actor,
        app_id: AppId,
        environment_id: EnvironmentId,
        schedule: FreezeSchedule,
        reason: &str,
    ) -> Result<FreezeWindow, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageSettings, None)?;
        let env = self.environment(app_id, environment_id).await?;
        let window = FreezeWindow {
            id: self.new_id(),
            app_id,
            environment_id: env.id,
            schedule,
            reason: reason.trim().to_owned(),
            created_by: actor.user.id,
            created_at: self.now(),
        };
        window.validate()?;
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("freeze_window", window.id, "freeze_window.created").after(&window),
        );
        self.store()
            .commit(UnitOfWork::new().record(FreezeMutation::InsertFreezeWindow(window.clone()), audit))
            .await?;
        Ok(window)
    }

    /// Removes a freeze window. App admins.
    pub async fn delete_freeze_window(&self, actor: &Actor, app_id: AppId, id: FreezeWindowId) -> Result<(), Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageSettings, None)?;
        let window = self.store().freeze_window(app_id, id).await?.ok_or(Error::NotFound("freeze window"))?;
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("freeze_window", id, "freeze_window.deleted").before(&window),
        );
        self.store().commit(UnitOfWork::new().record(FreezeMutation::DeleteFreezeWindow { app_id, id }, audit)).await
    }
}
