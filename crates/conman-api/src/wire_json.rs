//! Parsing a JSON request body the way its JSON Schema reads it
//! (decision 0014), before the body's type is built from it.
//!
//! Invariants:
//! - the body is a JSON object: every request type is one, and serde
//!   would otherwise build a struct from an array (`[null, null]`);
//! - a number with a zero fraction (`12.0`, `1e3`) is an integer, as in
//!   JSON Schema, so it fits an integer field;
//! - a key given twice in any object is refused (`duplicate_key`) instead
//!   of the last one silently winning;
//! - serde_json's nesting limit (128) still applies.

use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body was refused.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Not JSON at all (syntax, truncated).
    Malformed,
    /// JSON, but not an object.
    NotAnObject,
    /// An object with a key given twice, or a body that does not fit its type.
    Invalid(String),
}

/// Parses `bytes` as an object and builds `T` from it.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match SchemaValue.deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(value) => value,
        Err(e) if e.classify() == serde_json::error::Category::Data => return Err(BodyError::Invalid(e.to_string())),
        Err(_) => return Err(BodyError::Malformed),
    };
    if !value.is_object() {
        return Err(BodyError::NotAnObject);
    }
    T::deserialize(value).map_err(|e| BodyError::Invalid(e.to_string()))
}

/// Builds a [`Value`] with integral numbers as integers and no duplicate keys.
struct SchemaValue;

impl<'de> DeserializeSeed<'de> for SchemaValue {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(SchemaValue)
    }
}

/// Largest float that converts to an integer exactly (2^63).
const I64_BOUND: f64 = 9_223_372_036_854_775_808.0;

impl<'de> Visitor<'de> for SchemaValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    #[expect(clippy::cast_possible_truncation, reason = "only integral floats within the i64 range are cast")]
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        if v.fract() == 0.0 && (-I64_BOUND..I64_BOUND).contains(&v) {
            return Ok(Value::Number((v as i64).into()));
        }
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("numbers must be finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(SchemaValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value_seed(SchemaValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        n: u32,
        #[serde(default)]
        map: BTreeMap<String, f64>,
    }

    #[test]
    fn integral_numbers_fit_integer_fields() {
        assert_eq!(parse::<Body>(br#"{"n": 12.0}"#).expect("12.0").n, 12);
        assert_eq!(parse::<Body>(br#"{"n": 1e3}"#).expect("1e3").n, 1000);
        assert!(matches!(parse::<Body>(br#"{"n": 1.5}"#), Err(BodyError::Invalid(_))));
        let fractions = parse::<Body>(br#"{"n": 1, "map": {"a": 0.25}}"#).expect("floats stay floats");
        assert_eq!(fractions.map["a"], 0.25);
    }

    #[test]
    fn only_objects_are_bodies() {
        assert!(matches!(parse::<Body>(b"[1]"), Err(BodyError::NotAnObject)));
        assert!(matches!(parse::<Body>(b"null"), Err(BodyError::NotAnObject)));
        assert!(matches!(parse::<Body>(b"{"), Err(BodyError::Malformed)));
        assert!(matches!(parse::<Body>(br#"{"n": 1} x"#), Err(BodyError::Malformed)));
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        let top = parse::<Body>(br#"{"n": 1, "n": 2}"#);
        assert!(matches!(&top, Err(BodyError::Invalid(m)) if m.contains("duplicate key `n`")), "{top:?}");
        let nested = parse::<Body>(br#"{"n": 1, "map": {"a": 1, "a": 2}}"#);
        assert!(matches!(&nested, Err(BodyError::Invalid(m)) if m.contains("duplicate key `a`")), "{nested:?}");
    }

    #[test]
    fn unknown_fields_are_still_refused() {
        assert!(
            matches!(parse::<Body>(br#"{"n": 1, "x": 2}"#), Err(BodyError::Invalid(m)) if m.contains("unknown field"))
        );
    }
}
