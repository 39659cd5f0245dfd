//! Runs the shared store conformance suite (`conman_core::conformance`)
//! against Postgres, each test in a fresh schema of the database named by
//! `CONMAN_TEST_DATABASE_URL` (dropped when the test ends).
//!
//! Without that variable each test prints "skipped: CONMAN_TEST_DATABASE_URL
//! not set" and passes: the fixture expression below `return`s from the
//! generated test function before any case runs.

mod common;

conman_core::store_conformance_tests!({
    match crate::common::fresh_store().await {
        Some(fixture) => std::future::ready(fixture),
        None => return,
    }
});
