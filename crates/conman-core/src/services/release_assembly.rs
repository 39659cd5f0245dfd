//! Assembly of a release (SPEC §2.4): the `release_assemble` job composes
//! the selection onto the integration head, drops conflicting changesets,
//! and starts the release gate; the gate's verdicts then validate or fail
//! the release.
//!
//! Invariants:
//! - a job acts only on the assembly that started it (the release is
//!   `assembling` and names this job); a stale job succeeds doing nothing;
//! - the composed commit contains exactly the items marked included
//!   (`composed` / `already_contained`), and no two included items override
//!   one profile key with different values: an item dropped for an override
//!   conflict is composed away again (the composition is redone without
//!   it; each round drops at least one item, so it ends);
//! - every dropped changeset moves `queued → conflicted`, audited with its
//!   paths or keys, its author told;
//! - the release gate runs once per environment (once without a profile for
//!   an app with none), in parallel; the release is `validated` when every
//!   run passed and `failed` as soon as one failed, naming the environment;
//!   a failure blames a changeset (`queued → needs_revalidation`) only when
//!   it is the release's only included changeset.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use serde_json::json;

use super::gates::{gate_command, GateKind, GatePayload};
use super::jobs::{JobHandler, JobOutcome};
use super::notifications::ChangesetNotice;
use super::releases::AssemblePayload;
use super::secrets_key::secret_binding;
use super::{AuditWhat, Conman, NewJob};
use crate::domain::changeset::{Changeset, ChangesetEvent, ChangesetState};
use crate::domain::job::{Job, JobState, LogStream};
use crate::domain::release::{override_conflicts, ItemVerdict, Release, ReleaseEvent, ReleaseGate, ReleaseState};
use crate::domain::runtime_profile::{EnvValue, OverrideTarget};
use crate::domain::StateMachine;
use crate::error::{Error, ErrorCode};
use crate::ids::{ChangesetId, ReleaseId};
use crate::ports::composition::{ComposeItem, ComposeRequest, ItemOutcome};
use crate::ports::git::{Sha, Signature};
use crate::ports::runner::LogSink;
use crate::ports::store::{ReleaseMutation, SecretOwner, UnitOfWork};

/// The `release_assemble` job.
pub(super) struct AssembleHandler;

/// The value an override sets, for comparing two overrides of one key.
#[derive(Debug, PartialEq)]
enum OverrideValue {
    Var(EnvValue),
    /// A secret's plaintext (compared, never shown).
    Secret(Vec<u8>),
}

/// The committer of composition commits: Conman itself.
pub(super) fn composer() -> Signature {
    Signature { name: "Conman".into(), email: "conman@localhost".into() }
}

#[async_trait]
impl JobHandler for AssembleHandler {
    async fn run(&self, conman: &Conman, job: &Job, log: &dyn LogSink) -> JobOutcome {
        match conman.assemble(job, log).await {
            Ok(Some((unit, result))) => JobOutcome::Succeeded { result, effects: unit },
            Ok(None) => {
                log.line(LogStream::System, "the release is no longer assembling for this job: nothing to do".into())
                    .await;
                JobOutcome::Succeeded { result: json!({ "stale": true }), effects: UnitOfWork::new() }
            }
            Err(e) => {
                log.line(LogStream::System, format!("assembly failed: {e}")).await;
                JobOutcome::Failed { error: e.to_string(), retryable: e.code() == ErrorCode::Internal, result: None }
            }
        }
    }
}

impl Conman {
    /// The effects of assembling the release of `job`, or `None` when the
    /// job is stale.
    async fn assemble(&self, job: &Job, log: &dyn LogSink) -> Result<Option<(UnitOfWork, serde_json::Value)>, Error> {
        let payload: AssemblePayload =
            serde_json::from_value(job.payload.clone()).map_err(|e| Error::internal(format!("bad payload: {e}")))?;
        let app_id = job.app_id;
        let Some(release) = self.store().release(app_id, payload.release_id).await? else { return Ok(None) };
        if release.state != ReleaseState::Assembling || release.assemble_job_id != Some(job.id) {
            return Ok(None);
        }
        let app = self.store().app(app_id).await?.ok_or(Error::NotFound("app"))?;
        let envs = self.store().environments(app_id).await?;

        // The selection's latest revisions and overrides, in release order.
        let mut changesets: Vec<Changeset> = Vec::new();
        let mut items = Vec::new();
        let mut overrides = Vec::new();
        for item in &release.items {
            let cs =
                self.store().changeset(app_id, item.changeset_id).await?.ok_or(Error::NotFound(ChangesetId::KIND))?;
            items.push(self.compose_item(&cs).await?);
            let mut pairs = Vec::new();
            for o in self.store().changeset_overrides(cs.id).await? {
                let target = match (o.target.resolve(&envs), &o.target) {
                    (Some(env), _) => format!("environment {}", env.name),
                    (None, OverrideTarget::ProfileId(id)) => format!("profile {id}"),
                    (None, OverrideTarget::EnvironmentId(id)) => format!("environment {id}"),
                    (None, OverrideTarget::Environment(name)) => format!("environment {name}"),
                };
                for (name, value) in &o.env_vars {
                    pairs.push((format!("{target}:{name}"), OverrideValue::Var(value.clone())));
                }
                for name in &o.secrets {
                    let stored =
                        self.store().secret(SecretOwner::Changeset(cs.id), name, 1).await?.ok_or_else(|| {
                            Error::internal(format!("the sealed override secret {name:?} is missing"))
                        })?;
                    let plain = self.cipher()?.open(&stored.sealed, &secret_binding(&stored))?;
                    pairs.push((format!("{target}:{name}"), OverrideValue::Secret(plain.expose().to_vec())));
                }
            }
            overrides.push((cs.id, pairs));
            changesets.push(cs);
        }

        // Compose; drop override conflicts among what composed; recompose
        // until no included item conflicts (each round drops one or more).
        let mut verdicts: BTreeMap<ChangesetId, ItemVerdict> = BTreeMap::new();
        let base = Sha(payload.base.clone());
        let started = std::time::Instant::now();
        let composition = loop {
            let candidates: Vec<ComposeItem> = items
                .iter()
                .zip(&changesets)
                .filter(|(_, cs)| !verdicts.contains_key(&cs.id))
                .map(|(item, _)| item.clone())
                .collect();
            let request = ComposeRequest {
                onto: base.clone(),
                items: candidates,
                author: composer(),
                time: self.now().timestamp(),
            };
            let composition = self.git().compose(app_id, request).await?;
            let mut included = HashSet::new();
            for (key, outcome) in &composition.outcomes {
                let id: ChangesetId = key.parse().map_err(|_| Error::internal("composition lost an item key"))?;
                match outcome {
                    ItemOutcome::Conflicted { paths } => {
                        verdicts.insert(id, ItemVerdict::Conflicted { paths: paths.clone() });
                    }
                    _ => {
                        included.insert(id);
                    }
                }
            }
            let clashes = override_conflicts(overrides.iter().filter(|(id, _)| included.contains(id)));
            if clashes.is_empty() {
                break composition;
            }
            for (id, keys) in clashes {
                log.line(
                    LogStream::System,
                    format!("changeset {id}: profile override conflict on {}", keys.join(", ")),
                )
                .await;
                verdicts.insert(id, ItemVerdict::OverrideConflict { keys });
            }
        };
        let compose_ms = started.elapsed().as_secs_f64() * 1000.0;
        for (key, outcome) in &composition.outcomes {
            let id: ChangesetId = key.parse().map_err(|_| Error::internal("composition lost an item key"))?;
            let verdict = match outcome {
                ItemOutcome::Composed { commit } => ItemVerdict::Composed { commit: commit.to_string() },
                ItemOutcome::AlreadyContained => ItemVerdict::AlreadyContained,
                ItemOutcome::Conflicted { paths } => ItemVerdict::Conflicted { paths: paths.clone() },
            };
            verdicts.entry(id).or_insert(verdict);
        }

        // The release's new state and the dropped changesets.
        let now = self.now();
        let mut release_items = release.items.clone();
        for (item, cs) in release_items.iter_mut().zip(&changesets) {
            item.revision = cs.revision;
            item.outcome = verdicts.get(&item.changeset_id).cloned();
        }
        let mut unit = UnitOfWork::new();
        let mut dropped = 0usize;
        for cs in &changesets {
            let Some(verdict) = verdicts.get(&cs.id).filter(|v| !v.is_included()) else { continue };
            dropped += 1;
            let after = self.transition(cs, ChangesetEvent::Conflict)?;
            let (detail, note) = match verdict {
                ItemVerdict::Conflicted { paths } => (
                    format!(
                        "It conflicts with the changesets composed before it in release {} on: {}",
                        release.id,
                        paths.join(", ")
                    ),
                    json!({ "release_id": release.id, "conflicting_paths": paths }),
                ),
                ItemVerdict::OverrideConflict { keys } => (
                    format!(
                        "Its profile overrides conflict with an earlier changeset of release {} on: {}",
                        release.id,
                        keys.join(", ")
                    ),
                    json!({ "release_id": release.id, "conflicting_keys": keys }),
                ),
                _ => continue,
            };
            log.line(LogStream::System, format!("changeset {} dropped: {detail}", cs.id)).await;
            unit = self.changeset_update(unit, None, cs, &after, "changeset.conflicted", Some(note));
            unit = self.notify_changeset(unit, &app, &after, ChangesetNotice::Conflicted, None, Some(&detail)).await?;
        }
        let composed =
            release_items.iter().filter(|i| i.outcome.as_ref().is_some_and(ItemVerdict::is_included)).count();
        let mut updated = Release {
            items: release_items,
            composed_sha: Some(composition.head.to_string()),
            updated_at: now,
            version: release.version + 1,
            ..release.clone()
        };
        if composed == 0 {
            updated.state = release.state.apply(ReleaseEvent::AssemblyFailed)?;
            updated.failure = Some("no selected changeset composed: every one conflicted".into());
        } else {
            // The release gate, once per environment, in parallel.
            let targets: Vec<(Option<String>, Option<crate::ids::RuntimeProfileId>)> = if envs.is_empty() {
                vec![(None, None)]
            } else {
                envs.iter().map(|e| (Some(e.name.clone()), e.runtime_profile_id)).collect()
            };
            let (_, timeout) = gate_command(self, &app, GateKind::Release);
            for (environment, profile_id) in targets {
                let payload = GatePayload {
                    gate: GateKind::Release,
                    commit: composition.head.to_string(),
                    changeset_id: None,
                    release_id: Some(release.id.to_string()),
                    environment: environment.clone(),
                };
                let gate_job = self.new_job(
                    None,
                    NewJob {
                        app_id,
                        job_type: GateKind::Release.job_type(),
                        entity_type: Some("release".into()),
                        entity_id: Some(release.id.to_string()),
                        payload: serde_json::to_value(&payload).map_err(Error::internal)?,
                        timeout_secs: timeout.as_secs() + 60,
                    },
                );
                unit = self.enqueue_in(unit, None, &gate_job);
                updated.gates.push(ReleaseGate {
                    environment,
                    profile_id,
                    job_id: gate_job.id,
                    passed: None,
                    failure: None,
                });
            }
        }
        let action = if updated.state == ReleaseState::Failed { "release.assembly_failed" } else { "release.composed" };
        let what =
            AuditWhat::new("release", release.id, action).before(&release).after(&updated).sha(&composition.head);
        let audit = self.audit_entry(None, Some(app_id), what);
        let unit = unit.record(ReleaseMutation::UpdateRelease(updated.clone()), audit);
        let result = json!({
            "composed_sha": composition.head,
            "included": composed,
            "dropped": dropped,
            "gates": updated.gates.len(),
            "compose_ms": compose_ms,
        });
        log.line(
            LogStream::System,
            format!("composed {composed} changesets onto {} as {}; dropped {dropped}", payload.base, composition.head),
        )
        .await;
        Ok(Some((unit, result)))
    }

    /// The effects of a finished release gate on its release: records the
    /// verdict; `validated` once every gate passed, `failed` when this one
    /// did not — only while the release is still assembling with this gate.
    pub(super) async fn settle_release_gate(
        &self,
        job: &Job,
        release_id: ReleaseId,
        state: JobState,
        error: Option<&str>,
    ) -> Result<UnitOfWork, Error> {
        let Some(release) = self.store().release(job.app_id, release_id).await? else { return Ok(UnitOfWork::new()) };
        if release.state != ReleaseState::Assembling || !release.gates.iter().any(|g| g.job_id == job.id) {
            return Ok(UnitOfWork::new());
        }
        let passed = state == JobState::Succeeded;
        let failure = (!passed).then(|| match state {
            JobState::Canceled => "the release gate was canceled".to_owned(),
            _ => error.unwrap_or("the release gate failed").to_owned(),
        });
        let mut updated = Release { updated_at: self.now(), version: release.version + 1, ..release.clone() };
        let mut which = None;
        for gate in &mut updated.gates {
            if gate.job_id == job.id {
                gate.passed = Some(passed);
                gate.failure = failure.clone();
                which = gate.environment.clone();
            }
        }
        let mut unit = UnitOfWork::new();
        let action = if let Some(why) = &failure {
            updated.state = release.state.apply(ReleaseEvent::AssemblyFailed)?;
            let place =
                which.map_or("the release gate".to_owned(), |env| format!("the release gate of environment {env}"));
            updated.failure = Some(format!("{place} failed: {why}"));
            let included: Vec<ChangesetId> = release.included().map(|i| i.changeset_id).collect();
            if let [only] = included.as_slice() {
                if let Some(cs) = self.store().changeset(job.app_id, *only).await? {
                    if cs.state == ChangesetState::Queued {
                        let after = self.transition(&cs, ChangesetEvent::Invalidate)?;
                        let note = json!({ "release_id": release.id, "gate_failure": updated.failure });
                        unit =
                            self.changeset_update(unit, None, &cs, &after, "changeset.needs_revalidation", Some(note));
                        if let Some(app) = self.store().app(job.app_id).await? {
                            let detail = updated.failure.clone();
                            unit = self
                                .notify_changeset(
                                    unit,
                                    &app,
                                    &after,
                                    ChangesetNotice::NeedsRevalidation,
                                    None,
                                    detail.as_deref(),
                                )
                                .await?;
                        }
                    }
                }
            }
            "release.gate_failed"
        } else if updated.gates.iter().all(|g| g.passed == Some(true)) {
            updated.state = release.state.apply(ReleaseEvent::AssemblyPassed)?;
            "release.validated"
        } else {
            "release.gate_passed"
        };
        let mut what = AuditWhat::new("release", release.id, action).before(&release).after(&updated);
        if let Some(sha) = &release.composed_sha {
            what = what.sha(sha);
        }
        let audit = self.audit_entry(None, Some(job.app_id), what);
        Ok(unit.record(ReleaseMutation::UpdateRelease(updated), audit))
    }
}
