//! Deploy freeze windows: the `FreezeStore` reads and the freeze mutations,
//! mirroring the SQLite store's `freezes.rs`.
//!
//! Invariant: a window is stored whole as its JSON `body`, beside the
//! columns lookups and references need, written from the same value; it is
//! never updated, only inserted and deleted; every lookup and delete is
//! filtered by app id.

use async_trait::async_trait;
use conman_core::domain::freeze::FreezeWindow;
use conman_core::ids::{AppId, EnvironmentId, FreezeWindowId};
use conman_core::ports::store::{FreezeMutation, FreezeStore};
use conman_core::Error;
use sqlx::{query, PgConnection};

use crate::codec::{all, json, one, ts, Cols, Db as _};
use crate::PgStore;

fn window(c: &Cols<'_>) -> Result<FreezeWindow, Error> {
    c.json(0)
}

#[async_trait]
impl FreezeStore for PgStore {
    async fn freeze_windows(&self, app_id: AppId, environment_id: EnvironmentId) -> Result<Vec<FreezeWindow>, Error> {
        let sql = "SELECT body::text FROM freeze_windows WHERE environment_id = $1 AND app_id = $2
                   ORDER BY created_at, id";
        all(&self.pool, query(sql).bind(environment_id.0).bind(app_id.0), window).await
    }

    async fn freeze_window(&self, app_id: AppId, w: FreezeWindowId) -> Result<Option<FreezeWindow>, Error> {
        let sql = "SELECT body::text FROM freeze_windows WHERE id = $1 AND app_id = $2";
        one(&self.pool, query(sql).bind(w.0).bind(app_id.0), window).await
    }
}

/// `InsertFreezeWindow`.
async fn insert_window(conn: &mut PgConnection, w: &FreezeWindow) -> Result<(), Error> {
    let sql = "INSERT INTO freeze_windows (id, app_id, environment_id, created_by, created_at, body)
               VALUES ($1, $2, $3, $4, $5, $6::json)";
    query(sql)
        .bind(w.id.0)
        .bind(w.app_id.0)
        .bind(w.environment_id.0)
        .bind(w.created_by.0)
        .bind(ts(&w.created_at))
        .bind(json(w)?)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `DeleteFreezeWindow`: a window that is not there is `not_found`.
async fn delete_window(conn: &mut PgConnection, app_id: AppId, w: FreezeWindowId) -> Result<(), Error> {
    let deleted = query("DELETE FROM freeze_windows WHERE id = $1 AND app_id = $2")
        .bind(w.0)
        .bind(app_id.0)
        .execute(conn)
        .await
        .db()?
        .rows_affected();
    if deleted == 0 {
        return Err(Error::NotFound(FreezeWindowId::KIND));
    }
    Ok(())
}

/// Applies one freeze mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &FreezeMutation) -> Result<(), Error> {
    match mutation {
        FreezeMutation::InsertFreezeWindow(w) => insert_window(conn, w).await,
        FreezeMutation::DeleteFreezeWindow { app_id, id } => delete_window(conn, *app_id, *id).await,
    }
}
