//! Conformance cases of the changeset aggregate
//! ([`ChangesetStore`](crate::ports::store::ChangesetStore) plus the
//! changeset, revision, review and comment mutations).
//!
//! Invariants pinned here: every field round-trips exactly (lists keep their
//! order, timestamps their microseconds); lookups are scoped by app (a
//! changeset) or by changeset (a comment); a workspace holds at most one
//! open changeset — neither released nor rejected — whether a second one
//! would come from an insert or from an update reopening a closed one, while
//! closed changesets never block; changeset and comment updates are
//! compare-and-set on `version` (stale: `conflict`, unknown id:
//! `not_found`); a revision number is unique per changeset; `PutReview`
//! keeps one vote per (changeset, revision, reviewer); listings follow the
//! port's orders (changesets newest first by creation time then id,
//! revisions by number, votes by revision then time, comments oldest first
//! by creation time then id). A refused unit leaves nothing behind — no
//! row and no audit record.

use chrono::{TimeDelta, TimeZone, Utc};

use super::fixtures::{self, app, changeset, comment, job, later, review, revision, setup, sha, workspace};
use super::{assert_code, assert_conflict};
use crate::domain::app::App;
use crate::domain::changeset::{Changeset, ChangesetRevision, ChangesetState, Revalidation, RevalidationOutcome};
use crate::domain::comment::{Comment, CommentAnchor, CommentEdit};
use crate::domain::job::JobType;
use crate::domain::review::{Review, ReviewAction};
use crate::domain::user::User;
use crate::domain::workspace::Workspace;
use crate::domain::StateMachine as _;
use crate::error::ErrorCode;
use crate::ids::{ChangesetId, JobId};
use crate::ports::store::{
    AppMutation, ChangesetFilter, ChangesetMutation, ChangesetOrder, ConflictReason, JobMutation, Mutation, Page,
    PageRequest, Store, WorkspaceMutation,
};

/// Users, apps and workspaces the cases share.
struct World {
    ada: User,
    bob: User,
    carol: User,
    billing: App,
    search: App,
    /// `billing`, owned by ada.
    ws: Workspace,
    /// `billing`, owned by bob.
    ws2: Workspace,
    /// `search`, owned by ada.
    elsewhere: Workspace,
}

/// Inserts users `ada`, `bob` and `carol`, apps `billing` and `search`,
/// and three workspaces.
async fn world<S: Store>(store: &S) -> World {
    let users = fixtures::users(store, &["ada", "bob", "carol"]).await;
    let [ada, bob, carol] = <[User; 3]>::try_from(users).expect("three users");
    let (billing, search) = (app("billing", &ada), app("search", &ada));
    let ws = workspace(&billing, &ada, "feature");
    let ws2 = workspace(&billing, &bob, "other");
    let elsewhere = workspace(&search, &ada, "feature");
    setup(
        store,
        [
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws2.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(elsewhere.clone())),
        ],
    )
    .await;
    World { ada, bob, carol, billing, search, ws, ws2, elsewhere }
}

/// Inserts a queued gate job of `app` (for the `gate_job_id` fields).
async fn gate_job<S: Store>(store: &S, app: &App) -> JobId {
    let gate = job(app, JobType::GateSubmit);
    setup(store, [Mutation::from(JobMutation::InsertJob(gate.clone()))]).await;
    gate.id
}

/// Inserts `changesets`, one unit.
async fn insert<S: Store>(store: &S, changesets: &[&Changeset]) {
    setup(store, changesets.iter().map(|cs| Mutation::from(ChangesetMutation::InsertChangeset((*cs).clone())))).await;
}

/// `cs` with `version` + 1, as the core prepares an `UpdateChangeset`.
fn bump(cs: &Changeset) -> Changeset {
    Changeset { version: cs.version + 1, updated_at: later(cs.updated_at, 1), ..cs.clone() }
}

/// `cs` bumped into `state`.
fn moved(cs: &Changeset, state: ChangesetState) -> Changeset {
    Changeset { state, ..bump(cs) }
}

/// The changeset as stored, under its app.
async fn reload<S: Store>(store: &S, cs: &Changeset) -> Option<Changeset> {
    store.changeset(cs.app_id, cs.id).await.expect("changeset reads")
}

/// A changeset with every optional field set reads back equal under its
/// app, not under another app; an unknown id is not found.
pub async fn changeset_round_trips_every_field_and_is_scoped_by_app<S: Store>(store: &S) {
    let w = world(store).await;
    let gate = gate_job(store, &w.billing).await;
    let old = Changeset { state: ChangesetState::Released, ..changeset(&w.ws, &w.ada, "old") };
    let plain = changeset(&w.ws2, &w.bob, "plain");
    let created = Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap() + TimeDelta::microseconds(123_456);
    let full = Changeset {
        description: "Raise the pool size.\n\nSee \"ünïcode\" ✓ and 'quotes'".into(),
        state: ChangesetState::InReview,
        revision: 3,
        head_sha: Some(sha()),
        // Not sorted: the store keeps the order it was given.
        depends_on: vec![plain.id, old.id],
        gate_job_id: Some(gate),
        gate_failure: Some("lint: prod/db.yaml:3: unknown key \"pool\"".into()),
        queued_at: Some(created + TimeDelta::microseconds(2)),
        last_revalidation: Some(Revalidation {
            at: created + TimeDelta::microseconds(3),
            head: sha(),
            outcome: RevalidationOutcome::GateRunning,
            tree: Some(sha()),
            gated_tree: Some(sha()),
            gate_job_id: Some(JobId(uuid::Uuid::now_v7())),
        }),
        created_at: created,
        updated_at: created + TimeDelta::microseconds(1),
        version: 7,
        ..changeset(&w.ws, &w.ada, "Raise the pool")
    };
    insert(store, &[&old, &plain, &full]).await;

    for cs in [&old, &plain, &full] {
        assert_eq!(store.changeset(w.billing.id, cs.id).await.unwrap().as_ref(), Some(cs));
        assert_eq!(store.changeset(w.search.id, cs.id).await.unwrap(), None, "another app's changeset is not found");
    }
    let ghost = changeset(&w.ws, &w.ada, "ghost");
    assert_eq!(store.changeset(w.billing.id, ghost.id).await.unwrap(), None);
}

/// The queue order lists by the time each changeset entered the queue,
/// oldest first, then id; one without a queue time comes first; filters
/// and pages apply as in the newest-first order.
pub async fn queued_changesets_list_in_queue_order<S: Store>(store: &S) {
    let w = world(store).await;
    let base = fixtures::now();
    // Created in one order, queued in another.
    let queued_secs = [30, 10, 20, 10];
    let mut listed = Vec::new();
    for (i, secs) in queued_secs.iter().enumerate() {
        let ws = workspace(&w.billing, &w.ada, &format!("q{i}"));
        listed.push(Changeset {
            state: ChangesetState::Queued,
            created_at: later(base, i as i64),
            queued_at: Some(later(base, 100 + secs)),
            ..changeset(&ws, &w.ada, &format!("queued {i}"))
        });
        setup(store, [WorkspaceMutation::InsertWorkspace(ws)]).await;
    }
    let ws = workspace(&w.billing, &w.ada, "never");
    let never = Changeset { state: ChangesetState::Queued, ..changeset(&ws, &w.ada, "no queue time") };
    setup(store, [WorkspaceMutation::InsertWorkspace(ws)]).await;
    listed.push(never);
    let refs: Vec<&Changeset> = listed.iter().collect();
    insert(store, &refs).await;
    let mut want = listed.clone();
    want.sort_by_key(|c| (c.queued_at, c.id));
    assert_eq!(want[0].queued_at, None);
    let filter = ChangesetFilter {
        state: Some(ChangesetState::Queued),
        order: ChangesetOrder::QueueOrder,
        ..Default::default()
    };
    let all = store.list_changesets(w.billing.id, &filter, PageRequest::default()).await.unwrap();
    assert_eq!(all.items, want);
    assert_eq!(all.total, 5);
    let second = store.list_changesets(w.billing.id, &filter, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(second.items, want[2..4].to_vec());
    assert_eq!(second.total, 5);
    // The queue depth counts them, and only queued ones.
    assert_eq!(store.queue_depths().await.unwrap(), vec![(w.billing.id, 5)]);
    let ws = workspace(&w.billing, &w.ada, "drafting");
    setup(store, [WorkspaceMutation::InsertWorkspace(ws.clone())]).await;
    insert(store, &[&changeset(&ws, &w.ada, "a draft")]).await;
    assert_eq!(store.queue_depths().await.unwrap(), vec![(w.billing.id, 5)]);
}

/// Listing is per app, newest first (`created_at`, then id), filtered by
/// state and author, paged with totals.
pub async fn list_changesets_filters_and_pages_newest_first<S: Store>(store: &S) {
    let w = world(store).await;
    let base = fixtures::now();
    let specs = [
        (&w.ada, ChangesetState::Draft),
        (&w.bob, ChangesetState::InReview),
        (&w.ada, ChangesetState::Released),
        (&w.ada, ChangesetState::InReview),
        (&w.bob, ChangesetState::Rejected),
        (&w.carol, ChangesetState::Queued),
    ];
    let mut listed = Vec::new();
    let mut workspaces = Vec::new();
    for (i, (author, state)) in specs.iter().enumerate() {
        let ws = workspace(&w.billing, author, &format!("w{i}"));
        listed.push(Changeset {
            state: *state,
            created_at: later(base, i as i64),
            updated_at: later(base, 100 - i as i64),
            ..changeset(&ws, author, &format!("change {i}"))
        });
        workspaces.push(ws);
    }
    // Same creation instant as the newest: the larger id comes first.
    let tie_ws = workspace(&w.billing, &w.bob, "tie");
    let tie = Changeset { created_at: later(base, 5), ..changeset(&tie_ws, &w.bob, "tie") };
    workspaces.push(tie_ws);
    let other_app = changeset(&w.elsewhere, &w.ada, "elsewhere");
    setup(store, workspaces.into_iter().map(WorkspaceMutation::InsertWorkspace)).await;
    // Inserted oldest last, so insertion order cannot pass for age order.
    let mut inserted: Vec<&Changeset> = listed.iter().rev().collect();
    inserted.push(&tie);
    inserted.push(&other_app);
    insert(store, &inserted).await;

    let mut newest_first: Vec<Changeset> = listed.iter().cloned().chain([tie]).collect();
    newest_first.sort_by_key(|cs| std::cmp::Reverse((cs.created_at, cs.id.0)));
    let all = PageRequest { page: 1, limit: 100 };
    let app_id = w.billing.id;
    let list =
        |filter: ChangesetFilter, page| async move { store.list_changesets(app_id, &filter, page).await.unwrap() };
    let expect =
        |keep: &dyn Fn(&Changeset) -> bool| newest_first.iter().filter(|cs| keep(cs)).cloned().collect::<Vec<_>>();

    let every = list(ChangesetFilter::default(), all).await;
    assert_eq!((every.items, every.total), (newest_first.clone(), 7));

    let in_review =
        list(ChangesetFilter { state: Some(ChangesetState::InReview), author_id: None, ..Default::default() }, all)
            .await;
    assert_eq!((in_review.items, in_review.total), (expect(&|cs| cs.state == ChangesetState::InReview), 2));
    let adas = list(ChangesetFilter { state: None, author_id: Some(w.ada.id), ..Default::default() }, all).await;
    assert_eq!((adas.items, adas.total), (expect(&|cs| cs.author_id == w.ada.id), 3));
    let bobs_drafts = list(
        ChangesetFilter { state: Some(ChangesetState::Draft), author_id: Some(w.bob.id), ..Default::default() },
        all,
    )
    .await;
    assert_eq!(
        (bobs_drafts.items, bobs_drafts.total),
        (expect(&|cs| cs.author_id == w.bob.id && cs.state == ChangesetState::Draft), 1)
    );
    let approved =
        list(ChangesetFilter { state: Some(ChangesetState::Approved), author_id: None, ..Default::default() }, all)
            .await;
    assert_eq!((approved.items, approved.total), (vec![], 0));

    let second = list(ChangesetFilter::default(), PageRequest { page: 2, limit: 4 }).await;
    assert_eq!((second.items, second.total), (newest_first[4..].to_vec(), 7));
    let adas_second = list(
        ChangesetFilter { state: None, author_id: Some(w.ada.id), ..Default::default() },
        PageRequest { page: 2, limit: 2 },
    )
    .await;
    assert_eq!((adas_second.items, adas_second.total), (expect(&|cs| cs.author_id == w.ada.id)[2..].to_vec(), 3));
    let beyond = list(ChangesetFilter::default(), PageRequest { page: 3, limit: 4 }).await;
    assert_eq!((beyond.items, beyond.total), (vec![], 7));

    let search = store.list_changesets(w.search.id, &ChangesetFilter::default(), all).await.unwrap();
    assert_eq!((search.items, search.total), (vec![other_app], 1));
    let carols_search = store
        .list_changesets(
            w.search.id,
            &ChangesetFilter { state: None, author_id: Some(w.carol.id), ..Default::default() },
            all,
        )
        .await;
    assert_eq!(carols_search.unwrap(), Page { items: vec![], total: 0 });
}

/// A second open changeset on a workspace is a conflict in every open state
/// of the first, and its unit rolls back; closed changesets never block;
/// once the open one is released or rejected a new one may be inserted.
pub async fn a_workspace_has_at_most_one_open_changeset<S: Store>(store: &S) {
    let w = world(store).await;
    let first = changeset(&w.ws, &w.ada, "first");
    insert(store, &[&first]).await;
    let before = fixtures::verified_chain(store, 100).await;

    let unrelated = changeset(&w.ws2, &w.bob, "unrelated");
    let twin = changeset(&w.ws, &w.ada, "twin");
    let refused = fixtures::commit(
        store,
        [
            Mutation::from(ChangesetMutation::InsertChangeset(unrelated.clone())),
            Mutation::from(ChangesetMutation::InsertChangeset(twin.clone())),
        ],
    )
    .await;
    assert_conflict(refused, ConflictReason::OpenChangesetExists);
    assert_eq!(reload(store, &unrelated).await, None, "the unit rolled back");
    assert_eq!(reload(store, &twin).await, None);
    assert_eq!(fixtures::verified_chain(store, 100).await, before, "no audit record of the refused unit");
    assert_eq!(store.open_changeset_of_workspace(w.billing.id, w.ws.id).await.unwrap(), Some(first.clone()));

    let mut current = first;
    for state in ChangesetState::STATES.iter().copied().filter(|s| s.is_open()) {
        current = moved(&current, state);
        setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(current.clone()))]).await;
        let twin = changeset(&w.ws, &w.bob, "twin");
        let result = fixtures::commit(store, [Mutation::from(ChangesetMutation::InsertChangeset(twin.clone()))]).await;
        assert_conflict(result, ConflictReason::OpenChangesetExists);
        assert_eq!(reload(store, &twin).await, None, "a {} changeset blocks a second", state.as_str());
    }

    // Closed changesets coexist with the open one and with each other.
    let released = Changeset { state: ChangesetState::Released, ..changeset(&w.ws, &w.ada, "released") };
    let rejected = Changeset { state: ChangesetState::Rejected, ..changeset(&w.ws, &w.ada, "rejected") };
    let rejected_too = Changeset { state: ChangesetState::Rejected, ..changeset(&w.ws, &w.bob, "rejected too") };
    insert(store, &[&released, &rejected, &rejected_too]).await;
    assert_eq!(store.open_changeset_of_workspace(w.billing.id, w.ws.id).await.unwrap(), Some(current.clone()));

    for closing in [ChangesetState::Released, ChangesetState::Rejected] {
        current = moved(&current, closing);
        setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(current.clone()))]).await;
        assert_eq!(store.open_changeset_of_workspace(w.billing.id, w.ws.id).await.unwrap(), None);
        let next = changeset(&w.ws, &w.ada, &format!("after {}", closing.as_str()));
        insert(store, &[&next]).await;
        assert_eq!(store.open_changeset_of_workspace(w.billing.id, w.ws.id).await.unwrap(), Some(next.clone()));
        current = next;
    }
}

/// Reopening a rejected changeset while its workspace has another open one
/// is a conflict that changes nothing; once that one closes, it may reopen.
pub async fn reopening_beside_an_open_changeset_is_a_conflict<S: Store>(store: &S) {
    let w = world(store).await;
    let rejected = Changeset { state: ChangesetState::Rejected, ..changeset(&w.ws, &w.ada, "rejected") };
    let open = changeset(&w.ws, &w.ada, "open");
    insert(store, &[&rejected, &open]).await;

    let reopened = moved(&rejected, ChangesetState::Draft);
    let result = fixtures::commit(store, [Mutation::from(ChangesetMutation::UpdateChangeset(reopened.clone()))]).await;
    assert_conflict(result, ConflictReason::OpenChangesetExists);
    assert_eq!(reload(store, &rejected).await, Some(rejected.clone()));
    assert_eq!(store.open_changeset_of_workspace(w.billing.id, w.ws.id).await.unwrap(), Some(open.clone()));

    // A closed-to-closed update is never blocked.
    let released = moved(&open, ChangesetState::Released);
    setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(released))]).await;
    setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(reopened.clone()))]).await;
    assert_eq!(store.open_changeset_of_workspace(w.billing.id, w.ws.id).await.unwrap(), Some(reopened.clone()));

    // An open changeset may keep changing state while open.
    let submitted = moved(&reopened, ChangesetState::Submitted);
    setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(submitted.clone()))]).await;
    assert_eq!(reload(store, &submitted).await, Some(submitted));
}

/// Changeset updates apply on the next version only and replace every
/// field (optional ones back to `None`, lists to empty); a stale version is
/// a conflict and an unknown changeset not found.
pub async fn changeset_update_is_compare_and_set<S: Store>(store: &S) {
    let w = world(store).await;
    let gate = gate_job(store, &w.billing).await;
    let cs = changeset(&w.ws, &w.ada, "first");
    let other = changeset(&w.ws2, &w.bob, "other");
    insert(store, &[&cs, &other]).await;

    let submitted = Changeset {
        title: "First, retitled".into(),
        description: "now with a description".into(),
        state: ChangesetState::Submitted,
        revision: 1,
        head_sha: Some(sha()),
        depends_on: vec![other.id],
        gate_job_id: Some(gate),
        ..bump(&cs)
    };
    setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(submitted.clone()))]).await;
    assert_eq!(reload(store, &cs).await, Some(submitted.clone()));

    let failed = Changeset {
        state: ChangesetState::Draft,
        gate_failure: Some("schema: prod/db.yaml: pool must be a number".into()),
        depends_on: vec![],
        ..bump(&submitted)
    };
    setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(failed.clone()))]).await;
    assert_eq!(reload(store, &cs).await, Some(failed.clone()));
    let cleared = Changeset { gate_job_id: None, gate_failure: None, head_sha: None, ..bump(&failed) };
    setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(cleared.clone()))]).await;
    assert_eq!(reload(store, &cs).await, Some(cleared.clone()));

    let stale = Changeset { title: "stale".into(), ..bump(&failed) };
    assert_code(
        fixtures::commit(store, [Mutation::from(ChangesetMutation::UpdateChangeset(stale))]).await,
        ErrorCode::Conflict,
    );
    let skipped = Changeset { title: "skips a version".into(), ..bump(&bump(&cleared)) };
    assert_code(
        fixtures::commit(store, [Mutation::from(ChangesetMutation::UpdateChangeset(skipped))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(reload(store, &cs).await, Some(cleared));

    let ghost = bump(&changeset(&w.ws2, &w.ada, "ghost"));
    assert_code(
        fixtures::commit(store, [Mutation::from(ChangesetMutation::UpdateChangeset(ghost))]).await,
        ErrorCode::NotFound,
    );
}

/// The open changeset of a workspace is found under its app only, and not
/// among closed ones.
pub async fn open_changeset_of_workspace_is_scoped_by_app_and_workspace<S: Store>(store: &S) {
    let w = world(store).await;
    let old = Changeset { state: ChangesetState::Released, ..changeset(&w.ws, &w.ada, "old") };
    let current = Changeset { state: ChangesetState::Approved, ..changeset(&w.ws, &w.ada, "current") };
    let refused = Changeset { state: ChangesetState::Rejected, ..changeset(&w.ws2, &w.bob, "refused") };
    let there = changeset(&w.elsewhere, &w.ada, "there");
    insert(store, &[&old, &current, &refused, &there]).await;

    let open = |app: &App, ws: &Workspace| {
        let (app_id, ws_id) = (app.id, ws.id);
        async move { store.open_changeset_of_workspace(app_id, ws_id).await.unwrap() }
    };
    assert_eq!(open(&w.billing, &w.ws).await, Some(current.clone()));
    assert_eq!(open(&w.billing, &w.ws2).await, None, "a rejected changeset is not open");
    assert_eq!(open(&w.search, &w.elsewhere).await, Some(there));
    assert_eq!(open(&w.search, &w.ws).await, None, "another app's workspace");
    assert_eq!(open(&w.billing, &w.elsewhere).await, None, "another app's workspace");

    setup(store, [Mutation::from(ChangesetMutation::UpdateChangeset(moved(&current, ChangesetState::Rejected)))]).await;
    assert_eq!(open(&w.billing, &w.ws).await, None);
}

/// Revisions list by number whatever the insertion order, keep their file
/// lists, and a duplicate number is a conflict that rolls its unit back.
pub async fn revisions_list_by_number_and_refuse_duplicates<S: Store>(store: &S) {
    let w = world(store).await;
    let gate = gate_job(store, &w.billing).await;
    let cs = Changeset { state: ChangesetState::Submitted, ..changeset(&w.ws, &w.ada, "cs") };
    let other = changeset(&w.ws2, &w.bob, "other");
    insert(store, &[&cs, &other]).await;

    let r1 = ChangesetRevision { files: vec![], ..revision(&cs, 1, &w.ada) };
    let r2 = ChangesetRevision {
        files: vec![
            "prod/db.yaml".into(),
            "prod/ünïcode file.yaml".into(),
            "z/renamed-from.yaml".into(),
            "z/renamed-to.yaml".into(),
        ],
        gate_job_id: Some(gate),
        created_at: Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap() + TimeDelta::microseconds(654_321),
        ..revision(&cs, 2, &w.bob)
    };
    let o1 = revision(&other, 1, &w.bob);
    setup(store, [r2.clone(), o1.clone(), r1.clone()].into_iter().map(ChangesetMutation::InsertRevision)).await;
    assert_eq!(store.changeset_revisions(cs.id).await.unwrap(), vec![r1.clone(), r2.clone()]);
    assert_eq!(store.changeset_revisions(other.id).await.unwrap(), vec![o1]);
    let ghost = changeset(&w.ws, &w.ada, "ghost");
    assert_eq!(store.changeset_revisions(ghost.id).await.unwrap(), vec![]);

    let before = fixtures::verified_chain(store, 100).await;
    let r3 = revision(&cs, 3, &w.ada);
    let dup = revision(&cs, 2, &w.ada);
    let result = fixtures::commit(
        store,
        [Mutation::from(ChangesetMutation::InsertRevision(r3)), Mutation::from(ChangesetMutation::InsertRevision(dup))],
    )
    .await;
    super::assert_conflict(
        result,
        crate::ports::store::ConflictReason::Taken {
            record: crate::ports::store::Record::ChangesetRevision,
            field: "number".into(),
        },
    );
    assert_eq!(store.changeset_revisions(cs.id).await.unwrap(), vec![r1, r2], "the unit rolled back");
    assert_eq!(fixtures::verified_chain(store, 100).await, before);
}

/// A revision of a changeset that does not exist is refused (the error
/// code is not pinned) and writes nothing.
pub async fn a_revision_of_an_unknown_changeset_is_refused<S: Store>(store: &S) {
    let w = world(store).await;
    let ghost = changeset(&w.ws, &w.ada, "ghost");
    let before = fixtures::verified_chain(store, 100).await;
    let result =
        fixtures::commit(store, [Mutation::from(ChangesetMutation::InsertRevision(revision(&ghost, 1, &w.ada)))]).await;
    assert!(result.is_err(), "a revision of an unknown changeset was accepted");
    assert_eq!(store.changeset_revisions(ghost.id).await.unwrap(), vec![]);
    assert_eq!(fixtures::verified_chain(store, 100).await, before);
}

/// A vote replaces the same reviewer's vote on the same revision only;
/// votes list by revision, then time; a replacement in a refused unit
/// leaves the earlier vote.
pub async fn put_review_replaces_only_the_same_reviewers_vote_on_the_same_revision<S: Store>(store: &S) {
    let w = world(store).await;
    let cs = Changeset { state: ChangesetState::InReview, revision: 2, ..changeset(&w.ws, &w.ada, "cs") };
    let other = Changeset { state: ChangesetState::InReview, revision: 1, ..changeset(&w.ws2, &w.bob, "other") };
    insert(store, &[&cs, &other]).await;
    setup(
        store,
        [revision(&cs, 1, &w.ada), revision(&cs, 2, &w.ada), revision(&other, 1, &w.bob)]
            .into_iter()
            .map(ChangesetMutation::InsertRevision),
    )
    .await;

    let base = fixtures::now();
    let vote = |rev: u32, reviewer: &User, action: ReviewAction, secs: i64| Review {
        created_at: later(base, secs),
        ..review(&cs, rev, reviewer, action)
    };
    let bob_r1 = Review { comment: Some("LGTM ✓".into()), ..vote(1, &w.bob, ReviewAction::Approve, 0) };
    let carol_r1 =
        Review { comment: Some("typo on line 3".into()), ..vote(1, &w.carol, ReviewAction::RequestChanges, 1) };
    let bob_r2 = vote(2, &w.bob, ReviewAction::Approve, 2);
    let on_other = review(&other, 1, &w.bob, ReviewAction::Approve);
    setup(
        store,
        [bob_r2.clone(), carol_r1.clone(), bob_r1.clone(), on_other.clone()]
            .into_iter()
            .map(ChangesetMutation::PutReview),
    )
    .await;
    assert_eq!(store.changeset_reviews(cs.id).await.unwrap(), vec![bob_r1, carol_r1.clone(), bob_r2.clone()]);

    // Bob changes his mind on revision 1: his other votes stay, carol's too.
    let bob_r1_again = vote(1, &w.bob, ReviewAction::Reject, 5);
    setup(store, [Mutation::from(ChangesetMutation::PutReview(bob_r1_again.clone()))]).await;
    assert_eq!(
        store.changeset_reviews(cs.id).await.unwrap(),
        vec![carol_r1.clone(), bob_r1_again.clone(), bob_r2.clone()]
    );
    let carol_r2 = vote(2, &w.carol, ReviewAction::Approve, 6);
    let bob_r1_third =
        Review { comment: Some("on second thought".into()), ..vote(1, &w.bob, ReviewAction::Approve, 7) };
    setup(
        store,
        [
            Mutation::from(ChangesetMutation::PutReview(carol_r2.clone())),
            Mutation::from(ChangesetMutation::PutReview(bob_r1_third.clone())),
        ],
    )
    .await;
    let settled = vec![carol_r1, bob_r1_third, bob_r2, carol_r2];
    assert_eq!(store.changeset_reviews(cs.id).await.unwrap(), settled);
    assert_eq!(store.changeset_reviews(other.id).await.unwrap(), vec![on_other]);
    assert_eq!(store.changeset_reviews(changeset(&w.ws, &w.ada, "ghost").id).await.unwrap(), vec![]);

    // A replacement whose unit is refused leaves the earlier vote.
    let dup = revision(&cs, 2, &w.bob);
    let replacing = vote(2, &w.bob, ReviewAction::Reject, 8);
    let result = fixtures::commit(
        store,
        [
            Mutation::from(ChangesetMutation::PutReview(replacing)),
            Mutation::from(ChangesetMutation::InsertRevision(dup)),
        ],
    )
    .await;
    super::assert_conflict(
        result,
        crate::ports::store::ConflictReason::Taken {
            record: crate::ports::store::Record::ChangesetRevision,
            field: "number".into(),
        },
    );
    assert_eq!(store.changeset_reviews(cs.id).await.unwrap(), settled);
}

/// Comments round-trip (anchors, edit history), list oldest first with
/// paging and totals, and are found only under their changeset.
pub async fn comments_round_trip_and_list_oldest_first<S: Store>(store: &S) {
    let w = world(store).await;
    let cs = changeset(&w.ws, &w.ada, "cs");
    let other = changeset(&w.ws2, &w.bob, "other");
    insert(store, &[&cs, &other]).await;

    let base = fixtures::now();
    let at = |author: &User, body: &str, secs: i64| Comment {
        created_at: later(base, secs),
        updated_at: later(base, secs),
        ..comment(&cs, author, body)
    };
    let anchored = Comment {
        anchor: Some(CommentAnchor { path: "prod/db.yaml".into(), line: Some(42), revision: 1 }),
        ..at(&w.bob, "Why 42?", 0)
    };
    let file_level = Comment {
        anchor: Some(CommentAnchor { path: "prod/ünïcode file.yaml".into(), line: None, revision: 2 }),
        ..at(&w.carol, "About the whole file", 1)
    };
    let edited = Comment {
        edits: vec![
            CommentEdit { body: "frist".into(), replaced_at: later(base, 3) },
            CommentEdit { body: "first!".into(), replaced_at: later(base, 4) + TimeDelta::microseconds(17) },
        ],
        updated_at: later(base, 4) + TimeDelta::microseconds(17),
        version: 3,
        ..at(&w.ada, "first", 2)
    };
    // Same creation instant as `edited`: the id breaks the tie.
    let tie = at(&w.bob, "same instant", 2);
    let plain = at(&w.ada, "multi\nline \"quoted\" ✓", 5);
    let on_other = comment(&other, &w.ada, "elsewhere");
    let mut oldest_first = vec![anchored, file_level, edited, tie, plain];
    setup(store, oldest_first.iter().rev().cloned().chain([on_other.clone()]).map(ChangesetMutation::InsertComment))
        .await;
    oldest_first.sort_by_key(|c| (c.created_at, c.id.0));

    let all = store.list_comments(cs.id, PageRequest::default()).await.unwrap();
    assert_eq!((all.items, all.total), (oldest_first.clone(), 5));
    let second = store.list_comments(cs.id, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!((second.items, second.total), (oldest_first[2..4].to_vec(), 5));
    let third = store.list_comments(cs.id, PageRequest { page: 3, limit: 2 }).await.unwrap();
    assert_eq!((third.items, third.total), (oldest_first[4..].to_vec(), 5));
    let beyond = store.list_comments(cs.id, PageRequest { page: 4, limit: 2 }).await.unwrap();
    assert_eq!((beyond.items, beyond.total), (vec![], 5));

    for c in &oldest_first {
        assert_eq!(store.comment(cs.id, c.id).await.unwrap().as_ref(), Some(c));
        assert_eq!(store.comment(other.id, c.id).await.unwrap(), None, "another changeset's comment is not found");
    }
    assert_eq!(store.comment(cs.id, on_other.id).await.unwrap(), None);
    let listed_other = store.list_comments(other.id, PageRequest::default()).await.unwrap();
    assert_eq!((listed_other.items, listed_other.total), (vec![on_other], 1));
    let ghost: ChangesetId = changeset(&w.ws, &w.ada, "ghost").id;
    assert_eq!(store.list_comments(ghost, PageRequest::default()).await.unwrap(), Page { items: vec![], total: 0 });
}

/// Comment updates apply on the next version only; a stale version is a
/// conflict and an unknown comment not found.
pub async fn comment_update_is_compare_and_set<S: Store>(store: &S) {
    let w = world(store).await;
    let cs = changeset(&w.ws, &w.ada, "cs");
    insert(store, &[&cs]).await;
    let c = comment(&cs, &w.bob, "frist");
    setup(store, [Mutation::from(ChangesetMutation::InsertComment(c.clone()))]).await;

    let edited_at = later(c.updated_at, 1);
    let edited = Comment {
        body: "first".into(),
        edits: vec![CommentEdit { body: c.body.clone(), replaced_at: edited_at }],
        updated_at: edited_at,
        version: c.version + 1,
        ..c.clone()
    };
    setup(store, [Mutation::from(ChangesetMutation::UpdateComment(edited.clone()))]).await;
    assert_eq!(store.comment(cs.id, c.id).await.unwrap(), Some(edited.clone()));

    let stale = Comment { body: "stale".into(), version: c.version + 1, ..c.clone() };
    assert_code(
        fixtures::commit(store, [Mutation::from(ChangesetMutation::UpdateComment(stale))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(store.comment(cs.id, c.id).await.unwrap(), Some(edited.clone()));

    let ghost = Comment { version: 2, ..comment(&cs, &w.bob, "ghost") };
    assert_code(
        fixtures::commit(store, [Mutation::from(ChangesetMutation::UpdateComment(ghost))]).await,
        ErrorCode::NotFound,
    );
    let listed = store.list_comments(cs.id, PageRequest::default()).await.unwrap();
    assert_eq!((listed.items, listed.total), (vec![edited], 1));
}
