//! Scenario 4 of `cargo xtask bench` (runtime-profiles issue), on SQLite:
//! - decrypting the 100 secrets of one profile as a gate run's resolution
//!   does: one store read of the profile's sealed values, then 100 opens
//!   (bar: median ≤ 1 ms), beside the cipher alone and the whole profile
//!   read through the core (authorization, profile, masks);
//! - rotating the master key over 10,000 sealed secrets (100 profiles of
//!   100) in one unit of work (bar: ≤ 5 s).
//!
//! Invariant: the secrets are created through the real use cases (sealed
//! by the envelope cipher, stored by the SQLite store); timings are medians
//! after a warm-up, the rotation a single timed run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conman_core::domain::runtime_profile::input::ProfileInput;
use conman_core::ports::crypto::{SecretBinding, SecretCipher};
use conman_core::ports::store::{ProfileStore, SecretOwner};
use conman_core::ports::EnvelopeCipher;

use super::{ms, row, seeded_core, stats, Bars};

/// A profile input with `n` secrets and a few variables.
fn profile_input(name: &str, n: usize) -> ProfileInput {
    let secrets: serde_json::Map<String, serde_json::Value> =
        (0..n).map(|i| (format!("SECRET_{i:03}"), serde_json::json!(format!("value-{name}-{i}-0123456789")))).collect();
    let request: conman_api::dto::CreateProfileRequest = serde_json::from_value(serde_json::json!({
        "name": name,
        "kind": "persistent_env",
        "env_vars": { "REPLICAS": { "type": "number", "value": 3 }, "MODE": { "type": "string", "value": "bench" } },
        "secrets": secrets,
    }))
    .expect("profile input");
    request.into()
}

/// Runs scenario 4 with `samples` timed reads and prints it.
pub(super) async fn scenario_profiles(bars: &mut Bars, samples: usize) {
    println!("Scenario 4: secrets of runtime profiles (SQLite)");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(conman_store_sqlite::SqliteStore::open(&dir.path().join("conman.db")).expect("store"));
    let old_key = Arc::new(EnvelopeCipher::new([7; 32]));
    let (conman, actor, app) =
        seeded_core(store.clone(), dir.path(), Some(old_key.clone() as Arc<dyn SecretCipher>)).await;
    conman.ensure_secrets_key().await.expect("key recorded");

    let first = conman.create_runtime_profile(&actor, app, profile_input("p000", 100)).await.expect("profile");
    let profile = first.profile;
    let sealed = store.secrets_of(SecretOwner::Profile(profile.id)).await.expect("secrets");
    assert_eq!(sealed.len(), 100);

    // What `open_profile_secrets` does for a gate run: one store read, 100 opens.
    let load_and_open = || async {
        let sealed = store.secrets_of(SecretOwner::Profile(profile.id)).await.expect("secrets");
        for s in &sealed {
            let binding = SecretBinding::new(app, profile.id, s.name.clone());
            let value = old_key.open(&s.sealed, &binding).expect("opens");
            assert!(!value.is_empty());
        }
    };
    let open_all = || {
        for s in &sealed {
            let binding = SecretBinding::new(app, profile.id, s.name.clone());
            let value = old_key.open(&s.sealed, &binding).expect("opens");
            assert!(!value.is_empty());
        }
    };
    for _ in 0..5 {
        open_all();
        load_and_open().await;
    }
    let mut taken = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        open_all();
        taken.push(t.elapsed());
    }
    let cipher_only = stats(taken);
    let mut taken = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        load_and_open().await;
        taken.push(t.elapsed());
    }
    let gate_resolution = stats(taken);

    for _ in 0..5 {
        conman.get_runtime_profile(&actor, app, profile.id).await.expect("warm-up");
    }
    let mut taken = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let view = conman.get_runtime_profile(&actor, app, profile.id).await.expect("read");
        taken.push(t.elapsed());
        assert_eq!(view.masked_secrets.len(), 100);
    }
    let through_core = stats(taken);

    for p in 1..100 {
        conman.create_runtime_profile(&actor, app, profile_input(&format!("p{p:03}"), 100)).await.expect("profile");
    }
    let new_key = Arc::new(EnvelopeCipher::new([9; 32]));
    let t = Instant::now();
    let report = conman.rotate_master_key(&actor, new_key.clone()).await.expect("rotation");
    let rotation = t.elapsed();
    assert_eq!(report.rewrapped, 10_000);
    let after = store.secrets_of(SecretOwner::Profile(profile.id)).await.expect("secrets");
    let binding = SecretBinding::new(app, profile.id, after[0].name.clone());
    assert!(new_key.open(&after[0].sealed, &binding).is_ok(), "the new key opens a rotated secret");
    assert!(old_key.open(&after[0].sealed, &binding).is_err(), "the old key no longer does");

    row("open 100 secrets via the cipher", &cipher_only);
    row("load + open 100 secrets (a gate run's cost)", &gate_resolution);
    row("profile read via core (opens 100 to mask)", &through_core);
    println!("  rotate the master key over 10,000 secrets    {:>10}", ms(rotation));
    bars.check(
        "decrypt a profile's 100 secrets for a gate run median ≤ 1 ms",
        gate_resolution.median <= Duration::from_millis(1),
    );
    bars.check("rotation of 10,000 secrets ≤ 5 s", rotation <= Duration::from_secs(5));
}
