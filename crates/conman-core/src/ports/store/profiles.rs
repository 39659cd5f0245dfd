//! Runtime profiles, their revisions and sealed secrets, environments, and
//! changesets' profile overrides: reads and mutations.

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::environment::Environment;
use crate::domain::runtime_profile::overrides::ProfileOverride;
use crate::domain::runtime_profile::revision::ProfileRevision;
use crate::domain::runtime_profile::RuntimeProfile;
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, RuntimeProfileId};

/// Who a sealed secret value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum SecretOwner {
    /// A runtime profile's secret.
    Profile(RuntimeProfileId),
    /// A secret override carried by a changeset.
    Changeset(ChangesetId),
}

/// One sealed secret value: the value `name` had from `revision` of its
/// owner on (profiles) or the value a changeset override sets.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSecret {
    /// The app.
    pub app_id: AppId,
    /// Whose secret.
    pub owner: SecretOwner,
    /// Key name.
    pub name: String,
    /// The owner's revision that set this value (1 for changeset overrides,
    /// which are replaced whole).
    pub revision: u32,
    /// The sealed value (see `ports::crypto`).
    pub sealed: crate::ports::crypto::SealedSecret,
    /// When it was sealed.
    pub created_at: Timestamp,
}

/// A change to runtime profiles, secrets, environments or overrides.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileMutation {
    /// Insert a runtime profile (name unique per app).
    InsertRuntimeProfile(RuntimeProfile),
    /// Update a runtime profile (CAS on version).
    UpdateRuntimeProfile(RuntimeProfile),
    /// Append a profile revision (`conflict` if that number exists).
    InsertProfileRevision(ProfileRevision),
    /// Insert a sealed secret (`conflict` if (owner, name, revision) exists).
    InsertSecret(StoredSecret),
    /// Delete every sealed secret of a changeset (its overrides are replaced).
    DeleteChangesetSecrets {
        /// The changeset.
        changeset_id: ChangesetId,
    },
    /// Replace the sealed values of existing secrets after a master-key
    /// rotation: each row (by owner, name, revision) must exist (`not_found`)
    /// and still be wrapped by `from_key_id` (`conflict` otherwise).
    RewrapSecrets {
        /// Key id the rows must carry now.
        from_key_id: String,
        /// The rewrapped rows.
        secrets: Vec<StoredSecret>,
    },
    /// Record the key id of the master key every secret is wrapped with,
    /// compare-and-set against `expected` (`conflict` on mismatch).
    SetSecretsKeyId {
        /// The key id stored now (`None`: none yet).
        expected: Option<String>,
        /// The new key id.
        key_id: String,
    },
    /// Replace an app's environment list (names unique; ids kept).
    ReplaceEnvironments {
        /// The app.
        app_id: AppId,
        /// The whole new list.
        environments: Vec<Environment>,
    },
    /// Replace a changeset's profile overrides.
    PutChangesetOverrides {
        /// The changeset.
        changeset_id: ChangesetId,
        /// The whole new list, in order.
        overrides: Vec<ProfileOverride>,
    },
}

/// Runtime profiles, their revisions and sealed secrets, environments,
/// and changesets' profile overrides.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// A runtime profile of an app.
    async fn runtime_profile(&self, app_id: AppId, id: RuntimeProfileId) -> Result<Option<RuntimeProfile>, Error>;
    /// A runtime profile by name.
    async fn runtime_profile_by_name(&self, app_id: AppId, name: &str) -> Result<Option<RuntimeProfile>, Error>;
    /// Runtime profiles of an app, by name.
    async fn list_runtime_profiles(&self, app_id: AppId, page: PageRequest) -> Result<Page<RuntimeProfile>, Error>;
    /// Revisions of a profile, newest (highest number) first.
    async fn profile_revisions(&self, id: RuntimeProfileId, page: PageRequest) -> Result<Page<ProfileRevision>, Error>;
    /// One revision of a profile.
    async fn profile_revision(&self, id: RuntimeProfileId, number: u32) -> Result<Option<ProfileRevision>, Error>;
    /// One sealed secret value.
    async fn secret(&self, owner: SecretOwner, name: &str, revision: u32) -> Result<Option<StoredSecret>, Error>;
    /// Every sealed value of an owner, by name then revision.
    async fn secrets_of(&self, owner: SecretOwner) -> Result<Vec<StoredSecret>, Error>;
    /// Up to `limit` sealed values of the whole installation after `after`,
    /// ordered by (owner kind as text — `changeset` before `profile` —,
    /// owner id, name, revision) — keyset paging for key rotation.
    async fn all_secrets(
        &self,
        after: Option<(SecretOwner, String, u32)>,
        limit: u32,
    ) -> Result<Vec<StoredSecret>, Error>;
    /// The key id recorded by `SetSecretsKeyId`, if any.
    async fn secrets_key_id(&self) -> Result<Option<String>, Error>;
    /// An app's environments, by position.
    async fn environments(&self, app_id: AppId) -> Result<Vec<Environment>, Error>;
    /// A changeset's profile overrides, in order.
    async fn changeset_overrides(&self, changeset_id: ChangesetId) -> Result<Vec<ProfileOverride>, Error>;
}
