//! The `deploy_release` job (SPEC §2.5, §6): runs the deploy gate, then the
//! environment's deploy command, both with the target environment's
//! effective profile, then completes the deployment.
//!
//! Invariants:
//! - the environment ref records the last *successful* deployment: it moves
//!   (compare-and-swap from what it held) in the same recorded intent as the
//!   deployment's `running → succeeded`, the release's state, the drift
//!   baseline and the migration record, so a SIGKILL at any step leaves
//!   either none of them or, once the intent is settled (at restart or by
//!   the next operation), all of them (decision 0018);
//! - the completion is the one place a job handler commits by itself: a ref
//!   move needs an intent, which a job's effects cannot carry. A re-run of
//!   the job (a worker died after completing) finds the deployment finished
//!   and does nothing;
//! - a failed or canceled job ends a still-running deployment `failed` /
//!   `canceled` in the job's own finishing unit (`settle`); the environment
//!   ref does not move.

use async_trait::async_trait;
use serde_json::json;

use super::deployments::DeployPayload;
use super::gates::{gate_command, GateKind, GatePayload};
use super::jobs::{JobHandler, JobOutcome};
use super::{AuditWhat, Conman};
use crate::domain::app::App;
use crate::domain::deployment::{Deployment, DeploymentKind, DeploymentOutcome, DeploymentState};
use crate::domain::drift::{migrations_fingerprint, EnvironmentValidation, MigrationExecution, ValidationSource};
use crate::domain::environment::Environment;
use crate::domain::job::{Job, JobState, LogStream};
use crate::domain::release::{ReleaseEvent, ReleaseState};
use crate::domain::StateMachine as _;
use crate::error::{Error, ErrorCode};
use crate::ports::git::{RefMove, Sha};
use crate::ports::runner::LogSink;
use crate::ports::store::{collect_pages, DeploymentMutation, DriftMutation, ReleaseMutation, UnitOfWork};

/// The `deploy_release` job.
pub(super) struct DeployHandler;

/// The deploy command in force for `env` of `app`: the app's own for that
/// environment when the operator allows per-app commands, else the
/// server's.
fn deploy_command(conman: &Conman, app: &App, env: &Environment) -> Option<String> {
    let own = app.settings.deploy_commands.get(&env.name).filter(|_| conman.config.allow_app_gate_commands);
    own.cloned().or_else(|| conman.config.gates.deploy_command.clone()).filter(|c| !c.trim().is_empty())
}

#[async_trait]
impl JobHandler for DeployHandler {
    async fn run(&self, conman: &Conman, job: &Job, log: &dyn LogSink) -> JobOutcome {
        let failed = |error: String| JobOutcome::Failed { error, retryable: false, result: None };
        let transient = |e: Error| JobOutcome::Failed { error: e.to_string(), retryable: true, result: None };
        let Ok(payload) = serde_json::from_value::<DeployPayload>(job.payload.clone()) else {
            return failed("invalid deploy payload".into());
        };
        let deployment = match conman.store().deployment(job.app_id, payload.deployment_id).await {
            Ok(Some(d)) => d,
            Ok(None) => return failed("the deployment no longer exists".into()),
            Err(e) => return transient(e),
        };
        if deployment.state != DeploymentState::Running || deployment.job_id != Some(job.id) {
            log.line(
                LogStream::System,
                format!("deployment {} is {}: nothing to do", deployment.id, deployment.state.as_str()),
            )
            .await;
            return JobOutcome::Succeeded { result: json!({ "stale": true }), effects: UnitOfWork::new() };
        }
        let (app, env) = match (
            conman.store().app(job.app_id).await,
            conman.environment(job.app_id, deployment.environment_id).await,
        ) {
            (Ok(Some(app)), Ok(env)) => (app, env),
            (Ok(None), _) => return failed("the app no longer exists".into()),
            (Err(e), _) | (_, Err(e)) => return transient(e),
        };
        let gate = GatePayload {
            gate: GateKind::Deploy,
            commit: deployment.commit.clone(),
            changeset_id: None,
            release_id: Some(deployment.release_id.to_string()),
            environment: Some(env.name.clone()),
        };
        log.line(
            LogStream::System,
            format!("deploying release {} ({}) to {}", deployment.release_id, deployment.commit, env.name),
        )
        .await;
        let (command, timeout) = gate_command(conman, &app, GateKind::Deploy);
        let outcome = conman.run_gate_process(job, &app, &gate, command, timeout, "gate", log).await;
        if matches!(outcome, JobOutcome::Failed { .. }) {
            return outcome;
        }
        let command = deploy_command(conman, &app, &env);
        let outcome = conman.run_gate_process(job, &app, &gate, command, timeout, "deploy", log).await;
        if matches!(outcome, JobOutcome::Failed { .. }) {
            return outcome;
        }
        let mut tries = 0;
        loop {
            match conman.complete_deployment(&app, &env, deployment.id, job).await {
                Ok(done) => {
                    log.line(LogStream::System, format!("{} now runs {}", env.name, done.commit)).await;
                    let result = json!({ "deployed": done.commit, "environment": env.name });
                    return JobOutcome::Succeeded { result, effects: UnitOfWork::new() };
                }
                Err(e) if (e.is_stale_version() || super::intents::is_retryable(&e)) && tries < 5 => tries += 1,
                Err(e) => {
                    log.line(LogStream::System, format!("the deployment could not be completed: {e}")).await;
                    return JobOutcome::Failed {
                        error: e.to_string(),
                        retryable: e.code() == ErrorCode::Internal,
                        result: None,
                    };
                }
            }
        }
    }

    /// A deployment still running when its job ends badly ends with it.
    async fn settle(
        &self,
        conman: &Conman,
        job: &Job,
        state: JobState,
        error: Option<&str>,
    ) -> Result<UnitOfWork, Error> {
        let Ok(payload) = serde_json::from_value::<DeployPayload>(job.payload.clone()) else {
            return Ok(UnitOfWork::new());
        };
        let Some(d) = conman.store().deployment(job.app_id, payload.deployment_id).await? else {
            return Ok(UnitOfWork::new());
        };
        if d.state != DeploymentState::Running || d.job_id != Some(job.id) || state == JobState::Succeeded {
            return Ok(UnitOfWork::new());
        }
        let (outcome, action) = match state {
            JobState::Canceled => {
                (DeploymentOutcome::Canceled { reason: Some("its job was canceled".into()) }, "deployment.canceled")
            }
            _ => (
                DeploymentOutcome::Failed { reason: error.unwrap_or("the deploy job failed").to_owned() },
                "deployment.failed",
            ),
        };
        let after = d.finish(outcome, conman.now())?;
        let audit = conman.audit_entry(
            None,
            Some(job.app_id),
            AuditWhat::new("deployment", d.id, action).before(&d).after(&after).sha(&d.commit),
        );
        Ok(UnitOfWork::new().record(DeploymentMutation::UpdateDeployment(after), audit))
    }
}

impl Conman {
    /// Completes a running deployment (see the module doc): one intent
    /// moving the environment ref, with the deployment, release, drift
    /// baseline and migration record changes.
    async fn complete_deployment(
        &self,
        app: &App,
        env: &Environment,
        id: crate::ids::DeploymentId,
        job: &Job,
    ) -> Result<Deployment, Error> {
        let _turn = self.intent_turn(app.id).await;
        let d = self.store().deployment(app.id, id).await?.ok_or(Error::NotFound("deployment"))?;
        if d.state != DeploymentState::Running {
            return Ok(d);
        }
        let now = self.now();
        let (profile_state, profile) = self.profile_state(env).await?;
        let finished =
            Deployment { profile_revision: profile_state.revision, ..d.finish(DeploymentOutcome::Succeeded, now)? };
        let audit = self.audit_entry(
            None,
            Some(app.id),
            AuditWhat::new("deployment", d.id, "deployment.succeeded").before(&d).after(&finished).sha(&d.commit),
        );
        let mut unit = UnitOfWork::new().record(DeploymentMutation::UpdateDeployment(finished.clone()), audit);

        // The release follows its deployments.
        let envs = self.store().environments(app.id).await?;
        let mut current = self.current_releases(app.id, &envs).await?;
        current.insert(env.id, d.release_id);
        let release = self.store().release(app.id, d.release_id).await?.ok_or(Error::NotFound("release"))?;
        let everywhere = envs.iter().all(|e| current.get(&e.id) == Some(&release.id));
        let mut state = release.state;
        if state == ReleaseState::Published {
            state = state.apply(ReleaseEvent::DeployedSome)?;
        }
        if everywhere && state == ReleaseState::DeployedPartial {
            state = state.apply(ReleaseEvent::DeployedAll)?;
        }
        if state != release.state {
            let after = crate::domain::release::Release {
                state,
                updated_at: now,
                version: release.version + 1,
                ..release.clone()
            };
            let what = AuditWhat::new("release", release.id, "release.deployed").before(&release).after(&after);
            unit = unit.record(ReleaseMutation::UpdateRelease(after), self.audit_entry(None, Some(app.id), what));
        }
        if let (DeploymentKind::RedeployPrior | DeploymentKind::RevertAndRelease, Some(rolled)) =
            (d.kind, d.rolled_back_release_id)
        {
            if let Some(back) = self.store().release(app.id, rolled).await? {
                if let Ok(state) = back.state.apply(ReleaseEvent::RollBack) {
                    let after = crate::domain::release::Release {
                        state,
                        updated_at: now,
                        version: back.version + 1,
                        ..back.clone()
                    };
                    let what = AuditWhat::new("release", back.id, "release.rolled_back").before(&back).after(
                        serde_json::json!({ "state": "rolled_back", "environment": env.name, "by_deployment": d.id }),
                    );
                    unit =
                        unit.record(ReleaseMutation::UpdateRelease(after), self.audit_entry(None, Some(app.id), what));
                }
            }
        }

        // Migration record and drift baseline.
        let mut records = collect_pages(|page| self.store().migration_executions(app.id, env.id, page)).await?;
        if let Some(profile) =
            profile.as_ref().filter(|p| !p.migrations.paths.is_empty() || p.migrations.command.is_some())
        {
            let record = MigrationExecution {
                id: self.new_id(),
                app_id: app.id,
                environment_id: env.id,
                release_id: d.release_id,
                deployment_id: d.id,
                paths: profile.migrations.paths.clone(),
                command: profile.migrations.command.clone(),
                applied_state: profile.migrations.applied_state.clone(),
                profile_revision: profile.revision,
                recorded_at: now,
            };
            let what = AuditWhat::new("environment", env.id, "migrations.recorded").after(&record).sha(&d.commit);
            unit = unit.record(
                DriftMutation::InsertMigrationExecution(record.clone()),
                self.audit_entry(None, Some(app.id), what),
            );
            records.push(record);
        }
        let validation = EnvironmentValidation {
            id: self.new_id(),
            app_id: app.id,
            environment_id: env.id,
            profile_id: profile_state.profile_id,
            profile_revision: profile_state.revision,
            migrations_fingerprint: migrations_fingerprint(&records),
            source: ValidationSource::Deployment { deployment_id: d.id },
            at: now,
        };
        let what = AuditWhat::new("environment", env.id, "environment.validated").after(&validation).sha(&d.commit);
        unit = unit.record(DriftMutation::InsertValidation(validation), self.audit_entry(None, Some(app.id), what));

        let held = self.git().resolve_ref(app.id, &env.git_ref()).await?;
        let target = Sha(d.commit.clone());
        let moves = if held.as_ref() == Some(&target) {
            Vec::new()
        } else {
            vec![RefMove { name: env.git_ref(), from: held, to: Some(target) }]
        };
        let _ = job;
        let intent = self.intent(app.id, "deployment.succeeded", ("deployment", d.id), moves);
        self.commit_with_intent(unit, intent).await?;
        Ok(finished)
    }
}
