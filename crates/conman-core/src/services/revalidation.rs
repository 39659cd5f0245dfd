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
//! - only changesets still queued at the revision that was checked move
//!   (the unit's compare-and-set on each changeset's version refuses a
//!   stale one, and the job is retried on fresh reads).

use async_trait::async_trait;
use serde_json::json;

use super::jobs::{JobHandler, JobOutcome};
use super::notifications::ChangesetNotice;
use super::releases::RevalidatePayload;
use super::{AuditWhat, Conman};
use crate::domain::changeset::{Changeset, ChangesetEvent, ChangesetState, Revalidation, RevalidationOutcome};
use crate::domain::job::{Job, LogStream};
use crate::error::{Error, ErrorCode};
use crate::ports::composition::CheckOutcome;
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
        let outcomes = self.git().check_against(app_id, Sha(payload.head.clone()), items).await?;
        let check_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut unit = UnitOfWork::new();
        let mut conflicted = 0usize;
        let mut clean = Vec::new();
        let now = self.now();
        let checked = |outcome| Some(Revalidation { at: now, head: payload.head.clone(), outcome });
        for (cs, outcome) in queued.iter().zip(&outcomes) {
            let CheckOutcome::Conflicted { paths } = outcome else {
                clean.push(Changeset {
                    last_revalidation: checked(RevalidationOutcome::Clean),
                    version: cs.version + 1,
                    ..cs.clone()
                });
                continue;
            };
            conflicted += 1;
            let after = Changeset {
                last_revalidation: checked(RevalidationOutcome::Conflicted),
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
            unit = self.notify_changeset(unit, &app, &after, ChangesetNotice::Conflicted, None, Some(&detail)).await?;
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
            format!("checked {} queued changesets against {}: {conflicted} conflicted", queued.len(), payload.head),
        )
        .await;
        let result = json!({ "checked": queued.len(), "conflicted": conflicted, "check_ms": check_ms });
        Ok((unit, result))
    }
}
