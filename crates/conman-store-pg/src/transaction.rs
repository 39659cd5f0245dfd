//! [`UnitTransaction`]: the transaction of one unit of work on a pooled
//! connection, begun and ended with plain simple queries so that the unit's
//! last message can carry statements *and* the `COMMIT` in one round trip —
//! and, for a unit with no mutation to apply first, the `BEGIN` as well
//! (see `unit_of_work.rs`). `sqlx::Transaction` always sends its `BEGIN`
//! and its `COMMIT` as messages of their own.
//!
//! Invariants:
//! - a connection goes back to the pool only outside any transaction: after
//!   the final message committed, or after `ROLLBACK`;
//! - a transaction left open by anything else — a failed `ROLLBACK`, or the
//!   caller's future dropped mid-unit — closes its connection instead of
//!   returning it, and Postgres rolls back what the connection held. The
//!   guard is armed before the first message that may begin a transaction
//!   is sent, since its answer may be lost.

use conman_core::Error;
use sqlx::pool::PoolConnection;
use sqlx::{Executor as _, PgConnection, PgPool, Postgres};

use crate::codec::Db as _;

/// How a unit's transaction begins.
pub(crate) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// A unit's transaction on a connection of the pool.
pub(crate) struct UnitTransaction {
    conn: PoolConnection<Postgres>,
    /// From the first message that may begin the transaction until the end
    /// of the final message or `ROLLBACK`.
    open: bool,
}

impl UnitTransaction {
    /// Takes a connection from `pool`; the transaction begins with
    /// [`UnitTransaction::begin`] or with the final message itself.
    pub(crate) async fn acquire(pool: &PgPool) -> Result<Self, Error> {
        let conn = pool.acquire().await.db()?;
        Ok(UnitTransaction { conn, open: false })
    }

    /// Begins a `READ COMMITTED` transaction (the server default, which the
    /// store relies on), for a unit with statements to send before its
    /// final message.
    pub(crate) async fn begin(&mut self) -> Result<(), Error> {
        self.open = true;
        self.conn.execute(sqlx::raw_sql(BEGIN)).await.db()?;
        Ok(())
    }

    /// The connection, for the unit's statements.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Sends `last` — simple-query statements ending in `COMMIT`, starting
    /// with [`BEGIN`] unless [`UnitTransaction::begin`] was called — as one
    /// message. If any of them fails, the rest (the `COMMIT` included) do
    /// not run, and the transaction is rolled back before the error is
    /// answered.
    pub(crate) async fn finish(mut self, last: &str) -> Result<(), Error> {
        debug_assert!(last.trim_end().ends_with("COMMIT"), "a unit's last message must commit");
        debug_assert!(self.open || last.starts_with(BEGIN), "a unit's statements run in a transaction");
        self.open = true;
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
