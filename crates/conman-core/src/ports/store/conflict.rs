//! The store's conflict vocabulary: a store *chooses* a [`ConflictReason`]
//! when it refuses a mutation, the core *renders* it into the one
//! [`Error::Conflict`] every store answers with.
//!
//! Invariant: the message and `details` of a store conflict are a function of
//! the reason alone, so two stores that choose the same reason answer the
//! same full error value (pinned by the conformance suite, which compares
//! whole errors).

use serde_json::json;

use crate::error::Error;

/// The kind of stored record a uniqueness conflict is about. Each store maps
/// its own tables or collections onto this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Record {
    /// A user account.
    User,
    /// A session or API token.
    Token,
    /// A password-reset request.
    PasswordReset,
    /// An app.
    App,
    /// A membership.
    Membership,
    /// An invite.
    Invite,
    /// A workspace.
    Workspace,
    /// An outbox message.
    OutboxMessage,
    /// A job.
    Job,
    /// A job log line.
    JobLogLine,
    /// A changeset.
    Changeset,
    /// A frozen changeset revision.
    ChangesetRevision,
    /// A review vote.
    Review,
    /// A comment.
    Comment,
    /// A runtime profile.
    RuntimeProfile,
    /// A runtime profile revision.
    ProfileRevision,
    /// A sealed secret value.
    Secret,
    /// An installation-wide setting.
    InstallationSetting,
    /// An environment.
    Environment,
    /// A changeset's profile override.
    ChangesetOverride,
    /// An audit event.
    AuditEvent,
    /// A release.
    Release,
    /// A deployment.
    Deployment,
    /// A deploy freeze window.
    FreezeWindow,
    /// An environment validation (a drift baseline).
    EnvironmentValidation,
    /// A migration execution record.
    MigrationExecution,
    /// Anything the store cannot name.
    Other,
}

impl Record {
    /// The noun a message uses for a duplicate `field` of this record.
    fn noun(self, field: &str) -> &'static str {
        match self {
            Record::User => "user",
            Record::Token => "token",
            Record::PasswordReset => "password reset",
            Record::App => "app",
            Record::Membership => "membership",
            Record::Invite => "invite",
            Record::Workspace if field == "branch" => "workspace in this app",
            Record::Workspace => "workspace",
            Record::OutboxMessage => "outbox message",
            Record::Job => "job",
            Record::JobLogLine => "job log line",
            Record::Changeset => "changeset",
            Record::ChangesetRevision => "changeset revision",
            Record::Review => "review",
            Record::Comment => "comment",
            Record::RuntimeProfile => "runtime profile in this app",
            Record::ProfileRevision => "profile revision",
            Record::Secret => "secret value",
            Record::InstallationSetting => "installation setting",
            Record::Environment if field == "name" => "environment in this app",
            Record::Environment => "environment",
            Record::ChangesetOverride => "changeset override",
            Record::AuditEvent => "audit event",
            Record::Release if field == "tag" => "release tag in this app",
            Record::Release => "release",
            Record::Deployment if field == "environment" => "deployment in progress",
            Record::Deployment => "deployment",
            Record::FreezeWindow => "freeze window",
            Record::EnvironmentValidation => "environment validation",
            Record::MigrationExecution => "migration record",
            Record::Other => "record",
        }
    }
}

/// Why a store refused a mutation with `conflict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    /// A compare-and-set update lost to a concurrent one: the stored version
    /// is not the one the update was computed from.
    StaleVersion {
        /// The entity kind, e.g. `workspace`.
        entity: &'static str,
    },
    /// A unique key is already taken.
    Taken {
        /// Which kind of record.
        record: Record,
        /// The column or field that must be unique.
        field: String,
    },
    /// The workspace already has an open (neither released nor rejected)
    /// changeset.
    OpenChangesetExists,
    /// The mutation refers to an entity that does not exist.
    MissingReference,
    /// The worker no longer holds the job's lease.
    LeaseLost,
    /// The job is no longer queued.
    NotQueued,
    /// The job is not running.
    NotRunning,
    /// A cancel was requested for the job: its attempt may only end
    /// `canceled` ("a requested cancel wins").
    CancelRequested,
    /// The password reset was already used.
    ResetAlreadyUsed,
    /// A secret being re-wrapped is no longer wrapped by the key being
    /// rotated.
    KeyIdMismatch,
    /// The recorded master key id changed meanwhile.
    StaleKeyId,
    /// An environment id in the list belongs to another app.
    EnvironmentOfAnotherApp,
    /// The unit would leave the app without an `app_admin`.
    LastAppAdmin,
    /// A ref of a new intent is claimed by a pending one.
    RefBusy,
    /// A move of a new intent starts from a value other than the one the
    /// store last recorded for the ref (decision 0008): the change was
    /// planned on a ref another change moved since.
    RefMoved {
        /// The full ref name.
        ref_name: String,
    },
}

impl ConflictReason {
    /// The machine-readable reason sent in `details.reason`.
    pub fn code(&self) -> &'static str {
        match self {
            ConflictReason::StaleVersion { .. } => "stale_version",
            ConflictReason::Taken { .. } => "taken",
            ConflictReason::OpenChangesetExists => "open_changeset_exists",
            ConflictReason::MissingReference => "missing_reference",
            ConflictReason::LeaseLost => "lease_lost",
            ConflictReason::NotQueued => "not_queued",
            ConflictReason::NotRunning => "not_running",
            ConflictReason::CancelRequested => "cancel_requested",
            ConflictReason::ResetAlreadyUsed => "reset_already_used",
            ConflictReason::KeyIdMismatch => "key_id_mismatch",
            ConflictReason::StaleKeyId => "stale_key_id",
            ConflictReason::EnvironmentOfAnotherApp => "environment_of_another_app",
            ConflictReason::LastAppAdmin => "last_app_admin",
            ConflictReason::RefBusy => "ref_busy",
            ConflictReason::RefMoved { .. } => "ref_moved",
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> String {
        match self {
            ConflictReason::StaleVersion { entity } => {
                format!("the {entity} was changed by someone else; reload it and retry")
            }
            ConflictReason::Taken { record, field } => {
                format!("a {} with this {field} already exists", record.noun(field))
            }
            ConflictReason::OpenChangesetExists => "the workspace already has an open changeset".into(),
            ConflictReason::MissingReference => "the change refers to an entity that does not exist".into(),
            ConflictReason::LeaseLost => "the worker no longer holds the job's lease".into(),
            ConflictReason::NotQueued => "the job is no longer queued".into(),
            ConflictReason::NotRunning => "the job is not running".into(),
            ConflictReason::CancelRequested => "a cancel was requested; the job can only end canceled".into(),
            ConflictReason::ResetAlreadyUsed => "this password reset was already used".into(),
            ConflictReason::KeyIdMismatch => {
                "a secret is no longer wrapped by the key being rotated; restart the rotation".into()
            }
            ConflictReason::StaleKeyId => "the secrets master key id changed meanwhile; reload and retry".into(),
            ConflictReason::EnvironmentOfAnotherApp => "an environment with this id belongs to another app".into(),
            ConflictReason::LastAppAdmin => "an app must keep at least one app_admin".into(),
            ConflictReason::RefBusy => "another change to the same git ref is still being applied; retry".into(),
            ConflictReason::RefMoved { ref_name } => {
                format!("the git ref {ref_name} moved since this change was planned; nothing was applied, retry")
            }
        }
    }
}

impl From<ConflictReason> for Error {
    fn from(reason: ConflictReason) -> Self {
        let details = match &reason {
            ConflictReason::Taken { field, .. } => json!({ "field": field, "reason": reason.code() }),
            ConflictReason::RefMoved { ref_name } => json!({ "ref": ref_name, "reason": reason.code() }),
            _ => json!({ "reason": reason.code() }),
        };
        Error::Conflict { message: reason.message(), details: Some(details) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_renders_its_code_in_the_details() {
        let err = Error::from(ConflictReason::Taken { record: Record::Workspace, field: "branch".into() });
        assert_eq!(err.to_string(), "a workspace in this app with this branch already exists");
        assert_eq!(err.details(), Some(json!({ "field": "branch", "reason": "taken" })));
        let err = Error::from(ConflictReason::StaleVersion { entity: "app" });
        assert!(err.is_stale_version());
        assert_eq!(err.to_string(), "the app was changed by someone else; reload it and retry");
        assert_eq!(Error::from(ConflictReason::LeaseLost).details(), Some(json!({ "reason": "lease_lost" })));
        let err = Error::from(ConflictReason::Taken { record: Record::Deployment, field: "environment".into() });
        assert_eq!(err.to_string(), "a deployment in progress with this environment already exists");
    }
}
