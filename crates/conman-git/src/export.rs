//! Exporting a commit's tree into a plain directory (the working directory
//! of a gate command).
//!
//! Invariants:
//! - nothing is written outside `dest`: entries are created with
//!   `create_new`/`create_dir` (never through an existing path), symlinks are
//!   created only after every file and directory exists, and a symlink is
//!   kept only when it is relative and resolves (physically, following the
//!   other exported links) to a path inside `dest`; any other link becomes a
//!   regular file holding its target text;
//! - regular files keep git's executable bit (`0755` / `0644`);
//! - submodules are skipped (their commits live in other repositories), and
//!   so are entry names no checkout could create (`.`, `..`, empty, or
//!   containing `/` or NUL) — only a hand-crafted tree holds them;
//! - the export reads through a reader handle of its own (never the app's
//!   writer lock), so it runs beside reads and writes of the app; objects
//!   are immutable, so concurrent writers cannot change what it reads.
//!
//! Unix only (symlinks and modes).

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

use conman_core::ids::AppId;
use conman_core::ports::git::Sha;
use conman_core::Error;
use git2::{ObjectType, Repository, Tree};

use crate::errors::OrInternal;
use crate::refs::find_commit;
use crate::repos::GitRepos;

impl GitRepos {
    /// Writes every file of `commit`'s tree under `dest` (an existing,
    /// empty directory), keeping the executable bit and safe symlinks.
    /// An unknown app is `NotFound("repository")`, an unknown commit
    /// `NotFound("commit")`; filesystem failures are `Internal`.
    pub async fn export_tree(&self, app: AppId, commit: &Sha, dest: &Path) -> Result<(), Error> {
        let commit = commit.clone();
        let dest = dest.to_owned();
        self.with_reader(app, move |repo| {
            let tree = find_commit(repo, &commit)?.tree().or_internal()?;
            let mut links = Vec::new();
            write_tree(repo, &tree, &dest, &mut links)?;
            place_links(&dest, links)
        })
        .await
    }
}

/// A symlink to create once every regular entry exists.
struct Link {
    path: PathBuf,
    target: Vec<u8>,
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> Error {
    Error::internal(format_args!("export: {what} {}: {err}", path.display()))
}

/// Writes the files and directories of `tree` into `dir`, collecting symlinks.
fn write_tree(repo: &Repository, tree: &Tree<'_>, dir: &Path, links: &mut Vec<Link>) -> Result<(), Error> {
    for entry in tree.iter() {
        let name = entry.name_bytes();
        if !is_plain_name(name) {
            tracing::warn!(name = %String::from_utf8_lossy(name), "export: skipped a tree entry with an impossible name");
            continue;
        }
        let path = dir.join(OsStr::from_bytes(name));
        match (entry.kind(), entry.filemode()) {
            (Some(ObjectType::Tree), _) => {
                fs::create_dir(&path).map_err(|e| io_error("creating", &path, e))?;
                let sub = repo.find_tree(entry.id()).or_internal()?;
                write_tree(repo, &sub, &path, links)?;
            }
            (Some(ObjectType::Blob), 0o120000) => {
                let target = repo.find_blob(entry.id()).or_internal()?.content().to_vec();
                links.push(Link { path, target });
            }
            (Some(ObjectType::Blob), mode) => {
                let blob = repo.find_blob(entry.id()).or_internal()?;
                let perm = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                write_file(&path, blob.content(), perm)?;
            }
            // Submodules (commit entries) and anything stranger.
            _ => {}
        }
    }
    Ok(())
}

/// A name a checkout could create as one path component.
fn is_plain_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| io_error("creating", path, e))?;
    file.write_all(content).map_err(|e| io_error("writing", path, e))
}

/// Creates the symlinks, then replaces every one that is absolute, climbs
/// above `dest`, dangles or resolves outside `dest` by a regular file
/// holding its target. Replacing a link by a file can only make other links
/// resolve less far, never further, so checking each once is enough.
fn place_links(dest: &Path, links: Vec<Link>) -> Result<(), Error> {
    let root = dest.canonicalize().map_err(|e| io_error("resolving", dest, e))?;
    let mut candidates = Vec::new();
    for link in links {
        if lexically_inside(dest, &link.path, &link.target) {
            std::os::unix::fs::symlink(OsStr::from_bytes(&link.target), &link.path)
                .map_err(|e| io_error("linking", &link.path, e))?;
            candidates.push(link);
        } else {
            write_file(&link.path, &link.target, 0o644)?;
        }
    }
    for link in candidates {
        let inside = matches!(link.path.canonicalize(), Ok(resolved) if resolved.starts_with(&root));
        if !inside {
            fs::remove_file(&link.path).map_err(|e| io_error("removing", &link.path, e))?;
            write_file(&link.path, &link.target, 0o644)?;
        }
    }
    Ok(())
}

/// True when `target` is relative and, read from the directory of `link`
/// without following anything, never climbs above `dest`.
fn lexically_inside(dest: &Path, link: &Path, target: &[u8]) -> bool {
    let target = Path::new(OsStr::from_bytes(target));
    if target.as_os_str().is_empty() || target.is_absolute() {
        return false;
    }
    let Ok(parent) = link.parent().unwrap_or(dest).strip_prefix(dest) else { return false };
    let mut depth = parent.components().count();
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}
