//! SQLite-specific checks of the changeset aggregate beyond the shared
//! conformance suite: the listing stays fast on a large app.
//!
//! Invariant pinned: listing 10,000 changesets of one app, 20 per page,
//! answers page 1 and page 500 (and filtered first and last pages) well
//! under 5 ms each — the count and the page both walk an index, so the cost
//! does not grow with a sort of the whole app.

use std::time::{Duration, Instant};

use conman_core::conformance::fixtures::{self, app, changeset, later, setup, workspace};
use conman_core::domain::changeset::{Changeset, ChangesetState};
use conman_core::ports::store::{ChangesetFilter, ChangesetStore, Mutation, Page, PageRequest, Store, UnitOfWork};
use conman_store_sqlite::SqliteStore;

/// Changesets in the big app.
const COUNT: usize = 10_000;

/// The fastest of `runs` timed calls of `list_changesets`, and its page.
async fn fastest(
    store: &SqliteStore,
    cs: &Changeset,
    filter: &ChangesetFilter,
    page: u32,
    runs: usize,
) -> (Duration, Page<Changeset>) {
    let mut best = (Duration::MAX, None);
    for _ in 0..runs {
        let start = Instant::now();
        let listed = store.list_changesets(cs.app_id, filter, PageRequest { page, limit: 20 }).await.unwrap();
        let took = start.elapsed();
        if took < best.0 {
            best = (took, Some(listed));
        }
    }
    (best.0, best.1.expect("at least one run"))
}

#[tokio::test]
async fn listing_ten_thousand_changesets_stays_fast_on_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("conman.db")).unwrap();
    let users = fixtures::users(&store, &["ada", "bob"]).await;
    let billing = app("billing", &users[0]);
    let spaces: Vec<_> = (0..10).map(|i| workspace(&billing, &users[i % 2], &format!("w{i}"))).collect();
    setup(&store, [Mutation::InsertApp(billing.clone())]).await;
    setup(&store, spaces.iter().cloned().map(Mutation::InsertWorkspace)).await;

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
        unit = unit.mutate(Mutation::InsertChangeset(cs.clone()));
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
        ("released", ChangesetFilter { state: Some(ChangesetState::Released), author_id: None }, released),
        ("ada's", ChangesetFilter { state: None, author_id: Some(users[0].id) }, adas),
    ];
    let limit = Duration::from_millis(5);
    for (name, filter, expected) in cases {
        let last = u32::try_from(expected.len().div_ceil(20)).unwrap();
        for page in [1, last / 2, last] {
            let (took, listed) = fastest(&store, &all[0], &filter, page, 5).await;
            let from = (page as usize - 1) * 20;
            assert_eq!(listed.total, expected.len() as u64, "{name} total");
            assert_eq!(listed.items, expected[from..(from + 20).min(expected.len())].to_vec(), "{name} page {page}");
            eprintln!("{name}: page {page} of {last} in {took:?}");
            assert!(took < limit, "{name}: page {page} took {took:?}");
        }
    }
    assert_eq!(newest_first.len(), COUNT);
    let (_, page_500) = fastest(&store, &all[0], &ChangesetFilter::default(), 500, 1).await;
    assert_eq!(page_500.items, newest_first[COUNT - 20..].to_vec(), "page 500 holds the oldest 20");
}
