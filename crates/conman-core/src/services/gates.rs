//! Gates (SPEC §6.3): the handler of `gate_submit`, `gate_release` and
//! `gate_deploy` jobs, and starting a gate run on any commit.
//!
//! The command comes from the app's settings when the operator allows
//! per-app commands and the app sets one, else from the server's
//! configuration; no command means the gate passes. The process gets a
//! clean environment: the SPEC §6.3 variables, a fixed `PATH`, and (added by
//! the runner) `HOME`/`PWD` pointing at its fresh working directory — nothing
//! of the server's own environment. A failing gate is a verdict, not a
//! transient error: it is not retried.
//!
//! Secrets (docs/decisions/0013-job-log-secrets.md): a gate of unreviewed
//! content gets placeholder values unless the app opts in
//! (`unreviewed_gate_secrets: real`); whatever values a gate gets are
//! masked in every line it logs, on top of the app-wide mask every job
//! runs under.
//!
//! Serde here is persistence: a [`GatePayload`] is the job's stored JSON
//! payload (read back by the worker that runs it), not a request body.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::job_log_mask::MaskedLog;
use super::jobs::{JobHandler, JobOutcome, NewJob};
use super::runtime_env::SecretValues;
use super::{Actor, Conman};
use crate::domain::app::{App, UnreviewedGateSecrets};
use crate::domain::job::{Job, JobState, JobType, LogStream};
use crate::domain::log_mask::SecretMask;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, ReleaseId};
use crate::ports::git::Sha;
use crate::ports::runner::{CommandOutcome, CommandSpec, LogSink};
use crate::ports::store::UnitOfWork;
use crate::rbac::Capability;

/// The `PATH` gate commands run with.
pub const GATE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Which gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateKind {
    /// Changeset submit.
    Submit,
    /// Release publish.
    Release,
    /// Deployment.
    Deploy,
}

impl GateKind {
    /// The job type that runs this gate.
    pub fn job_type(self) -> JobType {
        match self {
            GateKind::Submit => JobType::GateSubmit,
            GateKind::Release => JobType::GateRelease,
            GateKind::Deploy => JobType::GateDeploy,
        }
    }

    /// The wire name: `submit`, `release` or `deploy`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::Submit => "submit",
            GateKind::Release => "release",
            GateKind::Deploy => "deploy",
        }
    }
}

/// Input of a gate job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatePayload {
    /// Which gate.
    pub gate: GateKind,
    /// Commit under test.
    pub commit: String,
    /// Changeset under test, if any.
    #[serde(default)]
    pub changeset_id: Option<String>,
    /// Release under test, if any.
    #[serde(default)]
    pub release_id: Option<String>,
    /// Environment the gate runs for, if any.
    #[serde(default)]
    pub environment: Option<String>,
}

/// The command and timeout in force for `gate` of `app`.
pub(super) fn gate_command(conman: &Conman, app: &App, gate: GateKind) -> (Option<String>, Duration) {
    let server = &conman.config.gates;
    let app_gates = &app.settings.gates;
    let allow = conman.config.allow_app_gate_commands;
    let app_cmd = match gate {
        GateKind::Submit => &app_gates.submit,
        GateKind::Release => &app_gates.release,
        GateKind::Deploy => &app_gates.deploy,
    };
    let server_cmd = match gate {
        GateKind::Submit => &server.submit,
        GateKind::Release => &server.release,
        GateKind::Deploy => &server.deploy,
    };
    let command = if allow && app_cmd.is_some() { app_cmd.clone() } else { server_cmd.clone() };
    let timeout = match app_gates.timeout_secs {
        Some(secs) if allow => Duration::from_secs(secs),
        _ => server.timeout,
    };
    (command.filter(|c| !c.trim().is_empty()), timeout)
}

/// The environment of a gate process (SPEC §6.3).
fn gate_env(app_id: AppId, payload: &GatePayload) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PATH".into(), GATE_PATH.into());
    env.insert("CONMAN_APP_ID".into(), app_id.to_string());
    env.insert("CONMAN_COMMIT".into(), payload.commit.clone());
    env.insert("CONMAN_GATE".into(), payload.gate.as_str().into());
    if let Some(id) = &payload.changeset_id {
        env.insert("CONMAN_CHANGESET_ID".into(), id.clone());
    }
    if let Some(id) = &payload.release_id {
        env.insert("CONMAN_RELEASE_ID".into(), id.clone());
    }
    if let Some(name) = &payload.environment {
        env.insert("CONMAN_ENVIRONMENT".into(), name.clone());
    }
    env
}

impl GateKind {
    /// Whether this gate runs content nobody has reviewed yet (a
    /// changeset's submit gate) rather than reviewed content (release,
    /// deploy).
    pub fn runs_unreviewed_content(self) -> bool {
        matches!(self, GateKind::Submit)
    }

    /// The secret values this gate gets in `app`: real for reviewed
    /// content, else as the app's `unreviewed_gate_secrets` says.
    fn secret_values(self, app: &App) -> SecretValues {
        match (self.runs_unreviewed_content(), app.settings.unreviewed_gate_secrets) {
            (false, _) | (true, UnreviewedGateSecrets::Real) => SecretValues::Real,
            (true, UnreviewedGateSecrets::Placeholder) => SecretValues::Placeholder,
        }
    }
}

/// `A B C`, or `(none)`.
fn names_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(" ")
    }
}

fn failed(error: String, result: serde_json::Value) -> JobOutcome {
    JobOutcome::Failed { error, retryable: false, result: Some(result) }
}

/// Runs gate jobs.
pub(super) struct GateHandler;

#[async_trait]
impl JobHandler for GateHandler {
    async fn run(&self, conman: &Conman, job: &Job, log: &dyn LogSink) -> JobOutcome {
        let payload: GatePayload = match serde_json::from_value(job.payload.clone()) {
            Ok(p) => p,
            Err(e) => return failed(format!("invalid gate payload: {e}"), json!({ "passed": false })),
        };
        let app = match conman.store().app(job.app_id).await {
            Ok(Some(app)) => app,
            Ok(None) => return failed("the app no longer exists".into(), json!({ "passed": false })),
            Err(e) => return JobOutcome::Failed { error: e.to_string(), retryable: true, result: None },
        };
        let (command, timeout) = gate_command(conman, &app, payload.gate);
        conman.run_gate_process(job, &app, &payload, command, timeout, "gate", log).await
    }

    /// A submit gate of a changeset moves it on (see
    /// `Conman::settle_submit_gate`), a release gate its release (see
    /// `Conman::settle_release_gate`); a gate run on a bare commit settles
    /// nothing.
    async fn settle(
        &self,
        conman: &Conman,
        job: &Job,
        state: JobState,
        error: Option<&str>,
    ) -> Result<UnitOfWork, Error> {
        let Ok(payload) = serde_json::from_value::<GatePayload>(job.payload.clone()) else {
            return Ok(UnitOfWork::new());
        };
        match (payload.gate, payload.changeset_id.as_deref().map(str::parse::<ChangesetId>)) {
            (GateKind::Submit, Some(Ok(changeset_id))) => {
                conman.settle_submit_gate(job, changeset_id, state, error).await
            }
            (GateKind::Release, _) => match payload.release_id.as_deref().map(str::parse::<ReleaseId>) {
                Some(Ok(release_id)) => conman.settle_release_gate(job, release_id, state, error).await,
                _ => Ok(UnitOfWork::new()),
            },
            _ => Ok(UnitOfWork::new()),
        }
    }
}

impl Conman {
    /// Runs `command` (no command: it passes) for `job` as `payload` says:
    /// in the runner's isolation, on `payload.commit`'s tree, with the
    /// runtime profile the payload's gate and environment resolve to plus
    /// the SPEC §6.3 variables, every secret value masked in the log.
    /// `what` names it in the log and the result: `gate`, or `deploy` for
    /// an environment's deploy command. A failing command is a verdict, not
    /// retried.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_gate_process(
        &self,
        job: &Job,
        app: &App,
        payload: &GatePayload,
        command: Option<String>,
        timeout: Duration,
        what: &str,
        log: &dyn LogSink,
    ) -> JobOutcome {
        let conman = self;
        let payload = payload.clone();
        // "gate" for gates; a deploy command is named by its own word.
        let gate_word = what == "gate";
        let step = if gate_word { format!("{} gate", payload.gate.as_str()) } else { what.to_owned() };
        let Some(command) = command else {
            log.line(LogStream::System, format!("no {step} command is configured: the {what} passes")).await;
            return JobOutcome::Succeeded {
                result: json!({ "passed": true, "skipped": true }),
                effects: UnitOfWork::new(),
            };
        };
        let Some(runner) = conman.commands.clone() else {
            return failed("this process has no command runner".into(), json!({ "passed": false }));
        };
        let mut env = BTreeMap::new();
        let mut mask = SecretMask::none();
        let profile_env = match (payload.gate, payload.changeset_id.as_deref().map(str::parse::<ChangesetId>)) {
            (GateKind::Submit, Some(Ok(changeset_id))) => {
                Some(conman.submit_gate_env(job.app_id, changeset_id, payload.gate.secret_values(app)).await)
            }
            (GateKind::Release | GateKind::Deploy, _) => {
                conman.release_gate_env(job.app_id, &payload, payload.gate.secret_values(app)).await.transpose()
            }
            _ => None,
        };
        if let Some(resolved) = profile_env {
            let values = payload.gate.secret_values(app);
            match resolved {
                Ok(resolved) => {
                    let what = match values {
                        SecretValues::Real => "real values, masked in this log",
                        SecretValues::Placeholder => {
                            "placeholder values: this gate runs unreviewed content \
                             (app setting unreviewed_gate_secrets: placeholder)"
                        }
                    };
                    log.line(
                        LogStream::System,
                        format!(
                            "runtime profile: variables {} ; secrets {} ({what})",
                            names_or_none(&resolved.var_names),
                            names_or_none(&resolved.secret_names)
                        ),
                    )
                    .await;
                    mask = match resolved.secret_mask() {
                        Ok(mask) => mask,
                        Err(e) => return JobOutcome::Failed { error: e.to_string(), retryable: true, result: None },
                    };
                    env.extend(resolved.values);
                }
                Err(e) => {
                    let msg = format!("the gate's runtime profile could not be resolved: {e}");
                    log.line(LogStream::System, msg.clone()).await;
                    return failed(msg, json!({ "passed": false }));
                }
            }
        }
        // Everything from here on is masked with the values this gate got.
        let log = &MaskedLog::new(log, mask);
        // The SPEC §6.3 variables and PATH win over profile variables.
        env.extend(gate_env(job.app_id, &payload));
        let names: Vec<&str> =
            env.keys().map(String::as_str).filter(|n| n.starts_with("CONMAN_") || *n == "PATH").collect();
        log.line(
            LogStream::System,
            format!("{step} on {} (timeout {} s): {command}", payload.commit, timeout.as_secs()),
        )
        .await;
        log.line(LogStream::System, format!("environment: {}", names.join(" "))).await;
        let spec = CommandSpec { app_id: job.app_id, commit: Sha(payload.commit.clone()), command, env, timeout };
        match runner.run(spec, log).await {
            Ok(CommandOutcome::Exited { code: Some(0) }) => {
                log.line(LogStream::System, format!("{what} passed (exit 0)")).await;
                JobOutcome::Succeeded { result: json!({ "passed": true, "exit_code": 0 }), effects: UnitOfWork::new() }
            }
            Ok(CommandOutcome::Exited { code }) => {
                let how = code.map_or("was killed by a signal".to_owned(), |c| format!("exited with code {c}"));
                log.line(LogStream::System, format!("{what} failed: the command {how}")).await;
                failed(format!("{what} command {how}"), json!({ "passed": false, "exit_code": code }))
            }
            Ok(CommandOutcome::TimedOut) => {
                let msg =
                    format!("{what} command timed out after {} s; its process group was killed", timeout.as_secs());
                log.line(LogStream::System, msg.clone()).await;
                failed(msg, json!({ "passed": false, "timed_out": true }))
            }
            Ok(CommandOutcome::FailedToStart { reason }) => {
                log.line(LogStream::System, format!("{what} could not start: {reason}")).await;
                failed(format!("{what} command could not start: {reason}"), json!({ "passed": false }))
            }
            Err(e) => JobOutcome::Failed { error: e.to_string(), retryable: true, result: None },
        }
    }
}

impl Conman {
    /// Starts a gate run on a commit of the app (its integration head when
    /// `commit` is `None`). Config managers and admins.
    pub async fn start_gate_run(
        &self,
        actor: &Actor,
        app_id: AppId,
        gate: GateKind,
        commit: Option<&str>,
    ) -> Result<Job, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::RunGate, None)?;
        let commit = match commit {
            Some(c) => {
                if c.len() != 40 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Error::invalid("commit", "invalid_sha", "commit must be a full 40-hex sha"));
                }
                let sha = Sha(c.to_ascii_lowercase());
                self.git().read(app_id, &sha, None).await?.ok_or(Error::NotFound("commit"))?;
                sha
            }
            None => self.integration_head(&scope.app).await?,
        };
        let (_, timeout) = gate_command(self, &scope.app, gate);
        let payload =
            GatePayload { gate, commit: commit.to_string(), changeset_id: None, release_id: None, environment: None };
        let job = self.new_job(
            Some(actor),
            NewJob {
                app_id,
                job_type: gate.job_type(),
                entity_type: Some("commit".into()),
                entity_id: Some(commit.to_string()),
                payload: serde_json::to_value(&payload).map_err(Error::internal)?,
                // The runner kills the command at `timeout`; the attempt gets
                // a margin for exporting the tree.
                timeout_secs: timeout.as_secs() + 60,
            },
        );
        let unit = self.enqueue_in(UnitOfWork::new(), Some(actor), &job);
        self.commit_and_wake(unit).await?;
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_environment_holds_only_the_spec_variables_and_path() {
        let app = AppId(uuid::Uuid::nil());
        let payload = GatePayload {
            gate: GateKind::Release,
            commit: "a".repeat(40),
            changeset_id: None,
            release_id: Some("r1".into()),
            environment: Some("prod".into()),
        };
        let env = gate_env(app, &payload);
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["CONMAN_APP_ID", "CONMAN_COMMIT", "CONMAN_ENVIRONMENT", "CONMAN_GATE", "CONMAN_RELEASE_ID", "PATH"]
        );
        assert_eq!(env["CONMAN_GATE"], "release");
    }
}
