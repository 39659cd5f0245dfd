//! Deploy freeze windows: the `FreezeStore` reads and the freeze mutations.
//!
//! Invariant: a window is stored whole as its JSON `body`, beside the
//! columns lookups and references need, written from the same value; it is
//! never updated, only inserted and deleted; every lookup and delete is
//! filtered by app id.

use async_trait::async_trait;
use conman_core::domain::freeze::FreezeWindow;
use conman_core::ids::{AppId, EnvironmentId, FreezeWindowId};
use conman_core::ports::store::{FreezeMutation, FreezeStore, Record};
use conman_core::Error;
use rusqlite::{params, Connection};

use crate::codec::{all, id, inserted, json, one, ts, Cols, Db as _};
use crate::SqliteStore;

fn window(c: &Cols<'_, '_>) -> Result<FreezeWindow, Error> {
    c.json(0)
}

#[async_trait]
impl FreezeStore for SqliteStore {
    async fn freeze_windows(&self, app_id: AppId, environment_id: EnvironmentId) -> Result<Vec<FreezeWindow>, Error> {
        self.read(move |conn| {
            all(
                conn,
                "SELECT body FROM freeze_windows WHERE environment_id = ?1 AND app_id = ?2 ORDER BY created_at, id",
                [id(environment_id.0), id(app_id.0)],
                window,
            )
        })
        .await
    }

    async fn freeze_window(&self, app_id: AppId, w: FreezeWindowId) -> Result<Option<FreezeWindow>, Error> {
        self.read(move |conn| {
            one(conn, "SELECT body FROM freeze_windows WHERE id = ?1 AND app_id = ?2", [id(w.0), id(app_id.0)], window)
        })
        .await
    }
}

/// `InsertFreezeWindow`.
fn insert_window(conn: &Connection, w: &FreezeWindow) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(
            "INSERT INTO freeze_windows (id, app_id, environment_id, created_by, created_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
        )
        .db()?
        .execute(params![
            id(w.id.0),
            id(w.app_id.0),
            id(w.environment_id.0),
            id(w.created_by.0),
            ts(&w.created_at),
            json(w)?
        ])
        .db()?;
    inserted(rows, Record::FreezeWindow)
}

/// `DeleteFreezeWindow`: a window that is not there is `not_found`.
fn delete_window(conn: &Connection, app_id: AppId, w: FreezeWindowId) -> Result<(), Error> {
    let deleted = conn
        .prepare_cached("DELETE FROM freeze_windows WHERE id = ?1 AND app_id = ?2")
        .db()?
        .execute([id(w.0), id(app_id.0)])
        .db()?;
    if deleted == 0 {
        return Err(Error::NotFound(FreezeWindowId::KIND));
    }
    Ok(())
}

/// Applies one freeze mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &FreezeMutation) -> Result<(), Error> {
    match mutation {
        FreezeMutation::InsertFreezeWindow(w) => insert_window(conn, w),
        FreezeMutation::DeleteFreezeWindow { app_id, id } => delete_window(conn, *app_id, *id),
    }
}
