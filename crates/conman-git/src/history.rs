//! Commit-graph questions: merge base and ancestry.
//!
//! Invariant: read-only; both commits must exist (`NotFound("commit")`).

use conman_core::ports::git::Sha;
use conman_core::Error;
use git2::Repository;

use crate::errors::{internal, is_not_found, OrInternal};
use crate::refs::{find_commit, sha_of};

/// The best common ancestor of `a` and `b`; `None` for unrelated histories.
pub(crate) fn merge_base(repo: &Repository, a: &Sha, b: &Sha) -> Result<Option<Sha>, Error> {
    let (a, b) = (find_commit(repo, a)?.id(), find_commit(repo, b)?.id());
    match repo.merge_base(a, b) {
        Ok(base) => Ok(Some(sha_of(base))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(internal(e)),
    }
}

/// True when `ancestor` is `descendant` or one of its ancestors.
pub(crate) fn is_ancestor(repo: &Repository, ancestor: &Sha, descendant: &Sha) -> Result<bool, Error> {
    let (ancestor, descendant) = (find_commit(repo, ancestor)?.id(), find_commit(repo, descendant)?.id());
    Ok(ancestor == descendant || repo.graph_descendant_of(descendant, ancestor).or_internal()?)
}
