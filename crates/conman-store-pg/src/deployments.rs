//! Deployments: the `DeploymentStore` reads and the deployment mutations,
//! mirroring the SQLite store's `deployments.rs`.
//!
//! Invariant: a deployment is stored whole as its JSON `body`; the indexed
//! columns (`environment_id`, `release_id`, `group_id`, `state`, `active`,
//! `requested_by`, `created_at`, `finished_at`, `version`) are written from
//! the same value by the same statement, so they never disagree with it.
//! At most one deployment per environment is active — the schema's partial
//! unique index `deployments_environment_key`; every lookup is filtered by
//! app id; an update applies only over the version before it.

use async_trait::async_trait;
use conman_core::domain::deployment::{Deployment, DeploymentState};
use conman_core::ids::{AppId, DeploymentId, EnvironmentId};
use conman_core::ports::store::{
    DeploymentCount, DeploymentFilter, DeploymentMutation, DeploymentStore, Page, PageRequest,
};
use conman_core::Error;
use sqlx::{query, PgConnection};

use crate::codec::{self, all, json, name_of, one, opt_ts, ts, Cols, Db as _, PgQuery};
use crate::unit_of_work::expect_cas;
use crate::PgStore;

fn deployment(c: &Cols<'_>) -> Result<Deployment, Error> {
    c.json(0)
}

/// The listing's filter: each of `$2`-`$5` is either NULL (no filter) or the value.
const FILTERED: &str = "app_id = $1 AND ($2::uuid IS NULL OR environment_id = $2)
     AND ($3::text IS NULL OR state = $3) AND ($4::uuid IS NULL OR release_id = $4)
     AND ($5::uuid IS NULL OR group_id = $5)";

fn filtered<'q>(sql: &'q str, app_id: AppId, filter: &DeploymentFilter) -> PgQuery<'q> {
    query(sql)
        .bind(app_id.0)
        .bind(filter.environment_id.map(|e| e.0))
        .bind(filter.state.map(|s| s.as_str()))
        .bind(filter.release_id.map(|r| r.0))
        .bind(filter.group_id.map(|g| g.0))
}

#[async_trait]
impl DeploymentStore for PgStore {
    async fn deployment(&self, app_id: AppId, dep: DeploymentId) -> Result<Option<Deployment>, Error> {
        let sql = "SELECT body::text FROM deployments WHERE id = $1 AND app_id = $2";
        one(&self.pool, query(sql).bind(dep.0).bind(app_id.0), deployment).await
    }

    async fn list_deployments(
        &self,
        app_id: AppId,
        filter: &DeploymentFilter,
        page: PageRequest,
    ) -> Result<Page<Deployment>, Error> {
        let count = format!("SELECT COUNT(*) FROM deployments WHERE {FILTERED}");
        let list = format!(
            "SELECT body::text FROM deployments WHERE {FILTERED} ORDER BY created_at DESC, id DESC LIMIT $6 OFFSET $7"
        );
        codec::page(&self.pool, filtered(&count, app_id, filter), filtered(&list, app_id, filter), page, deployment)
            .await
    }

    async fn active_deployment(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, Error> {
        let sql = "SELECT body::text FROM deployments WHERE environment_id = $1 AND app_id = $2 AND active";
        one(&self.pool, query(sql).bind(environment_id.0).bind(app_id.0), deployment).await
    }

    async fn last_succeeded_deployment(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, Error> {
        // `NULLS LAST`: SQLite's descending order puts NULLs last too.
        let sql = "SELECT body::text FROM deployments
                   WHERE environment_id = $1 AND app_id = $2 AND state = 'succeeded'
                   ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1";
        one(&self.pool, query(sql).bind(environment_id.0).bind(app_id.0), deployment).await
    }

    async fn deployment_counts(&self) -> Result<Vec<DeploymentCount>, Error> {
        // `COLLATE "C"`: byte order of the state names, as SQLite sorts them.
        let sql = r#"SELECT app_id, environment_id, state, COUNT(*) FROM deployments
                     GROUP BY app_id, environment_id, state ORDER BY app_id, environment_id, state COLLATE "C""#;
        all(&self.pool, query(sql), |c| {
            let state = DeploymentState::parse(&c.text(2)?).map_err(|e| Error::internal(format!("state: {e}")))?;
            Ok(DeploymentCount { app_id: c.id(0)?, environment_id: c.id(1)?, state, count: c.count(3)? })
        })
        .await
    }
}

/// `InsertDeployment`.
async fn insert_deployment(conn: &mut PgConnection, d: &Deployment) -> Result<(), Error> {
    let sql = "INSERT INTO deployments (id, app_id, environment_id, release_id, group_id, state, active,
                   requested_by, created_at, finished_at, version, body)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json)";
    query(sql)
        .bind(d.id.0)
        .bind(d.app_id.0)
        .bind(d.environment_id.0)
        .bind(d.release_id.0)
        .bind(d.group_id.map(|g| g.0))
        .bind(name_of(&d.state)?)
        .bind(d.active)
        .bind(d.requested_by.0)
        .bind(ts(&d.created_at))
        .bind(opt_ts(&d.finished_at))
        .bind(d.version)
        .bind(json(d)?)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `UpdateDeployment`: compare-and-set on `version`, within the
/// deployment's app; every indexed column is rewritten from the value.
async fn update_deployment(conn: &mut PgConnection, d: &Deployment) -> Result<(), Error> {
    let sql = "UPDATE deployments SET environment_id = $3, release_id = $4, group_id = $5, state = $6, active = $7,
                   requested_by = $8, created_at = $9, finished_at = $10, version = $11, body = $12::json
               WHERE id = $1 AND app_id = $2 AND version = $11 - 1";
    let changed = query(sql)
        .bind(d.id.0)
        .bind(d.app_id.0)
        .bind(d.environment_id.0)
        .bind(d.release_id.0)
        .bind(d.group_id.map(|g| g.0))
        .bind(name_of(&d.state)?)
        .bind(d.active)
        .bind(d.requested_by.0)
        .bind(ts(&d.created_at))
        .bind(opt_ts(&d.finished_at))
        .bind(d.version)
        .bind(json(d)?)
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    let exists = query("SELECT 1 FROM deployments WHERE id = $1 AND app_id = $2").bind(d.id.0).bind(d.app_id.0);
    expect_cas(conn, changed, DeploymentId::KIND, exists).await
}

/// Applies one deployment mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &DeploymentMutation) -> Result<(), Error> {
    match mutation {
        DeploymentMutation::InsertDeployment(d) => insert_deployment(conn, d).await,
        DeploymentMutation::UpdateDeployment(d) => update_deployment(conn, d).await,
    }
}
