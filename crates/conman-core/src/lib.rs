//! Conman's pure domain: entities, state machines, role-based access, input
//! validation, the port traits adapters implement, and the use-case services
//! that enforce every rule.
//!
//! Invariant: this crate performs no I/O of its own. It knows nothing about
//! SQL, libgit2, HTTP or the filesystem; everything outside the process is
//! reached through a trait in [`ports`]. A rule of the product lives here and
//! only here, so the HTTP API and the CLI behave the same.
#![deny(missing_docs)]

pub mod diff;
pub mod domain;
pub mod error;
pub mod ids;
pub mod ports;
pub mod rbac;
pub mod services;
pub mod validation;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(any(test, feature = "conformance"))]
pub mod reference_store;

pub use error::{Error, ErrorCode, Result};
