//! Port: envelope encryption of runtime-profile secrets (SPEC §2.6, §9).
//!
//! A secret value is encrypted with a fresh data key, and the data key is
//! wrapped by the installation's master key (`CONMAN_SECRETS_MASTER_KEY` or
//! the generated `master.key`; the binaries load it, the core never reads
//! files or the environment). [`SecretCipher`] is the port; the default
//! implementation is [`EnvelopeCipher`](super::envelope::EnvelopeCipher).
//!
//! Invariants:
//! - A [`SealedSecret`] opens only with the [`SecretBinding`] (app, profile,
//!   key name) it was sealed with, so ciphertexts cannot be swapped between
//!   records. [`SecretBinding::associated_data`] is versioned and
//!   length-prefixed, so no two bindings encode alike.
//! - A failed open is always the same clear [`Error::Internal`] reason
//!   (see [`undecryptable`]): it names the key, never a key byte, a
//!   plaintext byte or which check failed; it is never a panic and never
//!   garbage plaintext.
//! - Plaintexts and data keys live only in zeroizing buffers
//!   ([`SecretBytes`], [`DataKey`]) whose `Debug`/`Display` print
//!   `[redacted]`.
//! - [`SecretCipher::key_id`] is a non-secret fingerprint of the master key;
//!   a record remembers the id of the key that wrapped it, so a wrong master
//!   key is detected at start ([`check_master_key`]) instead of serving
//!   undecryptable secrets.
//! - Rotation ([`SecretCipher::rewrap`]) re-wraps only the data key; the value
//!   nonce and ciphertext are untouched, and the old key cannot open the
//!   rewrapped record.
//!
//! Serde here is persistence: a [`SealedSecret`] is stored as JSON with its
//! byte fields in base64 (one of the core's three uses of `base64`, with
//! the job-log mask's encoded forms of a secret and the token generator).

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ids::{AppId, RuntimeProfileId};

/// The only [`SealedSecret::version`] this build writes and reads.
pub const SEALED_FORMAT_VERSION: u8 = 1;

/// Length of a data key in bytes (256 bits).
pub const DATA_KEY_LEN: usize = 32;

/// Label that starts every [`SecretBinding::associated_data`] (format v1).
const BINDING_LABEL: &[u8] = b"conman/secret-binding/v1\0";

/// What a secret belongs to: the associated data every ciphertext of the
/// secret is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretBinding {
    /// The app owning the profile.
    pub app_id: AppId,
    /// The runtime profile holding the secret.
    pub profile_id: RuntimeProfileId,
    /// The secret's key name (not secret itself, e.g. `DATABASE_PASSWORD`).
    pub key_name: String,
}

impl SecretBinding {
    /// A binding of one secret of one profile.
    pub fn new(app_id: AppId, profile_id: RuntimeProfileId, key_name: impl Into<String>) -> Self {
        SecretBinding { app_id, profile_id, key_name: key_name.into() }
    }

    /// The canonical associated data: the label `conman/secret-binding/v1`
    /// and a NUL, the 16 bytes of the app UUID, the 16 bytes of the profile
    /// UUID, the key name's length as a big-endian `u64`, then the key name's
    /// UTF-8 bytes. Fixed widths and the length prefix make the encoding
    /// injective: `("a", "bc")` and `("ab", "c")` never collide.
    pub fn associated_data(&self) -> Vec<u8> {
        let name = self.key_name.as_bytes();
        let mut out = Vec::with_capacity(BINDING_LABEL.len() + 16 + 16 + 8 + name.len());
        out.extend_from_slice(BINDING_LABEL);
        out.extend_from_slice(self.app_id.as_uuid().as_bytes());
        out.extend_from_slice(self.profile_id.as_uuid().as_bytes());
        out.extend_from_slice(&(name.len() as u64).to_be_bytes());
        out.extend_from_slice(name);
        out
    }
}

/// The error of every failed open or unwrap: wrong master key, wrong binding,
/// or a stored field tampered with or truncated. It names the key only.
pub fn undecryptable(binding: &SecretBinding) -> Error {
    Error::internal(format!(
        "the secret {:?} could not be decrypted: wrong master key or tampered ciphertext",
        binding.key_name
    ))
}

/// A sealed secret as stores keep it. Nothing in it is secret; byte fields
/// serialize as standard base64 strings.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Format version, [`SEALED_FORMAT_VERSION`].
    pub version: u8,
    /// [`SecretCipher::key_id`] of the master key that wrapped the data key.
    pub key_id: String,
    /// Nonce of the data-key wrapping.
    #[serde(with = "b64")]
    pub wrap_nonce: Vec<u8>,
    /// The data key encrypted by the master key (with its tag).
    #[serde(with = "b64")]
    pub wrapped_key: Vec<u8>,
    /// Nonce of the value encryption.
    #[serde(with = "b64")]
    pub value_nonce: Vec<u8>,
    /// The value encrypted by the data key (with its tag).
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("version", &self.version)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// The new data-key fields of a record after wrapping by a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    /// Id of the wrapping master key.
    pub key_id: String,
    /// Nonce of the wrapping.
    pub wrap_nonce: Vec<u8>,
    /// The wrapped data key (with its tag).
    pub wrapped_key: Vec<u8>,
}

/// A decrypted secret value. Zeroized on drop; `Debug` and `Display` print
/// `[redacted]`. Read it with [`SecretBytes::expose`] at the last moment.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of a zeroizing buffer.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        SecretBytes(bytes)
    }

    /// The plaintext bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The plaintext as UTF-8 text; the error never shows the bytes.
    pub fn expose_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.0).map_err(|_| Error::internal("a decrypted secret is not UTF-8 text"))
    }

    /// Length in bytes (not secret: the ciphertext shows it too).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A 256-bit data key, zeroized on drop, `Debug` redacted. Exposed to
/// implementations of [`SecretCipher`] so [`SecretCipher::rewrap`] can move a
/// data key between two master keys of any implementation.
pub struct DataKey(Zeroizing<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        DataKey(key)
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: Zeroizing<[u8; DATA_KEY_LEN]>) -> Self {
        DataKey(bytes)
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// Envelope encryption under one master key.
pub trait SecretCipher: Send + Sync {
    /// Non-secret fingerprint of the master key (16 hex characters).
    fn key_id(&self) -> &str;

    /// Encrypts `plaintext` with a fresh data key bound to `binding`, and
    /// wraps the data key with the master key.
    fn seal(&self, plaintext: &[u8], binding: &SecretBinding) -> Result<SealedSecret>;

    /// Decrypts a record sealed for `binding`; any mismatch or tamper is
    /// [`undecryptable`].
    fn open(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SecretBytes>;

    /// Wraps a data key with this master key for `binding`.
    fn wrap_data_key(&self, key: &DataKey, binding: &SecretBinding) -> Result<WrappedDataKey>;

    /// Unwraps a record's data key with this master key; [`undecryptable`]
    /// when the record was wrapped by another key or tampered with.
    fn unwrap_data_key(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<DataKey>;

    /// Re-wraps a record's data key from this master key to `to`; the value
    /// nonce and ciphertext are unchanged (a tampered value is still refused
    /// at open). A record already wrapped by `to` is returned as it is, so
    /// an interrupted rotation can simply run again.
    fn rewrap(&self, sealed: &SealedSecret, binding: &SecretBinding, to: &dyn SecretCipher) -> Result<SealedSecret> {
        if sealed.key_id == to.key_id() {
            return Ok(sealed.clone());
        }
        let key = self.unwrap_data_key(sealed, binding)?;
        let wrapped = to.wrap_data_key(&key, binding)?;
        Ok(SealedSecret {
            key_id: wrapped.key_id,
            wrap_nonce: wrapped.wrap_nonce,
            wrapped_key: wrapped.wrapped_key,
            ..sealed.clone()
        })
    }
}

/// The start-up check: refuses (with a clear message) a master key whose id
/// differs from the one recorded with the stored secrets; `None` means no
/// secret is stored yet.
pub fn check_master_key(cipher: &dyn SecretCipher, stored_key_id: Option<&str>) -> Result<()> {
    match stored_key_id {
        Some(stored) if stored != cipher.key_id() => Err(Error::conflict(format!(
            "the secrets master key (id {}) is not the key that sealed the stored secrets (id {stored}): \
             start with the right CONMAN_SECRETS_MASTER_KEY or master.key file; \
             refusing to serve secrets that cannot be decrypted",
            cipher.key_id()
        ))),
        _ => Ok(()),
    }
}

/// Serde adapter: `Vec<u8>` as a standard base64 string.
mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::error::ErrorCode;

    fn binding(app: u128, profile: u128, key: &str) -> SecretBinding {
        SecretBinding::new(AppId(Uuid::from_u128(app)), RuntimeProfileId(Uuid::from_u128(profile)), key)
    }

    #[test]
    fn associated_data_separates_field_boundaries() {
        let a = binding(1, 2, "abc");
        assert_ne!(a.associated_data(), binding(1, 2, "ab").associated_data());
        assert_ne!(a.associated_data(), binding(2, 1, "abc").associated_data());
        assert!(a.associated_data().starts_with(BINDING_LABEL));
        assert_eq!(a.associated_data(), binding(1, 2, "abc").associated_data());
    }

    proptest! {
        #[test]
        fn associated_data_is_injective(
            a in any::<u128>(), p in any::<u128>(), k in ".{0,12}",
            b in any::<u128>(), q in any::<u128>(), l in ".{0,12}",
        ) {
            let x = binding(a, p, &k);
            let y = binding(b, q, &l);
            prop_assert_eq!(x == y, x.associated_data() == y.associated_data());
        }
    }

    #[test]
    fn secret_bytes_never_print_their_content() {
        let secret = SecretBytes::new(Zeroizing::new(b"hunter2".to_vec()));
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), b"hunter2");
        assert_eq!(secret.expose_str().unwrap(), "hunter2");
        assert_eq!(secret.len(), 7);
        let bad = SecretBytes::new(Zeroizing::new(vec![0xff, 0xfe]));
        let err = bad.expose_str().unwrap_err();
        assert!(!format!("{err:?}").contains("255"));
    }

    #[test]
    fn data_keys_never_print_their_bytes() {
        let key = DataKey::from_bytes(Zeroizing::new([0xab; DATA_KEY_LEN]));
        let shown = format!("{key:?}");
        assert_eq!(shown, "DataKey([redacted])");
        assert_ne!(DataKey::generate().expose(), DataKey::generate().expose());
    }

    #[test]
    fn sealed_secrets_round_trip_through_json_as_base64() {
        let sealed = SealedSecret {
            version: SEALED_FORMAT_VERSION,
            key_id: "0123456789abcdef".into(),
            wrap_nonce: vec![1; 24],
            wrapped_key: vec![2; 48],
            value_nonce: vec![3; 24],
            ciphertext: vec![],
        };
        let json = serde_json::to_value(&sealed).unwrap();
        assert_eq!(json["wrap_nonce"], "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB");
        assert_eq!(json["ciphertext"], "");
        let back: SealedSecret = serde_json::from_value(json).unwrap();
        assert_eq!(back, sealed);
        let bad = serde_json::json!({
            "version": 1, "key_id": "x", "wrap_nonce": "!!", "wrapped_key": "", "value_nonce": "", "ciphertext": ""
        });
        assert!(serde_json::from_value::<SealedSecret>(bad).is_err());
    }

    #[test]
    fn the_undecryptable_error_names_the_key_only() {
        let err = undecryptable(&binding(1, 2, "DB_PASSWORD"));
        assert_eq!(err.code(), ErrorCode::Internal);
        assert_eq!(err.to_string(), "internal error");
        let Error::Internal(cause) = err else { panic!("not internal") };
        assert_eq!(cause, "the secret \"DB_PASSWORD\" could not be decrypted: wrong master key or tampered ciphertext");
    }

    struct FixedId(&'static str);

    impl SecretCipher for FixedId {
        fn key_id(&self) -> &str {
            self.0
        }
        fn seal(&self, _: &[u8], _: &SecretBinding) -> Result<SealedSecret> {
            Err(Error::internal("unused"))
        }
        fn open(&self, _: &SealedSecret, b: &SecretBinding) -> Result<SecretBytes> {
            Err(undecryptable(b))
        }
        fn wrap_data_key(&self, _: &DataKey, _: &SecretBinding) -> Result<WrappedDataKey> {
            Err(Error::internal("unused"))
        }
        fn unwrap_data_key(&self, _: &SealedSecret, b: &SecretBinding) -> Result<DataKey> {
            Err(undecryptable(b))
        }
    }

    #[test]
    fn start_up_refuses_a_master_key_other_than_the_stored_one() {
        let cipher = FixedId("aaaaaaaaaaaaaaaa");
        assert!(check_master_key(&cipher, None).is_ok());
        assert!(check_master_key(&cipher, Some("aaaaaaaaaaaaaaaa")).is_ok());
        let err = check_master_key(&cipher, Some("bbbbbbbbbbbbbbbb")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict);
        let text = err.to_string();
        assert!(text.contains("aaaaaaaaaaaaaaaa") && text.contains("bbbbbbbbbbbbbbbb"), "{text}");
        assert!(text.contains("CONMAN_SECRETS_MASTER_KEY"), "{text}");
    }

    #[test]
    fn rewrap_leaves_records_already_under_the_target_key_alone() {
        let sealed = SealedSecret {
            version: SEALED_FORMAT_VERSION,
            key_id: "bbbbbbbbbbbbbbbb".into(),
            wrap_nonce: vec![],
            wrapped_key: vec![],
            value_nonce: vec![],
            ciphertext: vec![9],
        };
        let b = binding(1, 2, "K");
        let again = FixedId("aaaaaaaaaaaaaaaa").rewrap(&sealed, &b, &FixedId("bbbbbbbbbbbbbbbb")).unwrap();
        assert_eq!(again, sealed);
        assert!(FixedId("aaaaaaaaaaaaaaaa").rewrap(&sealed, &b, &FixedId("cccccccccccccccc")).is_err());
    }
}
