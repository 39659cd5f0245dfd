//! The `drift_check` job (SPEC §2.5): re-validates a drifted environment by
//! running the deploy gate on what the environment runs, against its
//! current profile; a pass makes the current profile and migration records
//! the environment's new drift baseline, so deploys are accepted again.
//!
//! Invariants:
//! - only a deployed environment is checked (its drift baseline comes from
//!   a deployment); the gate runs on the commit its ref holds when the job
//!   runs, with the release that put it there;
//! - the new baseline ([`ValidationSource::DriftCheck`]) records the
//!   profile revision and migration fingerprint read *before* the gate ran:
//!   an edit made while the gate runs stays drift;
//! - a failing gate changes nothing: the environment stays drifted;
//! - the new baseline and its audit entry are the job's effects, committed
//!   with its finish exactly once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::gates::{gate_command, GateKind, GatePayload};
use super::jobs::{JobHandler, JobOutcome, NewJob};
use super::{Actor, AuditWhat, Conman};
use crate::domain::drift::{migrations_fingerprint, EnvironmentValidation, ValidationSource};
use crate::domain::job::{Job, JobType, LogStream};
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId};
use crate::ports::runner::LogSink;
use crate::ports::store::{collect_pages, DriftMutation, UnitOfWork};
use crate::rbac::Capability;

/// Serde here is persistence: the stored payload of a `drift_check` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftCheckPayload {
    /// The environment checked.
    pub environment_id: EnvironmentId,
}

/// The `drift_check` job.
pub(super) struct DriftCheckHandler;

impl Conman {
    /// Starts a drift check of a deployed environment. Config managers and
    /// admins.
    pub async fn start_drift_check(
        &self,
        actor: &Actor,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Job, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Deploy, None)?;
        let env = self.environment(app_id, environment_id).await?;
        if self.store().last_succeeded_deployment(app_id, env.id).await?.is_none() {
            return Err(Error::invalid(
                "environment_id",
                "nothing_deployed",
                format!("nothing is deployed on {}: there is nothing to check", env.name),
            ));
        }
        let (_, timeout) = gate_command(self, &scope.app, GateKind::Deploy);
        let job = self.new_job(
            Some(actor),
            NewJob {
                app_id,
                job_type: JobType::DriftCheck,
                entity_type: Some("environment".into()),
                entity_id: Some(env.id.to_string()),
                payload: serde_json::to_value(DriftCheckPayload { environment_id: env.id }).map_err(Error::internal)?,
                timeout_secs: timeout.as_secs() + 60,
            },
        );
        let unit = self.enqueue_in(UnitOfWork::new(), Some(actor), &job);
        self.commit_and_wake(unit).await?;
        Ok(job)
    }
}

#[async_trait]
impl JobHandler for DriftCheckHandler {
    async fn run(&self, conman: &Conman, job: &Job, log: &dyn LogSink) -> JobOutcome {
        let failed = |error: String| JobOutcome::Failed { error, retryable: false, result: None };
        let transient = |e: Error| JobOutcome::Failed { error: e.to_string(), retryable: true, result: None };
        let Ok(payload) = serde_json::from_value::<DriftCheckPayload>(job.payload.clone()) else {
            return failed("invalid drift check payload".into());
        };
        let app = match conman.store().app(job.app_id).await {
            Ok(Some(app)) => app,
            Ok(None) => return failed("the app no longer exists".into()),
            Err(e) => return transient(e),
        };
        let env = match conman.environment(job.app_id, payload.environment_id).await {
            Ok(env) => env,
            Err(e) if e.code() == crate::error::ErrorCode::NotFound => {
                return failed("the environment no longer exists".into())
            }
            Err(e) => return transient(e),
        };
        let running = match conman.store().last_succeeded_deployment(app.id, env.id).await {
            Ok(Some(d)) => d,
            Ok(None) => return failed(format!("nothing is deployed on {}", env.name)),
            Err(e) => return transient(e),
        };
        // What the new baseline will say, read before the gate runs.
        let (state, _) = match conman.profile_state(&env).await {
            Ok(s) => s,
            Err(e) => return transient(e),
        };
        let records = match collect_pages(|page| conman.store().migration_executions(app.id, env.id, page)).await {
            Ok(r) => r,
            Err(e) => return transient(e),
        };
        let commit = match conman.git().resolve_ref(app.id, &env.git_ref()).await {
            Ok(Some(sha)) => sha.to_string(),
            Ok(None) => running.commit.clone(),
            Err(e) => return transient(e),
        };
        log.line(LogStream::System, format!("drift check of {} on {commit}", env.name)).await;
        let gate = GatePayload {
            gate: GateKind::Deploy,
            commit: commit.clone(),
            changeset_id: None,
            release_id: Some(running.release_id.to_string()),
            environment: Some(env.name.clone()),
        };
        let (command, timeout) = gate_command(conman, &app, GateKind::Deploy);
        let outcome = conman.run_gate_process(job, &app, &gate, command, timeout, "gate", log).await;
        if matches!(outcome, JobOutcome::Failed { .. }) {
            log.line(LogStream::System, format!("{} stays drifted", env.name)).await;
            return outcome;
        }
        let validation = EnvironmentValidation {
            id: conman.new_id(),
            app_id: app.id,
            environment_id: env.id,
            profile_id: state.profile_id,
            profile_revision: state.revision,
            migrations_fingerprint: migrations_fingerprint(&records),
            source: ValidationSource::DriftCheck { job_id: job.id },
            at: conman.now(),
        };
        let what = AuditWhat::new("environment", env.id, "environment.validated").after(&validation).sha(&commit);
        let effects = UnitOfWork::new()
            .record(DriftMutation::InsertValidation(validation), conman.audit_entry(None, Some(app.id), what));
        log.line(LogStream::System, format!("{} validated against profile revision {:?}", env.name, state.revision))
            .await;
        JobOutcome::Succeeded { result: json!({ "passed": true, "environment": env.name }), effects }
    }
}
