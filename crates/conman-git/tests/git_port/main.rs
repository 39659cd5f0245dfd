//! The git adapter against real bare repositories in temporary directories:
//! every `GitPort` method, its refusals, its compare-and-swap behaviour
//! under concurrent writers (in one process and across two handle caches),
//! and reads that run beside other reads and writes yet see every write
//! that returned before them.

mod compose;
mod concurrency;
mod diff;
mod export;
mod files;
mod import;
mod parallel_reads;
mod refs;
mod squash;
mod support;
mod sync;
