//! In-memory tree editing: applies put / delete / move operations to a
//! commit's tree and writes the new tree, touching only the directories
//! along the changed paths.
//!
//! Invariants:
//! - a directory is loaded (one `TreeBuilder` seeded from its tree) only
//!   when an operation walks through it; untouched subtrees keep their ids;
//! - new trees are written bottom-up, only for directories an operation
//!   changed;
//! - a directory left empty disappears at once (git stores no empty trees),
//!   so a later operation of the same batch sees it as absent;
//! - an operation that fails leaves the edit in an unusable state: the
//!   caller drops the whole edit (a batch is all or nothing).

use std::collections::btree_map::{BTreeMap, Entry};

use conman_core::ports::git::FileOp;
use conman_core::validation::RepoPath;
use conman_core::Error;
use git2::{ErrorClass, Oid, Repository, Tree, TreeBuilder};

use crate::errors::{internal, OrInternal};

const MODE_TREE: i32 = 0o040000;
const MODE_FILE: i32 = 0o100644;
const MODE_EXECUTABLE: i32 = 0o100755;

/// A file operation whose content is already stored as a blob, so that a
/// retried write does not hash the bytes again.
#[derive(Debug, Clone)]
pub(crate) enum PreparedOp {
    /// Create or replace a file with this blob.
    Put { path: RepoPath, blob: Oid },
    /// Delete a file.
    Delete { path: RepoPath },
    /// Move a file.
    Move { from: RepoPath, to: RepoPath },
}

/// Stores the contents of `ops` as blobs and refuses segments git reserves.
pub(crate) fn prepare(repo: &Repository, ops: Vec<FileOp>) -> Result<Vec<PreparedOp>, Error> {
    ops.into_iter()
        .map(|op| {
            Ok(match op {
                FileOp::Put { path, content } => {
                    check_segments(&path, "path")?;
                    PreparedOp::Put { blob: repo.blob(&content).or_internal()?, path }
                }
                FileOp::Delete { path } => PreparedOp::Delete { path },
                FileOp::Move { from, to } => {
                    check_segments(&to, "to")?;
                    PreparedOp::Move { from, to }
                }
            })
        })
        .collect()
}

fn check_segments(path: &RepoPath, field: &str) -> Result<(), Error> {
    if path.segments().any(conman_core::validation::is_git_reserved) {
        return Err(reserved(field));
    }
    Ok(())
}

fn reserved(field: &str) -> Error {
    Error::invalid(field, "reserved", "git does not accept this path (a segment is reserved: '.git' in some spelling)")
}

/// Applies `ops` in order on top of `base` and returns the id of the new
/// root tree (equal to `base`'s id when nothing changed).
pub(crate) fn apply(repo: &Repository, base: &Tree<'_>, ops: &[PreparedOp]) -> Result<Oid, Error> {
    let mut root = Dir::load(repo, Some(base))?;
    for op in ops {
        match op {
            PreparedOp::Put { path, blob } => {
                root.insert(repo, &segments(path), *blob, Insert::Put).map_err(|e| e.for_put(path, "path"))?;
            }
            PreparedOp::Delete { path } => {
                root.remove(repo, &segments(path)).map_err(|e| e.for_delete(path, "path"))?;
            }
            PreparedOp::Move { from, to } => {
                let (blob, mode) = root.remove(repo, &segments(from)).map_err(|e| e.for_delete(from, "from"))?;
                if from == to {
                    return Err(Error::conflict(format!("destination {to} already exists")));
                }
                root.insert(repo, &segments(to), blob, Insert::New(mode)).map_err(|e| e.for_put(to, "to"))?;
            }
        }
    }
    if !root.dirty {
        return Ok(base.id());
    }
    root.write_root()
}

fn segments(path: &RepoPath) -> Vec<&str> {
    path.segments().collect()
}

/// Why one step of an operation failed, before it is phrased for the caller.
#[derive(Debug)]
enum Refusal {
    /// Nothing at the path (or a parent is missing or is a file).
    Missing,
    /// The path is a directory.
    Directory,
    /// A parent segment is a file.
    ParentIsFile,
    /// The path already exists (move destination).
    Exists,
    /// git refused the name of an entry.
    Reserved,
    /// libgit2 failed.
    Failed(Error),
}

impl From<git2::Error> for Refusal {
    fn from(e: git2::Error) -> Self {
        if e.class() == ErrorClass::Tree {
            // Tree-builder refusals are about entry names; the objects we insert always exist.
            Refusal::Reserved
        } else {
            Refusal::Failed(internal(e))
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Failed(e)
    }
}

impl Refusal {
    /// Phrases a refusal of a put (or of a move's destination).
    fn for_put(self, path: &RepoPath, field: &str) -> Error {
        match self {
            Refusal::Directory => Error::conflict(format!("{path} is a directory")),
            Refusal::ParentIsFile | Refusal::Missing => {
                Error::conflict(format!("a parent directory of {path} is a file"))
            }
            Refusal::Exists => Error::conflict(format!("destination {path} already exists")),
            Refusal::Reserved => reserved(field),
            Refusal::Failed(e) => e,
        }
    }

    /// Phrases a refusal of a delete (or of a move's source).
    fn for_delete(self, path: &RepoPath, field: &str) -> Error {
        match self {
            Refusal::Missing | Refusal::ParentIsFile | Refusal::Exists => Error::NotFound("file"),
            Refusal::Directory => {
                Error::invalid(field, "is_directory", format!("{path} is a directory; name its files instead"))
            }
            Refusal::Reserved => reserved(field),
            Refusal::Failed(e) => e,
        }
    }
}

/// How a blob is placed at a path.
#[derive(Debug, Clone, Copy)]
enum Insert {
    /// Create or replace; a replaced executable stays executable.
    Put,
    /// Create with this mode; the path must be free.
    New(i32),
}

/// One loaded directory.
struct Dir<'r> {
    /// The directory's entries. For a subdirectory also present in
    /// `subdirs` the entry is stale until [`Dir::write_into`] runs; a
    /// subdirectory created by this edit has no entry here yet.
    builder: TreeBuilder<'r>,
    /// Subdirectories loaded for editing. Never empty ones: an emptied
    /// subdirectory is dropped at once.
    subdirs: BTreeMap<String, Dir<'r>>,
    /// Whether anything below changed.
    dirty: bool,
}

/// What a name in a directory is.
enum Child<'a, 'r> {
    Dir(&'a mut Dir<'r>),
    File,
    Missing,
}

impl<'r> Dir<'r> {
    fn load(repo: &'r Repository, tree: Option<&Tree<'_>>) -> Result<Self, Error> {
        Ok(Dir { builder: repo.treebuilder(tree).or_internal()?, subdirs: BTreeMap::new(), dirty: false })
    }

    fn is_empty(&self) -> bool {
        // Loaded subdirectories have an entry in `builder`; created ones
        // are never empty (see `subdirs`).
        self.builder.is_empty() && self.subdirs.is_empty()
    }

    /// The id and mode of entry `name` as the builder has it.
    fn entry(&self, name: &str) -> Result<Option<(Oid, i32)>, Refusal> {
        Ok(self.builder.get(name)?.map(|e| (e.id(), e.filemode())))
    }

    /// The subdirectory `name`, loading it (or creating it when `create`).
    fn child(&mut self, repo: &'r Repository, name: &str, create: bool) -> Result<Child<'_, 'r>, Refusal> {
        let slot = match self.subdirs.entry(name.to_owned()) {
            Entry::Occupied(loaded) => return Ok(Child::Dir(loaded.into_mut())),
            Entry::Vacant(slot) => slot,
        };
        let dir = match self.builder.get(name)?.map(|e| (e.id(), e.filemode())) {
            Some((id, MODE_TREE)) => Dir::load(repo, Some(&repo.find_tree(id)?))?,
            Some(_) => return Ok(Child::File),
            None if create => Dir::load(repo, None)?,
            None => return Ok(Child::Missing),
        };
        Ok(Child::Dir(slot.insert(dir)))
    }

    /// Removes the file at `path` (relative to this directory) and returns
    /// its blob id and mode. Directories emptied on the way disappear.
    fn remove(&mut self, repo: &'r Repository, path: &[&str]) -> Result<(Oid, i32), Refusal> {
        let Some((&name, rest)) = path.split_first() else { return Err(Refusal::Directory) };
        if rest.is_empty() {
            if self.subdirs.contains_key(name) {
                return Err(Refusal::Directory);
            }
            let found = match self.entry(name)? {
                None => return Err(Refusal::Missing),
                Some((_, MODE_TREE)) => return Err(Refusal::Directory),
                Some(found) => found,
            };
            self.builder.remove(name)?;
            self.dirty = true;
            return Ok(found);
        }
        let child = match self.child(repo, name, false)? {
            Child::Dir(dir) => dir,
            Child::File | Child::Missing => return Err(Refusal::Missing),
        };
        let found = child.remove(repo, rest)?;
        if child.is_empty() {
            self.subdirs.remove(name);
            if self.entry(name)?.is_some() {
                self.builder.remove(name)?;
            }
        }
        self.dirty = true;
        Ok(found)
    }

    /// Places `blob` at `path` (relative to this directory), creating
    /// missing parent directories.
    fn insert(&mut self, repo: &'r Repository, path: &[&str], blob: Oid, how: Insert) -> Result<(), Refusal> {
        let Some((&name, rest)) = path.split_first() else { return Err(Refusal::Directory) };
        if rest.is_empty() {
            let existing =
                if self.subdirs.contains_key(name) { Some(MODE_TREE) } else { self.entry(name)?.map(|e| e.1) };
            let mode = match (existing, how) {
                (Some(MODE_TREE), _) => return Err(Refusal::Directory),
                (Some(_), Insert::New(_)) => return Err(Refusal::Exists),
                (Some(MODE_EXECUTABLE), Insert::Put) => MODE_EXECUTABLE,
                (_, Insert::Put) => MODE_FILE,
                (None, Insert::New(mode)) => mode,
            };
            self.builder.insert(name, blob, mode)?;
            self.dirty = true;
            return Ok(());
        }
        match self.child(repo, name, true)? {
            Child::Dir(dir) => dir.insert(repo, rest, blob, how)?,
            Child::File | Child::Missing => return Err(Refusal::ParentIsFile),
        }
        self.dirty = true;
        Ok(())
    }

    /// Writes the root tree (which, unlike subdirectories, may be empty).
    fn write_root(mut self) -> Result<Oid, Error> {
        self.write_children().map_err(|e| e.for_put_tree())?;
        self.builder.write().or_internal()
    }

    /// Writes this subdirectory's tree; `None` when it ended up empty.
    fn write_into(mut self) -> Result<Option<Oid>, Refusal> {
        self.write_children()?;
        if self.builder.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.builder.write()?))
    }

    /// Writes every changed subdirectory and records its new id here.
    fn write_children(&mut self) -> Result<(), Refusal> {
        for (name, dir) in std::mem::take(&mut self.subdirs) {
            if !dir.dirty {
                continue;
            }
            match dir.write_into()? {
                Some(id) => {
                    self.builder.insert(&name, id, MODE_TREE)?;
                }
                None => {
                    if self.entry(&name)?.is_some() {
                        self.builder.remove(&name)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Refusal {
    /// Phrases a failure while writing the new trees.
    fn for_put_tree(self) -> Error {
        match self {
            Refusal::Failed(e) => e,
            Refusal::Reserved => reserved("path"),
            other => Error::internal(format_args!("unexpected refusal while writing trees: {other:?}")),
        }
    }
}
