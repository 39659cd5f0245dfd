//! The token port: opaque random bearer tokens. Only their SHA-256 is stored.

use sha2::{Digest, Sha256};

/// Generates opaque random tokens.
pub trait TokenGenerator: Send + Sync {
    /// A fresh token with at least 256 bits of entropy, URL-safe.
    fn new_token(&self) -> String;
}

/// Hex SHA-256 of a token, the only form in which tokens are stored.
/// Tokens have 256 bits of entropy, so a fast hash is the right tool here
/// (a slow password hash is for low-entropy secrets).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
