//! Composition: changesets merged in order onto a head, and queued
//! changesets checked one by one against a head — three-way merges computed
//! on trees, in memory (SPEC §2.4, §5).
//!
//! Invariants:
//! - a merge descends only into subtrees whose ids differ between base,
//!   ours and theirs; where only one side changed an entry, that side's
//!   entry is taken whole (a subtree by id, never walked); file contents
//!   are merged only for paths changed on both sides (see [`merge`]);
//! - every base or ours tree is parsed at most once per composition or
//!   check, and the trees and commits a composition makes are never read
//!   back (see [`trees`]);
//! - every object a composition creates stays in memory — in the
//!   composer's own list, merged blobs also in libgit2's mempack on a
//!   handle of its own, for later line merges — until the composition is
//!   complete, then goes to the repository in one pack of those objects
//!   alone (none of a dropped item's; no pack when the composed commit is
//!   already stored); a check writes nothing at all, it only computes ids;
//! - no ref moves; the repository's refs and existing objects are only read;
//! - deterministic: the same inputs (signature time included) give the same
//!   commit and tree ids, byte for byte the objects libgit2 would write.

mod merge;
mod pack;
mod trees;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use conman_core::ports::composition::{CheckOutcome, ComposeItem, ComposeRequest, Composition, ItemOutcome};
use conman_core::ports::git::Sha;
use conman_core::Error;
use git2::{Mempack, ObjectType, Odb, Oid, Repository, Signature, Time};

use crate::errors::OrInternal;
use crate::refs::{oid_of, sha_of};
use merge::merge;
use trees::{Sink, Trees};

/// Sends every object `repo` creates from now on to memory: the returned
/// mempack ranks above the loose (1) and pack (2) backends, so writes land
/// in it.
fn in_memory<'o>(odb: &'o Odb<'o>) -> Result<Mempack<'o>, Error> {
    odb.add_new_mempack_backend(1000).or_internal()
}

/// Writes `objects` to the repository as one pack of their own (see
/// [`pack`]) — not `Mempack::dump`, which packs every object *reachable*
/// from each commit in the mempack (the whole repository, 10,000 blobs in
/// the bench, each time). Nothing when `head` is already stored (the same
/// composition again: its objects were persisted with it).
fn persist(repo: &Repository, odb: &Odb<'_>, head: Oid, objects: &[(Oid, ObjectType, Vec<u8>)]) -> Result<(), Error> {
    if Repository::open_bare(repo.path()).or_internal()?.odb().or_internal()?.exists(head) {
        return Ok(());
    }
    let mut seen = HashSet::new();
    let distinct: Vec<_> =
        objects.iter().filter(|(id, _, _)| seen.insert(*id)).map(|(_, kind, data)| (*kind, &data[..])).collect();
    let pack = pack::pack(distinct.into_iter());
    let mut writer = odb.packwriter().or_internal()?;
    writer.write_all(&pack).map_err(|e| Error::internal(format_args!("git: write pack: {e}")))?;
    writer.commit().or_internal()?;
    Ok(())
}

/// Composes `request` as [`ComposeRequest`] says.
pub(crate) fn compose(repo: &Repository, request: &ComposeRequest) -> Result<Composition, Error> {
    let odb = repo.odb().or_internal()?;
    let _mempack = in_memory(&odb)?;
    let who = signature(&request.author, request.time)?;
    let mut trees = Trees::new(repo, Sink::Pack)?;
    let onto = oid_of(&request.onto)?;
    // What composed so far: its commit and tree (never read back).
    let (mut head, mut head_tree) = (onto, trees.commit_tree(onto)?);
    let mut outcomes = Vec::with_capacity(request.items.len());
    for item in &request.items {
        let base = trees.commit_tree(oid_of(&item.base)?)?;
        let theirs = oid_of(&item.head)?;
        let theirs_tree = trees.commit_tree(theirs)?;
        let mark = trees.mark();
        let outcome = match merge(repo, &mut trees, base, head_tree, theirs_tree)? {
            Err(paths) => ItemOutcome::Conflicted { paths },
            Ok(tree) if tree == head_tree => ItemOutcome::AlreadyContained,
            Ok(tree) => {
                head = trees.commit(tree, &[head, theirs], &who, &item.message)?;
                head_tree = tree;
                ItemOutcome::Composed { commit: sha_of(head) }
            }
        };
        if !matches!(outcome, ItemOutcome::Composed { .. }) {
            // Nothing of a dropped item is persisted.
            trees.forget_since(mark);
        }
        outcomes.push((item.key.clone(), outcome));
    }
    if head != onto {
        persist(repo, &odb, head, trees.written_since(0))?;
    }
    Ok(Composition { head: sha_of(head), outcomes })
}

/// Checks each of `items` on its own against `onto`, in memory: the
/// revalidation of the queue after a publish. Nothing is written: merged
/// blobs and trees only get their ids.
pub(crate) fn check(repo: &Repository, onto: &Sha, items: &[ComposeItem]) -> Result<Vec<CheckOutcome>, Error> {
    let mut trees = Trees::new(repo, Sink::Hash)?;
    let ours = trees.commit_tree(oid_of(onto)?)?;
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let base = trees.commit_tree(oid_of(&item.base)?)?;
        let theirs = trees.commit_tree(oid_of(&item.head)?)?;
        outcomes.push(match merge(repo, &mut trees, base, ours, theirs)? {
            Ok(tree) => CheckOutcome::Clean { tree: sha_of(tree), head_tree: sha_of(theirs) },
            Err(paths) => CheckOutcome::Conflicted { paths },
        });
    }
    Ok(outcomes)
}

fn signature(author: &conman_core::ports::git::Signature, time: i64) -> Result<Signature<'static>, Error> {
    Signature::new(&author.name, &author.email, &Time::new(time, 0))
        .map_err(|_| Error::invalid("author", "invalid", "author name or email is not acceptable to git"))
}

impl crate::GitRepos {
    /// Composes `request` in `app`'s repository (see [`ComposeRequest`]):
    /// on a handle of its own, in parallel with every other operation; the
    /// composed objects are in the repository when it returns, no ref moved.
    pub async fn compose(&self, app: conman_core::ids::AppId, request: ComposeRequest) -> Result<Composition, Error> {
        let dir = crate::repos::repo_dir(self.root(), app);
        crate::repos::blocking(move || compose(&open_app(&dir)?, &request)).await
    }

    /// Checks each of `items` on its own against `onto` (revalidation of the
    /// queue), split across the machine's cores, each part on a handle of
    /// its own; outcomes in `items` order. Writes nothing.
    pub async fn check_against(
        &self,
        app: conman_core::ids::AppId,
        onto: Sha,
        items: Vec<ComposeItem>,
    ) -> Result<Vec<CheckOutcome>, Error> {
        let dir = crate::repos::repo_dir(self.root(), app);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Parts of at least 16 items: below that a handle costs more than it saves.
        let part = items.len().div_ceil(cores).max(16);
        // At least one part, so that an unknown `onto` is `not_found` even
        // for an empty queue.
        let chunks: Vec<Vec<ComposeItem>> =
            if items.is_empty() { vec![Vec::new()] } else { items.chunks(part).map(<[_]>::to_vec).collect() };
        let mut parts = Vec::new();
        for chunk in chunks {
            let (dir, onto) = (dir.clone(), onto.clone());
            // Spawned now, so the parts run at once; awaited in order.
            parts.push(tokio::task::spawn_blocking(move || check(&open_app(&dir)?, &onto, &chunk)));
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for part in parts {
            outcomes.extend(part.await.map_err(|e| Error::internal(format_args!("git task failed: {e}")))??);
        }
        Ok(outcomes)
    }
}

/// A handle of its own on the repository at `dir`, for one composition or
/// batch of checks: its odb gets the mempack, so no pooled handle ever sees
/// objects that were never written. A missing repository is `not_found`.
fn open_app(dir: &Path) -> Result<Repository, Error> {
    if !dir.is_dir() {
        return Err(Error::NotFound("repository"));
    }
    Repository::open_bare(dir).or_internal()
}
