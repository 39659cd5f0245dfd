//! Sync: bring an upstream commit into a workspace (branch + pending WIP
//! edits) by merge or by rebase, computed on trees in memory.
//!
//! Invariants:
//! - a conflict answers the conflicting paths and changes no ref;
//! - on success the branch holds the result and the WIP ref is gone, both
//!   moved in one locked ref transaction checked against the values the
//!   merge was computed from; when either moved meanwhile the sync is
//!   recomputed, so a write that landed in between is never dropped;
//! - [`plan_sync`] computes the same result and answers those moves without
//!   applying them.

use conman_core::ports::git::{RefPlan, SyncOutcome, SyncPlan, SyncRequest, SyncStrategy};
use conman_core::Error;
use git2::{Commit, Index, Oid, Repository, Tree};

use crate::errors::{internal, is_not_found, signature, OrInternal};
use crate::refs::{check_name, find_commit, move_together, pause, sha_of, target, OwnedMove, MAX_ATTEMPTS};

/// Message of the commit that saves pending WIP edits before a merge.
const SAVE_MESSAGE: &str = "Save workspace edits before sync";

/// Syncs as [`SyncRequest`] says.
pub(crate) fn sync(repo: &Repository, request: SyncRequest) -> Result<SyncOutcome, Error> {
    check_name(&request.branch_ref)?;
    check_name(&request.wip_ref)?;
    let who = signature(&request.author)?;
    for attempt in 0..MAX_ATTEMPTS {
        let (head, moves) = match plan(repo, &request)? {
            Planned::UpToDate(head) => return Ok(SyncOutcome::UpToDate { head: sha_of(head) }),
            Planned::Conflicts(paths) => return Ok(SyncOutcome::Conflicts { paths }),
            Planned::Update(head, moves) => (head, moves),
        };
        if move_together(repo, &who, &OwnedMove::borrowed(&moves))? {
            return Ok(SyncOutcome::Updated { head: sha_of(head) });
        }
        pause(attempt);
    }
    Err(Error::conflict("the workspace kept changing during sync; retry"))
}

/// Computes the sync on the current refs, writing its commits and answering
/// the moves that land it; moves nothing.
pub(crate) fn plan_sync(repo: &Repository, request: SyncRequest) -> Result<SyncPlan, Error> {
    check_name(&request.branch_ref)?;
    check_name(&request.wip_ref)?;
    Ok(match plan(repo, &request)? {
        Planned::UpToDate(head) => SyncPlan::UpToDate { head: sha_of(head) },
        Planned::Conflicts(paths) => SyncPlan::Conflicts { paths },
        Planned::Update(head, moves) => {
            SyncPlan::Update(RefPlan { head: sha_of(head), moves: moves.iter().map(OwnedMove::to_port).collect() })
        }
    })
}

enum Planned {
    UpToDate(Oid),
    Conflicts(Vec<String>),
    Update(Oid, Vec<OwnedMove>),
}

fn plan(repo: &Repository, request: &SyncRequest) -> Result<Planned, Error> {
    let who = signature(&request.author)?;
    let upstream = find_commit(repo, &request.upstream)?;
    let branch_id = target(repo, &request.branch_ref)?.ok_or(Error::NotFound("ref"))?;
    let wip_id = target(repo, &request.wip_ref)?;
    let head_id = wip_id.unwrap_or(branch_id);
    if contains(repo, head_id, upstream.id())? {
        return Ok(Planned::UpToDate(head_id));
    }
    let branch = repo.find_commit(branch_id).or_internal()?;
    let head = repo.find_commit(head_id).or_internal()?;
    let pending = head.tree_id() != branch.tree_id();
    let new_head = if !pending && contains(repo, upstream.id(), branch_id)? {
        upstream.id()
    } else {
        let merged = match merge(repo, &head, &upstream)? {
            Ok(tree) => tree,
            Err(paths) => return Ok(Planned::Conflicts(paths)),
        };
        let ours = if pending {
            let tree = head.tree().or_internal()?;
            repo.find_commit(repo.commit(None, &who, &who, SAVE_MESSAGE, &tree, &[&branch]).or_internal()?)
                .or_internal()?
        } else {
            branch.clone()
        };
        let parents = match request.strategy {
            SyncStrategy::Merge => vec![&ours, &upstream],
            SyncStrategy::Rebase => vec![&upstream],
        };
        repo.commit(None, &who, &who, &request.message, &merged, &parents).or_internal()?
    };
    let moves = vec![
        OwnedMove { name: request.branch_ref.clone(), expected: Some(branch_id), new: Some(new_head) },
        OwnedMove { name: request.wip_ref.clone(), expected: wip_id, new: None },
    ];
    Ok(Planned::Update(new_head, moves))
}

/// True when `descendant` is `ancestor` or descends from it.
fn contains(repo: &Repository, descendant: Oid, ancestor: Oid) -> Result<bool, Error> {
    Ok(descendant == ancestor || repo.graph_descendant_of(descendant, ancestor).or_internal()?)
}

/// The merged tree of `ours` and `theirs` over their merge base (the empty
/// tree for unrelated histories), or the sorted conflicting paths.
fn merge<'r>(
    repo: &'r Repository,
    ours: &Commit<'r>,
    theirs: &Commit<'r>,
) -> Result<Result<Tree<'r>, Vec<String>>, Error> {
    let base_tree = match repo.merge_base(ours.id(), theirs.id()) {
        Ok(base) => repo.find_commit(base).and_then(|c| c.tree()).or_internal()?,
        Err(e) if is_not_found(&e) => {
            repo.find_tree(repo.treebuilder(None).and_then(|b| b.write()).or_internal()?).or_internal()?
        }
        Err(e) => return Err(internal(e)),
    };
    let our_tree = ours.tree().or_internal()?;
    let their_tree = theirs.tree().or_internal()?;
    let mut index = repo.merge_trees(&base_tree, &our_tree, &their_tree, None).or_internal()?;
    if index.has_conflicts() {
        return Ok(Err(conflict_paths(&index)?));
    }
    let merged = index.write_tree_to(repo).or_internal()?;
    Ok(Ok(repo.find_tree(merged).or_internal()?))
}

fn conflict_paths(index: &Index) -> Result<Vec<String>, Error> {
    let mut paths = Vec::new();
    for conflict in index.conflicts().or_internal()? {
        let conflict = conflict.or_internal()?;
        for entry in [conflict.our, conflict.their, conflict.ancestor].into_iter().flatten() {
            paths.push(String::from_utf8_lossy(&entry.path).into_owned());
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}
