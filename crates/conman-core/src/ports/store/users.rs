//! Users, credentials and password resets: reads and mutations.

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::user::{Credential, PasswordReset, User};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{CredentialId, PasswordResetId, UserId};
use crate::validation::Email;

/// A change to users, credentials or password resets.
#[derive(Debug, Clone, PartialEq)]
pub enum UserMutation {
    /// Insert a user (email and handle unique).
    InsertUser(User),
    /// Update a user (CAS on version).
    UpdateUser(User),
    /// Insert a session or API token.
    InsertCredential(Credential),
    /// Revoke a credential (no-op if already revoked).
    RevokeCredential {
        /// Which.
        id: CredentialId,
        /// When.
        at: Timestamp,
    },
    /// Revoke every credential of a user (after a password reset).
    RevokeUserCredentials {
        /// Whose.
        user_id: UserId,
        /// When.
        at: Timestamp,
    },
    /// Insert a password-reset request.
    InsertPasswordReset(PasswordReset),
    /// Mark a reset used; `conflict` ([`ResetAlreadyUsed`]) if it already was.
    ///
    /// [`ResetAlreadyUsed`]: super::ConflictReason::ResetAlreadyUsed
    UsePasswordReset {
        /// Which.
        id: PasswordResetId,
        /// When.
        at: Timestamp,
    },
}

/// Users, credentials and password resets.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// A user by id.
    async fn user(&self, id: UserId) -> Result<Option<User>, Error>;
    /// A user by (normalised) email.
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, Error>;
    /// A user by handle.
    async fn user_by_handle(&self, handle: &str) -> Result<Option<User>, Error>;
    /// All users, by email.
    async fn list_users(&self, page: PageRequest) -> Result<Page<User>, Error>;
    /// A credential by token hash (usable or not).
    async fn credential_by_hash(&self, token_hash: &str) -> Result<Option<Credential>, Error>;
    /// A user's credentials of every kind, newest first.
    async fn list_credentials(&self, user_id: UserId) -> Result<Vec<Credential>, Error>;
    /// A password reset by token hash.
    async fn password_reset_by_hash(&self, token_hash: &str) -> Result<Option<PasswordReset>, Error>;
}
