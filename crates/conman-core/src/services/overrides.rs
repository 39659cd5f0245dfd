//! Changeset profile overrides (SPEC §1 "Profile override", §2.3): typed
//! env var and secret deltas a changeset carries, targeting an environment
//! or a profile.
//!
//! Invariants:
//! - only the author edits them, and only while the changeset is `draft`
//!   (`PUT .../profile-overrides`, or the body of the submit itself, which
//!   replaces them in the submit's unit): a submitted revision includes
//!   exactly the overrides it was submitted with;
//! - every override is validated against its target's profile (names,
//!   types — an override never changes a key's type) and the set against
//!   the app's environments (one override per target);
//! - secret values are sealed (bound to the changeset and the key name) and
//!   replaced together with the list in one unit; the stored list and the
//!   audit entry carry secret names only.

use super::secrets_key::binding_of;
use super::{Actor, AuditWhat, Conman};
use crate::domain::app::{App, ProfileApprovalPolicy};
use crate::domain::changeset::{Changeset, ChangesetState};
use crate::domain::runtime_profile::overrides::{
    validate_override_set, OverrideTarget, ProfileOverride, ProfileOverrideInput,
};
use crate::error::Error;
use crate::ids::{AppId, ChangesetId};
use crate::ports::store::{ProfileMutation, SecretOwner, StoredSecret, UnitOfWork};
use crate::rbac::Capability;

/// Most overrides one changeset carries.
pub const MAX_OVERRIDES: usize = 20;

impl Conman {
    /// A changeset's profile overrides, in order.
    pub async fn changeset_profile_overrides(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
    ) -> Result<Vec<ProfileOverride>, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::Read, None)?;
        self.store().changeset_overrides(cs.id).await
    }

    /// Replaces a draft changeset's profile overrides (its author).
    pub async fn put_changeset_profile_overrides(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
        input: Vec<ProfileOverrideInput>,
    ) -> Result<Vec<ProfileOverride>, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::EditChangeset, Some(cs.author_id))?;
        if cs.state != ChangesetState::Draft {
            return Err(Error::InvalidTransition {
                entity: "changeset",
                from: cs.state.as_str().into(),
                event: "edit_profile_overrides".into(),
            });
        }
        let (unit, overrides) = self.replacing_overrides(UnitOfWork::new(), actor, &cs, &input).await?;
        self.store().commit(unit).await?;
        Ok(overrides)
    }

    /// Validates `input` as `cs`'s new overrides and adds to `unit` what
    /// replaces the stored ones (sealed secrets, the list, the audit entry),
    /// so a caller commits the replacement together with its own change
    /// (a submit freezes them in the same unit). The caller has checked
    /// that `cs` is a draft and `actor` its author.
    pub(super) async fn replacing_overrides(
        &self,
        unit: UnitOfWork,
        actor: &Actor,
        cs: &Changeset,
        input: &[ProfileOverrideInput],
    ) -> Result<(UnitOfWork, Vec<ProfileOverride>), Error> {
        let app_id = cs.app_id;
        if input.len() > MAX_OVERRIDES {
            return Err(Error::invalid(
                "profile_overrides",
                "too_many",
                format!("a changeset carries at most {MAX_OVERRIDES} overrides"),
            ));
        }
        let overrides = input.iter().map(ProfileOverride::from_input).collect::<Result<Vec<_>, _>>()?;
        let envs = self.store().environments(app_id).await?;
        validate_override_set(&overrides, &envs)?;
        for o in &overrides {
            let profile_id = match (&o.target, o.target.resolve(&envs)) {
                (_, Some(env)) => env.runtime_profile_id,
                (OverrideTarget::ProfileId(id), None) => Some(*id),
                (_, None) => {
                    return Err(Error::invalid(
                        "target",
                        "unknown_target",
                        "an override targets an environment this app does not have",
                    ))
                }
            };
            if let Some(profile_id) = profile_id {
                let profile = self.store().runtime_profile(app_id, profile_id).await?.ok_or_else(|| {
                    Error::invalid("target", "unknown_profile", "the override's target profile does not exist")
                })?;
                o.check_against(&profile)?;
            }
        }
        let cipher = self.cipher()?;
        let before = self.store().changeset_overrides(cs.id).await?;
        let now = self.now();
        let mut mutations = vec![ProfileMutation::DeleteChangesetSecrets { changeset_id: cs.id }];
        for o in input {
            for (name, value) in &o.secrets {
                let stored = StoredSecret {
                    app_id,
                    owner: SecretOwner::Changeset(cs.id),
                    name: name.clone(),
                    revision: 1,
                    sealed: cipher
                        .seal(value.expose().as_bytes(), &binding_of(app_id, SecretOwner::Changeset(cs.id), name))?,
                    created_at: now,
                };
                mutations.push(ProfileMutation::InsertSecret(stored));
            }
        }
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("changeset", cs.id, "changeset.profile_overrides_set").before(&before).after(&overrides),
        );
        mutations.push(ProfileMutation::PutChangesetOverrides { changeset_id: cs.id, overrides: overrides.clone() });
        Ok((unit.record_all(mutations, audit), overrides))
    }

    /// Approvals `cs` needs: the app's `required_approvals`, raised to 2
    /// under `stricter_two_approvals` when one of its overrides touches the
    /// canonical environment's profile.
    pub(super) async fn required_approvals(&self, app: &App, cs: &Changeset) -> Result<u32, Error> {
        let base = app.settings.required_approvals;
        if app.settings.profile_approval_policy != ProfileApprovalPolicy::StricterTwoApprovals {
            return Ok(base);
        }
        let overrides = self.store().changeset_overrides(cs.id).await?;
        if overrides.is_empty() {
            return Ok(base);
        }
        let envs = self.store().environments(app.id).await?;
        let touches = overrides.iter().any(|o| o.targets_canonical(&envs));
        Ok(if touches { base.max(2) } else { base })
    }
}
