//! Runtime profiles: the typed runtime blueprint of an environment or a temp
//! environment (SPEC §2.6), as a pure domain model — no I/O, no store.
//!
//! Layout:
//! - this file: the [`RuntimeProfile`] entity, its sections and enums, the
//!   typed [`EnvValue`], secret metadata and [`mask_secret`];
//! - [`values`]: names, typed values, URLs and the redacted
//!   [`SecretPlaintext`] — the validation every write goes through;
//! - [`input`]: the write side, [`ProfileInput`] (create) and
//!   [`ProfilePatch`] (patch), with [`build_profile`] and [`apply_patch`];
//! - [`revision`]: append-only [`ProfileRevision`] snapshots and [`revert_to`];
//! - [`overrides`]: changeset [`ProfileOverride`]s;
//! - [`precedence`]: [`effective_variables`], the one resolution of layers.
//!
//! Invariants of a [`RuntimeProfile`] (checked by [`validate_profile`], which
//! [`build_profile`], [`apply_patch`] and [`revert_to`] all end with):
//! - every env var and secret name matches `[A-Za-z_][A-Za-z0-9_]*` and is at
//!   most [`MAX_VAR_NAME_BYTES`] bytes; a name is an env var or a secret, not
//!   both; at most [`MAX_ENV_VARS`] vars and [`MAX_SECRETS`] secrets;
//! - every [`EnvValue`] is valid for its type: numbers are finite, strings
//!   have no NUL and are bounded, JSON documents are bounded;
//! - the profile holds secret *names and metadata* only ([`SecretMeta`]); the
//!   sealed values live in the store, keyed by `(profile, name,
//!   SecretMeta::revision)` and never deleted, so an old revision's metadata
//!   still points at its ciphertext after a revert;
//! - `revision` counts from 1 and every change (create, patch, revert) makes
//!   exactly one new revision; `kind` and `id` never change.
//!
//! Serde in this module tree is persistence and audit only: a profile, its
//! revisions and overrides are stored as JSON documents (and appear in
//! audit snapshots); their `deny_unknown_fields` refuses a stored document
//! this version cannot represent instead of silently dropping a field. The
//! enums' snake_case names are the one vocabulary shared by the stores, the
//! audit log and the wire. Nothing here parses a request: the write-side
//! inputs ([`ProfileInput`], [`ProfilePatch`], [`ProfileOverrideInput`],
//! [`TypedValueInput`], [`SecretPlaintext`]) have no serde and are built by
//! `conman_api::dto`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, RuntimeProfileId};

pub mod input;
pub mod overrides;
pub mod precedence;
pub mod revision;
pub mod values;

pub use input::{
    apply_patch, build_profile, DatabasePatch, LifecyclePatch, MigrationsInput, MigrationsPatch, ProfileInput,
    ProfilePatch,
};
pub use overrides::{OverrideTarget, ProfileOverride, ProfileOverrideInput};
pub use precedence::{effective_secrets, effective_variables, EffectiveVar, Layer};
pub use revision::{revert_to, ProfileDocument, ProfileRevision, RevisionReason};
pub use values::{
    parse_env_value, validate_base_url, validate_env_var_name, validate_profile_name, SecretPlaintext, TypedValueInput,
};

/// Longest env var or secret name, in bytes.
pub const MAX_VAR_NAME_BYTES: usize = 128;
/// Most env vars in one profile (or one override).
pub const MAX_ENV_VARS: usize = 1000;
/// Most secrets in one profile (or one override).
pub const MAX_SECRETS: usize = 500;
/// Longest `string` value, in bytes.
pub const MAX_STRING_VALUE_BYTES: usize = 32 * 1024;
/// Longest `json` value, in bytes of its compact serialisation.
pub const MAX_JSON_VALUE_BYTES: usize = 64 * 1024;
/// Longest secret plaintext, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// Longest `base_url`, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Default idle TTL of a temp environment (SPEC §2.7: 24 h).
pub const DEFAULT_IDLE_TTL_HOURS: u32 = 24;
/// Default grace period after expiry (SPEC §2.7: 1 h).
pub const DEFAULT_GRACE_HOURS: u32 = 1;
/// Accepted idle TTL range, in hours (1 h to 30 days).
pub const IDLE_TTL_HOURS_RANGE: std::ops::RangeInclusive<u32> = 1..=720;
/// Accepted grace range, in hours (1 h to 7 days; 0 would make undo impossible).
pub const GRACE_HOURS_RANGE: std::ops::RangeInclusive<u32> = 1..=168;

/// Profile kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    /// Backs a persistent environment.
    PersistentEnv,
    /// Backs a workspace's temp environment.
    TempWorkspace,
    /// Backs a changeset's temp environment.
    TempChangeset,
}

/// The type of an env var, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvType {
    /// Text.
    String,
    /// A finite number.
    Number,
    /// True or false.
    Boolean,
    /// Any JSON document.
    Json,
}

impl EnvType {
    /// The wire name (`string`, `number`, `boolean`, `json`).
    pub fn as_str(self) -> &'static str {
        match self {
            EnvType::String => "string",
            EnvType::Number => "number",
            EnvType::Boolean => "boolean",
            EnvType::Json => "json",
        }
    }
}

/// A typed environment-variable value. Stored form: `{"type": "number",
/// "value": 3}`. Values are only built through [`parse_env_value`] on the
/// write side, so a stored number is always finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnvValue {
    /// Text.
    String(String),
    /// A finite number.
    Number(f64),
    /// True or false.
    Boolean(bool),
    /// Any JSON document.
    Json(serde_json::Value),
}

impl EnvValue {
    /// The value's type.
    pub fn env_type(&self) -> EnvType {
        match self {
            EnvValue::String(_) => EnvType::String,
            EnvValue::Number(_) => EnvType::Number,
            EnvValue::Boolean(_) => EnvType::Boolean,
            EnvValue::Json(_) => EnvType::Json,
        }
    }
}

/// Env vars of one profile or layer, ordered by name.
pub type EnvVars = BTreeMap<String, EnvValue>;

/// What a profile knows about one secret: never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretMeta {
    /// The profile revision that set the current value; with the profile id
    /// and the name it addresses the sealed value in the store.
    pub revision: u32,
    /// When the current value was set.
    pub updated_at: Timestamp,
}

/// Secrets of one profile, by name.
pub type Secrets = BTreeMap<String, SecretMeta>;

/// Database engines a profile can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseEngine {
    /// The environment has no database (default).
    #[default]
    None,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// SQLite.
    Sqlite,
}

/// How the environment's database comes to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisioningMode {
    /// An existing database reached through `connection_ref` (default).
    #[default]
    External,
    /// A fresh, empty database is created for the environment.
    CreateEmpty,
    /// A copy of the base profile's database; needs `base_profile_id`.
    CloneFromBase,
}

/// Database settings (SPEC §2.6).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Engine.
    pub engine: DatabaseEngine,
    /// The *name of a secret* that holds the connection string (connection
    /// strings carry passwords, so they are never plain settings). Resolved
    /// through the precedence layers like any secret.
    pub connection_ref: Option<String>,
    /// How the database is provisioned.
    pub provisioning_mode: ProvisioningMode,
    /// The profile whose database (or data) is copied; required by
    /// `clone_from_base` and `copy_from_base`, never the profile itself.
    pub base_profile_id: Option<RuntimeProfileId>,
}

/// Migrations applied to the environment, as last recorded by a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedState {
    /// Identifier of the last applied migration.
    pub last_applied: String,
    /// Checksum of the applied set, compared by the drift check.
    pub checksum: Option<String>,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// Migration settings (SPEC §2.6).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationSettings {
    /// Repository paths (normalised, see `RepoPath`) holding migrations.
    pub paths: Vec<String>,
    /// The command that applies them.
    pub command: Option<String>,
    /// Recorded by deployments only; no write input carries it.
    pub applied_state: Option<AppliedState>,
}

/// What happens to the environment's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataStrategy {
    /// Leave data alone (default).
    #[default]
    None,
    /// Load the app's seed data after migrations.
    Seed,
    /// Copy the base profile's data; needs `database.base_profile_id`.
    CopyFromBase,
}

/// Temp-environment lifecycle (SPEC §2.7); kept, but unused, on persistent
/// profiles so a temp profile derived from one inherits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifecycle {
    /// Idle hours before expiry, in [`IDLE_TTL_HOURS_RANGE`] (default 24).
    pub idle_ttl_hours: u32,
    /// Grace hours after expiry, in [`GRACE_HOURS_RANGE`] (default 1).
    pub grace_hours: u32,
    /// Whether cleanup runs by itself after grace (default true).
    pub auto_cleanup: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle { idle_ttl_hours: DEFAULT_IDLE_TTL_HOURS, grace_hours: DEFAULT_GRACE_HOURS, auto_cleanup: true }
    }
}

/// A runtime profile (SPEC §2.6). Build one with [`build_profile`], change it
/// with [`apply_patch`] or [`revert_to`]; all three validate the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeProfile {
    /// Identity.
    pub id: RuntimeProfileId,
    /// Owning app.
    pub app_id: AppId,
    /// Name, unique within the app (a slug, see [`validate_profile_name`]).
    pub name: String,
    /// Kind; never changes.
    pub kind: ProfileKind,
    /// Base URL (`http`/`https`), if the environment has one.
    pub base_url: Option<String>,
    /// Typed env vars, ordered by name.
    pub env_vars: EnvVars,
    /// Secret names and metadata (never values).
    pub secrets: Secrets,
    /// Database settings.
    pub database: DatabaseSettings,
    /// Migration settings.
    pub migrations: MigrationSettings,
    /// Data strategy.
    pub data_strategy: DataStrategy,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Latest revision number, from 1.
    pub revision: u32,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Instant of the latest revision.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// Checks every invariant of a whole profile (see the module doc).
pub fn validate_profile(p: &RuntimeProfile) -> Result<(), Error> {
    validate_profile_name(&p.name)?;
    if let Some(url) = &p.base_url {
        validate_base_url(url)?;
    }
    if p.env_vars.len() > MAX_ENV_VARS {
        return Err(Error::invalid("env_vars", "too_many", format!("at most {MAX_ENV_VARS} env vars")));
    }
    if p.secrets.len() > MAX_SECRETS {
        return Err(Error::invalid("secrets", "too_many", format!("at most {MAX_SECRETS} secrets")));
    }
    for (name, value) in &p.env_vars {
        validate_env_var_name("env_vars", name)?;
        values::validate_env_value(name, value)?;
    }
    for name in p.secrets.keys() {
        validate_env_var_name("secrets", name)?;
        if p.env_vars.contains_key(name) {
            return Err(Error::invalid(
                "secrets",
                "name_clash",
                format!("{name} is both an env var and a secret; a name may be only one"),
            ));
        }
    }
    if let Some(r) = &p.database.connection_ref {
        validate_env_var_name("database.connection_ref", r)?;
    }
    let needs_base = p.database.provisioning_mode == ProvisioningMode::CloneFromBase
        || p.data_strategy == DataStrategy::CopyFromBase;
    match p.database.base_profile_id {
        None if needs_base => {
            return Err(Error::invalid(
                "database.base_profile_id",
                "required",
                "clone_from_base and copy_from_base need database.base_profile_id",
            ))
        }
        Some(base) if base == p.id => {
            return Err(Error::invalid(
                "database.base_profile_id",
                "self_reference",
                "a profile cannot be its own base",
            ))
        }
        _ => {}
    }
    values::validate_migrations(&p.migrations.paths, p.migrations.command.as_deref())?;
    values::validate_lifecycle(&p.lifecycle)?;
    if p.revision == 0 {
        return Err(Error::invalid("revision", "invalid", "revisions count from 1"));
    }
    Ok(())
}

/// Masks a secret for everyone but `app_admin` (SPEC §2.6): up to 8
/// characters shows only the last 4; longer shows the first 4 and last 4.
pub fn mask_secret(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n <= 8 {
        let tail: String = chars[n.saturating_sub(4)..].iter().collect();
        format!("{}{tail}", "*".repeat(n.saturating_sub(4).max(4)))
    } else {
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}****{tail}")
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_follow_the_spec() {
        assert_eq!(mask_secret("abcdefghijkl"), "abcd****ijkl");
        assert_eq!(mask_secret("12345678"), "****5678");
        assert!(mask_secret("abc").ends_with("abc"));
        assert!(!mask_secret("abcdefghijkl").contains("efgh"));
    }

    #[test]
    fn stored_documents_refuse_unknown_fields_at_every_level() {
        let p = test_support::profile();
        let good = serde_json::to_value(&p).unwrap();
        assert_eq!(serde_json::from_value::<RuntimeProfile>(good.clone()).unwrap(), p);
        let paths: &[&[&str]] = &[&[], &["database"], &["migrations"], &["lifecycle"], &["secrets", "API_KEY"]];
        for path in paths {
            let mut doc = good.clone();
            let mut at = &mut doc;
            for seg in *path {
                at = at.get_mut(*seg).unwrap();
            }
            at.as_object_mut().unwrap().insert("surprise".into(), serde_json::json!(1));
            assert!(serde_json::from_value::<RuntimeProfile>(doc).is_err(), "{path:?}");
        }
        let mut doc = good.clone();
        doc["env_vars"]["PORT"]["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<RuntimeProfile>(doc).is_err());
        let mut doc = good;
        doc["env_vars"]["PORT"] = serde_json::json!({"type": "number", "value": "NaN"});
        assert!(serde_json::from_value::<RuntimeProfile>(doc).is_err());
    }

    #[test]
    fn defaults_are_documented_values() {
        let l = Lifecycle::default();
        assert_eq!((l.idle_ttl_hours, l.grace_hours, l.auto_cleanup), (24, 1, true));
        assert_eq!(DatabaseSettings::default().engine, DatabaseEngine::None);
        assert_eq!(DatabaseSettings::default().provisioning_mode, ProvisioningMode::External);
        assert_eq!(DataStrategy::default(), DataStrategy::None);
    }

    #[test]
    fn whole_profile_invariants() {
        let ok = test_support::profile();
        assert!(validate_profile(&ok).is_ok());
        let mut p = ok.clone();
        p.secrets.insert("PORT".into(), SecretMeta { revision: 1, updated_at: p.created_at });
        assert_eq!(test_support::reason(&validate_profile(&p).unwrap_err()), "name_clash");
        let mut p = ok.clone();
        p.data_strategy = DataStrategy::CopyFromBase;
        assert_eq!(test_support::reason(&validate_profile(&p).unwrap_err()), "required");
        p.database.base_profile_id = Some(p.id);
        assert_eq!(test_support::reason(&validate_profile(&p).unwrap_err()), "self_reference");
        let mut p = ok;
        p.env_vars.insert("X".into(), EnvValue::Number(f64::NAN));
        assert_eq!(test_support::reason(&validate_profile(&p).unwrap_err()), "not_finite");
    }
}
