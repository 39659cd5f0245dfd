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
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use crate::codec::{self, all, exists, id, inserted, json, name_of, one, opt_id, ts, Cols, Db as _};
use crate::unit_of_work::expect_cas;
use crate::users::user_at;
use crate::SqliteStore;

macro_rules! app_columns {
    () => {
        "a.id, a.name, a.settings, a.created_by, a.created_at, a.updated_at, a.version"
    };
}

macro_rules! invite_columns {
    () => {
        "id, app_id, email, role, token_hash, state, invited_by, created_at, expires_at, accepted_by, version"
    };
}

fn app(c: &Cols<'_, '_>) -> Result<App, Error> {
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

fn membership(c: &Cols<'_, '_>) -> Result<Membership, Error> {
    Ok(Membership { app_id: c.id(0)?, user_id: c.id(1)?, role: c.named(2)?, created_at: c.ts(3)? })
}

fn member(c: &Cols<'_, '_>) -> Result<MemberRecord, Error> {
    Ok(MemberRecord { membership: membership(c)?, user: user_at(c, 4)? })
}

fn invite(c: &Cols<'_, '_>) -> Result<Invite, Error> {
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
impl AppStore for SqliteStore {
    async fn app(&self, app_id: AppId) -> Result<Option<App>, Error> {
        self.read(move |conn| {
            one(conn, concat!("SELECT ", app_columns!(), " FROM apps a WHERE a.id = ?1"), [id(app_id.0)], app)
        })
        .await
    }

    async fn app_by_name(&self, name: &str) -> Result<Option<App>, Error> {
        let name = name.to_owned();
        self.read(move |conn| {
            one(conn, concat!("SELECT ", app_columns!(), " FROM apps a WHERE a.name = ?1"), [name], app)
        })
        .await
    }

    async fn list_apps_for_user(&self, user_id: UserId, page: PageRequest) -> Result<Page<App>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM memberships WHERE user_id = ?",
                concat!(
                    "SELECT ",
                    app_columns!(),
                    " FROM memberships m JOIN apps a ON a.id = m.app_id WHERE m.user_id = ?
                      ORDER BY a.name LIMIT ? OFFSET ?"
                ),
                vec![Value::Text(id(user_id.0))],
                page,
                app,
            )
        })
        .await
    }

    async fn list_all_apps(&self, page: PageRequest) -> Result<Page<App>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM apps",
                concat!("SELECT ", app_columns!(), " FROM apps a ORDER BY a.name LIMIT ? OFFSET ?"),
                Vec::new(),
                page,
                app,
            )
        })
        .await
    }

    async fn membership(&self, app_id: AppId, user_id: UserId) -> Result<Option<Membership>, Error> {
        self.read(move |conn| {
            one(
                conn,
                "SELECT app_id, user_id, role, created_at FROM memberships WHERE app_id = ?1 AND user_id = ?2",
                [id(app_id.0), id(user_id.0)],
                membership,
            )
        })
        .await
    }

    async fn list_members(&self, app_id: AppId, page: PageRequest) -> Result<Page<MemberRecord>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM memberships WHERE app_id = ?",
                "SELECT m.app_id, m.user_id, m.role, m.created_at,
                        u.id, u.email, u.name, u.handle, u.password_hash, u.is_operator,
                        u.email_notifications, u.created_at, u.updated_at, u.version
                 FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.app_id = ? ORDER BY u.email LIMIT ? OFFSET ?",
                vec![Value::Text(id(app_id.0))],
                page,
                member,
            )
        })
        .await
    }

    async fn memberships_of(&self, user_id: UserId) -> Result<Vec<Membership>, Error> {
        self.read(move |conn| {
            all(
                conn,
                "SELECT app_id, user_id, role, created_at FROM memberships WHERE user_id = ?1 ORDER BY app_id",
                [id(user_id.0)],
                membership,
            )
        })
        .await
    }

    async fn invite(&self, app_id: AppId, invite_id: InviteId) -> Result<Option<Invite>, Error> {
        self.read(move |conn| {
            one(
                conn,
                concat!("SELECT ", invite_columns!(), " FROM invites WHERE id = ?1 AND app_id = ?2"),
                [id(invite_id.0), id(app_id.0)],
                invite,
            )
        })
        .await
    }

    async fn invite_by_hash(&self, token_hash: &str) -> Result<Option<Invite>, Error> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            one(
                conn,
                concat!("SELECT ", invite_columns!(), " FROM invites WHERE token_hash = ?1"),
                [token_hash],
                invite,
            )
        })
        .await
    }

    async fn list_invites(&self, app_id: AppId, page: PageRequest) -> Result<Page<Invite>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM invites WHERE app_id = ?",
                concat!(
                    "SELECT ",
                    invite_columns!(),
                    " FROM invites WHERE app_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
                ),
                vec![Value::Text(id(app_id.0))],
                page,
                invite,
            )
        })
        .await
    }
}

/// `InsertApp`.
pub(crate) fn insert_app(conn: &Connection, a: &App) -> Result<(), Error> {
    let rows = conn
        .prepare_cached(
            "INSERT INTO apps (id, name, settings, created_by, created_at, updated_at, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
        )
        .db()?
        .execute(params![
            id(a.id.0),
            a.name,
            json(&a.settings)?,
            id(a.created_by.0),
            ts(&a.created_at),
            ts(&a.updated_at),
            a.version
        ])
        .db()?;
    inserted(rows, conman_core::ports::store::Record::App)
}

/// `UpdateApp`: compare-and-set on `version`.
pub(crate) fn update_app(conn: &Connection, a: &App) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE apps SET name = ?2, settings = ?3, created_by = ?4, created_at = ?5, updated_at = ?6,
                version = ?7
             WHERE id = ?1 AND version = ?7 - 1",
        )
        .db()?
        .execute(params![
            id(a.id.0),
            a.name,
            json(&a.settings)?,
            id(a.created_by.0),
            ts(&a.created_at),
            ts(&a.updated_at),
            a.version
        ])
        .db()?;
    expect_cas(changed, AppId::KIND, || exists(conn, "SELECT 1 FROM apps WHERE id = ?1", [id(a.id.0)]))
}

/// `PutMembership`: inserts, or replaces the whole membership.
pub(crate) fn put_membership(conn: &Connection, m: &Membership) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO memberships (app_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (app_id, user_id) DO UPDATE SET role = excluded.role, created_at = excluded.created_at",
    )
    .db()?
    .execute(params![id(m.app_id.0), id(m.user_id.0), name_of(&m.role)?, ts(&m.created_at)])
    .db()?;
    Ok(())
}

/// `DeleteMembership`: `not_found` when absent.
pub(crate) fn delete_membership(conn: &Connection, app_id: AppId, user_id: UserId) -> Result<(), Error> {
    let deleted = conn
        .prepare_cached("DELETE FROM memberships WHERE app_id = ?1 AND user_id = ?2")
        .db()?
        .execute(params![id(app_id.0), id(user_id.0)])
        .db()?;
    if deleted == 0 {
        return Err(Error::NotFound("membership"));
    }
    Ok(())
}

/// `RequireAppAdmin`: the unit's transaction is the only writer
/// (`BEGIN IMMEDIATE`), so counting after the unit's earlier mutations is
/// enough.
fn require_app_admin(conn: &Connection, app_id: AppId) -> Result<(), Error> {
    let admins: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM memberships WHERE app_id = ?1 AND role = ?2")
        .db()?
        .query_row(params![id(app_id.0), name_of(&Role::AppAdmin)?], |row| row.get(0))
        .db()?;
    if admins == 0 {
        return Err(ConflictReason::LastAppAdmin.into());
    }
    Ok(())
}

/// `InsertInvite`.
pub(crate) fn insert_invite(conn: &Connection, i: &Invite) -> Result<(), Error> {
    conn.prepare_cached(concat!(
        "INSERT INTO invites (",
        invite_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))
    .db()?
    .execute(params![
        id(i.id.0),
        id(i.app_id.0),
        i.email.as_str(),
        name_of(&i.role)?,
        i.token_hash,
        name_of(&i.state)?,
        id(i.invited_by.0),
        ts(&i.created_at),
        ts(&i.expires_at),
        opt_id(i.accepted_by.map(|u| u.0)),
        i.version,
    ])
    .db()?;
    Ok(())
}

/// `UpdateInvite`: compare-and-set on `version`, within the invite's app.
pub(crate) fn update_invite(conn: &Connection, i: &Invite) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE invites SET email = ?3, role = ?4, token_hash = ?5, state = ?6, invited_by = ?7,
                created_at = ?8, expires_at = ?9, accepted_by = ?10, version = ?11
             WHERE id = ?1 AND app_id = ?2 AND version = ?11 - 1",
        )
        .db()?
        .execute(params![
            id(i.id.0),
            id(i.app_id.0),
            i.email.as_str(),
            name_of(&i.role)?,
            i.token_hash,
            name_of(&i.state)?,
            id(i.invited_by.0),
            ts(&i.created_at),
            ts(&i.expires_at),
            opt_id(i.accepted_by.map(|u| u.0)),
            i.version,
        ])
        .db()?;
    expect_cas(changed, InviteId::KIND, || {
        exists(conn, "SELECT 1 FROM invites WHERE id = ?1 AND app_id = ?2", [id(i.id.0), id(i.app_id.0)])
    })
}

/// Applies one app mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &AppMutation) -> Result<(), Error> {
    match mutation {
        AppMutation::InsertApp(a) => insert_app(conn, a),
        AppMutation::UpdateApp(a) => update_app(conn, a),
        AppMutation::PutMembership(m) => put_membership(conn, m),
        AppMutation::DeleteMembership { app_id, user_id } => delete_membership(conn, *app_id, *user_id),
        AppMutation::InsertInvite(i) => insert_invite(conn, i),
        AppMutation::UpdateInvite(i) => update_invite(conn, i),
        AppMutation::RequireAppAdmin { app_id } => require_app_admin(conn, *app_id),
    }
}
