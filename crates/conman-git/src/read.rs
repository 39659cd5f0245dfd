//! Reading files and listing directories at a commit.
//!
//! Invariant: read-only; an unknown commit is `NotFound("commit")`, a
//! missing path (or one going through a file) is `Ok(None)`.

use std::path::Path;

use conman_core::ports::git::{DirEntry, EntryKind, Node, Sha};
use conman_core::validation::RepoPath;
use conman_core::Error;
use git2::{ObjectType, Repository, Tree};

use crate::errors::{internal, is_not_found, OrInternal};
use crate::refs::find_commit;

/// What is at `path` (`None` = root) in commit `rev`.
pub(crate) fn read(repo: &Repository, rev: &Sha, path: Option<&RepoPath>) -> Result<Option<Node>, Error> {
    let tree = find_commit(repo, rev)?.tree().or_internal()?;
    let Some(path) = path else {
        return Ok(Some(Node::Dir(list(repo, &tree, "")?)));
    };
    let entry = match tree.get_path(Path::new(path.as_str())) {
        Ok(entry) => entry,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(internal(e)),
    };
    match entry.kind() {
        Some(ObjectType::Blob) => Ok(Some(Node::File(repo.find_blob(entry.id()).or_internal()?.content().to_vec()))),
        Some(ObjectType::Tree) => {
            let dir = repo.find_tree(entry.id()).or_internal()?;
            Ok(Some(Node::Dir(list(repo, &dir, &format!("{path}/"))?)))
        }
        // A submodule's commit lives in another repository: nothing to show here.
        _ => Ok(None),
    }
}

/// The entries of `tree`, sorted by name; `prefix` is the directory's path
/// with a trailing `/` (empty for the root).
fn list(repo: &Repository, tree: &Tree<'_>, prefix: &str) -> Result<Vec<DirEntry>, Error> {
    let odb = repo.odb().or_internal()?;
    let mut entries = tree
        .iter()
        .map(|entry| {
            let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
            let kind = kind_of(entry.filemode());
            let size = match kind {
                EntryKind::File | EntryKind::Symlink => Some(odb.read_header(entry.id()).or_internal()?.0 as u64),
                EntryKind::Dir | EntryKind::Submodule => None,
            };
            Ok(DirEntry { path: format!("{prefix}{name}"), name, kind, size })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn kind_of(filemode: i32) -> EntryKind {
    match filemode {
        0o040000 => EntryKind::Dir,
        0o120000 => EntryKind::Symlink,
        0o160000 => EntryKind::Submodule,
        _ => EntryKind::File,
    }
}
