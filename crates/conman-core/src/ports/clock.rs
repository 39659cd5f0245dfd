//! The clock port. Implementations return UTC truncated to microseconds so
//! timestamps round-trip exactly through every store.

use crate::domain::Timestamp;

/// Tells the time.
pub trait Clock: Send + Sync {
    /// Now, UTC, microsecond precision.
    fn now(&self) -> Timestamp;
}
