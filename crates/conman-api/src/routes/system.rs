//! `/api/health`, `/api/metrics` and `/api/openapi.json` (the reference
//! that renders the document, `/api/docs`, is [`crate::docs`]).

use axum::response::IntoResponse;

use crate::dto::Health;
use crate::envelope::{ok, Data};

/// Liveness.
#[utoipa::path(get, path = "/api/health", tag = "system", responses((status = 200, body = crate::dto::Envelope<Health>)))]
pub(crate) async fn health() -> Data<Health> {
    ok(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

/// Prometheus metrics: jobs by type and state, the release queue depth per
/// app and deployments per environment and state (read from the store at
/// scrape time); the queue-wait, run-time, composition and deploy
/// histograms and the drift-refusal counter of this process.
pub(crate) async fn metrics(
    axum::extract::State(c): axum::extract::State<std::sync::Arc<conman_core::services::Conman>>,
) -> Result<impl IntoResponse, crate::error::ApiError> {
    let counts = crate::runtime::metrics::StoreCounts::read(&c).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, crate::runtime::metrics::CONTENT_TYPE)],
        crate::runtime::metrics::render(&counts),
    ))
}

/// The OpenAPI 3 document.
pub(crate) async fn openapi_json() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], crate::openapi::document_json())
}
