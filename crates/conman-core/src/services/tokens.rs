//! Personal API tokens (`/api/me/tokens`) for scripts and agents: opaque,
//! shown once at creation, stored as hashes, optionally expiring, revocable.

use serde::Serialize;

use super::{Actor, AuditWhat, Conman};
use crate::domain::user::{Credential, CredentialKind};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::CredentialId;
use crate::ports::store::{UnitOfWork, UserMutation};
use crate::ports::tokens::token_hash;

/// A token as shown to its owner (never the hash, never the token again).
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// Identity.
    pub id: CredentialId,
    /// Name.
    pub name: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// The token itself: only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl IssuedToken {
    fn from_credential(c: &Credential, token: Option<String>) -> Self {
        IssuedToken {
            id: c.id,
            name: c.name.clone(),
            created_at: c.created_at,
            expires_at: c.expires_at,
            revoked_at: c.revoked_at,
            token,
        }
    }
}

/// Longest lifetime a personal token may ask for.
pub const MAX_TOKEN_DAYS: u32 = 3650;

impl Conman {
    /// Creates a personal API token for the caller; the answer is the only
    /// time the token is visible.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<IssuedToken, Error> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid("name", "invalid_format", "token name must be 1-100 printable characters"));
        }
        if expires_in_days.is_some_and(|d| d == 0 || d > MAX_TOKEN_DAYS) {
            return Err(Error::invalid("expires_in_days", "out_of_range", "expires_in_days must be 1-3650"));
        }
        let now = self.now();
        let token = self.ports.tokens.new_token();
        let credential = Credential {
            id: self.new_id(),
            user_id: actor.user.id,
            kind: CredentialKind::ApiToken,
            name: name.to_owned(),
            token_hash: token_hash(&token),
            created_at: now,
            expires_at: expires_in_days.map(|d| now + chrono::Duration::days(i64::from(d))),
            revoked_at: None,
        };
        let issued = IssuedToken::from_credential(&credential, Some(token));
        let audit = self.audit_entry(
            Some(actor),
            None,
            AuditWhat::new("api_token", credential.id, "api_token.created")
                .after(IssuedToken::from_credential(&credential, None)),
        );
        self.store().commit(UnitOfWork::new().record(UserMutation::InsertCredential(credential), audit)).await?;
        Ok(issued)
    }

    /// The caller's API tokens (not sessions), newest first.
    pub async fn list_api_tokens(&self, actor: &Actor) -> Result<Vec<IssuedToken>, Error> {
        let all = self.store().list_credentials(actor.user.id).await?;
        Ok(all
            .iter()
            .filter(|c| c.kind == CredentialKind::ApiToken)
            .map(|c| IssuedToken::from_credential(c, None))
            .collect())
    }

    /// Revokes one of the caller's API tokens.
    pub async fn revoke_api_token(&self, actor: &Actor, id: CredentialId) -> Result<(), Error> {
        let all = self.store().list_credentials(actor.user.id).await?;
        let credential = all
            .into_iter()
            .find(|c| c.id == id && c.kind == CredentialKind::ApiToken)
            .ok_or(Error::NotFound(CredentialId::KIND))?;
        if credential.revoked_at.is_some() {
            return Ok(());
        }
        let at = self.now();
        let audit = self.audit_entry(
            Some(actor),
            None,
            AuditWhat::new("api_token", id, "api_token.revoked")
                .before(IssuedToken::from_credential(&credential, None)),
        );
        self.store().commit(UnitOfWork::new().record(UserMutation::RevokeCredential { id, at }, audit)).await
    }
}
