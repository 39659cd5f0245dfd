//! Profile revisions: the append-only history of a runtime profile (SPEC
//! §2.6: every change creates a revision; revert restores one as a new one).
//!
//! Invariants:
//! - a [`ProfileRevision`] is a frozen snapshot: the [`ProfileDocument`] of
//!   the profile at that revision (secrets as names and metadata only, never
//!   values), its number, author, instant and reason; nothing edits or
//!   deletes one;
//! - the document is everything a user edits; it excludes identity,
//!   bookkeeping (`revision`, `version`, timestamps) and
//!   `migrations.applied_state`, which records what a deployment did to the
//!   database — a fact that no revert can undo, and whose recording is not a
//!   profile edit (it makes no revision);
//! - [`revert_to`] never rewrites history: it produces revision
//!   `current.revision + 1` whose document equals the chosen revision's
//!   document exactly. Secret metadata is restored as it was, so each secret
//!   points again at the sealed value its old revision set (the store keeps
//!   sealed values per `(profile, name, revision)`). A revert may restore an
//!   env var's former type: it is an explicit act on a whole document.
//!
//! Serde here is persistence: revisions are stored as JSON documents and
//! refuse unknown fields when read back (a document this version cannot
//! represent is an error, not silently trimmed).

use serde::{Deserialize, Serialize};

use super::input::MigrationsInput;
use super::{
    validate_profile, DataStrategy, DatabaseSettings, EnvVars, Lifecycle, MigrationSettings, ProfileKind,
    RuntimeProfile, Secrets,
};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{RuntimeProfileId, UserId};

/// The user-edited content of a profile at one revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDocument {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ProfileKind,
    /// Base URL.
    pub base_url: Option<String>,
    /// Typed env vars.
    pub env_vars: EnvVars,
    /// Secret names and metadata.
    pub secrets: Secrets,
    /// Database settings.
    pub database: DatabaseSettings,
    /// Migration settings (without the applied state).
    pub migrations: MigrationsInput,
    /// Data strategy.
    pub data_strategy: DataStrategy,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
}

impl RuntimeProfile {
    /// The profile's document (what a revision snapshots).
    pub fn document(&self) -> ProfileDocument {
        ProfileDocument {
            name: self.name.clone(),
            kind: self.kind,
            base_url: self.base_url.clone(),
            env_vars: self.env_vars.clone(),
            secrets: self.secrets.clone(),
            database: self.database.clone(),
            migrations: MigrationsInput {
                paths: self.migrations.paths.clone(),
                command: self.migrations.command.clone(),
            },
            data_strategy: self.data_strategy,
            lifecycle: self.lifecycle,
        }
    }
}

/// Why a revision exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RevisionReason {
    /// The profile was created.
    Create,
    /// The profile was patched.
    Patch,
    /// An earlier revision was restored.
    Revert {
        /// The restored revision's number.
        to_revision: u32,
    },
}

/// One append-only revision of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRevision {
    /// The profile.
    pub profile_id: RuntimeProfileId,
    /// Revision number, from 1.
    pub number: u32,
    /// The document at this revision.
    pub document: ProfileDocument,
    /// Who made the change.
    pub author: UserId,
    /// When.
    pub created_at: Timestamp,
    /// Why.
    pub reason: RevisionReason,
}

impl ProfileRevision {
    /// The revision recording `profile` as it is now (after a create, patch
    /// or revert): number `profile.revision`, instant `profile.updated_at`.
    pub fn snapshot(profile: &RuntimeProfile, author: UserId, reason: RevisionReason) -> Self {
        ProfileRevision {
            profile_id: profile.id,
            number: profile.revision,
            document: profile.document(),
            author,
            created_at: profile.updated_at,
            reason,
        }
    }
}

/// Restores `target` as the next revision of `current` (see the module
/// invariants). Refuses a revision of another profile, of another kind, or
/// one that is not older than the current revision.
pub fn revert_to(current: &RuntimeProfile, target: &ProfileRevision, now: Timestamp) -> Result<RuntimeProfile, Error> {
    if target.profile_id != current.id {
        return Err(Error::invalid("revision", "wrong_profile", "the revision belongs to another profile"));
    }
    if target.number == 0 || target.number >= current.revision {
        return Err(Error::invalid(
            "revision",
            "not_older",
            format!("revision {} is not older than the current revision {}", target.number, current.revision),
        ));
    }
    if target.document.kind != current.kind {
        return Err(Error::invalid("revision", "kind_change", "a profile's kind never changes"));
    }
    let revision = current
        .revision
        .checked_add(1)
        .ok_or_else(|| Error::invalid("revision", "too_many_revisions", "the profile has too many revisions"))?;
    let d = target.document.clone();
    let next = RuntimeProfile {
        id: current.id,
        app_id: current.app_id,
        name: d.name,
        kind: d.kind,
        base_url: d.base_url,
        env_vars: d.env_vars,
        secrets: d.secrets,
        database: d.database,
        migrations: MigrationSettings {
            paths: d.migrations.paths,
            command: d.migrations.command,
            applied_state: current.migrations.applied_state.clone(),
        },
        data_strategy: d.data_strategy,
        lifecycle: d.lifecycle,
        revision,
        created_at: current.created_at,
        updated_at: now,
        version: current.version + 1,
    };
    validate_profile(&next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runtime_profile::test_support::{later, profile, profile_patch, reason};
    use crate::domain::runtime_profile::{apply_patch, AppliedState, EnvValue};
    use serde_json::json;
    use uuid::Uuid;

    fn author() -> UserId {
        UserId(Uuid::nil())
    }

    #[test]
    fn revert_makes_the_next_revision_equal_to_the_old_document() {
        let r1 = profile();
        let first = ProfileRevision::snapshot(&r1, author(), RevisionReason::Create);
        let patch = profile_patch(json!({
            "set_env_vars": {"PORT": {"type": "string", "value": "80"}}, "retype_env_vars": ["PORT"],
            "set_secrets": {"API_KEY": "rotated-key-value"}, "name": "renamed"
        }));
        let mut r2 = apply_patch(&r1, &patch, later()).unwrap();
        r2.migrations.applied_state =
            Some(AppliedState { last_applied: "0007".into(), checksum: None, recorded_at: later() });
        assert_eq!(r2.secrets["API_KEY"].revision, 2);

        let r3 = revert_to(&r2, &first, later()).unwrap();
        assert_eq!(r3.revision, 3);
        assert_eq!(r3.version, r2.version + 1);
        assert_eq!(r3.document(), first.document);
        assert_eq!(r3.env_vars["PORT"], EnvValue::Number(8080.0), "the old type comes back");
        assert_eq!(r3.secrets["API_KEY"].revision, 1, "points at the old sealed value");
        assert_eq!(r3.migrations.applied_state, r2.migrations.applied_state, "applied state is a fact");
        let rev3 = ProfileRevision::snapshot(&r3, author(), RevisionReason::Revert { to_revision: 1 });
        assert_eq!(rev3.number, 3);
        assert_eq!(rev3.document, first.document);
    }

    #[test]
    fn revert_refuses_foreign_current_or_future_revisions() {
        let r1 = profile();
        let own = ProfileRevision::snapshot(&r1, author(), RevisionReason::Create);
        assert_eq!(reason(&revert_to(&r1, &own, later()).unwrap_err()), "not_older");
        let mut r2 = r1.clone();
        r2.revision = 2;
        let mut foreign = own.clone();
        foreign.profile_id = RuntimeProfileId(Uuid::now_v7());
        assert_eq!(reason(&revert_to(&r2, &foreign, later()).unwrap_err()), "wrong_profile");
        let mut other_kind = own;
        other_kind.document.kind = ProfileKind::TempChangeset;
        assert_eq!(reason(&revert_to(&r2, &other_kind, later()).unwrap_err()), "kind_change");
    }

    #[test]
    fn revisions_refuse_unknown_fields() {
        let rev = ProfileRevision::snapshot(&profile(), author(), RevisionReason::Revert { to_revision: 1 });
        let good = serde_json::to_value(&rev).unwrap();
        assert_eq!(good["reason"], json!({"type": "revert", "to_revision": 1}));
        assert_eq!(serde_json::from_value::<ProfileRevision>(good.clone()).unwrap(), rev);
        for (ptr, key) in [("", "x"), ("/document", "x"), ("/reason", "x"), ("/document/migrations", "applied_state")] {
            let mut doc = good.clone();
            doc.pointer_mut(ptr).unwrap().as_object_mut().unwrap().insert(key.into(), json!(null));
            assert!(serde_json::from_value::<ProfileRevision>(doc).is_err(), "{ptr}/{key}");
        }
    }
}
