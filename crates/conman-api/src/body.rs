//! Request body ceilings (decision 0014), enforced before a body is held.
//!
//! Invariants:
//! - a declared `Content-Length` over the route's ceiling is refused
//!   without reading a byte of the body;
//! - a body without one (chunked) is read frame by frame and refused as
//!   soon as the bytes read pass the ceiling, so at most ceiling + one
//!   frame is ever held;
//! - either way the answer is `413 payload_too_large` with
//!   `details.limit_bytes` = the route's ceiling, in the SPEC §7 envelope.
//!
//! Ceilings by route class:
//! - unauthenticated auth bodies (login, password reset, invite acceptance):
//!   [`AUTH_BODY_BYTES`];
//! - runtime profile documents (create, patch, changeset overrides):
//!   [`PROFILE_BODY_BYTES`];
//! - file-content writes: the app's `file_size_limit_bytes` in base64 plus
//!   [`FILE_WRITE_OVERHEAD`] (a batch: plus [`BATCH_OVERHEAD`]); the caller
//!   is authenticated and the app found before the body is read;
//! - every other body: [`DEFAULT_BODY_BYTES`].

use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::http::{header, HeaderMap};
use conman_core::ids::AppId;
use conman_core::services::{Actor, Conman};
use conman_core::validation::{MAX_BATCH_OPS, MAX_PATH_BYTES};
use conman_core::Error;

/// Bodies of the unauthenticated auth endpoints. The largest legitimate
/// one is an invite acceptance: a token, a display name and a password of
/// at most 1024 bytes, which JSON escapes can grow to 6 KiB.
pub(crate) const AUTH_BODY_BYTES: usize = 16 * 1024;

/// Every body that is neither auth, profile nor file content. The largest
/// legitimate ones are a comment or a changeset description (64 KiB of
/// text each, up to 6× that when JSON-escaped) with their other fields.
pub(crate) const DEFAULT_BODY_BYTES: usize = 512 * 1024;

/// Runtime profile documents: env vars, secrets, database and lifecycle
/// blocks, or a changeset's overrides. The core caps each value (32-64 KiB)
/// and the counts (1000 vars, 500 secrets); this caps the document as a
/// whole — a profile over 4 MiB is refused at the wire (decision 0014).
pub(crate) const PROFILE_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Room beside the base64 content of one file write: the path (at most
/// 4096 bytes, up to 6× when escaped), the message (at most 10,000 bytes,
/// up to 6× when escaped) and the JSON punctuation.
pub(crate) const FILE_WRITE_OVERHEAD: usize = 128 * 1024;

/// Room beside the content of a batch: every operation's paths (a move has
/// two) and punctuation, for the most operations a batch may carry.
pub(crate) const BATCH_OVERHEAD: usize = FILE_WRITE_OVERHEAD + MAX_BATCH_OPS * (2 * MAX_PATH_BYTES + 64);

/// Length of the standard (padded) base64 encoding of `bytes` bytes.
fn base64_len(bytes: u64) -> u64 {
    bytes.div_ceil(3).saturating_mul(4)
}

/// Ceiling of a file-content body for an app whose files may hold
/// `file_size_limit_bytes`: the content in base64 and `overhead`. A batch
/// carries at most one file limit of content in total.
pub(crate) fn file_body_limit(file_size_limit_bytes: u64, overhead: usize) -> usize {
    usize::try_from(base64_len(file_size_limit_bytes)).unwrap_or(usize::MAX).saturating_add(overhead)
}

/// Ceiling of a file-content body in `app_id` for `actor`: authenticates
/// nothing itself (the caller is already an actor) but finds the app as
/// the actor sees it, so a body is never read for an app the caller cannot
/// see (`not_found` first).
pub(crate) async fn file_write_limit(
    conman: &Conman,
    actor: &Actor,
    app_id: AppId,
    overhead: usize,
) -> Result<usize, Error> {
    let scope = conman.get_app(actor, app_id).await?;
    Ok(file_body_limit(scope.app.settings.file_size_limit_bytes, overhead))
}

/// The declared `Content-Length`, when there is a readable one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn too_large(limit: usize) -> Error {
    Error::PayloadTooLarge { limit: limit as u64 }
}

/// Reads `body` whole if it is at most `limit` bytes (see the module doc).
pub(crate) async fn read_limited(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Bytes, Error> {
    if declared_length(headers).is_some_and(|declared| declared > limit as u64) {
        return Err(too_large(limit));
    }
    let unreadable = || Error::invalid("body", "unreadable_body", "cannot read the request body");
    let capacity = declared_length(headers).map_or(0, |n| n as usize);
    let mut buf = Vec::with_capacity(capacity);
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|_| unreadable())?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_length_is_four_per_started_triple() {
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(4), 8);
        assert_eq!(base64_len(1024), 1368);
    }

    #[test]
    fn a_file_body_fits_its_content_in_base64_and_the_overhead() {
        assert_eq!(file_body_limit(1024, FILE_WRITE_OVERHEAD), 1368 + FILE_WRITE_OVERHEAD);
        assert!(file_body_limit(64 * 1024 * 1024, BATCH_OVERHEAD) < 100 * 1024 * 1024);
    }

    fn headers(length: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(l) = length {
            h.insert(header::CONTENT_LENGTH, l.parse().expect("header value"));
        }
        h
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_read_and_one_byte_more_is_refused() {
        let exact = read_limited(&headers(None), Body::from(vec![b'x'; 10]), 10).await.expect("at the limit");
        assert_eq!(exact.len(), 10);
        let over = read_limited(&headers(None), Body::from(vec![b'x'; 11]), 10).await;
        assert!(matches!(over, Err(Error::PayloadTooLarge { limit: 10 })), "{over:?}");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_from_the_header_alone() {
        // The body itself is empty: reading it would have succeeded.
        let r = read_limited(&headers(Some("11")), Body::empty(), 10).await;
        assert!(matches!(r, Err(Error::PayloadTooLarge { limit: 10 })), "{r:?}");
        let ok =
            read_limited(&headers(Some("10")), Body::from(vec![b'x'; 10]), 10).await.expect("declared at the limit");
        assert_eq!(ok.len(), 10);
    }
}
