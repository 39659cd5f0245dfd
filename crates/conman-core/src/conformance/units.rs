//! Conformance cases of the write path as a whole ([`Store::commit`]):
//! atomicity, exact timestamps, pagination arithmetic and concurrent
//! writers.
//!
//! Invariant: a unit is applied entirely or not at all — mutations and
//! audit records alike — and concurrent units serialise onto one unbroken
//! audit chain.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};

use super::fixtures::{self, audit_entry, setup, user, user_created};
use super::Spawner;
use crate::domain::user::{CredentialKind, User};
use crate::ports::store::{AuditFilter, Mutation, PageRequest, Store, Unaudited, UnitOfWork, UserMutation};

/// Asserts that the audit log is empty.
async fn assert_no_audit<S: Store>(store: &S) {
    assert_eq!(store.audit_chain(0, 10).await.unwrap(), vec![]);
    assert_eq!(store.list_audit(&AuditFilter::default(), PageRequest::default()).await.unwrap().total, 0);
}

/// A unit whose second mutation violates a unique key leaves neither its
/// first mutation nor any audit record.
pub async fn a_failing_mutation_rolls_back_the_whole_unit<S: Store>(store: &S) {
    let ada = user("ada");
    store
        .commit(UnitOfWork::new().unaudited(Mutation::from(UserMutation::InsertUser(ada.clone())), Unaudited::Fixture))
        .await
        .unwrap();
    assert_no_audit(store).await;

    let bob = user("bob");
    let mut ada_again = user("ada2");
    ada_again.email = ada.email.clone();
    let unit = UnitOfWork::new()
        .unaudited(Mutation::from(UserMutation::InsertUser(bob.clone())), Unaudited::Fixture)
        .record(Mutation::from(UserMutation::InsertUser(ada_again.clone())), user_created(&bob))
        .audit_only(user_created(&ada_again));
    super::assert_conflict(
        store.commit(unit).await,
        crate::ports::store::ConflictReason::Taken { record: crate::ports::store::Record::User, field: "email".into() },
    );

    assert_eq!(store.user(bob.id).await.unwrap(), None);
    assert_eq!(store.user_by_handle("bob").await.unwrap(), None);
    assert_eq!(store.user(ada_again.id).await.unwrap(), None);
    assert_eq!(store.user(ada.id).await.unwrap(), Some(ada));
    assert_no_audit(store).await;

    // The store is still writable and the chain starts at 1.
    setup(store, [Mutation::from(UserMutation::InsertUser(bob.clone()))]).await;
    assert_eq!(fixtures::verified_chain(store, 10).await.len(), 1);
}

/// A unit whose later update is stale leaves its earlier inserts and
/// revocations undone.
pub async fn a_stale_update_rolls_back_earlier_mutations<S: Store>(store: &S) {
    let ada = user("ada");
    let session = fixtures::credential(&ada, CredentialKind::Session);
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(UserMutation::InsertCredential(session.clone())),
        ],
    )
    .await;
    let before = fixtures::verified_chain(store, 10).await;

    let token = fixtures::credential(&ada, CredentialKind::ApiToken);
    let stale = User { name: "Stale".into(), ..ada.clone() };
    let unit = UnitOfWork::new()
        .unaudited(Mutation::from(UserMutation::InsertCredential(token.clone())), Unaudited::Fixture)
        .unaudited(
            Mutation::from(UserMutation::RevokeCredential { id: session.id, at: fixtures::now() }),
            Unaudited::Fixture,
        )
        .record(
            Mutation::from(UserMutation::UpdateUser(stale)),
            audit_entry("token.created", "token", &token.id.to_string()),
        );
    super::assert_conflict(
        store.commit(unit).await,
        crate::ports::store::ConflictReason::StaleVersion { entity: crate::ids::UserId::KIND },
    );

    assert_eq!(store.credential_by_hash(&token.token_hash).await.unwrap(), None);
    assert_eq!(store.credential_by_hash(&session.token_hash).await.unwrap(), Some(session));
    assert_eq!(store.user(ada.id).await.unwrap(), Some(ada));
    assert_eq!(fixtures::verified_chain(store, 10).await, before);
}

/// Timestamps with microseconds, far past and future, read back exactly in
/// entities and audit records.
pub async fn timestamps_round_trip_exactly<S: Store>(store: &S) {
    let odd = Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap() + TimeDelta::microseconds(123_456);
    let early = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap() + TimeDelta::microseconds(1);
    let late = Utc.with_ymd_and_hms(2999, 12, 31, 23, 59, 59).unwrap() + TimeDelta::microseconds(999_999);
    let now = fixtures::now();

    for (i, at) in [odd, early, late, now].into_iter().enumerate() {
        let u = User { created_at: at, updated_at: at, ..user(&format!("u{i}")) };
        let mut reset = fixtures::password_reset(&u);
        reset.created_at = at;
        reset.expires_at = at + TimeDelta::microseconds(7);
        let entry = crate::domain::audit::AuditEntry { occurred_at: at, ..user_created(&u) };
        let unit = UnitOfWork::new()
            .unaudited(Mutation::from(UserMutation::InsertUser(u.clone())), Unaudited::Fixture)
            .record(Mutation::from(UserMutation::InsertPasswordReset(reset.clone())), entry.clone());
        store.commit(unit).await.unwrap();
        setup(store, [Mutation::from(UserMutation::UsePasswordReset { id: reset.id, at })]).await;

        assert_eq!(store.user(u.id).await.unwrap(), Some(u));
        let stored = store.password_reset_by_hash(&reset.token_hash).await.unwrap().unwrap();
        assert_eq!(stored, crate::domain::user::PasswordReset { used_at: Some(at), ..reset });
        let listed = store
            .list_audit(
                &AuditFilter { since: Some(at), until: Some(at + TimeDelta::microseconds(1)), ..Default::default() },
                PageRequest { page: 1, limit: 100 },
            )
            .await
            .unwrap();
        assert!(listed.items.iter().any(|r| r.entry == entry), "audit entry at {at} is found in [at, at+1µs)");
    }
    fixtures::verified_chain(store, 100).await;
}

/// `PageRequest { page: 2, limit: 2 }` skips two and takes two; a partial
/// last page and an empty page past the end keep the total.
pub async fn page_two_gives_the_second_slice<S: Store>(store: &S) {
    let mut users = fixtures::users(store, &["u1", "u2", "u3", "u4", "u5"]).await;
    users.sort_by(|a, b| a.email.cmp(&b.email));
    let page = |page, limit| store.list_users(PageRequest { page, limit });

    let second = page(2, 2).await.unwrap();
    assert_eq!(second.items, users[2..4].to_vec());
    assert_eq!(second.total, 5);
    let third = page(3, 2).await.unwrap();
    assert_eq!(third.items, users[4..].to_vec());
    assert_eq!(third.total, 5);
    let fourth = page(4, 2).await.unwrap();
    assert_eq!((fourth.items, fourth.total), (vec![], 5));
    let one_by_one = page(5, 1).await.unwrap();
    assert_eq!(one_by_one.items, users[4..].to_vec());
}

/// Concurrent writers: 16 tasks each commit 4 units (a user and its audit
/// entry). Every user and every entry is present and the chain is unbroken.
pub async fn concurrent_units_all_land_on_one_unbroken_chain<S: Store + 'static>(store: Arc<S>, spawn: Spawner) {
    const TASKS: usize = 16;
    const UNITS: usize = 4;
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = Arc::clone(&store);
            spawn(Box::pin(async move {
                let mut ids = Vec::new();
                for u in 0..UNITS {
                    let new = user(&format!("t{t}-u{u}"));
                    ids.push(new.id);
                    let unit = UnitOfWork::new()
                        .record(Mutation::from(UserMutation::InsertUser(new.clone())), user_created(&new));
                    store.commit(unit).await?;
                }
                // Reads interleave with other tasks' writes.
                for id in ids {
                    assert!(store.user(id).await?.is_some(), "a committed user is readable at once");
                }
                Ok(())
            }))
        })
        .collect();
    for handle in handles {
        handle.await.expect("every concurrent unit commits");
    }

    let users = store.list_users(PageRequest { page: 1, limit: 100 }).await.unwrap();
    assert_eq!(users.total, (TASKS * UNITS) as u64);
    let chain = fixtures::verified_chain(&*store, 7).await;
    assert_eq!(chain.len(), TASKS * UNITS);
    let audited: BTreeSet<String> = chain.iter().map(|r| r.entry.entity_id.clone()).collect();
    let expected: BTreeSet<String> = users.items.iter().map(|u| u.id.to_string()).collect();
    assert_eq!(audited, expected);
}
