//! Changeset notifications (SPEC §2.8): messages written to the outbox in
//! the same unit of work as the transition that causes them.
//!
//! Invariants: a notification never goes to the actor who caused it, nor to
//! a user who turned `email_notifications` off; review requests never go to
//! the changeset's own author; every recipient gets at most
//! one message per event; building the messages only reads.

use std::collections::BTreeSet;

use super::Conman;
use crate::domain::app::App;
use crate::domain::changeset::Changeset;
use crate::domain::outbox::OutboxMessage;
use crate::error::Error;
use crate::ids::UserId;
use crate::ports::store::{OutboxMutation, Unaudited, UnitOfWork};
use crate::rbac::Role;

/// What happened to a changeset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChangesetNotice {
    /// A revision was frozen and its gate started (to reviewers).
    Submitted,
    /// The gate passed: reviewers may vote (to reviewers).
    ReviewRequested,
    /// The submit gate failed (to the author).
    GateFailed,
    /// Approval reached (to the author).
    Approved,
    /// A reviewer asked for changes (to the author).
    ChangesRequested,
    /// A reviewer rejected (to the author).
    Rejected,
    /// Put into the release queue (to the author and config managers).
    Queued,
    /// Dropped from the queue for a conflict (to the author and config managers).
    Conflicted,
    /// A release gate blamed it (to the author and config managers).
    NeedsRevalidation,
    /// Shipped in a published release (to the author).
    Released,
}

impl ChangesetNotice {
    fn kind(self) -> &'static str {
        match self {
            ChangesetNotice::Submitted => "changeset_submitted",
            ChangesetNotice::ReviewRequested => "review_requested",
            ChangesetNotice::GateFailed => "changeset_gate_failed",
            ChangesetNotice::Approved => "changeset_approved",
            ChangesetNotice::ChangesRequested => "changeset_changes_requested",
            ChangesetNotice::Rejected => "changeset_rejected",
            ChangesetNotice::Queued => "changeset_queued",
            ChangesetNotice::Conflicted => "changeset_conflicted",
            ChangesetNotice::NeedsRevalidation => "changeset_needs_revalidation",
            ChangesetNotice::Released => "changeset_released",
        }
    }

    fn headline(self) -> &'static str {
        match self {
            ChangesetNotice::Submitted => "submitted for review",
            ChangesetNotice::ReviewRequested => "is ready for review (submit gate passed)",
            ChangesetNotice::GateFailed => "failed its submit gate and is back in draft",
            ChangesetNotice::Approved => "was approved",
            ChangesetNotice::ChangesRequested => "needs changes",
            ChangesetNotice::Rejected => "was rejected",
            ChangesetNotice::Queued => "was queued for release",
            ChangesetNotice::Conflicted => "conflicts and left the release queue",
            ChangesetNotice::NeedsRevalidation => "needs revalidation after a failed release gate",
            ChangesetNotice::Released => "was released",
        }
    }

    /// The lowest role of members told besides the author, if any.
    fn members_from(self) -> Option<Role> {
        match self {
            ChangesetNotice::Submitted | ChangesetNotice::ReviewRequested => Some(Role::Reviewer),
            ChangesetNotice::Queued | ChangesetNotice::Conflicted | ChangesetNotice::NeedsRevalidation => {
                Some(Role::ConfigManager)
            }
            _ => None,
        }
    }

    fn tells_author(self) -> bool {
        !matches!(self, ChangesetNotice::Submitted | ChangesetNotice::ReviewRequested)
    }
}

impl Conman {
    /// Adds the outbox messages of `notice` about `cs` to `unit`; `actor` (the
    /// user who caused it, `None` for the system) is never told.
    pub(super) async fn notify_changeset(
        &self,
        unit: UnitOfWork,
        app: &App,
        cs: &Changeset,
        notice: ChangesetNotice,
        actor: Option<UserId>,
        detail: Option<&str>,
    ) -> Result<UnitOfWork, Error> {
        let mut recipients = BTreeSet::new();
        if notice.tells_author() {
            recipients.insert(cs.author_id);
        }
        if let Some(lowest) = notice.members_from() {
            let to_reviewers = lowest == Role::Reviewer;
            let members = self.store().all_members(app.id).await?;
            recipients.extend(
                members
                    .iter()
                    .filter(|m| m.membership.role >= lowest)
                    .map(|m| m.membership.user_id)
                    .filter(|user| !(to_reviewers && *user == cs.author_id)),
            );
        }
        if let Some(actor) = actor {
            recipients.remove(&actor);
        }
        let mut unit = unit;
        for user_id in recipients {
            let Some(user) = self.store().user(user_id).await? else { continue };
            if !user.email_notifications {
                continue;
            }
            let mut body = format!(
                "Changeset \"{}\" of app {} {} (revision {}, state {}).\n\n{}/api/apps/{}/changesets/{}",
                cs.title,
                app.name,
                notice.headline(),
                cs.revision,
                cs.state.as_str(),
                self.config.public_url,
                app.id,
                cs.id
            );
            if let Some(detail) = detail {
                body.push_str("\n\n");
                body.push_str(detail);
            }
            let message = OutboxMessage {
                id: self.new_id(),
                recipient: user.email.clone(),
                app_id: Some(app.id),
                kind: notice.kind().into(),
                subject: format!("[{}] {} {}", app.name, cs.title, notice.headline()),
                body,
                created_at: self.now(),
                delivered_at: None,
            };
            unit = unit.unaudited(OutboxMutation::InsertOutbox(message), Unaudited::Notification);
        }
        Ok(unit)
    }
}
