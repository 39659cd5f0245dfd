//! `revert_and_release` (SPEC §2.5): roll an environment back by reverting
//! the release it runs on the integration branch — computed in memory by
//! the composer as the change from the release's composed commit back to
//! its base, onto the current integration head — publishing the result as
//! a new release and deploying that to the environment.
//!
//! Invariants:
//! - only the release an environment runs now is reverted there; the
//!   revert is refused (changing nothing) when later changes on the
//!   integration branch conflict with it (`conflict`, the paths named) or
//!   when the branch already holds none of its changes;
//! - the environment must take a deploy (not busy, drifted or frozen
//!   without an override) before anything is published;
//! - the revert release is born `published` with no selection and
//!   `reverts_release_id` set, through the same intent as any publish (the
//!   integration branch moves by compare-and-swap, the tag is created), and
//!   the queue is revalidated against the new head; its deployment is a
//!   `revert_and_release` rollback, and when it succeeds the reverted
//!   release is marked `rolled_back`;
//! - publish and deploy are two units: if the deploy request is refused in
//!   between (someone else took the environment), the revert release stays
//!   published and can be deployed like any other.

use super::apps::signature_of;
use super::deployments::DeploymentStarted;
use super::{Actor, AuditWhat, Conman};
use crate::domain::app::App;
use crate::domain::deployment::DeploymentKind;
use crate::domain::release::{Release, ReleaseState};
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId, ReleaseId};
use crate::ports::composition::{ComposeItem, ComposeRequest, ItemOutcome};
use crate::ports::git::{RefMove, Sha};
use crate::ports::store::{ReleaseMutation, UnitOfWork};
use crate::rbac::Capability;

impl Conman {
    /// Reverts the release `environment_id` runs (or asserts which with
    /// `release_id`) on the integration branch, publishes the revert as a
    /// new release and deploys it there. Config managers and admins.
    pub async fn revert_and_release(
        &self,
        actor: &Actor,
        app_id: AppId,
        environment_id: EnvironmentId,
        release_id: Option<ReleaseId>,
        freeze_override: Option<&str>,
    ) -> Result<DeploymentStarted, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Deploy, None)?;
        scope.require(Capability::ManageReleases, None)?;
        let env = self.environment(app_id, environment_id).await?;
        let running = self.store().last_succeeded_deployment(app_id, env.id).await?.ok_or_else(|| {
            Error::invalid("environment_id", "nothing_deployed", format!("nothing is deployed on {}", env.name))
        })?;
        if release_id.is_some_and(|r| r != running.release_id) {
            return Err(Error::invalid(
                "release_id",
                "not_running",
                format!("revert_and_release reverts the release {} runs now", env.name),
            ));
        }
        let reverted = self.store().release(app_id, running.release_id).await?.ok_or(Error::NotFound("release"))?;
        let freeze_override = super::deployments::check_reason("freeze_override", freeze_override)?;
        self.check_deployable_environment(&scope, &env, None, freeze_override.as_deref()).await?;
        if let Some(busy) = self.store().active_deployment(app_id, env.id).await? {
            return Err(super::deployments::busy_environment(&env, &busy));
        }
        let revert = self.publish_revert(actor, &scope.app, &reverted).await?;
        let mut started = self
            .request_deployments(
                &scope,
                &revert,
                vec![(env, None)],
                DeploymentKind::RevertAndRelease,
                Some(reverted.id),
                freeze_override,
            )
            .await?;
        started.pop().ok_or_else(|| Error::internal("a revert made no deployment"))
    }

    /// Composes the revert of `reverted` onto the integration head and
    /// publishes it as a new release (one intent: branch and tag).
    async fn publish_revert(&self, actor: &Actor, app: &App, reverted: &Release) -> Result<Release, Error> {
        let app_id = app.id;
        let _turn = self.intent_turn(app_id).await;
        let (Some(base), Some(composed)) = (reverted.base_sha.clone(), reverted.composed_sha.clone()) else {
            return Err(Error::internal(format!("published release {} has no composition", reverted.id)));
        };
        let integration = app.integration_ref();
        let head = self
            .git()
            .resolve_ref(app_id, &integration)
            .await?
            .ok_or_else(|| Error::internal(format!("{integration} does not exist")))?;
        let now = self.now();
        let label = reverted.tag.clone().unwrap_or_else(|| reverted.id.to_string());
        let request = ComposeRequest {
            onto: head.clone(),
            items: vec![ComposeItem {
                key: reverted.id.to_string(),
                base: Sha(composed),
                head: Sha(base),
                message: format!("Revert {label}\n\nrelease {}", reverted.id),
            }],
            author: signature_of(actor),
            time: now.timestamp(),
        };
        let composition = self.git().compose(app_id, request).await?;
        match composition.outcomes.first().map(|(_, o)| o) {
            Some(ItemOutcome::Composed { .. }) => {}
            Some(ItemOutcome::Conflicted { paths }) => {
                return Err(Error::Conflict {
                    message: format!(
                        "later changes on {integration} conflict with reverting {label} ({}): revert by a changeset, \
                         or redeploy_prior",
                        paths.join(", ")
                    ),
                    details: Some(serde_json::json!({ "reason": "revert_conflict", "paths": paths })),
                });
            }
            Some(ItemOutcome::AlreadyContained) | None => {
                return Err(Error::invalid(
                    "release_id",
                    "already_reverted",
                    format!("{integration} holds none of the changes of {label}: there is nothing to revert"),
                ));
            }
        }
        let tag = self.free_release_tag(app_id, now).await?;
        let release = Release {
            id: self.new_id(),
            app_id,
            title: format!("Revert {label}"),
            state: ReleaseState::Published,
            items: Vec::new(),
            base_sha: Some(head.0.clone()),
            composed_sha: Some(composition.head.0.clone()),
            assemble_job_id: None,
            gates: Vec::new(),
            failure: None,
            tag: Some(tag.clone()),
            created_by: actor.user.id,
            assembled_by: Some(actor.user.id),
            assembled_at: Some(now),
            published_by: Some(actor.user.id),
            published_at: Some(now),
            reverts_release_id: Some(reverted.id),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let message = format!("Revert {label}\n\nrelease {}\nreverts release {}\n", release.id, reverted.id);
        let tag_object = self.write_release_tag(actor, app_id, &tag, composition.head.clone(), message, now).await?;
        let revalidate = self.revalidate_job(actor, app_id, release.id, &composition.head.0)?;
        let what =
            AuditWhat::new("release", release.id, "release.revert_published").after(&release).sha(&composition.head.0);
        let unit = UnitOfWork::new()
            .record(ReleaseMutation::InsertRelease(release.clone()), self.audit_entry(Some(actor), Some(app_id), what));
        let unit = self.enqueue_in(unit, Some(actor), &revalidate);
        let moves = vec![
            RefMove { name: integration, from: Some(head), to: Some(composition.head) },
            RefMove { name: format!("refs/tags/{tag}"), from: None, to: Some(tag_object) },
        ];
        let intent = self.intent(app_id, "release.revert_published", ("release", release.id), moves);
        self.commit_with_intent(unit, intent).await?;
        Ok(release)
    }
}
