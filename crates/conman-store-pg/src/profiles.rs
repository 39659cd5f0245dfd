//! Runtime profiles: the `ProfileStore` reads and the profile, revision,
//! sealed-secret, secrets-key-id, environment and changeset-override
//! mutations (SPEC §2.5, §2.6).
//!
//! Invariants:
//! - A profile is stored whole as a JSON document; its `app_id`, `name` and
//!   `version` columns are written from the same value in the same
//!   statement, so they always equal the document's. Names are unique per
//!   app (`runtime_profiles_name_key`, a `conflict`); an update applies only
//!   over the version before it, within the profile's app.
//! - Profile revisions are append-only: a number exists once per profile
//!   (`profile_revisions_number_key`) and is never changed.
//! - Sealed secrets are keyed by (owner kind, owner id, name, revision) and
//!   are never deleted, except every secret of a changeset at once
//!   (`DeleteChangesetSecrets`, when its overrides are replaced).
//!   `RewrapSecrets` replaces only the sealed fields (never the app, the key
//!   or `created_at`), in one statement whatever the number of rows (the
//!   rows travel as arrays and are joined with `UNNEST`), and only on rows
//!   still wrapped by `from_key_id`: unless every given row was rewrapped,
//!   the unit fails — `not_found` when some row does not exist, `conflict`
//!   otherwise (wrapped by another key, or named twice) — and its
//!   transaction rolls back, so a rotation never half-applies.
//! - `all_secrets` pages by key in the documented order (owner kind as
//!   text, owner id, name, revision); the key's columns are `COLLATE "C"`
//!   and `uuid`, so Postgres orders them by bytes, like SQLite and Rust.
//! - The secrets key id is one row of `installation_meta`, changed only by a
//!   compare-and-set against the value the caller saw (`conflict` if it
//!   moved).
//! - `ReplaceEnvironments` makes the app's list exactly the given one: rows
//!   not in it are deleted, the others upserted by id; an id belonging to
//!   another app is a `conflict`, as is a name taken twice (the name key is
//!   checked at the end of the statement, so names may be swapped).
//! - `PutChangesetOverrides` replaces the changeset's whole list, kept in
//!   the given order.

use async_trait::async_trait;
use conman_core::domain::environment::Environment;
use conman_core::domain::runtime_profile::overrides::ProfileOverride;
use conman_core::domain::runtime_profile::revision::ProfileRevision;
use conman_core::domain::runtime_profile::RuntimeProfile;
use conman_core::ids::{AppId, ChangesetId, RuntimeProfileId};
use conman_core::ports::crypto::SealedSecret;
use conman_core::ports::store::{
    ConflictReason, Page, PageRequest, ProfileMutation, ProfileStore, SecretOwner, StoredSecret,
};
use conman_core::Error;
use sqlx::{query, PgConnection, Row as _};
use uuid::Uuid;

use crate::codec::{all, json, one, page, ts, Cols, Db as _};
use crate::unit_of_work::expect_cas;
use crate::PgStore;

macro_rules! secret_columns {
    () => {
        "owner_kind, owner_id, name, revision, app_id, format_version, key_id, wrap_nonce, wrapped_key, value_nonce,
         ciphertext, created_at"
    };
}

macro_rules! revision_columns {
    () => {
        "profile_id, number, document::text, author, created_at, reason::text"
    };
}

macro_rules! environment_columns {
    () => {
        "id, app_id, name, position, is_canonical, runtime_profile_id"
    };
}

/// The `installation_meta` key of the secrets key id.
const SECRETS_KEY_ID: &str = "secrets_key_id";

/// What a missing secret is called in `not_found`.
const SECRET_KIND: &str = "secret";

/// An owner as its key columns: (kind as text, id).
fn owner_key(owner: SecretOwner) -> (&'static str, Uuid) {
    match owner {
        SecretOwner::Profile(id) => ("profile", id.0),
        SecretOwner::Changeset(id) => ("changeset", id.0),
    }
}

/// A `u32` count as a `bigint`.
fn big(n: u32) -> i64 {
    i64::from(n)
}

fn profile(c: &Cols<'_>) -> Result<RuntimeProfile, Error> {
    c.json(0)
}

fn revision(c: &Cols<'_>) -> Result<ProfileRevision, Error> {
    Ok(ProfileRevision {
        profile_id: c.id(0)?,
        number: c.count(1)?,
        document: c.json(2)?,
        author: c.id(3)?,
        created_at: c.ts(4)?,
        reason: c.json(5)?,
    })
}

fn secret(c: &Cols<'_>) -> Result<StoredSecret, Error> {
    let owner_id: Uuid = c.id(1)?;
    let owner = match c.text(0)?.as_str() {
        "profile" => SecretOwner::Profile(RuntimeProfileId::from(owner_id)),
        "changeset" => SecretOwner::Changeset(ChangesetId::from(owner_id)),
        other => return Err(Error::internal(format!("column owner_kind holds an unknown kind: {other}"))),
    };
    let version = c.small(5)?;
    Ok(StoredSecret {
        app_id: c.id(4)?,
        owner,
        name: c.text(2)?,
        revision: c.count(3)?,
        sealed: SealedSecret {
            version: u8::try_from(version)
                .map_err(|_| Error::internal(format!("column format_version is out of range: {version}")))?,
            key_id: c.text(6)?,
            wrap_nonce: c.bytes(7)?,
            wrapped_key: c.bytes(8)?,
            value_nonce: c.bytes(9)?,
            ciphertext: c.bytes(10)?,
        },
        created_at: c.ts(11)?,
    })
}

fn environment(c: &Cols<'_>) -> Result<Environment, Error> {
    Ok(Environment {
        id: c.id(0)?,
        app_id: c.id(1)?,
        name: c.text(2)?,
        position: c.count(3)?,
        is_canonical: c.flag(4)?,
        runtime_profile_id: c.opt_id(5)?,
    })
}

fn override_doc(c: &Cols<'_>) -> Result<ProfileOverride, Error> {
    c.json(0)
}

#[async_trait]
impl ProfileStore for PgStore {
    async fn runtime_profile(&self, app_id: AppId, id: RuntimeProfileId) -> Result<Option<RuntimeProfile>, Error> {
        let sql = "SELECT document::text FROM runtime_profiles WHERE id = $1 AND app_id = $2";
        one(&self.pool, query(sql).bind(id.0).bind(app_id.0), profile).await
    }

    async fn runtime_profile_by_name(&self, app_id: AppId, name: &str) -> Result<Option<RuntimeProfile>, Error> {
        let sql = "SELECT document::text FROM runtime_profiles WHERE app_id = $1 AND name = $2";
        one(&self.pool, query(sql).bind(app_id.0).bind(name), profile).await
    }

    async fn list_runtime_profiles(&self, app_id: AppId, req: PageRequest) -> Result<Page<RuntimeProfile>, Error> {
        let count = query("SELECT COUNT(*) FROM runtime_profiles WHERE app_id = $1").bind(app_id.0);
        let list =
            query("SELECT document::text FROM runtime_profiles WHERE app_id = $1 ORDER BY name, id LIMIT $2 OFFSET $3")
                .bind(app_id.0);
        page(&self.pool, count, list, req, profile).await
    }

    async fn profile_revisions(&self, id: RuntimeProfileId, req: PageRequest) -> Result<Page<ProfileRevision>, Error> {
        let count = query("SELECT COUNT(*) FROM profile_revisions WHERE profile_id = $1").bind(id.0);
        let sql = concat!(
            "SELECT ",
            revision_columns!(),
            " FROM profile_revisions WHERE profile_id = $1 ORDER BY number DESC LIMIT $2 OFFSET $3"
        );
        page(&self.pool, count, query(sql).bind(id.0), req, revision).await
    }

    async fn profile_revision(&self, id: RuntimeProfileId, number: u32) -> Result<Option<ProfileRevision>, Error> {
        let sql =
            concat!("SELECT ", revision_columns!(), " FROM profile_revisions WHERE profile_id = $1 AND number = $2");
        one(&self.pool, query(sql).bind(id.0).bind(big(number)), revision).await
    }

    async fn secret(&self, owner: SecretOwner, name: &str, revision: u32) -> Result<Option<StoredSecret>, Error> {
        let (kind, owner_id) = owner_key(owner);
        let sql = concat!(
            "SELECT ",
            secret_columns!(),
            " FROM secrets WHERE owner_kind = $1 AND owner_id = $2 AND name = $3 AND revision = $4"
        );
        one(&self.pool, query(sql).bind(kind).bind(owner_id).bind(name).bind(big(revision)), secret).await
    }

    async fn secrets_of(&self, owner: SecretOwner) -> Result<Vec<StoredSecret>, Error> {
        let (kind, owner_id) = owner_key(owner);
        let sql = concat!(
            "SELECT ",
            secret_columns!(),
            " FROM secrets WHERE owner_kind = $1 AND owner_id = $2 ORDER BY name, revision"
        );
        all(&self.pool, query(sql).bind(kind).bind(owner_id), secret).await
    }

    async fn all_secrets(
        &self,
        after: Option<(SecretOwner, String, u32)>,
        limit: u32,
    ) -> Result<Vec<StoredSecret>, Error> {
        let limit = big(limit);
        match after {
            None => {
                let sql = concat!(
                    "SELECT ",
                    secret_columns!(),
                    " FROM secrets ORDER BY owner_kind, owner_id, name, revision LIMIT $1"
                );
                all(&self.pool, query(sql).bind(limit), secret).await
            }
            Some((owner, name, revision)) => {
                let (kind, owner_id) = owner_key(owner);
                // A row comparison over the key, so the walk starts with one
                // seek of the primary key's index.
                let sql = concat!(
                    "SELECT ",
                    secret_columns!(),
                    " FROM secrets WHERE (owner_kind, owner_id, name, revision) > ($1, $2, $3, $4)
                     ORDER BY owner_kind, owner_id, name, revision LIMIT $5"
                );
                let q = query(sql).bind(kind).bind(owner_id).bind(name).bind(big(revision)).bind(limit);
                all(&self.pool, q, secret).await
            }
        }
    }

    async fn secrets_key_id(&self) -> Result<Option<String>, Error> {
        let row = query("SELECT value FROM installation_meta WHERE key = $1")
            .bind(SECRETS_KEY_ID)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.map(|r| r.try_get::<String, _>(0).db()).transpose()
    }

    async fn environments(&self, app_id: AppId) -> Result<Vec<Environment>, Error> {
        let sql =
            concat!("SELECT ", environment_columns!(), " FROM environments WHERE app_id = $1 ORDER BY position, name");
        all(&self.pool, query(sql).bind(app_id.0), environment).await
    }

    async fn changeset_overrides(&self, changeset_id: ChangesetId) -> Result<Vec<ProfileOverride>, Error> {
        let sql = "SELECT document::text FROM changeset_overrides WHERE changeset_id = $1 ORDER BY position";
        all(&self.pool, query(sql).bind(changeset_id.0), override_doc).await
    }
}

/// `InsertRuntimeProfile`: a taken name in the app is a conflict.
pub(crate) async fn insert_runtime_profile(conn: &mut PgConnection, p: &RuntimeProfile) -> Result<(), Error> {
    let sql = "INSERT INTO runtime_profiles (id, app_id, name, document, version) VALUES ($1, $2, $3, $4::json, $5)";
    query(sql).bind(p.id.0).bind(p.app_id.0).bind(&p.name).bind(json(p)?).bind(p.version).execute(conn).await.db()?;
    Ok(())
}

/// `UpdateRuntimeProfile`: compare-and-set on `version`, within the
/// profile's app.
pub(crate) async fn update_runtime_profile(conn: &mut PgConnection, p: &RuntimeProfile) -> Result<(), Error> {
    let sql = "UPDATE runtime_profiles SET name = $3, document = $4::json, version = $5
               WHERE id = $1 AND app_id = $2 AND version = $5 - 1";
    let changed = query(sql)
        .bind(p.id.0)
        .bind(p.app_id.0)
        .bind(&p.name)
        .bind(json(p)?)
        .bind(p.version)
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    let exists = query("SELECT 1 FROM runtime_profiles WHERE id = $1 AND app_id = $2").bind(p.id.0).bind(p.app_id.0);
    expect_cas(conn, changed, RuntimeProfileId::KIND, exists).await
}

/// `InsertProfileRevision`: a number that exists is a conflict.
pub(crate) async fn insert_profile_revision(conn: &mut PgConnection, r: &ProfileRevision) -> Result<(), Error> {
    let sql = "INSERT INTO profile_revisions (profile_id, number, document, author, created_at, reason)
               VALUES ($1, $2, $3::json, $4, $5, $6::json)";
    query(sql)
        .bind(r.profile_id.0)
        .bind(big(r.number))
        .bind(json(&r.document)?)
        .bind(r.author.0)
        .bind(ts(&r.created_at))
        .bind(json(&r.reason)?)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `InsertSecret`: an existing (owner, name, revision) is a conflict.
pub(crate) async fn insert_secret(conn: &mut PgConnection, s: &StoredSecret) -> Result<(), Error> {
    let (kind, owner_id) = owner_key(s.owner);
    let sql = concat!(
        "INSERT INTO secrets (",
        secret_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    query(sql)
        .bind(kind)
        .bind(owner_id)
        .bind(&s.name)
        .bind(big(s.revision))
        .bind(s.app_id.0)
        .bind(i16::from(s.sealed.version))
        .bind(&s.sealed.key_id)
        .bind(&s.sealed.wrap_nonce)
        .bind(&s.sealed.wrapped_key)
        .bind(&s.sealed.value_nonce)
        .bind(&s.sealed.ciphertext)
        .bind(ts(&s.created_at))
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `DeleteChangesetSecrets`: every sealed value a changeset carries.
pub(crate) async fn delete_changeset_secrets(conn: &mut PgConnection, changeset_id: ChangesetId) -> Result<(), Error> {
    query("DELETE FROM secrets WHERE owner_kind = 'changeset' AND owner_id = $1")
        .bind(changeset_id.0)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `RewrapSecrets`: one statement for the whole batch. The rows travel as
/// parallel arrays; the `UPDATE` touches only rows still wrapped by
/// `from_key_id`, and the same statement counts how many of the given keys
/// exist at all, so a shortfall is told apart without another round trip:
/// some key missing is `not_found`, otherwise `conflict`.
pub(crate) async fn rewrap_secrets(
    conn: &mut PgConnection,
    from_key_id: &str,
    secrets: &[StoredSecret],
) -> Result<(), Error> {
    if secrets.is_empty() {
        return Ok(());
    }
    let n = secrets.len();
    let mut kinds = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut revisions = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut key_ids = Vec::with_capacity(n);
    let mut wrap_nonces = Vec::with_capacity(n);
    let mut wrapped_keys = Vec::with_capacity(n);
    let mut value_nonces = Vec::with_capacity(n);
    let mut ciphertexts = Vec::with_capacity(n);
    for s in secrets {
        let (kind, owner_id) = owner_key(s.owner);
        kinds.push(kind);
        owners.push(owner_id);
        names.push(s.name.as_str());
        revisions.push(big(s.revision));
        versions.push(i16::from(s.sealed.version));
        key_ids.push(s.sealed.key_id.as_str());
        wrap_nonces.push(s.sealed.wrap_nonce.as_slice());
        wrapped_keys.push(s.sealed.wrapped_key.as_slice());
        value_nonces.push(s.sealed.value_nonce.as_slice());
        ciphertexts.push(s.sealed.ciphertext.as_slice());
    }
    // The `existing` count reads the statement's snapshot (before the
    // update), which is what "does the row exist" asks.
    let sql = "WITH input AS (
                   SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::bigint[], $5::smallint[], $6::text[],
                                        $7::bytea[], $8::bytea[], $9::bytea[], $10::bytea[])
                       AS i (owner_kind, owner_id, name, revision, format_version, key_id, wrap_nonce, wrapped_key,
                             value_nonce, ciphertext)
               ), updated AS (
                   UPDATE secrets s
                   SET format_version = i.format_version, key_id = i.key_id, wrap_nonce = i.wrap_nonce,
                       wrapped_key = i.wrapped_key, value_nonce = i.value_nonce, ciphertext = i.ciphertext
                   FROM input i
                   WHERE s.owner_kind = i.owner_kind AND s.owner_id = i.owner_id AND s.name = i.name
                     AND s.revision = i.revision AND s.key_id = $11
                   RETURNING 1
               )
               SELECT (SELECT COUNT(*) FROM updated),
                      (SELECT COUNT(*) FROM input i JOIN secrets s
                         ON s.owner_kind = i.owner_kind AND s.owner_id = i.owner_id AND s.name = i.name
                        AND s.revision = i.revision)";
    let row = query(sql)
        .bind(&kinds)
        .bind(&owners)
        .bind(&names)
        .bind(&revisions)
        .bind(&versions)
        .bind(&key_ids)
        .bind(&wrap_nonces)
        .bind(&wrapped_keys)
        .bind(&value_nonces)
        .bind(&ciphertexts)
        .bind(from_key_id)
        .fetch_one(conn)
        .await
        .db()?;
    let updated: i64 = row.try_get(0).db()?;
    let existing: i64 = row.try_get(1).db()?;
    let given = i64::try_from(n).unwrap_or(i64::MAX);
    if updated == given {
        Ok(())
    } else if existing < given {
        Err(Error::NotFound(SECRET_KIND))
    } else {
        Err(ConflictReason::KeyIdMismatch.into())
    }
}

/// `SetSecretsKeyId`: compare-and-set against `expected` (`None`: no key id
/// recorded yet).
pub(crate) async fn set_secrets_key_id(
    conn: &mut PgConnection,
    expected: Option<&str>,
    key_id: &str,
) -> Result<(), Error> {
    let changed = match expected {
        None => query("INSERT INTO installation_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(SECRETS_KEY_ID)
            .bind(key_id)
            .execute(conn)
            .await
            .db()?
            .rows_affected(),
        Some(expected) => query("UPDATE installation_meta SET value = $2 WHERE key = $1 AND value = $3")
            .bind(SECRETS_KEY_ID)
            .bind(key_id)
            .bind(expected)
            .execute(conn)
            .await
            .db()?
            .rows_affected(),
    };
    if changed == 1 {
        Ok(())
    } else {
        Err(ConflictReason::StaleKeyId.into())
    }
}

/// `ReplaceEnvironments`: deletes the app's environments missing from the
/// list, then upserts the list by id in one statement. An id held by
/// another app matches no row to update, which the row count reveals.
pub(crate) async fn replace_environments(
    conn: &mut PgConnection,
    app_id: AppId,
    environments: &[Environment],
) -> Result<(), Error> {
    let ids: Vec<Uuid> = environments.iter().map(|e| e.id.0).collect();
    query("DELETE FROM environments WHERE app_id = $1 AND id <> ALL($2::uuid[])")
        .bind(app_id.0)
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .db()?;
    if environments.is_empty() {
        return Ok(());
    }
    if environments.iter().any(|e| e.app_id != app_id) {
        return Err(ConflictReason::EnvironmentOfAnotherApp.into());
    }
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    let positions: Vec<i64> = environments.iter().map(|e| big(e.position)).collect();
    let canonical: Vec<bool> = environments.iter().map(|e| e.is_canonical).collect();
    let profiles: Vec<Option<Uuid>> = environments.iter().map(|e| e.runtime_profile_id.map(|p| p.0)).collect();
    let sql = "INSERT INTO environments (id, app_id, name, position, is_canonical, runtime_profile_id)
               SELECT i.id, $1, i.name, i.position, i.is_canonical, i.runtime_profile_id
               FROM UNNEST($2::uuid[], $3::text[], $4::bigint[], $5::boolean[], $6::uuid[])
                   AS i (id, name, position, is_canonical, runtime_profile_id)
               ON CONFLICT (id) DO UPDATE
               SET name = EXCLUDED.name, position = EXCLUDED.position, is_canonical = EXCLUDED.is_canonical,
                   runtime_profile_id = EXCLUDED.runtime_profile_id
               WHERE environments.app_id = EXCLUDED.app_id";
    let changed = query(sql)
        .bind(app_id.0)
        .bind(&ids)
        .bind(&names)
        .bind(&positions)
        .bind(&canonical)
        .bind(&profiles)
        .execute(conn)
        .await
        .db()?
        .rows_affected();
    if usize::try_from(changed).is_ok_and(|changed| changed == environments.len()) {
        Ok(())
    } else {
        Err(ConflictReason::EnvironmentOfAnotherApp.into())
    }
}

/// `PutChangesetOverrides`: the changeset's list becomes `overrides`, in
/// order (positions from 0).
pub(crate) async fn put_changeset_overrides(
    conn: &mut PgConnection,
    changeset_id: ChangesetId,
    overrides: &[ProfileOverride],
) -> Result<(), Error> {
    query("DELETE FROM changeset_overrides WHERE changeset_id = $1")
        .bind(changeset_id.0)
        .execute(&mut *conn)
        .await
        .db()?;
    if overrides.is_empty() {
        return Ok(());
    }
    let documents = overrides.iter().map(json).collect::<Result<Vec<String>, Error>>()?;
    let sql = "INSERT INTO changeset_overrides (changeset_id, position, document)
               SELECT $1, d.ordinality - 1, d.document::json
               FROM UNNEST($2::text[]) WITH ORDINALITY AS d (document, ordinality)";
    query(sql).bind(changeset_id.0).bind(&documents).execute(conn).await.db()?;
    Ok(())
}

/// Applies one profile mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &ProfileMutation) -> Result<(), Error> {
    match mutation {
        ProfileMutation::InsertRuntimeProfile(p) => insert_runtime_profile(conn, p).await,
        ProfileMutation::UpdateRuntimeProfile(p) => update_runtime_profile(conn, p).await,
        ProfileMutation::InsertProfileRevision(r) => insert_profile_revision(conn, r).await,
        ProfileMutation::InsertSecret(s) => insert_secret(conn, s).await,
        ProfileMutation::DeleteChangesetSecrets { changeset_id } => delete_changeset_secrets(conn, *changeset_id).await,
        ProfileMutation::RewrapSecrets { from_key_id, secrets } => rewrap_secrets(conn, from_key_id, secrets).await,
        ProfileMutation::SetSecretsKeyId { expected, key_id } => {
            set_secrets_key_id(conn, expected.as_deref(), key_id).await
        }
        ProfileMutation::ReplaceEnvironments { app_id, environments } => {
            replace_environments(conn, *app_id, environments).await
        }
        ProfileMutation::PutChangesetOverrides { changeset_id, overrides } => {
            put_changeset_overrides(conn, *changeset_id, overrides).await
        }
    }
}
