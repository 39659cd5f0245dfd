//! Deployments: the `DeploymentStore` reads and the deployment mutations.
//!
//! Invariant: a deployment is stored whole as its JSON `body`; the indexed
//! columns (`environment_id`, `release_id`, `group_id`, `state`, `active`,
//! `requested_by`, `created_at`, `finished_at`, `version`) are written from
//! the same value by the same statement, so they never disagree with it.
//! At most one deployment per environment is active — the schema's partial
//! unique index `deployments_one_active_per_environment`, checked by SQLite
//! as the row is written; every lookup is filtered by app id; an update
//! applies only over the version before it.

use async_trait::async_trait;
use conman_core::domain::deployment::{Deployment, DeploymentState};
use conman_core::ids::{AppId, DeploymentId, EnvironmentId};
use conman_core::ports::store::{
    DeploymentCount, DeploymentFilter, DeploymentMutation, DeploymentStore, Page, PageRequest, Record,
};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use crate::codec::{self, all, exists, flag, id, inserted, json, name_of, one, opt_id, opt_ts, ts, Cols, Db as _};
use crate::unit_of_work::expect_cas;
use crate::SqliteStore;

fn deployment(c: &Cols<'_, '_>) -> Result<Deployment, Error> {
    c.json(0)
}

/// The listing's filter: each `?` is either NULL (no filter) or the value.
const FILTERED: &str = "app_id = ? AND (?2 IS NULL OR environment_id = ?2) AND (?3 IS NULL OR state = ?3)
     AND (?4 IS NULL OR release_id = ?4) AND (?5 IS NULL OR group_id = ?5)";

#[async_trait]
impl DeploymentStore for SqliteStore {
    async fn deployment(&self, app_id: AppId, dep: DeploymentId) -> Result<Option<Deployment>, Error> {
        self.read(move |conn| {
            one(
                conn,
                "SELECT body FROM deployments WHERE id = ?1 AND app_id = ?2",
                [id(dep.0), id(app_id.0)],
                deployment,
            )
        })
        .await
    }

    async fn list_deployments(
        &self,
        app_id: AppId,
        filter: &DeploymentFilter,
        page: PageRequest,
    ) -> Result<Page<Deployment>, Error> {
        let text = |v: Option<String>| v.map_or(Value::Null, Value::Text);
        let params = vec![
            Value::Text(id(app_id.0)),
            text(opt_id(filter.environment_id.map(|e| e.0))),
            text(filter.state.map(|s| s.as_str().to_owned())),
            text(opt_id(filter.release_id.map(|r| r.0))),
            text(opt_id(filter.group_id.map(|g| g.0))),
        ];
        self.read(move |conn| {
            codec::page(
                conn,
                &format!("SELECT COUNT(*) FROM deployments WHERE {FILTERED}"),
                &format!(
                    "SELECT body FROM deployments WHERE {FILTERED} ORDER BY created_at DESC, id DESC LIMIT ?6 OFFSET ?7"
                ),
                params,
                page,
                deployment,
            )
        })
        .await
    }

    async fn active_deployment(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, Error> {
        self.read(move |conn| {
            one(
                conn,
                "SELECT body FROM deployments WHERE environment_id = ?1 AND app_id = ?2 AND active = 1",
                [id(environment_id.0), id(app_id.0)],
                deployment,
            )
        })
        .await
    }

    async fn last_succeeded_deployment(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, Error> {
        self.read(move |conn| {
            // NULLs sort last in descending order, as in the other stores.
            one(
                conn,
                "SELECT body FROM deployments
                 WHERE environment_id = ?1 AND app_id = ?2 AND state = 'succeeded'
                 ORDER BY finished_at DESC, id DESC LIMIT 1",
                [id(environment_id.0), id(app_id.0)],
                deployment,
            )
        })
        .await
    }

    async fn deployment_counts(&self) -> Result<Vec<DeploymentCount>, Error> {
        self.read(move |conn| {
            all(
                conn,
                "SELECT app_id, environment_id, state, COUNT(*) FROM deployments
                 GROUP BY app_id, environment_id, state ORDER BY app_id, environment_id, state",
                [],
                |c| {
                    let state =
                        DeploymentState::parse(&c.text(2)?).map_err(|e| Error::internal(format!("state: {e}")))?;
                    Ok(DeploymentCount { app_id: c.id(0)?, environment_id: c.id(1)?, state, count: c.count(3)? })
                },
            )
        })
        .await
    }
}

/// `InsertDeployment`.
fn insert_deployment(conn: &Connection, d: &Deployment) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(
            "INSERT INTO deployments (id, app_id, environment_id, release_id, group_id, state, active,
                 requested_by, created_at, finished_at, version, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (id) DO NOTHING",
        )
        .db()?
        .execute(params![
            id(d.id.0),
            id(d.app_id.0),
            id(d.environment_id.0),
            id(d.release_id.0),
            opt_id(d.group_id.map(|g| g.0)),
            name_of(&d.state)?,
            flag(d.active),
            id(d.requested_by.0),
            ts(&d.created_at),
            opt_ts(&d.finished_at),
            d.version,
            json(d)?,
        ])
        .db()?;
    inserted(rows, Record::Deployment)
}

/// `UpdateDeployment`: compare-and-set on `version`, within the
/// deployment's app; every indexed column is rewritten from the value.
fn update_deployment(conn: &Connection, d: &Deployment) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE deployments SET environment_id = ?3, release_id = ?4, group_id = ?5, state = ?6, active = ?7,
                 requested_by = ?8, created_at = ?9, finished_at = ?10, version = ?11, body = ?12
             WHERE id = ?1 AND app_id = ?2 AND version = ?11 - 1",
        )
        .db()?
        .execute(params![
            id(d.id.0),
            id(d.app_id.0),
            id(d.environment_id.0),
            id(d.release_id.0),
            opt_id(d.group_id.map(|g| g.0)),
            name_of(&d.state)?,
            flag(d.active),
            id(d.requested_by.0),
            ts(&d.created_at),
            opt_ts(&d.finished_at),
            d.version,
            json(d)?,
        ])
        .db()?;
    expect_cas(changed, DeploymentId::KIND, || {
        exists(conn, "SELECT 1 FROM deployments WHERE id = ?1 AND app_id = ?2", [id(d.id.0), id(d.app_id.0)])
    })
}

/// Applies one deployment mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &DeploymentMutation) -> Result<(), Error> {
    match mutation {
        DeploymentMutation::InsertDeployment(d) => insert_deployment(conn, d),
        DeploymentMutation::UpdateDeployment(d) => update_deployment(conn, d),
    }
}
