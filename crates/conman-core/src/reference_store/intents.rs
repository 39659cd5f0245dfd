//! Ref intents (mirrors the SQL stores' `intents` and `intent_claims`).

use async_trait::async_trait;

use super::{reference, unique, ReferenceStore, State};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, IntentId};
use crate::ports::store::{ConflictReason, Intent, IntentMutation, IntentOutcome, IntentStore, Record};

/// An intent with its completion, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IntentRow {
    intent: Intent,
    completed: Option<(Timestamp, IntentOutcome)>,
}

/// The intents slice's collections: every intent, and the refs each
/// pending one claims (`(app, ref)` → intent).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Intents {
    rows: Vec<IntentRow>,
    claims: Vec<(AppId, String, IntentId)>,
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
        let claim = state.intents.claims.iter().find(|(a, r, _)| *a == app_id && r == ref_name);
        Ok(claim
            .and_then(|(_, _, id)| state.intents.rows.iter().find(|r| r.intent.id == *id))
            .map(|r| r.intent.clone()))
    }

    async fn intent_outcome(&self, id: IntentId) -> Result<Option<IntentOutcome>, Error> {
        let state = self.lock();
        let row = state.intents.rows.iter().find(|r| r.intent.id == id).ok_or(Error::NotFound(IntentId::KIND))?;
        Ok(row.completed.map(|(_, outcome)| outcome))
    }
}

/// Applies one intent mutation.
pub(crate) fn apply(state: &mut State, mutation: &IntentMutation) -> Result<(), Error> {
    match mutation {
        IntentMutation::RecordIntent(i) => {
            unique(state.intents.rows.iter().any(|r| r.intent.id == i.id), Record::Other, "id")?;
            reference(state.apps.exists(i.app_id))?;
            state.intents.rows.push(IntentRow { intent: i.clone(), completed: None });
            for m in &i.moves {
                if state.intents.claims.iter().any(|(a, r, _)| *a == i.app_id && *r == m.name) {
                    return Err(ConflictReason::RefBusy.into());
                }
                state.intents.claims.push((i.app_id, m.name.clone(), i.id));
            }
            Ok(())
        }
        IntentMutation::CompleteIntent { id, outcome, at } => {
            let row =
                state.intents.rows.iter_mut().find(|r| r.intent.id == *id).ok_or(Error::NotFound(IntentId::KIND))?;
            if row.completed.is_none() {
                row.completed = Some((*at, *outcome));
            }
            state.intents.claims.retain(|(_, _, claimed)| claimed != id);
            Ok(())
        }
    }
}
