//! Releases: the `ReleaseStore` reads and the release mutations, mirroring
//! the SQLite store's `releases.rs`.
//!
//! Invariant: a release is stored whole as its JSON `body`; the indexed
//! columns (`state`, `tag`, `created_at`, `version`) are written from the
//! same value by the same statement, so they never disagree with it. A tag
//! is unique per app (the schema's `releases_tag_key`); every lookup is
//! filtered by app id; an update applies only over the version before it.

use async_trait::async_trait;
use conman_core::domain::release::Release;
use conman_core::ids::{AppId, ReleaseId};
use conman_core::ports::store::{Page, PageRequest, ReleaseFilter, ReleaseMutation, ReleaseStore};
use conman_core::Error;
use sqlx::{query, PgConnection};

use crate::codec::{self, all, json, name_of, one, ts, Cols, Db as _};
use crate::unit_of_work::expect_cas;
use crate::PgStore;

fn release(c: &Cols<'_>) -> Result<Release, Error> {
    c.json(0)
}

#[async_trait]
impl ReleaseStore for PgStore {
    async fn release(&self, app_id: AppId, rel: ReleaseId) -> Result<Option<Release>, Error> {
        let sql = "SELECT body::text FROM releases WHERE id = $1 AND app_id = $2";
        one(&self.pool, query(sql).bind(rel.0).bind(app_id.0), release).await
    }

    async fn list_releases(
        &self,
        app_id: AppId,
        filter: ReleaseFilter,
        page: PageRequest,
    ) -> Result<Page<Release>, Error> {
        match filter.state {
            None => {
                codec::page(
                    &self.pool,
                    query("SELECT COUNT(*) FROM releases WHERE app_id = $1").bind(app_id.0),
                    query(
                        "SELECT body::text FROM releases WHERE app_id = $1
                         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                    )
                    .bind(app_id.0),
                    page,
                    release,
                )
                .await
            }
            Some(state) => {
                codec::page(
                    &self.pool,
                    query("SELECT COUNT(*) FROM releases WHERE app_id = $1 AND state = $2")
                        .bind(app_id.0)
                        .bind(state.as_str()),
                    query(
                        "SELECT body::text FROM releases WHERE app_id = $1 AND state = $2
                         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
                    )
                    .bind(app_id.0)
                    .bind(state.as_str()),
                    page,
                    release,
                )
                .await
            }
        }
    }

    async fn release_tags_with_prefix(&self, app_id: AppId, prefix: &str) -> Result<Vec<String>, Error> {
        // `starts_with` compares the prefix literally (no LIKE wildcards);
        // `COLLATE "C"` sorts by bytes, as SQLite does.
        let sql = r#"SELECT tag FROM releases WHERE app_id = $1 AND tag IS NOT NULL AND starts_with(tag, $2)
                     ORDER BY tag COLLATE "C""#;
        all(&self.pool, query(sql).bind(app_id.0).bind(prefix), |c| c.text(0)).await
    }
}

/// `InsertRelease`.
async fn insert_release(conn: &mut PgConnection, r: &Release) -> Result<(), Error> {
    let sql = "INSERT INTO releases (id, app_id, state, tag, created_by, created_at, version, body)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json)";
    query(sql)
        .bind(r.id.0)
        .bind(r.app_id.0)
        .bind(name_of(&r.state)?)
        .bind(&r.tag)
        .bind(r.created_by.0)
        .bind(ts(&r.created_at))
        .bind(r.version)
        .bind(json(r)?)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `UpdateRelease`: compare-and-set on `version`, within the release's app.
async fn update_release(conn: &mut PgConnection, r: &Release) -> Result<(), Error> {
    let sql = "UPDATE releases SET state = $3, tag = $4, version = $5, body = $6::json
               WHERE id = $1 AND app_id = $2 AND version = $5 - 1";
    let changed = query(sql)
        .bind(r.id.0)
        .bind(r.app_id.0)
        .bind(name_of(&r.state)?)
        .bind(&r.tag)
        .bind(r.version)
        .bind(json(r)?)
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    let exists = query("SELECT 1 FROM releases WHERE id = $1 AND app_id = $2").bind(r.id.0).bind(r.app_id.0);
    expect_cas(conn, changed, ReleaseId::KIND, exists).await
}

/// Applies one release mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &ReleaseMutation) -> Result<(), Error> {
    match mutation {
        ReleaseMutation::InsertRelease(r) => insert_release(conn, r).await,
        ReleaseMutation::UpdateRelease(r) => update_release(conn, r).await,
    }
}
