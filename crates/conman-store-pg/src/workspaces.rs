//! Workspaces: the `WorkspaceStore` reads and the workspace mutations.
//!
//! Invariant: a branch is unique within its app (the schema's
//! `workspaces_branch_key`), every lookup is filtered by app id, and an
//! update applies only over the version before it, within the same app.

use async_trait::async_trait;
use conman_core::domain::workspace::Workspace;
use conman_core::ids::{AppId, UserId, WorkspaceId};
use conman_core::ports::store::{Page, PageRequest, WorkspaceMutation, WorkspaceStore};
use conman_core::Error;
use sqlx::{query, PgConnection};

use crate::codec::{self, all, name_of, one, ts, Cols, Db as _, PgQuery};
use crate::unit_of_work::expect_cas;
use crate::PgStore;

macro_rules! workspace_columns {
    () => {
        "id, app_id, owner_id, branch, title, is_default, base_sha, commit_mode, created_at, updated_at, version"
    };
}

fn workspace(c: &Cols<'_>) -> Result<Workspace, Error> {
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
impl WorkspaceStore for PgStore {
    async fn workspace(&self, app_id: AppId, ws: WorkspaceId) -> Result<Option<Workspace>, Error> {
        let sql = concat!("SELECT ", workspace_columns!(), " FROM workspaces WHERE id = $1 AND app_id = $2");
        one(&self.pool, query(sql).bind(ws.0).bind(app_id.0), workspace).await
    }

    async fn default_workspace(&self, app_id: AppId, owner_id: UserId) -> Result<Option<Workspace>, Error> {
        let sql = concat!(
            "SELECT ",
            workspace_columns!(),
            " FROM workspaces WHERE app_id = $1 AND owner_id = $2 AND is_default
              ORDER BY created_at, id LIMIT 1"
        );
        one(&self.pool, query(sql).bind(app_id.0).bind(owner_id.0), workspace).await
    }

    async fn workspace_by_branch(&self, app_id: AppId, branch: &str) -> Result<Option<Workspace>, Error> {
        let sql = concat!("SELECT ", workspace_columns!(), " FROM workspaces WHERE app_id = $1 AND branch = $2");
        one(&self.pool, query(sql).bind(app_id.0).bind(branch), workspace).await
    }

    async fn list_workspaces(
        &self,
        app_id: AppId,
        owner_id: Option<UserId>,
        page: PageRequest,
    ) -> Result<Page<Workspace>, Error> {
        match owner_id {
            None => {
                codec::page(
                    &self.pool,
                    query("SELECT COUNT(*) FROM workspaces WHERE app_id = $1").bind(app_id.0),
                    query(concat!(
                        "SELECT ",
                        workspace_columns!(),
                        " FROM workspaces WHERE app_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
                    ))
                    .bind(app_id.0),
                    page,
                    workspace,
                )
                .await
            }
            Some(owner) => {
                codec::page(
                    &self.pool,
                    query("SELECT COUNT(*) FROM workspaces WHERE app_id = $1 AND owner_id = $2")
                        .bind(app_id.0)
                        .bind(owner.0),
                    query(concat!(
                        "SELECT ",
                        workspace_columns!(),
                        " FROM workspaces WHERE app_id = $1 AND owner_id = $2
                          ORDER BY created_at, id LIMIT $3 OFFSET $4"
                    ))
                    .bind(app_id.0)
                    .bind(owner.0),
                    page,
                    workspace,
                )
                .await
            }
        }
    }

    async fn all_workspaces(&self) -> Result<Vec<Workspace>, Error> {
        let sql = concat!("SELECT ", workspace_columns!(), " FROM workspaces ORDER BY app_id, created_at, id");
        all(&self.pool, query(sql), workspace).await
    }
}

/// Binds the eleven workspace columns, in [`workspace_columns!`] order.
fn bind_workspace<'q>(q: PgQuery<'q>, w: &'q Workspace) -> Result<PgQuery<'q>, Error> {
    Ok(q.bind(w.id.0)
        .bind(w.app_id.0)
        .bind(w.owner_id.0)
        .bind(&w.branch)
        .bind(&w.title)
        .bind(w.is_default)
        .bind(&w.base_sha)
        .bind(w.commit_mode.as_ref().map(name_of).transpose()?)
        .bind(ts(&w.created_at))
        .bind(ts(&w.updated_at))
        .bind(w.version))
}

/// `InsertWorkspace`.
pub(crate) async fn insert_workspace(conn: &mut PgConnection, w: &Workspace) -> Result<(), Error> {
    let sql = concat!(
        "INSERT INTO workspaces (",
        workspace_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    bind_workspace(query(sql), w)?.execute(conn).await.db()?;
    Ok(())
}

/// `UpdateWorkspace`: compare-and-set on `version`, within the workspace's app.
pub(crate) async fn update_workspace(conn: &mut PgConnection, w: &Workspace) -> Result<(), Error> {
    let sql = "UPDATE workspaces SET owner_id = $3, branch = $4, title = $5, is_default = $6, base_sha = $7,
                   commit_mode = $8, created_at = $9, updated_at = $10, version = $11
               WHERE id = $1 AND app_id = $2 AND version = $11 - 1";
    let changed = bind_workspace(query(sql), w)?.execute(&mut *conn).await.db()?.rows_affected();
    let exists = query("SELECT 1 FROM workspaces WHERE id = $1 AND app_id = $2").bind(w.id.0).bind(w.app_id.0);
    expect_cas(conn, changed, WorkspaceId::KIND, exists).await
}

/// Applies one workspace mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &WorkspaceMutation) -> Result<(), Error> {
    match mutation {
        WorkspaceMutation::InsertWorkspace(w) => insert_workspace(conn, w).await,
        WorkspaceMutation::UpdateWorkspace(w) => update_workspace(conn, w).await,
    }
}
