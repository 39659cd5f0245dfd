//! SQLite-specific checks of the runtime-profile aggregate beyond the
//! shared conformance suite: a master-key rotation of a large installation.
//!
//! Invariant pinned: 10,000 sealed secrets rewrapped in one unit all carry
//! their new sealed values afterwards, and a second rotation from the old
//! key is refused as `conflict` without changing a row. The timing (well
//! under a second for the unit, one prepared statement reused per row) is
//! measured by hand or by a benchmark, never asserted in a test.

use conman_core::conformance::fixtures::{self, app, runtime_profile, sealed, setup, stored_secret};
use conman_core::error::ErrorCode;
use conman_core::ports::store::{
    AppMutation, Mutation, ProfileMutation, ProfileStore, SecretOwner, Store, StoredSecret, Unaudited, UnitOfWork,
};
use conman_store_sqlite::SqliteStore;

/// Secrets in the installation.
const COUNT: usize = 10_000;

/// Every sealed secret, walked with `all_secrets` in pages of 100.
async fn every_secret(store: &SqliteStore) -> Vec<StoredSecret> {
    let mut out: Vec<StoredSecret> = Vec::new();
    loop {
        let after = out.last().map(|s| (s.owner, s.name.clone(), s.revision));
        let page = store.all_secrets(after, 100).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[tokio::test]
async fn rewrapping_ten_thousand_secrets_in_one_unit_replaces_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("conman.db")).unwrap();
    let users = fixtures::users(&store, &["ada"]).await;
    let billing = app("billing", &users[0]);
    let profiles: Vec<_> = (0..10).map(|i| runtime_profile(&billing, &format!("p{i}"))).collect();
    setup(&store, [Mutation::from(AppMutation::InsertApp(billing.clone()))]).await;
    setup(&store, profiles.iter().cloned().map(ProfileMutation::InsertRuntimeProfile)).await;
    let rows: Vec<StoredSecret> = (0..COUNT)
        .map(|i| {
            let owner = SecretOwner::Profile(profiles[i % profiles.len()].id);
            stored_secret(billing.id, owner, &format!("SECRET_{:05}", i / profiles.len()), 1 + (i % 3) as u32, "old")
        })
        .collect();
    store
        .commit(
            rows.iter()
                .cloned()
                .map(ProfileMutation::InsertSecret)
                .fold(UnitOfWork::new(), |u, m| u.unaudited(m, Unaudited::Fixture)),
        )
        .await
        .unwrap();

    let rotated: Vec<StoredSecret> = rows.iter().map(|s| StoredSecret { sealed: sealed("new"), ..s.clone() }).collect();
    let unit = UnitOfWork::new()
        .unaudited(
            Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "old".into(), secrets: rotated.clone() }),
            Unaudited::Fixture,
        )
        .record(
            Mutation::from(ProfileMutation::SetSecretsKeyId { expected: None, key_id: "new".into() }),
            fixtures::audit_entry("secrets.rotated", "installation", "secrets"),
        );
    store.commit(unit).await.unwrap();

    let mut expected = rotated.clone();
    expected.sort_by(|a, b| (a.owner, &a.name, a.revision).cmp(&(b.owner, &b.name, b.revision)));
    assert_eq!(every_secret(&store).await, expected);
    assert_eq!(store.secrets_key_id().await.unwrap().as_deref(), Some("new"));

    let again: Vec<StoredSecret> = rows.iter().map(|s| StoredSecret { sealed: sealed("newer"), ..s.clone() }).collect();
    let refused = store
        .commit(UnitOfWork::new().unaudited(
            Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "old".into(), secrets: again }),
            Unaudited::Fixture,
        ))
        .await;
    assert_eq!(refused.unwrap_err().code(), ErrorCode::Conflict);
    assert_eq!(every_secret(&store).await, expected);
}
