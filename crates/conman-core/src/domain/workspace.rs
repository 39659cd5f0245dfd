//! Workspaces: a user's mutable branch of an app (SPEC §2.2, §5).
//!
//! Git mapping: the branch is `refs/heads/ws/<handle>/<slug>`; saved but not
//! yet committed edits live on the private ref `refs/conman/wip/<id>` whose
//! history starts at the branch head. The workspace's *head* is the WIP ref
//! when it exists, else the branch.

use serde::{Deserialize, Serialize};

use super::app::CommitMode;
use super::Timestamp;
use crate::ids::{AppId, UserId, WorkspaceId};
use crate::validation::{Handle, Slug};

/// A workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    /// Identity.
    pub id: WorkspaceId,
    /// Owning app.
    pub app_id: AppId,
    /// Owner.
    pub owner_id: UserId,
    /// Branch name without `refs/heads/` (`ws/<handle>/<slug>`), unique per app.
    pub branch: String,
    /// Optional title.
    pub title: Option<String>,
    /// The owner's default workspace for this app.
    pub is_default: bool,
    /// Commit the workspace was last based on (creation, reset or sync).
    pub base_sha: String,
    /// The owner's commit-mode choice; `None` follows the app default.
    pub commit_mode: Option<CommitMode>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Workspace {
    /// `ws/<handle>/<slug>`.
    pub fn branch_name(handle: &Handle, slug: &Slug) -> String {
        format!("ws/{}/{}", handle.as_str(), slug.as_str())
    }

    /// Full ref of the branch.
    pub fn branch_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// Full ref of the private work-in-progress ref.
    pub fn wip_ref(&self) -> String {
        format!("refs/conman/wip/{}", self.id)
    }

    /// The commit mode in force for this workspace.
    pub fn effective_commit_mode(&self, app_default: CommitMode) -> CommitMode {
        self.commit_mode.unwrap_or(app_default)
    }
}
