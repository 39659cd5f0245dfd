//! Conman's git adapter: the [`GitPort`](conman_core::ports::GitPort) on
//! libgit2 (SPEC §5).
//!
//! One bare repository per app at `<root>/<app_id>.git`. Nothing is ever
//! checked out: commits are built from objects in memory, merges are
//! computed on trees, and every ref update is a compare-and-swap against the
//! value the operation started from.
//!
//! Invariants:
//! - all libgit2 work runs on blocking threads; a `git2` handle never
//!   crosses an `.await`;
//! - per app, one writer [`git2::Repository`] behind a lock that serialises
//!   this process's mutations of that app (and guards nothing else), and a
//!   small pool of reader handles: reads, diffs, ancestry questions and
//!   exports never wait for a writer or for each other; a handle is used by
//!   one thread at a time; a read that starts after a write returned sees
//!   it. Other processes are kept honest by the ref compare-and-swap alone;
//! - errors leave as [`conman_core::Error`]; only `Internal` (log-only)
//!   carries libgit2's text or filesystem paths.
//!
//! Module map: `repos` (writer lock, reader pool, paths), `create` (init and import),
//! `refs` (CAS updates, ref transactions), `read`, `history` (merge base,
//! ancestry), `diff` (changed files between two commits), `tree_edit`
//! (in-memory tree editing), `write`, `squash`, `sync`, `compose` (the
//! release composer and the queue check, on trees in a mempack), `port`
//! (the trait impl), `errors` (libgit2 → core errors).
#![deny(missing_docs)]

mod compose;
mod create;
mod diff;
mod errors;
mod export;
mod history;
mod port;
mod read;
mod refs;
mod repos;
mod squash;
mod sync;
mod tag;
mod tree_edit;
mod write;

pub use repos::GitRepos;
