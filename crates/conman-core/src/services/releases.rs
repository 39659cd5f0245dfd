//! Releases (SPEC §2.4, §4): create a draft, set and reorder its selection,
//! start its assembly, publish it. Assembly itself is the
//! `release_assemble` job (`release_assembly.rs`); the queue's
//! revalidation after a publish is the `revalidate_queued` job
//! (`revalidation.rs`).
//!
//! Invariants:
//! - every mutation here needs [`Capability::ManageReleases`]; reads need
//!   membership;
//! - a selection is checked by [`check_selection`] whenever it is set,
//!   reordered or assembled: queued changesets of the app, none twice,
//!   dependencies released or earlier in the selection;
//! - publish is one recorded intent (decision 0008): the unit holding the
//!   release's `published` state, its changesets' `released` states, their
//!   audit entries and the revalidation job is committed together with the
//!   moves of the integration branch (from the head assembly started on to
//!   the composed commit) and of the new tag ref (from absent to the tag
//!   object written before) — so a crash at any point leaves either nothing
//!   published or everything, completed by reconciliation;
//! - the tag number is one more than the highest of the app's tags that
//!   day; two publishes can never share it (the store's unique tag, and
//!   both intents claim the integration branch).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::apps::signature_of;
use super::{Actor, AppScope, AuditWhat, Conman, NewJob};
use crate::domain::changeset::{Changeset, ChangesetEvent, ChangesetState};
use crate::domain::job::{Job, JobType};
use crate::domain::release::{
    check_selection, next_release_tag, release_tag_prefix, Release, ReleaseEvent, ReleaseItem, ReleaseState,
};
use crate::domain::StateMachine;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, ReleaseId};
use crate::ports::composition::{ComposeItem, TagRequest};
use crate::ports::git::{RefMove, Sha};
use crate::ports::store::{Page, PageRequest, ReleaseFilter, ReleaseMutation, UnitOfWork};
use crate::rbac::Capability;

/// Longest release title, in characters (it may be empty).
pub const MAX_RELEASE_TITLE_CHARS: usize = 200;

/// How long an assembly may run, seconds.
const ASSEMBLE_TIMEOUT_SECS: u64 = 600;

/// Input of a `release_assemble` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssemblePayload {
    /// The release.
    pub release_id: ReleaseId,
    /// The integration head the assembly starts from.
    pub base: String,
}

/// Input of a `revalidate_queued` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevalidatePayload {
    /// The release whose publish moved the integration branch.
    pub release_id: ReleaseId,
    /// The new integration head.
    pub head: String,
}

fn check_title(title: Option<&str>) -> Result<String, Error> {
    let title = title.unwrap_or_default();
    if title.chars().count() > MAX_RELEASE_TITLE_CHARS || title.chars().any(char::is_control) {
        return Err(Error::invalid(
            "title",
            "invalid",
            format!("a release title is at most {MAX_RELEASE_TITLE_CHARS} characters without control characters"),
        ));
    }
    Ok(title.to_owned())
}

impl Conman {
    /// Creates a draft release with an empty selection (config managers).
    pub async fn create_release(&self, actor: &Actor, app_id: AppId, title: Option<&str>) -> Result<Release, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageReleases, None)?;
        let title = check_title(title)?;
        let now = self.now();
        let release = Release {
            id: self.new_id(),
            app_id,
            title,
            state: ReleaseState::Draft,
            items: Vec::new(),
            base_sha: None,
            composed_sha: None,
            assemble_job_id: None,
            gates: Vec::new(),
            failure: None,
            tag: None,
            created_by: actor.user.id,
            assembled_by: None,
            assembled_at: None,
            published_by: None,
            published_at: None,
            reverts_release_id: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("release", release.id, "release.created").after(&release),
        );
        self.store().commit(UnitOfWork::new().record(ReleaseMutation::InsertRelease(release.clone()), audit)).await?;
        Ok(release)
    }

    /// Releases of an app, newest first (any member).
    pub async fn list_releases(
        &self,
        actor: &Actor,
        app_id: AppId,
        filter: ReleaseFilter,
        page: PageRequest,
    ) -> Result<Page<Release>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().list_releases(app_id, filter, page).await
    }

    /// One release (any member).
    pub async fn get_release(&self, actor: &Actor, app_id: AppId, id: ReleaseId) -> Result<Release, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().release(app_id, id).await?.ok_or(Error::NotFound(ReleaseId::KIND))
    }

    /// The caller's scope and the release for a mutation by them (config
    /// managers).
    async fn release_to_manage(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ReleaseId,
    ) -> Result<(AppScope, Release), Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::ManageReleases, None)?;
        let release = self.store().release(app_id, id).await?.ok_or(Error::NotFound(ReleaseId::KIND))?;
        Ok((scope, release))
    }

    /// Sets a draft release's selection, in release order.
    pub async fn set_release_changesets(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ReleaseId,
        order: &[ChangesetId],
    ) -> Result<Release, Error> {
        let (_, release) = self.release_to_manage(actor, app_id, id).await?;
        self.selection_change(actor, release, order, "release.changesets_set").await
    }

    /// Reorders a draft release's selection: the same changesets, in a new
    /// order that keeps every dependency before its dependents.
    pub async fn reorder_release(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ReleaseId,
        order: &[ChangesetId],
    ) -> Result<Release, Error> {
        let (_, release) = self.release_to_manage(actor, app_id, id).await?;
        let mut now: Vec<ChangesetId> = release.changeset_ids();
        let mut asked = order.to_vec();
        now.sort();
        asked.sort();
        if now != asked {
            return Err(Error::invalid(
                "changeset_ids",
                "different_set",
                "a reorder lists exactly the release's selected changesets, each once",
            ));
        }
        self.selection_change(actor, release, order, "release.reordered").await
    }

    async fn selection_change(
        &self,
        actor: &Actor,
        release: Release,
        order: &[ChangesetId],
        action: &str,
    ) -> Result<Release, Error> {
        if release.state != ReleaseState::Draft {
            return Err(Error::InvalidTransition {
                entity: "release",
                from: release.state.as_str().to_owned(),
                event: "change_selection".to_owned(),
            });
        }
        self.checked_selection(release.app_id, order).await?;
        let updated = Release {
            items: order.iter().map(|id| ReleaseItem { changeset_id: *id, revision: 0, outcome: None }).collect(),
            updated_at: self.now(),
            version: release.version + 1,
            ..release.clone()
        };
        let what = AuditWhat::new("release", release.id, action).before(&release.items).after(&updated.items);
        let audit = self.audit_entry(Some(actor), Some(release.app_id), what);
        self.store().commit(UnitOfWork::new().record(ReleaseMutation::UpdateRelease(updated.clone()), audit)).await?;
        Ok(updated)
    }

    /// Loads the selected changesets and checks the selection (see
    /// [`check_selection`]); returns them by id.
    pub(super) async fn checked_selection(
        &self,
        app_id: AppId,
        order: &[ChangesetId],
    ) -> Result<HashMap<ChangesetId, Changeset>, Error> {
        let mut found = HashMap::new();
        for id in order.iter().take(crate::domain::release::MAX_SELECTION + 1) {
            if let Some(cs) = self.store().changeset(app_id, *id).await? {
                found.insert(*id, cs);
            }
        }
        let mut released = HashSet::new();
        let selected: HashSet<ChangesetId> = order.iter().copied().collect();
        for cs in found.values() {
            for dep in &cs.depends_on {
                if selected.contains(dep) || released.contains(dep) {
                    continue;
                }
                if self.store().changeset(app_id, *dep).await?.is_some_and(|d| d.state == ChangesetState::Released) {
                    released.insert(*dep);
                }
            }
        }
        check_selection(order, &found, &released)?;
        Ok(found)
    }

    /// Starts assembling a release (config managers): a draft, a failed
    /// release (re-assembled) or a validated one whose publish found the
    /// integration branch moved. Records the integration head it starts
    /// from and enqueues the `release_assemble` job.
    pub async fn assemble_release(&self, actor: &Actor, app_id: AppId, id: ReleaseId) -> Result<(Release, Job), Error> {
        let (scope, release) = self.release_to_manage(actor, app_id, id).await?;
        let state = match release.state {
            ReleaseState::Failed => release.state.apply(ReleaseEvent::Reopen)?.apply(ReleaseEvent::Assemble)?,
            other => other.apply(ReleaseEvent::Assemble)?,
        };
        if release.items.is_empty() {
            return Err(Error::invalid("changeset_ids", "empty_selection", "select changesets before assembling"));
        }
        self.checked_selection(app_id, &release.changeset_ids()).await?;
        let base = self.integration_head(&scope.app).await?;
        let payload = AssemblePayload { release_id: id, base: base.to_string() };
        let job = self.new_job(
            Some(actor),
            NewJob {
                app_id,
                job_type: JobType::ReleaseAssemble,
                entity_type: Some("release".into()),
                entity_id: Some(id.to_string()),
                payload: serde_json::to_value(&payload).map_err(Error::internal)?,
                timeout_secs: ASSEMBLE_TIMEOUT_SECS,
            },
        );
        let now = self.now();
        let updated = Release {
            state,
            items: release.items.iter().map(|i| ReleaseItem { outcome: None, revision: 0, ..i.clone() }).collect(),
            base_sha: Some(base.to_string()),
            composed_sha: None,
            assemble_job_id: Some(job.id),
            gates: Vec::new(),
            failure: None,
            assembled_by: Some(actor.user.id),
            assembled_at: Some(now),
            updated_at: now,
            version: release.version + 1,
            ..release.clone()
        };
        let what =
            AuditWhat::new("release", id, "release.assembly_started").before(&release).after(&updated).sha(&base);
        let audit = self.audit_entry(Some(actor), Some(app_id), what);
        let unit = UnitOfWork::new().record(ReleaseMutation::UpdateRelease(updated.clone()), audit);
        let unit = self.enqueue_in(unit, Some(actor), &job);
        self.commit_and_wake(unit).await?;
        Ok((updated, job))
    }

    /// Publishes a validated release (config managers): see the module
    /// docs. `conflict` when the integration branch moved since assembly
    /// (`integration_moved`: re-assemble) or a changeset left the queue.
    pub async fn publish_release(&self, actor: &Actor, app_id: AppId, id: ReleaseId) -> Result<Release, Error> {
        let _turn = self.intent_turn(app_id).await;
        let (scope, release) = self.release_to_manage(actor, app_id, id).await?;
        let state = release.state.apply(ReleaseEvent::Publish)?;
        let (Some(base), Some(composed)) = (release.base_sha.clone(), release.composed_sha.clone()) else {
            return Err(Error::internal(format!("validated release {id} has no composition")));
        };
        let app = &scope.app;
        let integration = app.integration_ref();
        let head = self.git().resolve_ref(app_id, &integration).await?;
        if head.as_ref().map(Sha::as_str) != Some(base.as_str()) {
            return Err(Error::Conflict {
                message: "integration branch moved since this release was assembled: re-assemble".into(),
                details: Some(serde_json::json!({ "reason": "integration_moved", "ref": integration })),
            });
        }
        let now = self.now();
        let mut unit = UnitOfWork::new();
        let mut released = Vec::new();
        for item in release.included() {
            let cs = self
                .store()
                .changeset(app_id, item.changeset_id)
                .await?
                .filter(|cs| cs.state == ChangesetState::Queued && cs.revision == item.revision)
                .ok_or_else(|| Error::Conflict {
                    message: format!(
                        "changeset {} left the queue or changed since this release was assembled: re-assemble",
                        item.changeset_id
                    ),
                    details: Some(
                        serde_json::json!({ "reason": "selection_changed", "changeset_id": item.changeset_id }),
                    ),
                })?;
            let after = self.transition(&cs, ChangesetEvent::Release)?;
            let note = serde_json::json!({ "release_id": id });
            unit = self.changeset_update(unit, Some(actor), &cs, &after, "changeset.released", Some(note));
            released.push(after);
        }
        let tag = self.free_release_tag(app_id, now).await?;
        let tag_object = self
            .write_release_tag(actor, app_id, &tag, Sha(composed.clone()), release_message(&release, &tag), now)
            .await?;
        let updated = Release {
            state,
            tag: Some(tag.clone()),
            published_by: Some(actor.user.id),
            published_at: Some(now),
            updated_at: now,
            version: release.version + 1,
            ..release.clone()
        };
        let revalidate = self.revalidate_job(actor, app_id, id, &composed)?;
        let what = AuditWhat::new("release", id, "release.published").before(&release).after(&updated).sha(&composed);
        let audit = self.audit_entry(Some(actor), Some(app_id), what);
        let unit = unit.record(ReleaseMutation::UpdateRelease(updated.clone()), audit);
        let mut unit = self.enqueue_in(unit, Some(actor), &revalidate);
        for cs in &released {
            unit = self
                .notify_changeset(
                    unit,
                    app,
                    cs,
                    super::notifications::ChangesetNotice::Released,
                    Some(actor.user.id),
                    None,
                )
                .await?;
        }
        let moves = vec![
            RefMove { name: integration, from: Some(Sha(base)), to: Some(Sha(composed)) },
            RefMove { name: format!("refs/tags/{tag}"), from: None, to: Some(tag_object) },
        ];
        let intent = self.intent(app_id, "release.published", ("release", id), moves);
        self.commit_with_intent(unit, intent).await?;
        Ok(updated)
    }
}

impl Conman {
    /// The next release tag of `app_id` for the UTC day of `now`
    /// (`rYYYY.MM.DD.N`): past the numbers its releases took, and past any
    /// tag of that name made outside Conman (skipped, never moved). The
    /// store's unique tag index decides between two publishers that pick
    /// the same number.
    pub(super) async fn free_release_tag(&self, app_id: AppId, now: crate::domain::Timestamp) -> Result<String, Error> {
        let day = now.date_naive();
        let mut taken = self.store().release_tags_with_prefix(app_id, &release_tag_prefix(day)).await?;
        loop {
            let tag = next_release_tag(day, &taken);
            if self.git().resolve_ref(app_id, &format!("refs/tags/{tag}")).await?.is_none() {
                return Ok(tag);
            }
            taken.push(tag);
        }
    }

    /// Writes the annotated tag object `tag` on `target`, tagged by `actor`
    /// at `at` (the publish time); the caller's intent creates its ref.
    pub(super) async fn write_release_tag(
        &self,
        actor: &Actor,
        app_id: AppId,
        tag: &str,
        target: Sha,
        message: String,
        at: crate::domain::Timestamp,
    ) -> Result<Sha, Error> {
        let request =
            TagRequest { name: tag.to_owned(), target, message, tagger: signature_of(actor), time: at.timestamp() };
        self.git().write_tag(app_id, request).await
    }

    /// The `revalidate_queued` job a publish of `release_id` at `head`
    /// enqueues: every changeset still queued is checked against it.
    pub(super) fn revalidate_job(
        &self,
        actor: &Actor,
        app_id: AppId,
        release_id: ReleaseId,
        head: &str,
    ) -> Result<crate::domain::job::Job, Error> {
        Ok(self.new_job(
            Some(actor),
            NewJob {
                app_id,
                job_type: JobType::RevalidateQueued,
                entity_type: Some("release".into()),
                entity_id: Some(release_id.to_string()),
                payload: serde_json::to_value(RevalidatePayload { release_id, head: head.to_owned() })
                    .map_err(Error::internal)?,
                timeout_secs: ASSEMBLE_TIMEOUT_SECS,
            },
        ))
    }

    /// What composing a queued changeset brings in: its latest frozen
    /// revision, measured from that revision's base (assembly and the
    /// queue's revalidation compose the same thing).
    pub(super) async fn compose_item(&self, cs: &Changeset) -> Result<ComposeItem, Error> {
        let revision = self
            .store()
            .changeset_revisions(cs.id)
            .await?
            .into_iter()
            .next_back()
            .ok_or_else(|| Error::internal(format!("queued changeset {} has no revision", cs.id)))?;
        Ok(ComposeItem {
            key: cs.id.to_string(),
            message: format!("Compose changeset {}: {}\n\nrevision {}", cs.id, cs.title, revision.number),
            base: Sha(revision.base_sha),
            head: Sha(revision.head_sha),
        })
    }
}

/// The annotated tag's message: the release title and its changesets.
fn release_message(release: &Release, tag: &str) -> String {
    let mut message = if release.title.is_empty() { format!("Release {tag}") } else { release.title.clone() };
    message.push_str("\n\n");
    for item in release.included() {
        message.push_str(&format!("changeset {} revision {}\n", item.changeset_id, item.revision));
    }
    message.push_str(&format!("release {}\n", release.id));
    message
}
