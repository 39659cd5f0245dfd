//! Conformance cases of the app aggregate: apps, memberships and invites
//! ([`AppStore`](crate::ports::store::AppStore) plus their mutations).
//!
//! Invariant: app names are unique, app-owned lookups take the app id (an
//! id asked under another app is not found), and listings are ordered and
//! paginated as the port documents.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fixtures::{self, app, later, membership, setup, user};
use super::{assert_code, assert_conflict, Spawner};
use crate::domain::app::{App, BaselineMode, GateSettings, PathRule};
use crate::domain::invite::{Invite, InviteState};
use crate::domain::membership::Membership;
use crate::domain::user::User;
use crate::error::{Error, ErrorCode};
use crate::ids::AppId;
use crate::ports::store::{
    AppMutation, ConflictReason, MemberRecord, Mutation, PageRequest, Store, Unaudited, UnitOfWork, UserMutation,
};
use crate::rbac::Role;

/// An app with non-default settings reads back equal by id and by name.
pub async fn app_round_trips_by_id_and_name<S: Store>(store: &S) {
    let ada = user("ada");
    let mut billing = app("billing", &ada);
    billing.settings.baseline_mode = BaselineMode::IntegrationHead;
    billing.settings.required_approvals = 2;
    billing.settings.temp_url_domain = Some("preview.example.com".into());
    billing.settings.gates =
        GateSettings { submit: Some("make check".into()), timeout_secs: Some(600), ..Default::default() };
    billing.settings.path_rules =
        vec![PathRule { glob: "prod/**".into(), role: Some(Role::ConfigManager), user_ids: vec![ada.id] }];
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(AppMutation::InsertApp(billing.clone())),
        ],
    )
    .await;

    assert_eq!(store.app(billing.id).await.unwrap(), Some(billing.clone()));
    assert_eq!(store.app_by_name("billing").await.unwrap(), Some(billing.clone()));
    assert_eq!(store.app(app("other", &ada).id).await.unwrap(), None);
    assert_eq!(store.app_by_name("other").await.unwrap(), None);
}

/// A second app with a taken name is a conflict; the first stays.
pub async fn duplicate_app_name_is_a_conflict<S: Store>(store: &S) {
    let ada = user("ada");
    let first = app("billing", &ada);
    setup(
        store,
        [Mutation::from(UserMutation::InsertUser(ada.clone())), Mutation::from(AppMutation::InsertApp(first.clone()))],
    )
    .await;

    let second = app("billing", &ada);
    assert_code(
        fixtures::commit(store, [Mutation::from(AppMutation::InsertApp(second.clone()))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(store.app(second.id).await.unwrap(), None);
    assert_eq!(store.app_by_name("billing").await.unwrap(), Some(first));
    assert_eq!(store.list_all_apps(PageRequest::default()).await.unwrap().total, 1);
}

/// App updates apply on the next version only; a rename onto a taken name
/// is a conflict; an unknown app is not found.
pub async fn app_update_is_compare_and_set<S: Store>(store: &S) {
    let ada = user("ada");
    let (billing, search) = (app("billing", &ada), app("search", &ada));
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
        ],
    )
    .await;

    let bump = |a: &App| App { version: a.version + 1, updated_at: later(a.updated_at, 1), ..a.clone() };
    let mut updated = bump(&billing);
    updated.settings.required_approvals = 3;
    setup(store, [Mutation::from(AppMutation::UpdateApp(updated.clone()))]).await;
    assert_eq!(store.app(billing.id).await.unwrap(), Some(updated.clone()));

    let mut stale = bump(&billing);
    stale.settings.required_approvals = 5;
    super::assert_conflict(
        fixtures::commit(store, [Mutation::from(AppMutation::UpdateApp(stale))]).await,
        crate::ports::store::ConflictReason::StaleVersion { entity: "app" },
    );
    assert_eq!(store.app(billing.id).await.unwrap(), Some(updated.clone()));

    let mut renamed = bump(&search);
    renamed.name = "billing".into();
    super::assert_conflict(
        fixtures::commit(store, [Mutation::from(AppMutation::UpdateApp(renamed))]).await,
        crate::ports::store::ConflictReason::Taken { record: crate::ports::store::Record::App, field: "name".into() },
    );
    assert_eq!(store.app(search.id).await.unwrap(), Some(search));

    let ghost = bump(&app("ghost", &ada));
    assert_code(fixtures::commit(store, [Mutation::from(AppMutation::UpdateApp(ghost))]).await, ErrorCode::NotFound);
}

/// Inserts users with `handles`, an app `name` created by the first, and a
/// `user` membership for each.
async fn app_with_members<S: Store>(store: &S, name: &str, handles: &[&str]) -> (App, Vec<(User, Membership)>) {
    let users = fixtures::users(store, handles).await;
    let a = app(name, &users[0]);
    setup(store, [Mutation::from(AppMutation::InsertApp(a.clone()))]).await;
    let members: Vec<Membership> = users.iter().map(|u| membership(&a, u, Role::User)).collect();
    setup(store, members.iter().cloned().map(AppMutation::PutMembership)).await;
    (a, users.into_iter().zip(members).collect())
}

/// Putting a membership twice replaces it: the stored membership is the
/// last one put.
pub async fn put_membership_inserts_then_replaces<S: Store>(store: &S) {
    let ada = user("ada");
    let billing = app("billing", &ada);
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(AppMutation::InsertApp(billing.clone())),
        ],
    )
    .await;
    assert_eq!(store.membership(billing.id, ada.id).await.unwrap(), None);

    let first = membership(&billing, &ada, Role::User);
    setup(store, [Mutation::from(AppMutation::PutMembership(first.clone()))]).await;
    assert_eq!(store.membership(billing.id, ada.id).await.unwrap(), Some(first.clone()));

    let promoted = Membership { role: Role::AppAdmin, ..first };
    setup(store, [Mutation::from(AppMutation::PutMembership(promoted.clone()))]).await;
    assert_eq!(store.membership(billing.id, ada.id).await.unwrap(), Some(promoted.clone()));
    assert_eq!(store.memberships_of(ada.id).await.unwrap(), vec![promoted]);
}

/// Members list by email with their user records, paginated with the total.
pub async fn list_members_pages_by_email_with_total<S: Store>(store: &S) {
    let (billing, rows) = app_with_members(store, "billing", &["dora", "ada", "cy", "bob", "eve"]).await;
    // A member of another app is not listed.
    app_with_members(store, "search", &["zed"]).await;

    let mut expected: Vec<MemberRecord> =
        rows.into_iter().map(|(user, membership)| MemberRecord { membership, user }).collect();
    expected.sort_by(|a, b| a.user.email.cmp(&b.user.email));

    let all = store.list_members(billing.id, PageRequest { page: 1, limit: 100 }).await.unwrap();
    assert_eq!(all.items, expected);
    assert_eq!(all.total, 5);

    let second = store.list_members(billing.id, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(second.items, expected[2..4].to_vec());
    assert_eq!(second.total, 5);

    let last = store.list_members(billing.id, PageRequest { page: 3, limit: 2 }).await.unwrap();
    assert_eq!(last.items, expected[4..].to_vec());
    assert_eq!(last.total, 5);
}

/// Deleting a membership removes that one only; deleting a missing one is
/// not found.
pub async fn deleting_a_membership_removes_only_it<S: Store>(store: &S) {
    let (billing, rows) = app_with_members(store, "billing", &["ada", "bob"]).await;
    let (ada, bob) = (&rows[0].0, &rows[1].0);

    setup(store, [Mutation::from(AppMutation::DeleteMembership { app_id: billing.id, user_id: bob.id })]).await;
    assert_eq!(store.membership(billing.id, bob.id).await.unwrap(), None);
    assert_eq!(store.membership(billing.id, ada.id).await.unwrap(), Some(rows[0].1.clone()));
    assert_eq!(store.list_members(billing.id, PageRequest::default()).await.unwrap().total, 1);

    let again = fixtures::commit(
        store,
        [Mutation::from(AppMutation::DeleteMembership { app_id: billing.id, user_id: bob.id })],
    )
    .await;
    assert_code(again, ErrorCode::NotFound);
}

/// `memberships_of` lists one membership per app of the user.
pub async fn memberships_of_lists_every_app_of_a_user<S: Store>(store: &S) {
    let users = fixtures::users(store, &["ada", "bob"]).await;
    let (ada, bob) = (&users[0], &users[1]);
    let (billing, search, infra) = (app("billing", ada), app("search", ada), app("infra", ada));
    let mine = [membership(&billing, ada, Role::AppAdmin), membership(&search, ada, Role::Reviewer)];
    setup(
        store,
        [
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
            Mutation::from(AppMutation::InsertApp(infra.clone())),
            Mutation::from(AppMutation::PutMembership(mine[0].clone())),
            Mutation::from(AppMutation::PutMembership(mine[1].clone())),
            Mutation::from(AppMutation::PutMembership(membership(&infra, bob, Role::User))),
        ],
    )
    .await;

    let mut listed = store.memberships_of(ada.id).await.unwrap();
    listed.sort_by_key(|m| m.app_id);
    let mut expected = mine.to_vec();
    expected.sort_by_key(|m| m.app_id);
    assert_eq!(listed, expected);
    assert_eq!(store.memberships_of(fixtures::user("nobody").id).await.unwrap(), vec![]);
}

/// A user's app list holds only apps they are a member of, by name.
pub async fn list_apps_for_user_lists_only_member_apps<S: Store>(store: &S) {
    let users = fixtures::users(store, &["ada", "bob"]).await;
    let (ada, bob) = (&users[0], &users[1]);
    let apps: Vec<App> = ["delta", "alpha", "charlie", "bravo"].iter().map(|n| app(n, ada)).collect();
    setup(store, apps.iter().cloned().map(AppMutation::InsertApp)).await;
    // Ada is in delta, alpha and charlie; Bob only in bravo.
    setup(
        store,
        [
            Mutation::from(AppMutation::PutMembership(membership(&apps[0], ada, Role::User))),
            Mutation::from(AppMutation::PutMembership(membership(&apps[1], ada, Role::AppAdmin))),
            Mutation::from(AppMutation::PutMembership(membership(&apps[2], ada, Role::Reviewer))),
            Mutation::from(AppMutation::PutMembership(membership(&apps[3], bob, Role::User))),
        ],
    )
    .await;

    let ada_apps = store.list_apps_for_user(ada.id, PageRequest::default()).await.unwrap();
    assert_eq!(ada_apps.items, vec![apps[1].clone(), apps[2].clone(), apps[0].clone()]);
    assert_eq!(ada_apps.total, 3);

    let page = store.list_apps_for_user(ada.id, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(page.items, vec![apps[0].clone()]);
    assert_eq!(page.total, 3);

    let bob_apps = store.list_apps_for_user(bob.id, PageRequest::default()).await.unwrap();
    assert_eq!(bob_apps.items, vec![apps[3].clone()]);
    assert_eq!(bob_apps.total, 1);
}

/// Every app lists by name for operators, paginated with the total.
pub async fn list_all_apps_pages_by_name<S: Store>(store: &S) {
    let ada = fixtures::users(store, &["ada"]).await.remove(0);
    let apps: Vec<App> = ["delta", "alpha", "charlie", "bravo", "echo"].iter().map(|n| app(n, &ada)).collect();
    setup(store, apps.iter().cloned().map(AppMutation::InsertApp)).await;
    let mut expected = apps.clone();
    expected.sort_by(|a, b| a.name.cmp(&b.name));

    let all = store.list_all_apps(PageRequest { page: 1, limit: 100 }).await.unwrap();
    assert_eq!(all.items, expected);
    assert_eq!(all.total, 5);
    let second = store.list_all_apps(PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(second.items, expected[2..4].to_vec());
    assert_eq!(second.total, 5);
}

/// An invite is found under its own app only, and by its token hash.
pub async fn invite_lookups_are_scoped_by_app<S: Store>(store: &S) {
    let ada = user("ada");
    let (billing, search) = (app("billing", &ada), app("search", &ada));
    let invite = fixtures::invite(&billing, "newcomer", &ada);
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
            Mutation::from(AppMutation::InsertInvite(invite.clone())),
        ],
    )
    .await;

    assert_eq!(store.invite(billing.id, invite.id).await.unwrap(), Some(invite.clone()));
    assert_eq!(store.invite(search.id, invite.id).await.unwrap(), None);
    assert_eq!(store.invite_by_hash(&invite.token_hash).await.unwrap(), Some(invite.clone()));
    assert_eq!(store.invite_by_hash(&fixtures::token_hash()).await.unwrap(), None);
    assert_eq!(store.list_invites(search.id, PageRequest::default()).await.unwrap().total, 0);
}

/// Invites of an app list newest first, paginated with the total.
pub async fn invites_list_newest_first<S: Store>(store: &S) {
    let ada = user("ada");
    let (billing, search) = (app("billing", &ada), app("search", &ada));
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
        ],
    )
    .await;
    let base = fixtures::now();
    let invites: Vec<Invite> = (0..5)
        .map(|i| Invite { created_at: later(base, i), ..fixtures::invite(&billing, &format!("guest{i}"), &ada) })
        .collect();
    let elsewhere = fixtures::invite(&search, "other", &ada);
    setup(store, invites.iter().cloned().chain([elsewhere]).map(AppMutation::InsertInvite)).await;

    let newest_first: Vec<Invite> = invites.iter().rev().cloned().collect();
    let all = store.list_invites(billing.id, PageRequest::default()).await.unwrap();
    assert_eq!(all.items, newest_first);
    assert_eq!(all.total, 5);
    let second = store.list_invites(billing.id, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(second.items, newest_first[2..4].to_vec());
    assert_eq!(second.total, 5);
}

/// Invite updates (accept, resend) apply on the next version only.
pub async fn invite_update_is_compare_and_set<S: Store>(store: &S) {
    let (ada, bob) = (user("ada"), user("bob"));
    let billing = app("billing", &ada);
    let invite = fixtures::invite(&billing, "bob", &ada);
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(UserMutation::InsertUser(bob.clone())),
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertInvite(invite.clone())),
        ],
    )
    .await;

    let accepted = Invite {
        state: InviteState::Accepted,
        accepted_by: Some(bob.id),
        version: invite.version + 1,
        ..invite.clone()
    };
    setup(store, [Mutation::from(AppMutation::UpdateInvite(accepted.clone()))]).await;
    assert_eq!(store.invite(billing.id, invite.id).await.unwrap(), Some(accepted.clone()));

    let resent = Invite { token_hash: fixtures::token_hash(), version: invite.version + 1, ..invite.clone() };
    assert_code(
        fixtures::commit(store, [Mutation::from(AppMutation::UpdateInvite(resent.clone()))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(store.invite(billing.id, invite.id).await.unwrap(), Some(accepted));
    assert_eq!(store.invite_by_hash(&resent.token_hash).await.unwrap(), None);
}

/// A unit that removes or demotes an app's only `app_admin` and carries the
/// `RequireAppAdmin` guard is refused whole with `last_app_admin`; with a
/// second admin it commits.
pub async fn the_admin_guard_refuses_a_unit_that_leaves_no_app_admin<S: Store>(store: &S) {
    let (billing, rows) = app_with_members(store, "billing", &["ada", "bob"]).await;
    let (ada, bob) = (&rows[0].0, &rows[1].0);
    let ada_admin = membership(&billing, ada, Role::AppAdmin);
    setup(store, [AppMutation::PutMembership(ada_admin.clone())]).await;
    let guard = || AppMutation::RequireAppAdmin { app_id: billing.id };
    let removal = UnitOfWork::new()
        .record(
            AppMutation::DeleteMembership { app_id: billing.id, user_id: ada.id },
            fixtures::audit_entry("member.removed", "membership", "ada"),
        )
        .unaudited(guard(), Unaudited::Guard);
    assert_conflict(store.commit(removal).await, ConflictReason::LastAppAdmin);
    let demotion = UnitOfWork::new()
        .record(
            AppMutation::PutMembership(membership(&billing, ada, Role::User)),
            fixtures::audit_entry("member.role_changed", "membership", "ada"),
        )
        .unaudited(guard(), Unaudited::Guard);
    assert_conflict(store.commit(demotion).await, ConflictReason::LastAppAdmin);
    assert_eq!(store.membership(billing.id, ada.id).await.unwrap(), Some(ada_admin));

    // With a second admin, the same removal commits.
    setup(store, [AppMutation::PutMembership(membership(&billing, bob, Role::AppAdmin))]).await;
    let removal = UnitOfWork::new()
        .record(
            AppMutation::DeleteMembership { app_id: billing.id, user_id: ada.id },
            fixtures::audit_entry("member.removed", "membership", "ada"),
        )
        .unaudited(guard(), Unaudited::Guard);
    store.commit(removal).await.expect("another admin remains");
    assert_eq!(store.membership(billing.id, ada.id).await.unwrap(), None);
}

/// Two admins demote each other at the same moment, on ten apps at once:
/// on every app exactly one unit commits, the other is `last_app_admin`,
/// and one admin remains.
pub async fn admins_demoting_each_other_at_once_leave_one<S: Store + 'static>(store: Arc<S>, spawn: Spawner) {
    const APPS: usize = 10;
    let mut races = Vec::new();
    for i in 0..APPS {
        let (a, rows) = app_with_members(&*store, &format!("race{i}"), &[&format!("ada{i}"), &format!("bob{i}")]).await;
        let admins: Vec<Membership> = rows.iter().map(|(u, _)| membership(&a, u, Role::AppAdmin)).collect();
        setup(&*store, admins.iter().cloned().map(AppMutation::PutMembership)).await;
        races.push((a, rows.into_iter().map(|(u, _)| u).collect::<Vec<_>>()));
    }
    let mut handles = Vec::new();
    for (a, users) in &races {
        for (me, other) in [(&users[0], &users[1]), (&users[1], &users[0])] {
            let store = Arc::clone(&store);
            let demoted = membership(a, other, Role::User);
            let entry = fixtures::audit_entry("member.role_changed", "membership", &me.handle.to_string());
            let guard = AppMutation::RequireAppAdmin { app_id: a.id };
            handles.push((
                a.id,
                spawn(Box::pin(async move {
                    let unit = UnitOfWork::new()
                        .record(AppMutation::PutMembership(demoted), entry)
                        .unaudited(guard, Unaudited::Guard);
                    store.commit(unit).await
                })),
            ));
        }
    }
    let mut outcomes: BTreeMap<AppId, Vec<Result<(), Error>>> = BTreeMap::new();
    for (app_id, handle) in handles {
        outcomes.entry(app_id).or_default().push(handle.await);
    }
    for (a, _) in &races {
        let results = &outcomes[&a.id];
        let committed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(committed, 1, "exactly one demotion commits on {}: {results:?}", a.name);
        let refused = results.iter().find(|r| r.is_err()).cloned().unwrap();
        assert_conflict(refused, ConflictReason::LastAppAdmin);
        let members = store.all_members(a.id).await.unwrap();
        let admins = members.iter().filter(|m| m.membership.role == Role::AppAdmin).count();
        assert_eq!(admins, 1, "one admin remains on {}", a.name);
    }
}
