//! The password-hashing port (argon2id by default, see [`super::system`]).

use crate::error::Error;

/// Hashes and verifies passwords.
pub trait PasswordHasher: Send + Sync {
    /// A PHC string for `password` with a fresh salt.
    fn hash(&self, password: &str) -> Result<String, Error>;
    /// True when `password` matches `phc`.
    fn verify(&self, password: &str, phc: &str) -> bool;
}
