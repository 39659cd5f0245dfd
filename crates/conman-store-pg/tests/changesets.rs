//! Postgres-specific behaviour of the changesets aggregate beyond the shared
//! conformance suite: the listing stays a seek on its indexes however many
//! changesets an app holds (10,000 changesets, pages 1 and 500 of 20, right
//! contents and an index plan without a sort; the timing is measured by
//! `cargo xtask bench`, not here), the constraint names map to the documented conflicts,
//! and the schema refuses malformed rows the core never writes.

mod common;

use conman_core::conformance::fixtures::{app, now, setup, user, workspace};
use conman_core::domain::changeset::{Changeset, ChangesetState};
use conman_core::ids::{AppId, ChangesetId, UserId};
use conman_core::ports::store::ConflictReason;
use conman_core::ports::store::{
    AppMutation, ChangesetFilter, ChangesetMutation, ChangesetStore, Mutation, Page, PageRequest, Store, Unaudited,
    UnitOfWork, UserMutation, WorkspaceMutation,
};
use conman_core::{Error, ErrorCode};
use uuid::Uuid;

/// Rows seeded for the listing test.
const MANY: i64 = 10_000;

fn draft(app_id: AppId, ws: conman_core::ids::WorkspaceId, author: UserId) -> Changeset {
    let at = now();
    Changeset {
        id: ChangesetId(Uuid::now_v7()),
        app_id,
        workspace_id: ws,
        author_id: author,
        title: "Raise the pool size".into(),
        description: String::new(),
        state: ChangesetState::Draft,
        revision: 0,
        head_sha: None,
        depends_on: vec![],
        gate_job_id: None,
        gate_failure: None,
        queued_at: None,
        last_revalidation: None,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

#[tokio::test]
async fn listing_ten_thousand_changesets_pages_by_the_index() {
    let Some((store, scratch)) = common::fresh_store().await else { return };
    let (ada, bob) = (user("ada"), user("bob"));
    let shop = app("shop", &ada);
    let ws = workspace(&shop, &ada, "default");
    setup(
        &store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(UserMutation::InsertUser(bob.clone())),
            Mutation::from(AppMutation::InsertApp(shop.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws.clone())),
        ],
    )
    .await;
    // Released changesets (so the one-open rule lets them share the
    // workspace), one a second apart, every third by bob, every fifth
    // rejected; then the planner gets fresh statistics, as autovacuum would.
    let mut conn = scratch.raw().await;
    sqlx::query(
        "INSERT INTO changesets (id, app_id, workspace_id, author_id, title, description, state, revision,
             head_sha, depends_on, gate_job_id, gate_failure, created_at, updated_at, version)
         SELECT gen_random_uuid(), $1, $2, CASE WHEN n % 3 = 0 THEN $4 ELSE $3 END, 'Change ' || n, '',
             CASE WHEN n % 5 = 0 THEN 'rejected' ELSE 'released' END, 1, repeat('a', 40), '[]', NULL, NULL,
             now() - make_interval(secs => n), now(), 3
           FROM generate_series(1, $5) AS n",
    )
    .bind(shop.id.0)
    .bind(ws.id.0)
    .bind(ada.id.0)
    .bind(bob.id.0)
    .bind(MANY)
    .execute(&mut conn)
    .await
    .expect("seeding runs");
    sqlx::query("VACUUM ANALYZE changesets").execute(&mut conn).await.expect("vacuum runs");

    let every = ChangesetFilter::default();
    let by_bob = ChangesetFilter { author_id: Some(bob.id), ..Default::default() };
    let rejected = ChangesetFilter { state: Some(ChangesetState::Rejected), ..Default::default() };
    let both = ChangesetFilter { state: Some(ChangesetState::Rejected), author_id: Some(bob.id), ..Default::default() };
    let page = |n| PageRequest::new(Some(n), Some(20)).expect("valid page");
    for (filter, total) in [(&every, MANY), (&by_bob, MANY / 3), (&rejected, MANY / 5), (&both, MANY / 15)] {
        let last = u32::try_from((total + 19) / 20).expect("small");
        for n in [1, last.min(500)] {
            let listed: Page<Changeset> =
                store.list_changesets(shop.id, filter, page(n)).await.expect("the listing reads");
            assert_eq!(listed.total, u64::try_from(total).expect("positive"), "{filter:?}");
            assert!(!listed.items.is_empty() && listed.items.len() <= 20, "{filter:?} page {n}");
            assert!(
                listed.items.windows(2).all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)),
                "newest first"
            );
        }
    }
    // Past the end: no items, the total all the same.
    let beyond = store.list_changesets(shop.id, &every, page(1_000)).await.expect("reads");
    assert_eq!((beyond.items.len(), beyond.total), (0, u64::try_from(MANY).expect("positive")));
    // Another app sees none of them.
    let other = store.list_changesets(AppId(Uuid::now_v7()), &every, page(1)).await.expect("reads");
    assert_eq!((other.items.len(), other.total), (0, 0));

    // The plan of the unfiltered page walks the listing index: no sort.
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT id FROM changesets WHERE app_id = $1 ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET 9980",
    )
    .bind(shop.id.0)
    .fetch_all(&mut conn)
    .await
    .expect("explain runs");
    assert!(plan.iter().any(|l| l.contains("changesets_by_app")), "{plan:#?}");
    assert!(!plan.iter().any(|l| l.contains("Sort")), "{plan:#?}");
}

#[tokio::test]
async fn a_second_open_changeset_is_refused_as_on_sqlite_and_a_closed_one_frees_it() {
    let Some((store, _scratch)) = common::fresh_store().await else { return };
    let ada = user("ada");
    let shop = app("shop", &ada);
    let ws = workspace(&shop, &ada, "default");
    let first = draft(shop.id, ws.id, ada.id);
    setup(
        &store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(AppMutation::InsertApp(shop.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws.clone())),
            Mutation::from(ChangesetMutation::InsertChangeset(first.clone())),
        ],
    )
    .await;
    let second = draft(shop.id, ws.id, ada.id);
    let err = store
        .commit(
            UnitOfWork::new()
                .unaudited(Mutation::from(ChangesetMutation::InsertChangeset(second.clone())), Unaudited::Fixture),
        )
        .await
        .unwrap_err();
    // The same full error as SQLite's (it was `taken` with another message).
    assert_eq!(err, Error::from(ConflictReason::OpenChangesetExists));

    // Rejecting the first frees the workspace; reopening it then conflicts.
    let closed = Changeset { state: ChangesetState::Rejected, version: 2, ..first.clone() };
    setup(
        &store,
        [
            Mutation::from(ChangesetMutation::UpdateChangeset(closed.clone())),
            Mutation::from(ChangesetMutation::InsertChangeset(second.clone())),
        ],
    )
    .await;
    let reopened = Changeset { state: ChangesetState::Draft, version: 3, ..closed };
    let err = store
        .commit(
            UnitOfWork::new()
                .unaudited(Mutation::from(ChangesetMutation::UpdateChangeset(reopened)), Unaudited::Fixture),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    let open = store.open_changeset_of_workspace(shop.id, ws.id).await.unwrap();
    assert_eq!(open.map(|c| c.id), Some(second.id));
}

#[tokio::test]
async fn the_schema_refuses_rows_the_core_never_writes() {
    let Some((store, scratch)) = common::fresh_store().await else { return };
    let ada = user("ada");
    let shop = app("shop", &ada);
    let ws = workspace(&shop, &ada, "default");
    let cs = draft(shop.id, ws.id, ada.id);
    setup(
        &store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(AppMutation::InsertApp(shop.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws.clone())),
            Mutation::from(ChangesetMutation::InsertChangeset(cs.clone())),
        ],
    )
    .await;
    let mut conn = scratch.raw().await;
    for sql in [
        "UPDATE changesets SET state = 'merged'",
        "UPDATE changesets SET revision = -1",
        "INSERT INTO changeset_comments (id, changeset_id, author_id, body, anchor_path, anchor_line,
             anchor_revision, edits, created_at, updated_at, version)
         SELECT gen_random_uuid(), id, author_id, 'x', 'a.yaml', 3, NULL, '[]', now(), now(), 1 FROM changesets",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
    }
}
