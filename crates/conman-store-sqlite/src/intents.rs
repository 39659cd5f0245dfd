//! Ref intents: the `IntentStore` reads and the intent mutations
//! (decision 0008).
//!
//! Invariant: a pending intent claims each of its refs in `intent_claims`;
//! `RecordIntent` refuses a ref already claimed with
//! [`ConflictReason::RefBusy`] (an insert that does nothing on the key);
//! `CompleteIntent` keeps the first outcome and frees the claims.

use async_trait::async_trait;
use conman_core::domain::Timestamp;
use conman_core::ids::{AppId, IntentId};
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
        IntentMutation::RecordIntent(i) => record_intent(conn, i),
        IntentMutation::CompleteIntent { id, outcome, at } => complete_intent(conn, *id, *outcome, at),
    }
}

/// `RecordIntent`: the row, then one claim per ref (`RefBusy` when taken).
fn record_intent(conn: &Connection, i: &Intent) -> Result<(), Error> {
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
        let claimed = conn
            .prepare_cached(
                "INSERT INTO intent_claims (app_id, ref_name, intent_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )
            .db()?
            .execute(params![id(i.app_id.0), m.name, id(i.id.0)])
            .db()?;
        if claimed == 0 {
            return Err(ConflictReason::RefBusy.into());
        }
    }
    Ok(())
}

/// `CompleteIntent`: keeps the first outcome; `not_found` when unknown.
fn complete_intent(conn: &Connection, intent: IntentId, outcome: IntentOutcome, at: &Timestamp) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE intents SET completed_at = ?2, outcome = ?3 WHERE id = ?1 AND completed_at IS NULL")
        .db()?
        .execute(params![id(intent.0), ts(at), outcome.as_str()])
        .db()?;
    if changed == 0 && !exists(conn, "SELECT 1 FROM intents WHERE id = ?1", [id(intent.0)])? {
        return Err(Error::NotFound(IntentId::KIND));
    }
    conn.prepare_cached("DELETE FROM intent_claims WHERE intent_id = ?1").db()?.execute([id(intent.0)]).db()?;
    Ok(())
}
