//! Changesets, their frozen revisions, votes and comments: reads and
//! mutations.

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::changeset::{Changeset, ChangesetRevision, ChangesetState};
use crate::domain::comment::Comment;
use crate::domain::review::Review;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, CommentId, UserId, WorkspaceId};

/// Filter of the changeset listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangesetFilter {
    /// Only this state.
    pub state: Option<ChangesetState>,
    /// Only this author.
    pub author_id: Option<UserId>,
    /// The order of the listing.
    pub order: ChangesetOrder,
}

/// The order of a changeset listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChangesetOrder {
    /// Newest first: creation time, then id, descending.
    #[default]
    NewestFirst,
    /// Queue order: the time each entered the queue (`queued_at`), then id,
    /// ascending; one without a queue time (queued before Conman recorded
    /// it) comes first.
    QueueOrder,
}

/// A change to changesets, revisions, reviews or comments.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangesetMutation {
    /// Insert a changeset (`conflict` [`OpenChangesetExists`] when its
    /// workspace already has an open one).
    ///
    /// [`OpenChangesetExists`]: super::ConflictReason::OpenChangesetExists
    InsertChangeset(Changeset),
    /// Update a changeset (CAS on version; `conflict` when it would reopen a
    /// second open changeset on its workspace).
    UpdateChangeset(Changeset),
    /// Insert a frozen revision (`conflict` if that number exists).
    InsertRevision(ChangesetRevision),
    /// Record a vote, replacing the same reviewer's vote on the same revision.
    PutReview(Review),
    /// Insert a comment.
    InsertComment(Comment),
    /// Update a comment (CAS on version).
    UpdateComment(Comment),
}

/// Changesets, their revisions, votes and comments.
#[async_trait]
pub trait ChangesetStore: Send + Sync {
    /// A changeset of an app.
    async fn changeset(&self, app_id: AppId, id: ChangesetId) -> Result<Option<Changeset>, Error>;
    /// Changesets of an app matching `filter`, in `filter.order`.
    async fn list_changesets(
        &self,
        app_id: AppId,
        filter: &ChangesetFilter,
        page: PageRequest,
    ) -> Result<Page<Changeset>, Error>;
    /// The open changeset of a workspace, if any.
    async fn open_changeset_of_workspace(&self, app_id: AppId, ws_id: WorkspaceId) -> Result<Option<Changeset>, Error>;
    /// Revisions of a changeset, by number.
    async fn changeset_revisions(&self, id: ChangesetId) -> Result<Vec<ChangesetRevision>, Error>;
    /// Every vote on a changeset, by revision then time.
    async fn changeset_reviews(&self, id: ChangesetId) -> Result<Vec<Review>, Error>;
    /// A comment of a changeset.
    async fn comment(&self, changeset_id: ChangesetId, id: CommentId) -> Result<Option<Comment>, Error>;
    /// Comments of a changeset, oldest first (creation time, then id).
    async fn list_comments(&self, changeset_id: ChangesetId, page: PageRequest) -> Result<Page<Comment>, Error>;
    /// How many changesets each app has queued (apps with none are left
    /// out), by app id: the release queue depth.
    async fn queue_depths(&self) -> Result<Vec<(AppId, u64)>, Error>;
}
