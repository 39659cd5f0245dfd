//! Conformance cases of the ref-intent aggregate
//! ([`IntentStore`](crate::ports::store::IntentStore) plus the intent
//! mutations; decision 0008).
//!
//! Invariant: a pending intent claims its refs per app — a second claim is
//! `RefBusy` and refuses the whole unit; completion keeps the first outcome
//! and frees the refs; pending intents list oldest first.

use super::fixtures::{self, app, later, now, setup};
use super::{assert_code, assert_conflict};
use crate::domain::app::App;
use crate::error::ErrorCode;
use crate::ids::{AppId, IntentId};
use crate::ports::git::{RefMove, Sha};
use crate::ports::store::{
    AppMutation, ConflictReason, Intent, IntentMutation, IntentOutcome, Store, Unaudited, UnitOfWork, WorkspaceMutation,
};

async fn two_apps<S: Store>(store: &S) -> (App, App) {
    let users = fixtures::users(store, &["ada"]).await;
    let (billing, search) = (app("billing", &users[0]), app("search", &users[0]));
    setup(store, [AppMutation::InsertApp(billing.clone()), AppMutation::InsertApp(search.clone())]).await;
    (billing, search)
}

fn intent(app_id: AppId, refs: &[&str], secs: i64) -> Intent {
    Intent {
        id: IntentId(uuid::Uuid::now_v7()),
        app_id,
        operation: "workspace.files_changed".into(),
        owner_type: "workspace".into(),
        owner_id: uuid::Uuid::now_v7().to_string(),
        moves: refs
            .iter()
            .map(|name| RefMove {
                name: (*name).into(),
                from: Some(Sha(fixtures::sha())),
                to: Some(Sha(fixtures::sha())),
            })
            .collect(),
        created_at: later(now(), secs),
    }
}

async fn record<S: Store>(store: &S, i: &Intent) -> Result<(), crate::error::Error> {
    store.commit(UnitOfWork::new().unaudited(IntentMutation::RecordIntent(i.clone()), Unaudited::RefIntent)).await
}

async fn complete<S: Store>(store: &S, id: IntentId, outcome: IntentOutcome) -> Result<(), crate::error::Error> {
    let done = IntentMutation::CompleteIntent { id, outcome, at: now() };
    store.commit(UnitOfWork::new().unaudited(done, Unaudited::RefIntent)).await
}

/// An intent reads back equal (every field, every move) while pending,
/// through the app's list, the whole list and each of its refs.
pub async fn intent_round_trips_while_pending<S: Store>(store: &S) {
    let (billing, search) = two_apps(store).await;
    let mut i = intent(billing.id, &["refs/heads/ws/ada/main", "refs/conman/wip/1"], 0);
    // A created ref and a deleted one.
    i.moves[0].from = None;
    i.moves[1].to = None;
    record(store, &i).await.expect("recorded");
    assert_eq!(store.pending_intents(Some(billing.id)).await.unwrap(), vec![i.clone()]);
    assert_eq!(store.pending_intents(None).await.unwrap(), vec![i.clone()]);
    assert!(store.pending_intents(Some(search.id)).await.unwrap().is_empty());
    for m in &i.moves {
        assert_eq!(store.pending_intent_on_ref(billing.id, &m.name).await.unwrap(), Some(i.clone()));
        assert_eq!(store.pending_intent_on_ref(search.id, &m.name).await.unwrap(), None);
    }
    assert_eq!(store.intent_outcome(i.id).await.unwrap(), None);
}

/// A ref claimed by a pending intent refuses a second claim in the same
/// app — the whole unit, its other mutations too — but not in another app.
pub async fn a_claimed_ref_refuses_a_second_intent_and_its_whole_unit<S: Store>(store: &S) {
    let (billing, search) = two_apps(store).await;
    let first = intent(billing.id, &["refs/heads/a", "refs/heads/b"], 0);
    record(store, &first).await.expect("recorded");
    let users = fixtures::users(store, &["bob"]).await;
    let ws = fixtures::workspace(&billing, &users[0], "busy");
    let second = intent(billing.id, &["refs/heads/b"], 1);
    let unit = UnitOfWork::new()
        .record(
            WorkspaceMutation::InsertWorkspace(ws.clone()),
            fixtures::audit_entry("workspace.created", "workspace", "x"),
        )
        .unaudited(IntentMutation::RecordIntent(second.clone()), Unaudited::RefIntent);
    assert_conflict(store.commit(unit).await, ConflictReason::RefBusy);
    assert_eq!(store.workspace(billing.id, ws.id).await.unwrap(), None, "the unit rolled back");
    assert_code(store.intent_outcome(second.id).await, ErrorCode::NotFound);
    assert_eq!(store.pending_intents(None).await.unwrap(), vec![first.clone()]);
    record(store, &intent(search.id, &["refs/heads/b"], 2)).await.expect("another app's ref is free");
}

/// Completing frees the refs and keeps the first outcome; completing again
/// changes nothing; an unknown id is `not_found`.
pub async fn completion_frees_the_refs_and_keeps_the_first_outcome<S: Store>(store: &S) {
    let (billing, _) = two_apps(store).await;
    let first = intent(billing.id, &["refs/heads/a"], 0);
    record(store, &first).await.expect("recorded");
    complete(store, first.id, IntentOutcome::Applied).await.expect("completed");
    assert_eq!(store.intent_outcome(first.id).await.unwrap(), Some(IntentOutcome::Applied));
    assert!(store.pending_intents(None).await.unwrap().is_empty());
    assert_eq!(store.pending_intent_on_ref(billing.id, "refs/heads/a").await.unwrap(), None);
    complete(store, first.id, IntentOutcome::Abandoned).await.expect("completing again is a no-op");
    assert_eq!(store.intent_outcome(first.id).await.unwrap(), Some(IntentOutcome::Applied));
    let next = intent(billing.id, &["refs/heads/a"], 1);
    record(store, &next).await.expect("the ref is free again");
    complete(store, next.id, IntentOutcome::Abandoned).await.expect("abandoned");
    assert_eq!(store.intent_outcome(next.id).await.unwrap(), Some(IntentOutcome::Abandoned));
    assert_code(complete(store, IntentId(uuid::Uuid::now_v7()), IntentOutcome::Applied).await, ErrorCode::NotFound);
}

/// Pending intents list oldest first, across apps and per app.
pub async fn pending_intents_list_oldest_first<S: Store>(store: &S) {
    let (billing, search) = two_apps(store).await;
    let late = intent(billing.id, &["refs/heads/late"], 20);
    let early = intent(search.id, &["refs/heads/early"], 5);
    let middle = intent(billing.id, &["refs/heads/middle"], 10);
    let done = intent(billing.id, &["refs/heads/done"], 1);
    for i in [&late, &early, &middle, &done] {
        record(store, i).await.expect("recorded");
    }
    complete(store, done.id, IntentOutcome::Applied).await.expect("completed");
    assert_eq!(store.pending_intents(None).await.unwrap(), vec![early, middle.clone(), late.clone()]);
    assert_eq!(store.pending_intents(Some(billing.id)).await.unwrap(), vec![middle, late]);
}

/// An intent of an unknown app is refused (`conflict`, missing reference).
pub async fn an_intent_of_an_unknown_app_is_refused<S: Store>(store: &S) {
    let i = intent(AppId(uuid::Uuid::now_v7()), &["refs/heads/a"], 0);
    let err = assert_code(record(store, &i).await, ErrorCode::Conflict);
    assert_eq!(err, ConflictReason::MissingReference.into());
}
