//! Mapping of libgit2 failures onto the core's one error type.
//!
//! Invariant: libgit2's text (which may name filesystem paths) only ever
//! travels inside [`Error::Internal`], which is shown to nobody but the log;
//! every other variant built in this crate has a fixed, path-free message.

use conman_core::ports::git::Signature;
use conman_core::Error;

/// Turns any libgit2 failure into a log-only internal error.
pub(crate) fn internal(err: git2::Error) -> Error {
    Error::internal(format_args!("git: {err}"))
}

/// `.or_internal()` on libgit2 results: the failure becomes [`Error::Internal`].
pub(crate) trait OrInternal<T> {
    /// Maps the libgit2 error to [`Error::Internal`].
    fn or_internal(self) -> Result<T, Error>;
}

impl<T> OrInternal<T> for Result<T, git2::Error> {
    fn or_internal(self) -> Result<T, Error> {
        self.map_err(internal)
    }
}

/// True when a ref update failed because someone else moved, created,
/// deleted or is currently locking the ref: the caller may re-read and retry.
pub(crate) fn is_lost_race(err: &git2::Error) -> bool {
    matches!(
        err.code(),
        git2::ErrorCode::Modified | git2::ErrorCode::Locked | git2::ErrorCode::Exists | git2::ErrorCode::NotFound
    )
}

/// True when libgit2 says "not found" (missing ref, path or merge base).
pub(crate) fn is_not_found(err: &git2::Error) -> bool {
    err.code() == git2::ErrorCode::NotFound
}

/// The answer when a ref did not hold the expected value.
pub(crate) fn ref_moved(name: &str) -> Error {
    Error::conflict(format!("ref {name} does not have the expected value"))
}

/// A libgit2 signature stamped now, or a validation error naming `author`.
pub(crate) fn signature(author: &Signature) -> Result<git2::Signature<'static>, Error> {
    git2::Signature::now(&author.name, &author.email)
        .map_err(|_| Error::invalid("author", "invalid", "author name or email is not acceptable to git"))
}
