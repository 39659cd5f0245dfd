//! Postgres-specific behaviour of the runtime-profiles aggregate beyond the
//! shared conformance suite: a key rotation rewraps 10,000 sealed secrets in
//! one unit (one statement; the timing is not asserted here) and a refused
//! batch changes no row; environments may swap names within one replace;
//! the schema refuses malformed secret rows the core never writes.

mod common;

use conman_core::conformance::fixtures::{app, environment, runtime_profile, setup, stored_secret, user};
use conman_core::ports::store::{
    AppMutation, Mutation, ProfileMutation, ProfileStore, SecretOwner, Store, StoredSecret, Unaudited, UnitOfWork,
    UserMutation,
};
use conman_core::ErrorCode;

/// Rows rewrapped by the batch test.
const MANY: u32 = 10_000;

fn rewrapped(s: &StoredSecret, key_id: &str) -> StoredSecret {
    let mut s = s.clone();
    s.sealed.key_id = key_id.into();
    s.sealed.wrapped_key.reverse();
    s.sealed.wrap_nonce.reverse();
    s
}

#[tokio::test]
async fn ten_thousand_secrets_rewrap_in_one_unit_and_a_refused_batch_changes_nothing() {
    let Some((store, _scratch)) = common::fresh_store().await else { return };
    let ada = user("ada");
    let shop = app("shop", &ada);
    let prod = runtime_profile(&shop, "prod");
    setup(
        &store,
        [
            Mutation::from(UserMutation::InsertUser(ada)),
            Mutation::from(AppMutation::InsertApp(shop.clone())),
            Mutation::from(ProfileMutation::InsertRuntimeProfile(prod.clone())),
        ],
    )
    .await;
    let owner = SecretOwner::Profile(prod.id);
    let old: Vec<StoredSecret> =
        (0..MANY).map(|i| stored_secret(shop.id, owner, &format!("KEY_{:05}", i % 100), i / 100 + 1, "k1")).collect();
    let mut unit = UnitOfWork::new();
    for s in &old {
        unit = unit.unaudited(Mutation::from(ProfileMutation::InsertSecret(s.clone())), Unaudited::Fixture);
    }
    store.commit(unit).await.expect("the secrets are stored");

    // A batch naming one row twice, or one unknown row, is refused whole.
    let mut twice: Vec<StoredSecret> = old.iter().map(|s| rewrapped(s, "k2")).collect();
    twice.push(twice[0].clone());
    let err = store
        .commit(UnitOfWork::new().unaudited(
            Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "k1".into(), secrets: twice }),
            Unaudited::Fixture,
        ))
        .await
        .expect_err("a row named twice is refused");
    assert_eq!(err.code(), ErrorCode::Conflict);
    let mut unknown: Vec<StoredSecret> = old.iter().map(|s| rewrapped(s, "k2")).collect();
    unknown.push(stored_secret(shop.id, owner, "MISSING", 1, "k2"));
    let err = store
        .commit(UnitOfWork::new().unaudited(
            Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "k1".into(), secrets: unknown }),
            Unaudited::Fixture,
        ))
        .await
        .expect_err("an unknown row is refused");
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(store.secrets_of(owner).await.expect("read"), sorted(old.clone()), "a refused batch changes nothing");

    let new: Vec<StoredSecret> = old.iter().map(|s| rewrapped(s, "k2")).collect();
    store
        .commit(UnitOfWork::new().unaudited(
            Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "k1".into(), secrets: new.clone() }),
            Unaudited::Fixture,
        ))
        .await
        .expect("the batch rewraps");
    assert_eq!(store.secrets_of(owner).await.expect("read"), sorted(new.clone()));

    // Rewrapping again from the old key is stale.
    let err = store
        .commit(UnitOfWork::new().unaudited(
            Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "k1".into(), secrets: new }),
            Unaudited::Fixture,
        ))
        .await
        .expect_err("rows no longer wrapped by k1");
    assert_eq!(err.code(), ErrorCode::Conflict);
}

fn sorted(mut secrets: Vec<StoredSecret>) -> Vec<StoredSecret> {
    secrets.sort_by(|a, b| (&a.name, a.revision).cmp(&(&b.name, b.revision)));
    secrets
}

#[tokio::test]
async fn environments_swap_names_in_one_replace() {
    let Some((store, _scratch)) = common::fresh_store().await else { return };
    let ada = user("ada");
    let shop = app("shop", &ada);
    setup(
        &store,
        [Mutation::from(UserMutation::InsertUser(ada)), Mutation::from(AppMutation::InsertApp(shop.clone()))],
    )
    .await;
    let (dev, prod) = (environment(&shop, "dev", 0, false), environment(&shop, "prod", 1, true));
    let replace = |environments| Mutation::from(ProfileMutation::ReplaceEnvironments { app_id: shop.id, environments });
    setup(&store, [replace(vec![dev.clone(), prod.clone()])]).await;
    let swapped = vec![
        conman_core::domain::environment::Environment { name: "prod".into(), ..dev.clone() },
        conman_core::domain::environment::Environment { name: "dev".into(), ..prod.clone() },
    ];
    store.commit(UnitOfWork::new().unaudited(replace(swapped.clone()), Unaudited::Fixture)).await.expect("names swap");
    assert_eq!(store.environments(shop.id).await.expect("read"), swapped);
}

#[tokio::test]
async fn the_schema_refuses_an_unknown_owner_kind() {
    let Some((store, scratch)) = common::fresh_store().await else { return };
    let ada = user("ada");
    let shop = app("shop", &ada);
    setup(
        &store,
        [Mutation::from(UserMutation::InsertUser(ada)), Mutation::from(AppMutation::InsertApp(shop.clone()))],
    )
    .await;
    let mut conn = scratch.raw().await;
    let refused = sqlx::query(
        "INSERT INTO secrets (owner_kind, owner_id, name, revision, app_id, format_version, key_id, wrap_nonce,
             wrapped_key, value_nonce, ciphertext, created_at)
         VALUES ('workspace', gen_random_uuid(), 'A', 1, $1, 1, 'k', '', '', '', '', now())",
    )
    .bind(shop.id.0)
    .execute(&mut conn)
    .await;
    let refused = refused.expect_err("an unknown owner kind is refused");
    assert_eq!(refused.as_database_error().and_then(|e| e.code()).as_deref(), Some("23514"), "{refused}");
}
