//! Default implementations of the pure ports: the system clock, UUIDv7 ids,
//! argon2id password hashing and OS-random tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use chrono::{SubsecRound, Utc};
use rand::RngCore;
use uuid::Uuid;

use super::{Clock, IdGenerator, PasswordHasher, TokenGenerator};
use crate::domain::Timestamp;
use crate::error::Error;

/// The wall clock, truncated to microseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now().trunc_subsecs(6)
    }
}

/// UUIDv7 ids from the system clock and OS randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_uuid(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// 32 random bytes from the OS, base64url without padding, prefixed `cm_`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandomTokens;

impl TokenGenerator for OsRandomTokens {
    fn new_token(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        format!("cm_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// Argon2id with configurable cost.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
}

impl Argon2Hasher {
    /// OWASP-recommended cost: 19 MiB, 2 iterations, 1 lane.
    pub fn recommended() -> Self {
        Argon2Hasher { params: Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params") }
    }

    /// Minimal cost, for tests and benchmarks only: never use in production.
    pub fn insecure_fast_for_tests() -> Self {
        Argon2Hasher { params: Params::new(256, 1, 1, None).expect("valid argon2 params") }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &str) -> Result<String, Error> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("argon2: {e}")))
    }

    fn verify(&self, password: &str, phc: &str) -> bool {
        // Parameters come from the PHC string, so old hashes keep verifying
        // after the configured cost changes.
        PasswordHash::new(phc).is_ok_and(|h| self.argon2().verify_password(password.as_bytes(), &h).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = Argon2Hasher::insecure_fast_for_tests();
        let phc = h.hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse battery", &phc));
        assert!(!h.verify("wrong horse battery", &phc));
        assert!(!h.verify("x", "not a phc string"));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let t = OsRandomTokens;
        let (a, b) = (t.new_token(), t.new_token());
        assert_ne!(a, b);
        assert!(a.len() >= 46);
    }

    #[test]
    fn clock_has_microsecond_precision() {
        let now = SystemClock.now();
        assert_eq!(now.timestamp_subsec_nanos() % 1000, 0);
    }
}
