//! Changesets: reviewable proposals with frozen revisions (SPEC §2.3, §4).
//! This slice defines the entity and its state machine; the use cases come
//! with the changesets issue.

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;
use super::Timestamp;
use crate::ids::{AppId, ChangesetId, UserId, WorkspaceId};

/// Where a changeset is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangesetState {
    /// Being edited freely.
    Draft,
    /// A revision is frozen and its submit gate is running.
    Submitted,
    /// The gate passed; reviewers vote.
    InReview,
    /// Enough approvals on the latest revision.
    Approved,
    /// A reviewer asked for changes.
    ChangesRequested,
    /// Refused for good.
    Rejected,
    /// Waiting to be picked into a release.
    Queued,
    /// Part of a published release.
    Released,
    /// Does not apply cleanly on the integration head.
    Conflicted,
    /// A gate failed after the integration head moved.
    NeedsRevalidation,
}

/// What can happen to a changeset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangesetEvent {
    /// Freeze revision 1 and start the submit gate.
    Submit,
    /// The submit gate passed.
    GatePassed,
    /// The submit gate failed.
    GateFailed,
    /// Approvals reached the policy.
    Approve,
    /// A reviewer asked for changes.
    RequestChanges,
    /// A reviewer rejected.
    Reject,
    /// Freeze a new revision, reset approvals, re-run the gate.
    Resubmit,
    /// Put an approved changeset into the queue.
    Queue,
    /// Included in a published release.
    Release,
    /// Revalidation found a textual conflict.
    Conflict,
    /// Revalidation gate failed.
    Invalidate,
    /// Back to draft (withdraw, fix).
    MoveToDraft,
}

use ChangesetEvent as E;
use ChangesetState as S;

/// The SPEC §4 changeset table, edge by edge.
pub const CHANGESET_EDGES: &[(S, E, S)] = &[
    (S::Draft, E::Submit, S::Submitted),
    (S::Submitted, E::GatePassed, S::InReview),
    (S::Submitted, E::GateFailed, S::Draft),
    (S::InReview, E::Approve, S::Approved),
    (S::InReview, E::RequestChanges, S::ChangesRequested),
    (S::InReview, E::Reject, S::Rejected),
    (S::ChangesRequested, E::MoveToDraft, S::Draft),
    (S::Submitted, E::Resubmit, S::Submitted),
    (S::InReview, E::Resubmit, S::Submitted),
    (S::ChangesRequested, E::Resubmit, S::Submitted),
    (S::Approved, E::Queue, S::Queued),
    (S::Queued, E::Release, S::Released),
    (S::Queued, E::Conflict, S::Conflicted),
    (S::Queued, E::Invalidate, S::NeedsRevalidation),
    (S::Queued, E::MoveToDraft, S::Draft),
    (S::Conflicted, E::MoveToDraft, S::Draft),
    (S::NeedsRevalidation, E::MoveToDraft, S::Draft),
];

impl StateMachine for ChangesetState {
    type Event = ChangesetEvent;
    const ENTITY: &'static str = "changeset";
    const STATES: &'static [Self] = &[
        S::Draft,
        S::Submitted,
        S::InReview,
        S::Approved,
        S::ChangesRequested,
        S::Rejected,
        S::Queued,
        S::Released,
        S::Conflicted,
        S::NeedsRevalidation,
    ];
    const EVENTS: &'static [E] = &[
        E::Submit,
        E::GatePassed,
        E::GateFailed,
        E::Approve,
        E::RequestChanges,
        E::Reject,
        E::Resubmit,
        E::Queue,
        E::Release,
        E::Conflict,
        E::Invalidate,
        E::MoveToDraft,
    ];

    fn next(self, event: E) -> Option<Self> {
        CHANGESET_EDGES.iter().find(|(f, e, _)| *f == self && *e == event).map(|(_, _, t)| *t)
    }
}

impl ChangesetState {
    /// Open changesets block a second one on the same workspace.
    pub fn is_open(self) -> bool {
        !matches!(self, S::Released | S::Rejected)
    }
}

/// A changeset record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changeset {
    /// Identity.
    pub id: ChangesetId,
    /// Owning app.
    pub app_id: AppId,
    /// Source workspace.
    pub workspace_id: WorkspaceId,
    /// Author.
    pub author_id: UserId,
    /// Title.
    pub title: String,
    /// Longer description.
    pub description: String,
    /// Current state.
    pub state: ChangesetState,
    /// Latest frozen revision number (0 before the first submit).
    pub revision: u32,
    /// Changesets that must be released together with or before this one.
    pub depends_on: Vec<ChangesetId>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::machine::check;

    #[test]
    fn every_cell_of_the_spec_table() {
        check::table(CHANGESET_EDGES);
    }

    #[test]
    fn released_and_rejected_are_terminal() {
        assert!(S::Released.is_terminal());
        assert!(S::Rejected.is_terminal());
        assert!(!S::Approved.is_terminal());
        assert!(!S::Released.is_open());
    }

    #[test]
    fn refusal_names_the_state_and_event() {
        let err = S::Draft.apply(E::Approve).unwrap_err();
        assert_eq!(err.to_string(), "cannot approve a changeset that is draft");
    }

    #[test]
    fn random_event_sequences_follow_the_model() {
        check::random_walks(S::Draft, CHANGESET_EDGES);
    }
}
