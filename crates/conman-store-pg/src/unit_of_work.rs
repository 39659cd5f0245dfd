//! The one write path: [`Store::commit`] applies a unit of work in a single
//! `READ COMMITTED` transaction on one pooled connection.
//!
//! Invariant: mutations apply in order, the unit's audit entries are staged,
//! and the last message chains them under the audit advisory lock and
//! commits (see the crate docs); the transaction commits only if every step
//! succeeded, and otherwise is rolled back before the error is returned, so
//! a refused unit leaves no trace — not even an audit record or a job
//! notification — and holds no lock once `commit` returns.

use async_trait::async_trait;
use conman_core::ports::store::{Mutation, Store, UnitOfWork};
use conman_core::Error;
use sqlx::PgConnection;

use crate::codec::{exists, PgQuery};
use crate::transaction::UnitTransaction;
use crate::{apps, audit, changesets, jobs, notify, profiles, users, workspaces, PgStore};

#[async_trait]
impl Store for PgStore {
    async fn commit(&self, unit: UnitOfWork) -> Result<(), Error> {
        if unit.mutations.is_empty() && unit.audit.is_empty() {
            return Ok(());
        }
        let mut tx = UnitTransaction::begin(&self.pool).await?;
        match apply_all(tx.conn(), &unit, &self.job_channel).await {
            Ok(()) if unit.audit.is_empty() => tx.finish("COMMIT").await,
            Ok(()) => tx.finish(&audit::chain_and_commit_sql(unit.audit.len())).await,
            Err(err) => {
                // Roll back now rather than when the connection is reused,
                // so the unit's row locks go with the error.
                tx.rollback().await;
                Err(err)
            }
        }
    }
}

/// Applies every mutation, queues the job notification if the unit makes a
/// job runnable (Postgres sends it at commit), then stages the audit
/// entries for the last message to chain.
async fn apply_all(conn: &mut PgConnection, unit: &UnitOfWork, job_channel: &str) -> Result<(), Error> {
    for mutation in &unit.mutations {
        apply(conn, mutation).await?;
    }
    if notify::makes_job_runnable(unit) {
        notify::notify(conn, job_channel).await?;
    }
    audit::stage(conn, &unit.audit).await
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
