//! Workspaces (mirrors the SQL stores' `workspaces`).

use async_trait::async_trait;

use super::{cas, page, reference, unique, ReferenceStore, State};
use crate::domain::workspace::Workspace;
use crate::error::Error;
use crate::ids::{AppId, UserId, WorkspaceId};
use crate::ports::store::{Page, PageRequest, Record, WorkspaceMutation, WorkspaceStore};

/// The workspaces slice's collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Workspaces {
    pub(crate) workspaces: Vec<Workspace>,
}

fn oldest_first(found: &mut [Workspace]) {
    found.sort_by_key(|x| (x.created_at, x.id));
}

#[async_trait]
impl WorkspaceStore for ReferenceStore {
    async fn workspace(&self, app_id: AppId, id: WorkspaceId) -> Result<Option<Workspace>, Error> {
        Ok(self.lock().workspaces.workspaces.iter().find(|w| w.id == id && w.app_id == app_id).cloned())
    }

    async fn default_workspace(&self, app_id: AppId, owner_id: UserId) -> Result<Option<Workspace>, Error> {
        let state = self.lock();
        let mut found: Vec<Workspace> = state
            .workspaces
            .workspaces
            .iter()
            .filter(|w| w.app_id == app_id && w.owner_id == owner_id && w.is_default)
            .cloned()
            .collect();
        oldest_first(&mut found);
        Ok(found.into_iter().next())
    }

    async fn workspace_by_branch(&self, app_id: AppId, branch: &str) -> Result<Option<Workspace>, Error> {
        Ok(self.lock().workspaces.workspaces.iter().find(|w| w.app_id == app_id && w.branch == branch).cloned())
    }

    async fn list_workspaces(
        &self,
        app_id: AppId,
        owner_id: Option<UserId>,
        request: PageRequest,
    ) -> Result<Page<Workspace>, Error> {
        let mut found: Vec<Workspace> = self
            .lock()
            .workspaces
            .workspaces
            .iter()
            .filter(|w| w.app_id == app_id && owner_id.is_none_or(|o| w.owner_id == o))
            .cloned()
            .collect();
        oldest_first(&mut found);
        Ok(page(found, request))
    }

    async fn all_workspaces(&self) -> Result<Vec<Workspace>, Error> {
        let mut found = self.lock().workspaces.workspaces.clone();
        found.sort_by_key(|x| (x.app_id, x.created_at, x.id));
        Ok(found)
    }
}

fn insert_workspace(state: &mut State, w: &Workspace) -> Result<(), Error> {
    let all = &state.workspaces.workspaces;
    unique(all.iter().any(|x| x.id == w.id), Record::Workspace, "id")?;
    unique(all.iter().any(|x| x.app_id == w.app_id && x.branch == w.branch), Record::Workspace, "branch")?;
    reference(state.apps.exists(w.app_id) && state.users.exists(w.owner_id))?;
    state.workspaces.workspaces.push(w.clone());
    Ok(())
}

fn update_workspace(state: &mut State, w: &Workspace) -> Result<(), Error> {
    let all = &mut state.workspaces.workspaces;
    let found = all.iter_mut().find(|x| x.id == w.id && x.app_id == w.app_id);
    cas(found, |x| x.version, w.version, WorkspaceId::KIND)?;
    let taken = all.iter().any(|x| x.id != w.id && x.app_id == w.app_id && x.branch == w.branch);
    unique(taken, Record::Workspace, "branch")?;
    reference(state.users.exists(w.owner_id))?;
    if let Some(row) = state.workspaces.workspaces.iter_mut().find(|x| x.id == w.id) {
        *row = w.clone();
    }
    Ok(())
}

/// Applies one workspace mutation.
pub(crate) fn apply(state: &mut State, mutation: &WorkspaceMutation) -> Result<(), Error> {
    match mutation {
        WorkspaceMutation::InsertWorkspace(w) => insert_workspace(state, w),
        WorkspaceMutation::UpdateWorkspace(w) => update_workspace(state, w),
    }
}
