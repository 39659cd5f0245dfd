//! Schema migrations, embedded in the binary and recorded in
//! `schema_migrations`.
//!
//! Invariant: migrations are numbered from 1 without gaps, never edited
//! once released, and each is applied at most once, in its own immediate
//! transaction together with its `schema_migrations` row — so a crash or a
//! concurrent opener can never leave one half-applied or applied twice. A
//! database whose schema is newer than [`SCHEMA_VERSION`] is refused before
//! anything is written.

use conman_core::domain::format_timestamp;
use conman_core::Error;
use rusqlite::{params, Connection, TransactionBehavior};

use crate::codec::Db as _;

/// One embedded migration.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration { version: 2, name: "jobs", sql: include_str!("../migrations/0002_jobs.sql") },
    Migration { version: 3, name: "changesets", sql: include_str!("../migrations/0003_changesets.sql") },
    Migration { version: 4, name: "profiles", sql: include_str!("../migrations/0004_profiles.sql") },
    Migration { version: 5, name: "intents", sql: include_str!("../migrations/0005_intents.sql") },
    Migration { version: 6, name: "releases", sql: include_str!("../migrations/0006_releases.sql") },
    Migration { version: 7, name: "deployments", sql: include_str!("../migrations/0007_deployments.sql") },
];

/// The schema version this binary writes (the last embedded migration).
pub const SCHEMA_VERSION: i64 = 7;

const _: () = assert!(MIGRATIONS[MIGRATIONS.len() - 1].version == SCHEMA_VERSION);

/// Brings the database up to [`SCHEMA_VERSION`]; returns how many
/// migrations were applied.
pub(crate) fn run(conn: &mut Connection) -> Result<usize, Error> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER NOT NULL PRIMARY KEY,
            name       TEXT    NOT NULL,
            applied_at TEXT    NOT NULL
        ) STRICT",
    )
    .db()?;
    let mut applied = 0;
    for migration in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
        let current: i64 =
            tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).db()?;
        if current > SCHEMA_VERSION {
            return Err(Error::internal(format!(
                "the database schema is version {current}, newer than this conman binary supports \
                 (version {SCHEMA_VERSION}); upgrade conman to open it"
            )));
        }
        if current >= migration.version {
            continue;
        }
        tx.execute_batch(migration.sql).map_err(|e| {
            Error::internal(format!("migration {} ({}) failed: {e}", migration.version, migration.name))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![migration.version, migration.name, format_timestamp(&chrono::Utc::now())],
        )
        .db()?;
        tx.commit().db()?;
        applied += 1;
        tracing::info!(version = migration.version, name = migration.name, "applied a store migration");
    }
    Ok(applied)
}
