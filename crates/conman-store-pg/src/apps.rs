//! Apps, memberships and invites: the `AppStore` reads and their mutations.
//!
//! Invariant: app names are unique; a membership is keyed by (app, user)
//! and a put replaces it whole; invites and app updates apply only over the
//! version before them; every app-owned lookup is filtered by app id.

use async_trait::async_trait;
use conman_core::domain::app::App;
use conman_core::domain::invite::Invite;
use conman_core::domain::membership::Membership;
use conman_core::ids::{AppId, InviteId, UserId};
use conman_core::ports::store::{AppMutation, AppStore, ConflictReason, MemberRecord, Page, PageRequest};
use conman_core::rbac::Role;
use conman_core::validation::Email;
use conman_core::Error;
use sqlx::{query, PgConnection};

use crate::codec::{self, all, json, name_of, one, ts, Cols, Db as _, PgQuery};
use crate::unit_of_work::expect_cas;
use crate::users::user_at;
use crate::PgStore;

macro_rules! app_columns {
    () => {
        "a.id, a.name, a.settings::text, a.created_by, a.created_at, a.updated_at, a.version"
    };
}

macro_rules! invite_columns {
    () => {
        "id, app_id, email, role, token_hash, state, invited_by, created_at, expires_at, accepted_by, version"
    };
}

fn app(c: &Cols<'_>) -> Result<App, Error> {
    Ok(App {
        id: c.id(0)?,
        name: c.text(1)?,
        settings: c.json(2)?,
        created_by: c.id(3)?,
        created_at: c.ts(4)?,
        updated_at: c.ts(5)?,
        version: c.int(6)?,
    })
}

fn membership(c: &Cols<'_>) -> Result<Membership, Error> {
    Ok(Membership { app_id: c.id(0)?, user_id: c.id(1)?, role: c.named(2)?, created_at: c.ts(3)? })
}

fn member(c: &Cols<'_>) -> Result<MemberRecord, Error> {
    Ok(MemberRecord { membership: membership(c)?, user: user_at(c, 4)? })
}

fn invite(c: &Cols<'_>) -> Result<Invite, Error> {
    let email = c.text(2)?;
    Ok(Invite {
        id: c.id(0)?,
        app_id: c.id(1)?,
        email: Email::parse(&email).map_err(|_| Error::internal(format!("stored email {email:?} is invalid")))?,
        role: c.named(3)?,
        token_hash: c.text(4)?,
        state: c.named(5)?,
        invited_by: c.id(6)?,
        created_at: c.ts(7)?,
        expires_at: c.ts(8)?,
        accepted_by: c.opt_id(9)?,
        version: c.int(10)?,
    })
}

#[async_trait]
impl AppStore for PgStore {
    async fn app(&self, app_id: AppId) -> Result<Option<App>, Error> {
        let sql = concat!("SELECT ", app_columns!(), " FROM apps a WHERE a.id = $1");
        one(&self.pool, query(sql).bind(app_id.0), app).await
    }

    async fn app_by_name(&self, name: &str) -> Result<Option<App>, Error> {
        let sql = concat!("SELECT ", app_columns!(), " FROM apps a WHERE a.name = $1");
        one(&self.pool, query(sql).bind(name), app).await
    }

    async fn list_apps_for_user(&self, user_id: UserId, page: PageRequest) -> Result<Page<App>, Error> {
        codec::page(
            &self.pool,
            query("SELECT COUNT(*) FROM memberships WHERE user_id = $1").bind(user_id.0),
            query(concat!(
                "SELECT ",
                app_columns!(),
                " FROM memberships m JOIN apps a ON a.id = m.app_id WHERE m.user_id = $1
                  ORDER BY a.name LIMIT $2 OFFSET $3"
            ))
            .bind(user_id.0),
            page,
            app,
        )
        .await
    }

    async fn list_all_apps(&self, page: PageRequest) -> Result<Page<App>, Error> {
        codec::page(
            &self.pool,
            query("SELECT COUNT(*) FROM apps"),
            query(concat!("SELECT ", app_columns!(), " FROM apps a ORDER BY a.name LIMIT $1 OFFSET $2")),
            page,
            app,
        )
        .await
    }

    async fn membership(&self, app_id: AppId, user_id: UserId) -> Result<Option<Membership>, Error> {
        let sql = "SELECT app_id, user_id, role, created_at FROM memberships WHERE app_id = $1 AND user_id = $2";
        one(&self.pool, query(sql).bind(app_id.0).bind(user_id.0), membership).await
    }

    async fn list_members(&self, app_id: AppId, page: PageRequest) -> Result<Page<MemberRecord>, Error> {
        codec::page(
            &self.pool,
            query("SELECT COUNT(*) FROM memberships WHERE app_id = $1").bind(app_id.0),
            query(
                "SELECT m.app_id, m.user_id, m.role, m.created_at,
                        u.id, u.email, u.name, u.handle, u.password_hash, u.is_operator,
                        u.email_notifications, u.created_at, u.updated_at, u.version
                 FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.app_id = $1 ORDER BY u.email LIMIT $2 OFFSET $3",
            )
            .bind(app_id.0),
            page,
            member,
        )
        .await
    }

    async fn memberships_of(&self, user_id: UserId) -> Result<Vec<Membership>, Error> {
        let sql = "SELECT app_id, user_id, role, created_at FROM memberships WHERE user_id = $1 ORDER BY app_id";
        all(&self.pool, query(sql).bind(user_id.0), membership).await
    }

    async fn invite(&self, app_id: AppId, invite_id: InviteId) -> Result<Option<Invite>, Error> {
        let sql = concat!("SELECT ", invite_columns!(), " FROM invites WHERE id = $1 AND app_id = $2");
        one(&self.pool, query(sql).bind(invite_id.0).bind(app_id.0), invite).await
    }

    async fn invite_by_hash(&self, token_hash: &str) -> Result<Option<Invite>, Error> {
        let sql = concat!("SELECT ", invite_columns!(), " FROM invites WHERE token_hash = $1");
        one(&self.pool, query(sql).bind(token_hash), invite).await
    }

    async fn list_invites(&self, app_id: AppId, page: PageRequest) -> Result<Page<Invite>, Error> {
        codec::page(
            &self.pool,
            query("SELECT COUNT(*) FROM invites WHERE app_id = $1").bind(app_id.0),
            query(concat!(
                "SELECT ",
                invite_columns!(),
                " FROM invites WHERE app_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            ))
            .bind(app_id.0),
            page,
            invite,
        )
        .await
    }
}

/// Binds the seven app columns, in table order.
fn bind_app<'q>(q: PgQuery<'q>, a: &'q App) -> Result<PgQuery<'q>, Error> {
    Ok(q.bind(a.id.0)
        .bind(&a.name)
        .bind(json(&a.settings)?)
        .bind(a.created_by.0)
        .bind(ts(&a.created_at))
        .bind(ts(&a.updated_at))
        .bind(a.version))
}

/// `InsertApp`.
pub(crate) async fn insert_app(conn: &mut PgConnection, a: &App) -> Result<(), Error> {
    let sql = "INSERT INTO apps (id, name, settings, created_by, created_at, updated_at, version)
               VALUES ($1, $2, $3::json, $4, $5, $6, $7)";
    bind_app(query(sql), a)?.execute(conn).await.db()?;
    Ok(())
}

/// `UpdateApp`: compare-and-set on `version`.
pub(crate) async fn update_app(conn: &mut PgConnection, a: &App) -> Result<(), Error> {
    let sql = "UPDATE apps SET name = $2, settings = $3::json, created_by = $4, created_at = $5, updated_at = $6,
                   version = $7
               WHERE id = $1 AND version = $7 - 1";
    let changed = bind_app(query(sql), a)?.execute(&mut *conn).await.db()?.rows_affected();
    expect_cas(conn, changed, AppId::KIND, query("SELECT 1 FROM apps WHERE id = $1").bind(a.id.0)).await
}

/// `PutMembership`: inserts, or replaces the whole membership.
pub(crate) async fn put_membership(conn: &mut PgConnection, m: &Membership) -> Result<(), Error> {
    query(
        "INSERT INTO memberships (app_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (app_id, user_id) DO UPDATE SET role = excluded.role, created_at = excluded.created_at",
    )
    .bind(m.app_id.0)
    .bind(m.user_id.0)
    .bind(name_of(&m.role)?)
    .bind(ts(&m.created_at))
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

/// `DeleteMembership`: `not_found` when absent.
pub(crate) async fn delete_membership(conn: &mut PgConnection, app_id: AppId, user_id: UserId) -> Result<(), Error> {
    let deleted = query("DELETE FROM memberships WHERE app_id = $1 AND user_id = $2")
        .bind(app_id.0)
        .bind(user_id.0)
        .execute(conn)
        .await
        .db()?
        .rows_affected();
    if deleted == 0 {
        return Err(Error::NotFound("membership"));
    }
    Ok(())
}

/// `RequireAppAdmin`: locks the app's row first, in a statement of its own,
/// so the guards of one app run one after the other; the count that follows
/// is a new statement, whose `READ COMMITTED` snapshot sees every unit that
/// committed while this one waited for the lock (counting in the locking
/// statement would use the snapshot from before the wait).
async fn require_app_admin(conn: &mut PgConnection, app_id: AppId) -> Result<(), Error> {
    query("SELECT 1 FROM apps WHERE id = $1 FOR UPDATE").bind(app_id.0).execute(&mut *conn).await.db()?;
    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE app_id = $1 AND role = $2")
        .bind(app_id.0)
        .bind(name_of(&Role::AppAdmin)?)
        .fetch_one(&mut *conn)
        .await
        .db()?;
    if admins == 0 {
        return Err(ConflictReason::LastAppAdmin.into());
    }
    Ok(())
}

/// Binds the eleven invite columns, in [`invite_columns!`] order.
fn bind_invite<'q>(q: PgQuery<'q>, i: &'q Invite) -> Result<PgQuery<'q>, Error> {
    Ok(q.bind(i.id.0)
        .bind(i.app_id.0)
        .bind(i.email.as_str())
        .bind(name_of(&i.role)?)
        .bind(&i.token_hash)
        .bind(name_of(&i.state)?)
        .bind(i.invited_by.0)
        .bind(ts(&i.created_at))
        .bind(ts(&i.expires_at))
        .bind(i.accepted_by.map(|u| u.0))
        .bind(i.version))
}

/// `InsertInvite`.
pub(crate) async fn insert_invite(conn: &mut PgConnection, i: &Invite) -> Result<(), Error> {
    let sql =
        concat!("INSERT INTO invites (", invite_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
    bind_invite(query(sql), i)?.execute(conn).await.db()?;
    Ok(())
}

/// `UpdateInvite`: compare-and-set on `version`, within the invite's app.
pub(crate) async fn update_invite(conn: &mut PgConnection, i: &Invite) -> Result<(), Error> {
    let sql = "UPDATE invites SET email = $3, role = $4, token_hash = $5, state = $6, invited_by = $7,
                   created_at = $8, expires_at = $9, accepted_by = $10, version = $11
               WHERE id = $1 AND app_id = $2 AND version = $11 - 1";
    let changed = bind_invite(query(sql), i)?.execute(&mut *conn).await.db()?.rows_affected();
    let exists = query("SELECT 1 FROM invites WHERE id = $1 AND app_id = $2").bind(i.id.0).bind(i.app_id.0);
    expect_cas(conn, changed, InviteId::KIND, exists).await
}

/// Applies one app mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &AppMutation) -> Result<(), Error> {
    match mutation {
        AppMutation::InsertApp(a) => insert_app(conn, a).await,
        AppMutation::UpdateApp(a) => update_app(conn, a).await,
        AppMutation::PutMembership(m) => put_membership(conn, m).await,
        AppMutation::DeleteMembership { app_id, user_id } => delete_membership(conn, *app_id, *user_id).await,
        AppMutation::InsertInvite(i) => insert_invite(conn, i).await,
        AppMutation::UpdateInvite(i) => update_invite(conn, i).await,
        AppMutation::RequireAppAdmin { app_id } => require_app_admin(conn, *app_id).await,
    }
}
