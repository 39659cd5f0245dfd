//! Placeholder replaced by the semantic diff implementation.
