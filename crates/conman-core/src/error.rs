//! The one error type of the core. Each variant maps to exactly one error code
//! of SPEC §7, so adapters and the HTTP layer never invent their own.
//!
//! Invariant: a message never carries secrets or internal paths; the
//! `Internal` variant keeps its cause for logs only and shows a fixed text.

use serde_json::Value;

/// Result alias used across the core and by adapters.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The wire codes of SPEC §7, one per [`Error`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `validation_error` (400)
    Validation,
    /// `unauthorized` (401)
    Unauthorized,
    /// `forbidden` (403)
    Forbidden,
    /// `not_found` (404)
    NotFound,
    /// `conflict` (409)
    Conflict,
    /// `invalid_transition` (409)
    InvalidTransition,
    /// `payload_too_large` (413)
    PayloadTooLarge,
    /// `rate_limited` (429)
    RateLimited,
    /// `internal` (500)
    Internal,
}

impl ErrorCode {
    /// The snake_case code sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Validation => "validation_error",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status code of SPEC §7.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Validation => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::InvalidTransition => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
        }
    }

    /// Every code, for exhaustive tests and documentation.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::Validation,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::InvalidTransition,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
    ];
}

/// Every way a use case can refuse or fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Input broke a validation rule; `details` says which field and why.
    #[error("{message}")]
    Validation {
        /// Human-readable reason.
        message: String,
        /// Machine-readable details (field, reason).
        details: Option<Value>,
    },
    /// No valid credential was presented.
    #[error("invalid or missing credentials")]
    Unauthorized,
    /// The actor's role does not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// The entity does not exist in the caller's scope.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (duplicate, lost race, merge conflict).
    #[error("{message}")]
    Conflict {
        /// Human-readable reason.
        message: String,
        /// Machine-readable details (e.g. conflicting paths).
        details: Option<Value>,
    },
    /// A state machine refused the event.
    #[error("cannot {event} a {entity} that is {from}")]
    InvalidTransition {
        /// Entity kind, e.g. `changeset`.
        entity: &'static str,
        /// Current state.
        from: String,
        /// Refused event.
        event: String,
    },
    /// Content larger than the configured limit.
    #[error("payload larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Too many attempts; retry after the given delay.
    #[error("too many attempts, retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next attempt may succeed.
        retry_after_secs: u64,
    },
    /// An adapter failed; the cause is for logs only.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    /// The SPEC §7 code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Validation { .. } => ErrorCode::Validation,
            Error::Unauthorized => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            Error::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Machine-readable details for the error envelope, when there are any.
    pub fn details(&self) -> Option<Value> {
        match self {
            Error::Validation { details, .. } | Error::Conflict { details, .. } => details.clone(),
            Error::InvalidTransition { entity, from, event } => Some(serde_json::json!({
                "entity": entity, "from": from, "event": event
            })),
            Error::PayloadTooLarge { limit } => Some(serde_json::json!({ "limit_bytes": limit })),
            Error::RateLimited { retry_after_secs } => {
                Some(serde_json::json!({ "retry_after_secs": retry_after_secs }))
            }
            _ => None,
        }
    }

    /// A validation error about one field.
    pub fn invalid(field: &str, reason: &str, message: impl Into<String>) -> Self {
        Error::Validation {
            message: message.into(),
            details: Some(serde_json::json!({ "field": field, "reason": reason })),
        }
    }

    /// True for the `conflict` of a compare-and-set that lost to a
    /// concurrent update (`details.reason = "stale_version"`).
    pub fn is_stale_version(&self) -> bool {
        matches!(self, Error::Conflict { details: Some(d), .. } if d["reason"] == "stale_version")
    }

    /// True for a store's conflict saying a cancel was requested for the
    /// job being finished ([`ConflictReason::CancelRequested`]).
    ///
    /// [`ConflictReason::CancelRequested`]: crate::ports::store::ConflictReason::CancelRequested
    pub fn is_cancel_requested(&self) -> bool {
        matches!(self, Error::Conflict { details: Some(d), .. } if d["reason"] == "cancel_requested")
    }

    /// A plain conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict { message: message.into(), details: None }
    }

    /// An adapter failure; `cause` goes to logs, never to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Error::Internal(cause.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_spec_status() {
        let expected = [
            ("validation_error", 400),
            ("unauthorized", 401),
            ("forbidden", 403),
            ("not_found", 404),
            ("conflict", 409),
            ("invalid_transition", 409),
            ("payload_too_large", 413),
            ("rate_limited", 429),
            ("internal", 500),
        ];
        let actual: Vec<_> = ErrorCode::ALL.iter().map(|c| (c.as_str(), c.http_status())).collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn internal_errors_show_a_fixed_message() {
        let err = Error::internal("open /var/lib/conman/secret.db: permission denied");
        assert_eq!(err.to_string(), "internal error");
        assert_eq!(err.code(), ErrorCode::Internal);
    }

    #[test]
    fn each_variant_maps_to_its_own_code() {
        let samples = [
            Error::invalid("path", "empty", "path is empty"),
            Error::Unauthorized,
            Error::Forbidden("no".into()),
            Error::NotFound("app"),
            Error::conflict("taken"),
            Error::InvalidTransition { entity: "job", from: "queued".into(), event: "finish".into() },
            Error::PayloadTooLarge { limit: 1 },
            Error::RateLimited { retry_after_secs: 1 },
            Error::internal("x"),
        ];
        let codes: Vec<_> = samples.iter().map(Error::code).collect();
        assert_eq!(codes, ErrorCode::ALL.to_vec());
    }
}
