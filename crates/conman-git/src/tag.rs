//! Annotated tags: the tag object of a release, written without its ref.
//!
//! Invariant: only the tag object is written (its ref moves later, through
//! an intent, together with the branch it marks); the same request gives
//! the same tag id (the tagger time is the caller's).

use conman_core::ports::composition::TagRequest;
use conman_core::ports::git::Sha;
use conman_core::Error;
use git2::{Repository, Signature, Time};

use crate::errors::OrInternal;
use crate::refs::{find_commit, sha_of};

/// Writes the tag object of `request` (see [`TagRequest`]).
pub(crate) fn write_tag(repo: &Repository, request: &TagRequest) -> Result<Sha, Error> {
    let target = find_commit(repo, &request.target)?;
    let tagger = Signature::new(&request.tagger.name, &request.tagger.email, &Time::new(request.time, 0))
        .map_err(|_| Error::invalid("tagger", "invalid", "tagger name or email is not acceptable to git"))?;
    let id = repo.tag_annotation_create(&request.name, target.as_object(), &tagger, &request.message).or_internal()?;
    Ok(sha_of(id))
}
