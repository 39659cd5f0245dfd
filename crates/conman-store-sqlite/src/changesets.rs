//! Changesets: the `ChangesetStore` reads and the changeset, revision,
//! review and comment mutations.
//!
//! Invariants: at most one open (neither released nor rejected) changeset
//! per workspace — kept by the partial unique index
//! `changesets_one_open_per_workspace`, so an insert or an update making a
//! second one fails as a UNIQUE violation, i.e. `conflict`, whatever the
//! caller checked before; a revision number is unique per changeset (the
//! primary key); a reviewer has one vote per (changeset, revision) —
//! `PutReview` upserts on that key. Changeset lookups and updates are
//! filtered by app id, comment lookups and updates by changeset id; updates
//! are compare-and-set on `version`. Listings use the indexes of migration
//! 0003 (a seek plus an index walk, never a sort of the app's changesets).

use async_trait::async_trait;
use conman_core::domain::changeset::{Changeset, ChangesetRevision, ChangesetState};
use conman_core::domain::comment::Comment;
use conman_core::domain::review::{Review, ReviewAction};
use conman_core::ids::{AppId, ChangesetId, CommentId, WorkspaceId};
use conman_core::ports::store::{
    ChangesetFilter, ChangesetMutation, ChangesetOrder, ChangesetStore, Page, PageRequest,
};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use crate::codec::{self, all, exists, id, inserted, json, one, opt_id, opt_ts, ts, Cols, Db as _};
use crate::unit_of_work::expect_cas;
use crate::SqliteStore;

macro_rules! changeset_columns {
    () => {
        "id, app_id, workspace_id, author_id, title, description, state, revision, head_sha, depends_on,
         gate_job_id, gate_failure, created_at, updated_at, version, queued_at, last_revalidation"
    };
}

macro_rules! revision_columns {
    () => {
        "changeset_id, number, head_sha, base_sha, files, gate_job_id, created_by, created_at"
    };
}

macro_rules! review_columns {
    () => {
        "id, changeset_id, revision, reviewer_id, action, comment, created_at"
    };
}

macro_rules! comment_columns {
    () => {
        "id, changeset_id, author_id, body, anchor, edits, created_at, updated_at, version"
    };
}

/// The open changeset of `?1`'s workspace `?2`. The state term repeats the
/// partial index's `WHERE` verbatim, which lets SQLite use that index.
macro_rules! open_changeset {
    () => {
        concat!(
            "SELECT ",
            changeset_columns!(),
            " FROM changesets WHERE workspace_id = ?2 AND state NOT IN ('released', 'rejected') AND app_id = ?1"
        )
    };
}

fn changeset_state(c: &Cols<'_, '_>, i: usize) -> Result<ChangesetState, Error> {
    ChangesetState::parse(&c.text(i)?).map_err(|e| Error::internal(format!("stored changeset state: {e}")))
}

fn changeset(c: &Cols<'_, '_>) -> Result<Changeset, Error> {
    Ok(Changeset {
        id: c.id(0)?,
        app_id: c.id(1)?,
        workspace_id: c.id(2)?,
        author_id: c.id(3)?,
        title: c.text(4)?,
        description: c.text(5)?,
        state: changeset_state(c, 6)?,
        revision: c.count(7)?,
        head_sha: c.opt_text(8)?,
        depends_on: c.json(9)?,
        gate_job_id: c.opt_id(10)?,
        gate_failure: c.opt_text(11)?,
        created_at: c.ts(12)?,
        updated_at: c.ts(13)?,
        version: c.int(14)?,
        queued_at: c.opt_ts(15)?,
        last_revalidation: c.opt_json(16)?,
    })
}

fn revision(c: &Cols<'_, '_>) -> Result<ChangesetRevision, Error> {
    Ok(ChangesetRevision {
        changeset_id: c.id(0)?,
        number: c.count(1)?,
        head_sha: c.text(2)?,
        base_sha: c.text(3)?,
        files: c.json(4)?,
        gate_job_id: c.opt_id(5)?,
        created_by: c.id(6)?,
        created_at: c.ts(7)?,
    })
}

fn review(c: &Cols<'_, '_>) -> Result<Review, Error> {
    Ok(Review {
        id: c.id(0)?,
        changeset_id: c.id(1)?,
        revision: c.count(2)?,
        reviewer_id: c.id(3)?,
        action: ReviewAction::parse(&c.text(4)?).map_err(|e| Error::internal(format!("stored review action: {e}")))?,
        comment: c.opt_text(5)?,
        created_at: c.ts(6)?,
    })
}

fn comment(c: &Cols<'_, '_>) -> Result<Comment, Error> {
    Ok(Comment {
        id: c.id(0)?,
        changeset_id: c.id(1)?,
        author_id: c.id(2)?,
        body: c.text(3)?,
        anchor: c.opt_json(4)?,
        edits: c.json(5)?,
        created_at: c.ts(6)?,
        updated_at: c.ts(7)?,
        version: c.int(8)?,
    })
}

/// The count and page queries of a changeset listing and their parameters
/// (the page query takes `LIMIT ? OFFSET ?` after them). Each filter
/// combination is served by one of the `changesets_by_app*` indexes: the
/// count and the skipped rows of the page are walked in that index alone
/// (the inner query reads only indexed columns and the rowid; with both
/// filters, one of them is checked against the table), and just the page's
/// own rows are read from the table.
fn changesets_listing(app_id: AppId, filter: &ChangesetFilter) -> (String, String, Vec<Value>) {
    let (clause, params) = changesets_where(app_id, filter);
    // Unfiltered, any of the three indexes could count; the one the page
    // walks is taken so both walks share cached pages.
    let source = match (filter.state.is_some(), filter.author_id.is_some(), filter.order) {
        (false, false, _) => "changesets INDEXED BY changesets_by_app",
        (true, false, ChangesetOrder::NewestFirst) => "changesets INDEXED BY changesets_by_app_state",
        (true, false, ChangesetOrder::QueueOrder) => "changesets INDEXED BY changesets_queue",
        _ => "changesets",
    };
    let count = format!("SELECT COUNT(*) FROM {source}{clause}");
    // The queue order is served by `changesets_queue` (SQLite sorts a
    // missing queue time first, as the port says).
    let order = match filter.order {
        ChangesetOrder::NewestFirst => "created_at DESC, id DESC",
        ChangesetOrder::QueueOrder => "queued_at, id",
    };
    let list = format!(
        concat!(
            "SELECT ",
            changeset_columns!(),
            " FROM changesets WHERE rowid IN (
                SELECT rowid FROM changesets{clause} ORDER BY {order} LIMIT ? OFFSET ?)
              ORDER BY {order}"
        ),
        clause = clause,
        order = order
    );
    (count, list, params)
}

/// The `WHERE` clause of a changeset listing and its parameters.
fn changesets_where(app_id: AppId, filter: &ChangesetFilter) -> (String, Vec<Value>) {
    let mut clause = String::from(" WHERE app_id = ?");
    let mut params = vec![Value::Text(id(app_id.0))];
    if let Some(state) = filter.state {
        clause.push_str(" AND state = ?");
        params.push(Value::Text(state.as_str().to_owned()));
    }
    if let Some(author) = filter.author_id {
        clause.push_str(" AND author_id = ?");
        params.push(Value::Text(id(author.0)));
    }
    (clause, params)
}

#[async_trait]
impl ChangesetStore for SqliteStore {
    async fn changeset(&self, app_id: AppId, cs: ChangesetId) -> Result<Option<Changeset>, Error> {
        self.read(move |conn| {
            one(
                conn,
                concat!("SELECT ", changeset_columns!(), " FROM changesets WHERE id = ?1 AND app_id = ?2"),
                [id(cs.0), id(app_id.0)],
                changeset,
            )
        })
        .await
    }

    async fn list_changesets(
        &self,
        app_id: AppId,
        filter: &ChangesetFilter,
        page: PageRequest,
    ) -> Result<Page<Changeset>, Error> {
        let (count, list, params) = changesets_listing(app_id, filter);
        self.read(move |conn| codec::page(conn, &count, &list, params, page, changeset)).await
    }

    async fn queue_depths(&self) -> Result<Vec<(AppId, u64)>, Error> {
        self.read(move |conn| {
            let sql = "SELECT app_id, COUNT(*) FROM changesets WHERE state = 'queued' GROUP BY app_id ORDER BY app_id";
            all(conn, sql, [], |c| Ok((c.id(0)?, c.count(1)?)))
        })
        .await
    }

    async fn open_changeset_of_workspace(&self, app_id: AppId, ws_id: WorkspaceId) -> Result<Option<Changeset>, Error> {
        self.read(move |conn| one(conn, open_changeset!(), [id(app_id.0), id(ws_id.0)], changeset)).await
    }

    async fn changeset_revisions(&self, cs: ChangesetId) -> Result<Vec<ChangesetRevision>, Error> {
        self.read(move |conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    revision_columns!(),
                    " FROM changeset_revisions WHERE changeset_id = ?1 ORDER BY number"
                ),
                [id(cs.0)],
                revision,
            )
        })
        .await
    }

    async fn changeset_reviews(&self, cs: ChangesetId) -> Result<Vec<Review>, Error> {
        self.read(move |conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    review_columns!(),
                    " FROM changeset_reviews WHERE changeset_id = ?1 ORDER BY revision, created_at, id"
                ),
                [id(cs.0)],
                review,
            )
        })
        .await
    }

    async fn comment(&self, changeset_id: ChangesetId, comment_id: CommentId) -> Result<Option<Comment>, Error> {
        self.read(move |conn| {
            one(
                conn,
                concat!("SELECT ", comment_columns!(), " FROM changeset_comments WHERE id = ?1 AND changeset_id = ?2"),
                [id(comment_id.0), id(changeset_id.0)],
                comment,
            )
        })
        .await
    }

    async fn list_comments(&self, changeset_id: ChangesetId, page: PageRequest) -> Result<Page<Comment>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM changeset_comments WHERE changeset_id = ?",
                concat!(
                    "SELECT ",
                    comment_columns!(),
                    " FROM changeset_comments WHERE changeset_id = ? ORDER BY created_at, id LIMIT ? OFFSET ?"
                ),
                vec![Value::Text(id(changeset_id.0))],
                page,
                comment,
            )
        })
        .await
    }
}

/// `InsertChangeset` (a second open changeset of the workspace: `conflict`).
pub(crate) fn insert_changeset(conn: &Connection, cs: &Changeset) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(concat!(
            "INSERT INTO changesets (",
            changeset_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
              ON CONFLICT (id) DO NOTHING"
        ))
        .db()?
        .execute(params![
            id(cs.id.0),
            id(cs.app_id.0),
            id(cs.workspace_id.0),
            id(cs.author_id.0),
            cs.title,
            cs.description,
            cs.state.as_str(),
            cs.revision,
            cs.head_sha,
            json(&cs.depends_on)?,
            opt_id(cs.gate_job_id.map(|j| j.0)),
            cs.gate_failure,
            ts(&cs.created_at),
            ts(&cs.updated_at),
            cs.version,
            opt_ts(&cs.queued_at),
            cs.last_revalidation.as_ref().map(json).transpose()?,
        ])
        .db()?;
    inserted(rows, conman_core::ports::store::Record::Changeset)
}

/// `UpdateChangeset`: compare-and-set on `version`, within the changeset's
/// app; reopening beside another open changeset is `conflict` (the index).
pub(crate) fn update_changeset(conn: &Connection, cs: &Changeset) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE changesets SET workspace_id = ?3, author_id = ?4, title = ?5, description = ?6, state = ?7,
                revision = ?8, head_sha = ?9, depends_on = ?10, gate_job_id = ?11, gate_failure = ?12,
                created_at = ?13, updated_at = ?14, version = ?15, queued_at = ?16, last_revalidation = ?17
             WHERE id = ?1 AND app_id = ?2 AND version = ?15 - 1",
        )
        .db()?
        .execute(params![
            id(cs.id.0),
            id(cs.app_id.0),
            id(cs.workspace_id.0),
            id(cs.author_id.0),
            cs.title,
            cs.description,
            cs.state.as_str(),
            cs.revision,
            cs.head_sha,
            json(&cs.depends_on)?,
            opt_id(cs.gate_job_id.map(|j| j.0)),
            cs.gate_failure,
            ts(&cs.created_at),
            ts(&cs.updated_at),
            cs.version,
            opt_ts(&cs.queued_at),
            cs.last_revalidation.as_ref().map(json).transpose()?,
        ])
        .db()?;
    expect_cas(changed, ChangesetId::KIND, || {
        exists(conn, "SELECT 1 FROM changesets WHERE id = ?1 AND app_id = ?2", [id(cs.id.0), id(cs.app_id.0)])
    })
}

/// `InsertRevision` (a taken number: `conflict`; an unknown changeset fails
/// its foreign key, also `conflict`).
pub(crate) fn insert_revision(conn: &Connection, r: &ChangesetRevision) -> Result<(), Error> {
    conn.prepare_cached(concat!(
        "INSERT INTO changeset_revisions (",
        revision_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))
    .db()?
    .execute(params![
        id(r.changeset_id.0),
        r.number,
        r.head_sha,
        r.base_sha,
        json(&r.files)?,
        opt_id(r.gate_job_id.map(|j| j.0)),
        id(r.created_by.0),
        ts(&r.created_at),
    ])
    .db()?;
    Ok(())
}

/// `PutReview`: inserts the vote, or replaces the whole row (id included)
/// of the same (changeset, revision, reviewer).
pub(crate) fn put_review(conn: &Connection, r: &Review) -> Result<(), Error> {
    conn.prepare_cached(concat!(
        "INSERT INTO changeset_reviews (",
        review_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (changeset_id, revision, reviewer_id) DO UPDATE SET
            id = excluded.id, action = excluded.action, comment = excluded.comment,
            created_at = excluded.created_at"
    ))
    .db()?
    .execute(params![
        id(r.id.0),
        id(r.changeset_id.0),
        r.revision,
        id(r.reviewer_id.0),
        r.action.as_str(),
        r.comment,
        ts(&r.created_at),
    ])
    .db()?;
    Ok(())
}

/// `InsertComment`.
pub(crate) fn insert_comment(conn: &Connection, c: &Comment) -> Result<(), Error> {
    conn.prepare_cached(concat!(
        "INSERT INTO changeset_comments (",
        comment_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))
    .db()?
    .execute(params![
        id(c.id.0),
        id(c.changeset_id.0),
        id(c.author_id.0),
        c.body,
        c.anchor.as_ref().map(json).transpose()?,
        json(&c.edits)?,
        ts(&c.created_at),
        ts(&c.updated_at),
        c.version,
    ])
    .db()?;
    Ok(())
}

/// `UpdateComment`: compare-and-set on `version`, within the comment's
/// changeset.
pub(crate) fn update_comment(conn: &Connection, c: &Comment) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE changeset_comments SET author_id = ?3, body = ?4, anchor = ?5, edits = ?6, created_at = ?7,
                updated_at = ?8, version = ?9
             WHERE id = ?1 AND changeset_id = ?2 AND version = ?9 - 1",
        )
        .db()?
        .execute(params![
            id(c.id.0),
            id(c.changeset_id.0),
            id(c.author_id.0),
            c.body,
            c.anchor.as_ref().map(json).transpose()?,
            json(&c.edits)?,
            ts(&c.created_at),
            ts(&c.updated_at),
            c.version,
        ])
        .db()?;
    expect_cas(changed, CommentId::KIND, || {
        exists(
            conn,
            "SELECT 1 FROM changeset_comments WHERE id = ?1 AND changeset_id = ?2",
            [id(c.id.0), id(c.changeset_id.0)],
        )
    })
}

/// Applies one changeset mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &ChangesetMutation) -> Result<(), Error> {
    match mutation {
        ChangesetMutation::InsertChangeset(c) => insert_changeset(conn, c),
        ChangesetMutation::UpdateChangeset(c) => update_changeset(conn, c),
        ChangesetMutation::InsertRevision(r) => insert_revision(conn, r),
        ChangesetMutation::PutReview(r) => put_review(conn, r),
        ChangesetMutation::InsertComment(c) => insert_comment(conn, c),
        ChangesetMutation::UpdateComment(c) => update_comment(conn, c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `sql` on a fresh database, one line per step.
    fn plan(sql: &str, params: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("conman.db");
        drop(SqliteStore::open(&path).expect("store opens"));
        let conn = Connection::open(&path).expect("raw connection opens");
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("plan prepares");
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(3));
        rows.expect("plan runs").collect::<Result<_, _>>().expect("plan reads")
    }

    /// The listing query of `filter`, with its parameters as text.
    fn listing(filter: &ChangesetFilter) -> (String, String, Vec<&'static str>) {
        let (count, list, params) = changesets_listing(AppId(uuid::Uuid::nil()), filter);
        let mut texts = vec!["x"; params.len()];
        texts.extend(["20", "0"]);
        (count, list, texts)
    }

    /// Asserts the shape of a page query's plan: the skipped rows are walked
    /// in `index` order (`covering`: without touching the table), the page's
    /// rows are then fetched by rowid, nothing scans the table, and the only
    /// sort is the outer one of the page's own (at most 100) rows — a second
    /// sort would mean the index walk was not in order.
    fn assert_page_plan(plan: &[String], index: &str, covering: bool) {
        let walk = if covering { "USING COVERING INDEX" } else { "USING INDEX" };
        assert!(plan.iter().any(|s| s.starts_with(&format!("SEARCH changesets {walk} {index}"))), "{plan:#?}");
        assert!(plan.iter().any(|s| s.contains("USING INTEGER PRIMARY KEY (rowid=?)")), "{plan:#?}");
        assert!(plan.iter().all(|s| !s.starts_with("SCAN changesets")), "{plan:#?}");
        assert_eq!(plan.iter().filter(|s| s.contains("TEMP B-TREE")).count(), 1, "{plan:#?}");
    }

    /// Every listing walks its `changesets_by_app*` index in order, and its
    /// count walks a covering index; neither scans the table.
    #[test]
    fn every_listing_walks_its_index_in_order() {
        let author = Some(conman_core::ids::UserId(uuid::Uuid::nil()));
        let cases = [
            (ChangesetFilter::default(), "changesets_by_app "),
            (
                ChangesetFilter { state: Some(ChangesetState::Draft), author_id: None, ..Default::default() },
                "changesets_by_app_state ",
            ),
            (ChangesetFilter { state: None, author_id: author, ..Default::default() }, "changesets_by_app_author "),
        ];
        for (filter, index) in cases {
            let (count, list, params) = listing(&filter);
            assert_page_plan(&plan(&list, &params), index, true);
            let count_plan = plan(&count, &params[..params.len() - 2]);
            assert!(
                count_plan.iter().any(|s| s.starts_with(&format!("SEARCH changesets USING COVERING INDEX {index}"))),
                "{count_plan:#?}"
            );
        }
        // The queue: its own index, in order.
        let queue = ChangesetFilter {
            state: Some(ChangesetState::Queued),
            order: ChangesetOrder::QueueOrder,
            ..Default::default()
        };
        let (count, list, params) = listing(&queue);
        assert_page_plan(&plan(&list, &params), "changesets_queue ", true);
        let count_plan = plan(&count, &params[..params.len() - 2]);
        assert!(
            count_plan.iter().any(|s| s.starts_with("SEARCH changesets USING COVERING INDEX changesets_queue")),
            "{count_plan:#?}"
        );
        // Both filters: one of the filtered indexes (reading the other
        // column from the table), still in order.
        let both = ChangesetFilter { state: Some(ChangesetState::Draft), author_id: author, ..Default::default() };
        let (_, list, params) = listing(&both);
        assert_page_plan(&plan(&list, &params), "changesets_by_app_", false);
    }

    /// The open changeset of a workspace is a seek on the partial index.
    #[test]
    fn the_open_changeset_is_found_through_the_partial_index() {
        let plan = plan(open_changeset!(), &["a", "w"]);
        assert!(plan.iter().any(|s| s.contains("USING INDEX changesets_one_open_per_workspace")), "{plan:#?}");
    }
}
