//! Users and their credentials: sessions, personal API tokens and
//! password-reset requests. Secrets (passwords, tokens) are only ever stored
//! as hashes; the plaintext token is shown once, at creation.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::ids::{CredentialId, PasswordResetId, UserId};
use crate::validation::{Email, Handle};

/// A person or an automated agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Identity.
    pub id: UserId,
    /// Login email, lower case, unique.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Unique handle used in branch names.
    pub handle: Handle,
    /// Argon2id PHC string.
    #[serde(skip_serializing, default)]
    pub password_hash: String,
    /// Server operator: may create apps and manage users.
    pub is_operator: bool,
    /// Per-user notification toggle.
    pub email_notifications: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version, +1 on every update.
    pub version: i64,
}

/// A user as others may see it (no password hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    /// Identity.
    pub id: UserId,
    /// Email.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Handle.
    pub handle: Handle,
    /// Server operator flag.
    pub is_operator: bool,
}

impl From<&User> for UserSummary {
    fn from(u: &User) -> Self {
        UserSummary {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            handle: u.handle.clone(),
            is_operator: u.is_operator,
        }
    }
}

/// What a bearer token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// Issued by login or invite acceptance; expires.
    Session,
    /// Personal API token for scripts and agents.
    ApiToken,
}

/// A bearer credential, stored by the SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// Identity.
    pub id: CredentialId,
    /// Owner.
    pub user_id: UserId,
    /// Session or API token.
    pub kind: CredentialKind,
    /// Name given by the owner (API tokens) or `session`.
    pub name: String,
    /// Hex SHA-256 of the token; the token itself is never stored.
    #[serde(skip_serializing, default)]
    pub token_hash: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
}

impl Credential {
    /// True when the credential may authenticate a request at `now`.
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A password-reset request, stored by token hash, usable once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordReset {
    /// Identity.
    pub id: PasswordResetId,
    /// Whose password.
    pub user_id: UserId,
    /// Hex SHA-256 of the token.
    #[serde(skip_serializing, default)]
    pub token_hash: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
    /// When it was used.
    pub used_at: Option<Timestamp>,
}
