//! Conformance cases of the release aggregate
//! ([`ReleaseStore`](crate::ports::store::ReleaseStore) plus the release
//! mutations).
//!
//! Invariant: a release round-trips whole (items, outcomes, gates), lookups
//! are scoped by app, updates are compare-and-set on `version`, a tag is
//! unique within its app (not across apps) and refuses its whole unit, and
//! listings are newest first with a state filter.

use super::fixtures::{self, app, later, release, setup};
use super::{assert_code, assert_conflict};
use crate::domain::app::App;
use crate::domain::release::{ItemVerdict, Release, ReleaseGate, ReleaseItem, ReleaseState};
use crate::domain::user::User;
use crate::error::ErrorCode;
use crate::ids::{ChangesetId, JobId, ReleaseId, RuntimeProfileId};
use crate::ports::store::{
    AppMutation, ConflictReason, Mutation, PageRequest, Record, ReleaseFilter, ReleaseMutation, Store,
};

async fn two_apps<S: Store>(store: &S) -> (User, App, App) {
    let users = fixtures::users(store, &["ada"]).await;
    let (billing, search) = (app("billing", &users[0]), app("search", &users[0]));
    setup(
        store,
        [
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
        ],
    )
    .await;
    (users[0].clone(), billing, search)
}

fn ids(n: usize) -> Vec<ChangesetId> {
    (0..n).map(|_| ChangesetId(uuid::Uuid::now_v7())).collect()
}

/// An assembled, published release with every field set.
fn published(app: &App, by: &User, tag: &str) -> Release {
    let cs = ids(4);
    let base = release(app, by, &cs);
    let at = later(base.created_at, 60);
    Release {
        state: ReleaseState::Published,
        items: vec![
            ReleaseItem {
                changeset_id: cs[0],
                revision: 2,
                outcome: Some(ItemVerdict::Composed { commit: fixtures::sha() }),
            },
            ReleaseItem { changeset_id: cs[1], revision: 1, outcome: Some(ItemVerdict::AlreadyContained) },
            ReleaseItem {
                changeset_id: cs[2],
                revision: 1,
                outcome: Some(ItemVerdict::Conflicted { paths: vec!["a/b.yaml".into(), "c.yaml".into()] }),
            },
            ReleaseItem {
                changeset_id: cs[3],
                revision: 3,
                outcome: Some(ItemVerdict::OverrideConflict { keys: vec!["environment prod:PORT".into()] }),
            },
        ],
        base_sha: Some(fixtures::sha()),
        composed_sha: Some(fixtures::sha()),
        assemble_job_id: Some(JobId(uuid::Uuid::now_v7())),
        gates: vec![ReleaseGate {
            environment: Some("prod".into()),
            profile_id: Some(RuntimeProfileId(uuid::Uuid::now_v7())),
            job_id: JobId(uuid::Uuid::now_v7()),
            passed: Some(false),
            failure: Some("exited with code 3".into()),
        }],
        failure: Some("an earlier assembly failed".into()),
        tag: Some(tag.into()),
        assembled_by: Some(by.id),
        assembled_at: Some(at),
        published_by: Some(by.id),
        published_at: Some(later(at, 5)),
        reverts_release_id: Some(ReleaseId(uuid::Uuid::now_v7())),
        updated_at: later(at, 5),
        ..base
    }
}

/// A release reads back equal, field for field, under its app only.
pub async fn release_round_trips_whole_and_is_scoped_by_app<S: Store>(store: &S) {
    let (ada, billing, search) = two_apps(store).await;
    let draft = release(&billing, &ada, &ids(2));
    let full = published(&billing, &ada, "r2026.12.03.1");
    setup(store, [ReleaseMutation::InsertRelease(draft.clone()), ReleaseMutation::InsertRelease(full.clone())]).await;

    assert_eq!(store.release(billing.id, draft.id).await.unwrap(), Some(draft.clone()));
    assert_eq!(store.release(billing.id, full.id).await.unwrap(), Some(full.clone()));
    assert_eq!(store.release(search.id, full.id).await.unwrap(), None);
}

/// Updates are compare-and-set on `version`; an unknown release is not found.
pub async fn release_update_is_compare_and_set<S: Store>(store: &S) {
    let (ada, billing, _) = two_apps(store).await;
    let draft = release(&billing, &ada, &ids(1));
    setup(store, [ReleaseMutation::InsertRelease(draft.clone())]).await;

    let next = Release { state: ReleaseState::Assembling, version: 2, ..draft.clone() };
    setup(store, [ReleaseMutation::UpdateRelease(next.clone())]).await;
    assert_eq!(store.release(billing.id, draft.id).await.unwrap(), Some(next.clone()));

    let stale = Release { title: "lost".into(), version: 2, ..next.clone() };
    assert_conflict(
        fixtures::commit(store, [ReleaseMutation::UpdateRelease(stale)]).await,
        ConflictReason::StaleVersion { entity: "release" },
    );
    assert_eq!(store.release(billing.id, draft.id).await.unwrap(), Some(next));

    let unknown = Release { version: 2, ..release(&billing, &ada, &[]) };
    assert_code(fixtures::commit(store, [ReleaseMutation::UpdateRelease(unknown)]).await, ErrorCode::NotFound);
}

/// Two releases of one app never hold the same tag: the second publish's
/// whole unit is refused. Another app may use the same tag.
pub async fn a_tag_is_unique_per_app_and_refuses_its_whole_unit<S: Store>(store: &S) {
    let (ada, billing, search) = two_apps(store).await;
    let first = published(&billing, &ada, "r2026.12.03.1");
    let second = release(&billing, &ada, &ids(1));
    setup(store, [ReleaseMutation::InsertRelease(first), ReleaseMutation::InsertRelease(second.clone())]).await;

    let same_tag =
        Release { tag: Some("r2026.12.03.1".into()), state: ReleaseState::Published, version: 2, ..second.clone() };
    let bystander = release(&billing, &ada, &ids(1));
    assert_conflict(
        fixtures::commit(
            store,
            [ReleaseMutation::InsertRelease(bystander.clone()), ReleaseMutation::UpdateRelease(same_tag)],
        )
        .await,
        ConflictReason::Taken { record: Record::Release, field: "tag".into() },
    );
    assert_eq!(store.release(billing.id, second.id).await.unwrap(), Some(second));
    assert_eq!(store.release(billing.id, bystander.id).await.unwrap(), None, "the whole unit is refused");

    let inserted_twin = published(&billing, &ada, "r2026.12.03.1");
    assert_conflict(
        fixtures::commit(store, [ReleaseMutation::InsertRelease(inserted_twin)]).await,
        ConflictReason::Taken { record: Record::Release, field: "tag".into() },
    );

    let elsewhere = published(&search, &ada, "r2026.12.03.1");
    setup(store, [ReleaseMutation::InsertRelease(elsewhere.clone())]).await;
    assert_eq!(store.release(search.id, elsewhere.id).await.unwrap(), Some(elsewhere));
}

/// Releases list newest first, filtered by state, with totals; tags are
/// found by prefix within one app, sorted.
pub async fn releases_list_newest_first_and_tags_are_found_by_prefix<S: Store>(store: &S) {
    let (ada, billing, search) = two_apps(store).await;
    let base = fixtures::now();
    let listed: Vec<Release> = (0..5)
        .map(|i| {
            let r = if i % 2 == 0 {
                published(&billing, &ada, &format!("r2026.12.0{}.{}", 3 + i / 4, i + 1))
            } else {
                release(&billing, &ada, &ids(1))
            };
            Release { created_at: later(base, i), ..r }
        })
        .collect();
    let elsewhere = published(&search, &ada, "r2026.12.03.9");
    // Inserted oldest first, so insertion order cannot pass for "newest first".
    setup(store, listed.iter().cloned().chain([elsewhere]).map(ReleaseMutation::InsertRelease)).await;
    let newest_first: Vec<Release> = listed.iter().rev().cloned().collect();

    let all = store.list_releases(billing.id, ReleaseFilter::default(), PageRequest::default()).await.unwrap();
    assert_eq!(all.items, newest_first);
    assert_eq!(all.total, 5);
    let second =
        store.list_releases(billing.id, ReleaseFilter::default(), PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(second.items, newest_first[2..4].to_vec());

    let drafts = ReleaseFilter { state: Some(ReleaseState::Draft) };
    let got = store.list_releases(billing.id, drafts, PageRequest::default()).await.unwrap();
    let want: Vec<Release> = newest_first.iter().filter(|r| r.state == ReleaseState::Draft).cloned().collect();
    assert_eq!(got.items, want);
    assert_eq!(got.total, 2);

    let tags = store.release_tags_with_prefix(billing.id, "r2026.12.03.").await.unwrap();
    assert_eq!(tags, vec!["r2026.12.03.1".to_owned(), "r2026.12.03.3".to_owned()]);
    let tags = store.release_tags_with_prefix(billing.id, "r2026.12.04.").await.unwrap();
    assert_eq!(tags, vec!["r2026.12.04.5".to_owned()]);
    // `_` and `%` are not wildcards.
    assert!(store.release_tags_with_prefix(billing.id, "r2026_12%").await.unwrap().is_empty());
}
