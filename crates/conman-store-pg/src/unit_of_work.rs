//! The one write path: [`Store::commit`] applies a unit of work in a single
//! `READ COMMITTED` transaction on one pooled connection.
//!
//! Invariant: mutations apply in order, then the unit's last message stages
//! its audit entries, chains them under the audit advisory lock and commits
//! (see the crate docs); the transaction commits only if every step
//! succeeded, and otherwise is rolled back before the error is returned, so
//! a refused unit leaves no trace — not even an audit record or a job
//! notification — and holds no lock once `commit` returns.

use async_trait::async_trait;
use conman_core::ports::store::{ConflictReason, Mutation, Store, UnitOfWork};
use conman_core::Error;
use sqlx::PgConnection;

use crate::codec::{exists, PgQuery};
use crate::transaction::{UnitTransaction, BEGIN};
use crate::{
    apps, audit, changesets, deployments, drift, freezes, intents, jobs, notify, outbox, profiles, releases, users,
    workspaces, PgStore,
};

#[async_trait]
impl Store for PgStore {
    async fn commit(&self, unit: UnitOfWork) -> Result<(), Error> {
        if unit.is_empty() {
            return Ok(());
        }
        // Built first: a value that cannot be written refuses the unit
        // before anything is sent.
        let last = last_message(&unit, &self.job_channel)?;
        let mut tx = UnitTransaction::acquire(&self.pool).await?;
        if !unit.mutations().is_empty() {
            if let Err(err) = begin_and_apply(&mut tx, &unit).await {
                // Roll back now rather than when the connection is reused,
                // so the unit's row locks go with the error.
                tx.rollback().await;
                return Err(err);
            }
        }
        tx.finish(&last).await
    }
}

/// Begins the transaction and applies every mutation in order.
async fn begin_and_apply(tx: &mut UnitTransaction, unit: &UnitOfWork) -> Result<(), Error> {
    tx.begin().await?;
    for mutation in unit.mutations() {
        apply(tx.conn(), mutation).await?;
    }
    Ok(())
}

/// The unit's last message, one simple query: `BEGIN` when there was no
/// mutation to apply first; the job notification if the unit makes a job
/// runnable and one per cancel it requests (Postgres sends them at commit);
/// the audit entries staged and chained under the audit lock; `COMMIT`. An audit-only unit — most writes
/// of workspace files — is one round trip.
fn last_message(unit: &UnitOfWork, job_channel: &str) -> Result<String, Error> {
    let mut last = String::new();
    if unit.mutations().is_empty() {
        last.push_str(BEGIN);
        last.push_str("; ");
    }
    if unit.wakes_workers() {
        notify::notify_sql(&mut last, job_channel, notify::RUNNABLE)?;
    }
    for job in unit.cancels_requested() {
        notify::notify_sql(&mut last, job_channel, &notify::cancel_payload(job))?;
    }
    let entries = unit.audit_entries();
    if !entries.is_empty() {
        audit::stage_sql(&mut last, entries)?;
        audit::chain_sql(&mut last, entries.len());
    }
    last.push_str("COMMIT");
    Ok(last)
}

/// Applies one mutation inside the unit's transaction: each aggregate's
/// module applies its own.
async fn apply(conn: &mut PgConnection, mutation: &Mutation) -> Result<(), Error> {
    match mutation {
        Mutation::Users(m) => users::apply(conn, m).await,
        Mutation::Apps(m) => apps::apply(conn, m).await,
        Mutation::Workspaces(m) => workspaces::apply(conn, m).await,
        Mutation::Changesets(m) => changesets::apply(conn, m).await,
        Mutation::Profiles(m) => profiles::apply(conn, m).await,
        Mutation::Jobs(m) => jobs::apply(conn, m).await,
        Mutation::Outbox(m) => outbox::apply(conn, m).await,
        Mutation::Intents(m) => intents::apply(conn, m).await,
        Mutation::Releases(m) => releases::apply(conn, m).await,
        Mutation::Deployments(m) => deployments::apply(conn, m).await,
        Mutation::Freezes(m) => freezes::apply(conn, m).await,
        Mutation::Drift(m) => drift::apply(conn, m).await,
    }
}

/// The outcome of a compare-and-set `UPDATE ... WHERE id = $1 AND version =
/// $n - 1` that changed `changed` rows: one is success; none is `conflict`
/// when `exists` finds the entity (someone else updated it first) and
/// `not_found` otherwise.
pub(crate) async fn expect_cas(
    conn: &mut PgConnection,
    changed: u64,
    kind: &'static str,
    exists_query: PgQuery<'_>,
) -> Result<(), Error> {
    match changed {
        1 => Ok(()),
        0 if exists(conn, exists_query).await? => Err(ConflictReason::StaleVersion { entity: kind }.into()),
        0 => Err(Error::NotFound(kind)),
        n => Err(Error::internal(format!("a compare-and-set update of one {kind} changed {n} rows"))),
    }
}
