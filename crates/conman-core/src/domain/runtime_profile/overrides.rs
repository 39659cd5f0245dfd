//! Changeset profile overrides (SPEC §1, §2.3, §2.4): typed env var values
//! and secret values a changeset sets on one environment's (or one
//! profile's) runtime profile. They travel with the changeset into the
//! release and through promotion.
//!
//! Invariants:
//! - an override *sets* keys; it never removes one and never changes a key's
//!   type: [`ProfileOverride::check_against`] refuses a value whose type
//!   differs from the target profile's (`type_change`) and a name that is a
//!   secret on one side and an env var on the other (`name_clash`). Removing
//!   a variable or changing its type is a direct profile edit by `app_admin`;
//! - a stored [`ProfileOverride`] holds env values and secret *names* only;
//!   the write-side [`ProfileOverrideInput`] carries secret plaintexts in
//!   [`SecretPlaintext`] for the caller to seal under
//!   `(changeset, target, name)`;
//! - an override sets at least one key, obeys the same name and value rules
//!   as a profile, and a changeset holds at most one override per target
//!   ([`validate_override_set`]);
//! - two overrides conflict ([`conflicting_keys`]) when they reach the same
//!   environment and set one env var to different typed values (an equal
//!   typed value is not a conflict), or both set the same secret (sealed
//!   values cannot be compared, so any two are assumed to differ).
//!
//! Serde here is persistence: a [`ProfileOverride`] (with its
//! [`OverrideTarget`]) is stored as JSON with its changeset and frozen in
//! revisions, and refuses unknown fields when read back. Requests are read
//! by `conman_api::dto::ProfileOverrideInputDto` and converted into a
//! [`ProfileOverrideInput`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::values::{parse_env_value, validate_env_var_name, validate_secret_value};
use super::{EnvVars, RuntimeProfile, SecretPlaintext, TypedValueInput, MAX_ENV_VARS, MAX_SECRETS};
use crate::domain::environment::{validate_environment_name, Environment};
use crate::error::Error;
use crate::ids::{EnvironmentId, RuntimeProfileId};

/// What an override applies to: `{"environment": "prod"}`,
/// `{"environment_id": "…"}` or `{"profile_id": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OverrideTarget {
    /// An environment by name.
    Environment(String),
    /// An environment by id.
    EnvironmentId(EnvironmentId),
    /// A runtime profile by id (e.g. a temp environment's).
    ProfileId(RuntimeProfileId),
}

impl OverrideTarget {
    /// Whether the target designates `env` (by name, id, or its profile).
    pub fn matches(&self, env: &Environment) -> bool {
        match self {
            OverrideTarget::Environment(name) => *name == env.name,
            OverrideTarget::EnvironmentId(id) => *id == env.id,
            OverrideTarget::ProfileId(p) => env.runtime_profile_id == Some(*p),
        }
    }

    /// The environment of `envs` the target designates, if any.
    pub fn resolve<'a>(&self, envs: &'a [Environment]) -> Option<&'a Environment> {
        envs.iter().find(|e| self.matches(e))
    }
}

/// An override as written by a caller (the wire form is
/// `conman_api::dto::ProfileOverrideInputDto`).
#[derive(Debug, Clone)]
pub struct ProfileOverrideInput {
    /// Target.
    pub target: OverrideTarget,
    /// Typed env var values to set.
    pub env_vars: BTreeMap<String, TypedValueInput>,
    /// Secret values to set, in plaintext.
    pub secrets: BTreeMap<String, SecretPlaintext>,
}

/// A validated, storable override (no secret values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileOverride {
    /// Target.
    pub target: OverrideTarget,
    /// Typed env var values it sets.
    pub env_vars: EnvVars,
    /// Names of the secrets it sets.
    pub secrets: BTreeSet<String>,
}

impl ProfileOverride {
    /// Validates a caller's override: target shape, names, typed values,
    /// secret plaintexts, sizes, and at least one key.
    pub fn from_input(input: &ProfileOverrideInput) -> Result<Self, Error> {
        if let OverrideTarget::Environment(name) = &input.target {
            validate_environment_name(name)?;
        }
        if input.env_vars.is_empty() && input.secrets.is_empty() {
            return Err(Error::invalid("profile_override", "empty_override", "an override sets at least one key"));
        }
        if input.env_vars.len() > MAX_ENV_VARS || input.secrets.len() > MAX_SECRETS {
            return Err(Error::invalid("profile_override", "too_many", "too many keys in one override"));
        }
        let mut env_vars = EnvVars::new();
        for (k, v) in &input.env_vars {
            validate_env_var_name("env_vars", k)?;
            env_vars.insert(k.clone(), parse_env_value(k, v)?);
        }
        for (k, v) in &input.secrets {
            validate_env_var_name("secrets", k)?;
            validate_secret_value(k, v)?;
            if env_vars.contains_key(k) {
                return Err(Error::invalid("secrets", "name_clash", format!("{k} is both an env var and a secret")));
            }
        }
        Ok(ProfileOverride { target: input.target.clone(), env_vars, secrets: input.secrets.keys().cloned().collect() })
    }

    /// Whether the override applies to `env`.
    pub fn applies_to(&self, env: &Environment) -> bool {
        self.target.matches(env)
    }

    /// Whether the override reaches the canonical environment of `envs`
    /// (which makes `stricter_two_approvals` apply, SPEC §2.1).
    pub fn targets_canonical(&self, envs: &[Environment]) -> bool {
        self.target.resolve(envs).is_some_and(|e| e.is_canonical)
    }

    /// Checks the override against the profile it targets: no key changes
    /// type (`type_change`, naming key, old and new type) and no name is an
    /// env var on one side and a secret on the other (`name_clash`).
    pub fn check_against(&self, profile: &RuntimeProfile) -> Result<(), Error> {
        for (k, v) in &self.env_vars {
            if let Some(old) = profile.env_vars.get(k) {
                let (from, to) = (old.env_type(), v.env_type());
                if from != to {
                    return Err(Error::Validation {
                        message: format!(
                            "{k} is a {} in profile {} and the override makes it a {}; an override never changes \
                             a type",
                            from.as_str(),
                            profile.name,
                            to.as_str()
                        ),
                        details: Some(serde_json::json!({
                            "field": "env_vars", "reason": "type_change", "key": k,
                            "old_type": from.as_str(), "new_type": to.as_str(),
                        })),
                    });
                }
            }
            if profile.secrets.contains_key(k) {
                return Err(Error::invalid("env_vars", "name_clash", format!("{k} is a secret of the profile")));
            }
        }
        for k in &self.secrets {
            if profile.env_vars.contains_key(k) {
                return Err(Error::invalid("secrets", "name_clash", format!("{k} is an env var of the profile")));
            }
        }
        Ok(())
    }
}

fn same_target(a: &OverrideTarget, b: &OverrideTarget, envs: &[Environment]) -> bool {
    match (a.resolve(envs), b.resolve(envs)) {
        (Some(x), Some(y)) => x.id == y.id,
        _ => a == b,
    }
}

/// Refuses two overrides of one changeset that reach the same target
/// (`duplicate_target`): a changeset says one thing per environment.
pub fn validate_override_set(overrides: &[ProfileOverride], envs: &[Environment]) -> Result<(), Error> {
    for (i, a) in overrides.iter().enumerate() {
        if overrides[..i].iter().any(|b| same_target(&a.target, &b.target, envs)) {
            return Err(Error::invalid(
                "profile_overrides",
                "duplicate_target",
                "two overrides of one changeset target the same environment or profile",
            ));
        }
    }
    Ok(())
}

/// Keys on which `later` conflicts with `earlier` during release assembly
/// (SPEC §2.4), sorted; empty when they reach different targets.
pub fn conflicting_keys(earlier: &ProfileOverride, later: &ProfileOverride, envs: &[Environment]) -> Vec<String> {
    if !same_target(&earlier.target, &later.target, envs) {
        return Vec::new();
    }
    let vars = later.env_vars.iter().filter(|(k, v)| earlier.env_vars.get(*k).is_some_and(|old| old != *v));
    let secrets = later.secrets.intersection(&earlier.secrets);
    let mut keys: Vec<String> = vars.map(|(k, _)| k.clone()).chain(secrets.cloned()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runtime_profile::test_support::{override_input, profile, reason};
    use crate::domain::runtime_profile::EnvValue;
    use crate::ids::AppId;
    use serde_json::json;
    use uuid::Uuid;

    fn input(v: serde_json::Value) -> ProfileOverrideInput {
        override_input(v)
    }

    fn envs() -> Vec<Environment> {
        let p = profile();
        ["dev", "prod"]
            .iter()
            .enumerate()
            .map(|(i, n)| Environment {
                id: EnvironmentId(Uuid::now_v7()),
                app_id: AppId(Uuid::nil()),
                name: (*n).into(),
                position: i as u32,
                is_canonical: *n == "prod",
                runtime_profile_id: (*n == "prod").then_some(p.id),
            })
            .collect()
    }

    #[test]
    fn overrides_validate_their_input() {
        let ok = ProfileOverride::from_input(&input(json!({
            "target": {"environment": "prod"},
            "env_vars": {"PORT": {"type": "number", "value": 81}},
            "secrets": {"TOKEN": "abc-def-ghi"}
        })))
        .unwrap();
        assert_eq!(ok.env_vars["PORT"], EnvValue::Number(81.0));
        assert!(ok.secrets.contains("TOKEN"));
        assert!(!format!("{:?}", input(json!({"target": {"environment": "prod"}, "secrets": {"T": "plain-xyz"}})))
            .contains("plain-xyz"));

        let cases = [
            (json!({"target": {"environment": "prod"}}), "empty_override"),
            (
                json!({"target": {"environment": "Prod"}, "env_vars": {"A": {"type": "boolean", "value": true}}}),
                "invalid_format",
            ),
            (
                json!({"target": {"environment": "prod"}, "env_vars": {"A": {"type": "number", "value": "NaN"}}}),
                "not_finite",
            ),
            (
                json!({"target": {"environment": "prod"}, "env_vars": {"A": {"type": "boolean", "value": 0}}}),
                "wrong_type",
            ),
            (
                json!({"target": {"environment": "prod"}, "env_vars": {"A-B": {"type": "string", "value": ""}}}),
                "invalid_name",
            ),
            (
                json!({"target": {"environment": "prod"}, "env_vars": {"A": {"type": "string", "value": ""}}, "secrets": {"A": "x"}}),
                "name_clash",
            ),
        ];
        for (v, expected) in cases {
            assert_eq!(reason(&ProfileOverride::from_input(&input(v.clone())).unwrap_err()), expected, "{v}");
        }
    }

    #[test]
    fn stored_overrides_refuse_unknown_fields_and_targets() {
        let t = json!({"environment": "prod"});
        for bad in [json!({"env": "prod"}), json!({"environment": "prod", "profile_id": Uuid::nil()})] {
            assert!(serde_json::from_value::<OverrideTarget>(bad.clone()).is_err(), "{bad}");
        }
        let stored = serde_json::to_value(
            ProfileOverride::from_input(&input(json!({"target": t, "secrets": {"K": "value"}}))).unwrap(),
        )
        .unwrap();
        let mut extra = stored.clone();
        extra["plaintext"] = json!("x");
        assert!(serde_json::from_value::<ProfileOverride>(extra).is_err());
        assert!(serde_json::from_value::<ProfileOverride>(stored).is_ok());
    }

    #[test]
    fn overrides_never_change_a_type() {
        let p = profile();
        let o = ProfileOverride::from_input(&input(json!({
            "target": {"profile_id": p.id}, "env_vars": {"PORT": {"type": "string", "value": "80"}}
        })))
        .unwrap();
        let err = o.check_against(&p).unwrap_err();
        assert_eq!(reason(&err), "type_change");
        assert!(err.to_string().contains("PORT"));
        let same = ProfileOverride::from_input(&input(json!({
            "target": {"profile_id": p.id}, "env_vars": {"PORT": {"type": "number", "value": 80}, "NEW": {"type": "json", "value": [1]}}
        })))
        .unwrap();
        assert!(same.check_against(&p).is_ok());
        let clash = ProfileOverride::from_input(&input(json!({
            "target": {"profile_id": p.id}, "env_vars": {"API_KEY": {"type": "string", "value": "x"}}
        })))
        .unwrap();
        assert_eq!(reason(&clash.check_against(&p).unwrap_err()), "name_clash");
    }

    #[test]
    fn targets_resolve_and_conflicts_follow_the_spec() {
        let envs = envs();
        let by_name = |v: serde_json::Value| {
            ProfileOverride::from_input(&input(json!({"target": {"environment": "prod"}, "env_vars": v}))).unwrap()
        };
        let a = by_name(json!({"PORT": {"type": "number", "value": 1}, "X": {"type": "string", "value": "s"}}));
        let b = ProfileOverride::from_input(&input(json!({
            "target": {"profile_id": profile().id},
            "env_vars": {"PORT": {"type": "number", "value": 2}, "X": {"type": "string", "value": "s"}}
        })))
        .unwrap();
        assert!(a.applies_to(&envs[1]) && !a.applies_to(&envs[0]));
        assert!(a.targets_canonical(&envs) && b.targets_canonical(&envs));
        assert_eq!(conflicting_keys(&a, &b, &envs), vec!["PORT".to_owned()], "same typed value is no conflict");
        let dev = ProfileOverride::from_input(&input(json!({
            "target": {"environment": "dev"}, "env_vars": {"PORT": {"type": "number", "value": 3}}
        })))
        .unwrap();
        assert!(conflicting_keys(&a, &dev, &envs).is_empty());
        assert!(!dev.targets_canonical(&envs));
        assert_eq!(reason(&validate_override_set(&[a.clone(), b], &envs).unwrap_err()), "duplicate_target");
        assert!(validate_override_set(&[a, dev], &envs).is_ok());
    }
}
