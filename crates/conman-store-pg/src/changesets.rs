//! Changesets: the `ChangesetStore` reads and the changeset, revision,
//! review and comment mutations.
//!
//! Invariants: at most one changeset per workspace is open (neither
//! released nor rejected) — the schema's partial unique index
//! `changesets_workspace_id_key` refuses a second on insert and on update,
//! and the refusal is a `conflict` like every unique violation; a revision
//! number exists once per changeset (`changeset_revisions_number_key`) and
//! revisions are never changed; one vote per (changeset, revision,
//! reviewer), a later `PutReview` replacing the row whole (new id included)
//! in one `INSERT ... ON CONFLICT ... DO UPDATE`; changesets are looked up
//! within their app, comments within their changeset, and an update applies
//! only over the version before it. Listings read their page and their total
//! in one statement, so they see one snapshot in one round trip.

use async_trait::async_trait;
use conman_core::domain::changeset::{Changeset, ChangesetRevision, ChangesetState};
use conman_core::domain::comment::{Comment, CommentAnchor};
use conman_core::domain::review::{Review, ReviewAction};
use conman_core::ids::{AppId, ChangesetId, CommentId, WorkspaceId};
use conman_core::ports::store::{
    ChangesetFilter, ChangesetMutation, ChangesetOrder, ChangesetStore, Page, PageRequest,
};
use conman_core::Error;
use sqlx::{query, PgConnection, Row as _};
use uuid::Uuid;

use crate::codec::{all, json, one, opt_ts, ts, Cols, Db as _, PgQuery};
use crate::unit_of_work::expect_cas;
use crate::PgStore;

macro_rules! changeset_columns {
    () => {
        "id, app_id, workspace_id, author_id, title, description, state, revision, head_sha, depends_on::text,
         gate_job_id, gate_failure, created_at, updated_at, version, queued_at, last_revalidation::text"
    };
}

macro_rules! revision_columns {
    () => {
        "changeset_id, number, head_sha, base_sha, files::text, gate_job_id, created_by, created_at"
    };
}

macro_rules! review_columns {
    () => {
        "id, changeset_id, revision, reviewer_id, action, comment, created_at"
    };
}

macro_rules! comment_columns {
    () => {
        "id, changeset_id, author_id, body, anchor_path, anchor_line, anchor_revision, edits::text, created_at,
         updated_at, version"
    };
}

/// Number of columns [`changeset`] reads; a listing adds its total after them.
const CHANGESET_COLUMNS: usize = 17;
/// Number of columns [`comment`] reads; a listing adds its total after them.
const COMMENT_COLUMNS: usize = 11;

fn changeset(c: &Cols<'_>) -> Result<Changeset, Error> {
    Ok(Changeset {
        id: c.id(0)?,
        app_id: c.id(1)?,
        workspace_id: c.id(2)?,
        author_id: c.id(3)?,
        title: c.text(4)?,
        description: c.text(5)?,
        state: ChangesetState::parse(&c.text(6)?).map_err(|e| Error::internal(format!("column state: {e}")))?,
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

fn revision(c: &Cols<'_>) -> Result<ChangesetRevision, Error> {
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

fn review(c: &Cols<'_>) -> Result<Review, Error> {
    Ok(Review {
        id: c.id(0)?,
        changeset_id: c.id(1)?,
        revision: c.count(2)?,
        reviewer_id: c.id(3)?,
        action: ReviewAction::parse(&c.text(4)?).map_err(|e| Error::internal(format!("column action: {e}")))?,
        comment: c.opt_text(5)?,
        created_at: c.ts(6)?,
    })
}

fn comment(c: &Cols<'_>) -> Result<Comment, Error> {
    let anchor = match (c.opt_text(4)?, c.opt_int(5)?, c.opt_int(6)?) {
        (Some(path), line, Some(revision)) => Some(CommentAnchor {
            path,
            line: line.map(|l| count(l, "anchor_line")).transpose()?,
            revision: count(revision, "anchor_revision")?,
        }),
        (None, None, None) => None,
        other => return Err(Error::internal(format!("comment anchor columns are inconsistent: {other:?}"))),
    };
    Ok(Comment {
        id: c.id(0)?,
        changeset_id: c.id(1)?,
        author_id: c.id(2)?,
        body: c.text(3)?,
        anchor,
        edits: c.json(7)?,
        created_at: c.ts(8)?,
        updated_at: c.ts(9)?,
        version: c.int(10)?,
    })
}

/// A stored `bigint` as a `u32` count.
fn count(n: i64, column: &str) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::internal(format!("column {column} does not hold a count in range: {n}")))
}

/// A `u32` count as a `bigint`.
fn big(n: u32) -> i64 {
    i64::from(n)
}

/// One page of a listing and its total, in one statement (so one snapshot
/// and one round trip): `sql` yields the entity's `width` columns then the
/// total, with one row of NULLs and the total when the page is empty. Its
/// last two placeholders are the limit and the offset, bound here.
async fn paged<T>(
    store: &PgStore,
    q: PgQuery<'_>,
    page: PageRequest,
    width: usize,
    decode: fn(&Cols<'_>) -> Result<T, Error>,
) -> Result<Page<T>, Error> {
    if page.page == 0 {
        return Err(Error::invalid("page", "out_of_range", "page must be 1 or more"));
    }
    let offset =
        i64::try_from(page.offset()).map_err(|_| Error::invalid("page", "out_of_range", "page is too large"))?;
    let rows = q.bind(i64::from(page.limit)).bind(offset).fetch_all(&store.pool).await.db()?;
    let mut total = 0_i64;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        total = row.try_get(width).db()?;
        // The empty page's single row has no entity (its id is NULL).
        if row.try_get::<Option<Uuid>, _>(0).db()?.is_some() {
            items.push(decode(&Cols::new(row))?);
        }
    }
    Ok(Page { items, total: u64::try_from(total).unwrap_or_default() })
}

#[async_trait]
impl ChangesetStore for PgStore {
    async fn changeset(&self, app_id: AppId, id: ChangesetId) -> Result<Option<Changeset>, Error> {
        let sql = concat!("SELECT ", changeset_columns!(), " FROM changesets WHERE id = $1 AND app_id = $2");
        one(&self.pool, query(sql).bind(id.0).bind(app_id.0), changeset).await
    }

    async fn list_changesets(
        &self,
        app_id: AppId,
        filter: &ChangesetFilter,
        page: PageRequest,
    ) -> Result<Page<Changeset>, Error> {
        // One statement per combination of filters, each matching one of the
        // listing indexes exactly (a `$n IS NULL OR ...` filter would leave
        // a cached generic plan unable to pick the narrower index).
        let filter_sql = match (filter.state.is_some(), filter.author_id.is_some()) {
            (false, false) => "",
            (true, false) => " AND state = $2",
            (false, true) => " AND author_id = $2",
            (true, true) => " AND state = $2 AND author_id = $3",
        };
        let binds = 1 + usize::from(filter.state.is_some()) + usize::from(filter.author_id.is_some());
        // The page's keys come from an index-only walk of the listing index
        // (skipping `offset` entries costs no row fetch and no decoding of
        // `depends_on`); only the page's own rows are then read.
        // Newest first by creation, or the queue order (`changesets_queue`;
        // a missing queue time first, as the port says).
        let (key, inner, outer) = match filter.order {
            ChangesetOrder::NewestFirst => ("created_at", "created_at DESC, id DESC", "k.key_at DESC, k.key_id DESC"),
            ChangesetOrder::QueueOrder => ("queued_at", "queued_at NULLS FIRST, id", "k.key_at NULLS FIRST, k.key_id"),
        };
        let sql = format!(
            concat!(
                "SELECT ",
                changeset_columns!(),
                ", t.total FROM (SELECT COUNT(*) AS total FROM changesets WHERE app_id = $1{f}) t
                 LEFT JOIN LATERAL (SELECT id AS key_id, {key} AS key_at FROM changesets WHERE app_id = $1{f}
                   ORDER BY {inner} LIMIT ${limit} OFFSET ${offset}) k ON true
                 LEFT JOIN changesets ON id = k.key_id
                 ORDER BY {outer}"
            ),
            f = filter_sql,
            key = key,
            inner = inner,
            outer = outer,
            limit = binds + 1,
            offset = binds + 2,
        );
        let mut q = query(&sql).bind(app_id.0);
        if let Some(state) = filter.state {
            q = q.bind(state.as_str());
        }
        if let Some(author) = filter.author_id {
            q = q.bind(author.0);
        }
        paged(self, q, page, CHANGESET_COLUMNS, changeset).await
    }

    async fn queue_depths(&self) -> Result<Vec<(AppId, u64)>, Error> {
        let sql = "SELECT app_id, COUNT(*) FROM changesets WHERE state = 'queued' GROUP BY app_id ORDER BY app_id";
        all(&self.pool, query(sql), |c| Ok((c.id(0)?, c.count(1)?))).await
    }

    async fn open_changeset_of_workspace(&self, app_id: AppId, ws_id: WorkspaceId) -> Result<Option<Changeset>, Error> {
        // The predicate repeats the partial index's, so the lookup uses it.
        let sql = concat!(
            "SELECT ",
            changeset_columns!(),
            " FROM changesets WHERE workspace_id = $1 AND app_id = $2 AND state NOT IN ('released', 'rejected')"
        );
        one(&self.pool, query(sql).bind(ws_id.0).bind(app_id.0), changeset).await
    }

    async fn changeset_revisions(&self, id: ChangesetId) -> Result<Vec<ChangesetRevision>, Error> {
        let sql = concat!(
            "SELECT ",
            revision_columns!(),
            " FROM changeset_revisions WHERE changeset_id = $1 ORDER BY number"
        );
        all(&self.pool, query(sql).bind(id.0), revision).await
    }

    async fn changeset_reviews(&self, id: ChangesetId) -> Result<Vec<Review>, Error> {
        let sql = concat!(
            "SELECT ",
            review_columns!(),
            " FROM changeset_reviews WHERE changeset_id = $1 ORDER BY revision, created_at, id"
        );
        all(&self.pool, query(sql).bind(id.0), review).await
    }

    async fn comment(&self, changeset_id: ChangesetId, id: CommentId) -> Result<Option<Comment>, Error> {
        let sql =
            concat!("SELECT ", comment_columns!(), " FROM changeset_comments WHERE id = $1 AND changeset_id = $2");
        one(&self.pool, query(sql).bind(id.0).bind(changeset_id.0), comment).await
    }

    async fn list_comments(&self, changeset_id: ChangesetId, page: PageRequest) -> Result<Page<Comment>, Error> {
        let sql = concat!(
            "SELECT p.*, t.total FROM (SELECT COUNT(*) AS total FROM changeset_comments WHERE changeset_id = $1) t
             LEFT JOIN LATERAL (SELECT ",
            comment_columns!(),
            " FROM changeset_comments WHERE changeset_id = $1
               ORDER BY created_at, id LIMIT $2 OFFSET $3) p ON true
             ORDER BY p.created_at, p.id"
        );
        paged(self, query(sql).bind(changeset_id.0), page, COMMENT_COLUMNS, comment).await
    }
}

/// Binds the seventeen changeset columns, in [`changeset_columns!`] order.
fn bind_changeset<'q>(q: PgQuery<'q>, c: &'q Changeset) -> Result<PgQuery<'q>, Error> {
    Ok(q.bind(c.id.0)
        .bind(c.app_id.0)
        .bind(c.workspace_id.0)
        .bind(c.author_id.0)
        .bind(&c.title)
        .bind(&c.description)
        .bind(c.state.as_str())
        .bind(big(c.revision))
        .bind(&c.head_sha)
        .bind(json(&c.depends_on)?)
        .bind(c.gate_job_id.map(|j| j.0))
        .bind(&c.gate_failure)
        .bind(ts(&c.created_at))
        .bind(ts(&c.updated_at))
        .bind(c.version)
        .bind(opt_ts(&c.queued_at))
        .bind(c.last_revalidation.as_ref().map(json).transpose()?))
}

/// `InsertChangeset`: a second open changeset of the workspace is a conflict.
pub(crate) async fn insert_changeset(conn: &mut PgConnection, c: &Changeset) -> Result<(), Error> {
    let sql = "INSERT INTO changesets (id, app_id, workspace_id, author_id, title, description, state, revision,
                   head_sha, depends_on, gate_job_id, gate_failure, created_at, updated_at, version, queued_at,
                   last_revalidation)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::json, $11, $12, $13, $14, $15, $16, $17::json)";
    bind_changeset(query(sql), c)?.execute(conn).await.db()?;
    Ok(())
}

/// `UpdateChangeset`: compare-and-set on `version`, within the changeset's
/// app; reopening beside another open changeset of the workspace is a
/// conflict.
pub(crate) async fn update_changeset(conn: &mut PgConnection, c: &Changeset) -> Result<(), Error> {
    let sql = "UPDATE changesets SET workspace_id = $3, author_id = $4, title = $5, description = $6, state = $7,
                   revision = $8, head_sha = $9, depends_on = $10::json, gate_job_id = $11, gate_failure = $12,
                   created_at = $13, updated_at = $14, version = $15, queued_at = $16,
                   last_revalidation = $17::json
               WHERE id = $1 AND app_id = $2 AND version = $15 - 1";
    let changed = bind_changeset(query(sql), c)?.execute(&mut *conn).await.db()?.rows_affected();
    let exists = query("SELECT 1 FROM changesets WHERE id = $1 AND app_id = $2").bind(c.id.0).bind(c.app_id.0);
    expect_cas(conn, changed, ChangesetId::KIND, exists).await
}

/// `InsertRevision`: a number that exists is a conflict.
pub(crate) async fn insert_revision(conn: &mut PgConnection, r: &ChangesetRevision) -> Result<(), Error> {
    let sql = "INSERT INTO changeset_revisions (changeset_id, number, head_sha, base_sha, files, gate_job_id,
                   created_by, created_at)
               VALUES ($1, $2, $3, $4, $5::json, $6, $7, $8)";
    query(sql)
        .bind(r.changeset_id.0)
        .bind(big(r.number))
        .bind(&r.head_sha)
        .bind(&r.base_sha)
        .bind(json(&r.files)?)
        .bind(r.gate_job_id.map(|j| j.0))
        .bind(r.created_by.0)
        .bind(ts(&r.created_at))
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `PutReview`: inserts the vote or replaces the same reviewer's vote on the
/// same revision (the whole row, id included).
pub(crate) async fn put_review(conn: &mut PgConnection, r: &Review) -> Result<(), Error> {
    let sql = concat!(
        "INSERT INTO changeset_reviews (",
        review_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ON CONSTRAINT changeset_reviews_reviewer_id_key DO UPDATE
         SET id = EXCLUDED.id, action = EXCLUDED.action, comment = EXCLUDED.comment, created_at = EXCLUDED.created_at"
    );
    query(sql)
        .bind(r.id.0)
        .bind(r.changeset_id.0)
        .bind(big(r.revision))
        .bind(r.reviewer_id.0)
        .bind(r.action.as_str())
        .bind(&r.comment)
        .bind(ts(&r.created_at))
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Binds the eleven comment columns, in [`comment_columns!`] order.
fn bind_comment<'q>(q: PgQuery<'q>, c: &'q Comment) -> Result<PgQuery<'q>, Error> {
    let anchor = c.anchor.as_ref();
    Ok(q.bind(c.id.0)
        .bind(c.changeset_id.0)
        .bind(c.author_id.0)
        .bind(&c.body)
        .bind(anchor.map(|a| a.path.as_str()))
        .bind(anchor.and_then(|a| a.line).map(big))
        .bind(anchor.map(|a| big(a.revision)))
        .bind(json(&c.edits)?)
        .bind(ts(&c.created_at))
        .bind(ts(&c.updated_at))
        .bind(c.version))
}

/// `InsertComment`.
pub(crate) async fn insert_comment(conn: &mut PgConnection, c: &Comment) -> Result<(), Error> {
    let sql = "INSERT INTO changeset_comments (id, changeset_id, author_id, body, anchor_path, anchor_line,
                   anchor_revision, edits, created_at, updated_at, version)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9, $10, $11)";
    bind_comment(query(sql), c)?.execute(conn).await.db()?;
    Ok(())
}

/// `UpdateComment`: compare-and-set on `version`, within the comment's
/// changeset.
pub(crate) async fn update_comment(conn: &mut PgConnection, c: &Comment) -> Result<(), Error> {
    let sql = "UPDATE changeset_comments SET author_id = $3, body = $4, anchor_path = $5, anchor_line = $6,
                   anchor_revision = $7, edits = $8::json, created_at = $9, updated_at = $10, version = $11
               WHERE id = $1 AND changeset_id = $2 AND version = $11 - 1";
    let changed = bind_comment(query(sql), c)?.execute(&mut *conn).await.db()?.rows_affected();
    let exists = query("SELECT 1 FROM changeset_comments WHERE id = $1 AND changeset_id = $2")
        .bind(c.id.0)
        .bind(c.changeset_id.0);
    expect_cas(conn, changed, CommentId::KIND, exists).await
}

/// Applies one changeset mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &ChangesetMutation) -> Result<(), Error> {
    match mutation {
        ChangesetMutation::InsertChangeset(c) => insert_changeset(conn, c).await,
        ChangesetMutation::UpdateChangeset(c) => update_changeset(conn, c).await,
        ChangesetMutation::InsertRevision(r) => insert_revision(conn, r).await,
        ChangesetMutation::PutReview(r) => put_review(conn, r).await,
        ChangesetMutation::InsertComment(c) => insert_comment(conn, c).await,
        ChangesetMutation::UpdateComment(c) => update_comment(conn, c).await,
    }
}
