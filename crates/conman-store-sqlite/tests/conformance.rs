//! Runs the shared store conformance suite (`conman_core::conformance`)
//! against SQLite, each test on a fresh database file in its own temporary
//! directory.

use conman_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// A fresh, empty store and the directory that holds its file.
async fn fresh_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("conman.db")).expect("store opens");
    (store, dir)
}

conman_core::store_conformance_tests!(fresh_store());
