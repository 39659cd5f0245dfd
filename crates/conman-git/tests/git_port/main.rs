//! The git adapter against real bare repositories in temporary directories:
//! every `GitPort` method, its refusals, and its compare-and-swap behaviour
//! under concurrent writers (in one process and across two handle caches).

mod concurrency;
mod diff;
mod export;
mod files;
mod import;
mod refs;
mod squash;
mod support;
mod sync;
