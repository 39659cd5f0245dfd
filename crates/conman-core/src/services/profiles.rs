//! Runtime profiles (SPEC §2.6): create, list, show, patch, revisions,
//! revert, and revealing a secret.
//!
//! Invariants:
//! - every change (create, patch, revert) writes the profile, exactly one
//!   new append-only revision, the sealed values of the secrets it sets and
//!   its audit entry in one unit of work;
//! - secret values are sealed with a binding to (app, profile, key name) and
//!   stored under the revision that set them; they never appear in a
//!   revision, an audit entry, a log line or an error — readers see masks,
//!   and only `app_admin` reveals a value (audited, without the value);
//! - persistent profiles are managed by `app_admin` only; everyone who can
//!   read the app reads profiles with masked secrets.

use std::collections::BTreeMap;

use serde::Serialize;

use super::secrets_key::{binding_of, secret_binding};
use super::{Actor, AuditWhat, Conman};
use crate::domain::runtime_profile::input::{apply_patch, build_profile, ProfileInput, ProfilePatch};
use crate::domain::runtime_profile::revision::{revert_to, ProfileRevision, RevisionReason};
use crate::domain::runtime_profile::{mask_secret, RuntimeProfile};
use crate::error::Error;
use crate::ids::{AppId, RuntimeProfileId};
use crate::ports::crypto::{SecretBytes, SecretCipher};
use crate::ports::store::{Page, PageRequest, ProfileMutation, SecretOwner, StoredSecret, UnitOfWork};
use crate::rbac::Capability;

/// A secret as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskedSecret {
    /// The SPEC §2.6 mask of the value.
    pub mask: String,
    /// The revision that set the value.
    pub revision: u32,
}

/// A profile with its secrets masked.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileView {
    /// The profile (secret names and metadata only).
    #[serde(flatten)]
    pub profile: RuntimeProfile,
    /// Masked values, by name.
    pub masked_secrets: BTreeMap<String, MaskedSecret>,
}

impl Conman {
    /// The secret cipher, or a clear error when this process has none.
    pub(super) fn cipher(&self) -> Result<std::sync::Arc<dyn SecretCipher>, Error> {
        let slot = self.secrets.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.clone().ok_or_else(|| Error::internal("this process was started without a secrets master key"))
    }

    /// Creates a persistent runtime profile (app admins).
    pub async fn create_runtime_profile(
        &self,
        actor: &Actor,
        app_id: AppId,
        input: ProfileInput,
    ) -> Result<ProfileView, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageSettings, None)?;
        let profile = build_profile(self.new_id(), app_id, &input, self.now())?;
        let cipher = self.cipher()?;
        let mut mutations = vec![ProfileMutation::InsertRuntimeProfile(profile.clone())];
        for (name, value) in &input.secrets {
            let sealed =
                cipher.seal(value.expose().as_bytes(), &binding_of(app_id, SecretOwner::Profile(profile.id), name))?;
            mutations.push(ProfileMutation::InsertSecret(self.stored_secret(&profile, name, sealed)));
        }
        let revision = ProfileRevision::snapshot(&profile, actor.user.id, RevisionReason::Create);
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("runtime_profile", profile.id, "runtime_profile.created").after(&profile),
        );
        mutations.push(ProfileMutation::InsertProfileRevision(revision));
        self.store().commit(UnitOfWork::new().record_all(mutations, audit)).await?;
        self.profile_view(profile).await
    }

    /// Profiles of an app, by name, secrets masked.
    pub async fn list_runtime_profiles(
        &self,
        actor: &Actor,
        app_id: AppId,
        page: PageRequest,
    ) -> Result<Page<ProfileView>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        let profiles = self.store().list_runtime_profiles(app_id, page).await?;
        let mut items = Vec::with_capacity(profiles.items.len());
        for profile in profiles.items {
            items.push(self.profile_view(profile).await?);
        }
        Ok(Page { items, total: profiles.total })
    }

    /// One profile, secrets masked.
    pub async fn get_runtime_profile(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: RuntimeProfileId,
    ) -> Result<ProfileView, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        let profile = self.store().runtime_profile(app_id, id).await?.ok_or(Error::NotFound(RuntimeProfileId::KIND))?;
        self.profile_view(profile).await
    }

    /// Patches a profile as a new revision (app admins).
    pub async fn patch_runtime_profile(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: RuntimeProfileId,
        patch: ProfilePatch,
    ) -> Result<ProfileView, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageSettings, None)?;
        let current = self.store().runtime_profile(app_id, id).await?.ok_or(Error::NotFound(RuntimeProfileId::KIND))?;
        let updated = apply_patch(&current, &patch, self.now())?;
        let cipher = self.cipher()?;
        let mut mutations = vec![ProfileMutation::UpdateRuntimeProfile(updated.clone())];
        for (name, value) in &patch.set_secrets {
            let sealed =
                cipher.seal(value.expose().as_bytes(), &binding_of(app_id, SecretOwner::Profile(updated.id), name))?;
            mutations.push(ProfileMutation::InsertSecret(self.stored_secret(&updated, name, sealed)));
        }
        let revision = ProfileRevision::snapshot(&updated, actor.user.id, RevisionReason::Patch);
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("runtime_profile", id, "runtime_profile.updated").before(&current).after(&updated),
        );
        mutations.push(ProfileMutation::InsertProfileRevision(revision));
        self.store().commit(UnitOfWork::new().record_all(mutations, audit)).await?;
        self.profile_view(updated).await
    }

    /// Revisions of a profile, newest first.
    pub async fn runtime_profile_revisions(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: RuntimeProfileId,
        page: PageRequest,
    ) -> Result<Page<ProfileRevision>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        let profile = self.store().runtime_profile(app_id, id).await?.ok_or(Error::NotFound(RuntimeProfileId::KIND))?;
        self.store().profile_revisions(profile.id, page).await
    }

    /// Restores revision `number` as a new revision (app admins).
    pub async fn revert_runtime_profile(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: RuntimeProfileId,
        number: u32,
    ) -> Result<ProfileView, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageSettings, None)?;
        let current = self.store().runtime_profile(app_id, id).await?.ok_or(Error::NotFound(RuntimeProfileId::KIND))?;
        let target = self.store().profile_revision(id, number).await?.ok_or(Error::NotFound("revision"))?;
        let reverted = revert_to(&current, &target, self.now())?;
        let revision =
            ProfileRevision::snapshot(&reverted, actor.user.id, RevisionReason::Revert { to_revision: number });
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("runtime_profile", id, "runtime_profile.reverted").before(&current).after(&reverted),
        );
        let unit = UnitOfWork::new().record_all(
            [ProfileMutation::UpdateRuntimeProfile(reverted.clone()), ProfileMutation::InsertProfileRevision(revision)],
            audit,
        );
        self.store().commit(unit).await?;
        self.profile_view(reverted).await
    }

    /// A secret's plaintext (app admins only; the reveal is audited, the
    /// value never is).
    pub async fn reveal_secret(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: RuntimeProfileId,
        name: &str,
    ) -> Result<SecretBytes, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageSecrets, None)?;
        let profile = self.store().runtime_profile(app_id, id).await?.ok_or(Error::NotFound(RuntimeProfileId::KIND))?;
        let meta = profile.secrets.get(name).ok_or(Error::NotFound("secret"))?;
        let value = self.open_profile_secret(&profile, name, meta.revision).await?;
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("runtime_profile", id, "runtime_profile.secret_revealed")
                .after(serde_json::json!({ "key": name, "revision": meta.revision })),
        );
        self.store().commit(UnitOfWork::new().audit_only(audit)).await?;
        Ok(value)
    }

    /// Decrypts the value `name` had from `revision` of `profile`.
    pub(super) async fn open_profile_secret(
        &self,
        profile: &RuntimeProfile,
        name: &str,
        revision: u32,
    ) -> Result<SecretBytes, Error> {
        let stored = self
            .store()
            .secret(SecretOwner::Profile(profile.id), name, revision)
            .await?
            .ok_or_else(|| Error::internal(format!("the sealed value of secret {name:?} is missing")))?;
        self.cipher()?.open(&stored.sealed, &secret_binding(&stored))
    }

    /// The reader's view: every secret masked.
    async fn profile_view(&self, profile: RuntimeProfile) -> Result<ProfileView, Error> {
        let values = self.open_profile_secrets(&profile).await?;
        let mut masked_secrets = BTreeMap::new();
        for (name, meta) in &profile.secrets {
            let value = values
                .get(name)
                .ok_or_else(|| Error::internal(format!("the sealed value of secret {name:?} is missing")))?;
            let mask = mask_secret(&String::from_utf8_lossy(value.expose()));
            masked_secrets.insert(name.clone(), MaskedSecret { mask, revision: meta.revision });
        }
        Ok(ProfileView { profile, masked_secrets })
    }

    /// Decrypts the current value of every secret of `profile`, reading
    /// its sealed values in one store call.
    pub(super) async fn open_profile_secrets(
        &self,
        profile: &RuntimeProfile,
    ) -> Result<BTreeMap<String, SecretBytes>, Error> {
        if profile.secrets.is_empty() {
            return Ok(BTreeMap::new());
        }
        let cipher = self.cipher()?;
        let mut sealed: BTreeMap<(String, u32), crate::ports::crypto::SealedSecret> = self
            .store()
            .secrets_of(SecretOwner::Profile(profile.id))
            .await?
            .into_iter()
            .map(|s| ((s.name, s.revision), s.sealed))
            .collect();
        let mut values = BTreeMap::new();
        for (name, meta) in &profile.secrets {
            let stored = sealed
                .remove(&(name.clone(), meta.revision))
                .ok_or_else(|| Error::internal(format!("the sealed value of secret {name:?} is missing")))?;
            let value = cipher.open(&stored, &binding_of(profile.app_id, SecretOwner::Profile(profile.id), name))?;
            values.insert(name.clone(), value);
        }
        Ok(values)
    }

    fn stored_secret(
        &self,
        profile: &RuntimeProfile,
        name: &str,
        sealed: crate::ports::crypto::SealedSecret,
    ) -> StoredSecret {
        StoredSecret {
            app_id: profile.app_id,
            owner: SecretOwner::Profile(profile.id),
            name: name.to_owned(),
            revision: profile.revision,
            sealed,
            created_at: profile.updated_at,
        }
    }
}
