//! The git port (SPEC §5): one bare repository per app, commits built in
//! memory, ref updates as compare-and-swap.
//!
//! Invariants every adapter keeps:
//! - no working tree is ever checked out; trees are built from objects;
//! - every ref update is a compare-and-swap against the expected old value
//!   (`None` = the ref must not exist); a lost race is retried internally
//!   where the operation can be re-derived (file writes), otherwise answered
//!   with [`Error::Conflict`];
//! - blocking library handles never cross an `.await` (adapters run them on
//!   blocking threads).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::composition::{CheckOutcome, ComposeItem, ComposeRequest, Composition, TagRequest};
use crate::error::Error;
use crate::ids::AppId;
use crate::validation::RepoPath;

/// A full 40-hex commit id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sha(pub String);

impl Sha {
    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a commit is by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

/// One file operation of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    /// Create or replace a file.
    Put {
        /// Where.
        path: RepoPath,
        /// Bytes.
        content: Vec<u8>,
    },
    /// Delete a file (it must exist: otherwise `not_found`).
    Delete {
        /// Which.
        path: RepoPath,
    },
    /// Move a file (source must exist; destination must not: `conflict`).
    Move {
        /// From.
        from: RepoPath,
        /// To.
        to: RepoPath,
    },
}

/// A write: apply `ops` on top of `target_ref` (or of `base_ref` when
/// `target_ref` does not exist yet) as one new commit, and move
/// `target_ref` to it by compare-and-swap, retrying on lost races.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// Ref that receives the commit (e.g. a workspace's WIP ref).
    pub target_ref: String,
    /// Ref the first commit starts from when `target_ref` is absent.
    pub base_ref: String,
    /// Operations, applied in order; all or nothing.
    pub ops: Vec<FileOp>,
    /// Commit message.
    pub message: String,
    /// Author and committer.
    pub author: Signature,
}

/// Squash: make the tree of `source_ref` one commit on `branch_ref`
/// (parent = branch head), move the branch by CAS, then delete
/// `source_ref` by CAS. Answers `None` (and deletes the source) when the
/// source is absent or its tree equals the branch's.
#[derive(Debug, Clone)]
pub struct SquashRequest {
    /// The WIP ref.
    pub source_ref: String,
    /// The workspace branch.
    pub branch_ref: String,
    /// Commit message.
    pub message: String,
    /// Author and committer.
    pub author: Signature,
}

/// How `sync` combines the workspace with its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStrategy {
    /// A merge commit with parents (workspace head, upstream).
    Merge,
    /// One commit on top of upstream carrying the workspace's changes.
    Rebase,
}

/// Sync: bring `upstream` into the workspace. Pending edits of
/// `wip_ref` are included; on success the branch holds the result and the
/// WIP ref is gone. On conflict nothing changes.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The workspace branch.
    pub branch_ref: String,
    /// The WIP ref (may not exist).
    pub wip_ref: String,
    /// Commit to bring in.
    pub upstream: Sha,
    /// Merge or rebase.
    pub strategy: SyncStrategy,
    /// Commit message.
    pub message: String,
    /// Author and committer.
    pub author: Signature,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Upstream was already contained; nothing changed.
    UpToDate {
        /// The unchanged head.
        head: Sha,
    },
    /// The branch moved to `head`.
    Updated {
        /// New branch head.
        head: Sha,
    },
    /// Conflicts: nothing changed.
    Conflicts {
        /// Conflicting paths, sorted.
        paths: Vec<String>,
    },
}

/// One ref of a planned move: it must hold `from` (`None` = absent) and
/// then holds `to` (`None` = deleted). `from == to` only checks that the
/// ref still holds its value (e.g. the base a new WIP ref starts from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefMove {
    /// Full ref name.
    pub name: String,
    /// The value the move starts from.
    pub from: Option<Sha>,
    /// The value the move ends at.
    pub to: Option<Sha>,
}

/// What a planned operation will do: its objects are written, no ref has
/// moved. The core records the moves as an intent, then applies them with
/// [`GitPort::move_refs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPlan {
    /// The workspace head once the moves are applied.
    pub head: Sha,
    /// The ref moves, applied together (empty: nothing changes).
    pub moves: Vec<RefMove>,
}

/// What a planned sync will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncPlan {
    /// Upstream is already contained; nothing changes.
    UpToDate {
        /// The unchanged head.
        head: Sha,
    },
    /// The branch moves to `plan.head` and the WIP ref goes away.
    Update(RefPlan),
    /// Conflicts: nothing changes.
    Conflicts {
        /// Conflicting paths, sorted.
        paths: Vec<String>,
    },
}

/// A file or directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirEntry {
    /// Last segment.
    pub name: String,
    /// Full repository path.
    pub path: String,
    /// `file`, `dir`, `symlink` or `submodule`.
    pub kind: EntryKind,
    /// Size in bytes for files.
    pub size: Option<u64>,
}

/// Kind of a tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Regular or executable file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Submodule (gitlink).
    Submodule,
}

/// What is at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A file's bytes.
    File(Vec<u8>),
    /// A directory's entries, sorted by name.
    Dir(Vec<DirEntry>),
}

/// How much a [`GitPort::diff`] reports per changed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffDetail {
    /// Paths and status only.
    Paths,
    /// Also the unified patch text and the added/removed line counts.
    Patch,
    /// Also both sides' full contents (for semantic diffs).
    Contents,
}

/// How a file changed between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Only in the new commit.
    Added,
    /// In both, with different content or mode.
    Modified,
    /// Only in the old commit.
    Deleted,
    /// Moved with identical content (exact renames only).
    Renamed,
}

/// Largest patch text kept per file; longer patches are cut at a line
/// boundary and flagged `patch_truncated`.
pub const MAX_PATCH_BYTES: usize = 1024 * 1024;

/// One changed file of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Path in the new commit (the old path for deletions).
    pub path: String,
    /// Path in the old commit, for renames.
    pub old_path: Option<String>,
    /// What happened.
    pub status: ChangeStatus,
    /// Either side is binary (no patch, no line counts, no contents parse).
    pub binary: bool,
    /// Lines added (`Patch` detail; 0 otherwise or for binaries).
    pub additions: u32,
    /// Lines removed (`Patch` detail; 0 otherwise or for binaries).
    pub deletions: u32,
    /// Unified diff text of this file, starting at its `diff --git` header
    /// (`Patch` detail only).
    pub patch: Option<String>,
    /// The patch text was cut at [`MAX_PATCH_BYTES`].
    pub patch_truncated: bool,
    /// Old content (`Contents` detail; `None` when added).
    pub old_content: Option<Vec<u8>>,
    /// New content (`Contents` detail; `None` when deleted).
    pub new_content: Option<Vec<u8>>,
}

/// Where a new repository comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// A fresh repository with one initial commit on `branch`.
    Init,
    /// A clone of a local path or URL; `branch` must exist there.
    Import(String),
}

/// The git operations the core needs.
#[async_trait]
pub trait GitPort: Send + Sync {
    /// Creates the app's bare repository and returns the head of `branch`.
    /// A leftover repository of the same app id is replaced.
    async fn create_repo(&self, app: AppId, source: RepoSource, branch: &str, author: &Signature)
        -> Result<Sha, Error>;
    /// Removes the app's repository (used to undo a failed app creation).
    async fn remove_repo(&self, app: AppId) -> Result<(), Error>;
    /// The value a ref holds, if it exists: a branch's commit, an annotated
    /// tag's tag object (the value a [`RefMove`] names).
    async fn resolve_ref(&self, app: AppId, name: &str) -> Result<Option<Sha>, Error>;
    /// What is at `path` (`None` = root) in commit `rev`; `None` if nothing.
    async fn read(&self, app: AppId, rev: &Sha, path: Option<&RepoPath>) -> Result<Option<Node>, Error>;
    /// Applies a write (see [`WriteRequest`]) and returns the new commit.
    async fn write(&self, app: AppId, request: WriteRequest) -> Result<Sha, Error>;
    /// Squashes (see [`SquashRequest`]); the new branch commit if one was made.
    async fn squash(&self, app: AppId, request: SquashRequest) -> Result<Option<Sha>, Error>;
    /// Syncs a workspace with upstream (see [`SyncRequest`]).
    async fn sync(&self, app: AppId, request: SyncRequest) -> Result<SyncOutcome, Error>;
    /// Moves (`new = Some`) or deletes (`new = None`) a ref, by CAS against
    /// `expected` (`None` = must not exist). A mismatch is `conflict`.
    async fn update_ref(&self, app: AppId, name: &str, new: Option<&Sha>, expected: Option<&Sha>) -> Result<(), Error>;
    /// Builds the commit a [`WriteRequest`] would make and answers the ref
    /// moves that land it, moving nothing.
    async fn plan_write(&self, app: AppId, request: WriteRequest) -> Result<RefPlan, Error>;
    /// Builds the commit a [`SquashRequest`] would make and answers the ref
    /// moves that land it (branch, then source deleted), moving nothing;
    /// `None` when the source is absent.
    async fn plan_squash(&self, app: AppId, request: SquashRequest) -> Result<Option<RefPlan>, Error>;
    /// Computes what a [`SyncRequest`] would do, writing its commits and
    /// moving nothing.
    async fn plan_sync(&self, app: AppId, request: SyncRequest) -> Result<SyncPlan, Error>;
    /// Applies `moves` together, each checked against its `from` under the
    /// refs' locks: all move or none (`conflict` when a ref holds something
    /// else). A `to` commit must exist (`not_found`).
    async fn move_refs(&self, app: AppId, moves: &[RefMove]) -> Result<(), Error>;
    /// The best common ancestor of two commits.
    async fn merge_base(&self, app: AppId, a: &Sha, b: &Sha) -> Result<Option<Sha>, Error>;
    /// True when `ancestor` is `descendant` or one of its ancestors.
    async fn is_ancestor(&self, app: AppId, ancestor: &Sha, descendant: &Sha) -> Result<bool, Error>;
    /// The files that differ between the trees of commits `from` and `to`,
    /// sorted by path, at the given level of detail. Identical subtrees are
    /// skipped by object id, so the cost follows the change, not the repo.
    async fn diff(&self, app: AppId, from: &Sha, to: &Sha, detail: DiffDetail) -> Result<Vec<FileChange>, Error>;
    /// Composes `request` in memory (see [`ComposeRequest`]): the composed
    /// objects are written when it returns, no ref moves.
    async fn compose(&self, app: AppId, request: ComposeRequest) -> Result<Composition, Error>;
    /// Checks each of `items` on its own against `onto` (revalidation of
    /// the queue); outcomes in `items` order; writes nothing.
    async fn check_against(&self, app: AppId, onto: Sha, items: Vec<ComposeItem>) -> Result<Vec<CheckOutcome>, Error>;
    /// Writes the annotated tag object of `request` and returns its id; no
    /// ref moves (`not_found` when the target commit does not exist).
    async fn write_tag(&self, app: AppId, request: TagRequest) -> Result<Sha, Error>;
}
