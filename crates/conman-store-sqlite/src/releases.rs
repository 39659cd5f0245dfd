//! Releases: the `ReleaseStore` reads and the release mutations.
//!
//! Invariant: a release is stored whole as its JSON `body`; the indexed
//! columns (`state`, `tag`, `created_at`, `version`) are written from the
//! same value by the same statement, so they never disagree with it. A tag
//! is unique per app (the schema's `releases_tag_per_app`); every lookup is
//! filtered by app id; an update applies only over the version before it.

use async_trait::async_trait;
use conman_core::domain::release::Release;
use conman_core::ids::{AppId, ReleaseId};
use conman_core::ports::store::{Page, PageRequest, Record, ReleaseFilter, ReleaseMutation, ReleaseStore};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use crate::codec::{self, all, exists, id, inserted, json, name_of, one, ts, Cols, Db as _};
use crate::unit_of_work::expect_cas;
use crate::SqliteStore;

fn release(c: &Cols<'_, '_>) -> Result<Release, Error> {
    c.json(0)
}

#[async_trait]
impl ReleaseStore for SqliteStore {
    async fn release(&self, app_id: AppId, rel: ReleaseId) -> Result<Option<Release>, Error> {
        self.read(move |conn| {
            one(conn, "SELECT body FROM releases WHERE id = ?1 AND app_id = ?2", [id(rel.0), id(app_id.0)], release)
        })
        .await
    }

    async fn list_releases(
        &self,
        app_id: AppId,
        filter: ReleaseFilter,
        page: PageRequest,
    ) -> Result<Page<Release>, Error> {
        self.read(move |conn| match filter.state {
            None => codec::page(
                conn,
                "SELECT COUNT(*) FROM releases WHERE app_id = ?",
                "SELECT body FROM releases WHERE app_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                vec![Value::Text(id(app_id.0))],
                page,
                release,
            ),
            Some(state) => codec::page(
                conn,
                "SELECT COUNT(*) FROM releases WHERE app_id = ? AND state = ?",
                "SELECT body FROM releases WHERE app_id = ? AND state = ?
                 ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                vec![Value::Text(id(app_id.0)), Value::Text(state.as_str().to_owned())],
                page,
                release,
            ),
        })
        .await
    }

    async fn release_tags_with_prefix(&self, app_id: AppId, prefix: &str) -> Result<Vec<String>, Error> {
        let prefix = prefix.to_owned();
        self.read(move |conn| {
            // `substr` compares the prefix literally (no LIKE wildcards).
            all(
                conn,
                "SELECT tag FROM releases WHERE app_id = ?1 AND tag IS NOT NULL
                   AND substr(tag, 1, length(?2)) = ?2 ORDER BY tag",
                [id(app_id.0), prefix],
                |c| c.text(0),
            )
        })
        .await
    }
}

/// `InsertRelease`.
fn insert_release(conn: &Connection, r: &Release) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(
            "INSERT INTO releases (id, app_id, state, tag, created_by, created_at, version, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
        )
        .db()?
        .execute(params![
            id(r.id.0),
            id(r.app_id.0),
            name_of(&r.state)?,
            r.tag,
            id(r.created_by.0),
            ts(&r.created_at),
            r.version,
            json(r)?,
        ])
        .db()?;
    inserted(rows, Record::Release)
}

/// `UpdateRelease`: compare-and-set on `version`, within the release's app.
fn update_release(conn: &Connection, r: &Release) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE releases SET state = ?3, tag = ?4, version = ?5, body = ?6
             WHERE id = ?1 AND app_id = ?2 AND version = ?5 - 1",
        )
        .db()?
        .execute(params![id(r.id.0), id(r.app_id.0), name_of(&r.state)?, r.tag, r.version, json(r)?])
        .db()?;
    expect_cas(changed, ReleaseId::KIND, || {
        exists(conn, "SELECT 1 FROM releases WHERE id = ?1 AND app_id = ?2", [id(r.id.0), id(r.app_id.0)])
    })
}

/// Applies one release mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &ReleaseMutation) -> Result<(), Error> {
    match mutation {
        ReleaseMutation::InsertRelease(r) => insert_release(conn, r),
        ReleaseMutation::UpdateRelease(r) => update_release(conn, r),
    }
}
