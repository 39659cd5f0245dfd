//! Deserialisation helpers of request bodies, and [`parse_body`]: the one
//! reader of a JSON body, used by the HTTP extractors and the CLI alike, so
//! both refuse the same documents with the same messages.
//!
//! Invariants:
//! - a map read with [`unique_map`] (or [`secret_map`]) refuses a key given
//!   twice instead of keeping the last one silently (bodies read by
//!   [`parse_body`] are also refused earlier, at any depth);
//! - [`nullable`] tells an absent field (`None`) from `null` (`Some(None)`);
//! - secret plaintexts go straight from the parsed string into
//!   [`SecretPlaintext`], which prints as `[redacted]`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use conman_core::domain::runtime_profile::SecretPlaintext;
use conman_core::Error;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::wire_json::{self, BodyError};

/// Reads a request body into `T` exactly as the HTTP API does: a JSON
/// object (integral numbers as integers, no key given twice), then `T`'s
/// serde (unknown fields, wrong types). Every refusal is the SPEC §7
/// `validation_error` the API answers: `invalid_body` (with serde's
/// message), `invalid_body` for a non-object, `malformed_json` for text
/// that is not JSON.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match wire_json::parse(bytes) {
        Ok(t) => Ok(t),
        Err(BodyError::Invalid(e)) => Err(Error::Validation {
            message: format!("invalid request body: {e}"),
            details: Some(serde_json::json!({ "field": "body", "reason": "invalid_body" })),
        }),
        Err(BodyError::NotAnObject) => {
            Err(Error::invalid("body", "invalid_body", "request body must be a JSON object"))
        }
        Err(BodyError::Malformed) => Err(Error::invalid("body", "malformed_json", "request body is not valid JSON")),
    }
}

/// `deserialize_with` for maps: like the default, but a key given twice is an
/// error (`duplicate key "X"`) instead of the last value winning silently.
pub(crate) fn unique_map<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueVisitor<V>(PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueVisitor<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map with unique keys")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, V>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format_args!("duplicate key {k:?}")));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(UniqueVisitor(PhantomData))
}

/// `deserialize_with` for a map of secret plaintexts by name ([`unique_map`]
/// of strings, each wrapped at once).
pub(crate) fn secret_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, SecretPlaintext>, D::Error> {
    let plain: BTreeMap<String, String> = unique_map(d)?;
    Ok(plain.into_iter().map(|(k, v)| (k, SecretPlaintext::new(v))).collect())
}

/// `deserialize_with` for optional fields that may be cleared: absent →
/// `None`, `null` → `Some(None)`, a value → `Some(Some(v))`. Use with
/// `#[serde(default)]`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct M {
        #[serde(deserialize_with = "unique_map")]
        #[allow(dead_code)]
        m: BTreeMap<String, u8>,
        #[serde(default, deserialize_with = "secret_map")]
        s: BTreeMap<String, SecretPlaintext>,
        #[serde(default, deserialize_with = "nullable")]
        n: Option<Option<u8>>,
    }

    #[test]
    fn maps_refuse_duplicate_keys() {
        assert!(serde_json::from_str::<M>(r#"{"m":{"A":1,"B":2}}"#).is_ok());
        let err = serde_json::from_str::<M>(r#"{"m":{"A":1,"A":2}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key \"A\""), "{err}");
        let err = serde_json::from_str::<M>(r#"{"m":{},"s":{"K":"a","K":"b"}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key \"K\""), "{err}");
    }

    #[test]
    fn secrets_never_print_and_null_is_not_absent() {
        let m: M = serde_json::from_str(r#"{"m":{},"s":{"K":"hunter2-very-secret"},"n":null}"#).unwrap();
        assert_eq!(format!("{:?}", m.s), r#"{"K": [redacted]}"#);
        assert_eq!(m.s["K"].expose(), "hunter2-very-secret");
        assert_eq!(m.n, Some(None));
        assert_eq!(serde_json::from_str::<M>(r#"{"m":{}}"#).unwrap().n, None);
    }

    #[test]
    fn parse_body_gives_the_api_refusals() {
        let reason = |e: Error| e.details().unwrap()["reason"].as_str().unwrap().to_owned();
        assert_eq!(reason(parse_body::<M>(b"{").unwrap_err()), "malformed_json");
        assert_eq!(reason(parse_body::<M>(b"[1]").unwrap_err()), "invalid_body");
        let e = parse_body::<M>(br#"{"m":{},"x":1}"#).unwrap_err();
        assert!(e.to_string().starts_with("invalid request body: unknown field `x`"), "{e}");
    }
}
