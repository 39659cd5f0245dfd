//! Workspaces: reads and mutations.

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::workspace::Workspace;
use crate::error::Error;
use crate::ids::{AppId, UserId, WorkspaceId};

/// A change to workspaces.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkspaceMutation {
    /// Insert a workspace (branch unique per app).
    InsertWorkspace(Workspace),
    /// Update a workspace (CAS on version).
    UpdateWorkspace(Workspace),
}

/// Workspaces.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// A workspace of an app.
    async fn workspace(&self, app_id: AppId, id: WorkspaceId) -> Result<Option<Workspace>, Error>;
    /// The owner's default workspace of an app.
    async fn default_workspace(&self, app_id: AppId, owner_id: UserId) -> Result<Option<Workspace>, Error>;
    /// A workspace by branch name.
    async fn workspace_by_branch(&self, app_id: AppId, branch: &str) -> Result<Option<Workspace>, Error>;
    /// Workspaces of an app, optionally of one owner, oldest first.
    async fn list_workspaces(
        &self,
        app_id: AppId,
        owner_id: Option<UserId>,
        page: PageRequest,
    ) -> Result<Page<Workspace>, Error>;
    /// Every workspace of every app (for crash reconciliation at start).
    async fn all_workspaces(&self) -> Result<Vec<Workspace>, Error>;
}
