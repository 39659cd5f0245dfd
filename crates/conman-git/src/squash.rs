//! Squash: the tree of a WIP ref becomes one commit on a branch.
//!
//! Invariants:
//! - the branch and the WIP ref move together (one locked ref
//!   transaction), each checked against the value the squash started from;
//! - a WIP ref that moved meanwhile (a write landed) makes the squash start
//!   over, so that write is included; a branch that moved meanwhile is a
//!   `conflict`, because the WIP tree was based on the old branch;
//! - [`plan_squash`] builds the same commit and answers those moves without
//!   applying them.

use conman_core::ports::git::{RefPlan, Sha, SquashRequest};
use conman_core::Error;
use git2::Repository;

use crate::errors::{ref_moved, signature, OrInternal};
use crate::refs::{check_name, move_together, pause, sha_of, target, OwnedMove, MAX_ATTEMPTS};

/// Squashes as [`SquashRequest`] says; the new branch commit if one was made.
pub(crate) fn squash(repo: &Repository, request: SquashRequest) -> Result<Option<Sha>, Error> {
    check_name(&request.source_ref)?;
    check_name(&request.branch_ref)?;
    let who = signature(&request.author)?;
    let mut branch_seen = None;
    for attempt in 0..MAX_ATTEMPTS {
        let Some(planned) = plan(repo, &request)? else { return Ok(None) };
        let branch_id = planned.moves[0].expected;
        if branch_seen.is_some_and(|seen| Some(seen) != branch_id) {
            return Err(ref_moved(&request.branch_ref));
        }
        branch_seen = branch_id;
        if move_together(repo, &who, &OwnedMove::borrowed(&planned.moves))? {
            return Ok(planned.commit.map(sha_of));
        }
        pause(attempt);
    }
    Err(ref_moved(&request.source_ref))
}

/// Builds the squash commit on the current refs and answers the moves that
/// land it (branch first, then the source deleted); moves nothing. `None`
/// when the source is absent.
pub(crate) fn plan_squash(repo: &Repository, request: SquashRequest) -> Result<Option<RefPlan>, Error> {
    check_name(&request.source_ref)?;
    check_name(&request.branch_ref)?;
    Ok(plan(repo, &request)?.map(|p| RefPlan {
        head: sha_of(p.moves[0].new.unwrap_or_else(git2::Oid::zero)),
        moves: p.moves.iter().map(OwnedMove::to_port).collect(),
    }))
}

struct Planned {
    /// The new branch commit, if the trees differ.
    commit: Option<git2::Oid>,
    /// Branch (expected = the branch head the commit builds on), then source.
    moves: Vec<OwnedMove>,
}

fn plan(repo: &Repository, request: &SquashRequest) -> Result<Option<Planned>, Error> {
    let who = signature(&request.author)?;
    let Some(source_id) = target(repo, &request.source_ref)? else { return Ok(None) };
    let branch_id = target(repo, &request.branch_ref)?.ok_or(Error::NotFound("ref"))?;
    let source = repo.find_commit(source_id).or_internal()?;
    let branch = repo.find_commit(branch_id).or_internal()?;
    let commit = if source.tree_id() == branch.tree_id() {
        None
    } else {
        let tree = source.tree().or_internal()?;
        Some(repo.commit(None, &who, &who, &request.message, &tree, &[&branch]).or_internal()?)
    };
    let moves = vec![
        OwnedMove {
            name: request.branch_ref.clone(),
            expected: Some(branch_id),
            new: Some(commit.unwrap_or(branch_id)),
        },
        OwnedMove { name: request.source_ref.clone(), expected: Some(source_id), new: None },
    ];
    Ok(Some(Planned { commit, moves }))
}
