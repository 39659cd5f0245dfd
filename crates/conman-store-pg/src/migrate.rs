//! Schema migrations: the SQL files of `migrations/`, embedded in the binary
//! by `sqlx::migrate!` and recorded by sqlx in `_sqlx_migrations` (in the
//! store's schema).
//!
//! Invariant: migrations are numbered from 1 without gaps and never edited
//! once released (sqlx refuses a changed checksum); each runs at most once,
//! in its own transaction with its record, while sqlx holds an advisory lock
//! on the database — so processes starting together never apply one twice
//! or half. A database holding a migration this binary does not know (a
//! newer schema) is refused before anything is written.

use conman_core::Error;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;

/// Every migration, in order.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The schema version this binary writes (the last embedded migration).
pub const SCHEMA_VERSION: i64 = 10;

/// Brings the database up to [`SCHEMA_VERSION`].
pub(crate) async fn run(pool: &PgPool) -> Result<(), Error> {
    MIGRATOR.run(pool).await.map_err(|err| match err {
        MigrateError::VersionMissing(version) => Error::internal(format!(
            "the database holds migration {version}, which this conman binary does not know (it supports schema \
             version {SCHEMA_VERSION}); upgrade conman to open it"
        )),
        other => Error::internal(format!("migrating the Postgres store failed: {other}")),
    })?;
    tracing::debug!(version = SCHEMA_VERSION, "the Postgres store schema is up to date");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_version_is_the_last_embedded_migration() {
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    }
}
