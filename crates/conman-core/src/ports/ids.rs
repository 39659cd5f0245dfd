//! The id port: UUIDv7 generation, injectable for deterministic tests.

use uuid::Uuid;

/// Generates entity ids.
pub trait IdGenerator: Send + Sync {
    /// A fresh UUIDv7.
    fn new_uuid(&self) -> Uuid;
}
