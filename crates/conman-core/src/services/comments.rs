//! Changeset comments (SPEC §2.3): create, list, edit.
//!
//! Invariants: anyone who can read the app may comment; only a comment's
//! author edits it, and the replaced body is kept in `edits`; an anchor
//! names an existing revision and a valid repository path; a changeset of
//! another app is `not_found`.

use super::{Actor, AuditWhat, Conman};
use crate::domain::comment::{validate_body, Comment, CommentAnchor, CommentEdit};
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, CommentId};
use crate::ports::store::{ChangesetMutation, Page, PageRequest, UnitOfWork};
use crate::rbac::Capability;
use crate::validation::RepoPath;

/// A new comment (the wire form is `conman_api::dto::CreateCommentRequest`).
#[derive(Debug, Clone)]
pub struct NewComment {
    /// Text.
    pub body: String,
    /// Optional anchor.
    pub anchor: Option<CommentAnchor>,
}

impl Conman {
    /// Adds a comment to a changeset.
    pub async fn add_comment(
        &self,
        actor: &Actor,
        app_id: AppId,
        cs_id: ChangesetId,
        input: NewComment,
    ) -> Result<Comment, Error> {
        let body = validate_body(&input.body)?;
        let (scope, cs) = self.changeset_in_scope(actor, app_id, cs_id).await?;
        scope.require(Capability::Comment, None)?;
        let anchor = match input.anchor {
            Some(anchor) => {
                if cs.revision == 0 {
                    return Err(Error::invalid(
                        "anchor.revision",
                        "unknown_revision",
                        "an anchored comment needs a submitted revision; this changeset has none yet",
                    ));
                }
                if anchor.revision == 0 || anchor.revision > cs.revision {
                    return Err(Error::invalid(
                        "anchor.revision",
                        "unknown_revision",
                        format!("the changeset has revisions 1 to {}", cs.revision),
                    ));
                }
                if anchor.line == Some(0) {
                    return Err(Error::invalid("anchor.line", "out_of_range", "lines are numbered from 1"));
                }
                let path = RepoPath::parse(&anchor.path)?;
                Some(CommentAnchor { path: path.as_str().to_owned(), ..anchor })
            }
            None => None,
        };
        let now = self.now();
        let comment = Comment {
            id: self.new_id(),
            changeset_id: cs.id,
            author_id: actor.user.id,
            body,
            anchor,
            edits: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("comment", comment.id, "comment.created").after(&comment),
        );
        self.store().commit(UnitOfWork::new().record(ChangesetMutation::InsertComment(comment.clone()), audit)).await?;
        Ok(comment)
    }

    /// Comments of a changeset, oldest first.
    pub async fn list_comments(
        &self,
        actor: &Actor,
        app_id: AppId,
        cs_id: ChangesetId,
        page: PageRequest,
    ) -> Result<Page<Comment>, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, cs_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().list_comments(cs.id, page).await
    }

    /// Replaces a comment's body, keeping the earlier one (its author only).
    pub async fn edit_comment(
        &self,
        actor: &Actor,
        app_id: AppId,
        cs_id: ChangesetId,
        id: CommentId,
        body: &str,
    ) -> Result<Comment, Error> {
        let body = validate_body(body)?;
        let (scope, cs) = self.changeset_in_scope(actor, app_id, cs_id).await?;
        scope.require(Capability::Comment, None)?;
        let comment = self.store().comment(cs.id, id).await?.ok_or(Error::NotFound(CommentId::KIND))?;
        if comment.author_id != actor.user.id {
            return Err(Error::Forbidden("only its author may edit a comment".into()));
        }
        if comment.body == body {
            return Ok(comment);
        }
        let now = self.now();
        let mut edits = comment.edits.clone();
        edits.push(CommentEdit { body: comment.body.clone(), replaced_at: now });
        let updated = Comment { body, edits, updated_at: now, version: comment.version + 1, ..comment.clone() };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("comment", comment.id, "comment.edited").before(&comment).after(&updated),
        );
        self.store().commit(UnitOfWork::new().record(ChangesetMutation::UpdateComment(updated.clone()), audit)).await?;
        Ok(updated)
    }
}
