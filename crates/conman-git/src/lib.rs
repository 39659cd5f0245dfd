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
//! - one cached [`git2::Repository`] per app, behind a mutex that also
//!   serialises this process's mutations of that app; other processes are
//!   kept honest by the ref compare-and-swap alone;
//! - errors leave as [`conman_core::Error`]; only `Internal` (log-only)
//!   carries libgit2's text or filesystem paths.
//!
//! Module map: `repos` (handle cache, paths), `create` (init and import),
//! `refs` (CAS updates, ref transactions), `read`, `history` (merge base,
//! ancestry), `diff` (changed files between two commits), `tree_edit`
//! (in-memory tree editing), `write`, `squash`, `sync`, `port` (the trait
//! impl), `errors` (libgit2 → core errors).
#![deny(missing_docs)]

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
mod tree_edit;
mod write;

pub use repos::GitRepos;
