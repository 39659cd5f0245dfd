//! The wire contract: request and response types of the HTTP API, with
//! their OpenAPI schemas. Core types are converted into these, so the
//! frozen contract (`docs/contracts/openapi.json`) changes only when one of
//! these types does.
//!
//! Requests are read here and nowhere else (decision 0009): each request
//! type refuses unknown fields (`deny_unknown_fields`) at every level,
//! decodes base64 content, and converts into the core's plain input value
//! (`From`, or a method returning the core's `Error` where the conversion
//! can refuse, so the error envelope is the core's). The core's inputs have
//! no serde. The CLI reads its JSON files with the same types and the same
//! reader, [`parse_body`], so a document the API refuses the CLI refuses
//! with the same message.

mod apps;
mod audit;
mod auth;
mod changesets;
mod de;
mod deployments;
mod jobs;
mod profiles;
mod releases;
mod schemas;
mod workspaces;

pub use apps::*;
pub use audit::*;
pub use auth::*;
pub use changesets::*;
pub use de::parse_body;
pub use deployments::*;
pub use jobs::*;
pub use profiles::*;
pub use releases::*;
pub use workspaces::*;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Pagination block of list answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pagination {
    /// Page number, from 1.
    pub page: u32,
    /// Items per page (max 100).
    pub limit: u32,
    /// Total items across pages.
    pub total: u64,
}

/// `page` and `limit` query parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page number, from 1 (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1-100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The error envelope of every failure.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// Body of the error envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `validation_error`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `invalid_transition`, `payload_too_large`, `rate_limited` or `internal`.
    pub code: String,
    /// Human-readable message (never secrets or internal paths).
    pub message: String,
    /// The request's `x-request-id`.
    pub request_id: String,
    /// Machine-readable details; which keys appear depends on `code`.
    #[schema(schema_with = crate::dto::schemas::error_details)]
    pub details: Option<serde_json::Value>,
}

/// `{"data": T}` wrapper, for documentation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Envelope<T: ToSchema> {
    /// The answer.
    pub data: T,
}

/// `{"data": [T], "pagination": ...}` wrapper, for documentation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PagedEnvelope<T: ToSchema> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Paging.
    pub pagination: Pagination,
}

/// Answer of operations that return nothing but success.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Done {
    /// Always true.
    pub ok: bool,
}

impl Done {
    /// `{"ok": true}`.
    pub fn ok() -> Self {
        Done { ok: true }
    }
}

/// `GET /api/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Server version.
    pub version: String,
}
