//! SQLite-specific behaviour beyond the shared conformance suite: the
//! append-only triggers, WAL, migrations across reopenings, refusal of a
//! newer schema, several stores on one file, and decoding of bad rows.
//! Raw SQL goes through a second `rusqlite` connection on the same file.

use std::path::{Path, PathBuf};

use conman_core::conformance::fixtures::{self, setup, user, user_created, verified_chain};
use conman_core::domain::user::CredentialKind;
use conman_core::ports::store::{Mutation, Store, UnitOfWork, UserMutation, UserStore};
use conman_core::{Error, ErrorCode};
use conman_store_sqlite::{SqliteStore, SCHEMA_VERSION};
use rusqlite::Connection;
use tempfile::TempDir;

fn db_path() -> (PathBuf, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    (dir.path().join("conman.db"), dir)
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).expect("raw connection opens")
}

#[tokio::test]
async fn the_audit_log_refuses_update_and_delete() {
    let (path, _dir) = db_path();
    let store = SqliteStore::open(&path).unwrap();
    let ada = user("ada");
    store
        .commit(UnitOfWork::new().record(Mutation::from(UserMutation::InsertUser(ada.clone())), user_created(&ada)))
        .await
        .unwrap();
    let before = verified_chain(&store, 10).await;

    let conn = raw(&path);
    for sql in ["UPDATE audit SET action = 'forged'", "UPDATE audit SET hash = 'x' WHERE seq = 1", "DELETE FROM audit"]
    {
        let err = conn.execute(sql, []).expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(verified_chain(&store, 10).await, before);
}

#[tokio::test]
async fn the_database_is_in_wal_mode_with_foreign_keys() {
    let (path, _dir) = db_path();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.path(), path);
    let mode: String = raw(&path).query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");

    // Foreign keys are enforced: a credential of an unknown user is refused.
    let orphan = fixtures::credential(&user("ghost"), CredentialKind::Session);
    let err = fixtures::commit(&store, [Mutation::from(UserMutation::InsertCredential(orphan))]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err:?}");
}

#[tokio::test]
async fn reopening_keeps_data_and_applies_migrations_once() {
    let (path, _dir) = db_path();
    let ada = user("ada");
    {
        let store = SqliteStore::open(&path).unwrap();
        setup(&store, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;
    }
    let migrations = |path: &Path| -> Vec<(i64, String)> {
        let conn = raw(path);
        let mut stmt = conn.prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version").unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    let first = migrations(&path);
    assert_eq!(first.iter().map(|(v, _)| *v).collect::<Vec<_>>(), (1..=SCHEMA_VERSION).collect::<Vec<_>>());

    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.user(ada.id).await.unwrap(), Some(ada.clone()));
        assert_eq!(verified_chain(&store, 10).await.len(), 1);
    }
    assert_eq!(migrations(&path), first, "no migration ran again");
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_error() {
    let (path, _dir) = db_path();
    drop(SqliteStore::open(&path).unwrap());
    raw(&path)
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, 'future', '2100-01-01T00:00:00.000000Z')",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();

    match SqliteStore::open(&path) {
        Err(Error::Internal(cause)) => {
            assert!(cause.contains("newer than this conman binary supports"), "{cause}");
            assert!(cause.contains(&format!("version {}", SCHEMA_VERSION + 1)), "{cause}");
        }
        other => panic!("expected an internal error naming the schema version, got {other:?}"),
    }
}

#[tokio::test]
async fn unique_conflicts_name_the_field() {
    let (path, _dir) = db_path();
    let store = SqliteStore::open(&path).unwrap();
    let ada = user("ada");
    setup(&store, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;

    let mut twin = user("ada2");
    twin.email = ada.email.clone();
    match fixtures::commit(&store, [Mutation::from(UserMutation::InsertUser(twin))]).await {
        Err(Error::Conflict { message, details }) => {
            assert_eq!(message, "a user with this email already exists");
            assert_eq!(details, Some(serde_json::json!({ "field": "email", "reason": "taken" })));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_row_is_an_internal_error_not_a_panic() {
    let (path, _dir) = db_path();
    let store = SqliteStore::open(&path).unwrap();
    let ada = user("ada");
    setup(&store, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;

    for (column, value) in [("created_at", "yesterday"), ("email", "not an email"), ("id", "not-a-uuid")] {
        let conn = raw(&path);
        let sql = format!("UPDATE users SET {column} = ?1 WHERE handle = 'ada'");
        let old: String =
            conn.query_row(&format!("SELECT {column} FROM users WHERE handle = 'ada'"), [], |r| r.get(0)).unwrap();
        conn.execute(&sql, [value]).unwrap();
        let err = store.user_by_handle("ada").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Internal, "{column}: {err:?}");
        conn.execute(&sql, [old]).unwrap();
    }
    assert_eq!(store.user(ada.id).await.unwrap(), Some(ada));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_share_one_chain() {
    let (path, _dir) = db_path();
    // Like the server and the CLI opening the same installation.
    let stores = [SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap()];
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = stores[t % 2].clone();
            tokio::spawn(async move {
                for u in 0..5 {
                    let new = user(&format!("s{t}-u{u}"));
                    store
                        .commit(
                            UnitOfWork::new()
                                .record(Mutation::from(UserMutation::InsertUser(new.clone())), user_created(&new)),
                        )
                        .await?;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    for store in &stores {
        assert_eq!(verified_chain(store, 9).await.len(), 40);
    }
}

#[tokio::test]
async fn a_page_zero_built_by_hand_is_refused_not_a_panic() {
    let (path, _dir) = db_path();
    let store = SqliteStore::open(&path).unwrap();
    let err = store.list_users(conman_core::ports::store::PageRequest { page: 0, limit: 2 }).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Validation, "{err:?}");
}
