//! Revalidation of the queue after a publish (SPEC §2.4): the
//! `revalidate_queued` job checks every changeset still queued against the
//! new integration head.
//!
//! Invariants:
//! - the check is the git port's `check_against` (each changeset on its own
//!   against the head, in parallel across cores, writing nothing);
//! - a changeset that conflicts moves `queued → conflicted`, audited with
//!   its paths and the release that caused it, its author and the config
//!   managers told; one that merges cleanly stays queued; each records the
//!   check (`last_revalidation`: when, against which head, what it found),
//!   the clean ones under one audit entry for the whole check;
//! - where the merged tree differs from the tree its submit gate last passed
//!   on (the revision's own tree, or the merged tree of an earlier
//!   re-run), and a submit gate command is configured, the submit gate runs
//!   again as a job on a commit of the merged tree; the changeset stays
//!   queued (`gate_running`) until it settles: a pass records the merged
//!   tree as gated, a failure moves it `queued → needs_revalidation` (see
//!   `Conman::settle_submit_gate`). With no command the gate passes, so no
//!   job is made;
//! - only changesets still queued at the revision that was checked move
//!   (the unit's compare-and-set on each changeset's version refuses a
//!   stale one, and the job is retried on fresh reads).

use async_trait::async_trait;
use serde_json::json;

use super::gates::{gate_command, GateKind, GatePayload};
use super::jobs::{JobHandler, JobOutcome, NewJob};
use super::notifications::ChangesetNotice;
use super::release_assembly::composer;
use super::releases::RevalidatePayload;
use super::{AuditWhat, Conman};
use crate::domain::changeset::{Changeset, ChangesetEvent, ChangesetState, Revalidation, RevalidationOutcome};
use crate::domain::job::{Job, LogStream};
use crate::error::{Error, ErrorCode};
use crate::ports::composition::{CheckOutcome, ComposeRequest};
use crate::ports::git::Sha;
use crate::ports::runner::LogSink;
use crate::ports::store::{collect_pages, ChangesetFilter, ChangesetMutation, UnitOfWork};

/// The `revalidate_queued` job.
pub(super) struct RevalidateHandler;

#[async_trait]
impl JobHandler for RevalidateHandler {
    async fn run(&self, conman: &Conman, job: &Job, log: &dyn LogSink) -> JobOutcome {
        match conman.revalidate_queue(job, log).await {
            Ok((unit, result)) => JobOutcome::Succeeded { result, effects: unit },
            Err(e) => {
                log.line(LogStream::System, format!("revalidation failed: {e}")).await;
                JobOutcome::Failed { error: e.to_string(), retryable: e.code() == ErrorCode::Internal, result: None }
            }
        }
    }
}

impl Conman {
    /// The effects of checking the queue of `job`'s app against its head.
    async fn revalidate_queue(&self, job: &Job, log: &dyn LogSink) -> Result<(UnitOfWork, serde_json::Value), Error> {
        let payload: RevalidatePayload =
            serde_json::from_value(job.payload.clone()).map_err(|e| Error::internal(format!("bad payload: {e}")))?;
        let app_id = job.app_id;
        let app = self.store().app(app_id).await?.ok_or(Error::NotFound("app"))?;
        let filter = ChangesetFilter { state: Some(ChangesetState::Queued), author_id: None, ..Default::default() };
        let queued = collect_pages(|page| self.store().list_changesets(app_id, &filter, page)).await?;
        let mut items = Vec::with_capacity(queued.len());
        for cs in &queued {
            items.push(self.compose_item(cs).await?);
        }
        let started = std::time::Instant::now();
        let head = Sha(payload.head.clone());
        let outcomes = self.git().check_against(app_id, head.clone(), items.clone()).await?;
        let check_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (gate, gate_timeout) = gate_command(self, &app, GateKind::Submit);
        let gate_configured = gate.is_some();
        let mut unit = UnitOfWork::new();
        let (mut conflicted, mut gated) = (0usize, 0usize);
        let mut clean = Vec::new();
        let now = self.now();
        for ((cs, item), outcome) in queued.iter().zip(items).zip(outcomes) {
            let checked = |outcome, tree: Option<&Sha>, gated_tree: Option<String>, gate_job_id| {
                Some(Revalidation {
                    at: now,
                    head: payload.head.clone(),
                    outcome,
                    tree: tree.map(ToString::to_string),
                    gated_tree,
                    gate_job_id,
                })
            };
            let (tree, head_tree) = match outcome {
                CheckOutcome::Clean { tree, head_tree } => (tree, head_tree),
                CheckOutcome::Conflicted { paths } => {
                    conflicted += 1;
                    let after = Changeset {
                        last_revalidation: checked(RevalidationOutcome::Conflicted, None, None, None),
                        ..self.transition(cs, ChangesetEvent::Conflict)?
                    };
                    let detail = format!(
                        "After release {} it conflicts with the integration branch on: {}",
                        payload.release_id,
                        paths.join(", ")
                    );
                    log.line(LogStream::System, format!("changeset {}: {detail}", cs.id)).await;
                    let note = json!({ "release_id": payload.release_id, "conflicting_paths": paths });
                    unit = self.changeset_update(unit, None, cs, &after, "changeset.conflicted", Some(note));
                    unit = self
                        .notify_changeset(unit, &app, &after, ChangesetNotice::Conflicted, None, Some(&detail))
                        .await?;
                    continue;
                }
            };
            let passed = Revalidation::passed_tree(cs.last_revalidation.as_ref(), head_tree.as_str()).to_owned();
            if tree.as_str() == passed || !gate_configured {
                // What was gated is what would ship, or there is no gate to
                // run (no command: the gate passes).
                let gated_tree = (tree != head_tree).then(|| tree.to_string());
                let last = checked(RevalidationOutcome::Clean, Some(&tree), gated_tree, None);
                clean.push(Changeset { last_revalidation: last, version: cs.version + 1, ..cs.clone() });
                continue;
            }
            // The merge result differs from what its submit gate passed on:
            // the gate runs again, on a commit of the merged tree.
            gated += 1;
            let request =
                ComposeRequest { onto: head.clone(), items: vec![item], author: composer(), time: now.timestamp() };
            let merged = self.git().compose(app_id, request).await?.head;
            let gate = GatePayload {
                gate: GateKind::Submit,
                commit: merged.to_string(),
                changeset_id: Some(cs.id.to_string()),
                release_id: Some(payload.release_id.to_string()),
                environment: None,
            };
            let job = self.new_job(
                None,
                NewJob {
                    app_id,
                    job_type: GateKind::Submit.job_type(),
                    entity_type: Some("changeset".into()),
                    entity_id: Some(cs.id.to_string()),
                    payload: serde_json::to_value(&gate).map_err(Error::internal)?,
                    timeout_secs: gate_timeout.as_secs() + 60,
                },
            );
            let gated_tree = cs.last_revalidation.as_ref().and_then(|r| r.gated_tree.clone());
            let after = Changeset {
                last_revalidation: checked(RevalidationOutcome::GateRunning, Some(&tree), gated_tree, Some(job.id)),
                version: cs.version + 1,
                ..cs.clone()
            };
            log.line(
                LogStream::System,
                format!(
                    "changeset {}: the merged tree differs from what its gate passed on; submit gate job {}",
                    cs.id, job.id
                ),
            )
            .await;
            let note =
                json!({ "release_id": payload.release_id, "merged_commit": merged.to_string(), "gate_job_id": job.id });
            unit = self.changeset_update(unit, None, cs, &after, "changeset.regate_started", Some(note));
            unit = self.enqueue_in(unit, None, &job);
        }
        if !clean.is_empty() {
            // One entry for the whole check: which changesets stay queued.
            let ids: Vec<String> = clean.iter().map(|cs| cs.id.to_string()).collect();
            let what = AuditWhat::new("release", payload.release_id, "changesets.revalidated")
                .after(json!({ "head": payload.head, "clean": ids }))
                .sha(&payload.head);
            let audit = self.audit_entry(None, Some(app_id), what);
            unit = unit.record_all(clean.into_iter().map(ChangesetMutation::UpdateChangeset), audit);
        }
        log.line(
            LogStream::System,
            format!(
                "checked {} queued changesets against {}: {conflicted} conflicted, {gated} gated again",
                queued.len(),
                payload.head
            ),
        )
        .await;
        let result =
            json!({ "checked": queued.len(), "conflicted": conflicted, "regated": gated, "check_ms": check_ms });
        Ok((unit, result))
    }
}
