//! Conformance cases of the runtime-profile aggregate
//! ([`ProfileStore`](crate::ports::store::ProfileStore) plus the profile,
//! profile revision, sealed secret, secrets key id, environment and
//! changeset override mutations).
//!
//! Invariants pinned here: a profile round-trips every field and is found
//! only under its app, by id or by name; a profile name is unique per app
//! (`conflict`), an environment name too; profile updates are
//! compare-and-set on `version` (stale: `conflict`, unknown id:
//! `not_found`); profiles list by name, revisions newest first, both paged
//! with totals; a revision number is unique per profile; a sealed secret is
//! keyed by (owner, name, revision) — a profile and a changeset whose ids
//! have the same UUID bytes never share a secret — and lists by name then
//! revision; `all_secrets` walks every row exactly once in the port's
//! keyset order (owner kind as text, owner id, name, revision);
//! `RewrapSecrets` replaces sealed values only of rows still wrapped by the
//! expected key (`conflict` otherwise, `not_found` for an unknown row);
//! `SetSecretsKeyId` is compare-and-set; `DeleteChangesetSecrets` touches
//! one changeset's secrets only; `ReplaceEnvironments` and
//! `PutChangesetOverrides` replace a whole list, keeping ids and order. A
//! refused unit leaves nothing behind — no row and no audit record.
//!
//! Names used for secrets and profiles sort alike under any collation
//! (same shape, upper- or lower-case letters only where order matters), so
//! a store comparing text by its database's collation still passes.

use std::collections::BTreeSet;

use chrono::{TimeDelta, TimeZone, Utc};
use uuid::Uuid;

use super::assert_code;
use super::fixtures::{
    self, app, changeset, environment, later, profile_revision, runtime_profile, sealed, setup, stored_secret,
    workspace,
};
use crate::domain::app::App;
use crate::domain::changeset::Changeset;
use crate::domain::environment::Environment;
use crate::domain::runtime_profile::{
    AppliedState, DataStrategy, DatabaseEngine, DatabaseSettings, EnvValue, Lifecycle, MigrationSettings,
    OverrideTarget, ProfileKind, ProfileOverride, ProfileRevision, ProvisioningMode, RevisionReason, RuntimeProfile,
    SecretMeta,
};
use crate::domain::user::User;
use crate::error::{Error, ErrorCode};
use crate::ids::{ChangesetId, EnvironmentId, RuntimeProfileId};
use crate::ports::store::{
    AppMutation, ChangesetMutation, ConflictReason, Mutation, Page, PageRequest, ProfileMutation, Record, SecretOwner,
    Store, StoredSecret, WorkspaceMutation,
};

/// Users, apps and changesets the cases share.
struct World {
    ada: User,
    bob: User,
    billing: App,
    search: App,
    /// A draft changeset of `billing`.
    cs: Changeset,
    /// Another draft changeset of `billing` (another workspace).
    cs2: Changeset,
}

/// Inserts users `ada` and `bob`, apps `billing` and `search`, two
/// workspaces of `billing` and a draft changeset on each.
async fn world<S: Store>(store: &S) -> World {
    let users = fixtures::users(store, &["ada", "bob"]).await;
    let [ada, bob] = <[User; 2]>::try_from(users).expect("two users");
    let (billing, search) = (app("billing", &ada), app("search", &ada));
    let ws = workspace(&billing, &ada, "feature");
    let ws2 = workspace(&billing, &bob, "other");
    let cs = changeset(&ws, &ada, "cs");
    let cs2 = changeset(&ws2, &bob, "cs2");
    setup(
        store,
        [
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws)),
            Mutation::from(WorkspaceMutation::InsertWorkspace(ws2)),
            Mutation::from(ChangesetMutation::InsertChangeset(cs.clone())),
            Mutation::from(ChangesetMutation::InsertChangeset(cs2.clone())),
        ],
    )
    .await;
    World { ada, bob, billing, search, cs, cs2 }
}

/// Inserts `profiles`, one unit.
async fn insert<S: Store>(store: &S, profiles: &[&RuntimeProfile]) {
    setup(store, profiles.iter().map(|p| Mutation::from(ProfileMutation::InsertRuntimeProfile((*p).clone())))).await;
}

/// `p` with `version` + 1, as the core prepares an `UpdateRuntimeProfile`.
fn bump(p: &RuntimeProfile) -> RuntimeProfile {
    RuntimeProfile { version: p.version + 1, revision: p.revision + 1, updated_at: later(p.updated_at, 1), ..p.clone() }
}

/// The profile as stored, under its app.
async fn reload<S: Store>(store: &S, p: &RuntimeProfile) -> Option<RuntimeProfile> {
    store.runtime_profile(p.app_id, p.id).await.expect("runtime_profile reads")
}

/// A profile with every section set away from its default.
fn full_profile(app: &App, base: RuntimeProfileId) -> RuntimeProfile {
    let created = Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap() + TimeDelta::microseconds(123_456);
    RuntimeProfile {
        kind: ProfileKind::TempChangeset,
        base_url: Some("https://pr-42.preview.example.com/app?x=1".into()),
        env_vars: [
            ("LOG_LEVEL".to_owned(), EnvValue::String("débug \"quoted\" ✓\nline".into())),
            ("POOL".to_owned(), EnvValue::Number(0.1)),
            ("RATIO".to_owned(), EnvValue::Number(-12.5e-3)),
            ("BIG".to_owned(), EnvValue::Number(9_007_199_254_740_993.0)),
            ("FEATURE_X".to_owned(), EnvValue::Boolean(false)),
            (
                "LIMITS".to_owned(),
                EnvValue::Json(serde_json::json!({"a": [1, 2.5, null, true], "b": {"c": "ü"}, "empty": {}})),
            ),
            ("EMPTY".to_owned(), EnvValue::String(String::new())),
        ]
        .into(),
        secrets: [
            ("API_KEY".to_owned(), SecretMeta { revision: 2, updated_at: created }),
            ("DATABASE_URL".to_owned(), SecretMeta { revision: 3, updated_at: later(created, 60) }),
        ]
        .into(),
        database: DatabaseSettings {
            engine: DatabaseEngine::Postgres,
            connection_ref: Some("DATABASE_URL".into()),
            provisioning_mode: ProvisioningMode::CloneFromBase,
            base_profile_id: Some(base),
        },
        migrations: MigrationSettings {
            paths: vec!["db/migrations".into(), "z/extra migrations".into()],
            command: Some("./migrate up --all".into()),
            applied_state: Some(AppliedState {
                last_applied: "0042_add_index".into(),
                checksum: Some("sha256:abc".into()),
                recorded_at: later(created, 120),
            }),
        },
        data_strategy: DataStrategy::CopyFromBase,
        lifecycle: Lifecycle { idle_ttl_hours: 72, grace_hours: 5, auto_cleanup: false },
        revision: 3,
        created_at: created,
        updated_at: created + TimeDelta::microseconds(1),
        version: 4,
        ..runtime_profile(app, "preview")
    }
}

/// A profile with every field set reads back equal by id and by name under
/// its app, never under another app; unknown ids and names are not found.
pub async fn runtime_profile_round_trips_every_field_and_is_scoped_by_app<S: Store>(store: &S) {
    let w = world(store).await;
    let plain = runtime_profile(&w.billing, "prod");
    let full = full_profile(&w.billing, plain.id);
    let there = runtime_profile(&w.search, "prod");
    insert(store, &[&plain, &full, &there]).await;

    for p in [&plain, &full] {
        assert_eq!(reload(store, p).await.as_ref(), Some(p));
        assert_eq!(store.runtime_profile_by_name(w.billing.id, &p.name).await.unwrap().as_ref(), Some(p));
        assert_eq!(store.runtime_profile(w.search.id, p.id).await.unwrap(), None, "another app's profile");
    }
    assert_eq!(store.runtime_profile_by_name(w.search.id, "prod").await.unwrap(), Some(there.clone()));
    assert_eq!(store.runtime_profile_by_name(w.search.id, "preview").await.unwrap(), None);
    assert_eq!(store.runtime_profile(w.billing.id, there.id).await.unwrap(), None);
    assert_eq!(store.runtime_profile_by_name(w.billing.id, "ghost").await.unwrap(), None);
    assert_eq!(store.runtime_profile_by_name(w.billing.id, "PROD").await.unwrap(), None, "names match exactly");
    let ghost = runtime_profile(&w.billing, "ghost");
    assert_eq!(reload(store, &ghost).await, None);
}

/// A second profile of the same name in one app is a conflict that rolls
/// its unit back (also through a rename); another app may use the name.
pub async fn duplicate_profile_name_conflicts_only_within_an_app<S: Store>(store: &S) {
    let w = world(store).await;
    let prod = runtime_profile(&w.billing, "prod");
    let staging = runtime_profile(&w.billing, "staging");
    insert(store, &[&prod, &staging]).await;
    let before = fixtures::verified_chain(store, 100).await;

    let fresh = runtime_profile(&w.billing, "dev");
    let twin = runtime_profile(&w.billing, "prod");
    let result = fixtures::commit(
        store,
        [
            Mutation::from(ProfileMutation::InsertRuntimeProfile(fresh.clone())),
            Mutation::from(ProfileMutation::InsertRuntimeProfile(twin.clone())),
        ],
    )
    .await;
    super::assert_conflict(
        result,
        crate::ports::store::ConflictReason::Taken {
            record: crate::ports::store::Record::RuntimeProfile,
            field: "name".into(),
        },
    );
    assert_eq!(reload(store, &fresh).await, None, "the unit rolled back");
    assert_eq!(reload(store, &twin).await, None);
    assert_eq!(fixtures::verified_chain(store, 100).await, before, "no audit record of the refused unit");

    let renamed = RuntimeProfile { name: "prod".into(), ..bump(&staging) };
    assert_code(
        fixtures::commit(store, [Mutation::from(ProfileMutation::UpdateRuntimeProfile(renamed))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(reload(store, &staging).await, Some(staging.clone()));

    let elsewhere = runtime_profile(&w.search, "prod");
    insert(store, &[&elsewhere]).await;
    assert_eq!(reload(store, &elsewhere).await, Some(elsewhere.clone()));
    assert_eq!(store.runtime_profile_by_name(w.billing.id, "prod").await.unwrap(), Some(prod));
}

/// Profile updates apply on the next version only and replace the whole
/// document (optional sections back to `None`, maps to empty); a stale
/// version is a conflict and an unknown profile not found.
pub async fn runtime_profile_update_is_compare_and_set<S: Store>(store: &S) {
    let w = world(store).await;
    let base = runtime_profile(&w.billing, "prod");
    let p = runtime_profile(&w.billing, "preview");
    insert(store, &[&base, &p]).await;

    let filled = RuntimeProfile {
        id: p.id,
        name: "preview-renamed".into(),
        created_at: p.created_at,
        version: p.version + 1,
        revision: 2,
        ..full_profile(&w.billing, base.id)
    };
    setup(store, [Mutation::from(ProfileMutation::UpdateRuntimeProfile(filled.clone()))]).await;
    assert_eq!(reload(store, &p).await, Some(filled.clone()));
    assert_eq!(store.runtime_profile_by_name(w.billing.id, "preview").await.unwrap(), None, "the old name is free");
    assert_eq!(store.runtime_profile_by_name(w.billing.id, "preview-renamed").await.unwrap(), Some(filled.clone()));

    let cleared = RuntimeProfile {
        base_url: None,
        env_vars: Default::default(),
        secrets: Default::default(),
        database: DatabaseSettings::default(),
        migrations: MigrationSettings::default(),
        data_strategy: DataStrategy::None,
        lifecycle: Lifecycle::default(),
        ..bump(&filled)
    };
    setup(store, [Mutation::from(ProfileMutation::UpdateRuntimeProfile(cleared.clone()))]).await;
    assert_eq!(reload(store, &p).await, Some(cleared.clone()));

    let stale = RuntimeProfile { base_url: Some("https://stale.example.com".into()), ..bump(&filled) };
    assert_code(
        fixtures::commit(store, [Mutation::from(ProfileMutation::UpdateRuntimeProfile(stale))]).await,
        ErrorCode::Conflict,
    );
    let skipped = bump(&bump(&cleared));
    assert_code(
        fixtures::commit(store, [Mutation::from(ProfileMutation::UpdateRuntimeProfile(skipped))]).await,
        ErrorCode::Conflict,
    );
    assert_eq!(reload(store, &p).await, Some(cleared.clone()));

    let ghost = bump(&runtime_profile(&w.billing, "ghost"));
    assert_code(
        fixtures::commit(store, [Mutation::from(ProfileMutation::UpdateRuntimeProfile(ghost))]).await,
        ErrorCode::NotFound,
    );
    // Under another app the profile does not exist either.
    let moved = RuntimeProfile { app_id: w.search.id, ..bump(&cleared) };
    assert_code(
        fixtures::commit(store, [Mutation::from(ProfileMutation::UpdateRuntimeProfile(moved))]).await,
        ErrorCode::NotFound,
    );
    assert_eq!(reload(store, &p).await, Some(cleared));
}

/// Profiles list per app by name, paged with totals.
pub async fn list_runtime_profiles_pages_by_name<S: Store>(store: &S) {
    let w = world(store).await;
    let names = ["echo", "alpha", "delta", "bravo", "charlie"];
    let profiles: Vec<RuntimeProfile> = names.iter().map(|n| runtime_profile(&w.billing, n)).collect();
    let there = runtime_profile(&w.search, "alpha");
    setup(store, profiles.iter().cloned().chain([there.clone()]).map(ProfileMutation::InsertRuntimeProfile)).await;
    let mut by_name = profiles.clone();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));

    let all = store.list_runtime_profiles(w.billing.id, PageRequest { page: 1, limit: 100 }).await.unwrap();
    assert_eq!((all.items, all.total), (by_name.clone(), 5));
    let second = store.list_runtime_profiles(w.billing.id, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!((second.items, second.total), (by_name[2..4].to_vec(), 5));
    let third = store.list_runtime_profiles(w.billing.id, PageRequest { page: 3, limit: 2 }).await.unwrap();
    assert_eq!((third.items, third.total), (by_name[4..].to_vec(), 5));
    let beyond = store.list_runtime_profiles(w.billing.id, PageRequest { page: 4, limit: 2 }).await.unwrap();
    assert_eq!((beyond.items, beyond.total), (vec![], 5));
    let search = store.list_runtime_profiles(w.search.id, PageRequest::default()).await.unwrap();
    assert_eq!(search, Page { items: vec![there], total: 1 });
    let ghost = app("ghost", &w.ada);
    assert_eq!(
        store.list_runtime_profiles(ghost.id, PageRequest::default()).await.unwrap(),
        Page { items: vec![], total: 0 }
    );
}

/// Revisions list newest (highest number) first whatever the insertion
/// order, paged with totals, round-trip every field, are found by number
/// under their profile only, and a duplicate number is a conflict that rolls
/// its unit back.
pub async fn profile_revisions_list_newest_first_and_refuse_duplicates<S: Store>(store: &S) {
    let w = world(store).await;
    let base = runtime_profile(&w.billing, "prod");
    let p = full_profile(&w.billing, base.id);
    let other = runtime_profile(&w.billing, "other");
    insert(store, &[&base, &p, &other]).await;

    let r1 = ProfileRevision { reason: RevisionReason::Create, ..profile_revision(&base, 1, &w.ada) };
    let r1 = ProfileRevision { profile_id: p.id, ..r1 };
    let r2 = profile_revision(&p, 2, &w.bob);
    let r3 = ProfileRevision {
        reason: RevisionReason::Revert { to_revision: 1 },
        created_at: Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap() + TimeDelta::microseconds(654_321),
        ..profile_revision(&base, 3, &w.ada)
    };
    let r3 = ProfileRevision { profile_id: p.id, ..r3 };
    let r4 = profile_revision(&p, 4, &w.ada);
    let o1 = profile_revision(&other, 1, &w.bob);
    setup(
        store,
        [r3.clone(), o1.clone(), r1.clone(), r4.clone(), r2.clone()]
            .into_iter()
            .map(ProfileMutation::InsertProfileRevision),
    )
    .await;
    let newest_first = vec![r4.clone(), r3.clone(), r2.clone(), r1.clone()];

    let all = store.profile_revisions(p.id, PageRequest::default()).await.unwrap();
    assert_eq!((all.items, all.total), (newest_first.clone(), 4));
    let second = store.profile_revisions(p.id, PageRequest { page: 2, limit: 3 }).await.unwrap();
    assert_eq!((second.items, second.total), (newest_first[3..].to_vec(), 4));
    let beyond = store.profile_revisions(p.id, PageRequest { page: 3, limit: 3 }).await.unwrap();
    assert_eq!((beyond.items, beyond.total), (vec![], 4));
    let others = store.profile_revisions(other.id, PageRequest::default()).await.unwrap();
    assert_eq!(others, Page { items: vec![o1.clone()], total: 1 });
    let ghost = runtime_profile(&w.billing, "ghost");
    assert_eq!(
        store.profile_revisions(ghost.id, PageRequest::default()).await.unwrap(),
        Page { items: vec![], total: 0 }
    );

    for r in &newest_first {
        assert_eq!(store.profile_revision(p.id, r.number).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(store.profile_revision(p.id, 5).await.unwrap(), None);
    assert_eq!(store.profile_revision(other.id, 1).await.unwrap(), Some(o1));
    assert_eq!(store.profile_revision(other.id, 2).await.unwrap(), None);

    let before = fixtures::verified_chain(store, 100).await;
    let r5 = profile_revision(&p, 5, &w.ada);
    let dup = profile_revision(&p, 3, &w.bob);
    let result = fixtures::commit(
        store,
        [
            Mutation::from(ProfileMutation::InsertProfileRevision(r5)),
            Mutation::from(ProfileMutation::InsertProfileRevision(dup)),
        ],
    )
    .await;
    super::assert_conflict(
        result,
        crate::ports::store::ConflictReason::Taken {
            record: crate::ports::store::Record::ProfileRevision,
            field: "number".into(),
        },
    );
    assert_eq!(store.profile_revision(p.id, 5).await.unwrap(), None, "the unit rolled back");
    assert_eq!(store.profile_revision(p.id, 3).await.unwrap(), Some(r3));
    assert_eq!(fixtures::verified_chain(store, 100).await, before);
}

/// Secrets are found by (owner, name, revision), list per owner by name
/// then revision, refuse a duplicate key, and a profile and a changeset
/// whose ids share their UUID bytes never see each other's secrets.
pub async fn secrets_are_keyed_by_owner_name_and_revision<S: Store>(store: &S) {
    let w = world(store).await;
    // The profile's id has the changeset's UUID bytes.
    let p = RuntimeProfile { id: RuntimeProfileId(w.cs.id.0), ..runtime_profile(&w.billing, "prod") };
    let other = runtime_profile(&w.billing, "other");
    insert(store, &[&p, &other]).await;
    let (prof, chg) = (SecretOwner::Profile(p.id), SecretOwner::Changeset(w.cs.id));
    let app_id = w.billing.id;

    let at = Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap() + TimeDelta::microseconds(777_001);
    let p_key_2 = StoredSecret { created_at: at, ..stored_secret(app_id, prof, "SECRET_B", 2, "key-one") };
    let p_key_1 = stored_secret(app_id, prof, "SECRET_B", 1, "key-one");
    let p_other = stored_secret(app_id, prof, "SECRET_A", 3, "key-two");
    let p_ten = stored_secret(app_id, prof, "SECRET_B", 10, "key-one");
    let c_key = stored_secret(app_id, chg, "SECRET_B", 1, "key-one");
    let c_other = stored_secret(app_id, chg, "SECRET_C", 1, "key-one");
    let o_key = stored_secret(app_id, SecretOwner::Profile(other.id), "SECRET_B", 1, "key-one");
    setup(
        store,
        [&p_ten, &c_other, &p_key_2, &o_key, &p_other, &c_key, &p_key_1]
            .into_iter()
            .map(|s| Mutation::from(ProfileMutation::InsertSecret(s.clone()))),
    )
    .await;

    for s in [&p_key_1, &p_key_2, &p_other, &p_ten, &c_key, &c_other, &o_key] {
        assert_eq!(store.secret(s.owner, &s.name, s.revision).await.unwrap().as_ref(), Some(s));
    }
    assert_eq!(store.secret(prof, "SECRET_B", 3).await.unwrap(), None, "no value of that revision");
    assert_eq!(store.secret(chg, "SECRET_B", 2).await.unwrap(), None);
    assert_eq!(store.secret(chg, "SECRET_A", 3).await.unwrap(), None, "the profile's secret is not the changeset's");
    assert_eq!(store.secret(prof, "SECRET_C", 1).await.unwrap(), None, "the changeset's secret is not the profile's");
    assert_eq!(store.secret(prof, "secret_b", 1).await.unwrap(), None, "names match exactly");

    // By name, then revision as a number (10 after 2).
    assert_eq!(store.secrets_of(prof).await.unwrap(), vec![p_other, p_key_1.clone(), p_key_2, p_ten]);
    assert_eq!(store.secrets_of(chg).await.unwrap(), vec![c_key.clone(), c_other]);
    assert_eq!(store.secrets_of(SecretOwner::Profile(other.id)).await.unwrap(), vec![o_key]);
    assert_eq!(store.secrets_of(SecretOwner::Changeset(w.cs2.id)).await.unwrap(), vec![]);

    let before = fixtures::verified_chain(store, 100).await;
    let fresh = stored_secret(app_id, prof, "SECRET_D", 1, "key-one");
    let dup = stored_secret(app_id, prof, "SECRET_B", 1, "key-two");
    let result = fixtures::commit(
        store,
        [Mutation::from(ProfileMutation::InsertSecret(fresh)), Mutation::from(ProfileMutation::InsertSecret(dup))],
    )
    .await;
    // Taken on the last column of the key, as every store names it.
    let taken: Error = ConflictReason::Taken { record: Record::Secret, field: "revision".into() }.into();
    assert_eq!(result, Err(taken.clone()));
    assert_eq!(store.secret(prof, "SECRET_D", 1).await.unwrap(), None, "the unit rolled back");
    assert_eq!(store.secret(prof, "SECRET_B", 1).await.unwrap(), Some(p_key_1), "the first value stays");
    assert_eq!(fixtures::verified_chain(store, 100).await, before);
    let dup_changeset = stored_secret(app_id, chg, "SECRET_B", 1, "key-two");
    assert_eq!(
        fixtures::commit(store, [Mutation::from(ProfileMutation::InsertSecret(dup_changeset))]).await,
        Err(taken)
    );
    assert_eq!(store.secret(chg, "SECRET_B", 1).await.unwrap(), Some(c_key));
}

/// The keyset order of `all_secrets`: owner kind as text, owner id, name,
/// revision.
fn keyset(s: &StoredSecret) -> (&'static str, Uuid, String, u32) {
    match s.owner {
        SecretOwner::Changeset(id) => ("changeset", id.0, s.name.clone(), s.revision),
        SecretOwner::Profile(id) => ("profile", id.0, s.name.clone(), s.revision),
    }
}

/// Inserts sealed secrets of two profiles and two changesets (the first
/// profile sharing UUID bytes with the first changeset), all wrapped by
/// `key_id`; returns them in `all_secrets` order.
async fn many_secrets<S: Store>(store: &S, w: &World, key_id: &str) -> Vec<StoredSecret> {
    let p1 = RuntimeProfile { id: RuntimeProfileId(w.cs.id.0), ..runtime_profile(&w.billing, "prod") };
    let p2 = runtime_profile(&w.search, "prod");
    insert(store, &[&p1, &p2]).await;
    let mut rows = Vec::new();
    for (app_id, owner) in [(w.billing.id, SecretOwner::Profile(p1.id)), (w.search.id, SecretOwner::Profile(p2.id))] {
        for name in ["SECRET_C", "SECRET_A", "SECRET_B"] {
            for revision in [2, 1, 11] {
                rows.push(stored_secret(app_id, owner, name, revision, key_id));
            }
        }
    }
    for cs in [&w.cs, &w.cs2] {
        for name in ["SECRET_B", "SECRET_A"] {
            rows.push(stored_secret(w.billing.id, SecretOwner::Changeset(cs.id), name, 1, key_id));
        }
    }
    setup(store, rows.iter().cloned().map(ProfileMutation::InsertSecret)).await;
    rows.sort_by_key(keyset);
    rows
}

/// `all_secrets` pages through every sealed value of the installation
/// exactly once in the documented order, whatever the page size, and a
/// cursor between stored keys resumes at the next one.
pub async fn all_secrets_visits_every_row_once_in_keyset_order<S: Store>(store: &S) {
    let w = world(store).await;
    assert_eq!(store.all_secrets(None, 10).await.unwrap(), vec![], "an empty store has no secrets");
    let expected = many_secrets(store, &w, "key-one").await;
    assert_eq!(expected.len(), 22);

    for limit in [1, 5, 7, 22, 100] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.all_secrets(after.clone(), limit).await.unwrap();
            assert!(page.len() <= limit as usize, "all_secrets returned more than its limit");
            let Some(last) = page.last() else { break };
            after = Some((last.owner, last.name.clone(), last.revision));
            seen.extend(page);
            assert!(seen.len() <= expected.len(), "all_secrets never ends with limit {limit}");
        }
        assert_eq!(seen, expected, "limit {limit}");
    }

    let first_limit = store.all_secrets(None, 3).await.unwrap();
    assert_eq!(first_limit, expected[..3].to_vec());
    // A cursor that is no stored key: revision 3 lies between 2 and 11.
    let pos = expected.iter().position(|s| matches!(s.owner, SecretOwner::Profile(_)) && s.revision == 11).unwrap();
    let at = &expected[pos];
    let after = store.all_secrets(Some((at.owner, at.name.clone(), 3)), 2).await.unwrap();
    assert_eq!(after, expected[pos..pos + 2].to_vec());
    let last = expected.last().unwrap();
    assert_eq!(store.all_secrets(Some((last.owner, last.name.clone(), last.revision)), 10).await.unwrap(), vec![]);
}

/// `RewrapSecrets` replaces the sealed values of rows still wrapped by
/// `from_key_id` (profile and changeset rows alike) and nothing else; a row
/// wrapped by another key is a conflict and an unknown row not found, and
/// either rolls the whole unit back.
pub async fn rewrap_replaces_only_rows_still_wrapped_by_the_expected_key<S: Store>(store: &S) {
    let w = world(store).await;
    let rows = many_secrets(store, &w, "key-one").await;
    let rewrapped = |s: &StoredSecret, key: &str| StoredSecret { sealed: sealed(key), ..s.clone() };

    // Rotate the first half.
    let half: Vec<StoredSecret> = rows[..11].iter().map(|s| rewrapped(s, "key-two")).collect();
    setup(
        store,
        [Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "key-one".into(), secrets: half.clone() })],
    )
    .await;
    let expected: Vec<StoredSecret> = half.iter().cloned().chain(rows[11..].iter().cloned()).collect();
    assert_eq!(store.all_secrets(None, 100).await.unwrap(), expected);
    for s in &half {
        assert_eq!(store.secret(s.owner, &s.name, s.revision).await.unwrap().as_ref(), Some(s));
    }

    // One row of the batch is already rotated: nothing of the unit applies.
    let before = fixtures::verified_chain(store, 100).await;
    let mixed = vec![rewrapped(&rows[11], "key-two"), rewrapped(&rows[0], "key-two")];
    let result = fixtures::commit(
        store,
        [Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "key-one".into(), secrets: mixed })],
    )
    .await;
    super::assert_conflict(result, crate::ports::store::ConflictReason::KeyIdMismatch);
    assert_eq!(store.all_secrets(None, 100).await.unwrap(), expected, "the unit rolled back");
    assert_eq!(fixtures::verified_chain(store, 100).await, before);

    // An unknown row is not found, and rolls back the rows before it.
    let ghost = stored_secret(w.billing.id, SecretOwner::Changeset(w.cs.id), "SECRET_Z", 1, "key-two");
    let with_ghost = vec![rewrapped(&rows[12], "key-two"), ghost];
    let result = fixtures::commit(
        store,
        [Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "key-one".into(), secrets: with_ghost })],
    )
    .await;
    assert_code(result, ErrorCode::NotFound);
    assert_eq!(store.all_secrets(None, 100).await.unwrap(), expected);

    // A wrong `from_key_id` for every row changes nothing.
    let wrong = vec![rewrapped(&rows[13], "key-three")];
    let result = fixtures::commit(
        store,
        [Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "key-two".into(), secrets: wrong })],
    )
    .await;
    super::assert_conflict(result, crate::ports::store::ConflictReason::KeyIdMismatch);

    // The rest rotates; an empty batch is valid.
    let rest: Vec<StoredSecret> = rows[11..].iter().map(|s| rewrapped(s, "key-two")).collect();
    setup(
        store,
        [
            Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "key-one".into(), secrets: rest.clone() }),
            Mutation::from(ProfileMutation::RewrapSecrets { from_key_id: "key-one".into(), secrets: vec![] }),
        ],
    )
    .await;
    let all: Vec<StoredSecret> = half.into_iter().chain(rest).collect();
    assert_eq!(store.all_secrets(None, 100).await.unwrap(), all);
    assert!(all.iter().all(|s| s.sealed.key_id == "key-two"));
}

/// The secrets key id starts unset and changes only from the expected
/// value; a refused unit keeps the earlier id.
pub async fn secrets_key_id_is_compare_and_set<S: Store>(store: &S) {
    assert_eq!(store.secrets_key_id().await.unwrap(), None);
    let set = |expected: Option<&str>, key_id: &str| {
        Mutation::from(ProfileMutation::SetSecretsKeyId {
            expected: expected.map(str::to_owned),
            key_id: key_id.into(),
        })
    };
    super::assert_conflict(
        fixtures::commit(store, [set(Some("key-zero"), "key-one")]).await,
        crate::ports::store::ConflictReason::StaleKeyId,
    );
    assert_eq!(store.secrets_key_id().await.unwrap(), None);

    setup(store, [set(None, "key-one")]).await;
    assert_eq!(store.secrets_key_id().await.unwrap().as_deref(), Some("key-one"));
    super::assert_conflict(
        fixtures::commit(store, [set(None, "key-two")]).await,
        crate::ports::store::ConflictReason::StaleKeyId,
    );
    super::assert_conflict(
        fixtures::commit(store, [set(Some("key-two"), "key-three")]).await,
        crate::ports::store::ConflictReason::StaleKeyId,
    );
    assert_eq!(store.secrets_key_id().await.unwrap().as_deref(), Some("key-one"));

    // Two steps in one unit chain; a failing later step undoes both.
    let result = fixtures::commit(store, [set(Some("key-one"), "key-two"), set(Some("key-one"), "key-three")]).await;
    super::assert_conflict(result, crate::ports::store::ConflictReason::StaleKeyId);
    assert_eq!(store.secrets_key_id().await.unwrap().as_deref(), Some("key-one"), "the unit rolled back");
    setup(store, [set(Some("key-one"), "key-two"), set(Some("key-two"), "key-three")]).await;
    assert_eq!(store.secrets_key_id().await.unwrap().as_deref(), Some("key-three"));
}

/// `DeleteChangesetSecrets` removes every secret of that changeset and no
/// other row — not another changeset's, not a profile's with the same UUID
/// bytes; deleting none is fine.
pub async fn deleting_changeset_secrets_spares_every_other_owner<S: Store>(store: &S) {
    let w = world(store).await;
    let rows = many_secrets(store, &w, "key-one").await;
    setup(store, [Mutation::from(ProfileMutation::DeleteChangesetSecrets { changeset_id: w.cs.id })]).await;
    let kept: Vec<StoredSecret> = rows.iter().filter(|s| s.owner != SecretOwner::Changeset(w.cs.id)).cloned().collect();
    assert_eq!(kept.len(), rows.len() - 2);
    assert_eq!(store.all_secrets(None, 100).await.unwrap(), kept);
    assert_eq!(store.secrets_of(SecretOwner::Changeset(w.cs.id)).await.unwrap(), vec![]);
    assert_eq!(store.secrets_of(SecretOwner::Profile(RuntimeProfileId(w.cs.id.0))).await.unwrap().len(), 9);

    // Again (nothing left), then new values under the same keys.
    let fresh = stored_secret(w.billing.id, SecretOwner::Changeset(w.cs.id), "SECRET_A", 1, "key-one");
    setup(
        store,
        [
            Mutation::from(ProfileMutation::DeleteChangesetSecrets { changeset_id: w.cs.id }),
            Mutation::from(ProfileMutation::InsertSecret(fresh.clone())),
        ],
    )
    .await;
    assert_eq!(store.secrets_of(SecretOwner::Changeset(w.cs.id)).await.unwrap(), vec![fresh]);
    assert_eq!(store.secrets_of(SecretOwner::Changeset(w.cs2.id)).await.unwrap().len(), 2);
}

/// `ReplaceEnvironments` inserts, updates in place (same id), removes the
/// environments missing from the list, lists by position, and touches one
/// app only; an empty list clears the app's environments.
pub async fn replace_environments_inserts_updates_and_removes<S: Store>(store: &S) {
    let w = world(store).await;
    let prod_profile = runtime_profile(&w.billing, "prod");
    insert(store, &[&prod_profile]).await;
    let replace = |app: &App, envs: &[Environment]| {
        Mutation::from(ProfileMutation::ReplaceEnvironments { app_id: app.id, environments: envs.to_vec() })
    };
    assert_eq!(store.environments(w.billing.id).await.unwrap(), vec![]);

    let dev = environment(&w.billing, "dev", 0, false);
    let staging = environment(&w.billing, "staging", 5, false);
    let prod = Environment { runtime_profile_id: Some(prod_profile.id), ..environment(&w.billing, "prod", 9, true) };
    let search_prod = environment(&w.search, "prod", 0, true);
    setup(store, [replace(&w.billing, &[prod.clone(), dev.clone(), staging.clone()])]).await;
    setup(store, [replace(&w.search, std::slice::from_ref(&search_prod))]).await;
    assert_eq!(store.environments(w.billing.id).await.unwrap(), vec![dev.clone(), staging.clone(), prod.clone()]);
    assert_eq!(store.environments(w.search.id).await.unwrap(), vec![search_prod.clone()]);

    // Staging goes, dev moves to the end and becomes canonical, qa comes.
    let qa = environment(&w.billing, "qa", 1, false);
    let dev2 =
        Environment { position: 10, is_canonical: true, runtime_profile_id: Some(prod_profile.id), ..dev.clone() };
    let prod2 = Environment { is_canonical: false, runtime_profile_id: None, ..prod.clone() };
    setup(store, [replace(&w.billing, &[dev2.clone(), prod2.clone(), qa.clone()])]).await;
    assert_eq!(store.environments(w.billing.id).await.unwrap(), vec![qa.clone(), prod2.clone(), dev2.clone()]);

    // Two environments swap names in one replacement.
    let dev3 = Environment { name: "prod".into(), ..dev2.clone() };
    let prod3 = Environment { name: "dev".into(), ..prod2.clone() };
    setup(store, [replace(&w.billing, &[qa.clone(), dev3.clone(), prod3.clone()])]).await;
    assert_eq!(store.environments(w.billing.id).await.unwrap(), vec![qa, prod3, dev3]);
    assert_eq!(store.environments(w.search.id).await.unwrap(), vec![search_prod.clone()], "another app untouched");

    setup(store, [replace(&w.billing, &[])]).await;
    assert_eq!(store.environments(w.billing.id).await.unwrap(), vec![]);
    assert_eq!(store.environments(w.search.id).await.unwrap(), vec![search_prod]);
    let ghost = app("ghost", &w.ada);
    assert_eq!(store.environments(ghost.id).await.unwrap(), vec![]);
}

/// Two environments of one app with the same name are a conflict that
/// rolls the unit back; another app may use the name.
pub async fn duplicate_environment_names_are_a_conflict<S: Store>(store: &S) {
    let w = world(store).await;
    let dev = environment(&w.billing, "dev", 0, false);
    let prod = environment(&w.billing, "prod", 1, true);
    setup(
        store,
        [Mutation::from(ProfileMutation::ReplaceEnvironments {
            app_id: w.billing.id,
            environments: vec![dev.clone(), prod.clone()],
        })],
    )
    .await;
    let before = fixtures::verified_chain(store, 100).await;

    let twin = environment(&w.billing, "prod", 2, false);
    let qa = environment(&w.billing, "qa", 3, false);
    let result = fixtures::commit(
        store,
        [Mutation::from(ProfileMutation::ReplaceEnvironments {
            app_id: w.billing.id,
            environments: vec![dev.clone(), qa, prod.clone(), twin],
        })],
    )
    .await;
    super::assert_conflict(
        result,
        crate::ports::store::ConflictReason::Taken {
            record: crate::ports::store::Record::Environment,
            field: "name".into(),
        },
    );
    assert_eq!(
        store.environments(w.billing.id).await.unwrap(),
        vec![dev.clone(), prod.clone()],
        "the unit rolled back"
    );
    assert_eq!(fixtures::verified_chain(store, 100).await, before);

    let search_prod = environment(&w.search, "prod", 0, true);
    let search_dev = environment(&w.search, "dev", 1, false);
    setup(
        store,
        [Mutation::from(ProfileMutation::ReplaceEnvironments {
            app_id: w.search.id,
            environments: vec![search_prod.clone(), search_dev.clone()],
        })],
    )
    .await;
    assert_eq!(store.environments(w.search.id).await.unwrap(), vec![search_prod, search_dev]);
    assert_eq!(store.environments(w.billing.id).await.unwrap(), vec![dev, prod]);
}

/// `PutChangesetOverrides` replaces a changeset's whole override list,
/// keeping its order and every field; an empty list clears it; other
/// changesets keep theirs.
pub async fn changeset_overrides_are_replaced_whole_in_order<S: Store>(store: &S) {
    let w = world(store).await;
    let p = runtime_profile(&w.billing, "prod");
    insert(store, &[&p]).await;
    let put = |cs: ChangesetId, overrides: &[ProfileOverride]| {
        Mutation::from(ProfileMutation::PutChangesetOverrides { changeset_id: cs, overrides: overrides.to_vec() })
    };
    assert_eq!(store.changeset_overrides(w.cs.id).await.unwrap(), vec![]);

    let by_name = ProfileOverride {
        target: OverrideTarget::Environment("prod".into()),
        env_vars: [
            ("POOL".to_owned(), EnvValue::Number(0.1)),
            ("NAME".to_owned(), EnvValue::String("ünïcode \"q\"\n".into())),
            ("ON".to_owned(), EnvValue::Boolean(true)),
            ("DOC".to_owned(), EnvValue::Json(serde_json::json!([{"k": null}, 1.5, "x"]))),
        ]
        .into(),
        secrets: BTreeSet::from(["API_KEY".to_owned(), "DATABASE_URL".to_owned()]),
    };
    let by_id = ProfileOverride {
        target: OverrideTarget::EnvironmentId(EnvironmentId(Uuid::now_v7())),
        env_vars: Default::default(),
        secrets: BTreeSet::from(["TOKEN".to_owned()]),
    };
    let by_profile = ProfileOverride {
        target: OverrideTarget::ProfileId(p.id),
        env_vars: [("LOG_LEVEL".to_owned(), EnvValue::String("debug".into()))].into(),
        secrets: BTreeSet::new(),
    };
    // Not in any sorted order: the store keeps the given one.
    setup(store, [put(w.cs.id, &[by_profile.clone(), by_name.clone(), by_id.clone()])]).await;
    setup(store, [put(w.cs2.id, std::slice::from_ref(&by_id))]).await;
    assert_eq!(
        store.changeset_overrides(w.cs.id).await.unwrap(),
        vec![by_profile.clone(), by_name.clone(), by_id.clone()]
    );
    assert_eq!(store.changeset_overrides(w.cs2.id).await.unwrap(), vec![by_id.clone()]);

    // Replaced by a shorter list in another order.
    setup(store, [put(w.cs.id, &[by_name.clone(), by_profile.clone()])]).await;
    assert_eq!(store.changeset_overrides(w.cs.id).await.unwrap(), vec![by_name.clone(), by_profile]);

    // A refused unit keeps the list.
    let before = fixtures::verified_chain(store, 100).await;
    let dup = runtime_profile(&w.billing, "prod");
    let result = fixtures::commit(
        store,
        [put(w.cs.id, std::slice::from_ref(&by_id)), Mutation::from(ProfileMutation::InsertRuntimeProfile(dup))],
    )
    .await;
    super::assert_conflict(
        result,
        crate::ports::store::ConflictReason::Taken {
            record: crate::ports::store::Record::RuntimeProfile,
            field: "name".into(),
        },
    );
    assert_eq!(store.changeset_overrides(w.cs.id).await.unwrap().len(), 2, "the unit rolled back");
    assert_eq!(fixtures::verified_chain(store, 100).await, before);

    setup(store, [put(w.cs.id, &[])]).await;
    assert_eq!(store.changeset_overrides(w.cs.id).await.unwrap(), vec![]);
    assert_eq!(store.changeset_overrides(w.cs2.id).await.unwrap(), vec![by_id]);
}
