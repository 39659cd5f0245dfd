//! File writes: a batch of operations becomes one commit on the target
//! ref, moved by compare-and-swap.
//!
//! Invariants:
//! - all or nothing: a refused operation fails the whole batch before any
//!   ref moves (blobs already stored are unreachable garbage, nothing more);
//! - no lost update: when another writer moved the ref first, the
//!   operations are re-applied on the new head, up to
//!   [`MAX_ATTEMPTS`] times, then the answer is `conflict`;
//! - the target ref is created only while the base ref still holds the
//!   commit the write started from (both checked under their locks), so a
//!   write racing a sync or squash never resurrects edits on a stale base;
//! - a batch that leaves the tree as it was makes no commit and moves no ref;
//! - [`plan_write`] builds the same commit and answers those moves without
//!   applying them (the core records them as an intent first).

use conman_core::ports::git::{RefPlan, Sha, WriteRequest};
use conman_core::Error;
use git2::Repository;

use crate::errors::{signature, OrInternal};
use crate::refs::{check_name, move_together, pause, sha_of, target, OwnedMove, MAX_ATTEMPTS};
use crate::tree_edit::{self, PreparedOp};

/// Applies `request` and returns the new head of its target ref.
pub(crate) fn write(repo: &Repository, mut request: WriteRequest) -> Result<Sha, Error> {
    let who = signature(&request.author)?;
    let ops = checked(repo, &mut request)?;
    for attempt in 0..MAX_ATTEMPTS {
        let (head, moves) = plan(repo, &request, &ops)?;
        if moves.is_empty() || move_together(repo, &who, &OwnedMove::borrowed(&moves))? {
            return Ok(sha_of(head));
        }
        pause(attempt);
    }
    tracing::warn!(target_ref = %request.target_ref, "write gave up after {MAX_ATTEMPTS} lost ref races");
    Err(Error::conflict("too many concurrent writes to this workspace; retry"))
}

/// Builds the commit `request` makes on the current refs and answers the
/// moves that land it; moves nothing.
pub(crate) fn plan_write(repo: &Repository, mut request: WriteRequest) -> Result<RefPlan, Error> {
    let ops = checked(repo, &mut request)?;
    let (head, moves) = plan(repo, &request, &ops)?;
    Ok(RefPlan { head: sha_of(head), moves: moves.iter().map(OwnedMove::to_port).collect() })
}

fn checked(repo: &Repository, request: &mut WriteRequest) -> Result<Vec<PreparedOp>, Error> {
    check_name(&request.target_ref)?;
    check_name(&request.base_ref)?;
    tree_edit::prepare(repo, std::mem::take(&mut request.ops))
}

/// The new head and the moves that land it (none when the tree is unchanged).
fn plan(repo: &Repository, request: &WriteRequest, ops: &[PreparedOp]) -> Result<(git2::Oid, Vec<OwnedMove>), Error> {
    let who = signature(&request.author)?;
    let current = target(repo, &request.target_ref)?;
    let parent_id = match current {
        Some(id) => id,
        None => target(repo, &request.base_ref)?.ok_or(Error::NotFound("ref"))?,
    };
    let parent = repo.find_commit(parent_id).or_internal()?;
    let base_tree = parent.tree().or_internal()?;
    let tree_id = tree_edit::apply(repo, &base_tree, ops)?;
    if tree_id == base_tree.id() {
        return Ok((parent_id, Vec::new()));
    }
    let tree = repo.find_tree(tree_id).or_internal()?;
    let commit = repo.commit(None, &who, &who, &request.message, &tree, &[&parent]).or_internal()?;
    let mut moves = vec![OwnedMove { name: request.target_ref.clone(), expected: current, new: Some(commit) }];
    if current.is_none() {
        // Creating the target: the base must also still be where this
        // commit starts, or the write would undo a concurrent sync or
        // squash that moved the base (and dropped the target) meanwhile.
        moves.push(OwnedMove { name: request.base_ref.clone(), expected: Some(parent_id), new: Some(parent_id) });
    }
    Ok((commit, moves))
}
