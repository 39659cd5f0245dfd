//! Test fixtures of the runtime-profile model (compiled for tests only).
//!
//! Invariant: [`profile`] is a valid revision-1 profile, the same on every
//! call, with a number var `PORT`, a string var `LOG_LEVEL` and a secret
//! `API_KEY`.

use std::collections::BTreeMap;

use chrono::TimeZone;
use serde_json::Value;
use uuid::Uuid;

use super::{
    DataStrategy, DatabasePatch, DatabaseSettings, EnvValue, Lifecycle, LifecyclePatch, MigrationSettings,
    MigrationsPatch, ProfileInput, ProfileKind, ProfileOverrideInput, ProfilePatch, RuntimeProfile, SecretMeta,
    SecretPlaintext, TypedValueInput,
};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, RuntimeProfileId};

pub(crate) fn earlier() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

pub(crate) fn later() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap()
}

pub(crate) fn profile() -> RuntimeProfile {
    RuntimeProfile {
        id: RuntimeProfileId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)),
        app_id: AppId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002)),
        name: "prod".into(),
        kind: ProfileKind::PersistentEnv,
        base_url: Some("https://prod.example.com".into()),
        env_vars: [
            ("PORT".to_owned(), EnvValue::Number(8080.0)),
            ("LOG_LEVEL".to_owned(), EnvValue::String("info".into())),
        ]
        .into(),
        secrets: [("API_KEY".to_owned(), SecretMeta { revision: 1, updated_at: earlier() })].into(),
        database: DatabaseSettings::default(),
        migrations: MigrationSettings::default(),
        data_strategy: DataStrategy::None,
        lifecycle: Lifecycle::default(),
        revision: 1,
        created_at: earlier(),
        updated_at: earlier(),
        version: 1,
    }
}

/// The `details.reason` of a validation error.
pub(crate) fn reason(err: &Error) -> String {
    details(err)["reason"].as_str().unwrap_or_default().to_owned()
}

/// The `details` of an error (null when it has none).
pub(crate) fn details(err: &Error) -> Value {
    err.details().unwrap_or(Value::Null)
}

// Test-only readers of the JSON shapes the tests are written in. The core
// has no wire parsing (`conman_api::dto` reads requests); these are
// deliberately simple, panic on a key they do not know (so a typo in a test
// cannot pass silently), and check nothing the domain functions check.

fn fields(v: &Value, known: &[&str]) -> serde_json::Map<String, Value> {
    let map = v.as_object().expect("a JSON object").clone();
    for k in map.keys() {
        assert!(known.contains(&k.as_str()), "test fixture: unknown key {k:?}");
    }
    map
}

fn string(v: &Value) -> String {
    v.as_str().expect("a string").to_owned()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().expect("a list").iter().map(string).collect()
}

fn nullable_string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn vocabulary<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).expect("a known name")
}

/// `{"K": {"type": T, "value": V}}` as typed inputs.
pub(crate) fn typed_vars(v: &Value) -> BTreeMap<String, TypedValueInput> {
    v.as_object()
        .expect("an object")
        .iter()
        .map(|(k, tv)| {
            let f = fields(tv, &["type", "value"]);
            (k.clone(), TypedValueInput { ty: vocabulary(&f["type"]), value: f["value"].clone() })
        })
        .collect()
}

/// `{"K": "plaintext"}` as secret plaintexts.
pub(crate) fn secrets(v: &Value) -> BTreeMap<String, SecretPlaintext> {
    v.as_object().expect("an object").iter().map(|(k, s)| (k.clone(), SecretPlaintext::new(string(s)))).collect()
}

/// A create input written as JSON.
pub(crate) fn profile_input(v: Value) -> ProfileInput {
    let f = fields(
        &v,
        &["name", "kind", "base_url", "env_vars", "secrets", "database", "migrations", "data_strategy", "lifecycle"],
    );
    ProfileInput {
        name: string(&f["name"]),
        kind: vocabulary(&f["kind"]),
        base_url: f.get("base_url").and_then(nullable_string),
        env_vars: f.get("env_vars").map(typed_vars).unwrap_or_default(),
        secrets: f.get("secrets").map(secrets).unwrap_or_default(),
        database: f.get("database").map(vocabulary).unwrap_or_default(),
        migrations: f.get("migrations").map(vocabulary).unwrap_or_default(),
        data_strategy: f.get("data_strategy").map(vocabulary).unwrap_or_default(),
        lifecycle: f.get("lifecycle").map(vocabulary).unwrap_or_default(),
    }
}

/// A patch written as JSON (`null` clears a clearable field).
pub(crate) fn profile_patch(v: Value) -> ProfilePatch {
    let f = fields(
        &v,
        &[
            "name",
            "base_url",
            "set_env_vars",
            "unset_env_vars",
            "retype_env_vars",
            "set_secrets",
            "unset_secrets",
            "database",
            "migrations",
            "data_strategy",
            "lifecycle",
        ],
    );
    let list = |k: &str| f.get(k).map(strings).unwrap_or_default();
    ProfilePatch {
        name: f.get("name").map(string),
        base_url: f.get("base_url").map(nullable_string),
        set_env_vars: f.get("set_env_vars").map(typed_vars).unwrap_or_default(),
        unset_env_vars: list("unset_env_vars"),
        retype_env_vars: list("retype_env_vars"),
        set_secrets: f.get("set_secrets").map(secrets).unwrap_or_default(),
        unset_secrets: list("unset_secrets"),
        database: f.get("database").map(|d| {
            let d = fields(d, &["engine", "connection_ref", "provisioning_mode", "base_profile_id"]);
            DatabasePatch {
                engine: d.get("engine").map(vocabulary),
                connection_ref: d.get("connection_ref").map(nullable_string),
                provisioning_mode: d.get("provisioning_mode").map(vocabulary),
                base_profile_id: d.get("base_profile_id").map(|id| (!id.is_null()).then(|| vocabulary(id))),
            }
        }),
        migrations: f.get("migrations").map(|m| {
            let m = fields(m, &["paths", "command"]);
            MigrationsPatch { paths: m.get("paths").map(strings), command: m.get("command").map(nullable_string) }
        }),
        data_strategy: f.get("data_strategy").map(vocabulary),
        lifecycle: f.get("lifecycle").map(|l| {
            let l = fields(l, &["idle_ttl_hours", "grace_hours", "auto_cleanup"]);
            LifecyclePatch {
                idle_ttl_hours: l.get("idle_ttl_hours").map(vocabulary),
                grace_hours: l.get("grace_hours").map(vocabulary),
                auto_cleanup: l.get("auto_cleanup").map(vocabulary),
            }
        }),
    }
}

/// An override written as JSON.
pub(crate) fn override_input(v: Value) -> ProfileOverrideInput {
    let f = fields(&v, &["target", "env_vars", "secrets"]);
    ProfileOverrideInput {
        target: vocabulary(&f["target"]),
        env_vars: f.get("env_vars").map(typed_vars).unwrap_or_default(),
        secrets: f.get("secrets").map(secrets).unwrap_or_default(),
    }
}
