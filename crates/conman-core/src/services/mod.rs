//! Use-case services. Every use case reads the same way:
//! **authorize → load → domain rule/transition → persist with audit in one
//! unit of work → idempotent side effects**. [`Conman`] is the facade the
//! binaries call; its methods are split by aggregate across this module's
//! files (`auth.rs`, `apps.rs`, `workspaces.rs`, ...), so a reader finds a
//! feature in the same place in every crate.
//!
//! Invariant: no method of [`Conman`] changes anything before the actor's
//! permission has been checked, and every change is written together with
//! its audit entry.

mod actor;
mod apps;
mod audit_log;
mod auth;
mod baseline;
mod changesets;
mod comments;
mod config;
mod deploy_job;
mod deployments;
mod diffs;
mod drift_check;
mod drift_fix;
mod environments;
mod freezes;
mod gates;
mod intents;
mod invites;
mod job_log_mask;
mod jobs;
mod members;
mod migrate;
mod notifications;
mod overrides;
mod profiles;
mod release_assembly;
mod releases;
mod revalidation;
mod revert;
mod reviews;
mod runtime_env;
mod secrets_key;
mod throttle;
mod tokens;
mod users;
mod workspaces;

use std::collections::HashMap;
use std::sync::Arc;

pub use actor::{Actor, AppScope};
pub use apps::{MemberApp, NewApp};
pub use audit_log::{AuditVerification, AuditView};
pub use auth::{LoginOutcome, MeView, MembershipView};
pub use changesets::{
    ChangesetPatch, ChangesetView, NewChangeset, SubmitOutcome, MAX_DEPENDENCIES, MAX_DESCRIPTION_BYTES,
};
pub use comments::NewComment;
pub use config::{Config, GateCommands, JobConfig, ThrottleConfig};
pub use deployments::{DeployPayload, DeployRequest, DeploymentStarted, DriftReport, EnvironmentStatus};
pub use diffs::{ChangesetDiff, DiffMode, DiffRange, DiffStats, RawFileDiff};
pub use drift_check::DriftCheckPayload;
pub use drift_fix::{drift_fix_path, DriftFixRecord};
pub use environments::EnvironmentInput;
pub use gates::{GateKind, GatePayload, GATE_PATH};
pub use intents::{ReconcileReport, Settlement};
pub use invites::IssuedInvite;
pub use jobs::{AttemptEnd, JobHandler, JobLogRead, JobOutcome, LeaseStatus, NewJob, WORKER_ID_MAX_BYTES};
pub use migrate::{copy_store, CopyReport};
pub use overrides::MAX_OVERRIDES;
pub use profiles::{MaskedSecret, ProfileView};
pub use releases::{AssemblePayload, RevalidatePayload, MAX_RELEASE_TITLE_CHARS};
pub use reviews::{ReviewInput, ReviewOutcome};
pub use secrets_key::{secret_binding, RotationReport};
pub use tokens::{IssuedToken, MAX_TOKEN_DAYS};
pub use workspaces::{batch_op_error, ChangeOp, CheckpointOutcome, WriteOutcome};

use crate::domain::audit::AuditEntry;
use crate::domain::job::JobType;
use crate::ids::{AppId, AuditEventId};
use crate::ports::runner::{CommandRunner, JobWakeup, NoWakeup};
use crate::ports::{
    Clock, Compute, GitPort, IdGenerator, InlineCompute, PasswordHasher, SecretCipher, Store, TokenGenerator,
};
use throttle::Throttle;

/// The adapters a [`Conman`] runs on.
#[derive(Clone)]
pub struct Ports {
    /// Metadata store.
    pub store: Arc<dyn Store>,
    /// Git repositories.
    pub git: Arc<dyn GitPort>,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Id generator.
    pub ids: Arc<dyn IdGenerator>,
    /// Password hasher.
    pub passwords: Arc<dyn PasswordHasher>,
    /// Token generator.
    pub tokens: Arc<dyn TokenGenerator>,
}

/// The use cases of Conman over a set of ports.
pub struct Conman {
    ports: Ports,
    config: Config,
    /// Failed logins and invite-password proofs.
    throttle: Throttle,
    /// Password-reset requests (a separate namespace: see `throttle.rs`).
    reset_throttle: Throttle,
    /// Job handlers by type.
    handlers: HashMap<JobType, Arc<dyn jobs::JobHandler>>,
    /// Wakes workers on enqueue.
    wakeup: Arc<dyn JobWakeup>,
    /// Runs gate commands (`None`: gate jobs with a command fail clearly).
    commands: Option<Arc<dyn CommandRunner>>,
    /// Seals and opens secrets (`None`: secret operations fail clearly);
    /// swapped by a master-key rotation.
    secrets: std::sync::RwLock<Option<Arc<dyn SecretCipher>>>,
    /// Runs CPU-heavy work (parsing and diffing user content) off the
    /// async threads; inline unless the composition plugs in a pool.
    compute: Arc<dyn Compute>,
    /// Per-app turns at moving refs (decision 0008).
    intent_turns: intents::IntentTurns,
}

impl Conman {
    /// Composes the services.
    pub fn new(ports: Ports, config: Config) -> Self {
        let throttle = Throttle::new(config.throttle);
        let reset_throttle = Throttle::new(config.throttle);
        let mut handlers: HashMap<JobType, Arc<dyn jobs::JobHandler>> = HashMap::new();
        for gate in [JobType::GateSubmit, JobType::GateRelease, JobType::GateDeploy] {
            handlers.insert(gate, Arc::new(gates::GateHandler));
        }
        handlers.insert(JobType::ReleaseAssemble, Arc::new(release_assembly::AssembleHandler));
        handlers.insert(JobType::RevalidateQueued, Arc::new(revalidation::RevalidateHandler));
        handlers.insert(JobType::DeployRelease, Arc::new(deploy_job::DeployHandler));
        handlers.insert(JobType::DriftCheck, Arc::new(drift_check::DriftCheckHandler));
        Conman {
            ports,
            config,
            throttle,
            reset_throttle,
            handlers,
            wakeup: Arc::new(NoWakeup),
            commands: None,
            secrets: std::sync::RwLock::new(None),
            compute: Arc::new(InlineCompute),
            intent_turns: Default::default(),
        }
    }

    /// Plugs in the pool CPU-heavy work runs on (the server's blocking
    /// threads), so a large diff never holds an async worker.
    pub fn with_compute(mut self, compute: Arc<dyn Compute>) -> Self {
        self.compute = compute;
        self
    }

    /// Plugs in the job runtime: the command runner of gates and the
    /// wake-up workers listen to.
    pub fn with_job_runtime(mut self, commands: Arc<dyn CommandRunner>, wakeup: Arc<dyn JobWakeup>) -> Self {
        self.commands = Some(commands);
        self.wakeup = wakeup;
        self
    }

    /// Plugs in the secrets cipher (the master key's envelope encryption).
    pub fn with_secrets(self, cipher: Arc<dyn SecretCipher>) -> Self {
        self.set_cipher(cipher);
        self
    }

    /// Replaces the secrets cipher (after a rotation).
    fn set_cipher(&self, cipher: Arc<dyn SecretCipher>) {
        let mut slot = self.secrets.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(cipher);
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The ports (for adapters that need the same clock or store).
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    fn store(&self) -> &dyn Store {
        self.ports.store.as_ref()
    }

    fn git(&self) -> &dyn GitPort {
        self.ports.git.as_ref()
    }

    fn now(&self) -> crate::domain::Timestamp {
        self.ports.clock.now()
    }

    fn new_id<T: From<uuid::Uuid>>(&self) -> T {
        T::from(self.ports.ids.new_uuid())
    }

    /// Builds an audit entry for a mutation by `actor` (or the system).
    fn audit_entry(&self, actor: Option<&Actor>, app_id: Option<AppId>, what: AuditWhat<'_>) -> AuditEntry {
        AuditEntry {
            id: self.new_id::<AuditEventId>(),
            occurred_at: self.now(),
            actor_id: actor.map(|a| a.user.id),
            app_id,
            entity_type: what.entity_type.to_owned(),
            entity_id: what.entity_id,
            action: what.action.to_owned(),
            before: what.before,
            after: what.after,
            git_sha: what.git_sha,
            request: actor.map(|a| a.request.clone()).unwrap_or_default(),
        }
    }
}

/// What an audit entry describes.
struct AuditWhat<'a> {
    entity_type: &'a str,
    entity_id: String,
    action: &'a str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    git_sha: Option<String>,
}

impl<'a> AuditWhat<'a> {
    fn new(entity_type: &'a str, entity_id: impl ToString, action: &'a str) -> Self {
        AuditWhat { entity_type, entity_id: entity_id.to_string(), action, before: None, after: None, git_sha: None }
    }

    fn before(mut self, v: impl serde::Serialize) -> Self {
        self.before = Some(to_json(v));
        self
    }

    fn after(mut self, v: impl serde::Serialize) -> Self {
        self.after = Some(to_json(v));
        self
    }

    fn sha(mut self, sha: impl ToString) -> Self {
        self.git_sha = Some(sha.to_string());
        self
    }
}

fn to_json(v: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod refusals;
#[cfg(test)]
mod tests;
