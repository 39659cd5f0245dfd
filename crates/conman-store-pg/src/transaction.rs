//! [`UnitTransaction`]: the transaction of one unit of work on a pooled
//! connection, begun and ended with plain simple queries so that the unit's
//! last message can carry statements *and* the `COMMIT` in one round trip
//! (see `audit::chain_and_commit_sql`). `sqlx::Transaction` always sends its
//! `COMMIT` as a message of its own.
//!
//! Invariants:
//! - a connection goes back to the pool only outside any transaction: after
//!   the final message committed, or after `ROLLBACK`;
//! - a transaction left open by anything else — a failed `ROLLBACK`, or the
//!   caller's future dropped mid-unit — closes its connection instead of
//!   returning it, and Postgres rolls back what the connection held.

use conman_core::Error;
use sqlx::pool::PoolConnection;
use sqlx::{Executor as _, PgConnection, PgPool, Postgres};

use crate::codec::Db as _;

/// An open transaction on a connection of the pool.
pub(crate) struct UnitTransaction {
    conn: PoolConnection<Postgres>,
    /// Between `BEGIN` and the end of the final message or `ROLLBACK`.
    open: bool,
}

impl UnitTransaction {
    /// Takes a connection from `pool` and begins a `READ COMMITTED`
    /// transaction on it (the server default, which the store relies on).
    pub(crate) async fn begin(pool: &PgPool) -> Result<Self, Error> {
        let conn = pool.acquire().await.db()?;
        // Armed before BEGIN is sent: a BEGIN whose answer is lost leaves
        // the connection in an unknown state, which the guard closes.
        let mut tx = UnitTransaction { conn, open: true };
        tx.conn.execute(sqlx::raw_sql("BEGIN ISOLATION LEVEL READ COMMITTED")).await.db()?;
        Ok(tx)
    }

    /// The connection, for the unit's statements.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Sends `last` — simple-query statements ending in `COMMIT` — as one
    /// message. If any of them fails, the rest (the `COMMIT` included) do
    /// not run, and the transaction is rolled back before the error is
    /// answered.
    pub(crate) async fn finish(mut self, last: &str) -> Result<(), Error> {
        debug_assert!(last.trim_end().ends_with("COMMIT"), "a unit's last message must commit");
        match self.conn.execute(sqlx::raw_sql(last)).await {
            Ok(_) => {
                self.open = false;
                Ok(())
            }
            Err(err) => {
                self.rollback().await;
                Err(crate::codec::db_error(err))
            }
        }
    }

    /// Rolls the transaction back. A rollback that fails leaves the
    /// connection to be closed rather than reused (see the module docs).
    pub(crate) async fn rollback(mut self) {
        match self.conn.execute(sqlx::raw_sql("ROLLBACK")).await {
            Ok(_) => self.open = false,
            Err(e) => tracing::warn!(error = %e, "rolling back a refused unit failed; its connection is closed"),
        }
    }
}

impl Drop for UnitTransaction {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}
