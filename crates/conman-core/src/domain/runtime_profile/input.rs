//! The write side of runtime profiles: [`ProfileInput`] (create) and
//! [`ProfilePatch`] (patch), and the pure functions that turn them into a
//! valid [`RuntimeProfile`].
//!
//! These are plain domain values, not wire types: a request body is read
//! by `conman_api::dto` (`CreateProfileRequest`, `PatchProfileRequest`),
//! which refuses unknown fields at every level and a map key given twice,
//! and is converted into them. The CLI reads its files through the same
//! DTOs.
//!
//! Invariants:
//! - `kind`, `id`, `app_id`, `revision` and `migrations.applied_state` are
//!   not writable at all (no input field carries them);
//! - [`build_profile`] makes revision 1; [`apply_patch`] makes exactly
//!   `current.revision + 1` and never mutates `current`; both end with
//!   [`validate_profile`], so their output is valid by construction;
//! - **a key's type never changes silently.** Setting an existing env var to a
//!   value of another type is refused with a `type_change` validation error
//!   that names the key, the old type and the new type. A caller changes a
//!   type deliberately in one of two ways: list the key in
//!   `retype_env_vars` of the same patch (one revision, no window where the
//!   variable is missing), or unset it in one patch and set it in the next;
//! - a patch names what it removes: unsetting a variable or secret that does
//!   not exist is refused (`unknown_key`, catching typos), so is naming a key
//!   in both a set and an unset list (`conflicting_ops`), and an empty patch
//!   (`empty_patch`) — every accepted patch is a change worth a revision;
//! - secret plaintexts stay in the input ([`SecretPlaintext`]); the profile
//!   only records, per set secret, the new revision and the instant, so the
//!   caller seals `patch.set_secrets` under exactly those coordinates.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::values::{parse_env_value, validate_env_var_name, validate_secret_value};
use super::{
    validate_profile, DataStrategy, DatabaseEngine, DatabaseSettings, EnvVars, Lifecycle, MigrationSettings,
    ProfileKind, ProvisioningMode, RuntimeProfile, SecretMeta, SecretPlaintext, TypedValueInput, MAX_ENV_VARS,
    MAX_SECRETS,
};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, RuntimeProfileId};

/// Migration settings as written by a caller (the applied state is recorded
/// by deployments, never written). Serde is persistence: this is the
/// `migrations` section of a stored revision document
/// ([`super::ProfileDocument`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationsInput {
    /// Repository paths holding migrations.
    pub paths: Vec<String>,
    /// The command that applies them.
    pub command: Option<String>,
}

/// Creates a profile. Only `name` and `kind` are required; every other
/// section takes its documented default.
#[derive(Debug, Clone)]
pub struct ProfileInput {
    /// Name (slug), unique within the app.
    pub name: String,
    /// Kind.
    pub kind: ProfileKind,
    /// Base URL.
    pub base_url: Option<String>,
    /// Typed env vars.
    pub env_vars: BTreeMap<String, TypedValueInput>,
    /// Secrets in plaintext, to be sealed by the caller.
    pub secrets: BTreeMap<String, SecretPlaintext>,
    /// Database settings.
    pub database: DatabaseSettings,
    /// Migration settings.
    pub migrations: MigrationsInput,
    /// Data strategy.
    pub data_strategy: DataStrategy,
    /// Lifecycle (missing fields take their defaults).
    pub lifecycle: Lifecycle,
}

/// Changes to the database section; absent fields stay, `null` clears.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabasePatch {
    /// New engine.
    pub engine: Option<DatabaseEngine>,
    /// New connection reference (`null` clears).
    pub connection_ref: Option<Option<String>>,
    /// New provisioning mode.
    pub provisioning_mode: Option<ProvisioningMode>,
    /// New base profile (`null` clears).
    pub base_profile_id: Option<Option<RuntimeProfileId>>,
}

/// Changes to the migrations section; absent fields stay, `null` clears.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationsPatch {
    /// Replaces the path list.
    pub paths: Option<Vec<String>>,
    /// New command (`null` clears).
    pub command: Option<Option<String>>,
}

/// Changes to the lifecycle section; absent fields stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifecyclePatch {
    /// New idle TTL.
    pub idle_ttl_hours: Option<u32>,
    /// New grace.
    pub grace_hours: Option<u32>,
    /// New auto-cleanup flag.
    pub auto_cleanup: Option<bool>,
}

/// Patches a profile. Absent fields stay as they are; `null` clears a
/// clearable field (`base_url`, `database.connection_ref`, ...).
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    /// New name.
    pub name: Option<String>,
    /// New base URL (`null` clears).
    pub base_url: Option<Option<String>>,
    /// Env vars to add or overwrite (same type unless listed in `retype_env_vars`).
    pub set_env_vars: BTreeMap<String, TypedValueInput>,
    /// Env vars to remove; each must exist.
    pub unset_env_vars: Vec<String>,
    /// Keys of `set_env_vars` whose type may change in this patch.
    pub retype_env_vars: Vec<String>,
    /// Secrets to add or overwrite, in plaintext.
    pub set_secrets: BTreeMap<String, SecretPlaintext>,
    /// Secrets to remove; each must exist.
    pub unset_secrets: Vec<String>,
    /// Database changes.
    pub database: Option<DatabasePatch>,
    /// Migration changes.
    pub migrations: Option<MigrationsPatch>,
    /// New data strategy.
    pub data_strategy: Option<DataStrategy>,
    /// Lifecycle changes.
    pub lifecycle: Option<LifecyclePatch>,
}

impl ProfilePatch {
    /// Whether the patch asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.base_url.is_none()
            && self.set_env_vars.is_empty()
            && self.unset_env_vars.is_empty()
            && self.retype_env_vars.is_empty()
            && self.set_secrets.is_empty()
            && self.unset_secrets.is_empty()
            && self.database.is_none()
            && self.migrations.is_none()
            && self.data_strategy.is_none()
            && self.lifecycle.is_none()
    }
}

fn parse_env_vars(vars: &BTreeMap<String, TypedValueInput>) -> Result<EnvVars, Error> {
    if vars.len() > MAX_ENV_VARS {
        return Err(Error::invalid("env_vars", "too_many", format!("at most {MAX_ENV_VARS} env vars")));
    }
    vars.iter()
        .map(|(k, v)| {
            validate_env_var_name("env_vars", k)?;
            Ok((k.clone(), parse_env_value(k, v)?))
        })
        .collect()
}

fn check_secrets(secrets: &BTreeMap<String, SecretPlaintext>) -> Result<(), Error> {
    if secrets.len() > MAX_SECRETS {
        return Err(Error::invalid("secrets", "too_many", format!("at most {MAX_SECRETS} secrets")));
    }
    for (k, v) in secrets {
        validate_env_var_name("secrets", k)?;
        validate_secret_value(k, v)?;
    }
    Ok(())
}

fn key_error(field: &str, reason: &str, key: &str, message: String) -> Error {
    Error::Validation { message, details: Some(serde_json::json!({ "field": field, "reason": reason, "key": key })) }
}

/// Refuses a name listed twice in one list (`duplicate_name`).
fn unique_list<'a>(field: &str, list: &'a [String]) -> Result<BTreeSet<&'a str>, Error> {
    let mut seen = BTreeSet::new();
    for k in list {
        if !seen.insert(k.as_str()) {
            return Err(key_error(field, "duplicate_name", k, format!("{field}: {k} is listed twice")));
        }
    }
    Ok(seen)
}

/// Builds revision 1 of a new profile from a create request. The caller
/// seals `input.secrets` under `(id, name, revision 1)`.
pub fn build_profile(
    id: RuntimeProfileId,
    app_id: AppId,
    input: &ProfileInput,
    now: Timestamp,
) -> Result<RuntimeProfile, Error> {
    check_secrets(&input.secrets)?;
    let profile = RuntimeProfile {
        id,
        app_id,
        name: input.name.clone(),
        kind: input.kind,
        base_url: input.base_url.clone(),
        env_vars: parse_env_vars(&input.env_vars)?,
        secrets: input.secrets.keys().map(|k| (k.clone(), SecretMeta { revision: 1, updated_at: now })).collect(),
        database: input.database.clone(),
        migrations: MigrationSettings {
            paths: input.migrations.paths.clone(),
            command: input.migrations.command.clone(),
            applied_state: None,
        },
        data_strategy: input.data_strategy,
        lifecycle: input.lifecycle,
        revision: 1,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    validate_profile(&profile)?;
    Ok(profile)
}

/// Applies a patch, producing the next revision (see the module invariants
/// for type changes and unsets). `current` is left untouched.
pub fn apply_patch(current: &RuntimeProfile, patch: &ProfilePatch, now: Timestamp) -> Result<RuntimeProfile, Error> {
    if patch.is_empty() {
        return Err(Error::invalid("patch", "empty_patch", "the patch changes nothing"));
    }
    let revision = current
        .revision
        .checked_add(1)
        .ok_or_else(|| Error::invalid("revision", "too_many_revisions", "the profile has too many revisions"))?;
    let mut next = current.clone();

    if let Some(name) = &patch.name {
        next.name = name.clone();
    }
    if let Some(url) = &patch.base_url {
        next.base_url = url.clone();
    }

    // Env vars: unset, then set with the type rule.
    let unset = unique_list("unset_env_vars", &patch.unset_env_vars)?;
    let retype = unique_list("retype_env_vars", &patch.retype_env_vars)?;
    for k in &unset {
        if patch.set_env_vars.contains_key(*k) {
            return Err(key_error(
                "unset_env_vars",
                "conflicting_ops",
                k,
                format!("{k} is both set and unset in one patch"),
            ));
        }
        if next.env_vars.remove(*k).is_none() {
            return Err(key_error("unset_env_vars", "unknown_key", k, format!("there is no env var {k} to unset")));
        }
    }
    for k in &retype {
        if !patch.set_env_vars.contains_key(*k) {
            return Err(key_error(
                "retype_env_vars",
                "retype_without_set",
                k,
                format!("{k} is listed in retype_env_vars but not set in set_env_vars"),
            ));
        }
    }
    for (k, value) in parse_env_vars(&patch.set_env_vars)? {
        if let Some(old) = current.env_vars.get(&k) {
            let (from, to) = (old.env_type(), value.env_type());
            if from != to && !retype.contains(k.as_str()) {
                return Err(Error::Validation {
                    message: format!(
                        "{k} is a {} and would become a {}; a type never changes silently — list {k} in \
                         retype_env_vars, or unset it first, to change its type",
                        from.as_str(),
                        to.as_str()
                    ),
                    details: Some(serde_json::json!({
                        "field": "set_env_vars", "reason": "type_change", "key": k,
                        "old_type": from.as_str(), "new_type": to.as_str(),
                    })),
                });
            }
        }
        next.env_vars.insert(k, value);
    }

    // Secrets.
    let unset = unique_list("unset_secrets", &patch.unset_secrets)?;
    check_secrets(&patch.set_secrets)?;
    for k in &unset {
        if patch.set_secrets.contains_key(*k) {
            return Err(key_error("unset_secrets", "conflicting_ops", k, format!("{k} is both set and unset")));
        }
        if next.secrets.remove(*k).is_none() {
            return Err(key_error("unset_secrets", "unknown_key", k, format!("there is no secret {k} to unset")));
        }
    }
    for k in patch.set_secrets.keys() {
        next.secrets.insert(k.clone(), SecretMeta { revision, updated_at: now });
    }

    if let Some(db) = &patch.database {
        if let Some(e) = db.engine {
            next.database.engine = e;
        }
        if let Some(c) = &db.connection_ref {
            next.database.connection_ref = c.clone();
        }
        if let Some(m) = db.provisioning_mode {
            next.database.provisioning_mode = m;
        }
        if let Some(b) = db.base_profile_id {
            next.database.base_profile_id = b;
        }
    }
    if let Some(m) = &patch.migrations {
        if let Some(p) = &m.paths {
            next.migrations.paths = p.clone();
        }
        if let Some(c) = &m.command {
            next.migrations.command = c.clone();
        }
    }
    if let Some(d) = patch.data_strategy {
        next.data_strategy = d;
    }
    if let Some(l) = patch.lifecycle {
        next.lifecycle.idle_ttl_hours = l.idle_ttl_hours.unwrap_or(next.lifecycle.idle_ttl_hours);
        next.lifecycle.grace_hours = l.grace_hours.unwrap_or(next.lifecycle.grace_hours);
        next.lifecycle.auto_cleanup = l.auto_cleanup.unwrap_or(next.lifecycle.auto_cleanup);
    }

    next.revision = revision;
    next.updated_at = now;
    next.version = current.version + 1;
    validate_profile(&next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runtime_profile::test_support::{details, later, profile, profile_input, profile_patch, reason};
    use crate::domain::runtime_profile::EnvValue;
    use serde_json::json;

    fn patch(v: serde_json::Value) -> ProfilePatch {
        profile_patch(v)
    }

    fn create(v: serde_json::Value) -> Result<RuntimeProfile, Error> {
        let input = profile_input(v);
        let p = profile();
        build_profile(p.id, p.app_id, &input, p.created_at)
    }

    #[test]
    fn create_takes_defaults_and_makes_revision_one() {
        let p = create(json!({
            "name": "prod",
            "kind": "persistent_env",
            "env_vars": {"PORT": {"type": "number", "value": 8080}},
            "secrets": {"API_KEY": "s3cr3t-value"}
        }))
        .unwrap();
        assert_eq!(p.revision, 1);
        assert_eq!(p.env_vars["PORT"], EnvValue::Number(8080.0));
        assert_eq!(p.secrets["API_KEY"].revision, 1);
        assert_eq!(p.lifecycle, Lifecycle::default());
        assert!(p.base_url.is_none());
    }

    #[test]
    fn create_refuses_bad_input() {
        let cases = [
            (json!({"name": "Prod!", "kind": "persistent_env"}), "invalid_format"),
            (json!({"name": "p", "kind": "persistent_env", "base_url": "ftp://x"}), "invalid_url"),
            (
                json!({"name": "p", "kind": "persistent_env", "env_vars": {"1X": {"type": "string", "value": "a"}}}),
                "invalid_name",
            ),
            (
                json!({"name": "p", "kind": "persistent_env", "env_vars": {"N": {"type": "number", "value": "NaN"}}}),
                "not_finite",
            ),
            (
                json!({"name": "p", "kind": "persistent_env", "env_vars": {"N": {"type": "number", "value": "Infinity"}}}),
                "not_finite",
            ),
            (
                json!({"name": "p", "kind": "persistent_env", "env_vars": {"B": {"type": "boolean", "value": "yes"}}}),
                "wrong_type",
            ),
            (json!({"name": "p", "kind": "persistent_env", "secrets": {"K": ""}}), "invalid_value"),
            (json!({"name": "p", "kind": "persistent_env", "lifecycle": {"idle_ttl_hours": 0}}), "out_of_range"),
            (json!({"name": "p", "kind": "persistent_env", "data_strategy": "copy_from_base"}), "required"),
            (
                json!({"name": "p", "kind": "persistent_env",
                       "env_vars": {"K": {"type": "string", "value": "a"}}, "secrets": {"K": "abc"}}),
                "name_clash",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(reason(&create(input.clone()).unwrap_err()), expected, "{input}");
        }
    }

    #[test]
    fn a_name_listed_twice_is_refused() {
        let err = apply_patch(&profile(), &patch(json!({"unset_env_vars": ["PORT", "PORT"]})), later()).unwrap_err();
        assert_eq!(reason(&err), "duplicate_name");
    }

    #[test]
    fn patch_sets_and_unsets_and_counts_a_revision() {
        let p = profile();
        let next = apply_patch(
            &p,
            &patch(json!({
                "base_url": null,
                "set_env_vars": {"PORT": {"type": "number", "value": 9090}, "DEBUG": {"type": "boolean", "value": true}},
                "unset_env_vars": ["LOG_LEVEL"],
                "set_secrets": {"NEW_TOKEN": "tok-123456789"},
                "unset_secrets": ["API_KEY"],
                "lifecycle": {"grace_hours": 2},
                "database": {"connection_ref": "NEW_TOKEN"}
            })),
            later(),
        )
        .unwrap();
        assert_eq!(next.revision, p.revision + 1);
        assert_eq!(next.version, p.version + 1);
        assert_eq!(next.updated_at, later());
        assert!(next.base_url.is_none());
        assert_eq!(next.env_vars["PORT"], EnvValue::Number(9090.0));
        assert!(!next.env_vars.contains_key("LOG_LEVEL"));
        assert_eq!(next.secrets["NEW_TOKEN"], SecretMeta { revision: next.revision, updated_at: later() });
        assert!(!next.secrets.contains_key("API_KEY"));
        assert_eq!(next.lifecycle.grace_hours, 2);
        assert_eq!(next.lifecycle.idle_ttl_hours, p.lifecycle.idle_ttl_hours);
        assert_eq!(next.database.connection_ref.as_deref(), Some("NEW_TOKEN"));
        assert_eq!(next.kind, p.kind);
        assert_eq!(p, profile(), "current is untouched");
    }

    #[test]
    fn a_type_change_is_refused_unless_asked_for() {
        let p = profile();
        let err =
            apply_patch(&p, &patch(json!({"set_env_vars": {"PORT": {"type": "string", "value": "80"}}})), later())
                .unwrap_err();
        assert_eq!(reason(&err), "type_change");
        let d = details(&err);
        assert_eq!(
            (d["key"].as_str(), d["old_type"].as_str(), d["new_type"].as_str()),
            (Some("PORT"), Some("number"), Some("string"))
        );
        assert!(err.to_string().contains("PORT"));

        // Deliberately, in one patch:
        let next = apply_patch(
            &p,
            &patch(json!({"set_env_vars": {"PORT": {"type": "string", "value": "80"}}, "retype_env_vars": ["PORT"]})),
            later(),
        )
        .unwrap();
        assert_eq!(next.env_vars["PORT"], EnvValue::String("80".into()));

        // Or in two patches:
        let gone = apply_patch(&p, &patch(json!({"unset_env_vars": ["PORT"]})), later()).unwrap();
        let back =
            apply_patch(&gone, &patch(json!({"set_env_vars": {"PORT": {"type": "string", "value": "80"}}})), later())
                .unwrap();
        assert_eq!(back.env_vars["PORT"], EnvValue::String("80".into()));
        assert_eq!(back.revision, p.revision + 2);

        let err = apply_patch(&p, &patch(json!({"retype_env_vars": ["PORT"]})), later()).unwrap_err();
        assert_eq!(reason(&err), "retype_without_set");
    }

    #[test]
    fn patch_refuses_bad_operations() {
        let p = profile();
        let cases = [
            (json!({}), "empty_patch"),
            (json!({"unset_env_vars": ["NOPE"]}), "unknown_key"),
            (json!({"unset_secrets": ["NOPE"]}), "unknown_key"),
            (
                json!({"unset_env_vars": ["PORT"], "set_env_vars": {"PORT": {"type": "number", "value": 1}}}),
                "conflicting_ops",
            ),
            (json!({"unset_secrets": ["API_KEY"], "set_secrets": {"API_KEY": "x"}}), "conflicting_ops"),
            (json!({"set_env_vars": {"PORT": {"type": "number", "value": "NaN"}}}), "not_finite"),
            (json!({"set_env_vars": {"API_KEY": {"type": "string", "value": "x"}}}), "name_clash"),
            (json!({"lifecycle": {"idle_ttl_hours": 721}}), "out_of_range"),
            (json!({"name": "Bad Name"}), "invalid_format"),
            (json!({"base_url": "http://"}), "invalid_url"),
            (json!({"database": {"provisioning_mode": "clone_from_base"}}), "required"),
            (json!({"migrations": {"paths": ["/abs"]}}), "invalid_path"),
        ];
        for (input, expected) in cases {
            assert_eq!(reason(&apply_patch(&p, &patch(input.clone()), later()).unwrap_err()), expected, "{input}");
        }
    }

    #[test]
    fn patch_debug_never_shows_secret_plaintext() {
        let pt = patch(json!({"set_secrets": {"K": "super-secret-plaintext"}}));
        assert!(!format!("{pt:?}").contains("super-secret"));
        let input = profile_input(json!({"name": "p", "kind": "temp_workspace", "secrets": {"K": "super-secret"}}));
        assert!(!format!("{input:?}").contains("super-secret"));
    }
}
