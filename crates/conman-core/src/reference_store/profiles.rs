//! Runtime profiles, revisions, sealed secrets, environments and changeset
//! overrides (mirrors the SQL stores' `profiles`).

use async_trait::async_trait;

use super::{cas, page, reference, unique, ReferenceStore, State};
use crate::domain::environment::Environment;
use crate::domain::runtime_profile::overrides::ProfileOverride;
use crate::domain::runtime_profile::revision::ProfileRevision;
use crate::domain::runtime_profile::RuntimeProfile;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, RuntimeProfileId};
use crate::ports::store::{
    ConflictReason, Page, PageRequest, ProfileMutation, ProfileStore, Record, SecretOwner, StoredSecret,
};

/// The profiles slice's collections.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Profiles {
    pub(crate) profiles: Vec<RuntimeProfile>,
    pub(crate) revisions: Vec<ProfileRevision>,
    pub(crate) secrets: Vec<StoredSecret>,
    pub(crate) secrets_key_id: Option<String>,
    pub(crate) environments: Vec<Environment>,
    pub(crate) overrides: Vec<(ChangesetId, Vec<ProfileOverride>)>,
}

/// A secret's key in the SQL stores' order: owner kind as text
/// (`changeset` before `profile`), owner id, name, revision.
fn secret_key(owner: SecretOwner, name: &str, revision: u32) -> (&'static str, uuid::Uuid, String, u32) {
    match owner {
        SecretOwner::Changeset(cs) => ("changeset", cs.0, name.to_owned(), revision),
        SecretOwner::Profile(p) => ("profile", p.0, name.to_owned(), revision),
    }
}

fn key_of(s: &StoredSecret) -> (&'static str, uuid::Uuid, String, u32) {
    secret_key(s.owner, &s.name, s.revision)
}

#[async_trait]
impl ProfileStore for ReferenceStore {
    async fn runtime_profile(&self, app_id: AppId, id: RuntimeProfileId) -> Result<Option<RuntimeProfile>, Error> {
        Ok(self.lock().profiles.profiles.iter().find(|p| p.id == id && p.app_id == app_id).cloned())
    }

    async fn runtime_profile_by_name(&self, app_id: AppId, name: &str) -> Result<Option<RuntimeProfile>, Error> {
        Ok(self.lock().profiles.profiles.iter().find(|p| p.app_id == app_id && p.name == name).cloned())
    }

    async fn list_runtime_profiles(&self, app_id: AppId, request: PageRequest) -> Result<Page<RuntimeProfile>, Error> {
        let mut found: Vec<RuntimeProfile> =
            self.lock().profiles.profiles.iter().filter(|p| p.app_id == app_id).cloned().collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(page(found, request))
    }

    async fn profile_revisions(
        &self,
        id: RuntimeProfileId,
        request: PageRequest,
    ) -> Result<Page<ProfileRevision>, Error> {
        let mut found: Vec<ProfileRevision> =
            self.lock().profiles.revisions.iter().filter(|r| r.profile_id == id).cloned().collect();
        found.sort_by_key(|x| std::cmp::Reverse(x.number));
        Ok(page(found, request))
    }

    async fn profile_revision(&self, id: RuntimeProfileId, number: u32) -> Result<Option<ProfileRevision>, Error> {
        Ok(self.lock().profiles.revisions.iter().find(|r| r.profile_id == id && r.number == number).cloned())
    }

    async fn secret(&self, owner: SecretOwner, name: &str, revision: u32) -> Result<Option<StoredSecret>, Error> {
        let state = self.lock();
        Ok(state
            .profiles
            .secrets
            .iter()
            .find(|s| s.owner == owner && s.name == name && s.revision == revision)
            .cloned())
    }

    async fn secrets_of(&self, owner: SecretOwner) -> Result<Vec<StoredSecret>, Error> {
        let mut found: Vec<StoredSecret> =
            self.lock().profiles.secrets.iter().filter(|s| s.owner == owner).cloned().collect();
        found.sort_by_key(key_of);
        Ok(found)
    }

    async fn all_secrets(
        &self,
        after: Option<(SecretOwner, String, u32)>,
        limit: u32,
    ) -> Result<Vec<StoredSecret>, Error> {
        let after = after.map(|(owner, name, revision)| secret_key(owner, &name, revision));
        let mut found: Vec<StoredSecret> = self
            .lock()
            .profiles
            .secrets
            .iter()
            .filter(|s| after.as_ref().is_none_or(|a| key_of(s) > *a))
            .cloned()
            .collect();
        found.sort_by_key(key_of);
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn secrets_key_id(&self) -> Result<Option<String>, Error> {
        Ok(self.lock().profiles.secrets_key_id.clone())
    }

    async fn environments(&self, app_id: AppId) -> Result<Vec<Environment>, Error> {
        let mut found: Vec<Environment> =
            self.lock().profiles.environments.iter().filter(|e| e.app_id == app_id).cloned().collect();
        found.sort_by_key(|e| (e.position, e.id));
        Ok(found)
    }

    async fn changeset_overrides(&self, changeset_id: ChangesetId) -> Result<Vec<ProfileOverride>, Error> {
        let state = self.lock();
        Ok(state
            .profiles
            .overrides
            .iter()
            .find(|(cs, _)| *cs == changeset_id)
            .map(|(_, o)| o.clone())
            .unwrap_or_default())
    }
}

fn insert_runtime_profile(state: &mut State, p: &RuntimeProfile) -> Result<(), Error> {
    let profiles = &state.profiles.profiles;
    unique(profiles.iter().any(|x| x.id == p.id), Record::RuntimeProfile, "id")?;
    unique(profiles.iter().any(|x| x.app_id == p.app_id && x.name == p.name), Record::RuntimeProfile, "name")?;
    reference(state.apps.exists(p.app_id))?;
    state.profiles.profiles.push(p.clone());
    Ok(())
}

fn update_runtime_profile(state: &mut State, p: &RuntimeProfile) -> Result<(), Error> {
    let profiles = &mut state.profiles.profiles;
    let found = profiles.iter_mut().find(|x| x.id == p.id && x.app_id == p.app_id);
    cas(found, |x| x.version, p.version, RuntimeProfileId::KIND)?;
    let taken = profiles.iter().any(|x| x.id != p.id && x.app_id == p.app_id && x.name == p.name);
    unique(taken, Record::RuntimeProfile, "name")?;
    if let Some(row) = profiles.iter_mut().find(|x| x.id == p.id) {
        *row = p.clone();
    }
    Ok(())
}

fn insert_profile_revision(state: &mut State, r: &ProfileRevision) -> Result<(), Error> {
    let slice = &state.profiles;
    let taken = slice.revisions.iter().any(|x| x.profile_id == r.profile_id && x.number == r.number);
    unique(taken, Record::ProfileRevision, "number")?;
    reference(slice.profiles.iter().any(|p| p.id == r.profile_id))?;
    state.profiles.revisions.push(r.clone());
    Ok(())
}

fn insert_secret(state: &mut State, s: &StoredSecret) -> Result<(), Error> {
    unique(state.profiles.secrets.iter().any(|x| key_of(x) == key_of(s)), Record::Secret, "revision")?;
    reference(state.apps.exists(s.app_id))?;
    state.profiles.secrets.push(s.clone());
    Ok(())
}

fn rewrap_secrets(state: &mut State, from_key_id: &str, secrets: &[StoredSecret]) -> Result<(), Error> {
    for s in secrets {
        let row =
            state.profiles.secrets.iter_mut().find(|x| key_of(x) == key_of(s)).ok_or(Error::NotFound("secret"))?;
        if row.sealed.key_id != from_key_id {
            return Err(ConflictReason::KeyIdMismatch.into());
        }
        row.sealed = s.sealed.clone();
    }
    Ok(())
}

/// `ReplaceEnvironments`: the app's environments missing from the list go
/// (refused while deployments, freeze windows or drift records refer to
/// one), every listed one is written under its id; names may move between
/// environments in one replacement.
fn replace_environments(state: &mut State, app_id: AppId, envs: &[Environment]) -> Result<(), Error> {
    // A removed environment must have no history (the SQL stores' foreign keys).
    let removed = |e: &Environment| e.app_id == app_id && !envs.iter().any(|n| n.id == e.id);
    let has_history = |id| state.deployments.refer_to(id) || state.freezes.refer_to(id) || state.drift.refer_to(id);
    reference(!state.profiles.environments.iter().any(|e| removed(e) && has_history(e.id)))?;
    let slice = &mut state.profiles;
    slice.environments.retain(|e| e.app_id != app_id || envs.iter().any(|n| n.id == e.id));
    let mut written: Vec<Environment> = Vec::new();
    for e in envs {
        if e.app_id != app_id {
            return Err(Error::invalid("environments", "wrong_app", "an environment of another app was listed"));
        }
        if slice.environments.iter().any(|x| x.id == e.id && x.app_id != app_id) {
            return Err(ConflictReason::EnvironmentOfAnotherApp.into());
        }
        unique(written.iter().any(|x| x.name == e.name), Record::Environment, "name")?;
        let profile = e.runtime_profile_id.is_none_or(|p| slice.profiles.iter().any(|x| x.id == p));
        reference(state.apps.exists(app_id) && profile)?;
        written.push(e.clone());
    }
    slice.environments.retain(|e| e.app_id != app_id);
    slice.environments.extend(written);
    Ok(())
}

fn put_changeset_overrides(
    state: &mut State,
    changeset_id: ChangesetId,
    overrides: &[ProfileOverride],
) -> Result<(), Error> {
    let slice = &mut state.profiles;
    slice.overrides.retain(|(cs, _)| *cs != changeset_id);
    if !overrides.is_empty() {
        reference(state.changesets.exists(changeset_id))?;
        slice.overrides.push((changeset_id, overrides.to_vec()));
    }
    Ok(())
}

/// Applies one profile mutation.
pub(crate) fn apply(state: &mut State, mutation: &ProfileMutation) -> Result<(), Error> {
    match mutation {
        ProfileMutation::InsertRuntimeProfile(p) => insert_runtime_profile(state, p),
        ProfileMutation::UpdateRuntimeProfile(p) => update_runtime_profile(state, p),
        ProfileMutation::InsertProfileRevision(r) => insert_profile_revision(state, r),
        ProfileMutation::InsertSecret(s) => insert_secret(state, s),
        ProfileMutation::DeleteChangesetSecrets { changeset_id } => {
            state.profiles.secrets.retain(|s| s.owner != SecretOwner::Changeset(*changeset_id));
            Ok(())
        }
        ProfileMutation::RewrapSecrets { from_key_id, secrets } => rewrap_secrets(state, from_key_id, secrets),
        ProfileMutation::SetSecretsKeyId { expected, key_id } => {
            if state.profiles.secrets_key_id != *expected {
                return Err(ConflictReason::StaleKeyId.into());
            }
            state.profiles.secrets_key_id = Some(key_id.clone());
            Ok(())
        }
        ProfileMutation::ReplaceEnvironments { app_id, environments } => {
            replace_environments(state, *app_id, environments)
        }
        ProfileMutation::PutChangesetOverrides { changeset_id, overrides } => {
            put_changeset_overrides(state, *changeset_id, overrides)
        }
    }
}
