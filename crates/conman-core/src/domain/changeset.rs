//! Changesets: reviewable proposals with frozen revisions (SPEC §2.3, §4).
//!
//! Invariants: a changeset's `revision` is the number of its latest frozen
//! [`ChangesetRevision`] (0 before the first submit) and `head_sha` that
//! revision's commit; revisions are append-only and numbered 1, 2, ... with
//! no gaps; at most one changeset per workspace is open (not released or
//! rejected) — the store refuses a second. The use cases live in
//! `services::changesets`.

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;
use super::Timestamp;
use crate::ids::{AppId, ChangesetId, JobId, UserId, WorkspaceId};

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

    /// The wire name (`in_review`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            S::Draft => "draft",
            S::Submitted => "submitted",
            S::InReview => "in_review",
            S::Approved => "approved",
            S::ChangesRequested => "changes_requested",
            S::Rejected => "rejected",
            S::Queued => "queued",
            S::Released => "released",
            S::Conflicted => "conflicted",
            S::NeedsRevalidation => "needs_revalidation",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, crate::Error> {
        Self::STATES
            .iter()
            .copied()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("state", "unknown_state", format!("unknown changeset state {s:?}")))
    }

    /// Title, description and `depends_on` may still change (before
    /// approval; afterwards a new changeset is needed).
    pub fn is_editable(self) -> bool {
        matches!(self, S::Draft | S::Submitted | S::InReview | S::ChangesRequested)
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
    /// Commit of the latest revision (`None` before the first submit).
    pub head_sha: Option<String>,
    /// Changesets that must be released together with or before this one.
    pub depends_on: Vec<ChangesetId>,
    /// The submit gate job of the latest revision.
    pub gate_job_id: Option<JobId>,
    /// Why the latest submit gate failed (cleared by the next submit).
    pub gate_failure: Option<String>,
    /// When it last entered the release queue.
    #[serde(default)]
    pub queued_at: Option<Timestamp>,
    /// The last check of it against the integration head after a publish.
    #[serde(default)]
    pub last_revalidation: Option<Revalidation>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// One check of a queued changeset against a new integration head (SPEC
/// §2.4 revalidation): the conflict check, then — where the merged tree
/// differs from the tree its submit gate last passed on — the submit gate
/// again, on the merged tree.
///
/// Invariant: `gated_tree` names the tree the last passing submit gate of
/// this revision ran on (`None`: the revision's own tree, gated at submit);
/// `gate_job_id` is set exactly while the outcome is `gate_running`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revalidation {
    /// When.
    pub at: Timestamp,
    /// The integration head it was checked against.
    pub head: String,
    /// What the check found.
    pub outcome: RevalidationOutcome,
    /// The merged tree of this check (clean outcomes).
    #[serde(default)]
    pub tree: Option<String>,
    /// The tree its submit gate last passed on, when not the revision's own.
    #[serde(default)]
    pub gated_tree: Option<String>,
    /// The submit gate re-running on the merged tree.
    #[serde(default)]
    pub gate_job_id: Option<JobId>,
}

impl Revalidation {
    /// The tree a gate already passed on, given the revision's own tree.
    pub fn passed_tree<'a>(this: Option<&'a Revalidation>, revision_tree: &'a str) -> &'a str {
        this.and_then(|r| r.gated_tree.as_deref()).unwrap_or(revision_tree)
    }
}

/// What a revalidation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevalidationOutcome {
    /// It merges cleanly onto the head and the merged tree passed (or
    /// needed no) submit gate: still queued.
    Clean,
    /// It conflicts with the head: moved to `conflicted`.
    Conflicted,
    /// It merges cleanly; its submit gate runs again on the merged tree
    /// (still queued meanwhile).
    GateRunning,
    /// The submit gate failed on the merged tree: moved to
    /// `needs_revalidation`.
    GateFailed,
}

impl RevalidationOutcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevalidationOutcome::Clean => "clean",
            RevalidationOutcome::Conflicted => "conflicted",
            RevalidationOutcome::GateRunning => "gate_running",
            RevalidationOutcome::GateFailed => "gate_failed",
        }
    }
}

/// A frozen revision: the commit a changeset proposed at one submit.
///
/// Git keeps the commit reachable under `refs/conman/changesets/<id>/<n>`
/// so later workspace resets or rebases never lose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangesetRevision {
    /// The changeset.
    pub changeset_id: ChangesetId,
    /// 1, 2, ...
    pub number: u32,
    /// The frozen commit.
    pub head_sha: String,
    /// Its merge base with the integration branch at freeze time.
    pub base_sha: String,
    /// Paths the revision changes against `base_sha`, sorted (both sides of
    /// a rename); path rules match against these.
    pub files: Vec<String>,
    /// The submit gate job started for it.
    pub gate_job_id: Option<JobId>,
    /// Who froze it.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
}

impl ChangesetRevision {
    /// The ref that keeps revision `number` of `changeset` reachable.
    pub fn ref_name(changeset: ChangesetId, number: u32) -> String {
        format!("refs/conman/changesets/{changeset}/{number}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn state_names_round_trip() {
        for state in S::STATES {
            assert_eq!(S::parse(state.as_str()).unwrap(), *state);
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert!(S::parse("merged").is_err());
    }
}
