//! Conman's HTTP API (SPEC §7) on axum, and the composition of adapters the
//! binaries share.
//!
//! Invariant: handlers are thin. They parse the wire format, call one
//! `conman_core::services::Conman` method with the authenticated actor, and
//! convert the answer to a wire type from [`dto`]. No rule lives here; the
//! wire contract (every type in [`dto`], frozen in
//! `docs/contracts/openapi.json`) does.
#![deny(missing_docs)]

mod body;
pub mod compose;
pub mod compute;
pub mod config;
mod docs;
pub mod dto;
mod envelope;
mod error;
mod extract;
pub mod launch;
pub mod openapi;
mod request_id;
mod routes;
pub mod runtime;
mod server;
mod wire_json;

pub use server::{router, serve, undocumented_routes};
