//! Email addresses, normalised to lower case so one address is one account.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A syntactically plausible email address in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases and checks `raw`: one `@`, a non-empty local part,
    /// a dotted domain, no spaces or control characters, at most 254 bytes.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let s = raw.trim().to_lowercase();
        let bad = || Err(Error::invalid("email", "invalid_email", "not a valid email address"));
        if s.is_empty() || s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad();
        }
        let Some((local, domain)) = s.split_once('@') else { return bad() };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return bad();
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-')) {
            return bad();
        }
        Ok(Email(s))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, used to derive a handle.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in ["", "ada", "@x.io", "ada@", "ada@x", "a b@x.io", "a@@x.io", "a@x..io", "a@-x.io", "a\u{1}@x.io"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
