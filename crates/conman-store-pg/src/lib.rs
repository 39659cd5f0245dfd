//! The Postgres store (sqlx) for installations that outgrow one machine.
//!
//! Placeholder: the Postgres issue builds it. It will implement
//! `conman_core::ports::Store`, run the same conformance suite as the
//! SQLite store, and be selected by a `postgres://` `CONMAN_DATABASE_URL`.
//! Until then `conman-server` refuses such a URL at start with a clear
//! message rather than pretending to serve it.
#![deny(missing_docs)]

/// The URL schemes this store will accept.
pub const URL_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];
