//! Users, credentials and password resets (mirrors the SQL stores' `users`).

use async_trait::async_trait;

use super::{cas, page, reference, unique, ReferenceStore, State};
use crate::domain::user::{Credential, PasswordReset, User};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{CredentialId, PasswordResetId, UserId};
use crate::ports::store::{ConflictReason, Page, PageRequest, Record, UserMutation, UserStore};
use crate::validation::Email;

/// The users slice's collections.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Users {
    pub(crate) users: Vec<User>,
    pub(crate) credentials: Vec<Credential>,
    pub(crate) resets: Vec<PasswordReset>,
}

impl Users {
    pub(crate) fn exists(&self, id: UserId) -> bool {
        self.users.iter().any(|u| u.id == id)
    }
}

#[async_trait]
impl UserStore for ReferenceStore {
    async fn user(&self, id: UserId) -> Result<Option<User>, Error> {
        Ok(self.lock().users.users.iter().find(|u| u.id == id).cloned())
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, Error> {
        Ok(self.lock().users.users.iter().find(|u| u.email.as_str() == email.as_str()).cloned())
    }

    async fn user_by_handle(&self, handle: &str) -> Result<Option<User>, Error> {
        Ok(self.lock().users.users.iter().find(|u| u.handle.as_str() == handle).cloned())
    }

    async fn list_users(&self, request: PageRequest) -> Result<Page<User>, Error> {
        let mut users = self.lock().users.users.clone();
        users.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
        Ok(page(users, request))
    }

    async fn credential_by_hash(&self, token_hash: &str) -> Result<Option<Credential>, Error> {
        Ok(self.lock().users.credentials.iter().find(|c| c.token_hash == token_hash).cloned())
    }

    async fn list_credentials(&self, user_id: UserId) -> Result<Vec<Credential>, Error> {
        let mut found: Vec<Credential> =
            self.lock().users.credentials.iter().filter(|c| c.user_id == user_id).cloned().collect();
        found.sort_by_key(|x| std::cmp::Reverse((x.created_at, x.id)));
        Ok(found)
    }

    async fn password_reset_by_hash(&self, token_hash: &str) -> Result<Option<PasswordReset>, Error> {
        Ok(self.lock().users.resets.iter().find(|r| r.token_hash == token_hash).cloned())
    }
}

fn insert_user(state: &mut State, u: &User) -> Result<(), Error> {
    let users = &state.users.users;
    unique(users.iter().any(|x| x.id == u.id), Record::User, "id")?;
    unique(users.iter().any(|x| x.email.as_str() == u.email.as_str()), Record::User, "email")?;
    unique(users.iter().any(|x| x.handle.as_str() == u.handle.as_str()), Record::User, "handle")?;
    state.users.users.push(u.clone());
    Ok(())
}

fn update_user(state: &mut State, u: &User) -> Result<(), Error> {
    let users = &mut state.users.users;
    cas(users.iter_mut().find(|x| x.id == u.id), |x| x.version, u.version, UserId::KIND)?;
    let others = || users.iter().filter(|x| x.id != u.id);
    unique(others().any(|x| x.email.as_str() == u.email.as_str()), Record::User, "email")?;
    unique(others().any(|x| x.handle.as_str() == u.handle.as_str()), Record::User, "handle")?;
    if let Some(row) = users.iter_mut().find(|x| x.id == u.id) {
        *row = u.clone();
    }
    Ok(())
}

fn insert_credential(state: &mut State, c: &Credential) -> Result<(), Error> {
    let creds = &state.users.credentials;
    unique(creds.iter().any(|x| x.id == c.id), Record::Token, "id")?;
    unique(creds.iter().any(|x| x.token_hash == c.token_hash), Record::Token, "token_hash")?;
    reference(state.users.exists(c.user_id))?;
    state.users.credentials.push(c.clone());
    Ok(())
}

fn revoke_credential(state: &mut State, id: CredentialId, at: Timestamp) -> Result<(), Error> {
    let row = state.users.credentials.iter_mut().find(|c| c.id == id).ok_or(Error::NotFound(CredentialId::KIND))?;
    row.revoked_at.get_or_insert(at);
    Ok(())
}

fn insert_password_reset(state: &mut State, r: &PasswordReset) -> Result<(), Error> {
    let resets = &state.users.resets;
    unique(resets.iter().any(|x| x.id == r.id), Record::PasswordReset, "id")?;
    unique(resets.iter().any(|x| x.token_hash == r.token_hash), Record::PasswordReset, "token_hash")?;
    reference(state.users.exists(r.user_id))?;
    state.users.resets.push(r.clone());
    Ok(())
}

fn use_password_reset(state: &mut State, id: PasswordResetId, at: Timestamp) -> Result<(), Error> {
    let row = state.users.resets.iter_mut().find(|r| r.id == id).ok_or(Error::NotFound(PasswordResetId::KIND))?;
    if row.used_at.is_some() {
        return Err(ConflictReason::ResetAlreadyUsed.into());
    }
    row.used_at = Some(at);
    Ok(())
}

/// Applies one user mutation.
pub(crate) fn apply(state: &mut State, mutation: &UserMutation) -> Result<(), Error> {
    match mutation {
        UserMutation::InsertUser(u) => insert_user(state, u),
        UserMutation::UpdateUser(u) => update_user(state, u),
        UserMutation::InsertCredential(c) => insert_credential(state, c),
        UserMutation::RevokeCredential { id, at } => revoke_credential(state, *id, *at),
        UserMutation::RevokeUserCredentials { user_id, at } => {
            for c in state.users.credentials.iter_mut().filter(|c| c.user_id == *user_id) {
                c.revoked_at.get_or_insert(*at);
            }
            Ok(())
        }
        UserMutation::InsertPasswordReset(r) => insert_password_reset(state, r),
        UserMutation::UsePasswordReset { id, at } => use_password_reset(state, *id, *at),
    }
}
