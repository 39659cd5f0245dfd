//! Password policy: at least [`MIN_PASSWORD_LEN`] characters, at most 1024 bytes.

use crate::error::Error;

/// Minimum password length in characters.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Refuses passwords outside the policy.
pub fn validate_password(password: &str) -> Result<(), Error> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid("password", "too_short", "password must have at least 12 characters"));
    }
    if password.len() > 1024 {
        return Err(Error::invalid("password", "too_long", "password must be at most 1024 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_characters_is_the_minimum() {
        assert!(validate_password("abcdefghijk").is_err());
        assert!(validate_password("abcdefghijkl").is_ok());
        assert!(validate_password("ééééééééééé").is_err(), "counts characters, not bytes");
        assert!(validate_password(&"x".repeat(1025)).is_err());
    }
}
