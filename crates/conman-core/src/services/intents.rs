//! Ref intents (decision 0008): every operation that moves a git ref the
//! store depends on goes through [`Conman::commit_with_intent`].
//!
//! The sequence, whatever the operation:
//! 1. the operation writes its git objects (harmless: nothing refers to them);
//! 2. one unit of work commits the domain change, its audit entry and the
//!    [`Intent`] naming each ref's expected old and new value — the intent
//!    claims its refs, so no second intent can plan against them meanwhile,
//!    and the store refuses the whole unit when a move starts from another
//!    value than the one its last applied intent left the ref at
//!    (`ref_moved`): a change planned on a ref another process moved since
//!    is never recorded, so never audited;
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
//! Invariant: the store's memory of a ref only disagrees with git when the
//! ref moved outside Conman (every Conman move holds a claim until its
//! completion sets the memory). A `ref_moved` refusal whose ref git still
//! holds at the planned value is such a case: the value is *adopted* — an
//! audited `ref.adopted` intent claims the ref, checks git under the claim
//! and completes — and the unit is committed again.
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
use crate::ports::store::{ConflictReason, Intent, IntentMutation, IntentOutcome, Unaudited, UnitOfWork};

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
    matches!(reason_of(e).as_deref(), Some("ref_busy" | "ref_moved"))
}

/// The `details.reason` of a conflict.
fn reason_of(e: &Error) -> Option<String> {
    match e {
        Error::Conflict { details: Some(d), .. } => d["reason"].as_str().map(str::to_owned),
        _ => None,
    }
}

/// The audited action (and intent operation) of an adoption.
const ADOPTED: &str = "ref.adopted";

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
    /// is not recorded. The store refuses the whole unit — so nothing of the
    /// change is recorded or audited — when a ref is claimed by a pending
    /// intent (that intent is settled; `conflict`, `ref_busy`) or when a
    /// move starts from another value than the one the store remembers for
    /// the ref: if git still holds the planned `from`, the memory is stale
    /// (the ref moved outside Conman), so it is adopted (audited) and the
    /// unit committed again; otherwise the change was planned on a ref
    /// another change moved (`conflict`, `ref_moved`). Any other failure
    /// after the unit committed leaves the intent pending for
    /// reconciliation, which rolls it forward.
    pub(super) async fn commit_with_intent(&self, unit: UnitOfWork, intent: Intent) -> Result<(), Error> {
        let wakes = unit.wakes_workers();
        if intent.moves.is_empty() {
            self.store().commit(unit).await?;
        } else {
            self.record_intent(unit, &intent).await?;
            self.apply_intent(&intent).await?;
        }
        if wakes {
            self.wakeup.job_enqueued();
        }
        Ok(())
    }

    /// Commits `unit` with `intent` recorded (see
    /// [`Conman::commit_with_intent`]). Each adoption corrects one ref's
    /// memory, so the unit is tried at most once per move and once more.
    async fn record_intent(&self, unit: UnitOfWork, intent: &Intent) -> Result<(), Error> {
        let mut tries = 0;
        loop {
            tries += 1;
            let with = unit.clone().unaudited(IntentMutation::RecordIntent(intent.clone()), Unaudited::RefIntent);
            let err = match self.store().commit(with).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            match reason_of(&err).as_deref() {
                Some("ref_busy") => {
                    self.settle_claims(intent).await;
                    return Err(err);
                }
                Some("ref_moved") if tries <= intent.moves.len() => {
                    let moved = err.details().and_then(|d| d["ref"].as_str().map(str::to_owned));
                    let Some(m) = intent.moves.iter().find(|m| Some(&m.name) == moved.as_ref()) else {
                        return Err(err);
                    };
                    if self.git().resolve_ref(intent.app_id, &m.name).await? != m.from {
                        // Another change moved it since planning.
                        return Err(err);
                    }
                    self.adopt_ref(intent, m).await?;
                }
                _ => return Err(err),
            }
        }
    }

    /// Makes the store remember `m.from`, which git holds, as `m.name`'s
    /// value: an audited adoption intent (`ref.adopted`, system actor)
    /// claims the ref, checks under the claim that git still holds the value
    /// (a move from it to itself) and completes, which sets the memory. A
    /// ref that moved meanwhile abandons the adoption (audited) and answers
    /// `conflict` (`ref_moved`).
    async fn adopt_ref(&self, intent: &Intent, m: &RefMove) -> Result<(), Error> {
        let check = RefMove { name: m.name.clone(), from: m.from.clone(), to: m.from.clone() };
        let adoption = self.intent(intent.app_id, ADOPTED, (&intent.owner_type, &intent.owner_id), vec![check]);
        let mut what = AuditWhat::new(&intent.owner_type, &intent.owner_id, ADOPTED).after(serde_json::json!({
            "intent_id": adoption.id,
            "ref": m.name,
            "value": m.from,
            "for": intent.operation,
            "reason": "the ref was moved outside Conman since Conman last moved it",
        }));
        if let Some(sha) = &m.from {
            what = what.sha(sha);
        }
        let audit = self.audit_entry(None, Some(intent.app_id), what);
        self.store().commit(UnitOfWork::new().record(IntentMutation::AdoptRefs(adoption.clone()), audit)).await?;
        tracing::warn!(app = %intent.app_id, r#ref = %m.name, "adopted a ref value moved outside Conman");
        self.apply_intent(&adoption).await
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
                Settlement::Abandoned | Settlement::AlreadySettled(IntentOutcome::Abandoned) => {
                    let ref_name = intent.moves.first().map(|m| m.name.clone()).unwrap_or_default();
                    Err(ConflictReason::RefMoved { ref_name }.into())
                }
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
