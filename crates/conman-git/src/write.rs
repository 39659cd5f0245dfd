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
//! - a batch that leaves the tree as it was makes no commit and moves no ref.

use conman_core::ports::git::{Sha, WriteRequest};
use conman_core::Error;
use git2::Repository;

use crate::errors::{internal, is_lost_race, signature, OrInternal};
use crate::refs::{cas, check_name, move_together, pause, sha_of, target, wait_for_lock, RefMove, MAX_ATTEMPTS};
use crate::tree_edit;

/// Applies `request` and returns the new head of its target ref.
pub(crate) fn write(repo: &Repository, request: WriteRequest) -> Result<Sha, Error> {
    check_name(&request.target_ref)?;
    check_name(&request.base_ref)?;
    let who = signature(&request.author)?;
    let ops = tree_edit::prepare(repo, request.ops)?;
    for attempt in 0..MAX_ATTEMPTS {
        let current = target(repo, &request.target_ref)?;
        let parent_id = match current {
            Some(id) => id,
            None => target(repo, &request.base_ref)?.ok_or(Error::NotFound("ref"))?,
        };
        let parent = repo.find_commit(parent_id).or_internal()?;
        let base_tree = parent.tree().or_internal()?;
        let tree_id = tree_edit::apply(repo, &base_tree, &ops)?;
        if tree_id == base_tree.id() {
            return Ok(sha_of(parent_id));
        }
        let tree = repo.find_tree(tree_id).or_internal()?;
        let commit = repo.commit(None, &who, &who, &request.message, &tree, &[&parent]).or_internal()?;
        let landed = match current {
            Some(_) => match cas(repo, &request.target_ref, commit, current) {
                Ok(()) => true,
                Err(e) if is_lost_race(&e) => {
                    if e.code() == git2::ErrorCode::Locked {
                        wait_for_lock(repo, &request.target_ref);
                    }
                    false
                }
                Err(e) => return Err(internal(e)),
            },
            None => {
                // Creating the target: the base must also still be where this
                // commit starts, or the write would undo a concurrent sync or
                // squash that moved the base (and dropped the target) meanwhile.
                let moves = [
                    RefMove { name: &request.target_ref, expected: None, new: Some(commit) },
                    RefMove { name: &request.base_ref, expected: Some(parent_id), new: Some(parent_id) },
                ];
                let landed = move_together(repo, &who, &moves)?;
                if !landed {
                    pause(attempt);
                }
                landed
            }
        };
        if landed {
            return Ok(sha_of(commit));
        }
    }
    tracing::warn!(target_ref = %request.target_ref, "write gave up after {MAX_ATTEMPTS} lost ref races");
    Err(Error::conflict("too many concurrent writes to this workspace; retry"))
}
