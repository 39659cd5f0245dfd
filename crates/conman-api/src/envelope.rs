//! Success envelopes of SPEC §7: `{"data": ...}` and, for lists,
//! `{"data": [...], "pagination": {"page", "limit", "total"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conman_core::ports::store::{Page, PageRequest};
use serde::Serialize;

use crate::dto::Pagination;

/// `{"data": T}` with a status.
pub(crate) struct Data<T>(pub(crate) StatusCode, pub(crate) T);

/// `200 {"data": T}`.
pub(crate) fn ok<T>(t: T) -> Data<T> {
    Data(StatusCode::OK, t)
}

/// `201 {"data": T}`.
pub(crate) fn created<T>(t: T) -> Data<T> {
    Data(StatusCode::CREATED, t)
}

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "data": self.1 }))).into_response()
    }
}

/// A list page with its pagination block.
pub(crate) struct Paged<T>(pub(crate) Vec<T>, pub(crate) Pagination);

/// Builds a page answer from a store page.
pub(crate) fn paged<S, T>(page: Page<S>, request: PageRequest, f: impl FnMut(S) -> T) -> Paged<T> {
    let total = page.total;
    Paged(page.items.into_iter().map(f).collect(), Pagination { page: request.page, limit: request.limit, total })
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        axum::Json(serde_json::json!({ "data": self.0, "pagination": self.1 })).into_response()
    }
}
