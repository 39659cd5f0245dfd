//! Drift baselines and migration records: the `DriftStore` reads and the
//! drift mutations.
//!
//! Invariant: both are append-only — this file has no statement that
//! updates or deletes them; each row is stored whole as its JSON `body`
//! beside the columns lookups and references need, written from the same
//! value; every lookup is filtered by app id.

use async_trait::async_trait;
use conman_core::domain::drift::{EnvironmentValidation, MigrationExecution};
use conman_core::ids::{AppId, EnvironmentId};
use conman_core::ports::store::{DriftMutation, DriftStore, Page, PageRequest, Record};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use crate::codec::{self, id, inserted, json, one, ts, Cols, Db as _};
use crate::SqliteStore;

fn validation(c: &Cols<'_, '_>) -> Result<EnvironmentValidation, Error> {
    c.json(0)
}

fn migration(c: &Cols<'_, '_>) -> Result<MigrationExecution, Error> {
    c.json(0)
}

#[async_trait]
impl DriftStore for SqliteStore {
    async fn last_validation(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<EnvironmentValidation>, Error> {
        self.read(move |conn| {
            one(
                conn,
                "SELECT body FROM environment_validations WHERE environment_id = ?1 AND app_id = ?2
                 ORDER BY at DESC, id DESC LIMIT 1",
                [id(environment_id.0), id(app_id.0)],
                validation,
            )
        })
        .await
    }

    async fn migration_executions(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
        page: PageRequest,
    ) -> Result<Page<MigrationExecution>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM migration_executions WHERE environment_id = ? AND app_id = ?",
                "SELECT body FROM migration_executions WHERE environment_id = ? AND app_id = ?
                 ORDER BY recorded_at DESC, id DESC LIMIT ? OFFSET ?",
                vec![Value::Text(id(environment_id.0)), Value::Text(id(app_id.0))],
                page,
                migration,
            )
        })
        .await
    }
}

/// `InsertValidation`.
fn insert_validation(conn: &Connection, v: &EnvironmentValidation) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(
            "INSERT INTO environment_validations (id, app_id, environment_id, at, body)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
        )
        .db()?
        .execute(params![id(v.id.0), id(v.app_id.0), id(v.environment_id.0), ts(&v.at), json(v)?])
        .db()?;
    inserted(rows, Record::EnvironmentValidation)
}

/// `InsertMigrationExecution`.
fn insert_migration(conn: &Connection, m: &MigrationExecution) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(
            "INSERT INTO migration_executions (id, app_id, environment_id, release_id, deployment_id, recorded_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
        )
        .db()?
        .execute(params![
            id(m.id.0),
            id(m.app_id.0),
            id(m.environment_id.0),
            id(m.release_id.0),
            id(m.deployment_id.0),
            ts(&m.recorded_at),
            json(m)?,
        ])
        .db()?;
    inserted(rows, Record::MigrationExecution)
}

/// Applies one drift mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &DriftMutation) -> Result<(), Error> {
    match mutation {
        DriftMutation::InsertValidation(v) => insert_validation(conn, v),
        DriftMutation::InsertMigrationExecution(m) => insert_migration(conn, m),
    }
}
