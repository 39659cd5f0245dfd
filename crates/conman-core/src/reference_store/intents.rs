//! Ref intents (mirrors the SQL stores' `intents` and `intent_claims`).

use async_trait::async_trait;

use super::{reference, unique, ReferenceStore, State};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, IntentId};
use crate::ports::git::Sha;
use crate::ports::store::{ConflictReason, Intent, IntentMutation, IntentOutcome, IntentStore, Record};

/// An intent with its completion, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IntentRow {
    intent: Intent,
    completed: Option<(Timestamp, IntentOutcome)>,
}

/// What the store knows of one ref of an app (a row of `intent_claims`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claim {
    app_id: AppId,
    ref_name: String,
    /// The pending intent that claims the ref, if any.
    intent: Option<IntentId>,
    /// The value the last applied intent left the ref at (`Some(None)` =
    /// absent); `None` = unknown.
    last: Option<Option<Sha>>,
}

/// The intents slice's collections: every intent, and one claim row per
/// ref any intent ever named.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Intents {
    rows: Vec<IntentRow>,
    claims: Vec<Claim>,
}

impl Intents {
    fn claim_mut(&mut self, app_id: AppId, ref_name: &str) -> Option<&mut Claim> {
        self.claims.iter_mut().find(|c| c.app_id == app_id && c.ref_name == ref_name)
    }
}

#[async_trait]
impl IntentStore for ReferenceStore {
    async fn pending_intents(&self, app_id: Option<AppId>) -> Result<Vec<Intent>, Error> {
        let state = self.lock();
        let mut pending: Vec<Intent> = state
            .intents
            .rows
            .iter()
            .filter(|r| r.completed.is_none() && app_id.is_none_or(|a| r.intent.app_id == a))
            .map(|r| r.intent.clone())
            .collect();
        pending.sort_by_key(|i| (i.created_at, i.id));
        Ok(pending)
    }

    async fn pending_intent_on_ref(&self, app_id: AppId, ref_name: &str) -> Result<Option<Intent>, Error> {
        let state = self.lock();
        let claim = state.intents.claims.iter().find(|c| c.app_id == app_id && c.ref_name == ref_name);
        Ok(claim
            .and_then(|c| c.intent)
            .and_then(|id| state.intents.rows.iter().find(|r| r.intent.id == id))
            .map(|r| r.intent.clone()))
    }

    async fn intent_outcome(&self, id: IntentId) -> Result<Option<IntentOutcome>, Error> {
        let state = self.lock();
        let row = state.intents.rows.iter().find(|r| r.intent.id == id).ok_or(Error::NotFound(IntentId::KIND))?;
        Ok(row.completed.map(|(_, outcome)| outcome))
    }
}

/// `RecordIntent` (`check_memory`) or `AdoptRefs`: the row, then one claim
/// per move — busy first, then the memory.
fn record(state: &mut State, i: &Intent, check_memory: bool) -> Result<(), Error> {
    unique(state.intents.rows.iter().any(|r| r.intent.id == i.id), Record::Other, "id")?;
    reference(state.apps.exists(i.app_id))?;
    state.intents.rows.push(IntentRow { intent: i.clone(), completed: None });
    for m in &i.moves {
        match state.intents.claim_mut(i.app_id, &m.name) {
            Some(claim) => {
                if claim.intent.is_some() {
                    return Err(ConflictReason::RefBusy.into());
                }
                if check_memory && claim.last.as_ref().is_some_and(|last| *last != m.from) {
                    return Err(ConflictReason::RefMoved { ref_name: m.name.clone() }.into());
                }
                claim.intent = Some(i.id);
            }
            None => state.intents.claims.push(Claim {
                app_id: i.app_id,
                ref_name: m.name.clone(),
                intent: Some(i.id),
                last: None,
            }),
        }
    }
    Ok(())
}

fn complete(state: &mut State, id: IntentId, outcome: IntentOutcome, at: Timestamp) -> Result<(), Error> {
    let row = state.intents.rows.iter_mut().find(|r| r.intent.id == id).ok_or(Error::NotFound(IntentId::KIND))?;
    if row.completed.is_some() {
        return Ok(());
    }
    row.completed = Some((at, outcome));
    let intent = row.intent.clone();
    for m in &intent.moves {
        if let Some(claim) = state.intents.claim_mut(intent.app_id, &m.name).filter(|c| c.intent == Some(id)) {
            claim.intent = None;
            claim.last = match outcome {
                IntentOutcome::Applied => Some(m.to.clone()),
                IntentOutcome::Abandoned => None,
            };
        }
    }
    Ok(())
}

/// Applies one intent mutation.
pub(crate) fn apply(state: &mut State, mutation: &IntentMutation) -> Result<(), Error> {
    match mutation {
        IntentMutation::RecordIntent(i) => record(state, i, true),
        IntentMutation::AdoptRefs(i) => record(state, i, false),
        IntentMutation::CompleteIntent { id, outcome, at } => complete(state, *id, *outcome, *at),
    }
}
