//! Where the repositories live and the per-app handle cache.
//!
//! Invariants:
//! - the repository of app `A` is the bare directory `<root>/<A>.git`;
//! - at most one cached [`Repository`] per app; its mutex is held for the
//!   whole of one blocking operation, so this process never runs two
//!   operations on one app at once (other processes are handled by ref
//!   compare-and-swap);
//! - handles are only touched inside [`tokio::task::spawn_blocking`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use conman_core::ids::AppId;
use conman_core::Error;
use git2::Repository;

use crate::errors::OrInternal;

/// The app repositories under one root directory; implements
/// [`GitPort`](conman_core::ports::GitPort). Cheap to clone (shared cache).
#[derive(Clone)]
pub struct GitRepos {
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    handles: Mutex<HashMap<AppId, Arc<Mutex<Repository>>>>,
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
        Ok(GitRepos { shared: Arc::new(Shared { root, handles: Mutex::new(HashMap::new()) }) })
    }

    /// The directory holding the repositories.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Forgets the cached handle of `app` (its directory is being replaced or removed).
    pub(crate) fn evict(&self, app: AppId) {
        lock(&self.shared.handles).remove(&app);
    }

    /// Runs `op` on a blocking thread with the app's repository locked.
    pub(crate) async fn with_repo<T, F>(&self, app: AppId, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Repository) -> Result<T, Error> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let handle = shared.handle(app)?;
            let repo = lock(&handle);
            op(&repo)
        })
        .await
    }
}

impl Shared {
    fn handle(&self, app: AppId) -> Result<Arc<Mutex<Repository>>, Error> {
        let mut handles = lock(&self.handles);
        if let Some(handle) = handles.get(&app) {
            return Ok(Arc::clone(handle));
        }
        let dir = repo_dir(&self.root, app);
        if !dir.is_dir() {
            return Err(Error::NotFound("repository"));
        }
        let handle = Arc::new(Mutex::new(Repository::open_bare(&dir).or_internal()?));
        handles.insert(app, Arc::clone(&handle));
        Ok(handle)
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
