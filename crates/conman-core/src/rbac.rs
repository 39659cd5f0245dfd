//! Roles and permissions (SPEC §3) as data, with one entry point,
//! [`authorize`]. Roles are per app and ordered: each inherits the ones
//! before it. Some capabilities differ between acting on one's own entity
//! and on anyone's (`own` / `any` columns of the SPEC matrix).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A member's role in an app, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Edits own workspaces and changesets.
    User,
    /// Also reviews.
    Reviewer,
    /// Also ships releases and deploys.
    ConfigManager,
    /// Also manages members, settings and secrets.
    AppAdmin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::User, Role::Reviewer, Role::ConfigManager, Role::AppAdmin];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Reviewer => "reviewer",
            Role::ConfigManager => "config_manager",
            Role::AppAdmin => "app_admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            Error::invalid("role", "invalid_role", "role must be user, reviewer, config_manager or app_admin")
        })
    }
}

/// A row of the SPEC §3 matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Read app metadata, files, changesets, releases.
    Read,
    /// Create/edit workspaces.
    EditWorkspace,
    /// Create/edit/submit changesets.
    EditChangeset,
    /// Comment.
    Comment,
    /// Approve / request changes / reject.
    Review,
    /// Move conflicted / needs_revalidation to draft.
    MoveToDraft,
    /// Queue an approved changeset.
    QueueChangeset,
    /// Assemble, reorder, publish releases.
    ManageReleases,
    /// Deploy / promote / rollback.
    Deploy,
    /// Approve skip-stage / concurrent deploys.
    ApproveDeployException,
    /// Create temp environments.
    CreateTempEnv,
    /// Invite users, manage members and roles.
    ManageMembers,
    /// Manage settings, environments, persistent profiles.
    ManageSettings,
    /// Reveal secret plaintext, rotate keys.
    ManageSecrets,
    /// Cancel a job (not a SPEC §3 row: own jobs by anyone, any job by a
    /// config manager, like queueing; see docs/decisions/0002-jobs.md).
    CancelJob,
    /// Start a gate run on any commit (config managers; see 0002-jobs.md).
    RunGate,
}

/// Whether the actor acts on its own entity or someone else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The actor owns (authored) the entity, or the action creates a new one.
    Own,
    /// Someone else's entity.
    Other,
}

/// One matrix row: the lowest role allowed on own entities and on anyone's
/// (`None`: nobody).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The capability.
    pub capability: Capability,
    /// Lowest role allowed when acting on one's own entity.
    pub own: Option<Role>,
    /// Lowest role allowed when acting on anyone's entity.
    pub any: Option<Role>,
}

use Capability as C;
use Role as R;

/// The SPEC §3 matrix as data.
pub const MATRIX: &[Rule] = &[
    Rule { capability: C::Read, own: Some(R::User), any: Some(R::User) },
    Rule { capability: C::EditWorkspace, own: Some(R::User), any: None },
    Rule { capability: C::EditChangeset, own: Some(R::User), any: None },
    Rule { capability: C::Comment, own: Some(R::User), any: Some(R::User) },
    Rule { capability: C::Review, own: Some(R::Reviewer), any: Some(R::Reviewer) },
    Rule { capability: C::MoveToDraft, own: Some(R::User), any: Some(R::ConfigManager) },
    Rule { capability: C::QueueChangeset, own: Some(R::User), any: Some(R::ConfigManager) },
    Rule { capability: C::ManageReleases, own: Some(R::ConfigManager), any: Some(R::ConfigManager) },
    Rule { capability: C::Deploy, own: Some(R::ConfigManager), any: Some(R::ConfigManager) },
    Rule { capability: C::ApproveDeployException, own: Some(R::Reviewer), any: Some(R::Reviewer) },
    Rule { capability: C::CreateTempEnv, own: Some(R::User), any: Some(R::User) },
    Rule { capability: C::ManageMembers, own: Some(R::AppAdmin), any: Some(R::AppAdmin) },
    Rule { capability: C::ManageSettings, own: Some(R::AppAdmin), any: Some(R::AppAdmin) },
    Rule { capability: C::ManageSecrets, own: Some(R::AppAdmin), any: Some(R::AppAdmin) },
    Rule { capability: C::CancelJob, own: Some(R::User), any: Some(R::ConfigManager) },
    Rule { capability: C::RunGate, own: Some(R::ConfigManager), any: Some(R::ConfigManager) },
];

fn rule(capability: Capability) -> &'static Rule {
    MATRIX.iter().find(|r| r.capability == capability).expect("every capability has a row in MATRIX (checked by tests)")
}

/// The one authorization decision: may `role` exercise `capability` on an
/// entity with `ownership`? Refusals are `forbidden` (403).
pub fn authorize(role: Role, capability: Capability, ownership: Ownership) -> Result<(), Error> {
    let row = rule(capability);
    let needed = match ownership {
        Ownership::Own => row.own,
        Ownership::Other => row.any,
    };
    match needed {
        Some(min) if role >= min => Ok(()),
        Some(min) => Err(Error::Forbidden(format!("role {role} may not do this; it needs {min} or higher"))),
        None => Err(Error::Forbidden("only the owner may do this".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPEC §3 table transcribed cell by cell: (capability, [user, reviewer,
    /// config_manager, app_admin]) with `O` = own only, `Y` = any, `-` = no.
    const SPEC_TABLE: &[(Capability, [&str; 4])] = &[
        (C::Read, ["Y", "Y", "Y", "Y"]),
        (C::EditWorkspace, ["O", "O", "O", "O"]),
        (C::EditChangeset, ["O", "O", "O", "O"]),
        (C::Comment, ["Y", "Y", "Y", "Y"]),
        (C::Review, ["-", "Y", "Y", "Y"]),
        (C::MoveToDraft, ["O", "O", "Y", "Y"]),
        (C::QueueChangeset, ["O", "O", "Y", "Y"]),
        (C::ManageReleases, ["-", "-", "Y", "Y"]),
        (C::Deploy, ["-", "-", "Y", "Y"]),
        (C::ApproveDeployException, ["-", "Y", "Y", "Y"]),
        (C::CreateTempEnv, ["Y", "Y", "Y", "Y"]),
        (C::ManageMembers, ["-", "-", "-", "Y"]),
        (C::ManageSettings, ["-", "-", "-", "Y"]),
        (C::ManageSecrets, ["-", "-", "-", "Y"]),
        // Conman's own rows (docs/decisions/0002-jobs.md).
        (C::CancelJob, ["O", "O", "Y", "Y"]),
        (C::RunGate, ["-", "-", "Y", "Y"]),
    ];

    #[test]
    fn every_cell_matches_the_spec_table() {
        assert_eq!(SPEC_TABLE.len(), MATRIX.len());
        for (cap, cells) in SPEC_TABLE {
            for (role, cell) in Role::ALL.iter().zip(cells) {
                let own = authorize(*role, *cap, Ownership::Own).is_ok();
                let other = authorize(*role, *cap, Ownership::Other).is_ok();
                let got = match (own, other) {
                    (true, true) => "Y",
                    (true, false) => "O",
                    (false, false) => "-",
                    (false, true) => "any-but-not-own",
                };
                assert_eq!(got, *cell, "{cap:?} for {role}");
            }
        }
    }

    #[test]
    fn refusals_are_forbidden() {
        let err = authorize(Role::User, C::ManageMembers, Ownership::Own).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Forbidden);
    }

    #[test]
    fn roles_parse_and_order() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("admin".parse::<Role>().is_err());
        assert!(Role::User < Role::Reviewer && Role::ConfigManager < Role::AppAdmin);
    }
}
