//! Conformance cases of the ref-intent aggregate
//! ([`IntentStore`](crate::ports::store::IntentStore) plus the intent
//! mutations; decision 0008).
//!
//! Invariant: a pending intent claims its refs per app — a second claim is
//! `RefBusy` and refuses the whole unit; a move from another value than the
//! one the last applied intent left the ref at is `RefMoved` and refuses the
//! whole unit; an abandoned intent makes the value unknown; an adoption
//! claims whatever the memory; completion keeps the first outcome, frees the
//! refs and sets the memory; pending intents list oldest first.

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
    let mut next = intent(billing.id, &["refs/heads/a"], 1);
    next.moves[0].from = first.moves[0].to.clone();
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

/// A move whose `from` is another value than the one the last applied
/// intent left the ref at refuses its whole unit with `RefMoved` — nothing
/// of it is stored, its audit entry neither; a deleted ref is remembered as
/// absent; a claimed ref is `RefBusy` before its memory is looked at.
pub async fn a_move_from_another_value_than_the_remembered_one_refuses_its_whole_unit<S: Store>(store: &S) {
    let (billing, _) = two_apps(store).await;
    let first = intent(billing.id, &["refs/heads/a"], 0);
    record(store, &first).await.expect("recorded");
    complete(store, first.id, IntentOutcome::Applied).await.expect("applied");
    let at = first.moves[0].to.clone();

    let users = fixtures::users(store, &["bob"]).await;
    let ws = fixtures::workspace(&billing, &users[0], "late");
    let audited = store.audit_chain(0, 1000).await.unwrap();
    let stale = intent(billing.id, &["refs/heads/a"], 1);
    let unit = UnitOfWork::new()
        .record(
            WorkspaceMutation::InsertWorkspace(ws.clone()),
            fixtures::audit_entry("workspace.files_changed", "workspace", "x"),
        )
        .unaudited(IntentMutation::RecordIntent(stale.clone()), Unaudited::RefIntent);
    assert_conflict(store.commit(unit).await, ConflictReason::RefMoved { ref_name: "refs/heads/a".into() });
    assert_eq!(store.workspace(billing.id, ws.id).await.unwrap(), None, "the unit rolled back");
    assert_eq!(store.audit_chain(0, 1000).await.unwrap(), audited, "nothing was audited");
    assert_code(store.intent_outcome(stale.id).await, ErrorCode::NotFound);
    assert_eq!(store.pending_intent_on_ref(billing.id, "refs/heads/a").await.unwrap(), None);

    // The second ref of a unit is checked too.
    let mut two = intent(billing.id, &["refs/heads/new", "refs/heads/a"], 2);
    two.moves[1].from = None;
    assert_conflict(record(store, &two).await, ConflictReason::RefMoved { ref_name: "refs/heads/a".into() });
    assert_eq!(store.pending_intent_on_ref(billing.id, "refs/heads/new").await.unwrap(), None, "no claim is left");

    // From the remembered value: accepted; it deletes the ref.
    let mut delete = intent(billing.id, &["refs/heads/a"], 3);
    (delete.moves[0].from, delete.moves[0].to) = (at.clone(), None);
    record(store, &delete).await.expect("from the remembered value");
    let busy = intent(billing.id, &["refs/heads/a"], 4);
    assert_conflict(record(store, &busy).await, ConflictReason::RefBusy);
    complete(store, delete.id, IntentOutcome::Applied).await.expect("applied");
    let mut from_old = intent(billing.id, &["refs/heads/a"], 5);
    from_old.moves[0].from = at;
    assert_conflict(record(store, &from_old).await, ConflictReason::RefMoved { ref_name: "refs/heads/a".into() });
    let mut create = intent(billing.id, &["refs/heads/a"], 6);
    create.moves[0].from = None;
    record(store, &create).await.expect("the deleted ref is remembered as absent");
}

/// An abandoned intent leaves its refs' values unknown: the next intent is
/// accepted from any value, and its completion makes the value known again.
pub async fn an_abandoned_intent_leaves_the_ref_value_unknown<S: Store>(store: &S) {
    let (billing, _) = two_apps(store).await;
    let first = intent(billing.id, &["refs/heads/a"], 0);
    record(store, &first).await.expect("recorded");
    complete(store, first.id, IntentOutcome::Abandoned).await.expect("abandoned");
    let any = intent(billing.id, &["refs/heads/a"], 1);
    record(store, &any).await.expect("any value is accepted when unknown");
    complete(store, any.id, IntentOutcome::Applied).await.expect("applied");
    let other = intent(billing.id, &["refs/heads/a"], 2);
    assert_conflict(record(store, &other).await, ConflictReason::RefMoved { ref_name: "refs/heads/a".into() });
}

/// An adoption claims a free ref whatever the store remembers (it is
/// refused only when the ref is claimed) and its completion sets the
/// memory to the adopted value.
pub async fn an_adoption_claims_a_ref_whatever_its_memory<S: Store>(store: &S) {
    let (billing, _) = two_apps(store).await;
    let first = intent(billing.id, &["refs/heads/a"], 0);
    record(store, &first).await.expect("recorded");
    complete(store, first.id, IntentOutcome::Applied).await.expect("applied");
    let outside = Some(Sha(fixtures::sha()));
    let mut adoption = intent(billing.id, &["refs/heads/a"], 1);
    (adoption.moves[0].from, adoption.moves[0].to) = (outside.clone(), outside.clone());
    let adopt = |i: &Intent| {
        let unit = UnitOfWork::new()
            .record(IntentMutation::AdoptRefs(i.clone()), fixtures::audit_entry("ref.adopted", "workspace", "x"));
        store.commit(unit)
    };
    adopt(&adoption).await.expect("adopted whatever the memory");
    assert_eq!(store.pending_intent_on_ref(billing.id, "refs/heads/a").await.unwrap(), Some(adoption.clone()));
    let mut again = intent(billing.id, &["refs/heads/a"], 2);
    (again.moves[0].from, again.moves[0].to) = (outside.clone(), outside.clone());
    assert_conflict(adopt(&again).await, ConflictReason::RefBusy);
    let mut during = intent(billing.id, &["refs/heads/a"], 3);
    during.moves[0].from = outside.clone();
    assert_conflict(record(store, &during).await, ConflictReason::RefBusy);
    complete(store, adoption.id, IntentOutcome::Applied).await.expect("applied");
    let mut from_old = intent(billing.id, &["refs/heads/a"], 4);
    from_old.moves[0].from = first.moves[0].to.clone();
    assert_conflict(record(store, &from_old).await, ConflictReason::RefMoved { ref_name: "refs/heads/a".into() });
    record(store, &during).await.expect("from the adopted value");
}
