//! Environments: the ordered deploy stages of an app (SPEC §2.5). Services
//! come with the runtime-profiles issue; the invariant lives here already.
//!
//! Invariants of an app's environment list ([`validate_environment_list`]):
//! every name is a lower-case slug (1-63 of `[a-z0-9-]`, no leading, trailing
//! or double hyphen — safe inside `refs/heads/env/<name>` and URLs), names are
//! unique, positions are unique (they order the list), and exactly one
//! environment is canonical.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{AppId, EnvironmentId, RuntimeProfileId};

/// One deploy stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Identity.
    pub id: EnvironmentId,
    /// Owning app.
    pub app_id: AppId,
    /// Unique name within the app (`dev`, `prod`).
    pub name: String,
    /// Order, from 0.
    pub position: u32,
    /// The user-facing environment; exactly one per app.
    pub is_canonical: bool,
    /// The runtime profile it runs with.
    pub runtime_profile_id: Option<RuntimeProfileId>,
}

impl Environment {
    /// The git ref a deployment moves: `refs/heads/env/<name>`.
    pub fn git_ref(&self) -> String {
        format!("refs/heads/env/{}", self.name)
    }
}

/// Environment names: a lower-case slug of 1-63 characters (the app-name
/// rule), so `refs/heads/env/<name>` is always a valid git ref.
pub fn validate_environment_name(name: &str) -> Result<(), Error> {
    crate::validation::validate_app_name(name).map_err(|_| {
        Error::invalid(
            "environment.name",
            "invalid_format",
            "environment names are 1-63 lower-case letters, digits and single hyphens",
        )
    })
}

/// Checks an environment list: valid and unique names, unique positions,
/// exactly one canonical.
pub fn validate_environment_list(envs: &[Environment]) -> Result<(), Error> {
    if envs.is_empty() {
        return Ok(());
    }
    for e in envs {
        validate_environment_name(&e.name)?;
    }
    let canonical = envs.iter().filter(|e| e.is_canonical).count();
    if canonical != 1 {
        return Err(Error::invalid("environments", "canonical_count", "exactly one environment must be canonical"));
    }
    let mut names: Vec<&str> = envs.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid("environments", "duplicate_name", "environment names must be unique"));
    }
    let mut positions: Vec<u32> = envs.iter().map(|e| e.position).collect();
    positions.sort_unstable();
    if positions.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid("environments", "duplicate_position", "environment positions must be unique"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn env(name: &str, canonical: bool) -> Environment {
        Environment {
            id: EnvironmentId(Uuid::now_v7()),
            app_id: AppId(Uuid::nil()),
            name: name.into(),
            position: name.len() as u32,
            is_canonical: canonical,
            runtime_profile_id: None,
        }
    }

    #[test]
    fn exactly_one_canonical_and_unique_names() {
        assert!(validate_environment_list(&[env("dev", false), env("prod", true)]).is_ok());
        assert!(validate_environment_list(&[env("dev", true), env("prod", true)]).is_err());
        assert!(validate_environment_list(&[env("dev", false), env("prod", false)]).is_err());
        assert!(validate_environment_list(&[env("dev", true), env("dev", false)]).is_err());
        assert_eq!(env("prod", true).git_ref(), "refs/heads/env/prod");
    }

    fn reason(err: &Error) -> String {
        err.details().unwrap()["reason"].as_str().unwrap().to_owned()
    }

    #[test]
    fn bad_lists_say_why() {
        let two_canonical = validate_environment_list(&[env("dev", true), env("prod", true)]).unwrap_err();
        assert_eq!(reason(&two_canonical), "canonical_count");
        let dup = validate_environment_list(&[env("dev", true), env("dev", false)]).unwrap_err();
        assert_eq!(reason(&dup), "duplicate_name");
        let mut qa = env("qa", false);
        qa.position = env("dev", false).position;
        let same_pos = validate_environment_list(&[env("dev", true), qa]).unwrap_err();
        assert_eq!(reason(&same_pos), "duplicate_position");
        let bad_name = validate_environment_list(&[env("Prod", true)]).unwrap_err();
        assert_eq!(reason(&bad_name), "invalid_format");
    }

    #[test]
    fn environment_names_are_ref_safe_slugs() {
        for ok in ["dev", "qa-2", "prod"] {
            assert!(validate_environment_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Prod", "a b", "a..b", "a/b", "-a", "a-", "a--b", "a.lock", "x_y", &"a".repeat(64)] {
            assert!(validate_environment_name(bad).is_err(), "{bad}");
        }
    }
}
