//! Request ids and error rendering. Every response carries `x-request-id`:
//! the caller's when it is a sane token (1-128 of `[A-Za-z0-9._:-]`), else
//! a new UUIDv7. Error responses get their envelope here, because only
//! this layer knows the id.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{envelope, PendingError};

/// The request id of the current request, in request extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

const HEADER: &str = "x-request-id";

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Middleware: assigns the id, renders pending errors, sets the header.
pub(crate) async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Some(PendingError(error)) = response.extensions_mut().remove::<PendingError>() {
        if error.code() == conman_core::ErrorCode::Internal {
            tracing::error!(request_id = %id, %method, %path, cause = ?error, "internal error");
        }
        let status = response.status();
        let mut rendered = (status, axum::Json(envelope(&error, &id))).into_response();
        if let conman_core::Error::RateLimited { retry_after_secs } = error {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                rendered.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response = rendered;
    } else if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        // A wrong method answers 405 in the error envelope, with the `Allow`
        // header naming the methods that exist. SPEC §7 has no code of its
        // own for it: the route does not exist for this method, so the code
        // is `not_found` (decision 0009).
        let error = conman_core::Error::NotFound("route for this method");
        let mut r = (StatusCode::METHOD_NOT_ALLOWED, axum::Json(envelope(&error, &id))).into_response();
        if let Some(allow) = response.headers().get(header::ALLOW) {
            r.headers_mut().insert(header::ALLOW, allow.clone());
        }
        response = r;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

/// Fallback for unmatched routes.
pub(crate) async fn not_found() -> Response {
    let mut r = StatusCode::NOT_FOUND.into_response();
    r.extensions_mut().insert(PendingError(conman_core::Error::NotFound("route")));
    *r.body_mut() = Body::empty();
    r
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn only_sane_ids_are_echoed() {
        assert!(acceptable("abc-123"));
        assert!(acceptable("0190a6f2-7d4e-7b3c-9d8a-1b2c3d4e5f60"));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable(&"x".repeat(129)));
        assert!(!acceptable("<script>"));
    }
}
