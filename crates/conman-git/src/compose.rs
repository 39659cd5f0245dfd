//! Composition: changesets merged in order onto a head, and queued
//! changesets checked one by one against a head — three-way merges computed
//! on trees, in memory (SPEC §2.4, §5).
//!
//! Invariants:
//! - a merge descends only into subtrees whose ids differ between base,
//!   ours and theirs; where only one side changed an entry, that side's
//!   entry is taken whole (a subtree by id, never walked); file contents
//!   are merged only for paths changed on both sides;
//! - every object a composition or a check creates goes to an in-memory
//!   object database (libgit2's mempack, on a handle of its own) until the
//!   composition is complete: a composition writes its objects to the
//!   repository in one pack at the end, a check never writes;
//! - no ref moves; the repository's refs and existing objects are only read;
//! - deterministic: the same inputs (signature time included) give the same
//!   commit and tree ids.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use conman_core::ports::composition::{CheckOutcome, ComposeItem, ComposeRequest, Composition, ItemOutcome};
use conman_core::ports::git::Sha;
use conman_core::Error;
use git2::{Buf, IndexEntry, IndexTime, Mempack, Odb, Oid, Repository, Signature, Time, Tree};

use crate::errors::OrInternal;
use crate::refs::{find_commit, sha_of};

const MODE_TREE: i32 = 0o040000;

/// An entry of a tree: its id and file mode.
type Entry = (Oid, i32);

/// Sends every object `repo` creates from now on to memory: the returned
/// mempack ranks above the loose (1) and pack (2) backends, so writes land
/// in it.
fn in_memory<'o>(odb: &'o Odb<'o>) -> Result<Mempack<'o>, Error> {
    odb.add_new_mempack_backend(1000).or_internal()
}

/// Writes every object in `mempack` to the repository as one pack.
fn persist(repo: &Repository, odb: &Odb<'_>, mempack: &Mempack<'_>) -> Result<(), Error> {
    let mut pack = Buf::new();
    mempack.dump(repo, &mut pack).or_internal()?;
    let mut writer = odb.packwriter().or_internal()?;
    writer.write_all(&pack).map_err(|e| Error::internal(format_args!("git: write pack: {e}")))?;
    writer.commit().or_internal()?;
    Ok(())
}

/// Composes `request` as [`ComposeRequest`] says.
pub(crate) fn compose(repo: &Repository, request: &ComposeRequest) -> Result<Composition, Error> {
    let odb = repo.odb().or_internal()?;
    let mempack = in_memory(&odb)?;
    let who = signature(&request.author, request.time)?;
    let mut head = find_commit(repo, &request.onto)?;
    let mut outcomes = Vec::with_capacity(request.items.len());
    for item in &request.items {
        let outcome = compose_one(repo, &who, &head, item)?;
        if let ItemOutcome::Composed { commit } = &outcome {
            head = find_commit(repo, commit)?;
        }
        outcomes.push((item.key.clone(), outcome));
    }
    if sha_of(head.id()) != request.onto {
        persist(repo, &odb, &mempack)?;
    }
    Ok(Composition { head: sha_of(head.id()), outcomes })
}

/// Brings `item` in on top of `head`.
fn compose_one(
    repo: &Repository,
    who: &Signature<'_>,
    head: &git2::Commit<'_>,
    item: &ComposeItem,
) -> Result<ItemOutcome, Error> {
    let theirs = find_commit(repo, &item.head)?;
    let ours_tree = head.tree_id();
    let merged = match merge_item(repo, ours_tree, item)? {
        Ok(tree) => tree,
        Err(paths) => return Ok(ItemOutcome::Conflicted { paths }),
    };
    if merged == ours_tree {
        return Ok(ItemOutcome::AlreadyContained);
    }
    let tree = repo.find_tree(merged).or_internal()?;
    let commit = repo.commit(None, who, who, &item.message, &tree, &[head, &theirs]).or_internal()?;
    Ok(ItemOutcome::Composed { commit: sha_of(commit) })
}

/// Checks each of `items` on its own against `onto`, in memory: the
/// revalidation of the queue after a publish. Nothing is written.
pub(crate) fn check(repo: &Repository, onto: &Sha, items: &[ComposeItem]) -> Result<Vec<CheckOutcome>, Error> {
    let odb = repo.odb().or_internal()?;
    let mempack = in_memory(&odb)?;
    let ours = find_commit(repo, onto)?.tree_id();
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        outcomes.push(match merge_item(repo, ours, item)? {
            Ok(tree) => CheckOutcome::Clean { tree: sha_of(tree) },
            Err(paths) => CheckOutcome::Conflicted { paths },
        });
    }
    // The merged trees were only needed for their ids.
    mempack.reset().or_internal()?;
    Ok(outcomes)
}

/// `item`'s change (its base → its head) merged onto the tree `ours`: the
/// merged tree's id, or the sorted conflicting paths.
fn merge_item(repo: &Repository, ours: Oid, item: &ComposeItem) -> Result<Result<Oid, Vec<String>>, Error> {
    let base = find_commit(repo, &item.base)?.tree_id();
    let theirs = find_commit(repo, &item.head)?.tree_id();
    let mut merge = TreeMerge::new(repo);
    let merged = merge.trees(&mut String::new(), Some(base), Some(ours), Some(theirs))?;
    if !merge.conflicts.is_empty() {
        merge.conflicts.sort();
        merge.conflicts.dedup();
        return Ok(Err(merge.conflicts));
    }
    Ok(Ok(match merged {
        Some(tree) => tree,
        None => empty_tree(repo)?,
    }))
}

/// One three-way merge of trees, collecting conflicting paths.
struct TreeMerge<'r> {
    repo: &'r Repository,
    conflicts: Vec<String>,
}

impl<'r> TreeMerge<'r> {
    fn new(repo: &'r Repository) -> Self {
        TreeMerge { repo, conflicts: Vec::new() }
    }

    /// The merge of three trees at `path` (`None` = absent): the merged
    /// tree's id, or `None` when it is empty. Conflicts are collected; the
    /// id is meaningless once one was found.
    fn trees(
        &mut self,
        path: &mut String,
        base: Option<Oid>,
        ours: Option<Oid>,
        theirs: Option<Oid>,
    ) -> Result<Option<Oid>, Error> {
        if theirs == base || ours == theirs {
            return Ok(ours);
        }
        if ours == base {
            return Ok(theirs);
        }
        let base_tree = self.tree(base)?;
        let ours_tree = self.tree(ours)?;
        let theirs_tree = self.tree(theirs)?;
        let mut names: BTreeMap<Vec<u8>, [Option<Entry>; 3]> = BTreeMap::new();
        for (side, tree) in [&base_tree, &ours_tree, &theirs_tree].into_iter().enumerate() {
            for entry in tree.iter().flat_map(|t| t.iter()) {
                names.entry(entry.name_bytes().to_vec()).or_default()[side] = Some((entry.id(), entry.filemode()));
            }
        }
        let mut builder = self.repo.treebuilder(ours_tree.as_ref()).or_internal()?;
        let mut changed = false;
        for (name, [b, o, t]) in names {
            if t == b || o == t {
                continue; // ours stands
            }
            let result = if o == b { t } else { self.entries(path, &name, b, o, t)? };
            if result == o {
                continue;
            }
            changed = true;
            match result {
                Some((id, mode)) => {
                    builder.insert(&name, id, mode).or_internal()?;
                }
                None => {
                    builder.remove(&name).or_internal()?;
                }
            }
        }
        if !changed {
            return Ok(ours);
        }
        if builder.is_empty() {
            return Ok(None);
        }
        Ok(Some(builder.write().or_internal()?))
    }

    /// The merge of one entry changed on both sides, differently.
    fn entries(
        &mut self,
        path: &mut String,
        name: &[u8],
        base: Option<Entry>,
        ours: Option<Entry>,
        theirs: Option<Entry>,
    ) -> Result<Option<Entry>, Error> {
        let len = path.len();
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&String::from_utf8_lossy(name));
        let is_tree = |e: Option<Entry>| e.is_some_and(|(_, mode)| mode == MODE_TREE);
        let result = match (base, ours, theirs) {
            // Directories (or nothing) on every side: merged file by file,
            // an absent side being an empty directory — deleting a file
            // and adding another in the same directory is no conflict.
            (b, o, t) if [b, o, t].into_iter().all(|e| e.is_none() || is_tree(e)) => {
                let merged = self.trees(path, b.map(|e| e.0), o.map(|e| e.0), t.map(|e| e.0))?;
                merged.map(|id| (id, MODE_TREE))
            }
            (Some(b), Some(o), Some(t)) if !is_tree(Some(b)) && !is_tree(Some(o)) && !is_tree(Some(t)) => {
                self.file(path, b, o, t)?
            }
            // Added on both sides differently, deleted on one and changed
            // on the other, or a file on one side and a directory on the
            // other: git calls each a conflict.
            _ => {
                self.conflicts.push(path.clone());
                None
            }
        };
        path.truncate(len);
        Ok(result)
    }

    /// A file changed on both sides: its contents merged line by line.
    fn file(&mut self, path: &str, base: Entry, ours: Entry, theirs: Entry) -> Result<Option<Entry>, Error> {
        let mode = if ours.1 == base.1 { theirs.1 } else { ours.1 };
        if ours.1 != base.1 && theirs.1 != base.1 && ours.1 != theirs.1 {
            self.conflicts.push(path.to_owned());
            return Ok(None);
        }
        if ours.0 == theirs.0 {
            return Ok(Some((ours.0, mode)));
        }
        let entry = |(id, mode): Entry| IndexEntry {
            ctime: IndexTime::new(0, 0),
            mtime: IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: mode as u32,
            uid: 0,
            gid: 0,
            file_size: 0,
            id,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        let merged = self.repo.merge_file_from_index(&entry(base), &entry(ours), &entry(theirs), None).or_internal()?;
        if !merged.is_automergeable() {
            self.conflicts.push(path.to_owned());
            return Ok(None);
        }
        let blob = self.repo.blob(merged.content()).or_internal()?;
        Ok(Some((blob, mode)))
    }

    fn tree(&self, id: Option<Oid>) -> Result<Option<Tree<'r>>, Error> {
        id.map(|id| self.repo.find_tree(id).or_internal()).transpose()
    }
}

/// The empty tree's id (written to the in-memory odb when needed).
fn empty_tree(repo: &Repository) -> Result<Oid, Error> {
    repo.treebuilder(None).and_then(|b| b.write()).or_internal()
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
