//! Extractors that turn every malformed input into the SPEC §7 envelope:
//! JSON bodies (syntax, unknown fields, wrong types → `validation_error`;
//! over the route's ceiling of [`crate::body`] → `payload_too_large`, decided
//! before the body is held), query strings, ids in paths
//! (malformed UUID → `validation_error`), the bearer token (→
//! `unauthorized`), and the request context used for audit.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use conman_core::domain::audit::RequestContext;
use conman_core::services::{Actor, Conman};
use conman_core::Error;
use serde::de::DeserializeOwned;

use crate::body::{read_limited, AUTH_BODY_BYTES, DEFAULT_BODY_BYTES, PROFILE_BODY_BYTES};
use crate::error::ApiError;
use crate::request_id::RequestId;

/// A JSON body of at most `LIMIT` bytes (see [`crate::body`]); rejections
/// become `validation_error` / `payload_too_large`.
pub(crate) struct ApiJson<T, const LIMIT: usize = DEFAULT_BODY_BYTES>(pub(crate) T);

/// A JSON body of at most `LIMIT` bytes that may be empty or `null` (then
/// `T::default()`).
pub(crate) struct OptionalJson<T, const LIMIT: usize = DEFAULT_BODY_BYTES>(pub(crate) T);

/// The body of an unauthenticated auth endpoint.
pub(crate) type AuthJson<T> = ApiJson<T, AUTH_BODY_BYTES>;

/// A runtime profile document.
pub(crate) type ProfileJson<T> = ApiJson<T, PROFILE_BODY_BYTES>;

fn check_content_type(req: &Request) -> Result<(), Error> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(Error::invalid("content-type", "not_json", "request body must be JSON (content-type: application/json)"))
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    crate::dto::parse_body(bytes)
}

/// Reads a JSON body of at most `limit` bytes from a whole request: for
/// handlers whose ceiling is known only after their other extractors ran
/// (file writes: the app's file size limit).
pub(crate) async fn json_body<T: DeserializeOwned>(req: Request, limit: usize) -> Result<T, ApiError> {
    check_content_type(&req)?;
    let (parts, body) = req.into_parts();
    let bytes = read_limited(&parts.headers, body, limit).await?;
    Ok(parse_json(&bytes)?)
}

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S> for ApiJson<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        Ok(ApiJson(json_body(req, LIMIT).await?))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default, const LIMIT: usize> FromRequest<S> for OptionalJson<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        if has_type {
            check_content_type(&req)?;
        }
        let (parts, body) = req.into_parts();
        let bytes = read_limited(&parts.headers, body, LIMIT).await?;
        // No body, or `null` (its documented schema is `null` or the object).
        if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        Ok(OptionalJson(parse_json(&bytes)?))
    }
}

/// A query string; rejections become `validation_error`.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(t)) => Ok(ApiQuery(t)),
            Err(rejection) => Err(ApiError(query_rejection(rejection))),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> Error {
    Error::Validation {
        message: format!(
            "invalid query string: {}",
            rejection.body_text().trim_start_matches("Failed to deserialize query string: ")
        ),
        details: Some(serde_json::json!({ "field": "query", "reason": "invalid_query" })),
    }
}

/// Parses an id from a path segment (`validation_error` when malformed).
pub(crate) fn path_id<T: std::str::FromStr<Err = Error>>(raw: &str) -> Result<T, ApiError> {
    raw.parse::<T>().map_err(ApiError)
}

/// Audit context of the request: id, client IP, user agent.
pub(crate) struct Ctx(pub(crate) RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Ctx(request_context(parts)))
    }
}

fn request_context(parts: &Parts) -> RequestContext {
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
    let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let user_agent =
        parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect());
    RequestContext { request_id, ip, user_agent }
}

/// The authenticated caller (`Authorization: Bearer <token>`).
pub(crate) struct Authed(pub(crate) Actor);

impl FromRequestParts<Arc<Conman>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, conman: &Arc<Conman>) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(ApiError(Error::Unauthorized))?;
        let actor = conman.authenticate(token, request_context(parts)).await?;
        Ok(Authed(actor))
    }
}
