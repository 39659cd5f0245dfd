//! Test fixtures of the runtime-profile model (compiled for tests only).
//!
//! Invariant: [`profile`] is a valid revision-1 profile, the same on every
//! call, with a number var `PORT`, a string var `LOG_LEVEL` and a secret
//! `API_KEY`.

use chrono::TimeZone;
use serde_json::Value;
use uuid::Uuid;

use super::{
    DataStrategy, DatabaseSettings, EnvValue, Lifecycle, MigrationSettings, ProfileKind, RuntimeProfile, SecretMeta,
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
