//! The one write path: [`Store::commit`] applies a unit of work in a single
//! `BEGIN IMMEDIATE` transaction on the writer connection.
//!
//! Invariant: mutations apply in order, then the audit entries are chained;
//! the transaction commits only if every step succeeded, and otherwise rolls
//! back entirely, so a refused unit leaves no trace — not even an audit
//! record.

use async_trait::async_trait;
use conman_core::ports::store::{ConflictReason, Mutation, Store, UnitOfWork};
use conman_core::Error;
use rusqlite::Connection;

use crate::{
    apps, audit, changesets, deployments, drift, freezes, intents, jobs, outbox, profiles, releases, users, workspaces,
    SqliteStore,
};

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, unit: UnitOfWork) -> Result<(), Error> {
        if unit.is_empty() {
            return Ok(());
        }
        self.transaction(move |tx| {
            for mutation in unit.mutations() {
                apply(tx, mutation)?;
            }
            audit::append(tx, unit.audit_entries())
        })
        .await
    }
}

/// Applies one mutation inside the unit's transaction: each aggregate's
/// module applies its own.
fn apply(conn: &Connection, mutation: &Mutation) -> Result<(), Error> {
    match mutation {
        Mutation::Users(m) => users::apply(conn, m),
        Mutation::Apps(m) => apps::apply(conn, m),
        Mutation::Workspaces(m) => workspaces::apply(conn, m),
        Mutation::Changesets(m) => changesets::apply(conn, m),
        Mutation::Profiles(m) => profiles::apply(conn, m),
        Mutation::Jobs(m) => jobs::apply(conn, m),
        Mutation::Outbox(m) => outbox::apply(conn, m),
        Mutation::Intents(m) => intents::apply(conn, m),
        Mutation::Releases(m) => releases::apply(conn, m),
        Mutation::Deployments(m) => deployments::apply(conn, m),
        Mutation::Freezes(m) => freezes::apply(conn, m),
        Mutation::Drift(m) => drift::apply(conn, m),
    }
}

/// The outcome of a compare-and-set `UPDATE ... WHERE id = ? AND version = ?`
/// that changed `changed` rows: one is success; none is `conflict` when the
/// entity exists (someone else updated it first) and `not_found` otherwise.
pub(crate) fn expect_cas(
    changed: usize,
    kind: &'static str,
    exists: impl FnOnce() -> Result<bool, Error>,
) -> Result<(), Error> {
    match changed {
        1 => Ok(()),
        0 if exists()? => Err(ConflictReason::StaleVersion { entity: kind }.into()),
        0 => Err(Error::NotFound(kind)),
        n => Err(Error::internal(format!("a compare-and-set update of one {kind} changed {n} rows"))),
    }
}
