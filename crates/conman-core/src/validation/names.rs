//! Names, handles, slugs and titles: the identifiers people choose.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

fn is_slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn check_slug_like(field: &str, s: &str, max: usize) -> Result<(), Error> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars().all(is_slug_char)
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "invalid_format",
            format!("{field} must be 1-{max} lower-case letters, digits and single hyphens"),
        ))
    }
}

/// A user's handle, used in workspace branch names (`ws/<handle>/<slug>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Handle(String);

impl Handle {
    /// Validates a handle: 1-39 of `[a-z0-9-]`, no leading, trailing or double hyphen.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        check_slug_like("handle", raw, 39)?;
        Ok(Handle(raw.to_owned()))
    }

    /// Derives a handle from an email's local part (`Ada.Lovelace+x` → `ada-lovelace-x`).
    pub fn derive_from(local_part: &str) -> Self {
        let mut out = String::new();
        for c in local_part.chars().flat_map(char::to_lowercase) {
            let c = if c.is_ascii_alphanumeric() { c } else { '-' };
            if c == '-' && (out.is_empty() || out.ends_with('-')) {
                continue;
            }
            out.push(c);
        }
        out.truncate(35);
        let trimmed = out.trim_end_matches('-');
        Handle(if trimmed.is_empty() { "user".to_owned() } else { trimmed.to_owned() })
    }

    /// The same handle with a numeric suffix, to resolve collisions.
    pub fn with_suffix(&self, n: u32) -> Self {
        Handle(format!("{}-{n}", self.0))
    }

    /// The handle as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A workspace slug: the last segment of its branch name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// The slug of every user's default workspace.
    pub fn default_workspace() -> Self {
        Slug("default".into())
    }

    /// Derives a slug from a title (`"Fix Prod DB!"` → `fix-prod-db`), never empty.
    pub fn from_title(title: &str) -> Self {
        let handle = Handle::derive_from(title);
        let s = handle.as_str();
        Slug(if s == "user" && !title.to_lowercase().contains("user") { "ws".into() } else { s.to_owned() })
    }

    /// The same slug with a numeric suffix, to resolve collisions.
    pub fn with_suffix(&self, n: u32) -> Self {
        Slug(format!("{}-{n}", self.0))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// App names: 1-63 of `[a-z0-9-]` (they appear in URLs and temp-env hosts).
pub fn validate_app_name(name: &str) -> Result<(), Error> {
    check_slug_like("name", name, 63)
}

/// Display names of people: 1-200 characters, no control characters.
pub fn validate_display_name(name: &str) -> Result<(), Error> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control) {
        return Err(Error::invalid("name", "invalid_format", "name must be 1-200 printable characters"));
    }
    Ok(())
}

/// Titles (workspaces, changesets): 1-200 characters, no control characters.
pub fn validate_title(title: &str) -> Result<(), Error> {
    let trimmed = title.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control) {
        return Err(Error::invalid("title", "invalid_format", "title must be 1-200 printable characters"));
    }
    Ok(())
}

/// Branch names accepted as an app's integration branch: git-safe subset,
/// `[A-Za-z0-9._/-]`, no `..`, no leading or trailing `/` or `.`, not `ws/…`
/// or `env/…` (those namespaces belong to Conman).
pub fn validate_branch_name(name: &str) -> Result<(), Error> {
    let bad = |msg: &str| Err(Error::invalid("integration_branch", "invalid_branch", msg));
    if name.is_empty() || name.len() > 200 {
        return bad("branch name must be 1-200 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')) {
        return bad("branch name may contain only letters, digits, '.', '_', '/' and '-'");
    }
    if name.contains("..")
        || name.contains("//")
        || name.starts_with(['/', '.', '-'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.split('/').any(|s| s.starts_with('.'))
    {
        return bad("branch name is not a valid git branch name");
    }
    if name.starts_with("ws/") || name.starts_with("env/") {
        return bad("branch namespaces ws/ and env/ are reserved by Conman");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_derived_from_email_local_parts() {
        assert_eq!(Handle::derive_from("Ada.Lovelace+ops").as_str(), "ada-lovelace-ops");
        assert_eq!(Handle::derive_from("...").as_str(), "user");
        assert!(Handle::parse(Handle::derive_from("__x__y__").as_str()).is_ok());
    }

    #[test]
    fn slugs_come_from_titles() {
        assert_eq!(Slug::from_title("Fix Prod DB!").as_str(), "fix-prod-db");
        assert_eq!(Slug::from_title("!!!").as_str(), "ws");
    }

    #[test]
    fn app_names_are_url_safe() {
        assert!(validate_app_name("billing-api").is_ok());
        for bad in ["", "Billing", "a_b", "-a", "a-", "a--b", &"a".repeat(64)] {
            assert!(validate_app_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branch_names_are_git_safe_and_not_reserved() {
        for ok in ["main", "release/2026", "trunk-1"] {
            assert!(validate_branch_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "/a", "a/", "a b", "ws/x", "env/prod", "x.lock", "a/.b", "-x"] {
            assert!(validate_branch_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn titles_and_names_refuse_control_characters() {
        assert!(validate_title("ok title").is_ok());
        assert!(validate_title("   ").is_err());
        assert!(validate_title("a\u{7}").is_err());
        assert!(validate_display_name("Ada Lovelace").is_ok());
        assert!(validate_display_name(&"x".repeat(201)).is_err());
    }
}
