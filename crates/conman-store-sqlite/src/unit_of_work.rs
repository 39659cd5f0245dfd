//! The one write path: [`Store::commit`] applies a unit of work in a single
//! `BEGIN IMMEDIATE` transaction on the writer connection.
//!
//! Invariant: mutations apply in order, then the audit entries are chained;
//! the transaction commits only if every step succeeded, and otherwise rolls
//! back entirely, so a refused unit leaves no trace — not even an audit
//! record.

use async_trait::async_trait;
use conman_core::ports::store::{Mutation, Store, UnitOfWork};
use conman_core::Error;
use rusqlite::Connection;

use crate::{apps, audit, changesets, jobs, profiles, users, workspaces, SqliteStore};

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, unit: UnitOfWork) -> Result<(), Error> {
        if unit.mutations.is_empty() && unit.audit.is_empty() {
            return Ok(());
        }
        self.transaction(move |tx| {
            for mutation in &unit.mutations {
                apply(tx, mutation)?;
            }
            audit::append(tx, &unit.audit)
        })
        .await
    }
}

/// Applies one mutation inside the unit's transaction.
fn apply(conn: &Connection, mutation: &Mutation) -> Result<(), Error> {
    match mutation {
        Mutation::InsertUser(u) => users::insert_user(conn, u),
        Mutation::UpdateUser(u) => users::update_user(conn, u),
        Mutation::InsertCredential(c) => users::insert_credential(conn, c),
        Mutation::RevokeCredential { id, at } => users::revoke_credential(conn, *id, at),
        Mutation::RevokeUserCredentials { user_id, at } => users::revoke_user_credentials(conn, *user_id, at),
        Mutation::InsertPasswordReset(r) => users::insert_password_reset(conn, r),
        Mutation::UsePasswordReset { id, at } => users::use_password_reset(conn, *id, at),
        Mutation::InsertApp(a) => apps::insert_app(conn, a),
        Mutation::UpdateApp(a) => apps::update_app(conn, a),
        Mutation::PutMembership(m) => apps::put_membership(conn, m),
        Mutation::DeleteMembership { app_id, user_id } => apps::delete_membership(conn, *app_id, *user_id),
        Mutation::InsertInvite(i) => apps::insert_invite(conn, i),
        Mutation::UpdateInvite(i) => apps::update_invite(conn, i),
        Mutation::InsertWorkspace(w) => workspaces::insert_workspace(conn, w),
        Mutation::UpdateWorkspace(w) => workspaces::update_workspace(conn, w),
        Mutation::InsertOutbox(m) => audit::insert_outbox(conn, m),
        Mutation::InsertJob(j) => jobs::insert_job(conn, j),
        Mutation::FinishJob(f) => jobs::finish_job(conn, f),
        Mutation::AppendJobLog { id, lines, limit_bytes } => jobs::append_log(conn, *id, lines, *limit_bytes),
        Mutation::CancelQueuedJob { id, at } => jobs::cancel_queued_job(conn, *id, at),
        Mutation::RequestJobCancel { id } => jobs::request_job_cancel(conn, *id),
        Mutation::ReleaseJob { id, worker } => jobs::release_job(conn, *id, worker),
        Mutation::InsertChangeset(c) => changesets::insert_changeset(conn, c),
        Mutation::UpdateChangeset(c) => changesets::update_changeset(conn, c),
        Mutation::InsertRevision(r) => changesets::insert_revision(conn, r),
        Mutation::PutReview(r) => changesets::put_review(conn, r),
        Mutation::InsertComment(c) => changesets::insert_comment(conn, c),
        Mutation::UpdateComment(c) => changesets::update_comment(conn, c),
        Mutation::InsertRuntimeProfile(p) => profiles::insert_runtime_profile(conn, p),
        Mutation::UpdateRuntimeProfile(p) => profiles::update_runtime_profile(conn, p),
        Mutation::InsertProfileRevision(r) => profiles::insert_profile_revision(conn, r),
        Mutation::InsertSecret(s) => profiles::insert_secret(conn, s),
        Mutation::DeleteChangesetSecrets { changeset_id } => profiles::delete_changeset_secrets(conn, *changeset_id),
        Mutation::RewrapSecrets { from_key_id, secrets } => profiles::rewrap_secrets(conn, from_key_id, secrets),
        Mutation::SetSecretsKeyId { expected, key_id } => {
            profiles::set_secrets_key_id(conn, expected.as_deref(), key_id)
        }
        Mutation::ReplaceEnvironments { app_id, environments } => {
            profiles::replace_environments(conn, *app_id, environments)
        }
        Mutation::PutChangesetOverrides { changeset_id, overrides } => {
            profiles::put_changeset_overrides(conn, *changeset_id, overrides)
        }
        Mutation::MarkOutboxDelivered { id, at } => audit::mark_outbox_delivered(conn, *id, at),
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
        0 if exists()? => Err(Error::Conflict {
            message: format!("the {kind} was changed by someone else; reload it and retry"),
            details: Some(serde_json::json!({ "reason": "stale_version" })),
        }),
        0 => Err(Error::NotFound(kind)),
        n => Err(Error::internal(format!("a compare-and-set update of one {kind} changed {n} rows"))),
    }
}
