//! SQLite-specific checks of the changeset aggregate beyond the shared
//! conformance suite: the listing of a large app.
//!
//! Invariant pinned: listing 10,000 changesets of one app, 20 per page,
//! answers exactly the right rows and totals on page 1, a middle page and
//! the last page (page 500), unfiltered and filtered. The plans (an index
//! walk, no sort of the app) are pinned by the crate's unit tests; the
//! timing is measured by `cargo xtask bench`, never asserted in a test.

use conman_core::conformance::fixtures::{self, app, changeset, later, setup, workspace};
use conman_core::domain::changeset::{Changeset, ChangesetState};
use conman_core::ports::store::{
    AppMutation, ChangesetFilter, ChangesetMutation, ChangesetStore, Mutation, Page, PageRequest, Store, Unaudited,
    UnitOfWork, WorkspaceMutation,
};
use conman_store_sqlite::SqliteStore;

/// Changesets in the big app.
const COUNT: usize = 10_000;

/// One page of `list_changesets`.
async fn listed(store: &SqliteStore, cs: &Changeset, filter: &ChangesetFilter, page: u32) -> Page<Changeset> {
    store.list_changesets(cs.app_id, filter, PageRequest { page, limit: 20 }).await.unwrap()
}

#[tokio::test]
async fn listing_ten_thousand_changesets_answers_every_page_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("conman.db")).unwrap();
    let users = fixtures::users(&store, &["ada", "bob"]).await;
    let billing = app("billing", &users[0]);
    let spaces: Vec<_> = (0..10).map(|i| workspace(&billing, &users[i % 2], &format!("w{i}"))).collect();
    setup(&store, [Mutation::from(AppMutation::InsertApp(billing.clone()))]).await;
    setup(&store, spaces.iter().cloned().map(WorkspaceMutation::InsertWorkspace)).await;

    // One open changeset per workspace, the rest released or rejected.
    let base = fixtures::now();
    let all: Vec<Changeset> = (0..COUNT)
        .map(|i| {
            let state = match i {
                _ if i >= COUNT - spaces.len() => ChangesetState::InReview,
                _ if i % 2 == 0 => ChangesetState::Released,
                _ => ChangesetState::Rejected,
            };
            Changeset {
                state,
                created_at: later(base, i as i64),
                ..changeset(&spaces[i % spaces.len()], &users[i % 3 % 2], &format!("change {i}"))
            }
        })
        .collect();
    let mut unit = UnitOfWork::new();
    for cs in &all {
        unit = unit.unaudited(Mutation::from(ChangesetMutation::InsertChangeset(cs.clone())), Unaudited::Fixture);
    }
    store.commit(unit).await.unwrap();

    let mut newest_first = all.clone();
    newest_first.sort_by_key(|cs| std::cmp::Reverse((cs.created_at, cs.id.0)));
    let expect =
        |keep: &dyn Fn(&Changeset) -> bool| newest_first.iter().filter(|cs| keep(cs)).cloned().collect::<Vec<_>>();
    let released = expect(&|cs| cs.state == ChangesetState::Released);
    let adas = expect(&|cs| cs.author_id == users[0].id);
    let cases = [
        ("all", ChangesetFilter::default(), newest_first.clone()),
        (
            "released",
            ChangesetFilter { state: Some(ChangesetState::Released), author_id: None, ..Default::default() },
            released,
        ),
        ("ada's", ChangesetFilter { state: None, author_id: Some(users[0].id), ..Default::default() }, adas),
    ];
    for (name, filter, expected) in cases {
        let last = u32::try_from(expected.len().div_ceil(20)).unwrap();
        for page in [1, last / 2, last] {
            let got = listed(&store, &all[0], &filter, page).await;
            let from = (page as usize - 1) * 20;
            assert_eq!(got.total, expected.len() as u64, "{name} total");
            assert_eq!(got.items, expected[from..(from + 20).min(expected.len())].to_vec(), "{name} page {page}");
        }
    }
    assert_eq!(newest_first.len(), COUNT);
    let page_500 = listed(&store, &all[0], &ChangesetFilter::default(), 500).await;
    assert_eq!(page_500.items, newest_first[COUNT - 20..].to_vec(), "page 500 holds the oldest 20");
}
