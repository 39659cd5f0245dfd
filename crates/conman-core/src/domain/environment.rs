//! Environments: the ordered deploy stages of an app (SPEC §2.5). Services
//! come with the runtime-profiles issue; the invariant lives here already.

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

/// Checks an environment list: unique names, exactly one canonical.
pub fn validate_environment_list(envs: &[Environment]) -> Result<(), Error> {
    if envs.is_empty() {
        return Ok(());
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
            position: 0,
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
}
