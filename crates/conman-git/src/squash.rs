//! Squash: the tree of a WIP ref becomes one commit on a branch.
//!
//! Invariants:
//! - the branch and the WIP ref move together (one locked ref
//!   transaction), each checked against the value the squash started from;
//! - a WIP ref that moved meanwhile (a write landed) makes the squash start
//!   over, so that write is included; a branch that moved meanwhile is a
//!   `conflict`, because the WIP tree was based on the old branch.

use conman_core::ports::git::{Sha, SquashRequest};
use conman_core::Error;
use git2::Repository;

use crate::errors::{ref_moved, signature, OrInternal};
use crate::refs::{check_name, move_together, pause, sha_of, target, RefMove, MAX_ATTEMPTS};

/// Squashes as [`SquashRequest`] says; the new branch commit if one was made.
pub(crate) fn squash(repo: &Repository, request: SquashRequest) -> Result<Option<Sha>, Error> {
    check_name(&request.source_ref)?;
    check_name(&request.branch_ref)?;
    let who = signature(&request.author)?;
    let mut branch_seen = None;
    for attempt in 0..MAX_ATTEMPTS {
        let Some(source_id) = target(repo, &request.source_ref)? else { return Ok(None) };
        let branch_id = target(repo, &request.branch_ref)?.ok_or(Error::NotFound("ref"))?;
        if branch_seen.is_some_and(|seen| seen != branch_id) {
            return Err(ref_moved(&request.branch_ref));
        }
        branch_seen = Some(branch_id);
        let source = repo.find_commit(source_id).or_internal()?;
        let branch = repo.find_commit(branch_id).or_internal()?;
        let commit = if source.tree_id() == branch.tree_id() {
            None
        } else {
            let tree = source.tree().or_internal()?;
            Some(repo.commit(None, &who, &who, &request.message, &tree, &[&branch]).or_internal()?)
        };
        let moves = [
            RefMove { name: &request.branch_ref, expected: Some(branch_id), new: Some(commit.unwrap_or(branch_id)) },
            RefMove { name: &request.source_ref, expected: Some(source_id), new: None },
        ];
        if move_together(repo, &who, &moves)? {
            return Ok(commit.map(sha_of));
        }
        pause(attempt);
    }
    Err(ref_moved(&request.source_ref))
}
