//! Users, credentials and password resets: the `UserStore` reads and the
//! user mutations.
//!
//! Invariant: email and handle are unique (the schema refuses duplicates);
//! a user update applies only over the version before it; a credential is
//! revoked at most once and a password reset used at most once, the first
//! time kept.

use async_trait::async_trait;
use conman_core::domain::user::{Credential, PasswordReset, User};
use conman_core::domain::Timestamp;
use conman_core::ids::{CredentialId, PasswordResetId, UserId};
use conman_core::ports::store::{ConflictReason, Page, PageRequest, UserMutation, UserStore};
use conman_core::validation::{Email, Handle};
use conman_core::Error;
use rusqlite::{params, Connection};

use crate::codec::{self, all, exists, flag, id, inserted, name_of, one, opt_ts, ts, Cols, Db as _};
use crate::SqliteStore;

macro_rules! user_columns {
    () => {
        "id, email, name, handle, password_hash, is_operator, email_notifications, created_at, updated_at, version"
    };
}

macro_rules! credential_columns {
    () => {
        "id, user_id, kind, name, token_hash, created_at, expires_at, revoked_at"
    };
}

/// Decodes the ten user columns starting at `at`.
pub(crate) fn user_at(c: &Cols<'_, '_>, at: usize) -> Result<User, Error> {
    let email = c.text(at + 1)?;
    let handle = c.text(at + 3)?;
    Ok(User {
        id: c.id(at)?,
        email: Email::parse(&email).map_err(|_| Error::internal(format!("stored email {email:?} is invalid")))?,
        name: c.text(at + 2)?,
        handle: Handle::parse(&handle).map_err(|_| Error::internal(format!("stored handle {handle:?} is invalid")))?,
        password_hash: c.text(at + 4)?,
        is_operator: c.flag(at + 5)?,
        email_notifications: c.flag(at + 6)?,
        created_at: c.ts(at + 7)?,
        updated_at: c.ts(at + 8)?,
        version: c.int(at + 9)?,
    })
}

fn user(c: &Cols<'_, '_>) -> Result<User, Error> {
    user_at(c, 0)
}

fn credential(c: &Cols<'_, '_>) -> Result<Credential, Error> {
    Ok(Credential {
        id: c.id(0)?,
        user_id: c.id(1)?,
        kind: c.named(2)?,
        name: c.text(3)?,
        token_hash: c.text(4)?,
        created_at: c.ts(5)?,
        expires_at: c.opt_ts(6)?,
        revoked_at: c.opt_ts(7)?,
    })
}

fn password_reset(c: &Cols<'_, '_>) -> Result<PasswordReset, Error> {
    Ok(PasswordReset {
        id: c.id(0)?,
        user_id: c.id(1)?,
        token_hash: c.text(2)?,
        created_at: c.ts(3)?,
        expires_at: c.ts(4)?,
        used_at: c.opt_ts(5)?,
    })
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn user(&self, user_id: UserId) -> Result<Option<User>, Error> {
        self.read(move |conn| {
            one(conn, concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?1"), [id(user_id.0)], user)
        })
        .await
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, Error> {
        let email = email.as_str().to_owned();
        self.read(move |conn| {
            one(conn, concat!("SELECT ", user_columns!(), " FROM users WHERE email = ?1"), [email], user)
        })
        .await
    }

    async fn user_by_handle(&self, handle: &str) -> Result<Option<User>, Error> {
        let handle = handle.to_owned();
        self.read(move |conn| {
            one(conn, concat!("SELECT ", user_columns!(), " FROM users WHERE handle = ?1"), [handle], user)
        })
        .await
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM users",
                concat!("SELECT ", user_columns!(), " FROM users ORDER BY email LIMIT ? OFFSET ?"),
                Vec::new(),
                page,
                user,
            )
        })
        .await
    }

    async fn credential_by_hash(&self, token_hash: &str) -> Result<Option<Credential>, Error> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            one(
                conn,
                concat!("SELECT ", credential_columns!(), " FROM credentials WHERE token_hash = ?1"),
                [token_hash],
                credential,
            )
        })
        .await
    }

    async fn list_credentials(&self, user_id: UserId) -> Result<Vec<Credential>, Error> {
        self.read(move |conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    credential_columns!(),
                    " FROM credentials WHERE user_id = ?1 ORDER BY created_at DESC, id DESC"
                ),
                [id(user_id.0)],
                credential,
            )
        })
        .await
    }

    async fn password_reset_by_hash(&self, token_hash: &str) -> Result<Option<PasswordReset>, Error> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            one(
                conn,
                "SELECT id, user_id, token_hash, created_at, expires_at, used_at
                 FROM password_resets WHERE token_hash = ?1",
                [token_hash],
                password_reset,
            )
        })
        .await
    }
}

/// `InsertUser`.
pub(crate) fn insert_user(conn: &Connection, u: &User) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING"
        ))
        .db()?
        .execute(params![
            id(u.id.0),
            u.email.as_str(),
            u.name,
            u.handle.as_str(),
            u.password_hash,
            flag(u.is_operator),
            flag(u.email_notifications),
            ts(&u.created_at),
            ts(&u.updated_at),
            u.version,
        ])
        .db();
    match rows {
        Ok(rows) => inserted(rows, conman_core::ports::store::Record::User),
        // SQLite checks `handle` before `email`; every store names the
        // email when both are taken.
        Err(Error::Conflict { details: Some(details), .. })
            if details["field"] == "handle"
                && exists(conn, "SELECT 1 FROM users WHERE email = ?1", [u.email.as_str()])? =>
        {
            Err(ConflictReason::Taken { record: conman_core::ports::store::Record::User, field: "email".into() }.into())
        }
        Err(e) => Err(e),
    }
}

/// `UpdateUser`: compare-and-set on `version`.
pub(crate) fn update_user(conn: &Connection, u: &User) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE users SET email = ?2, name = ?3, handle = ?4, password_hash = ?5, is_operator = ?6,
                email_notifications = ?7, created_at = ?8, updated_at = ?9, version = ?10
             WHERE id = ?1 AND version = ?10 - 1",
        )
        .db()?
        .execute(params![
            id(u.id.0),
            u.email.as_str(),
            u.name,
            u.handle.as_str(),
            u.password_hash,
            flag(u.is_operator),
            flag(u.email_notifications),
            ts(&u.created_at),
            ts(&u.updated_at),
            u.version,
        ])
        .db()?;
    crate::unit_of_work::expect_cas(changed, UserId::KIND, || {
        exists(conn, "SELECT 1 FROM users WHERE id = ?1", [id(u.id.0)])
    })
}

/// `InsertCredential`.
pub(crate) fn insert_credential(conn: &Connection, c: &Credential) -> Result<(), Error> {
    conn.prepare_cached(concat!(
        "INSERT INTO credentials (",
        credential_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))
    .db()?
    .execute(params![
        id(c.id.0),
        id(c.user_id.0),
        name_of(&c.kind)?,
        c.name,
        c.token_hash,
        ts(&c.created_at),
        opt_ts(&c.expires_at),
        opt_ts(&c.revoked_at),
    ])
    .db()?;
    Ok(())
}

/// `RevokeCredential`: a no-op when already revoked, `not_found` when unknown.
pub(crate) fn revoke_credential(conn: &Connection, cred: CredentialId, at: &Timestamp) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE credentials SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        .db()?
        .execute(params![id(cred.0), ts(at)])
        .db()?;
    if changed == 0 && !exists(conn, "SELECT 1 FROM credentials WHERE id = ?1", [id(cred.0)])? {
        return Err(Error::NotFound(CredentialId::KIND));
    }
    Ok(())
}

/// `RevokeUserCredentials`: revokes every credential of the user not yet revoked.
pub(crate) fn revoke_user_credentials(conn: &Connection, user_id: UserId, at: &Timestamp) -> Result<(), Error> {
    conn.prepare_cached("UPDATE credentials SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL")
        .db()?
        .execute(params![id(user_id.0), ts(at)])
        .db()?;
    Ok(())
}

/// `InsertPasswordReset`.
pub(crate) fn insert_password_reset(conn: &Connection, r: &PasswordReset) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at, used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![
        id(r.id.0),
        id(r.user_id.0),
        r.token_hash,
        ts(&r.created_at),
        ts(&r.expires_at),
        opt_ts(&r.used_at)
    ])
    .db()?;
    Ok(())
}

/// `UsePasswordReset`: `conflict` when already used, `not_found` when unknown.
pub(crate) fn use_password_reset(conn: &Connection, reset: PasswordResetId, at: &Timestamp) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE password_resets SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL")
        .db()?
        .execute(params![id(reset.0), ts(at)])
        .db()?;
    if changed == 1 {
        return Ok(());
    }
    if exists(conn, "SELECT 1 FROM password_resets WHERE id = ?1", [id(reset.0)])? {
        Err(ConflictReason::ResetAlreadyUsed.into())
    } else {
        Err(Error::NotFound(PasswordResetId::KIND))
    }
}

/// Applies one user mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &UserMutation) -> Result<(), Error> {
    match mutation {
        UserMutation::InsertUser(u) => insert_user(conn, u),
        UserMutation::UpdateUser(u) => update_user(conn, u),
        UserMutation::InsertCredential(c) => insert_credential(conn, c),
        UserMutation::RevokeCredential { id, at } => revoke_credential(conn, *id, at),
        UserMutation::RevokeUserCredentials { user_id, at } => revoke_user_credentials(conn, *user_id, at),
        UserMutation::InsertPasswordReset(r) => insert_password_reset(conn, r),
        UserMutation::UsePasswordReset { id, at } => use_password_reset(conn, *id, at),
    }
}
