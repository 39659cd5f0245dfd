//! Ref intents: the `IntentStore` reads and the intent mutations
//! (decision 0008), mirroring the SQLite store's `intents.rs`.
//!
//! Invariant: a pending intent claims each of its refs in `intent_claims`,
//! whose row also remembers the value the last applied intent left the ref
//! at (`last_value`: sha, '' = absent, NULL = unknown). `RecordIntent`
//! refuses a claimed ref with [`ConflictReason::RefBusy`] and a move whose
//! `from` is not a known `last_value` with [`ConflictReason::RefMoved`] —
//! one `INSERT ... ON CONFLICT DO UPDATE ... WHERE` both checks: it waits
//! for a concurrent claimer's or completer's transaction and then evaluates
//! its condition on the row that transaction left, so two processes never
//! both claim one ref and a move planned before another one completed is
//! refused; `AdoptRefs` skips the memory check; `CompleteIntent` keeps the
//! first outcome, frees the claims and sets `last_value`.

use async_trait::async_trait;
use conman_core::domain::Timestamp;
use conman_core::ids::{AppId, IntentId};
use conman_core::ports::git::{RefMove, Sha};
use conman_core::ports::store::{ConflictReason, Intent, IntentMutation, IntentOutcome, IntentStore};
use conman_core::Error;
use sqlx::{query, PgConnection};

use crate::codec::{self, exists, json, ts, Cols, Db as _};
use crate::PgStore;

macro_rules! intent_columns {
    () => {
        "id, app_id, operation, owner_type, owner_id, moves::text, created_at"
    };
}

fn intent(c: &Cols<'_>) -> Result<Intent, Error> {
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

fn outcome(c: &Cols<'_>) -> Result<Option<IntentOutcome>, Error> {
    c.opt_text(0)?
        .map(|text| {
            IntentOutcome::parse(&text).ok_or_else(|| Error::internal(format!("stored intent outcome {text:?}")))
        })
        .transpose()
}

#[async_trait]
impl IntentStore for PgStore {
    async fn pending_intents(&self, app_id: Option<AppId>) -> Result<Vec<Intent>, Error> {
        let sql = concat!(
            "SELECT ",
            intent_columns!(),
            " FROM intents WHERE completed_at IS NULL AND ($1::uuid IS NULL OR app_id = $1)",
            " ORDER BY created_at, id"
        );
        codec::all(&self.pool, query(sql).bind(app_id.map(|a| a.0)), intent).await
    }

    async fn pending_intent_on_ref(&self, app_id: AppId, ref_name: &str) -> Result<Option<Intent>, Error> {
        let sql = concat!(
            "SELECT ",
            intent_columns!(),
            " FROM intents WHERE id = (SELECT intent_id FROM intent_claims WHERE app_id = $1 AND ref_name = $2)"
        );
        codec::one(&self.pool, query(sql).bind(app_id.0).bind(ref_name), intent).await
    }

    async fn intent_outcome(&self, intent_id: IntentId) -> Result<Option<IntentOutcome>, Error> {
        codec::one(&self.pool, query("SELECT outcome FROM intents WHERE id = $1").bind(intent_id.0), outcome)
            .await?
            .ok_or(Error::NotFound(IntentId::KIND))
    }
}

/// Applies one intent mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &IntentMutation) -> Result<(), Error> {
    match mutation {
        IntentMutation::RecordIntent(i) => record_intent(conn, i, true).await,
        IntentMutation::AdoptRefs(i) => record_intent(conn, i, false).await,
        IntentMutation::CompleteIntent { id, outcome, at } => complete_intent(conn, *id, *outcome, at).await,
    }
}

/// A ref value as `last_value` stores it ('' = absent).
fn stored(value: &Option<Sha>) -> String {
    value.as_ref().map(|s| s.0.clone()).unwrap_or_default()
}

/// `RecordIntent` (`check_memory`) or `AdoptRefs`: the row, then one claim
/// per ref — `RefBusy` when claimed, `RefMoved` when remembered elsewhere.
async fn record_intent(conn: &mut PgConnection, i: &Intent, check_memory: bool) -> Result<(), Error> {
    let sql = "INSERT INTO intents (id, app_id, operation, owner_type, owner_id, moves, created_at)
               VALUES ($1, $2, $3, $4, $5, $6::json, $7)";
    query(sql)
        .bind(i.id.0)
        .bind(i.app_id.0)
        .bind(&i.operation)
        .bind(&i.owner_type)
        .bind(&i.owner_id)
        .bind(json(&i.moves)?)
        .bind(ts(&i.created_at))
        .execute(&mut *conn)
        .await
        .db()?;
    for m in &i.moves {
        claim(conn, i, m, check_memory).await?;
    }
    Ok(())
}

async fn claim(conn: &mut PgConnection, i: &Intent, m: &RefMove, check_memory: bool) -> Result<(), Error> {
    let sql = "INSERT INTO intent_claims (app_id, ref_name, intent_id, last_value) VALUES ($1, $2, $3, NULL)
               ON CONFLICT (app_id, ref_name) DO UPDATE SET intent_id = EXCLUDED.intent_id
               WHERE intent_claims.intent_id IS NULL
                 AND (NOT $4 OR intent_claims.last_value IS NULL OR intent_claims.last_value = $5)";
    let claimed = query(sql)
        .bind(i.app_id.0)
        .bind(&m.name)
        .bind(i.id.0)
        .bind(check_memory)
        .bind(stored(&m.from))
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    if claimed == 1 {
        return Ok(());
    }
    let busy = exists(
        &mut *conn,
        query("SELECT 1 FROM intent_claims WHERE app_id = $1 AND ref_name = $2 AND intent_id IS NOT NULL")
            .bind(i.app_id.0)
            .bind(&m.name),
    )
    .await?;
    Err(if busy { ConflictReason::RefBusy } else { ConflictReason::RefMoved { ref_name: m.name.clone() } }.into())
}

/// `CompleteIntent`: keeps the first outcome (`not_found` when unknown);
/// frees the claims and sets each ref's memory.
async fn complete_intent(
    conn: &mut PgConnection,
    intent: IntentId,
    outcome: IntentOutcome,
    at: &Timestamp,
) -> Result<(), Error> {
    let changed = query("UPDATE intents SET completed_at = $2, outcome = $3 WHERE id = $1 AND completed_at IS NULL")
        .bind(intent.0)
        .bind(ts(at))
        .bind(outcome.as_str())
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    if changed == 0 {
        if !exists(&mut *conn, query("SELECT 1 FROM intents WHERE id = $1").bind(intent.0)).await? {
            return Err(Error::NotFound(IntentId::KIND));
        }
        return Ok(());
    }
    let (app_id, moves): (AppId, Vec<RefMove>) =
        codec::one(&mut *conn, query("SELECT app_id, moves::text FROM intents WHERE id = $1").bind(intent.0), |c| {
            Ok((c.id(0)?, c.json(1)?))
        })
        .await?
        .ok_or(Error::NotFound(IntentId::KIND))?;
    for m in &moves {
        let last = match outcome {
            IntentOutcome::Applied => Some(stored(&m.to)),
            IntentOutcome::Abandoned => None,
        };
        query(
            "UPDATE intent_claims SET intent_id = NULL, last_value = $4
             WHERE app_id = $1 AND ref_name = $2 AND intent_id = $3",
        )
        .bind(app_id.0)
        .bind(&m.name)
        .bind(intent.0)
        .bind(last)
        .execute(&mut *conn)
        .await
        .db()?;
    }
    Ok(())
}
