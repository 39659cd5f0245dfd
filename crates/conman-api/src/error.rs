//! The API error: a core [`Error`] on its way to the SPEC §7 envelope
//! `{"error": {"code", "message", "request_id", "details"?}}`.
//!
//! Handlers and extractors return [`ApiError`]; its response carries the
//! error in an extension, and [`crate::request_id`]'s middleware — which
//! knows the request id — writes the envelope. Internal causes are logged
//! there and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conman_core::Error;

/// An error answered to the client.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// Marks a response as an error still to be rendered by the request-id layer.
#[derive(Debug, Clone)]
pub(crate) struct PendingError(pub(crate) Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = status.into_response();
        response.extensions_mut().insert(PendingError(self.0));
        response
    }
}

/// The envelope body of `error` for `request_id`.
pub(crate) fn envelope(error: &Error, request_id: &str) -> serde_json::Value {
    let mut body = serde_json::json!({
        "code": error.code().as_str(),
        "message": error.to_string(),
        "request_id": request_id,
    });
    if let Some(details) = error.details() {
        body["details"] = details;
    }
    serde_json::json!({ "error": body })
}

/// Result of a handler.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
