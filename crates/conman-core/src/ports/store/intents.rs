//! Ref intents: the store's record of a ref move that an audited change
//! promises (decision 0008).
//!
//! Invariants every store keeps (pinned by `conformance::intents`):
//! - the store remembers, per (app, ref), the value its last applied
//!   intent left the ref at (its *memory*: a sha, "absent", or unknown
//!   before the first applied intent and after an abandoned one);
//! - `RecordIntent` stores the intent and claims each of its refs; while an
//!   intent is pending no other intent can claim the same (app, ref) —
//!   that is [`ConflictReason::RefBusy`](super::ConflictReason::RefBusy),
//!   and the whole unit is refused; a move whose `from` is not the ref's
//!   known memory is
//!   [`ConflictReason::RefMoved`](super::ConflictReason::RefMoved), the
//!   whole unit refused too (the change was planned on a ref another change
//!   has moved since, so nothing of it may be recorded or audited);
//! - `AdoptRefs` records and claims like `RecordIntent` but ignores the
//!   memory: its moves (`from == to`, git's current value) make the store
//!   learn a ref moved outside Conman once git is checked under the claim;
//! - checks run busy first, then memory, move by move in order;
//! - `CompleteIntent` keeps the first outcome and time and frees the refs;
//!   `Applied` sets each ref's memory to its `to`, `Abandoned` makes it
//!   unknown; completing a completed intent changes nothing; an unknown id
//!   is `not_found`;
//! - pending intents are listed oldest first (by `created_at`, then id).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, IntentId};
use crate::ports::git::RefMove;

/// A ref move promised by a committed change: the refs of `moves` hold
/// their `from` values until it is carried out, then their `to` values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Id.
    pub id: IntentId,
    /// The app whose repository holds the refs.
    pub app_id: AppId,
    /// The audited action that promised the move, e.g. `workspace.files_changed`.
    pub operation: String,
    /// Kind of the entity that owns the intent (`workspace`, `changeset`, `app`, `job`).
    pub owner_type: String,
    /// Its id.
    pub owner_id: String,
    /// The refs and their values, moved together.
    pub moves: Vec<RefMove>,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// How an intent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentOutcome {
    /// Every ref holds its `to` value.
    Applied,
    /// A ref held neither its `from` nor its `to` value: the move was not
    /// made (audited as `intent.abandoned`).
    Abandoned,
}

impl IntentOutcome {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentOutcome::Applied => "applied",
            IntentOutcome::Abandoned => "abandoned",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "applied" => Some(IntentOutcome::Applied),
            "abandoned" => Some(IntentOutcome::Abandoned),
            _ => None,
        }
    }
}

/// A change to the intents.
#[derive(Debug, Clone, PartialEq)]
pub enum IntentMutation {
    /// Record a pending intent and claim its refs, each of which must be
    /// free and, when the store remembers its value, remembered at the
    /// move's `from`.
    RecordIntent(Intent),
    /// Record a pending intent that adopts git's current values (its moves
    /// have `from == to`) and claim its refs, which must be free; the
    /// memory is not checked (it is what the adoption corrects).
    AdoptRefs(Intent),
    /// Close an intent and free its refs.
    CompleteIntent {
        /// Which.
        id: IntentId,
        /// How it ended.
        outcome: IntentOutcome,
        /// When.
        at: Timestamp,
    },
}

/// Reads of the intents.
#[async_trait]
pub trait IntentStore: Send + Sync {
    /// Pending intents, oldest first: of one app, or of every app (`None`).
    async fn pending_intents(&self, app_id: Option<AppId>) -> Result<Vec<Intent>, Error>;
    /// The pending intent that claims `ref_name` in `app_id`, if any.
    async fn pending_intent_on_ref(&self, app_id: AppId, ref_name: &str) -> Result<Option<Intent>, Error>;
    /// How an intent ended (`None` while pending); `not_found` when unknown.
    async fn intent_outcome(&self, id: IntentId) -> Result<Option<IntentOutcome>, Error>;
}
