//! Deploy freeze windows: reads and mutations.
//!
//! Invariants every store keeps (pinned by `conformance::freezes`):
//! - a window is stored whole and read back equal; lookups are scoped by
//!   app;
//! - windows are never changed, only inserted and deleted; deleting a
//!   window that is not there (or is another app's) is `not_found`
//!   (`freeze_window`);
//! - a window refers to an existing app, environment and creating user
//!   (`missing_reference` otherwise), and an environment with windows
//!   cannot be removed (delete them in the same unit first);
//! - an environment's windows are listed oldest first (creation time, then
//!   id).

use async_trait::async_trait;

use crate::domain::freeze::FreezeWindow;
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId, FreezeWindowId};

/// A change to freeze windows.
#[derive(Debug, Clone, PartialEq)]
pub enum FreezeMutation {
    /// Insert a window.
    InsertFreezeWindow(FreezeWindow),
    /// Delete a window.
    DeleteFreezeWindow {
        /// Its app.
        app_id: AppId,
        /// The window.
        id: FreezeWindowId,
    },
}

/// Freeze windows.
#[async_trait]
pub trait FreezeStore: Send + Sync {
    /// The windows of an environment, oldest first.
    async fn freeze_windows(&self, app_id: AppId, environment_id: EnvironmentId) -> Result<Vec<FreezeWindow>, Error>;
    /// A window of an app.
    async fn freeze_window(&self, app_id: AppId, id: FreezeWindowId) -> Result<Option<FreezeWindow>, Error>;
}
