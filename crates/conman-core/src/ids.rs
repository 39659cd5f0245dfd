//! Typed identifiers. Every id is a UUIDv7 (SPEC §1); a newtype per entity
//! keeps a workspace id from being passed where an app id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

macro_rules! typed_id {
    ($(#[$doc:meta] $name:ident => $label:literal),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The entity kind, used in `not_found` errors.
            pub const KIND: &'static str = $label;

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                parse_uuid(s, $label).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }
    )*};
}

typed_id! {
    /// Identifies a user.
    UserId => "user",
    /// Identifies an app.
    AppId => "app",
    /// Identifies a workspace.
    WorkspaceId => "workspace",
    /// Identifies an invite.
    InviteId => "invite",
    /// Identifies a session or personal API token.
    CredentialId => "token",
    /// Identifies a password-reset request.
    PasswordResetId => "password_reset",
    /// Identifies a changeset.
    ChangesetId => "changeset",
    /// Identifies a review vote.
    ReviewId => "review",
    /// Identifies a changeset comment.
    CommentId => "comment",
    /// Identifies a release.
    ReleaseId => "release",
    /// Identifies an environment.
    EnvironmentId => "environment",
    /// Identifies a deployment.
    DeploymentId => "deployment",
    /// Identifies a deploy freeze window.
    FreezeWindowId => "freeze_window",
    /// Identifies an environment validation (a drift baseline).
    EnvironmentValidationId => "environment_validation",
    /// Identifies a migration execution record.
    MigrationExecutionId => "migration_execution",
    /// Identifies a runtime profile.
    RuntimeProfileId => "runtime_profile",
    /// Identifies a temp environment.
    TempEnvId => "temp_env",
    /// Identifies a job.
    JobId => "job",
    /// Identifies an audit event.
    AuditEventId => "audit_event",
    /// Identifies an outbox message.
    OutboxMessageId => "outbox_message",
    /// Identifies a ref intent.
    IntentId => "intent",
}

/// Parses a UUID given by a caller, refusing anything that is not canonical
/// hyphenated form.
pub fn parse_uuid(s: &str, what: &str) -> Result<Uuid, Error> {
    if s.len() != 36 {
        return Err(Error::invalid(what, "malformed_uuid", format!("{what} id is not a UUID")));
    }
    Uuid::parse_str(s).map_err(|_| Error::invalid(what, "malformed_uuid", format!("{what} id is not a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_uuids_only() {
        let id = Uuid::now_v7();
        assert_eq!(id.to_string().parse::<AppId>().unwrap(), AppId(id));
        for bad in ["", "x", "123", &id.simple().to_string(), &format!("{{{id}}}")] {
            let err = bad.parse::<AppId>().unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::Validation, "{bad}");
        }
    }
}
