//! Changesets (SPEC §2.3, §4): create, edit, list, show, submit, resubmit,
//! queue, move to draft, and the submit gate's verdict.
//!
//! Invariants:
//! - every state change goes through [`ChangesetState::apply`], so an edge
//!   outside the SPEC table is `invalid_transition` before anything is
//!   written; the new state is stored by compare-and-set on `version`;
//! - a revision is recorded together with the changeset update, the gate
//!   job, the audit entry and the intent (decision 0008) to point its
//!   protecting ref `refs/conman/changesets/<id>/<n>` at the head, in one
//!   unit; the ref moves after it, and a crash in between is rolled forward;
//!   a submit that carries profile overrides replaces the draft's in that
//!   same unit, so the revision never exists with other overrides;
//! - the gate's verdict applies only to the revision it tested: a verdict of
//!   an older revision's job (the author resubmitted meanwhile) changes
//!   nothing; it is committed with the job's own completion, exactly once.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use super::gates::{gate_command, GateKind, GatePayload};
use super::jobs::NewJob;
use super::notifications::ChangesetNotice;
use super::{Actor, AppScope, AuditWhat, Conman};
use crate::domain::app::{App, CommitMode};
use crate::domain::changeset::{
    Changeset, ChangesetEvent, ChangesetRevision, ChangesetState, Revalidation, RevalidationOutcome,
};
use crate::domain::job::{Job, JobState};
use crate::domain::review::{ApprovalStatus, Review};
use crate::domain::runtime_profile::overrides::{ProfileOverride, ProfileOverrideInput};
use crate::domain::workspace::Workspace;
use crate::domain::StateMachine;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, WorkspaceId};
use crate::ports::git::{DiffDetail, RefMove, Sha};
use crate::ports::store::{ChangesetFilter, ChangesetMutation, ChangesetOrder, Page, PageRequest, UnitOfWork};
use crate::rbac::Capability;
use crate::validation::validate_title;

/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;
/// Most dependencies one changeset may declare.
pub const MAX_DEPENDENCIES: usize = 50;

/// Input of changeset creation (the wire form is
/// `conman_api::dto::CreateChangesetRequest`).
#[derive(Debug, Clone)]
pub struct NewChangeset {
    /// The author's workspace.
    pub workspace_id: WorkspaceId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Changesets of the same app released with or before this one.
    pub depends_on: Vec<ChangesetId>,
}

/// Input of a changeset edit; absent fields stay (the wire form is
/// `conman_api::dto::UpdateChangesetRequest`).
#[derive(Debug, Clone, Default)]
pub struct ChangesetPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New dependency list (replaces the old one).
    pub depends_on: Option<Vec<ChangesetId>>,
}

/// A changeset with its revisions, votes and approval status.
#[derive(Debug, Clone, Serialize)]
pub struct ChangesetView {
    /// The record.
    #[serde(flatten)]
    pub changeset: Changeset,
    /// Frozen revisions, oldest first.
    pub revisions: Vec<ChangesetRevision>,
    /// Votes on every revision.
    pub reviews: Vec<Review>,
    /// Approval status of the latest revision (`None` before the first submit).
    pub approval: Option<ApprovalStatus>,
}

/// What a submit or resubmit produced.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitOutcome {
    /// The changeset, now `submitted`.
    pub changeset: Changeset,
    /// The frozen revision.
    pub revision: ChangesetRevision,
    /// The submit gate job.
    pub job: Job,
    /// The changeset's profile overrides, included with the revision
    /// (secret names only).
    pub included_profile_overrides: Vec<ProfileOverride>,
}

impl Conman {
    /// Loads a changeset of the app the actor may read.
    pub(super) async fn changeset_in_scope(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
    ) -> Result<(AppScope, Changeset), Error> {
        let scope = self.app_scope(actor, app_id).await?;
        let cs = self.store().changeset(app_id, id).await?.ok_or(Error::NotFound(ChangesetId::KIND))?;
        Ok((scope, cs))
    }

    /// Opens a changeset on the actor's own workspace (one open per workspace).
    pub async fn create_changeset(
        &self,
        actor: &Actor,
        app_id: AppId,
        input: NewChangeset,
    ) -> Result<Changeset, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        let ws = self.store().workspace(app_id, input.workspace_id).await?.ok_or(Error::NotFound(WorkspaceId::KIND))?;
        scope.require(Capability::EditChangeset, Some(ws.owner_id))?;
        validate_title(&input.title)?;
        let description = check_description(input.description.as_deref().unwrap_or(""))?;
        let depends_on = self.checked_dependencies(app_id, None, &input.depends_on).await?;
        if let Some(open) = self.store().open_changeset_of_workspace(app_id, ws.id).await? {
            return Err(open_changeset_conflict(&open));
        }
        let now = self.now();
        let cs = Changeset {
            id: self.new_id(),
            app_id,
            workspace_id: ws.id,
            author_id: actor.user.id,
            title: input.title.trim().to_owned(),
            description,
            state: ChangesetState::Draft,
            revision: 0,
            head_sha: None,
            depends_on,
            gate_job_id: None,
            gate_failure: None,
            queued_at: None,
            last_revalidation: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("changeset", cs.id, "changeset.created").after(&cs),
        );
        self.store().commit(UnitOfWork::new().record(ChangesetMutation::InsertChangeset(cs.clone()), audit)).await?;
        Ok(cs)
    }

    /// Changesets of an app, newest first; the queue (`state` queued) in
    /// queue order, oldest queued first (SPEC §2.4 queue view).
    pub async fn list_changesets(
        &self,
        actor: &Actor,
        app_id: AppId,
        filter: ChangesetFilter,
        page: PageRequest,
    ) -> Result<Page<Changeset>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        let order = if filter.state == Some(ChangesetState::Queued) {
            ChangesetOrder::QueueOrder
        } else {
            ChangesetOrder::NewestFirst
        };
        self.store().list_changesets(app_id, &ChangesetFilter { order, ..filter }, page).await
    }

    /// One changeset with its revisions, votes and approval status.
    pub async fn get_changeset(&self, actor: &Actor, app_id: AppId, id: ChangesetId) -> Result<ChangesetView, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::Read, None)?;
        let revisions = self.store().changeset_revisions(cs.id).await?;
        let reviews = self.store().changeset_reviews(cs.id).await?;
        let approval = match revisions.last() {
            Some(latest) => Some(self.approval_of(&scope.app, &cs, latest, &reviews).await?),
            None => None,
        };
        Ok(ChangesetView { changeset: cs, revisions, reviews, approval })
    }

    /// Edits title, description or dependencies (the author, before approval).
    pub async fn update_changeset(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
        patch: ChangesetPatch,
    ) -> Result<Changeset, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::EditChangeset, Some(cs.author_id))?;
        if !cs.state.is_editable() {
            return Err(Error::InvalidTransition {
                entity: "changeset",
                from: cs.state.as_str().into(),
                event: "edit".into(),
            });
        }
        if let Some(title) = &patch.title {
            validate_title(title)?;
        }
        let description = patch.description.as_deref().map(check_description).transpose()?;
        let depends_on = match &patch.depends_on {
            Some(deps) => Some(self.checked_dependencies(app_id, Some(cs.id), deps).await?),
            None => None,
        };
        let updated = Changeset {
            title: patch.title.map(|t| t.trim().to_owned()).unwrap_or_else(|| cs.title.clone()),
            description: description.unwrap_or_else(|| cs.description.clone()),
            depends_on: depends_on.unwrap_or_else(|| cs.depends_on.clone()),
            updated_at: self.now(),
            version: cs.version + 1,
            ..cs.clone()
        };
        if updated.title == cs.title && updated.description == cs.description && updated.depends_on == cs.depends_on {
            return Ok(cs);
        }
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("changeset", cs.id, "changeset.updated").before(&cs).after(&updated),
        );
        self.store()
            .commit(UnitOfWork::new().record(ChangesetMutation::UpdateChangeset(updated.clone()), audit))
            .await?;
        Ok(updated)
    }

    /// Freezes revision 1 and starts the submit gate (`draft` only), with
    /// the profile overrides the draft carries.
    pub async fn submit_changeset(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
    ) -> Result<SubmitOutcome, Error> {
        self.freeze(actor, app_id, id, ChangesetEvent::Submit, None).await
    }

    /// [`submit_changeset`](Self::submit_changeset) that first replaces the
    /// draft's profile overrides with `overrides` (SPEC §7 `submit
    /// {profile_overrides}`), in the submit's own unit: the revision is
    /// frozen with exactly these overrides, or nothing changes.
    pub async fn submit_changeset_with_overrides(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
        overrides: Vec<ProfileOverrideInput>,
    ) -> Result<SubmitOutcome, Error> {
        self.freeze(actor, app_id, id, ChangesetEvent::Submit, Some(&overrides)).await
    }

    /// Freezes a new revision, resets approvals and re-runs the gate
    /// (`submitted`, `in_review` or `changes_requested`).
    pub async fn resubmit_changeset(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
    ) -> Result<SubmitOutcome, Error> {
        self.freeze(actor, app_id, id, ChangesetEvent::Resubmit, None).await
    }

    /// Submit and resubmit: see the module docs. A lost compare-and-set
    /// (typically the previous revision's gate verdict landing at the same
    /// moment) is retried on the reloaded changeset, a few times.
    async fn freeze(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
        event: ChangesetEvent,
        overrides: Option<&[ProfileOverrideInput]>,
    ) -> Result<SubmitOutcome, Error> {
        let mut tries = 0;
        loop {
            match self.freeze_once(actor, app_id, id, event, overrides).await {
                Err(e) if e.is_stale_version() && tries < 3 => tries += 1,
                other => return other,
            }
        }
    }

    async fn freeze_once(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
        event: ChangesetEvent,
        overrides: Option<&[ProfileOverrideInput]>,
    ) -> Result<SubmitOutcome, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::EditChangeset, Some(cs.author_id))?;
        let state = cs.state.apply(event)?;
        // Overrides are replaced only on a draft's submit (the event was
        // accepted, so `cs` is a draft), and validated before any git effect.
        let unit = match overrides {
            Some(input) => self.replacing_overrides(UnitOfWork::new(), actor, &cs, input).await?.0,
            None => UnitOfWork::new(),
        };
        let ws = self
            .store()
            .workspace(app_id, cs.workspace_id)
            .await?
            .ok_or_else(|| Error::internal(format!("workspace of changeset {} is missing", cs.id)))?;
        let number = cs.revision + 1;
        let (head, base, files, protect) = self.frozen_head(actor, &scope.app, &ws, &cs, number).await?;
        let (_, timeout) = gate_command(self, &scope.app, GateKind::Submit);
        let payload = GatePayload {
            gate: GateKind::Submit,
            commit: head.to_string(),
            changeset_id: Some(cs.id.to_string()),
            release_id: None,
            environment: None,
        };
        let job = self.new_job(
            Some(actor),
            NewJob {
                app_id,
                job_type: GateKind::Submit.job_type(),
                entity_type: Some("changeset".into()),
                entity_id: Some(cs.id.to_string()),
                payload: serde_json::to_value(&payload).map_err(Error::internal)?,
                timeout_secs: timeout.as_secs() + 60,
            },
        );
        let now = self.now();
        let revision = ChangesetRevision {
            changeset_id: cs.id,
            number,
            head_sha: head.to_string(),
            base_sha: base.to_string(),
            files,
            gate_job_id: Some(job.id),
            created_by: actor.user.id,
            created_at: now,
        };
        let updated = Changeset {
            state,
            revision: number,
            head_sha: Some(head.to_string()),
            gate_job_id: Some(job.id),
            gate_failure: None,
            // A new revision: nothing of it was checked against a head yet.
            last_revalidation: None,
            updated_at: now,
            version: cs.version + 1,
            ..cs.clone()
        };
        let action = if event == ChangesetEvent::Submit { "changeset.submitted" } else { "changeset.resubmitted" };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("changeset", cs.id, action).before(&cs).after(&updated).sha(&head),
        );
        let unit = unit.record_all(
            [ChangesetMutation::UpdateChangeset(updated.clone()), ChangesetMutation::InsertRevision(revision.clone())],
            audit,
        );
        let unit = self.enqueue_in(unit, Some(actor), &job);
        let unit = self
            .notify_changeset(unit, &scope.app, &updated, ChangesetNotice::Submitted, Some(actor.user.id), None)
            .await?;
        let intent = self.intent(app_id, action, ("changeset", cs.id), protect.into_iter().collect());
        self.commit_with_intent(unit, intent).await?;
        let included_profile_overrides = self.store().changeset_overrides(cs.id).await?;
        Ok(SubmitOutcome { changeset: updated, revision, job, included_profile_overrides })
    }

    /// Makes the workspace's edits the revision's commit: in `submit_commit`
    /// mode the saved edits become one branch commit first; the branch head
    /// is to be protected by the revision's ref. Answers (head, merge base
    /// with the integration branch, changed paths, the protecting ref's move
    /// unless it already holds the head); an empty change is refused.
    async fn frozen_head(
        &self,
        actor: &Actor,
        app: &App,
        ws: &Workspace,
        cs: &Changeset,
        number: u32,
    ) -> Result<(Sha, Sha, Vec<String>, Option<RefMove>), Error> {
        if ws.effective_commit_mode(app.settings.commit_mode_default) == CommitMode::SubmitCommit {
            self.squash_edits(actor, ws, cs.title.clone(), "workspace.committed").await?;
        }
        let head = self.branch_head(ws).await?;
        let base = self.integration_merge_base(app, &head).await?;
        let mut files = BTreeSet::new();
        for change in self.git().diff(app.id, &base, &head, DiffDetail::Paths).await? {
            files.extend(change.old_path);
            files.insert(change.path);
        }
        if files.is_empty() {
            return Err(Error::invalid(
                "workspace_id",
                "no_changes",
                "the workspace has no committed changes against the integration branch to submit",
            ));
        }
        let protect = ChangesetRevision::ref_name(cs.id, number);
        let leftover = self.git().resolve_ref(app.id, &protect).await?;
        let protect = (leftover.as_ref() != Some(&head)).then(|| RefMove {
            name: protect,
            from: leftover,
            to: Some(head.clone()),
        });
        Ok((head, base, files.into_iter().collect(), protect))
    }

    /// Puts an approved changeset into the release queue (its author, or a
    /// config manager for anyone's).
    pub async fn queue_changeset(&self, actor: &Actor, app_id: AppId, id: ChangesetId) -> Result<Changeset, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::QueueChangeset, Some(cs.author_id))?;
        let updated = Changeset {
            queued_at: Some(self.now()),
            last_revalidation: None,
            ..self.transition(&cs, ChangesetEvent::Queue)?
        };
        let unit = self.changeset_update(UnitOfWork::new(), Some(actor), &cs, &updated, "changeset.queued", None);
        let unit = self
            .notify_changeset(unit, &scope.app, &updated, ChangesetNotice::Queued, Some(actor.user.id), None)
            .await?;
        self.store().commit(unit).await?;
        Ok(updated)
    }

    /// Sends a changeset back to draft (own; any for config managers).
    pub async fn move_changeset_to_draft(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
    ) -> Result<Changeset, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::MoveToDraft, Some(cs.author_id))?;
        let updated = self.transition(&cs, ChangesetEvent::MoveToDraft)?;
        let unit =
            self.changeset_update(UnitOfWork::new(), Some(actor), &cs, &updated, "changeset.moved_to_draft", None);
        self.store().commit(unit).await?;
        Ok(updated)
    }

    /// `cs` after `event`, or `invalid_transition`.
    pub(super) fn transition(&self, cs: &Changeset, event: ChangesetEvent) -> Result<Changeset, Error> {
        let state = cs.state.apply(event)?;
        Ok(Changeset { state, updated_at: self.now(), version: cs.version + 1, ..cs.clone() })
    }

    /// Adds to `unit` the update of `before` to `after` with its audit
    /// entry, by `actor` (`None`: the system); `note`, when given, says why
    /// (which release, which paths, ...) under the entry's `after.because`.
    pub(super) fn changeset_update(
        &self,
        unit: UnitOfWork,
        actor: Option<&Actor>,
        before: &Changeset,
        after: &Changeset,
        action: &str,
        note: Option<serde_json::Value>,
    ) -> UnitOfWork {
        let mut after_json = serde_json::to_value(after).unwrap_or(serde_json::Value::Null);
        if let (Some(note), serde_json::Value::Object(map)) = (note, &mut after_json) {
            map.insert("because".into(), note);
        }
        let mut what = AuditWhat::new("changeset", before.id, action).before(before).after(after_json);
        if let Some(sha) = &after.head_sha {
            what = what.sha(sha);
        }
        let audit = self.audit_entry(actor, Some(before.app_id), what);
        unit.record(ChangesetMutation::UpdateChangeset(after.clone()), audit)
    }

    /// The effects of a finished submit gate on its changeset: `submitted →
    /// in_review` when it passed, `→ draft` with the failure recorded
    /// otherwise — only while the changeset still waits for this very job.
    pub(super) async fn settle_submit_gate(
        &self,
        job: &Job,
        changeset_id: ChangesetId,
        state: JobState,
        error: Option<&str>,
    ) -> Result<UnitOfWork, Error> {
        let Some(cs) = self.store().changeset(job.app_id, changeset_id).await? else { return Ok(UnitOfWork::new()) };
        let regate = cs.last_revalidation.as_ref().is_some_and(|r| r.gate_job_id == Some(job.id));
        if cs.state == ChangesetState::Queued && regate {
            return self.settle_revalidation_gate(job, cs, state, error).await;
        }
        if cs.state != ChangesetState::Submitted || cs.gate_job_id != Some(job.id) {
            return Ok(UnitOfWork::new());
        }
        let passed = state == JobState::Succeeded;
        let event = if passed { ChangesetEvent::GatePassed } else { ChangesetEvent::GateFailed };
        let failure = (!passed).then(|| match state {
            JobState::Canceled => "the submit gate was canceled".to_owned(),
            _ => error.unwrap_or("the submit gate failed").to_owned(),
        });
        let updated = Changeset { gate_failure: failure.clone(), ..self.transition(&cs, event)? };
        let action = if passed { "changeset.gate_passed" } else { "changeset.gate_failed" };
        let unit = self.changeset_update(UnitOfWork::new(), None, &cs, &updated, action, None);
        let Some(app) = self.store().app(cs.app_id).await? else { return Ok(unit) };
        let notice = if passed { ChangesetNotice::ReviewRequested } else { ChangesetNotice::GateFailed };
        self.notify_changeset(unit, &app, &updated, notice, None, failure.as_deref()).await
    }

    /// A submit gate re-run of a queued changeset on its merged tree (see
    /// `revalidation`): a pass records the tree as gated and keeps it
    /// queued; a failure (or cancel) moves it `queued → needs_revalidation`
    /// and tells its author.
    async fn settle_revalidation_gate(
        &self,
        job: &Job,
        cs: Changeset,
        state: JobState,
        error: Option<&str>,
    ) -> Result<UnitOfWork, Error> {
        let Some(last) = cs.last_revalidation.clone() else { return Ok(UnitOfWork::new()) };
        let passed = state == JobState::Succeeded;
        let now = self.now();
        if passed {
            let last = Revalidation {
                at: now,
                outcome: RevalidationOutcome::Clean,
                gated_tree: last.tree.clone(),
                gate_job_id: None,
                ..last
            };
            let after =
                Changeset { last_revalidation: Some(last), updated_at: now, version: cs.version + 1, ..cs.clone() };
            return Ok(self.changeset_update(UnitOfWork::new(), None, &cs, &after, "changeset.regate_passed", None));
        }
        let failure = match state {
            JobState::Canceled => "the submit gate on the merged tree was canceled".to_owned(),
            _ => format!("the submit gate failed on the merged tree: {}", error.unwrap_or("no detail")),
        };
        let last = Revalidation { at: now, outcome: RevalidationOutcome::GateFailed, gate_job_id: None, ..last };
        let after = Changeset {
            gate_failure: Some(failure.clone()),
            last_revalidation: Some(last),
            ..self.transition(&cs, ChangesetEvent::Invalidate)?
        };
        let note = serde_json::json!({ "gate_job_id": job.id });
        let unit = self.changeset_update(UnitOfWork::new(), None, &cs, &after, "changeset.regate_failed", Some(note));
        let Some(app) = self.store().app(cs.app_id).await? else { return Ok(unit) };
        self.notify_changeset(unit, &app, &after, ChangesetNotice::NeedsRevalidation, None, Some(&failure)).await
    }

    /// Validates a dependency list: distinct changesets of the same app,
    /// not `this` one, and no cycle through `this`.
    async fn checked_dependencies(
        &self,
        app_id: AppId,
        this: Option<ChangesetId>,
        deps: &[ChangesetId],
    ) -> Result<Vec<ChangesetId>, Error> {
        if deps.len() > MAX_DEPENDENCIES {
            return Err(Error::invalid(
                "depends_on",
                "too_many",
                format!("a changeset may depend on at most {MAX_DEPENDENCIES} others"),
            ));
        }
        let mut seen = HashSet::new();
        let mut checked = Vec::new();
        for dep in deps {
            if !seen.insert(*dep) {
                continue;
            }
            if Some(*dep) == this {
                return Err(Error::invalid("depends_on", "cycle", "a changeset cannot depend on itself"));
            }
            if self.store().changeset(app_id, *dep).await?.is_none() {
                return Err(Error::invalid(
                    "depends_on",
                    "unknown_changeset",
                    format!("changeset {dep} does not exist in this app"),
                ));
            }
            checked.push(*dep);
        }
        if let Some(this) = this {
            self.refuse_cycle(app_id, this, &checked).await?;
        }
        Ok(checked)
    }

    /// Walks the dependency graph from `deps`; reaching `this` is a cycle.
    async fn refuse_cycle(&self, app_id: AppId, this: ChangesetId, deps: &[ChangesetId]) -> Result<(), Error> {
        let mut stack: Vec<ChangesetId> = deps.to_vec();
        let mut visited = HashSet::new();
        while let Some(next) = stack.pop() {
            if next == this {
                return Err(Error::invalid(
                    "depends_on",
                    "cycle",
                    "these dependencies would make a cycle back to this changeset",
                ));
            }
            if !visited.insert(next) {
                continue;
            }
            if let Some(cs) = self.store().changeset(app_id, next).await? {
                stack.extend(cs.depends_on);
            }
        }
        Ok(())
    }
}

/// The `conflict` of a second open changeset on a workspace.
fn open_changeset_conflict(open: &Changeset) -> Error {
    Error::Conflict {
        message: format!("the workspace already has an open changeset ({}, {})", open.id, open.state.as_str()),
        details: Some(serde_json::json!({ "reason": "open_changeset_exists", "changeset_id": open.id })),
    }
}

fn check_description(description: &str) -> Result<String, Error> {
    let description = description.trim();
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Err(Error::invalid(
            "description",
            "too_long",
            format!("description is at most {MAX_DESCRIPTION_BYTES} bytes"),
        ));
    }
    if description.contains('\0') {
        return Err(Error::invalid("description", "nul", "description may not contain NUL"));
    }
    Ok(description.to_owned())
}
