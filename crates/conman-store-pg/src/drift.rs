//! Drift baselines and migration records: the `DriftStore` reads and the
//! drift mutations, mirroring the SQLite store's `drift.rs`.
//!
//! Invariant: both are append-only — this file has no statement that
//! updates or deletes them; each row is stored whole as its JSON `body`
//! beside the columns lookups and references need, written from the same
//! value; every lookup is filtered by app id.

use async_trait::async_trait;
use conman_core::domain::drift::{EnvironmentValidation, MigrationExecution};
use conman_core::ids::{AppId, EnvironmentId};
use conman_core::ports::store::{DriftMutation, DriftStore, Page, PageRequest};
use conman_core::Error;
use sqlx::{query, PgConnection};

use crate::codec::{self, json, one, ts, Cols, Db as _};
use crate::PgStore;

fn validation(c: &Cols<'_>) -> Result<EnvironmentValidation, Error> {
    c.json(0)
}

fn migration(c: &Cols<'_>) -> Result<MigrationExecution, Error> {
    c.json(0)
}

#[async_trait]
impl DriftStore for PgStore {
    async fn last_validation(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<EnvironmentValidation>, Error> {
        let sql = "SELECT body::text FROM environment_validations WHERE environment_id = $1 AND app_id = $2
                   ORDER BY at DESC, id DESC LIMIT 1";
        one(&self.pool, query(sql).bind(environment_id.0).bind(app_id.0), validation).await
    }

    async fn migration_executions(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
        page: PageRequest,
    ) -> Result<Page<MigrationExecution>, Error> {
        codec::page(
            &self.pool,
            query("SELECT COUNT(*) FROM migration_executions WHERE environment_id = $1 AND app_id = $2")
                .bind(environment_id.0)
                .bind(app_id.0),
            query(
                "SELECT body::text FROM migration_executions WHERE environment_id = $1 AND app_id = $2
                 ORDER BY recorded_at DESC, id DESC LIMIT $3 OFFSET $4",
            )
            .bind(environment_id.0)
            .bind(app_id.0),
            page,
            migration,
        )
        .await
    }
}

/// `InsertValidation`.
async fn insert_validation(conn: &mut PgConnection, v: &EnvironmentValidation) -> Result<(), Error> {
    let sql = "INSERT INTO environment_validations (id, app_id, environment_id, at, body)
               VALUES ($1, $2, $3, $4, $5::json)";
    query(sql)
        .bind(v.id.0)
        .bind(v.app_id.0)
        .bind(v.environment_id.0)
        .bind(ts(&v.at))
        .bind(json(v)?)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `InsertMigrationExecution`.
async fn insert_migration(conn: &mut PgConnection, m: &MigrationExecution) -> Result<(), Error> {
    let sql =
        "INSERT INTO migration_executions (id, app_id, environment_id, release_id, deployment_id, recorded_at, body)
               VALUES ($1, $2, $3, $4, $5, $6, $7::json)";
    query(sql)
        .bind(m.id.0)
        .bind(m.app_id.0)
        .bind(m.environment_id.0)
        .bind(m.release_id.0)
        .bind(m.deployment_id.0)
        .bind(ts(&m.recorded_at))
        .bind(json(m)?)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Applies one drift mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &DriftMutation) -> Result<(), Error> {
    match mutation {
        DriftMutation::InsertValidation(v) => insert_validation(conn, v).await,
        DriftMutation::InsertMigrationExecution(m) => insert_migration(conn, m).await,
    }
}
