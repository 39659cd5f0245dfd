//! Deploy freeze windows (mirrors the SQL stores' `freeze_windows`).

use async_trait::async_trait;

use super::{reference, unique, ReferenceStore, State};
use crate::domain::freeze::FreezeWindow;
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId, FreezeWindowId};
use crate::ports::store::{FreezeMutation, FreezeStore, Record};

/// The freeze slice's collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Freezes {
    pub(crate) windows: Vec<FreezeWindow>,
}

impl Freezes {
    /// True when a window is on `environment_id` (it cannot be removed).
    pub(crate) fn refer_to(&self, environment_id: EnvironmentId) -> bool {
        self.windows.iter().any(|w| w.environment_id == environment_id)
    }
}

#[async_trait]
impl FreezeStore for ReferenceStore {
    async fn freeze_windows(&self, app_id: AppId, environment_id: EnvironmentId) -> Result<Vec<FreezeWindow>, Error> {
        let mut found: Vec<FreezeWindow> = self
            .lock()
            .freezes
            .windows
            .iter()
            .filter(|w| w.app_id == app_id && w.environment_id == environment_id)
            .cloned()
            .collect();
        found.sort_by_key(|w| (w.created_at, w.id));
        Ok(found)
    }

    async fn freeze_window(&self, app_id: AppId, id: FreezeWindowId) -> Result<Option<FreezeWindow>, Error> {
        Ok(self.lock().freezes.windows.iter().find(|w| w.id == id && w.app_id == app_id).cloned())
    }
}

fn insert_window(state: &mut State, w: &FreezeWindow) -> Result<(), Error> {
    unique(state.freezes.windows.iter().any(|x| x.id == w.id), Record::FreezeWindow, "id")?;
    reference(
        state.apps.exists(w.app_id)
            && state.profiles.environments.iter().any(|e| e.id == w.environment_id)
            && state.users.exists(w.created_by),
    )?;
    state.freezes.windows.push(w.clone());
    Ok(())
}

fn delete_window(state: &mut State, app_id: AppId, id: FreezeWindowId) -> Result<(), Error> {
    let windows = &mut state.freezes.windows;
    let before = windows.len();
    windows.retain(|w| !(w.id == id && w.app_id == app_id));
    if windows.len() == before {
        return Err(Error::NotFound(FreezeWindowId::KIND));
    }
    Ok(())
}

/// Applies one freeze mutation.
pub(crate) fn apply(state: &mut State, mutation: &FreezeMutation) -> Result<(), Error> {
    match mutation {
        FreezeMutation::InsertFreezeWindow(w) => insert_window(state, w),
        FreezeMutation::DeleteFreezeWindow { app_id, id } => delete_window(state, *app_id, *id),
    }
}
