//! Changeset comments (SPEC §2.3): threaded by changeset, optionally
//! anchored to a path and line of a revision; editing keeps earlier versions.
//!
//! Invariants: `edits` holds every earlier body, oldest first, with the time
//! it was replaced, and only grows; a body is 1..=[`MAX_COMMENT_BYTES`]
//! bytes after trimming; an anchor's revision exists when it is written.
//!
//! Serde here is persistence (comments are stored rows with a JSON anchor
//! and edit history, and appear in audit entries); requests are read by
//! `conman_api::dto::CreateCommentRequest` and converted.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::error::Error;
use crate::ids::{ChangesetId, CommentId, UserId};

/// Longest comment body, in bytes.
pub const MAX_COMMENT_BYTES: usize = 64 * 1024;

/// Where a comment points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentAnchor {
    /// A repository path.
    pub path: String,
    /// A line (from 1) of the file in that revision.
    pub line: Option<u32>,
    /// The revision (from 1).
    pub revision: u32,
}

/// An earlier body of an edited comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentEdit {
    /// The body before the edit.
    pub body: String,
    /// When it was replaced.
    pub replaced_at: Timestamp,
}

/// A comment on a changeset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// Identity.
    pub id: CommentId,
    /// The changeset.
    pub changeset_id: ChangesetId,
    /// Author.
    pub author_id: UserId,
    /// Current body.
    pub body: String,
    /// Optional anchor.
    pub anchor: Option<CommentAnchor>,
    /// Earlier bodies, oldest first.
    pub edits: Vec<CommentEdit>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last edit (or creation).
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// Trims and checks a comment body.
pub fn validate_body(body: &str) -> Result<String, Error> {
    let body = body.trim();
    if body.is_empty() {
        return Err(Error::invalid("body", "empty", "a comment needs a body"));
    }
    if body.len() > MAX_COMMENT_BYTES {
        return Err(Error::invalid("body", "too_long", format!("a comment is at most {MAX_COMMENT_BYTES} bytes")));
    }
    if body.contains('\0') {
        return Err(Error::invalid("body", "nul", "a comment may not contain NUL"));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_and_bounded() {
        assert_eq!(validate_body("  looks good \n").unwrap(), "looks good");
        assert!(validate_body(" \n\t").is_err());
        assert!(validate_body(&"x".repeat(MAX_COMMENT_BYTES + 1)).is_err());
        assert!(validate_body("a\0b").is_err());
        assert!(validate_body(&"x".repeat(MAX_COMMENT_BYTES)).is_ok());
    }
}
