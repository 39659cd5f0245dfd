//! The variables a gate process runs with, resolved from runtime profiles
//! (SPEC §2.6 precedence, §6.3 scopes).
//!
//! Invariants:
//! - resolution goes through `effective_variables` / `effective_secrets`,
//!   the one precedence function: app defaults (the canonical environment's
//!   profile) < the target environment's profile < the overrides that apply
//!   to the target;
//! - a submit gate's target is the canonical environment: it runs with a
//!   temp profile derived from that base plus the changeset's overrides that
//!   apply to it; a release gate's target is each environment in turn, with
//!   the overrides of the release's changesets that apply to it;
//! - secret values are decrypted only here (into zeroizing buffers, copied
//!   once into the process environment map) and only their *names* are ever
//!   reported (job log, errors, `Debug`);
//! - with [`SecretValues::Placeholder`] nothing is decrypted: every secret
//!   name is present with [`GATE_SECRET_PLACEHOLDER`] (content nobody has
//!   reviewed never sees a real value).

use std::collections::BTreeMap;

use super::gates::GatePayload;
use super::secrets_key::secret_binding;
use super::Conman;
use crate::domain::app::GATE_SECRET_PLACEHOLDER;
use crate::domain::environment::Environment;
use crate::domain::log_mask::SecretMask;
use crate::domain::runtime_profile::precedence::{effective_secrets, effective_variables, Layer};
use crate::domain::runtime_profile::{EnvValue, EnvVars, Secrets};
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, ReleaseId};
use crate::ports::store::SecretOwner;

/// Which secret values a process gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SecretValues {
    /// The decrypted values.
    Real,
    /// [`GATE_SECRET_PLACEHOLDER`] for every secret.
    Placeholder,
}

/// A resolved environment for a process.
#[derive(Default)]
pub(super) struct ResolvedEnv {
    /// Variable and secret values, by name.
    pub values: BTreeMap<String, String>,
    /// Names of the plain variables.
    pub var_names: Vec<String>,
    /// Names of the secrets.
    pub secret_names: Vec<String>,
    /// Whether the secrets hold placeholders.
    pub placeholders: bool,
}

impl ResolvedEnv {
    /// The mask of the real secret values handed to the process (empty
    /// with placeholders).
    pub(super) fn secret_mask(&self) -> Result<SecretMask, Error> {
        if self.placeholders {
            return Ok(SecretMask::none());
        }
        SecretMask::new(self.secret_names.iter().filter_map(|name| self.values.get(name)))
    }
}

impl std::fmt::Debug for ResolvedEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedEnv").field("vars", &self.var_names).field("secrets", &self.secret_names).finish()
    }
}

/// The text form of a typed value in a process environment.
fn env_text(value: &EnvValue) -> String {
    match value {
        EnvValue::String(s) => s.clone(),
        EnvValue::Number(n) => n.to_string(),
        EnvValue::Boolean(b) => b.to_string(),
        EnvValue::Json(v) => v.to_string(),
    }
}

impl Conman {
    /// The environment of a submit gate of `changeset` (see the module doc).
    /// An app without environments (or whose canonical environment has no
    /// profile) resolves to the changeset's applicable overrides alone.
    pub(super) async fn submit_gate_env(
        &self,
        app_id: AppId,
        changeset: ChangesetId,
        secret_values: SecretValues,
    ) -> Result<ResolvedEnv, Error> {
        let envs = self.store().environments(app_id).await?;
        let Some(canonical) = envs.iter().find(|e| e.is_canonical) else { return Ok(ResolvedEnv::default()) };
        self.gate_env_for(app_id, &envs, canonical, &[changeset], secret_values).await
    }

    /// The environment of a release gate run for `payload`'s environment:
    /// the app defaults, that environment's own profile and the overrides
    /// of the release's included changesets (in release order) that apply
    /// to it. `None` for a run without an environment (an app without
    /// environments, or a run on a bare commit).
    pub(super) async fn release_gate_env(
        &self,
        app_id: AppId,
        payload: &GatePayload,
        secret_values: SecretValues,
    ) -> Result<Option<ResolvedEnv>, Error> {
        let Some(name) = &payload.environment else { return Ok(None) };
        let envs = self.store().environments(app_id).await?;
        let target = envs
            .iter()
            .find(|e| &e.name == name)
            .ok_or_else(|| Error::invalid("environment", "unknown", format!("no environment {name} in this app")))?;
        let changesets: Vec<ChangesetId> = match payload.release_id.as_deref().map(str::parse::<ReleaseId>) {
            Some(Ok(id)) => match self.store().release(app_id, id).await? {
                Some(release) => release.included().map(|i| i.changeset_id).collect(),
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        self.gate_env_for(app_id, &envs, target, &changesets, secret_values).await.map(Some)
    }

    /// Resolves the variables and secrets of `target` (see the module doc):
    /// the canonical environment's profile as app defaults, `target`'s
    /// profile when it is not the canonical one, then the overrides of
    /// `changesets`, in order, that apply to `target`.
    async fn gate_env_for(
        &self,
        app_id: AppId,
        envs: &[Environment],
        target: &Environment,
        changesets: &[ChangesetId],
        secret_values: SecretValues,
    ) -> Result<ResolvedEnv, Error> {
        let profile_of = |env: Option<&Environment>| env.and_then(|e| e.runtime_profile_id);
        let canonical = envs.iter().find(|e| e.is_canonical);
        let base = match profile_of(canonical) {
            Some(id) => self.store().runtime_profile(app_id, id).await?,
            None => None,
        };
        let own = match profile_of(Some(target)) {
            Some(id) if !target.is_canonical => self.store().runtime_profile(app_id, id).await?,
            _ => None,
        };
        let mut owners = Vec::new();
        let mut overrides = Vec::new();
        for cs in changesets {
            for o in self.store().changeset_overrides(*cs).await? {
                if o.applies_to(target) {
                    owners.push(*cs);
                    overrides.push(o);
                }
            }
        }
        let (no_vars, no_secrets) = (EnvVars::new(), Secrets::new());
        let (base_vars, base_secrets) = match &base {
            Some(p) => (&p.env_vars, &p.secrets),
            None => (&no_vars, &no_secrets),
        };
        let vars = effective_variables(base_vars, own.as_ref().map(|p| &p.env_vars), &overrides);
        let secrets = effective_secrets(base_secrets, own.as_ref().map(|p| &p.secrets), &overrides);
        let mut resolved = ResolvedEnv::default();
        for (name, var) in &vars {
            resolved.values.insert(name.clone(), env_text(&var.value));
            resolved.var_names.push(name.clone());
        }
        if secret_values == SecretValues::Placeholder {
            for name in secrets.keys() {
                resolved.values.insert(name.clone(), GATE_SECRET_PLACEHOLDER.to_owned());
                resolved.secret_names.push(name.clone());
            }
            resolved.placeholders = true;
            return Ok(resolved);
        }
        let mut base_values = match &base {
            Some(profile) => self.open_profile_secrets(profile).await?,
            None => BTreeMap::new(),
        };
        let mut own_values = match &own {
            Some(profile) => self.open_profile_secrets(profile).await?,
            None => BTreeMap::new(),
        };
        for (name, layer) in &secrets {
            let missing = || Error::internal(format!("the sealed value of secret {name:?} is missing"));
            let value = match layer {
                Layer::AppDefaults => base_values.remove(name).ok_or_else(missing)?,
                Layer::Environment => own_values.remove(name).ok_or_else(missing)?,
                Layer::Override { index } => {
                    let owner = SecretOwner::Changeset(owners[*index]);
                    let stored =
                        self.store().secret(owner, name, 1).await?.ok_or_else(|| {
                            Error::internal(format!("the sealed override secret {name:?} is missing"))
                        })?;
                    self.cipher()?.open(&stored.sealed, &secret_binding(&stored))?
                }
            };
            resolved.values.insert(name.clone(), String::from_utf8_lossy(value.expose()).into_owned());
            resolved.secret_names.push(name.clone());
        }
        Ok(resolved)
    }
}
