//! Conformance cases of the user aggregate: users, credentials and password
//! resets ([`UserStore`](crate::ports::store::UserStore) plus the user
//! mutations).
//!
//! Invariant: email and handle are unique, updates are compare-and-set on
//! `version`, and a refused write leaves the stored values as they were.

use super::assert_code;
use super::fixtures::{self, bumped_user, later, setup, user};
use crate::domain::user::{Credential, CredentialKind};
use crate::error::ErrorCode;
use crate::ports::store::{Mutation, PageRequest, Store, UserMutation};
use crate::validation::{Email, Handle};

/// A user reads back equal by id, email and handle; unknown keys read `None`.
pub async fn user_round_trips_by_id_email_and_handle<S: Store>(store: &S) {
    let mut ada = user("ada");
    ada.is_operator = true;
    ada.email_notifications = false;
    setup(store, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;

    assert_eq!(store.user(ada.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(store.user_by_email(&ada.email).await.unwrap(), Some(ada.clone()));
    assert_eq!(store.user_by_handle("ada").await.unwrap(), Some(ada.clone()));

    let other = user("bob");
    assert_eq!(store.user(other.id).await.unwrap(), None);
    assert_eq!(store.user_by_email(&other.email).await.unwrap(), None);
    assert_eq!(store.user_by_handle("bob").await.unwrap(), None);
}

/// A second user with a taken email or handle is a conflict; the first
/// user stays as it was and no other user appears.
pub async fn duplicate_email_or_handle_is_a_conflict<S: Store>(store: &S) {
    let ada = user("ada");
    setup(store, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;

    let mut same_email = user("ada2");
    same_email.email = ada.email.clone();
    assert_code(
        fixtures::commit(store, [Mutation::from(UserMutation::InsertUser(same_email.clone()))]).await,
        ErrorCode::Conflict,
    );

    let mut same_handle = user("bob");
    same_handle.handle = Handle::parse("ada").unwrap();
    assert_code(
        fixtures::commit(store, [Mutation::from(UserMutation::InsertUser(same_handle.clone()))]).await,
        ErrorCode::Conflict,
    );

    assert_eq!(store.user(same_email.id).await.unwrap(), None);
    assert_eq!(store.user(same_handle.id).await.unwrap(), None);
    assert_eq!(store.user_by_email(&ada.email).await.unwrap(), Some(ada.clone()));
    assert_eq!(store.user_by_handle("ada").await.unwrap(), Some(ada));
    assert_eq!(store.list_users(PageRequest::default()).await.unwrap().total, 1);
}

/// An update carrying the next version applies; one carrying a stale
/// version is a conflict and changes nothing; an unknown user is not found.
pub async fn user_update_is_compare_and_set<S: Store>(store: &S) {
    let ada = user("ada");
    setup(store, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;

    let mut renamed = bumped_user(&ada);
    renamed.name = "Ada Lovelace".into();
    renamed.email = Email::parse("lovelace@example.com").unwrap();
    setup(store, [Mutation::from(UserMutation::UpdateUser(renamed.clone()))]).await;
    assert_eq!(store.user(ada.id).await.unwrap(), Some(renamed.clone()));
    assert_eq!(store.user_by_email(&renamed.email).await.unwrap(), Some(renamed.clone()));
    assert_eq!(store.user_by_email(&ada.email).await.unwrap(), None, "the old email no longer finds the user");

    // A writer that read version 1 lost the race.
    let mut stale = bumped_user(&ada);
    stale.name = "Stale".into();
    super::assert_conflict(
        fixtures::commit(store, [Mutation::from(UserMutation::UpdateUser(stale))]).await,
        crate::ports::store::ConflictReason::StaleVersion { entity: "user" },
    );
    // Skipping a version is refused too.
    let mut skipped = bumped_user(&bumped_user(&renamed));
    skipped.name = "Skipped".into();
    assert_code(
        fixtures::commit(store, [Mutation::from(UserMutation::UpdateUser(skipped))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(store.user(ada.id).await.unwrap(), Some(renamed.clone()));

    // An update onto another user's email is a conflict, not an error 500.
    let bob = user("bob");
    setup(store, [Mutation::from(UserMutation::InsertUser(bob.clone()))]).await;
    let mut grab = bumped_user(&bob);
    grab.email = renamed.email.clone();
    super::assert_conflict(
        fixtures::commit(store, [Mutation::from(UserMutation::UpdateUser(grab))]).await,
        crate::ports::store::ConflictReason::Taken { record: crate::ports::store::Record::User, field: "email".into() },
    );
    assert_eq!(store.user(bob.id).await.unwrap(), Some(bob));

    let ghost = bumped_user(&user("ghost"));
    assert_code(fixtures::commit(store, [Mutation::from(UserMutation::UpdateUser(ghost))]).await, ErrorCode::NotFound);
}

/// Users list by email, with the total of every page.
pub async fn list_users_pages_by_email<S: Store>(store: &S) {
    let inserted = fixtures::users(store, &["dora", "ada", "cy", "bob", "eve"]).await;
    let mut expected = inserted.clone();
    expected.sort_by(|a, b| a.email.cmp(&b.email));

    let all = store.list_users(PageRequest { page: 1, limit: 100 }).await.unwrap();
    assert_eq!(all.items, expected);
    assert_eq!(all.total, 5);

    let second = store.list_users(PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(second.items, expected[2..4].to_vec());
    assert_eq!(second.total, 5);

    let past_the_end = store.list_users(PageRequest { page: 4, limit: 2 }).await.unwrap();
    assert_eq!(past_the_end.items, vec![]);
    assert_eq!(past_the_end.total, 5);
}

/// Credentials are found by token hash (usable or not), listed newest first
/// per user, and revoked once: revoking again keeps the first time.
pub async fn credentials_are_found_by_hash_listed_and_revoked<S: Store>(store: &S) {
    let ada = user("ada");
    let session = fixtures::credential(&ada, CredentialKind::Session);
    let mut token = fixtures::credential(&ada, CredentialKind::ApiToken);
    token.created_at = later(session.created_at, 10);
    token.expires_at = None;
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(UserMutation::InsertCredential(session.clone())),
            Mutation::from(UserMutation::InsertCredential(token.clone())),
        ],
    )
    .await;

    assert_eq!(store.credential_by_hash(&session.token_hash).await.unwrap(), Some(session.clone()));
    assert_eq!(store.credential_by_hash(&token.token_hash).await.unwrap(), Some(token.clone()));
    assert_eq!(store.credential_by_hash(&fixtures::token_hash()).await.unwrap(), None);
    assert_eq!(store.list_credentials(ada.id).await.unwrap(), vec![token.clone(), session.clone()]);

    let at = later(session.created_at, 60);
    setup(store, [Mutation::from(UserMutation::RevokeCredential { id: session.id, at })]).await;
    let revoked = Credential { revoked_at: Some(at), ..session.clone() };
    assert_eq!(store.credential_by_hash(&session.token_hash).await.unwrap(), Some(revoked.clone()));

    setup(store, [Mutation::from(UserMutation::RevokeCredential { id: session.id, at: later(at, 60) })]).await;
    assert_eq!(store.credential_by_hash(&session.token_hash).await.unwrap(), Some(revoked.clone()));
    assert_eq!(store.list_credentials(ada.id).await.unwrap(), vec![token, revoked]);
}

/// Revoking every credential of a user revokes exactly those, keeping an
/// earlier revocation time.
pub async fn revoking_all_credentials_of_a_user_spares_other_users<S: Store>(store: &S) {
    let (ada, bob) = (user("ada"), user("bob"));
    let a1 = fixtures::credential(&ada, CredentialKind::Session);
    let mut a2 = fixtures::credential(&ada, CredentialKind::ApiToken);
    a2.created_at = later(a1.created_at, 1);
    let early = later(a1.created_at, 5);
    a2.revoked_at = Some(early);
    let b1 = fixtures::credential(&bob, CredentialKind::Session);
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(UserMutation::InsertUser(bob.clone())),
            Mutation::from(UserMutation::InsertCredential(a1.clone())),
            Mutation::from(UserMutation::InsertCredential(a2.clone())),
            Mutation::from(UserMutation::InsertCredential(b1.clone())),
        ],
    )
    .await;

    let at = later(a1.created_at, 60);
    setup(store, [Mutation::from(UserMutation::RevokeUserCredentials { user_id: ada.id, at })]).await;

    let listed = store.list_credentials(ada.id).await.unwrap();
    let expected = vec![a2.clone(), Credential { revoked_at: Some(at), ..a1 }];
    assert_eq!(listed, expected);
    assert_eq!(store.list_credentials(bob.id).await.unwrap(), vec![b1]);
}

/// A password reset reads back by hash and can be used once: the second
/// use is a conflict and keeps the first use time.
pub async fn password_reset_is_usable_once<S: Store>(store: &S) {
    let ada = user("ada");
    let reset = fixtures::password_reset(&ada);
    setup(
        store,
        [
            Mutation::from(UserMutation::InsertUser(ada.clone())),
            Mutation::from(UserMutation::InsertPasswordReset(reset.clone())),
        ],
    )
    .await;
    assert_eq!(store.password_reset_by_hash(&reset.token_hash).await.unwrap(), Some(reset.clone()));
    assert_eq!(store.password_reset_by_hash(&fixtures::token_hash()).await.unwrap(), None);

    let at = later(reset.created_at, 30);
    setup(store, [Mutation::from(UserMutation::UsePasswordReset { id: reset.id, at })]).await;
    let used = store.password_reset_by_hash(&reset.token_hash).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(at));

    let second =
        fixtures::commit(store, [Mutation::from(UserMutation::UsePasswordReset { id: reset.id, at: later(at, 1) })])
            .await;
    super::assert_conflict(second, crate::ports::store::ConflictReason::ResetAlreadyUsed);
    assert_eq!(store.password_reset_by_hash(&reset.token_hash).await.unwrap().unwrap().used_at, Some(at));
}
