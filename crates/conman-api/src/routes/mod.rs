//! HTTP handlers, one module per aggregate (the same names as the core's
//! service modules). Each handler: extract → one core call → wire type.

pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod changesets;
pub(crate) mod comments;
pub(crate) mod deployments;
pub(crate) mod diffs;
pub(crate) mod jobs;
pub(crate) mod me;
pub(crate) mod members;
pub(crate) mod profiles;
pub(crate) mod releases;
pub(crate) mod reviews;
pub(crate) mod system;
pub(crate) mod workspaces;

use std::sync::Arc;

use conman_core::services::Conman;

pub(crate) use axum::extract::State;

/// Shared state of every handler.
pub(crate) type St = State<Arc<Conman>>;
