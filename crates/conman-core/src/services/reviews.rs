//! Review votes (SPEC §2.3): `approve`, `request_changes`, `reject`.
//!
//! Invariants: only a reviewer (or above) votes, only on an `in_review`
//! changeset and only on its latest revision; the author never approves
//! their own changeset unless the app allows it; the vote and any state
//! change it causes (approval reached, changes requested, rejected) are one
//! unit of work with their audit entries, and the approval count comes from
//! the pure [`approval_status`].

use std::collections::HashMap;

use super::notifications::ChangesetNotice;
use super::{Actor, AuditWhat, Conman};
use crate::domain::app::App;
use crate::domain::changeset::{Changeset, ChangesetEvent, ChangesetRevision};
use crate::domain::comment::validate_body;
use crate::domain::review::{approval_status, ApprovalInput, ApprovalStatus, Review, ReviewAction};
use crate::domain::StateMachine;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, UserId};
use crate::ports::store::{ChangesetMutation, UnitOfWork};
use crate::rbac::{Capability, Role};

/// A vote (the wire form is `conman_api::dto::ReviewRequest`).
#[derive(Debug, Clone)]
pub struct ReviewInput {
    /// `approve`, `request_changes` or `reject`.
    pub action: String,
    /// Optional comment.
    pub comment: Option<String>,
    /// The revision the reviewer looked at; refused unless it is the latest.
    pub revision: Option<u32>,
}

/// What a vote did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReviewOutcome {
    /// The changeset after the vote.
    pub changeset: Changeset,
    /// The recorded vote.
    pub review: Review,
    /// Approval status of the latest revision after the vote.
    pub approval: ApprovalStatus,
}

impl Conman {
    /// Records a vote on the latest revision and applies its consequence.
    pub async fn review_changeset(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
        input: ReviewInput,
    ) -> Result<ReviewOutcome, Error> {
        let action = ReviewAction::parse(&input.action)?;
        let comment = input.comment.as_deref().map(validate_body).transpose()?;
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::Review, None)?;
        let event = match action {
            ReviewAction::Approve => ChangesetEvent::Approve,
            ReviewAction::RequestChanges => ChangesetEvent::RequestChanges,
            ReviewAction::Reject => ChangesetEvent::Reject,
        };
        cs.state.apply(event)?;
        if let Some(asked) = input.revision {
            if asked != cs.revision {
                return Err(Error::Conflict {
                    message: format!(
                        "only the latest revision ({}) can be reviewed, not revision {asked}",
                        cs.revision
                    ),
                    details: Some(serde_json::json!({ "reason": "not_latest_revision", "latest": cs.revision })),
                });
            }
        }
        if action == ReviewAction::Approve && cs.author_id == actor.user.id && !scope.app.settings.allow_self_approval {
            return Err(Error::Forbidden("authors may not approve their own changesets in this app".into()));
        }
        let revisions = self.store().changeset_revisions(cs.id).await?;
        let latest = revisions
            .last()
            .ok_or_else(|| Error::internal(format!("changeset {} in review has no revision", cs.id)))?;
        let review = Review {
            id: self.new_id(),
            changeset_id: cs.id,
            revision: cs.revision,
            reviewer_id: actor.user.id,
            action,
            comment,
            created_at: self.now(),
        };
        let mut reviews = self.store().changeset_reviews(cs.id).await?;
        reviews.retain(|r| !(r.revision == review.revision && r.reviewer_id == review.reviewer_id));
        reviews.push(review.clone());
        let approval = self.approval_of(&scope.app, &cs, latest, &reviews).await?;
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("changeset", cs.id, "changeset.review_recorded").after(&review),
        );
        let mut unit = UnitOfWork::new().record(ChangesetMutation::PutReview(review.clone()), audit);
        let consequence = match action {
            ReviewAction::Approve if approval.approved => Some(("changeset.approved", ChangesetNotice::Approved)),
            ReviewAction::Approve => None,
            ReviewAction::RequestChanges => Some(("changeset.changes_requested", ChangesetNotice::ChangesRequested)),
            ReviewAction::Reject => Some(("changeset.rejected", ChangesetNotice::Rejected)),
        };
        let mut after = cs.clone();
        if let Some((audit_action, notice)) = consequence {
            after = self.transition(&cs, event)?;
            unit = self.changeset_update(unit, Some(actor), &cs, &after, audit_action, None);
            unit = self
                .notify_changeset(unit, &scope.app, &after, notice, Some(actor.user.id), review.comment.as_deref())
                .await?;
        }
        self.store().commit(unit).await?;
        Ok(ReviewOutcome { changeset: after, review, approval })
    }

    /// Approval status of `latest` given `reviews`, with the voters'
    /// current roles.
    pub(super) async fn approval_of(
        &self,
        app: &App,
        cs: &Changeset,
        latest: &ChangesetRevision,
        reviews: &[Review],
    ) -> Result<ApprovalStatus, Error> {
        let mut roles: HashMap<UserId, Role> = HashMap::new();
        for review in reviews.iter().filter(|r| r.revision == latest.number) {
            if roles.contains_key(&review.reviewer_id) {
                continue;
            }
            if let Some(m) = self.store().membership(app.id, review.reviewer_id).await? {
                roles.insert(review.reviewer_id, m.role);
            }
        }
        approval_status(ApprovalInput {
            settings: &app.settings,
            required: self.required_approvals(app, cs).await?,
            author: cs.author_id,
            revision: latest.number,
            files: &latest.files,
            reviews,
            roles: &roles,
        })
    }
}
