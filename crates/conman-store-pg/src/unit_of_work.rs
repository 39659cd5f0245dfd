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
use conman_core::ports::store::{Mutation, Store, UnitOfWork};
use conman_core::Error;
use sqlx::PgConnection;

use crate::codec::{exists, PgQuery};
use crate::transaction::{UnitTransaction, BEGIN};
use crate::{apps, audit, changesets, jobs, notify, profiles, users, workspaces, PgStore};

#[async_trait]
impl Store for PgStore {
    async fn commit(&self, unit: UnitOfWork) -> Result<(), Error> {
        if unit.mutations.is_empty() && unit.audit.is_empty() {
            return Ok(());
        }
        // Built first: a value that cannot be written refuses the unit
        // before anything is sent.
        let last = last_message(&unit, &self.job_channel)?;
        let mut tx = UnitTransaction::acquire(&self.pool).await?;
        if !unit.mutations.is_empty() {
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
    for mutation in &unit.mutations {
        apply(tx.conn(), mutation).await?;
    }
    Ok(())
}

/// The unit's last message, one simple query: `BEGIN` when there was no
/// mutation to apply first; the job notification if the unit makes a job
/// runnable (Postgres sends it at commit); the audit entries staged and
/// chained under the audit lock; `COMMIT`. An audit-only unit — most writes
/// of workspace files — is one round trip.
fn last_message(unit: &UnitOfWork, job_channel: &str) -> Result<String, Error> {
    let mut last = String::new();
    if unit.mutations.is_empty() {
        last.push_str(BEGIN);
        last.push_str("; ");
    }
    if notify::makes_job_runnable(unit) {
        notify::notify_sql(&mut last, job_channel)?;
    }
    if !unit.audit.is_empty() {
        audit::stage_sql(&mut last, &unit.audit)?;
        audit::chain_sql(&mut last, unit.audit.len());
    }
    last.push_str("COMMIT");
    Ok(last)
}

/// Applies one mutation inside the unit's transaction.
async fn apply(conn: &mut PgConnection, mutation: &Mutation) -> Result<(), Error> {
    match mutation {
        Mutation::InsertUser(u) => users::insert_user(conn, u).await,
        Mutation::UpdateUser(u) => users::update_user(conn, u).await,
        Mutation::InsertCredential(c) => users::insert_credential(conn, c).await,
        Mutation::RevokeCredential { id, at } => users::revoke_credential(conn, *id, at).await,
        Mutation::RevokeUserCredentials { user_id, at } => users::revoke_user_credentials(conn, *user_id, at).await,
        Mutation::InsertPasswordReset(r) => users::insert_password_reset(conn, r).await,
        Mutation::UsePasswordReset { id, at } => users::use_password_reset(conn, *id, at).await,
        Mutation::InsertApp(a) => apps::insert_app(conn, a).await,
        Mutation::UpdateApp(a) => apps::update_app(conn, a).await,
        Mutation::PutMembership(m) => apps::put_membership(conn, m).await,
        Mutation::DeleteMembership { app_id, user_id } => apps::delete_membership(conn, *app_id, *user_id).await,
        Mutation::InsertInvite(i) => apps::insert_invite(conn, i).await,
        Mutation::UpdateInvite(i) => apps::update_invite(conn, i).await,
        Mutation::InsertWorkspace(w) => workspaces::insert_workspace(conn, w).await,
        Mutation::UpdateWorkspace(w) => workspaces::update_workspace(conn, w).await,
        Mutation::InsertOutbox(m) => audit::insert_outbox(conn, m).await,
        Mutation::InsertJob(j) => jobs::insert_job(conn, j).await,
        Mutation::FinishJob(f) => jobs::finish_job(conn, f).await,
        Mutation::AppendJobLog { id, lines, limit_bytes } => {
            jobs::append_job_log_in(conn, *id, lines, *limit_bytes).await
        }
        Mutation::CancelQueuedJob { id, at } => jobs::cancel_queued_job(conn, *id, at).await,
        Mutation::RequestJobCancel { id } => jobs::request_job_cancel(conn, *id).await,
        Mutation::ReleaseJob { id, worker } => jobs::release_job(conn, *id, worker).await,
        Mutation::InsertChangeset(c) => changesets::insert_changeset(conn, c).await,
        Mutation::UpdateChangeset(c) => changesets::update_changeset(conn, c).await,
        Mutation::InsertRevision(r) => changesets::insert_revision(conn, r).await,
        Mutation::PutReview(r) => changesets::put_review(conn, r).await,
        Mutation::InsertComment(c) => changesets::insert_comment(conn, c).await,
        Mutation::UpdateComment(c) => changesets::update_comment(conn, c).await,
        Mutation::InsertRuntimeProfile(p) => profiles::insert_runtime_profile(conn, p).await,
        Mutation::UpdateRuntimeProfile(p) => profiles::update_runtime_profile(conn, p).await,
        Mutation::InsertProfileRevision(r) => profiles::insert_profile_revision(conn, r).await,
        Mutation::InsertSecret(s) => profiles::insert_secret(conn, s).await,
        Mutation::DeleteChangesetSecrets { changeset_id } => {
            profiles::delete_changeset_secrets(conn, *changeset_id).await
        }
        Mutation::RewrapSecrets { from_key_id, secrets } => profiles::rewrap_secrets(conn, from_key_id, secrets).await,
        Mutation::SetSecretsKeyId { expected, key_id } => {
            profiles::set_secrets_key_id(conn, expected.as_deref(), key_id).await
        }
        Mutation::ReplaceEnvironments { app_id, environments } => {
            profiles::replace_environments(conn, *app_id, environments).await
        }
        Mutation::PutChangesetOverrides { changeset_id, overrides } => {
            profiles::put_changeset_overrides(conn, *changeset_id, overrides).await
        }
        Mutation::MarkOutboxDelivered { id, at } => audit::mark_outbox_delivered(conn, *id, at).await,
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
        0 if exists(conn, exists_query).await? => Err(Error::Conflict {
            message: format!("the {kind} was changed by someone else; reload it and retry"),
            details: Some(serde_json::json!({ "reason": "stale_version" })),
        }),
        0 => Err(Error::NotFound(kind)),
        n => Err(Error::internal(format!("a compare-and-set update of one {kind} changed {n} rows"))),
    }
}
