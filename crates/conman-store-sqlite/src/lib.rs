//! Conman's embedded metadata store: the [`Store`](conman_core::ports::Store)
//! port on one SQLite database file in WAL mode, with the hash-chained,
//! append-only audit log of SPEC §2.9.
//!
//! Invariant: this crate is the only place that knows SQL for SQLite, and it
//! holds no rule of the product — it stores what the core decides, refusing
//! only what the port documents (stale versions, taken unique keys). Every
//! SQLite error is mapped here to a core [`Error`]; nothing above sees a
//! `rusqlite` type.
//!
//! Durability: `journal_mode=WAL` with `synchronous=NORMAL`. A committed
//! unit survives a crash of the process at any point (the bar of SPEC §10);
//! after a power loss or OS crash the last units committed before the crash
//! may be rolled back, but the database is never corrupted and a unit is
//! never half-applied.
//!
//! Threading: SQLite calls block, so every call runs on Tokio's blocking
//! pool. Writes go through one writer connection behind a mutex (SQLite
//! allows one writer anyway, and `BEGIN IMMEDIATE` also serialises writers
//! of other processes, e.g. the CLI); reads use a small pool of read-only
//! connections, which WAL lets run concurrently with the writer. WAL
//! checkpoints (which `fsync`) run in the background every
//! 64 commits instead of inside a caller's commit; the
//! writer's own automatic checkpoint stays on as a backstop at a larger WAL.

#![deny(missing_docs)]

mod apps;
mod audit;
mod changesets;
mod codec;
mod deployments;
mod drift;
mod freezes;
mod intents;
mod jobs;
mod migrate;
mod outbox;
mod profiles;
mod releases;
mod unit_of_work;
mod users;
mod workspaces;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use conman_core::Error;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::codec::Db as _;

pub use migrate::SCHEMA_VERSION;

/// How long a connection waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read-only connections kept for reuse.
const MAX_IDLE_READERS: usize = 4;

/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 128;

/// Commits between two background WAL checkpoints.
const CHECKPOINT_EVERY: u64 = 64;

/// WAL pages after which the writer checkpoints by itself (backstop).
const WRITER_AUTOCHECKPOINT_PAGES: i64 = 8192;

/// The SQLite store. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Connection of the background checkpoint, opened on first use.
    checkpointer: Mutex<Option<Connection>>,
    commits: AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `path`, switches it to
    /// WAL and applies the migrations this binary embeds. Refuses a database
    /// whose schema is newer than this binary knows.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = Connection::open_with_flags(path, flags)
            .map_err(|e| Error::internal(format!("cannot open the database {}: {e}", path.display())))?;
        configure(&writer)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).db()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::internal(format!("{} cannot use WAL (journal mode is {mode})", path.display())));
        }
        writer.pragma_update(None, "synchronous", "NORMAL").db()?;
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES).db()?;
        migrate::run(&mut writer)?;

        let inner = Inner {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            checkpointer: Mutex::new(None),
            commits: AtomicU64::new(0),
        };
        let first_reader = inner.open_reader()?;
        inner.checkin(first_reader);
        Ok(SqliteStore { inner: Arc::new(inner) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read-only connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let conn = inner.checkout()?;
            let out = f(&conn);
            inner.checkin(conn);
            out
        })
        .await
    }

    /// Runs `f` on the writer connection on the blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || f(&mut inner.writer())).await
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer
    /// connection (so writers of other processes are serialised too),
    /// committing when it succeeds and rolling back when it fails.
    async fn transaction<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, Error> + Send + 'static,
    {
        let out = self
            .write(move |conn| {
                // Dropping the transaction on any error rolls it back.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
                let out = f(&tx)?;
                tx.commit().db()?;
                Ok(out)
            })
            .await?;
        self.committed();
        Ok(out)
    }

    /// Counts a commit and, every [`CHECKPOINT_EVERY`], starts a passive
    /// WAL checkpoint in the background (it runs beside writers and readers).
    fn committed(&self) {
        if self.inner.commits.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
            let inner = Arc::clone(&self.inner);
            tokio::task::spawn_blocking(move || inner.checkpoint());
        }
    }
}

impl Inner {
    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock drops its transaction (rollback),
        // so the connection itself is still sound.
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn checkpoint(&self) {
        // One checkpoint at a time; a busy checkpointer already does the work.
        let Ok(mut slot) = self.checkpointer.try_lock() else { return };
        let result = match slot.as_ref() {
            Some(conn) => checkpoint(conn),
            None => self.open_checkpointer().and_then(|conn| checkpoint(slot.insert(conn))),
        };
        if let Err(err) = result {
            tracing::warn!(error = ?err, "background WAL checkpoint failed; the writer will checkpoint by itself");
        }
    }

    fn open_checkpointer(&self) -> Result<Connection, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| Error::internal(format!("cannot open the database {}: {e}", self.path.display())))?;
        configure(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL").db()?;
        Ok(conn)
    }

    fn open_reader(&self) -> Result<Connection, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| Error::internal(format!("cannot open the database {}: {e}", self.path.display())))?;
        configure(&conn)?;
        Ok(conn)
    }

    fn checkout(&self) -> Result<Connection, Error> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.open_reader(),
        }
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// Settings every connection needs (the journal mode is per database).
fn configure(conn: &Connection) -> Result<(), Error> {
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    conn.pragma_update(None, "foreign_keys", "ON").db()?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// A passive checkpoint: copies what it can without waiting for anyone.
fn checkpoint(conn: &Connection) -> Result<(), Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).db()
}

/// Runs blocking database work off the async workers.
async fn blocking<T, F>(f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("store task failed: {e}")))?
}
