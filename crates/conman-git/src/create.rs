//! Creating an app repository: a fresh one with an initial commit, or a
//! bare copy of an existing repository (local path or URL).
//!
//! Invariants:
//! - the repository is built in a scratch directory beside its final place
//!   and renamed into place only when complete, so a failed creation leaves
//!   nothing at `<root>/<app_id>.git` but what was there before (a leftover
//!   of the same id is replaced only on success);
//! - HEAD of the new repository points at the requested branch, which
//!   exists;
//! - an import brings every branch as `refs/heads/*` and every tag as
//!   `refs/tags/*`; the source is not recorded as a remote, and its
//!   location never appears in an error message.

use std::path::Path;

use conman_core::ids::AppId;
use conman_core::ports::git::{RepoSource, Sha, Signature};
use conman_core::Error;
use git2::{AutotagOption, FetchOptions, Repository, RepositoryInitOptions};

use crate::errors::{internal, is_not_found, signature, OrInternal};
use crate::refs::sha_of;
use crate::repos::repo_dir;

/// Creates the repository of `app` under `root` and returns the head of `branch`.
pub(crate) fn create(
    root: &Path,
    app: AppId,
    source: &RepoSource,
    branch: &str,
    author: &Signature,
) -> Result<Sha, Error> {
    let refname = if branch.starts_with("refs/heads/") { branch.to_owned() } else { format!("refs/heads/{branch}") };
    if !git2::Reference::is_valid_name(&refname) {
        return Err(Error::invalid("branch", "invalid_name", format!("{branch:?} is not a valid branch name")));
    }
    let who = signature(author)?;
    let scratch = root.join(format!(".{app}.git.creating"));
    remove_dir(&scratch)?;
    let built = build(&scratch, source, &refname, &who);
    let head = match built {
        Ok(head) => head,
        Err(e) => {
            remove_dir(&scratch)?;
            return Err(e);
        }
    };
    let dir = repo_dir(root, app);
    remove_dir(&dir)?;
    std::fs::rename(&scratch, &dir).map_err(|e| Error::internal(format_args!("move repository into place: {e}")))?;
    Ok(head)
}

/// Builds the repository at `dir`; the handle is closed on return.
fn build(dir: &Path, source: &RepoSource, refname: &str, who: &git2::Signature<'_>) -> Result<Sha, Error> {
    let mut options = RepositoryInitOptions::new();
    options.bare(true).initial_head(refname);
    let repo = Repository::init_opts(dir, &options).or_internal()?;
    match source {
        RepoSource::Init => {
            let empty = repo.find_tree(repo.treebuilder(None).and_then(|b| b.write()).or_internal()?).or_internal()?;
            let head = repo.commit(Some(refname), who, who, "Initial commit", &empty, &[]).or_internal()?;
            Ok(sha_of(head))
        }
        RepoSource::Import(from) => import(&repo, from, refname),
    }
}

fn import(repo: &Repository, from: &str, refname: &str) -> Result<Sha, Error> {
    let unreachable = |e: git2::Error| {
        tracing::warn!(error = %e, "import source could not be fetched");
        Error::invalid("import_from", "unreachable", "the repository to import could not be reached or read")
    };
    let mut remote = repo.remote_anonymous(from).map_err(unreachable)?;
    let mut options = FetchOptions::new();
    options.download_tags(AutotagOption::None);
    remote
        .fetch(&["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], Some(&mut options), None)
        .map_err(unreachable)?;
    let head = match repo.find_reference(refname) {
        Ok(reference) => reference.peel_to_commit().or_internal()?.id(),
        Err(e) if is_not_found(&e) => {
            let branch = refname.trim_start_matches("refs/heads/");
            return Err(Error::invalid(
                "import_from",
                "branch_not_found",
                format!("branch {branch} does not exist in the repository to import"),
            ));
        }
        Err(e) => return Err(internal(e)),
    };
    Ok(sha_of(head))
}

/// Removes a directory tree; a missing one is fine.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::internal(format_args!("remove {}: {e}", dir.display()))),
    }
}
