//! Ref intents (decision 0008): every operation that moves a git ref the
//! store depends on goes through [`Conman::commit_with_intent`].
//!
//! The sequence, whatever the operation:
//! 1. the operation writes its git objects (harmless: nothing refers to them);
//! 2. one unit of work commits the domain change, its audit entry and the
//!    [`Intent`] naming each ref's expected old and new value — the intent
//!    claims its refs, so no second intent can plan against them meanwhile;
//! 3. the refs move together by compare-and-swap
//!    ([`GitPort::move_refs`](crate::ports::git::GitPort::move_refs));
//! 4. the intent is completed (unaudited, [`Unaudited::RefIntent`]: the
//!    change was audited in step 2).
//!
//! Invariant: a pending intent is always settled the same way, by
//! [`Conman::settle_intent`], idempotently, whichever step a crash hit: refs
//! already at their new values → completed; refs at their old values →
//! rolled forward (moved, then completed); any ref elsewhere (moved outside
//! Conman) → abandoned. Every settlement is audited (`intent.completed`,
//! `intent.rolled_forward`, `intent.abandoned`, system actor). It runs at
//! start ([`Conman::reconcile_intents`], from the composition root) and
//! whenever an operation finds one of its refs claimed by a pending intent
//! (that operation then answers `conflict`, reason `ref_busy`, and a retry
//! succeeds) — so the owner of a crashed intent is never stuck until a
//! restart.
//!
//! Roll forward, not back: the store already holds the audited change when
//! an intent exists, and its new commits were written before it, so
//! carrying the move out is what makes git agree with the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::lock::{Mutex as TurnLock, OwnedMutexGuard};
use serde::Serialize;

use super::{AuditWhat, Conman};
use crate::error::Error;
use crate::ids::AppId;
use crate::ports::git::{RefMove, Sha};
use crate::ports::store::{Intent, IntentMutation, IntentOutcome, Unaudited, UnitOfWork};

/// What start-up reconciliation settled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Pending intents found.
    pub checked: usize,
    /// Intents whose refs were at their old values and were moved.
    pub rolled_forward: usize,
    /// Intents whose refs had already moved (a crash before completion).
    pub completed: usize,
    /// Intents whose refs had moved elsewhere.
    pub abandoned: usize,
}

impl ReconcileReport {
    /// Intents that needed a repair.
    pub fn repaired(&self) -> usize {
        self.rolled_forward + self.completed + self.abandoned
    }
}

/// How [`Conman::settle_intent`] settled an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Another caller had completed it already; nothing written.
    AlreadySettled(IntentOutcome),
    /// The refs already held their new values; completed.
    Completed,
    /// The refs held their old values; moved and completed.
    RolledForward,
    /// A ref held neither value; abandoned.
    Abandoned,
}

/// One turn per app at planning and applying ref moves in this process:
/// an operation takes its app's turn before it plans (reads the refs it
/// will move) and keeps it until its intent is completed, so operations of
/// one process never plan against each other's pending intents. Other
/// processes are kept apart by the store's ref claims (`ref_busy`).
#[derive(Default)]
pub(super) struct IntentTurns(Mutex<HashMap<AppId, Arc<TurnLock<()>>>>);

impl IntentTurns {
    async fn take(&self, app_id: AppId) -> OwnedMutexGuard<()> {
        let lock = {
            let mut turns = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(turns.entry(app_id).or_default())
        };
        lock.lock_owned().await
    }
}

/// True for the conflicts after which re-planning the operation can
/// succeed: a ref claimed by a pending intent, or a ref that moved between
/// planning and applying.
pub(super) fn is_retryable(e: &Error) -> bool {
    matches!(e, Error::Conflict { details: Some(d), .. } if d["reason"] == "ref_busy" || d["reason"] == "ref_moved")
}

impl Conman {
    /// Waits for `app_id`'s turn at moving refs (see [`IntentTurns`]); hold
    /// it from planning until [`Conman::commit_with_intent`] returns.
    pub(super) async fn intent_turn(&self, app_id: AppId) -> OwnedMutexGuard<()> {
        self.intent_turns.take(app_id).await
    }

    /// A new intent of `owner` to apply `moves` for `operation`.
    pub(super) fn intent(
        &self,
        app_id: AppId,
        operation: &str,
        owner: (&str, impl ToString),
        moves: Vec<RefMove>,
    ) -> Intent {
        Intent {
            id: self.new_id(),
            app_id,
            operation: operation.to_owned(),
            owner_type: owner.0.to_owned(),
            owner_id: owner.1.to_string(),
            moves,
            created_at: self.now(),
        }
    }

    /// Commits `unit` (the audited change) with `intent`, moves the refs and
    /// completes the intent (see the module docs). An intent without moves
    /// is not recorded. A ref claimed by a pending intent settles that
    /// intent and answers `conflict` (`ref_busy`); a ref that moved since
    /// planning abandons this intent (audited) and answers `conflict`
    /// (`ref_moved`). Any other failure after the unit committed leaves the
    /// intent pending for reconciliation, which rolls it forward.
    pub(super) async fn commit_with_intent(&self, unit: UnitOfWork, intent: Intent) -> Result<(), Error> {
        let wakes = unit.wakes_workers();
        if intent.moves.is_empty() {
            self.store().commit(unit).await?;
        } else {
            let unit = unit.unaudited(IntentMutation::RecordIntent(intent.clone()), Unaudited::RefIntent);
            if let Err(e) = self.store().commit(unit).await {
                if is_retryable(&e) {
                    self.settle_claims(&intent).await;
                }
                return Err(e);
            }
            self.apply_intent(&intent).await?;
        }
        if wakes {
            self.wakeup.job_enqueued();
        }
        Ok(())
    }

    async fn apply_intent(&self, intent: &Intent) -> Result<(), Error> {
        match self.git().move_refs(intent.app_id, &intent.moves).await {
            Ok(()) => {
                let done =
                    IntentMutation::CompleteIntent { id: intent.id, outcome: IntentOutcome::Applied, at: self.now() };
                if let Err(e) = self.store().commit(UnitOfWork::new().unaudited(done, Unaudited::RefIntent)).await {
                    // The refs moved: the change stands; reconciliation completes the intent.
                    tracing::warn!(intent = %intent.id, error = %e, "could not complete an applied intent");
                }
                Ok(())
            }
            Err(Error::Conflict { .. }) => match self.settle_intent(intent).await? {
                Settlement::Abandoned | Settlement::AlreadySettled(IntentOutcome::Abandoned) => Err(Error::Conflict {
                    message: "the git ref moved while the change was being applied; nothing was applied, retry".into(),
                    details: Some(serde_json::json!({ "reason": "ref_moved" })),
                }),
                _ => Ok(()),
            },
            Err(e) => Err(e),
        }
    }

    /// Settles the pending intents that claim any of `intent`'s refs; a
    /// failure is logged (the caller answers `ref_busy` anyway).
    async fn settle_claims(&self, intent: &Intent) {
        for m in &intent.moves {
            match self.store().pending_intent_on_ref(intent.app_id, &m.name).await {
                Ok(Some(pending)) => {
                    if let Err(e) = self.settle_intent(&pending).await {
                        tracing::warn!(intent = %pending.id, error = %e, "could not settle a pending intent");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the intent claiming a ref"),
            }
        }
    }

    /// Settles a pending intent idempotently (see the module docs) and
    /// audits what it did.
    pub async fn settle_intent(&self, intent: &Intent) -> Result<Settlement, Error> {
        if let Some(outcome) = self.store().intent_outcome(intent.id).await? {
            return Ok(Settlement::AlreadySettled(outcome));
        }
        let settlement = match self.ref_positions(intent).await? {
            Positions::AtNew => Settlement::Completed,
            Positions::AtOld(still) => match self.git().move_refs(intent.app_id, &still).await {
                Ok(()) => Settlement::RolledForward,
                Err(Error::Conflict { .. } | Error::NotFound(_)) => match self.ref_positions(intent).await? {
                    Positions::AtNew => Settlement::Completed,
                    _ => Settlement::Abandoned,
                },
                Err(e) => return Err(e),
            },
            Positions::Elsewhere => Settlement::Abandoned,
        };
        let (outcome, action) = match settlement {
            Settlement::Completed => (IntentOutcome::Applied, "intent.completed"),
            Settlement::RolledForward => (IntentOutcome::Applied, "intent.rolled_forward"),
            _ => (IntentOutcome::Abandoned, "intent.abandoned"),
        };
        let mut what = AuditWhat::new(&intent.owner_type, &intent.owner_id, action).after(serde_json::json!({
            "intent_id": intent.id,
            "operation": intent.operation,
            "moves": intent.moves,
        }));
        if let Some(sha) = head_of(intent) {
            what = what.sha(sha);
        }
        let audit = self.audit_entry(None, Some(intent.app_id), what);
        let done = IntentMutation::CompleteIntent { id: intent.id, outcome, at: self.now() };
        self.store().commit(UnitOfWork::new().record(done, audit)).await?;
        if settlement == Settlement::Abandoned {
            tracing::warn!(intent = %intent.id, operation = %intent.operation, "abandoned an intent: a ref moved outside Conman");
        }
        Ok(settlement)
    }

    /// At start: settles every pending intent of every app (see the module
    /// docs), oldest first. One that cannot be settled now (its repository
    /// is unreadable) is logged and stays pending.
    pub async fn reconcile_intents(&self) -> Result<ReconcileReport, Error> {
        let mut report = ReconcileReport::default();
        for intent in self.store().pending_intents(None).await? {
            report.checked += 1;
            match self.settle_intent(&intent).await {
                Ok(Settlement::RolledForward) => report.rolled_forward += 1,
                Ok(Settlement::Completed) => report.completed += 1,
                Ok(Settlement::Abandoned) => report.abandoned += 1,
                Ok(Settlement::AlreadySettled(_)) => {}
                Err(e) => tracing::warn!(intent = %intent.id, error = %e, "could not settle an intent at start"),
            }
        }
        Ok(report)
    }

    async fn ref_positions(&self, intent: &Intent) -> Result<Positions, Error> {
        let mut still = Vec::new();
        for m in &intent.moves {
            let current = self.git().resolve_ref(intent.app_id, &m.name).await?;
            if current == m.to {
                continue;
            }
            if current != m.from {
                return Ok(Positions::Elsewhere);
            }
            still.push(m.clone());
        }
        Ok(if still.is_empty() { Positions::AtNew } else { Positions::AtOld(still) })
    }
}

enum Positions {
    AtNew,
    AtOld(Vec<RefMove>),
    Elsewhere,
}

/// The commit an intent lands: the new value of its first ref that gets one.
fn head_of(intent: &Intent) -> Option<&Sha> {
    intent.moves.iter().find_map(|m| m.to.as_ref())
}
