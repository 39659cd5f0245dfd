//! The default [`SecretCipher`]: envelope encryption with XChaCha20-Poly1305
//! (crate `chacha20poly1305`), pure computation plus the OS random source.
//!
//! Scheme (format v1, [`SEALED_FORMAT_VERSION`]):
//! - `seal` draws a fresh 256-bit data key and a random 192-bit nonce, and
//!   encrypts the value under the data key with associated data
//!   `"conman/secret/value/v1\0" ‖ binding`.
//! - The data key is encrypted under the master key with another random
//!   nonce and associated data
//!   `"conman/secret/data-key/v1\0" ‖ len(key_id) ‖ key_id ‖ binding`, so a
//!   wrapped key is bound to its record and to the key id it claims.
//! - `key_id` is the first 16 hex characters of
//!   SHA-256(`"conman/secrets/master-key-id/v1\0"` ‖ master key): stable,
//!   distinct per key, and not usable to recover the key.
//!
//! Invariants:
//! - Every nonce is random; XChaCha's 192-bit nonces make collisions
//!   negligible even for millions of wraps under one long-lived master key.
//! - Lengths of stored fields are checked before any AEAD call, so a
//!   truncated or extended field is refused, never a panic.
//! - Plaintexts and data keys live only in zeroizing buffers; encryption and
//!   decryption run in place in a buffer reserved to its final size, so no
//!   reallocation leaves an unzeroized copy behind. The AEAD instances
//!   zeroize their key on drop.
//! - No key derivation runs per call: the master-key AEAD is built once in
//!   [`EnvelopeCipher::new`]; `open` is two AEAD decryptions.
//! - `Debug` shows the key id only.

use std::fmt;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::crypto::{
    undecryptable, DataKey, SealedSecret, SecretBinding, SecretBytes, SecretCipher, WrappedDataKey, DATA_KEY_LEN,
    SEALED_FORMAT_VERSION,
};
use crate::error::{Error, Result};

/// XChaCha20 nonce length in bytes.
const NONCE_LEN: usize = 24;
/// Poly1305 tag length in bytes.
const TAG_LEN: usize = 16;
/// Label of the value's associated data.
const VALUE_LABEL: &[u8] = b"conman/secret/value/v1\0";
/// Label of the wrapped data key's associated data.
const DATA_KEY_LABEL: &[u8] = b"conman/secret/data-key/v1\0";
/// Label of the master-key fingerprint.
const KEY_ID_LABEL: &[u8] = b"conman/secrets/master-key-id/v1\0";

/// Envelope encryption under one 256-bit master key.
pub struct EnvelopeCipher {
    master: XChaCha20Poly1305,
    key_id: String,
}

/// Parses a master key written as 64 hex characters (either case): the
/// form of `CONMAN_SECRETS_MASTER_KEY`, the key file and rotation input.
pub fn parse_master_key(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

impl EnvelopeCipher {
    /// A cipher for `master_key`; this copy of the key is zeroized here, the
    /// caller keeps (and should zeroize) its own.
    pub fn new(master_key: [u8; 32]) -> Self {
        let master_key = Zeroizing::new(master_key);
        let digest = Sha256::new().chain_update(KEY_ID_LABEL).chain_update(&master_key[..]).finalize();
        EnvelopeCipher {
            master: XChaCha20Poly1305::new(Key::from_slice(&master_key[..])),
            key_id: hex::encode(&digest[..8]),
        }
    }

    fn data_key_aad(&self, binding: &SecretBinding) -> Vec<u8> {
        let binding = binding.associated_data();
        let mut aad = Vec::with_capacity(DATA_KEY_LABEL.len() + 8 + self.key_id.len() + binding.len());
        aad.extend_from_slice(DATA_KEY_LABEL);
        aad.extend_from_slice(&(self.key_id.len() as u64).to_be_bytes());
        aad.extend_from_slice(self.key_id.as_bytes());
        aad.extend_from_slice(&binding);
        aad
    }
}

impl fmt::Debug for EnvelopeCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeCipher").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

fn value_aad(binding: &SecretBinding) -> Vec<u8> {
    let binding = binding.associated_data();
    let mut aad = Vec::with_capacity(VALUE_LABEL.len() + binding.len());
    aad.extend_from_slice(VALUE_LABEL);
    aad.extend_from_slice(&binding);
    aad
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

/// Encrypts in a zeroizing buffer reserved to its final size.
fn encrypt(aead: &XChaCha20Poly1305, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
    buf.extend_from_slice(plaintext);
    aead.encrypt_in_place(XNonce::from_slice(nonce), aad, &mut *buf)
        .map_err(|_| Error::internal("a secret could not be encrypted"))?;
    Ok(std::mem::take(&mut *buf))
}

/// Decrypts in a zeroizing buffer; `None` on a bad nonce length, a short
/// ciphertext or a failed tag.
fn decrypt(aead: &XChaCha20Poly1305, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if nonce.len() != NONCE_LEN || ciphertext.len() < TAG_LEN {
        return None;
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    aead.decrypt_in_place(XNonce::from_slice(nonce), aad, &mut *buf).ok()?;
    Some(buf)
}

impl SecretCipher for EnvelopeCipher {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn seal(&self, plaintext: &[u8], binding: &SecretBinding) -> Result<SealedSecret> {
        let data_key = DataKey::generate();
        let value_nonce = random_nonce();
        let value_aead = XChaCha20Poly1305::new(Key::from_slice(&data_key.expose()[..]));
        let ciphertext = encrypt(&value_aead, &value_nonce, &value_aad(binding), plaintext)?;
        let wrapped = self.wrap_data_key(&data_key, binding)?;
        Ok(SealedSecret {
            version: SEALED_FORMAT_VERSION,
            key_id: wrapped.key_id,
            wrap_nonce: wrapped.wrap_nonce,
            wrapped_key: wrapped.wrapped_key,
            value_nonce: value_nonce.to_vec(),
            ciphertext,
        })
    }

    fn open(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<SecretBytes> {
        let data_key = self.unwrap_data_key(sealed, binding)?;
        let value_aead = XChaCha20Poly1305::new(Key::from_slice(&data_key.expose()[..]));
        decrypt(&value_aead, &sealed.value_nonce, &value_aad(binding), &sealed.ciphertext)
            .map(SecretBytes::new)
            .ok_or_else(|| undecryptable(binding))
    }

    fn wrap_data_key(&self, key: &DataKey, binding: &SecretBinding) -> Result<WrappedDataKey> {
        let wrap_nonce = random_nonce();
        let wrapped_key = encrypt(&self.master, &wrap_nonce, &self.data_key_aad(binding), &key.expose()[..])?;
        Ok(WrappedDataKey { key_id: self.key_id.clone(), wrap_nonce: wrap_nonce.to_vec(), wrapped_key })
    }

    fn unwrap_data_key(&self, sealed: &SealedSecret, binding: &SecretBinding) -> Result<DataKey> {
        if sealed.version != SEALED_FORMAT_VERSION
            || sealed.key_id != self.key_id
            || sealed.wrapped_key.len() != DATA_KEY_LEN + TAG_LEN
        {
            return Err(undecryptable(binding));
        }
        let plain = decrypt(&self.master, &sealed.wrap_nonce, &self.data_key_aad(binding), &sealed.wrapped_key)
            .ok_or_else(|| undecryptable(binding))?;
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        key.copy_from_slice(&plain);
        Ok(DataKey::from_bytes(key))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::error::ErrorCode;
    use crate::ids::{AppId, RuntimeProfileId};

    #[test]
    fn keys_are_64_hex_characters() {
        let hex = "00ff".repeat(16);
        let key = parse_master_key(&hex).unwrap();
        assert_eq!(key[0], 0x00);
        assert_eq!(key[1], 0xff);
        assert_eq!(hex::encode(key), hex);
        assert!(parse_master_key(&hex.to_uppercase()).is_some());
        assert!(parse_master_key(&hex[..62]).is_none());
        assert!(parse_master_key(&format!("{}zz", &hex[..62])).is_none());
        assert!(parse_master_key(&format!("{}é", &hex[..62])).is_none());
    }

    const OLD: [u8; 32] = [0x11; 32];
    const NEW: [u8; 32] = [0x22; 32];

    fn binding(app: u128, profile: u128, key: &str) -> SecretBinding {
        SecretBinding::new(AppId(Uuid::from_u128(app)), RuntimeProfileId(Uuid::from_u128(profile)), key)
    }

    fn assert_undecryptable(result: Result<SecretBytes>, key: &str) {
        let err = result.expect_err("must not open");
        assert_eq!(err.code(), ErrorCode::Internal);
        assert_eq!(err, undecryptable(&binding(0, 0, key)), "clear, fixed reason");
    }

    #[test]
    fn values_round_trip_including_empty_and_64_kib() {
        let cipher = EnvelopeCipher::new(OLD);
        let b = binding(1, 2, "DB_PASSWORD");
        let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        for value in [&b""[..], b"hunter2", &big[..]] {
            let sealed = cipher.seal(value, &b).unwrap();
            assert_eq!(sealed.version, SEALED_FORMAT_VERSION);
            assert_eq!(sealed.key_id, cipher.key_id());
            assert_eq!(sealed.ciphertext.len(), value.len() + TAG_LEN);
            assert_eq!(sealed.value_nonce.len(), NONCE_LEN);
            assert_eq!(sealed.wrap_nonce.len(), NONCE_LEN);
            assert_eq!(sealed.wrapped_key.len(), DATA_KEY_LEN + TAG_LEN);
            if !value.is_empty() {
                assert!(!sealed.ciphertext.windows(value.len().min(7)).any(|w| w == &value[..value.len().min(7)]));
            }
            assert_eq!(cipher.open(&sealed, &b).unwrap().expose(), value);
        }
    }

    #[test]
    fn each_seal_uses_a_fresh_data_key_and_nonces() {
        let cipher = EnvelopeCipher::new(OLD);
        let b = binding(1, 2, "K");
        let x = cipher.seal(b"same", &b).unwrap();
        let y = cipher.seal(b"same", &b).unwrap();
        assert_ne!(x.ciphertext, y.ciphertext);
        assert_ne!(x.value_nonce, y.value_nonce);
        assert_ne!(x.wrap_nonce, y.wrap_nonce);
        assert_ne!(x.wrapped_key, y.wrapped_key);
        let kx = cipher.unwrap_data_key(&x, &b).unwrap();
        let ky = cipher.unwrap_data_key(&y, &b).unwrap();
        assert_ne!(kx.expose(), ky.expose());
    }

    #[test]
    fn a_ciphertext_opens_only_with_its_own_app_profile_and_key() {
        let cipher = EnvelopeCipher::new(OLD);
        let sealed = cipher.seal(b"s3cret", &binding(1, 2, "K")).unwrap();
        assert_undecryptable(cipher.open(&sealed, &binding(9, 2, "K")), "K");
        assert_undecryptable(cipher.open(&sealed, &binding(1, 9, "K")), "K");
        assert_undecryptable(cipher.open(&sealed, &binding(1, 2, "K2")), "K2");
        assert_undecryptable(cipher.open(&sealed, &binding(2, 1, "K")), "K");
        assert_eq!(cipher.open(&sealed, &binding(1, 2, "K")).unwrap().expose(), b"s3cret");
    }

    #[test]
    fn wrapped_keys_and_values_cannot_be_swapped_between_records() {
        let cipher = EnvelopeCipher::new(OLD);
        let (ba, bb) = (binding(1, 2, "A"), binding(1, 2, "B"));
        let a = cipher.seal(b"alpha", &ba).unwrap();
        let b = cipher.seal(b"bravo", &bb).unwrap();
        // b's value with a's data key, opened as a: refused.
        let mixed = SealedSecret { value_nonce: b.value_nonce.clone(), ciphertext: b.ciphertext.clone(), ..a.clone() };
        assert_undecryptable(cipher.open(&mixed, &ba), "A");
        assert_undecryptable(cipher.open(&mixed, &bb), "B");
        // a whole record moved to another key name: refused.
        assert_undecryptable(cipher.open(&a, &bb), "B");
    }

    #[test]
    fn a_wrong_master_key_is_refused() {
        let b = binding(1, 2, "K");
        let sealed = EnvelopeCipher::new(OLD).seal(b"v", &b).unwrap();
        let other = EnvelopeCipher::new(NEW);
        assert_undecryptable(other.open(&sealed, &b), "K");
        // Even when the record is relabelled with the other key's id.
        let forged = SealedSecret { key_id: other.key_id().to_owned(), ..sealed };
        assert_undecryptable(other.open(&forged, &b), "K");
    }

    #[test]
    fn every_single_byte_tamper_is_refused() {
        let cipher = EnvelopeCipher::new(OLD);
        let b = binding(1, 2, "K");
        let sealed = cipher.seal(b"a short secret", &b).unwrap();
        for field in 0..4 {
            for pos in 0..field_mut(&mut sealed.clone(), field).len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = sealed.clone();
                    field_mut(&mut bad, field)[pos] ^= flip;
                    assert_undecryptable(cipher.open(&bad, &b), "K");
                }
            }
        }
    }

    #[test]
    fn truncated_extended_or_relabelled_records_are_refused() {
        let cipher = EnvelopeCipher::new(OLD);
        let b = binding(1, 2, "K");
        let sealed = cipher.seal(b"value", &b).unwrap();
        for field in 0..4 {
            let mut short = sealed.clone();
            field_mut(&mut short, field).pop();
            assert_undecryptable(cipher.open(&short, &b), "K");
            let mut empty = sealed.clone();
            field_mut(&mut empty, field).clear();
            assert_undecryptable(cipher.open(&empty, &b), "K");
            let mut long = sealed.clone();
            field_mut(&mut long, field).push(0);
            assert_undecryptable(cipher.open(&long, &b), "K");
        }
        let version = SealedSecret { version: 2, ..sealed.clone() };
        assert_undecryptable(cipher.open(&version, &b), "K");
        let key_id = SealedSecret { key_id: "0000000000000000".into(), ..sealed };
        assert_undecryptable(cipher.open(&key_id, &b), "K");
    }

    fn field_mut(sealed: &mut SealedSecret, field: usize) -> &mut Vec<u8> {
        match field {
            0 => &mut sealed.wrap_nonce,
            1 => &mut sealed.wrapped_key,
            2 => &mut sealed.value_nonce,
            _ => &mut sealed.ciphertext,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_value_round_trips(value in proptest::collection::vec(any::<u8>(), 0..2048), key in "[A-Z_]{1,16}") {
            let cipher = EnvelopeCipher::new(OLD);
            let b = binding(7, 8, &key);
            let sealed = cipher.seal(&value, &b).unwrap();
            let opened = cipher.open(&sealed, &b).unwrap();
            prop_assert_eq!(opened.expose(), &value[..]);
        }

        #[test]
        fn a_tamper_at_any_position_is_refused(
            value in proptest::collection::vec(any::<u8>(), 0..256),
            field in 0usize..4,
            pos in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let cipher = EnvelopeCipher::new(OLD);
            let b = binding(7, 8, "K");
            let mut sealed = cipher.seal(&value, &b).unwrap();
            let bytes = field_mut(&mut sealed, field);
            let at = pos.index(bytes.len());
            bytes[at] ^= flip;
            let err = cipher.open(&sealed, &b).expect_err("tampered record opened");
            prop_assert_eq!(err, undecryptable(&b));
        }

        #[test]
        fn arbitrary_records_never_panic(
            wrap_nonce in proptest::collection::vec(any::<u8>(), 0..40),
            wrapped_key in proptest::collection::vec(any::<u8>(), 0..64),
            value_nonce in proptest::collection::vec(any::<u8>(), 0..40),
            ciphertext in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let cipher = EnvelopeCipher::new(OLD);
            let b = binding(7, 8, "K");
            let sealed = SealedSecret {
                version: SEALED_FORMAT_VERSION,
                key_id: cipher.key_id().to_owned(),
                wrap_nonce, wrapped_key, value_nonce, ciphertext,
            };
            prop_assert!(cipher.open(&sealed, &b).is_err());
        }
    }

    #[test]
    fn rotation_rewraps_every_data_key_and_the_old_key_alone_opens_none() {
        let old = EnvelopeCipher::new(OLD);
        let new = EnvelopeCipher::new(NEW);
        let records: Vec<(SecretBinding, Vec<u8>, SealedSecret)> = (0..100u32)
            .map(|i| {
                let b = binding(1, u128::from(i % 3), &format!("KEY_{i}"));
                let value = format!("value-{i}").into_bytes();
                let sealed = old.seal(&value, &b).unwrap();
                (b, value, sealed)
            })
            .collect();
        for (b, value, sealed) in &records {
            let rewrapped = old.rewrap(sealed, b, &new).unwrap();
            assert_eq!(rewrapped.key_id, new.key_id());
            assert_eq!(rewrapped.value_nonce, sealed.value_nonce, "value untouched");
            assert_eq!(rewrapped.ciphertext, sealed.ciphertext, "value untouched");
            assert_ne!(rewrapped.wrapped_key, sealed.wrapped_key);
            assert_eq!(new.open(&rewrapped, b).unwrap().expose(), &value[..]);
            assert!(old.open(&rewrapped, b).is_err(), "old key alone must not open");
            let relabelled = SealedSecret { key_id: old.key_id().to_owned(), ..rewrapped.clone() };
            assert!(old.open(&relabelled, b).is_err(), "old key must not open a relabelled record");
            assert!(new.open(sealed, b).is_err(), "the new key cannot open the pre-rotation record");
            // Running the rotation again is a no-op.
            assert_eq!(old.rewrap(&rewrapped, b, &new).unwrap(), rewrapped);
            assert!(new.rewrap(&rewrapped, &binding(9, 9, "X"), &old).is_err(), "rewrap checks the binding");
        }
    }

    #[test]
    fn key_ids_are_stable_distinct_and_not_the_key() {
        let a = EnvelopeCipher::new(OLD);
        assert_eq!(a.key_id(), EnvelopeCipher::new(OLD).key_id());
        assert_ne!(a.key_id(), EnvelopeCipher::new(NEW).key_id());
        assert_eq!(a.key_id().len(), 16);
        assert!(a.key_id().bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!hex::encode(OLD).contains(a.key_id()));
    }

    #[test]
    fn debug_shows_no_key_material_nor_plaintext() {
        let cipher = EnvelopeCipher::new([0xab; 32]);
        let shown = format!("{cipher:?}");
        assert_eq!(shown, format!("EnvelopeCipher {{ key_id: {:?}, .. }}", cipher.key_id()));
        assert!(!shown.contains("abab") && !shown.contains("171"));
        let b = binding(1, 2, "K");
        let sealed = cipher.seal(b"hunter2", &b).unwrap();
        let opened = cipher.open(&sealed, &b).unwrap();
        assert_eq!(format!("{opened:?}"), "[redacted]");
        let sealed_shown = format!("{sealed:?}");
        assert!(!sealed_shown.contains("hunter2"), "{sealed_shown}");
        let err = EnvelopeCipher::new(NEW).open(&sealed, &b).unwrap_err();
        let err_shown = format!("{err:?} {err}");
        assert!(!err_shown.contains("hunter2") && !err_shown.contains("abab"), "{err_shown}");
    }

    #[test]
    fn ciphers_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EnvelopeCipher>();
        let shared: std::sync::Arc<dyn SecretCipher> = std::sync::Arc::new(EnvelopeCipher::new(OLD));
        let b = binding(1, 2, "K");
        let sealed = shared.seal(b"x", &b).unwrap();
        let opened =
            std::thread::spawn(move || shared.open(&sealed, &b).map(|s| s.expose().to_vec())).join().unwrap().unwrap();
        assert_eq!(opened, b"x");
    }
}
