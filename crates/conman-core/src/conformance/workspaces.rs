//! Conformance cases of the workspace aggregate
//! ([`WorkspaceStore`](crate::ports::store::WorkspaceStore) plus the
//! workspace mutations).
//!
//! Invariant: a branch is unique within its app (not across apps), lookups
//! are scoped by app, and updates are compare-and-set on `version`.

use super::assert_code;
use super::fixtures::{self, app, later, setup, workspace};
use crate::domain::app::{App, CommitMode};
use crate::domain::user::User;
use crate::domain::workspace::Workspace;
use crate::error::ErrorCode;
use crate::ports::store::{AppMutation, Mutation, PageRequest, Store, WorkspaceMutation};

/// Inserts users `ada` and `bob` and apps `billing` and `search`.
async fn two_users_two_apps<S: Store>(store: &S) -> (User, User, App, App) {
    let users = fixtures::users(store, &["ada", "bob"]).await;
    let (billing, search) = (app("billing", &users[0]), app("search", &users[0]));
    setup(
        store,
        [
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
        ],
    )
    .await;
    let [ada, bob] = <[User; 2]>::try_from(users).expect("two users");
    (ada, bob, billing, search)
}

/// A workspace reads back equal under its app and is not found under another.
pub async fn workspace_lookups_are_scoped_by_app<S: Store>(store: &S) {
    let (ada, _, billing, search) = two_users_two_apps(store).await;
    let mut ws = workspace(&billing, &ada, "fix-prod-db");
    ws.commit_mode = Some(CommitMode::ManualCheckpoint);
    let mut untitled = workspace(&billing, &ada, "untitled");
    untitled.title = None;
    setup(
        store,
        [
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(untitled.clone())),
        ],
    )
    .await;

    assert_eq!(store.workspace(billing.id, ws.id).await.unwrap(), Some(ws.clone()));
    assert_eq!(store.workspace(billing.id, untitled.id).await.unwrap(), Some(untitled));
    assert_eq!(store.workspace(search.id, ws.id).await.unwrap(), None);
    assert_eq!(store.workspace_by_branch(search.id, &ws.branch).await.unwrap(), None);
}

/// The default workspace is found per app and owner; branches are found
/// per app.
pub async fn default_workspace_and_branch_lookups<S: Store>(store: &S) {
    let (ada, bob, billing, search) = two_users_two_apps(store).await;
    let ada_default = workspace(&billing, &ada, "default");
    let ada_other = workspace(&billing, &ada, "feature");
    let bob_default = workspace(&billing, &bob, "default");
    setup(
        store,
        [ada_other.clone(), ada_default.clone(), bob_default.clone()]
            .into_iter()
            .map(WorkspaceMutation::InsertWorkspace),
    )
    .await;

    assert_eq!(store.default_workspace(billing.id, ada.id).await.unwrap(), Some(ada_default.clone()));
    assert_eq!(store.default_workspace(billing.id, bob.id).await.unwrap(), Some(bob_default));
    assert_eq!(store.default_workspace(search.id, ada.id).await.unwrap(), None);
    assert_eq!(store.workspace_by_branch(billing.id, "ws/ada/feature").await.unwrap(), Some(ada_other));
    assert_eq!(store.workspace_by_branch(billing.id, "ws/ada/default").await.unwrap(), Some(ada_default));
    assert_eq!(store.workspace_by_branch(billing.id, "ws/ada/nope").await.unwrap(), None);
}

/// The same branch twice in one app is a conflict; in another app it is fine.
pub async fn duplicate_branch_conflicts_only_within_an_app<S: Store>(store: &S) {
    let (ada, _, billing, search) = two_users_two_apps(store).await;
    let first = workspace(&billing, &ada, "feature");
    setup(store, [Mutation::from(WorkspaceMutation::InsertWorkspace(first.clone()))]).await;

    let twin = workspace(&billing, &ada, "feature");
    assert_code(
        fixtures::commit(store, [Mutation::from(WorkspaceMutation::InsertWorkspace(twin.clone()))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(store.workspace(billing.id, twin.id).await.unwrap(), None);
    assert_eq!(store.workspace_by_branch(billing.id, "ws/ada/feature").await.unwrap(), Some(first));

    let elsewhere = workspace(&search, &ada, "feature");
    setup(store, [Mutation::from(WorkspaceMutation::InsertWorkspace(elsewhere.clone()))]).await;
    assert_eq!(store.workspace_by_branch(search.id, "ws/ada/feature").await.unwrap(), Some(elsewhere));
}

/// Workspaces of an app list oldest first, optionally of one owner, with
/// totals per filter.
pub async fn list_workspaces_filters_by_owner_and_pages_oldest_first<S: Store>(store: &S) {
    let (ada, bob, billing, search) = two_users_two_apps(store).await;
    let base = fixtures::now();
    let owners = [&ada, &bob, &ada, &bob, &ada];
    let listed: Vec<Workspace> = owners
        .iter()
        .enumerate()
        .map(|(i, owner)| Workspace {
            created_at: later(base, i as i64),
            ..workspace(&billing, owner, &format!("w{i}"))
        })
        .collect();
    // Inserted newest first, so insertion order cannot pass for age order.
    let elsewhere = workspace(&search, &ada, "w9");
    setup(store, listed.iter().rev().cloned().chain([elsewhere]).map(WorkspaceMutation::InsertWorkspace)).await;

    let all = store.list_workspaces(billing.id, None, PageRequest::default()).await.unwrap();
    assert_eq!(all.items, listed);
    assert_eq!(all.total, 5);

    let second = store.list_workspaces(billing.id, None, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(second.items, listed[2..4].to_vec());
    assert_eq!(second.total, 5);

    let adas: Vec<Workspace> = listed.iter().filter(|w| w.owner_id == ada.id).cloned().collect();
    let mine = store.list_workspaces(billing.id, Some(ada.id), PageRequest::default()).await.unwrap();
    assert_eq!(mine.items, adas);
    assert_eq!(mine.total, 3);

    let mine_second = store.list_workspaces(billing.id, Some(ada.id), PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(mine_second.items, adas[2..].to_vec());
    assert_eq!(mine_second.total, 3);

    let bobs_elsewhere = store.list_workspaces(search.id, Some(bob.id), PageRequest::default()).await.unwrap();
    assert_eq!((bobs_elsewhere.items, bobs_elsewhere.total), (vec![], 0));
}

/// Workspace updates apply on the next version only; a move onto a taken
/// branch is a conflict; an unknown workspace is not found.
pub async fn workspace_update_is_compare_and_set<S: Store>(store: &S) {
    let (ada, _, billing, _) = two_users_two_apps(store).await;
    let (ws, other) = (workspace(&billing, &ada, "feature"), workspace(&billing, &ada, "other"));
    setup(
        store,
        [
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(other.clone())),
        ],
    )
    .await;

    let bump = |w: &Workspace| Workspace { version: w.version + 1, updated_at: later(w.updated_at, 1), ..w.clone() };
    let synced = Workspace { base_sha: "0123456789abcdef0123456789abcdef01234567".into(), ..bump(&ws) };
    setup(store, [Mutation::from(WorkspaceMutation::UpdateWorkspace(synced.clone()))]).await;
    assert_eq!(store.workspace(billing.id, ws.id).await.unwrap(), Some(synced.clone()));

    let stale = Workspace { title: Some("stale".into()), ..bump(&ws) };
    assert_code(
        fixtures::commit(store, [Mutation::from(WorkspaceMutation::UpdateWorkspace(stale))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(store.workspace(billing.id, ws.id).await.unwrap(), Some(synced.clone()));

    let moved = Workspace { branch: synced.branch.clone(), ..bump(&other) };
    assert_code(
        fixtures::commit(store, [Mutation::from(WorkspaceMutation::UpdateWorkspace(moved))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(store.workspace(billing.id, other.id).await.unwrap(), Some(other));

    let ghost = bump(&workspace(&billing, &ada, "ghost"));
    assert_code(
        fixtures::commit(store, [Mutation::from(WorkspaceMutation::UpdateWorkspace(ghost))]).await,
        ErrorCode::NotFound,
    );
}

/// `all_workspaces` returns every workspace of every app.
pub async fn all_workspaces_spans_every_app<S: Store>(store: &S) {
    assert_eq!(store.all_workspaces().await.unwrap(), vec![]);
    let (ada, bob, billing, search) = two_users_two_apps(store).await;
    let mut expected =
        vec![workspace(&billing, &ada, "default"), workspace(&billing, &bob, "default"), workspace(&search, &bob, "x")];
    setup(store, expected.iter().cloned().map(WorkspaceMutation::InsertWorkspace)).await;

    let mut all = store.all_workspaces().await.unwrap();
    all.sort_by_key(|w| w.id);
    expected.sort_by_key(|w| w.id);
    assert_eq!(all, expected);
}
