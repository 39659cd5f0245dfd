//! Where the repositories live, and the per-app libgit2 handles: one writer
//! handle behind the app's writer lock, and a small pool of reader handles.
//!
//! Invariants:
//! - the repository of app `A` is the bare directory `<root>/<A>.git`;
//! - a [`Repository`] is used by one thread at a time (libgit2's rule):
//!   the writer handle only while its lock is held, a reader handle only
//!   while one operation has it checked out of the pool; separate handles on
//!   one repository are independent;
//! - the writer lock guards the writer handle and serialises this process's
//!   mutations of the app (file writes, squash, sync, ref updates) — nothing
//!   else. Reads, diffs, ancestry questions and exports never take it, so
//!   any number of them run in parallel, beside at most one writer. Other
//!   processes are kept honest by the ref compare-and-swap alone;
//! - a read that starts after a write returned sees that write, through any
//!   handle: libgit2 reads a loose ref from disk on every lookup (it caches
//!   only `packed-refs`, re-checked against the file's stamp each time), a
//!   loose object is looked up on disk, and an object missing from a
//!   handle's list of packs makes libgit2 rescan the pack directory before
//!   it answers not-found. The object cache is keyed by id, and an object
//!   never changes;
//! - at most [`MAX_IDLE_READERS`] idle reader handles are kept per app; a
//!   read that finds none idle opens its own, which joins the pool after if
//!   there is room. A handle whose operation panicked is dropped, not reused;
//! - handles are only touched inside [`tokio::task::spawn_blocking`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use conman_core::ids::AppId;
use conman_core::Error;
use git2::Repository;

use crate::errors::OrInternal;

/// How many idle reader handles an app keeps for the next reads.
const MAX_IDLE_READERS: usize = 8;

/// The app repositories under one root directory; implements
/// [`GitPort`](conman_core::ports::GitPort). Cheap to clone (shared cache).
#[derive(Clone)]
pub struct GitRepos {
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    apps: Mutex<HashMap<AppId, Arc<AppHandles>>>,
}

/// The open handles on one app's repository.
struct AppHandles {
    dir: PathBuf,
    /// The writer handle; holding this lock is what serialises writers.
    writer: Mutex<Repository>,
    /// Reader handles no operation is using.
    idle_readers: Mutex<Vec<Repository>>,
}

impl fmt::Debug for GitRepos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitRepos").field("root", &self.shared.root).finish_non_exhaustive()
    }
}

impl GitRepos {
    /// Opens (creating it if needed) the directory that holds the repositories.
    pub fn new(root: PathBuf) -> Result<Self, Error> {
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::internal(format_args!("create git root {}: {e}", root.display())))?;
        Ok(GitRepos { shared: Arc::new(Shared { root, apps: Mutex::new(HashMap::new()) }) })
    }

    /// The directory holding the repositories.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Forgets the handles of `app` (its directory is being replaced or
    /// removed); operations already running finish on the old handles,
    /// which are dropped afterwards.
    pub(crate) fn evict(&self, app: AppId) {
        lock(&self.shared.apps).remove(&app);
    }

    /// Runs the mutation `op` on a blocking thread with the app's writer
    /// lock held (one mutation of an app at a time in this process).
    pub(crate) async fn with_writer<T, F>(&self, app: AppId, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Repository) -> Result<T, Error> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let handles = shared.handles(app)?;
            let repo = lock(&handles.writer);
            handles.unless_removed(op(&repo))
        })
        .await
    }

    /// Runs the read-only `op` on a blocking thread with a reader handle of
    /// its own, without the writer lock: reads run in parallel.
    pub(crate) async fn with_reader<T, F>(&self, app: AppId, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Repository) -> Result<T, Error> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let handles = shared.handles(app)?;
            let reader = handles.unless_removed(handles.check_out_reader())?;
            let outcome = op(&reader);
            handles.return_reader(reader);
            handles.unless_removed(outcome)
        })
        .await
    }
}

impl Shared {
    /// The handles of `app`, opening its repository on first use.
    fn handles(&self, app: AppId) -> Result<Arc<AppHandles>, Error> {
        let mut apps = lock(&self.apps);
        if let Some(handles) = apps.get(&app) {
            return Ok(Arc::clone(handles));
        }
        let dir = repo_dir(&self.root, app);
        if !dir.is_dir() {
            return Err(Error::NotFound("repository"));
        }
        let writer = Repository::open_bare(&dir).or_internal()?;
        let handles = Arc::new(AppHandles { dir, writer: Mutex::new(writer), idle_readers: Mutex::new(Vec::new()) });
        apps.insert(app, Arc::clone(&handles));
        Ok(handles)
    }
}

impl AppHandles {
    /// An idle reader handle, or a newly opened one when all are in use.
    fn check_out_reader(&self) -> Result<Repository, Error> {
        let idle = lock(&self.idle_readers).pop();
        match idle {
            Some(repo) => Ok(repo),
            None => Repository::open_bare(&self.dir).or_internal(),
        }
    }

    /// `outcome`, except that a failure of a repository removed since its
    /// handles were opened is `NotFound("repository")`, as for an app never
    /// seen: checked only on the error path, so reads pay nothing for it.
    fn unless_removed<T>(&self, outcome: Result<T, Error>) -> Result<T, Error> {
        match outcome {
            Err(Error::Internal(_)) if !self.dir.is_dir() => Err(Error::NotFound("repository")),
            other => other,
        }
    }

    /// Puts a reader handle back once its operation returned (an operation
    /// that panicked never gets here: its handle is dropped while unwinding).
    fn return_reader(&self, repo: Repository) {
        let mut idle = lock(&self.idle_readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(repo);
        }
    }
}

/// The bare repository directory of `app` under `root`.
pub(crate) fn repo_dir(root: &Path, app: AppId) -> PathBuf {
    root.join(format!("{app}.git"))
}

/// Runs blocking work on tokio's blocking pool; a panic there becomes `Internal`.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::internal(format_args!("git task failed: {e}")))?
}

/// Locks a mutex, recovering from poisoning: a panicked git operation leaves
/// no in-memory state behind that a later one could trip over.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
