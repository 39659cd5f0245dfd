//! Ref intents: the `IntentStore` reads and the intent mutations
//! (decision 0008).
//!
//! Invariant: a pending intent claims each of its refs in `intent_claims`,
//! whose row also remembers the value the last applied intent left the ref
//! at (`last_value`: sha, '' = absent, NULL = unknown). `RecordIntent`
//! refuses a claimed ref with [`ConflictReason::RefBusy`] and a move whose
//! `from` is not a known `last_value` with [`ConflictReason::RefMoved`]
//! (one upsert whose condition is both checks; when it changes nothing the
//! row says which); `AdoptRefs` skips the memory check; `CompleteIntent`
//! keeps the first outcome, frees the claims and sets `last_value`.

use async_trait::async_trait;
use conman_core::domain::Timestamp;
use conman_core::ids::{AppId, IntentId};
use conman_core::ports::git::{RefMove, Sha};
use conman_core::ports::store::{ConflictReason, Intent, IntentMutation, IntentOutcome, IntentStore};
use conman_core::Error;
use rusqlite::{params, Connection};

use crate::codec::{self, exists, id, json, ts, Cols, Db as _};
use crate::SqliteStore;

macro_rules! intent_columns {
    () => {
        "id, app_id, operation, owner_type, owner_id, moves, created_at"
    };
}

fn intent(c: &Cols<'_, '_>) -> Result<Intent, Error> {
    Ok(Intent {
        id: c.id(0)?,
        app_id: c.id(1)?,
        operation: c.text(2)?,
        owner_type: c.text(3)?,
        owner_id: c.text(4)?,
        moves: c.json(5)?,
        created_at: c.ts(6)?,
    })
}

fn outcome(c: &Cols<'_, '_>) -> Result<Option<IntentOutcome>, Error> {
    c.opt_text(0)?
        .map(|text| {
            IntentOutcome::parse(&text).ok_or_else(|| Error::internal(format!("stored intent outcome {text:?}")))
        })
        .transpose()
}

#[async_trait]
impl IntentStore for SqliteStore {
    async fn pending_intents(&self, app_id: Option<AppId>) -> Result<Vec<Intent>, Error> {
        self.read(move |conn| {
            codec::all(
                conn,
                concat!(
                    "SELECT ",
                    intent_columns!(),
                    " FROM intents WHERE completed_at IS NULL AND (?1 IS NULL OR app_id = ?1)",
                    " ORDER BY created_at, id"
                ),
                [app_id.map(|a| id(a.0))],
                intent,
            )
        })
        .await
    }

    async fn pending_intent_on_ref(&self, app_id: AppId, ref_name: &str) -> Result<Option<Intent>, Error> {
        let ref_name = ref_name.to_owned();
        self.read(move |conn| {
            codec::one(
                conn,
                concat!(
                    "SELECT ",
                    intent_columns!(),
                    " FROM intents WHERE id = (SELECT intent_id FROM intent_claims WHERE app_id = ?1 AND ref_name = ?2)"
                ),
                params![id(app_id.0), ref_name],
                intent,
            )
        })
        .await
    }

    async fn intent_outcome(&self, intent_id: IntentId) -> Result<Option<IntentOutcome>, Error> {
        self.read(move |conn| {
            codec::one(conn, "SELECT outcome FROM intents WHERE id = ?1", [id(intent_id.0)], outcome)?
                .ok_or(Error::NotFound(IntentId::KIND))
        })
        .await
    }
}

/// Applies one intent mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &IntentMutation) -> Result<(), Error> {
    match mutation {
        IntentMutation::RecordIntent(i) => record_intent(conn, i, true),
        IntentMutation::AdoptRefs(i) => record_intent(conn, i, false),
        IntentMutation::CompleteIntent { id, outcome, at } => complete_intent(conn, *id, *outcome, at),
    }
}

/// A ref value as `last_value` stores it ('' = absent).
fn stored(value: &Option<Sha>) -> String {
    value.as_ref().map(|s| s.0.clone()).unwrap_or_default()
}

/// `RecordIntent` (`check_memory`) or `AdoptRefs`: the row, then one claim
/// per ref — `RefBusy` when claimed, `RefMoved` when remembered elsewhere.
fn record_intent(conn: &Connection, i: &Intent, check_memory: bool) -> Result<(), Error> {
    conn.prepare_cached(concat!("INSERT INTO intents (", intent_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"))
        .db()?
        .execute(params![
            id(i.id.0),
            id(i.app_id.0),
            i.operation,
            i.owner_type,
            i.owner_id,
            json(&i.moves)?,
            ts(&i.created_at)
        ])
        .db()?;
    for m in &i.moves {
        claim(conn, i, m, check_memory)?;
    }
    Ok(())
}

fn claim(conn: &Connection, i: &Intent, m: &RefMove, check_memory: bool) -> Result<(), Error> {
    let claimed = conn
        .prepare_cached(
            "INSERT INTO intent_claims (app_id, ref_name, intent_id, last_value) VALUES (?1, ?2, ?3, NULL)
             ON CONFLICT (app_id, ref_name) DO UPDATE SET intent_id = excluded.intent_id
             WHERE intent_claims.intent_id IS NULL
               AND (NOT ?4 OR intent_claims.last_value IS NULL OR intent_claims.last_value = ?5)",
        )
        .db()?
        .execute(params![id(i.app_id.0), m.name, id(i.id.0), check_memory, stored(&m.from)])
        .db()?;
    if claimed == 1 {
        return Ok(());
    }
    let busy = exists(
        conn,
        "SELECT 1 FROM intent_claims WHERE app_id = ?1 AND ref_name = ?2 AND intent_id IS NOT NULL",
        params![id(i.app_id.0), m.name],
    )?;
    Err(if busy { ConflictReason::RefBusy } else { ConflictReason::RefMoved { ref_name: m.name.clone() } }.into())
}

/// `CompleteIntent`: keeps the first outcome (`not_found` when unknown);
/// frees the claims and sets each ref's memory.
fn complete_intent(conn: &Connection, intent: IntentId, outcome: IntentOutcome, at: &Timestamp) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE intents SET completed_at = ?2, outcome = ?3 WHERE id = ?1 AND completed_at IS NULL")
        .db()?
        .execute(params![id(intent.0), ts(at), outcome.as_str()])
        .db()?;
    if changed == 0 {
        if !exists(conn, "SELECT 1 FROM intents WHERE id = ?1", [id(intent.0)])? {
            return Err(Error::NotFound(IntentId::KIND));
        }
        return Ok(());
    }
    let (app_id, moves): (AppId, Vec<RefMove>) =
        codec::one(conn, "SELECT app_id, moves FROM intents WHERE id = ?1", [id(intent.0)], |c| {
            Ok((c.id(0)?, c.json(1)?))
        })?
        .ok_or(Error::NotFound(IntentId::KIND))?;
    for m in &moves {
        let last = match outcome {
            IntentOutcome::Applied => Some(stored(&m.to)),
            IntentOutcome::Abandoned => None,
        };
        conn.prepare_cached(
            "UPDATE intent_claims SET intent_id = NULL, last_value = ?4
             WHERE app_id = ?1 AND ref_name = ?2 AND intent_id = ?3",
        )
        .db()?
        .execute(params![id(app_id.0), m.name, id(intent.0), last])
        .db()?;
    }
    Ok(())
}
