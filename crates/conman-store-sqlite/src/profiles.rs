//! Runtime profiles: the `ProfileStore` reads and the profile, profile
//! revision, sealed secret, secrets key id, environment and changeset
//! override mutations (migration 0004).
//!
//! Invariants: a profile or revision row holds the entity's whole JSON
//! document, and its key columns (`app_id`, `name`, `version`, `number`)
//! are written from the same value, so they always agree; profile names are
//! unique per app and environment names per app (UNIQUE indexes, i.e.
//! `conflict`); profile lookups and updates are filtered by app id and
//! updates are compare-and-set on `version`. Sealed secrets are never
//! deleted except a changeset's own (its overrides are replaced whole);
//! `RewrapSecrets` updates a row only while its `key_id` is the expected
//! one, through one prepared statement reused for every row. The keyset
//! order of `all_secrets` is the `secrets` primary key: owner kind text,
//! owner id text (lower-case hyphenated, so text order is UUID byte order),
//! name (binary collation), revision.

use async_trait::async_trait;
use conman_core::domain::environment::Environment;
use conman_core::domain::runtime_profile::{ProfileOverride, ProfileRevision, RuntimeProfile};
use conman_core::ids::{AppId, ChangesetId, RuntimeProfileId};
use conman_core::ports::crypto::SealedSecret;
use conman_core::ports::store::{
    ConflictReason, Page, PageRequest, ProfileMutation, ProfileStore, SecretOwner, StoredSecret,
};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension as _};
use uuid::Uuid;

use crate::codec::{self, all, exists, flag, id, json, one, opt_id, ts, Cols, Db as _};
use crate::unit_of_work::expect_cas;
use crate::SqliteStore;

/// The `installation_meta` key of the secrets key id.
const SECRETS_KEY_ID: &str = "secrets_key_id";

macro_rules! secret_columns {
    () => {
        "owner_kind, owner_id, name, revision, app_id, format_version, key_id, wrap_nonce, wrapped_key,
         value_nonce, ciphertext, created_at"
    };
}

macro_rules! environment_columns {
    () => {
        "id, app_id, name, position, is_canonical, runtime_profile_id"
    };
}

fn profile(c: &Cols<'_, '_>) -> Result<RuntimeProfile, Error> {
    c.json(0)
}

fn profile_revision(c: &Cols<'_, '_>) -> Result<ProfileRevision, Error> {
    c.json(0)
}

fn profile_override(c: &Cols<'_, '_>) -> Result<ProfileOverride, Error> {
    c.json(0)
}

/// The `(owner_kind, owner_id)` columns of an owner.
fn owner_key(owner: SecretOwner) -> (&'static str, String) {
    match owner {
        SecretOwner::Changeset(cs) => ("changeset", id(cs.0)),
        SecretOwner::Profile(p) => ("profile", id(p.0)),
    }
}

fn secret(c: &Cols<'_, '_>) -> Result<StoredSecret, Error> {
    let owner_id: Uuid = c.id(1)?;
    let owner = match c.text(0)?.as_str() {
        "changeset" => SecretOwner::Changeset(ChangesetId(owner_id)),
        "profile" => SecretOwner::Profile(RuntimeProfileId(owner_id)),
        other => return Err(Error::internal(format!("stored secret owner kind {other:?} is unknown"))),
    };
    Ok(StoredSecret {
        owner,
        name: c.text(2)?,
        revision: c.count(3)?,
        app_id: c.id(4)?,
        sealed: SealedSecret {
            version: c.count(5)?,
            key_id: c.text(6)?,
            wrap_nonce: c.blob(7)?,
            wrapped_key: c.blob(8)?,
            value_nonce: c.blob(9)?,
            ciphertext: c.blob(10)?,
        },
        created_at: c.ts(11)?,
    })
}

fn environment(c: &Cols<'_, '_>) -> Result<Environment, Error> {
    Ok(Environment {
        id: c.id(0)?,
        app_id: c.id(1)?,
        name: c.text(2)?,
        position: c.count(3)?,
        is_canonical: c.flag(4)?,
        runtime_profile_id: c.opt_id(5)?,
    })
}

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn runtime_profile(&self, app_id: AppId, p: RuntimeProfileId) -> Result<Option<RuntimeProfile>, Error> {
        self.read(move |conn| {
            one(
                conn,
                "SELECT document FROM runtime_profiles WHERE id = ?1 AND app_id = ?2",
                [id(p.0), id(app_id.0)],
                profile,
            )
        })
        .await
    }

    async fn runtime_profile_by_name(&self, app_id: AppId, name: &str) -> Result<Option<RuntimeProfile>, Error> {
        let name = name.to_owned();
        self.read(move |conn| {
            one(
                conn,
                "SELECT document FROM runtime_profiles WHERE app_id = ?1 AND name = ?2",
                params![id(app_id.0), name],
                profile,
            )
        })
        .await
    }

    async fn list_runtime_profiles(&self, app_id: AppId, page: PageRequest) -> Result<Page<RuntimeProfile>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM runtime_profiles WHERE app_id = ?",
                "SELECT document FROM runtime_profiles WHERE app_id = ? ORDER BY name LIMIT ? OFFSET ?",
                vec![Value::Text(id(app_id.0))],
                page,
                profile,
            )
        })
        .await
    }

    async fn profile_revisions(&self, p: RuntimeProfileId, page: PageRequest) -> Result<Page<ProfileRevision>, Error> {
        self.read(move |conn| {
            codec::page(
                conn,
                "SELECT COUNT(*) FROM profile_revisions WHERE profile_id = ?",
                "SELECT document FROM profile_revisions WHERE profile_id = ? ORDER BY number DESC LIMIT ? OFFSET ?",
                vec![Value::Text(id(p.0))],
                page,
                profile_revision,
            )
        })
        .await
    }

    async fn profile_revision(&self, p: RuntimeProfileId, number: u32) -> Result<Option<ProfileRevision>, Error> {
        self.read(move |conn| {
            one(
                conn,
                "SELECT document FROM profile_revisions WHERE profile_id = ?1 AND number = ?2",
                params![id(p.0), number],
                profile_revision,
            )
        })
        .await
    }

    async fn secret(&self, owner: SecretOwner, name: &str, revision: u32) -> Result<Option<StoredSecret>, Error> {
        let (kind, owner_id) = owner_key(owner);
        let name = name.to_owned();
        self.read(move |conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    secret_columns!(),
                    " FROM secrets WHERE owner_kind = ?1 AND owner_id = ?2 AND name = ?3 AND revision = ?4"
                ),
                params![kind, owner_id, name, revision],
                secret,
            )
        })
        .await
    }

    async fn secrets_of(&self, owner: SecretOwner) -> Result<Vec<StoredSecret>, Error> {
        let (kind, owner_id) = owner_key(owner);
        self.read(move |conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    secret_columns!(),
                    " FROM secrets WHERE owner_kind = ?1 AND owner_id = ?2 ORDER BY name, revision"
                ),
                params![kind, owner_id],
                secret,
            )
        })
        .await
    }

    async fn all_secrets(
        &self,
        after: Option<(SecretOwner, String, u32)>,
        limit: u32,
    ) -> Result<Vec<StoredSecret>, Error> {
        self.read(move |conn| match after {
            None => all(
                conn,
                concat!(
                    "SELECT ",
                    secret_columns!(),
                    " FROM secrets ORDER BY owner_kind, owner_id, name, revision LIMIT ?1"
                ),
                [limit],
                secret,
            ),
            Some((owner, name, revision)) => {
                let (kind, owner_id) = owner_key(owner);
                all(
                    conn,
                    concat!(
                        "SELECT ",
                        secret_columns!(),
                        " FROM secrets WHERE (owner_kind, owner_id, name, revision) > (?1, ?2, ?3, ?4)
                          ORDER BY owner_kind, owner_id, name, revision LIMIT ?5"
                    ),
                    params![kind, owner_id, name, revision, limit],
                    secret,
                )
            }
        })
        .await
    }

    async fn secrets_key_id(&self) -> Result<Option<String>, Error> {
        self.read(stored_key_id).await
    }

    async fn environments(&self, app_id: AppId) -> Result<Vec<Environment>, Error> {
        self.read(move |conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    environment_columns!(),
                    " FROM environments WHERE app_id = ?1 ORDER BY position, id"
                ),
                [id(app_id.0)],
                environment,
            )
        })
        .await
    }

    async fn changeset_overrides(&self, changeset_id: ChangesetId) -> Result<Vec<ProfileOverride>, Error> {
        self.read(move |conn| {
            all(
                conn,
                "SELECT document FROM changeset_overrides WHERE changeset_id = ?1 ORDER BY position",
                [id(changeset_id.0)],
                profile_override,
            )
        })
        .await
    }
}

/// The recorded secrets key id, if any.
fn stored_key_id(conn: &Connection) -> Result<Option<String>, Error> {
    conn.prepare_cached("SELECT value FROM installation_meta WHERE key = ?1")
        .db()?
        .query_row([SECRETS_KEY_ID], |r| r.get(0))
        .optional()
        .db()
}

/// `InsertRuntimeProfile` (a taken name in the app: `conflict`).
pub(crate) fn insert_runtime_profile(conn: &Connection, p: &RuntimeProfile) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO runtime_profiles (id, app_id, name, document, created_at, updated_at, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![id(p.id.0), id(p.app_id.0), p.name, json(p)?, ts(&p.created_at), ts(&p.updated_at), p.version])
    .db()?;
    Ok(())
}

/// `UpdateRuntimeProfile`: compare-and-set on `version`, within the
/// profile's app (a rename onto a taken name: `conflict`).
pub(crate) fn update_runtime_profile(conn: &Connection, p: &RuntimeProfile) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE runtime_profiles SET name = ?3, document = ?4, updated_at = ?5, version = ?6
             WHERE id = ?1 AND app_id = ?2 AND version = ?6 - 1",
        )
        .db()?
        .execute(params![id(p.id.0), id(p.app_id.0), p.name, json(p)?, ts(&p.updated_at), p.version])
        .db()?;
    expect_cas(changed, RuntimeProfileId::KIND, || {
        exists(conn, "SELECT 1 FROM runtime_profiles WHERE id = ?1 AND app_id = ?2", [id(p.id.0), id(p.app_id.0)])
    })
}

/// `InsertProfileRevision` (a taken number: `conflict`).
pub(crate) fn insert_profile_revision(conn: &Connection, r: &ProfileRevision) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO profile_revisions (profile_id, number, document, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .db()?
    .execute(params![id(r.profile_id.0), r.number, json(r)?, ts(&r.created_at)])
    .db()?;
    Ok(())
}

/// `InsertSecret` (a taken (owner, name, revision): `conflict`).
pub(crate) fn insert_secret(conn: &Connection, s: &StoredSecret) -> Result<(), Error> {
    let (kind, owner_id) = owner_key(s.owner);
    conn.prepare_cached(concat!(
        "INSERT INTO secrets (",
        secret_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))
    .db()?
    .execute(params![
        kind,
        owner_id,
        s.name,
        s.revision,
        id(s.app_id.0),
        s.sealed.version,
        s.sealed.key_id,
        s.sealed.wrap_nonce,
        s.sealed.wrapped_key,
        s.sealed.value_nonce,
        s.sealed.ciphertext,
        ts(&s.created_at),
    ])
    .db()?;
    Ok(())
}

/// `DeleteChangesetSecrets`: every sealed value of one changeset.
pub(crate) fn delete_changeset_secrets(conn: &Connection, changeset_id: ChangesetId) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM secrets WHERE owner_kind = 'changeset' AND owner_id = ?1")
        .db()?
        .execute([id(changeset_id.0)])
        .db()?;
    Ok(())
}

/// `RewrapSecrets`: replaces the sealed fields of each row while it is
/// still wrapped by `from_key_id` (else `conflict`; an unknown row is
/// `not_found`). One statement is prepared for the whole batch.
pub(crate) fn rewrap_secrets(conn: &Connection, from_key_id: &str, secrets: &[StoredSecret]) -> Result<(), Error> {
    if secrets.is_empty() {
        return Ok(());
    }
    let mut update = conn
        .prepare_cached(
            "UPDATE secrets SET format_version = ?5, key_id = ?6, wrap_nonce = ?7, wrapped_key = ?8,
                value_nonce = ?9, ciphertext = ?10
             WHERE owner_kind = ?1 AND owner_id = ?2 AND name = ?3 AND revision = ?4 AND key_id = ?11",
        )
        .db()?;
    for s in secrets {
        let (kind, owner_id) = owner_key(s.owner);
        let changed = update
            .execute(params![
                kind,
                owner_id,
                s.name,
                s.revision,
                s.sealed.version,
                s.sealed.key_id,
                s.sealed.wrap_nonce,
                s.sealed.wrapped_key,
                s.sealed.value_nonce,
                s.sealed.ciphertext,
                from_key_id,
            ])
            .db()?;
        if changed == 0 {
            let known = exists(
                conn,
                "SELECT 1 FROM secrets WHERE owner_kind = ?1 AND owner_id = ?2 AND name = ?3 AND revision = ?4",
                params![kind, owner_id, s.name, s.revision],
            )?;
            return Err(if known { ConflictReason::KeyIdMismatch.into() } else { Error::NotFound("secret") });
        }
    }
    Ok(())
}

/// `SetSecretsKeyId`: compare-and-set of the recorded key id.
pub(crate) fn set_secrets_key_id(conn: &Connection, expected: Option<&str>, key_id: &str) -> Result<(), Error> {
    let current = stored_key_id(conn)?;
    if current.as_deref() != expected {
        return Err(ConflictReason::StaleKeyId.into());
    }
    conn.prepare_cached(
        "INSERT INTO installation_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .db()?
    .execute([SECRETS_KEY_ID, key_id])
    .db()?;
    Ok(())
}

/// `ReplaceEnvironments`: removes the app's environments missing from the
/// list, then writes every listed one under its id (updated in place when it
/// exists). Kept rows first take a provisional name (`~` and their id, which
/// no slug equals), so names may move between environments in one
/// replacement; duplicate names in the list are `conflict` (the index), as
/// is an id belonging to another app.
pub(crate) fn replace_environments(conn: &Connection, app_id: AppId, envs: &[Environment]) -> Result<(), Error> {
    let app = id(app_id.0);
    let keep: Vec<String> = envs.iter().map(|e| id(e.id.0)).collect();
    let keep_json = json(&keep)?;
    conn.prepare_cached("DELETE FROM environments WHERE app_id = ?1 AND id NOT IN (SELECT value FROM json_each(?2))")
        .db()?
        .execute([&app, &keep_json])
        .db()?;
    conn.prepare_cached("UPDATE environments SET name = '~' || id WHERE app_id = ?1").db()?.execute([&app]).db()?;
    let mut upsert = conn
        .prepare_cached(concat!(
            "INSERT INTO environments (",
            environment_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, position = excluded.position,
                is_canonical = excluded.is_canonical, runtime_profile_id = excluded.runtime_profile_id
             WHERE environments.app_id = excluded.app_id"
        ))
        .db()?;
    for e in envs {
        if e.app_id != app_id {
            return Err(Error::invalid("environments", "wrong_app", "an environment of another app was listed"));
        }
        let changed = upsert
            .execute(params![
                id(e.id.0),
                app,
                e.name,
                e.position,
                flag(e.is_canonical),
                opt_id(e.runtime_profile_id.map(|p| p.0)),
            ])
            .db()?;
        if changed == 0 {
            return Err(ConflictReason::EnvironmentOfAnotherApp.into());
        }
    }
    Ok(())
}

/// `PutChangesetOverrides`: replaces the changeset's whole list, in order.
pub(crate) fn put_changeset_overrides(
    conn: &Connection,
    changeset_id: ChangesetId,
    overrides: &[ProfileOverride],
) -> Result<(), Error> {
    let cs = id(changeset_id.0);
    conn.prepare_cached("DELETE FROM changeset_overrides WHERE changeset_id = ?1").db()?.execute([&cs]).db()?;
    let mut insert = conn
        .prepare_cached("INSERT INTO changeset_overrides (changeset_id, position, document) VALUES (?1, ?2, ?3)")
        .db()?;
    for (position, o) in overrides.iter().enumerate() {
        let position = i64::try_from(position).map_err(|_| Error::internal("too many overrides"))?;
        insert.execute(params![cs, position, json(o)?]).db()?;
    }
    Ok(())
}

/// Applies one profile mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &ProfileMutation) -> Result<(), Error> {
    match mutation {
        ProfileMutation::InsertRuntimeProfile(p) => insert_runtime_profile(conn, p),
        ProfileMutation::UpdateRuntimeProfile(p) => update_runtime_profile(conn, p),
        ProfileMutation::InsertProfileRevision(r) => insert_profile_revision(conn, r),
        ProfileMutation::InsertSecret(s) => insert_secret(conn, s),
        ProfileMutation::DeleteChangesetSecrets { changeset_id } => delete_changeset_secrets(conn, *changeset_id),
        ProfileMutation::RewrapSecrets { from_key_id, secrets } => rewrap_secrets(conn, from_key_id, secrets),
        ProfileMutation::SetSecretsKeyId { expected, key_id } => set_secrets_key_id(conn, expected.as_deref(), key_id),
        ProfileMutation::ReplaceEnvironments { app_id, environments } => {
            replace_environments(conn, *app_id, environments)
        }
        ProfileMutation::PutChangesetOverrides { changeset_id, overrides } => {
            put_changeset_overrides(conn, *changeset_id, overrides)
        }
    }
}
