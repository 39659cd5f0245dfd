//! Composition (SPEC §2.4, §5): the git port's vocabulary for building a
//! release from an ordered selection of changesets, and for checking queued
//! changesets against a new integration head.
//!
//! Invariants every adapter keeps:
//! - composition is computed in memory, on trees; no ref moves and no
//!   workspace is touched — the caller moves refs later, through an intent;
//! - items are composed strictly in order, each onto what composed before
//!   it; an item that conflicts is dropped with its conflicting paths and
//!   the rest go on without it;
//! - the result is deterministic: the same repository, request and
//!   signature time give the same commit ids.

use super::git::{Sha, Signature};

/// One changeset to compose: the revision's frozen commit and the commit it
/// was cut from, so that its change is `base → head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeItem {
    /// The caller's name for it (a changeset id): echoed in the outcome.
    pub key: String,
    /// What the change is measured from (the revision's base).
    pub base: Sha,
    /// The revision's frozen commit.
    pub head: Sha,
    /// Message of the commit that brings it in.
    pub message: String,
}

/// A composition: `items` in order onto `onto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeRequest {
    /// The integration head the release starts from.
    pub onto: Sha,
    /// The selection, in release order.
    pub items: Vec<ComposeItem>,
    /// Author and committer of the commits composition makes.
    pub author: Signature,
    /// Their time, seconds since the epoch (deterministic ids).
    pub time: i64,
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Brought in by `commit` (a merge of what composed before it and the
    /// item's head).
    Composed {
        /// The commit that brings it in.
        commit: Sha,
    },
    /// Its change is already contained in what composed before it: nothing
    /// to bring in, no commit.
    AlreadyContained,
    /// Conflicts textually with what composed before it: dropped.
    Conflicted {
        /// Conflicting paths, sorted.
        paths: Vec<String>,
    },
}

/// The result of a composition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composition {
    /// The composed commit (`onto` itself when nothing composed). Its
    /// objects are in the repository when the call returns.
    pub head: Sha,
    /// Per item, in request order: `(key, outcome)`.
    pub outcomes: Vec<(String, ItemOutcome)>,
}

/// The outcome of checking one item against a head on its own (revalidation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Merges cleanly; `tree` is the id of the merged tree (compare it with
    /// what was gated to know whether the gate must run again).
    Clean {
        /// The merged tree's id.
        tree: Sha,
        /// The tree of the item's own head (what its submit gate ran on).
        head_tree: Sha,
    },
    /// Conflicts.
    Conflicted {
        /// Conflicting paths, sorted.
        paths: Vec<String>,
    },
}

/// An annotated tag to write: the tag object only — its ref is moved by the
/// caller, through an intent, together with the branch it marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRequest {
    /// The tag's name (`r2026.12.03.1`), without `refs/tags/`.
    pub name: String,
    /// The commit it marks.
    pub target: Sha,
    /// Its message.
    pub message: String,
    /// The tagger.
    pub tagger: Signature,
    /// The tagger's time, seconds since the epoch (deterministic ids).
    pub time: i64,
}
