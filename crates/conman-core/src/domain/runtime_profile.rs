//! Runtime profiles: the typed runtime blueprint of an environment (SPEC
//! §2.6). This slice defines the entity and the secret mask; the services
//! and encryption come with the runtime-profiles issue.

use serde::{Deserialize, Serialize};

use crate::ids::{AppId, RuntimeProfileId};

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

/// A typed environment-variable value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
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

/// Profile header (fields beyond these arrive with the runtime-profiles issue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeProfile {
    /// Identity.
    pub id: RuntimeProfileId,
    /// Owning app.
    pub app_id: AppId,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ProfileKind,
    /// Latest revision number.
    pub revision: u32,
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
mod tests {
    use super::*;

    #[test]
    fn masks_follow_the_spec() {
        assert_eq!(mask_secret("abcdefghijkl"), "abcd****ijkl");
        assert_eq!(mask_secret("12345678"), "****5678");
        assert!(mask_secret("abc").ends_with("abc"));
        assert!(!mask_secret("abcdefghijkl").contains("efgh"));
    }
}
