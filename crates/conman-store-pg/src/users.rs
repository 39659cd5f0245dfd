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
use sqlx::{query, PgConnection};

use crate::codec::{self, all, exists, name_of, one, opt_ts, ts, Cols, Db as _, PgQuery};
use crate::unit_of_work::expect_cas;
use crate::PgStore;

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
pub(crate) fn user_at(c: &Cols<'_>, at: usize) -> Result<User, Error> {
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

fn user(c: &Cols<'_>) -> Result<User, Error> {
    user_at(c, 0)
}

fn credential(c: &Cols<'_>) -> Result<Credential, Error> {
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

fn password_reset(c: &Cols<'_>) -> Result<PasswordReset, Error> {
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
impl UserStore for PgStore {
    async fn user(&self, user_id: UserId) -> Result<Option<User>, Error> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        one(&self.pool, query(sql).bind(user_id.0), user).await
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, Error> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1");
        one(&self.pool, query(sql).bind(email.as_str()), user).await
    }

    async fn user_by_handle(&self, handle: &str) -> Result<Option<User>, Error> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE handle = $1");
        one(&self.pool, query(sql).bind(handle), user).await
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>, Error> {
        codec::page(
            &self.pool,
            query("SELECT COUNT(*) FROM users"),
            query(concat!("SELECT ", user_columns!(), " FROM users ORDER BY email LIMIT $1 OFFSET $2")),
            page,
            user,
        )
        .await
    }

    async fn credential_by_hash(&self, token_hash: &str) -> Result<Option<Credential>, Error> {
        let sql = concat!("SELECT ", credential_columns!(), " FROM credentials WHERE token_hash = $1");
        one(&self.pool, query(sql).bind(token_hash), credential).await
    }

    async fn list_credentials(&self, user_id: UserId) -> Result<Vec<Credential>, Error> {
        let sql = concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        );
        all(&self.pool, query(sql).bind(user_id.0), credential).await
    }

    async fn password_reset_by_hash(&self, token_hash: &str) -> Result<Option<PasswordReset>, Error> {
        let sql = "SELECT id, user_id, token_hash, created_at, expires_at, used_at
                   FROM password_resets WHERE token_hash = $1";
        one(&self.pool, query(sql).bind(token_hash), password_reset).await
    }
}

/// Binds the ten user columns, in [`user_columns!`] order.
fn bind_user<'q>(q: PgQuery<'q>, u: &'q User) -> PgQuery<'q> {
    q.bind(u.id.0)
        .bind(u.email.as_str())
        .bind(&u.name)
        .bind(u.handle.as_str())
        .bind(&u.password_hash)
        .bind(u.is_operator)
        .bind(u.email_notifications)
        .bind(ts(&u.created_at))
        .bind(ts(&u.updated_at))
        .bind(u.version)
}

/// `InsertUser`.
pub(crate) async fn insert_user(conn: &mut PgConnection, u: &User) -> Result<(), Error> {
    let sql = concat!("INSERT INTO users (", user_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
    bind_user(query(sql), u).execute(conn).await.db()?;
    Ok(())
}

/// `UpdateUser`: compare-and-set on `version`.
pub(crate) async fn update_user(conn: &mut PgConnection, u: &User) -> Result<(), Error> {
    let sql = "UPDATE users SET email = $2, name = $3, handle = $4, password_hash = $5, is_operator = $6,
                   email_notifications = $7, created_at = $8, updated_at = $9, version = $10
               WHERE id = $1 AND version = $10 - 1";
    let changed = bind_user(query(sql), u).execute(&mut *conn).await.db()?.rows_affected();
    expect_cas(conn, changed, UserId::KIND, query("SELECT 1 FROM users WHERE id = $1").bind(u.id.0)).await
}

/// `InsertCredential`.
pub(crate) async fn insert_credential(conn: &mut PgConnection, c: &Credential) -> Result<(), Error> {
    let sql = concat!("INSERT INTO credentials (", credential_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    query(sql)
        .bind(c.id.0)
        .bind(c.user_id.0)
        .bind(name_of(&c.kind)?)
        .bind(&c.name)
        .bind(&c.token_hash)
        .bind(ts(&c.created_at))
        .bind(opt_ts(&c.expires_at))
        .bind(opt_ts(&c.revoked_at))
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `RevokeCredential`: a no-op when already revoked, `not_found` when unknown.
pub(crate) async fn revoke_credential(
    conn: &mut PgConnection,
    cred: CredentialId,
    at: &Timestamp,
) -> Result<(), Error> {
    let changed = query("UPDATE credentials SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(cred.0)
        .bind(ts(at))
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    if changed == 0 && !exists(conn, query("SELECT 1 FROM credentials WHERE id = $1").bind(cred.0)).await? {
        return Err(Error::NotFound(CredentialId::KIND));
    }
    Ok(())
}

/// `RevokeUserCredentials`: revokes every credential of the user not yet revoked.
pub(crate) async fn revoke_user_credentials(
    conn: &mut PgConnection,
    user_id: UserId,
    at: &Timestamp,
) -> Result<(), Error> {
    query("UPDATE credentials SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id.0)
        .bind(ts(at))
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `InsertPasswordReset`.
pub(crate) async fn insert_password_reset(conn: &mut PgConnection, r: &PasswordReset) -> Result<(), Error> {
    query(
        "INSERT INTO password_resets (id, user_id, token_hash, created_at, expires_at, used_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(r.id.0)
    .bind(r.user_id.0)
    .bind(&r.token_hash)
    .bind(ts(&r.created_at))
    .bind(ts(&r.expires_at))
    .bind(opt_ts(&r.used_at))
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// `UsePasswordReset`: `conflict` when already used, `not_found` when unknown.
pub(crate) async fn use_password_reset(
    conn: &mut PgConnection,
    reset: PasswordResetId,
    at: &Timestamp,
) -> Result<(), Error> {
    let changed = query("UPDATE password_resets SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
        .bind(reset.0)
        .bind(ts(at))
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    if changed == 1 {
        return Ok(());
    }
    if exists(conn, query("SELECT 1 FROM password_resets WHERE id = $1").bind(reset.0)).await? {
        Err(ConflictReason::ResetAlreadyUsed.into())
    } else {
        Err(Error::NotFound(PasswordResetId::KIND))
    }
}

/// Applies one user mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &UserMutation) -> Result<(), Error> {
    match mutation {
        UserMutation::InsertUser(u) => insert_user(conn, u).await,
        UserMutation::UpdateUser(u) => update_user(conn, u).await,
        UserMutation::InsertCredential(c) => insert_credential(conn, c).await,
        UserMutation::RevokeCredential { id, at } => revoke_credential(conn, *id, at).await,
        UserMutation::RevokeUserCredentials { user_id, at } => revoke_user_credentials(conn, *user_id, at).await,
        UserMutation::InsertPasswordReset(r) => insert_password_reset(conn, r).await,
        UserMutation::UsePasswordReset { id, at } => use_password_reset(conn, *id, at).await,
    }
}
