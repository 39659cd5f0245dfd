//! Workspaces: the `WorkspaceStore` reads and the workspace mutations.
//!
//! Invariant: a branch is unique within its app (the schema's
//! `UNIQUE (app_id, branch)`), every lookup is filtered by app id, and an
//! update applies only over the version before it, within the same app.

use async_trait::async_trait;
use conman_core::domain::workspace::Workspace;
use conman_core::ids::{AppId, UserId, WorkspaceId};
use conman_core::ports::store::{Page, PageRequest, WorkspaceMutation, WorkspaceStore};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use crate::codec::{self, all, exists, flag, id, inserted, name_of, one, ts, Cols, Db as _};
use crate::unit_of_work::expect_cas;
use crate::SqliteStore;

macro_rules! workspace_columns {
    () => {
        "id, app_id, owner_id, branch, title, is_default, base_sha, commit_mode, created_at, updated_at, version"
    };
}

fn workspace(c: &Cols<'_, '_>) -> Result<Workspace, Error> {
    Ok(Workspace {
        id: c.id(0)?,
        app_id: c.id(1)?,
        owner_id: c.id(2)?,
        branch: c.text(3)?,
        title: c.opt_text(4)?,
        is_default: c.flag(5)?,
        base_sha: c.text(6)?,
        commit_mode: c.opt_named(7)?,
        created_at: c.ts(8)?,
        updated_at: c.ts(9)?,
        version: c.int(10)?,
    })
}

#[async_trait]
impl WorkspaceStore for SqliteStore {
    async fn workspace(&self, app_id: AppId, ws: WorkspaceId) -> Result<Option<Workspace>, Error> {
        self.read(move |conn| {
            one(
                conn,
                concat!("SELECT ", workspace_columns!(), " FROM workspaces WHERE id = ?1 AND app_id = ?2"),
                [id(ws.0), id(app_id.0)],
                workspace,
            )
        })
        .await
    }

    async fn default_workspace(&self, app_id: AppId, owner_id: UserId) -> Result<Option<Workspace>, Error> {
        self.read(move |conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    workspace_columns!(),
                    " FROM workspaces WHERE app_id = ?1 AND owner_id = ?2 AND is_default = 1
                      ORDER BY created_at, id LIMIT 1"
                ),
                [id(app_id.0), id(owner_id.0)],
                workspace,
            )
        })
        .await
    }

    async fn workspace_by_branch(&self, app_id: AppId, branch: &str) -> Result<Option<Workspace>, Error> {
        let branch = branch.to_owned();
        self.read(move |conn| {
            one(
                conn,
                concat!("SELECT ", workspace_columns!(), " FROM workspaces WHERE app_id = ?1 AND branch = ?2"),
                [id(app_id.0), branch],
                workspace,
            )
        })
        .await
    }

    async fn list_workspaces(
        &self,
        app_id: AppId,
        owner_id: Option<UserId>,
        page: PageRequest,
    ) -> Result<Page<Workspace>, Error> {
        self.read(move |conn| match owner_id {
            None => codec::page(
                conn,
                "SELECT COUNT(*) FROM workspaces WHERE app_id = ?",
                concat!(
                    "SELECT ",
                    workspace_columns!(),
                    " FROM workspaces WHERE app_id = ? ORDER BY created_at, id LIMIT ? OFFSET ?"
                ),
                vec![Value::Text(id(app_id.0))],
                page,
                workspace,
            ),
            Some(owner) => codec::page(
                conn,
                "SELECT COUNT(*) FROM workspaces WHERE app_id = ? AND owner_id = ?",
                concat!(
                    "SELECT ",
                    workspace_columns!(),
                    " FROM workspaces WHERE app_id = ? AND owner_id = ? ORDER BY created_at, id LIMIT ? OFFSET ?"
                ),
                vec![Value::Text(id(app_id.0)), Value::Text(id(owner.0))],
                page,
                workspace,
            ),
        })
        .await
    }

    async fn all_workspaces(&self) -> Result<Vec<Workspace>, Error> {
        self.read(move |conn| {
            all(
                conn,
                concat!("SELECT ", workspace_columns!(), " FROM workspaces ORDER BY app_id, created_at, id"),
                [],
                workspace,
            )
        })
        .await
    }
}

/// `InsertWorkspace`.
pub(crate) fn insert_workspace(conn: &Connection, w: &Workspace) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(concat!(
            "INSERT INTO workspaces (",
            workspace_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (id) DO NOTHING"
        ))
        .db()?
        .execute(params![
            id(w.id.0),
            id(w.app_id.0),
            id(w.owner_id.0),
            w.branch,
            w.title,
            flag(w.is_default),
            w.base_sha,
            w.commit_mode.as_ref().map(name_of).transpose()?,
            ts(&w.created_at),
            ts(&w.updated_at),
            w.version,
        ])
        .db()?;
    inserted(rows, conman_core::ports::store::Record::Workspace)
}

/// `UpdateWorkspace`: compare-and-set on `version`, within the workspace's app.
pub(crate) fn update_workspace(conn: &Connection, w: &Workspace) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE workspaces SET owner_id = ?3, branch = ?4, title = ?5, is_default = ?6, base_sha = ?7,
                commit_mode = ?8, created_at = ?9, updated_at = ?10, version = ?11
             WHERE id = ?1 AND app_id = ?2 AND version = ?11 - 1",
        )
        .db()?
        .execute(params![
            id(w.id.0),
            id(w.app_id.0),
            id(w.owner_id.0),
            w.branch,
            w.title,
            flag(w.is_default),
            w.base_sha,
            w.commit_mode.as_ref().map(name_of).transpose()?,
            ts(&w.created_at),
            ts(&w.updated_at),
            w.version,
        ])
        .db()?;
    expect_cas(changed, WorkspaceId::KIND, || {
        exists(conn, "SELECT 1 FROM workspaces WHERE id = ?1 AND app_id = ?2", [id(w.id.0), id(w.app_id.0)])
    })
}

/// Applies one workspace mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &WorkspaceMutation) -> Result<(), Error> {
    match mutation {
        WorkspaceMutation::InsertWorkspace(w) => insert_workspace(conn, w),
        WorkspaceMutation::UpdateWorkspace(w) => update_workspace(conn, w),
    }
}
