//! Changesets, frozen revisions, votes and comments (mirrors the SQL stores'
//! `changesets`). At most one open changeset per workspace.

use async_trait::async_trait;

use super::{cas, page, reference, unique, ReferenceStore, State};
use crate::domain::changeset::{Changeset, ChangesetRevision};
use crate::domain::comment::Comment;
use crate::domain::review::Review;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, CommentId, WorkspaceId};
use crate::ports::store::{
    ChangesetFilter, ChangesetMutation, ChangesetOrder, ChangesetStore, ConflictReason, Page, PageRequest, Record,
};

/// The changesets slice's collections.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Changesets {
    pub(crate) changesets: Vec<Changeset>,
    pub(crate) revisions: Vec<ChangesetRevision>,
    pub(crate) reviews: Vec<Review>,
    pub(crate) comments: Vec<Comment>,
}

impl Changesets {
    pub(crate) fn exists(&self, id: ChangesetId) -> bool {
        self.changesets.iter().any(|c| c.id == id)
    }

    /// `conflict` when another open changeset than `cs` sits on its workspace.
    fn one_open(&self, cs: &Changeset) -> Result<(), Error> {
        let other = |x: &Changeset| x.id != cs.id && x.workspace_id == cs.workspace_id && x.state.is_open();
        if cs.state.is_open() && self.changesets.iter().any(other) {
            return Err(ConflictReason::OpenChangesetExists.into());
        }
        Ok(())
    }
}

#[async_trait]
impl ChangesetStore for ReferenceStore {
    async fn changeset(&self, app_id: AppId, id: ChangesetId) -> Result<Option<Changeset>, Error> {
        Ok(self.lock().changesets.changesets.iter().find(|c| c.id == id && c.app_id == app_id).cloned())
    }

    async fn list_changesets(
        &self,
        app_id: AppId,
        filter: &ChangesetFilter,
        request: PageRequest,
    ) -> Result<Page<Changeset>, Error> {
        let mut found: Vec<Changeset> = self
            .lock()
            .changesets
            .changesets
            .iter()
            .filter(|c| c.app_id == app_id)
            .filter(|c| filter.state.is_none_or(|s| c.state == s))
            .filter(|c| filter.author_id.is_none_or(|a| c.author_id == a))
            .cloned()
            .collect();
        match filter.order {
            ChangesetOrder::NewestFirst => found.sort_by_key(|x| std::cmp::Reverse((x.created_at, x.id))),
            // No queue time (`None`) first.
            ChangesetOrder::QueueOrder => found.sort_by_key(|x| (x.queued_at, x.id)),
        }
        Ok(page(found, request))
    }

    async fn queue_depths(&self) -> Result<Vec<(AppId, u64)>, Error> {
        let mut depths = std::collections::BTreeMap::<AppId, u64>::new();
        for c in self
            .lock()
            .changesets
            .changesets
            .iter()
            .filter(|c| c.state == crate::domain::changeset::ChangesetState::Queued)
        {
            *depths.entry(c.app_id).or_default() += 1;
        }
        Ok(depths.into_iter().collect())
    }

    async fn open_changeset_of_workspace(&self, app_id: AppId, ws_id: WorkspaceId) -> Result<Option<Changeset>, Error> {
        let state = self.lock();
        let open = |c: &&Changeset| c.app_id == app_id && c.workspace_id == ws_id && c.state.is_open();
        Ok(state.changesets.changesets.iter().find(open).cloned())
    }

    async fn changeset_revisions(&self, id: ChangesetId) -> Result<Vec<ChangesetRevision>, Error> {
        let mut found: Vec<ChangesetRevision> =
            self.lock().changesets.revisions.iter().filter(|r| r.changeset_id == id).cloned().collect();
        found.sort_by_key(|r| r.number);
        Ok(found)
    }

    async fn changeset_reviews(&self, id: ChangesetId) -> Result<Vec<Review>, Error> {
        let mut found: Vec<Review> =
            self.lock().changesets.reviews.iter().filter(|r| r.changeset_id == id).cloned().collect();
        found.sort_by_key(|x| (x.revision, x.created_at, x.id));
        Ok(found)
    }

    async fn comment(&self, changeset_id: ChangesetId, id: CommentId) -> Result<Option<Comment>, Error> {
        let state = self.lock();
        Ok(state.changesets.comments.iter().find(|c| c.id == id && c.changeset_id == changeset_id).cloned())
    }

    async fn list_comments(&self, changeset_id: ChangesetId, request: PageRequest) -> Result<Page<Comment>, Error> {
        let mut found: Vec<Comment> =
            self.lock().changesets.comments.iter().filter(|c| c.changeset_id == changeset_id).cloned().collect();
        found.sort_by_key(|x| (x.created_at, x.id));
        Ok(page(found, request))
    }
}

fn insert_changeset(state: &mut State, cs: &Changeset) -> Result<(), Error> {
    let slice = &state.changesets;
    unique(slice.changesets.iter().any(|x| x.id == cs.id), Record::Changeset, "id")?;
    slice.one_open(cs)?;
    let workspace = state.workspaces.workspaces.iter().any(|w| w.id == cs.workspace_id);
    reference(state.apps.exists(cs.app_id) && workspace && state.users.exists(cs.author_id))?;
    state.changesets.changesets.push(cs.clone());
    Ok(())
}

fn update_changeset(state: &mut State, cs: &Changeset) -> Result<(), Error> {
    let slice = &mut state.changesets;
    let found = slice.changesets.iter_mut().find(|x| x.id == cs.id && x.app_id == cs.app_id);
    cas(found, |x| x.version, cs.version, ChangesetId::KIND)?;
    slice.one_open(cs)?;
    if let Some(row) = slice.changesets.iter_mut().find(|x| x.id == cs.id) {
        *row = cs.clone();
    }
    Ok(())
}

fn insert_revision(state: &mut State, r: &ChangesetRevision) -> Result<(), Error> {
    let slice = &state.changesets;
    let taken = slice.revisions.iter().any(|x| x.changeset_id == r.changeset_id && x.number == r.number);
    unique(taken, Record::ChangesetRevision, "number")?;
    reference(slice.exists(r.changeset_id) && state.users.exists(r.created_by))?;
    state.changesets.revisions.push(r.clone());
    Ok(())
}

fn put_review(state: &mut State, r: &Review) -> Result<(), Error> {
    let slice = &mut state.changesets;
    let same_vote =
        |x: &Review| x.changeset_id == r.changeset_id && x.revision == r.revision && x.reviewer_id == r.reviewer_id;
    unique(slice.reviews.iter().any(|x| x.id == r.id && !same_vote(x)), Record::Review, "id")?;
    reference(slice.exists(r.changeset_id) && state.users.exists(r.reviewer_id))?;
    match slice.reviews.iter_mut().find(|x| same_vote(x)) {
        Some(row) => *row = r.clone(),
        None => slice.reviews.push(r.clone()),
    }
    Ok(())
}

fn insert_comment(state: &mut State, c: &Comment) -> Result<(), Error> {
    let slice = &state.changesets;
    unique(slice.comments.iter().any(|x| x.id == c.id), Record::Comment, "id")?;
    reference(slice.exists(c.changeset_id) && state.users.exists(c.author_id))?;
    state.changesets.comments.push(c.clone());
    Ok(())
}

fn update_comment(state: &mut State, c: &Comment) -> Result<(), Error> {
    let comments = &mut state.changesets.comments;
    let found = comments.iter_mut().find(|x| x.id == c.id && x.changeset_id == c.changeset_id);
    let row = cas(found, |x| x.version, c.version, CommentId::KIND)?;
    *row = c.clone();
    Ok(())
}

/// Applies one changeset mutation.
pub(crate) fn apply(state: &mut State, mutation: &ChangesetMutation) -> Result<(), Error> {
    match mutation {
        ChangesetMutation::InsertChangeset(cs) => insert_changeset(state, cs),
        ChangesetMutation::UpdateChangeset(cs) => update_changeset(state, cs),
        ChangesetMutation::InsertRevision(r) => insert_revision(state, r),
        ChangesetMutation::PutReview(r) => put_review(state, r),
        ChangesetMutation::InsertComment(c) => insert_comment(state, c),
        ChangesetMutation::UpdateComment(c) => update_comment(state, c),
    }
}
