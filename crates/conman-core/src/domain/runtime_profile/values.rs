//! Validation of the values a runtime profile is made of: names, typed env
//! values, the base URL, lifecycle ranges, migration settings, and the
//! redacted carrier of secret plaintext.
//!
//! Invariants:
//! - an [`EnvValue`] produced by [`parse_env_value`] is valid for its declared
//!   type: a `number` is a finite JSON number that survives the round trip
//!   through `f64` (no NaN, no Infinity, no `"NaN"` strings, no integers
//!   beyond 2^53), a `boolean` is `true`/`false`, a `string` is a JSON string
//!   without NUL, a `json` is any JSON; strings and JSON are size-bounded;
//! - [`SecretPlaintext`] never prints its content (`Debug` shows
//!   `[redacted]`), has no `Display` and no `Serialize`, so it cannot leak into
//!   logs, audit records or responses through formatting or serde;
//! - nothing here reads a request: [`TypedValueInput`] and [`SecretPlaintext`]
//!   are built by `conman_api::dto` from a body (which refuses unknown
//!   fields and a map key given twice) and checked here.

use std::fmt;

use serde_json::Value;

use super::{
    EnvType, EnvValue, Lifecycle, GRACE_HOURS_RANGE, IDLE_TTL_HOURS_RANGE, MAX_JSON_VALUE_BYTES, MAX_SECRET_BYTES,
    MAX_STRING_VALUE_BYTES, MAX_URL_BYTES, MAX_VAR_NAME_BYTES,
};
use crate::error::Error;
use crate::validation::{validate_app_name, RepoPath};

/// A typed value as written by a caller: `{"type": "number", "value": 3}`.
/// The value is kept as raw JSON so [`parse_env_value`] can say precisely
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedValueInput {
    /// Declared type.
    pub ty: EnvType,
    /// The value, checked against `ty`.
    pub value: Value,
}

/// A secret value in plaintext, on its way to be sealed. It prints as
/// `[redacted]` and has no serde at all.
#[derive(Clone)]
pub struct SecretPlaintext(String);

impl SecretPlaintext {
    /// Wraps a plaintext.
    pub fn new(value: impl Into<String>) -> Self {
        SecretPlaintext(value.into())
    }

    /// The plaintext, for sealing (and for `app_admin` reveal) only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretPlaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Profile names: a slug, 1-63 of `[a-z0-9-]` (the app-name rule; names
/// appear in URLs). Uniqueness within the app is the store's to enforce.
pub fn validate_profile_name(name: &str) -> Result<(), Error> {
    validate_app_name(name)
}

/// Env var and secret names: `[A-Za-z_][A-Za-z0-9_]*`, at most
/// [`MAX_VAR_NAME_BYTES`] bytes. `field` names the map in the error.
pub fn validate_env_var_name(field: &str, name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > MAX_VAR_NAME_BYTES {
        return Err(Error::Validation {
            message: format!(
                "{field}: {name:?} is not a valid name ([A-Za-z_][A-Za-z0-9_]*, at most {MAX_VAR_NAME_BYTES} bytes)"
            ),
            details: Some(serde_json::json!({ "field": field, "reason": "invalid_name", "key": name })),
        });
    }
    Ok(())
}

fn bad_value(key: &str, reason: &str, message: String) -> Error {
    Error::Validation {
        message,
        details: Some(serde_json::json!({ "field": "env_vars", "reason": reason, "key": key })),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Largest integer an `f64` holds exactly.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Turns a caller's typed value into an [`EnvValue`], refusing anything that
/// is not exactly of the declared type (see the module invariants).
pub fn parse_env_value(key: &str, input: &TypedValueInput) -> Result<EnvValue, Error> {
    let wrong = |expected: &str| {
        bad_value(
            key,
            "wrong_type",
            format!("{key} is declared {expected} but the value is {}", json_kind(&input.value)),
        )
    };
    let value = match (input.ty, &input.value) {
        (EnvType::String, Value::String(s)) => EnvValue::String(s.clone()),
        (EnvType::String, _) => return Err(wrong("string")),
        (EnvType::Boolean, Value::Bool(b)) => EnvValue::Boolean(*b),
        (EnvType::Boolean, _) => return Err(wrong("boolean (true or false)")),
        (EnvType::Number, Value::Number(n)) => {
            let exact_int =
                n.as_u64().map(|u| u <= MAX_SAFE_INTEGER).or(n.as_i64().map(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER));
            if exact_int == Some(false) {
                return Err(bad_value(
                    key,
                    "number_out_of_range",
                    format!("{key}: integers beyond 2^53 lose precision; store it as a string"),
                ));
            }
            EnvValue::Number(n.as_f64().ok_or_else(|| wrong("number"))?)
        }
        (EnvType::Number, Value::String(s)) => {
            let t = s.trim().trim_start_matches(['+', '-']).to_ascii_lowercase();
            if matches!(t.as_str(), "nan" | "inf" | "infinity") {
                return Err(bad_value(
                    key,
                    "not_finite",
                    format!("{key}: NaN and Infinity are not numbers Conman stores; a number must be finite"),
                ));
            }
            return Err(wrong("number"));
        }
        (EnvType::Number, _) => return Err(wrong("number")),
        (EnvType::Json, v) => EnvValue::Json(v.clone()),
    };
    validate_env_value(key, &value)?;
    Ok(value)
}

/// Checks a stored [`EnvValue`]: finite numbers, bounded strings without NUL,
/// bounded JSON.
pub fn validate_env_value(key: &str, value: &EnvValue) -> Result<(), Error> {
    match value {
        EnvValue::Number(n) if !n.is_finite() => {
            Err(bad_value(key, "not_finite", format!("{key}: a number must be finite (no NaN or Infinity)")))
        }
        EnvValue::String(s) if s.len() > MAX_STRING_VALUE_BYTES => {
            Err(bad_value(key, "too_large", format!("{key}: strings are at most {MAX_STRING_VALUE_BYTES} bytes")))
        }
        EnvValue::String(s) if s.contains('\0') => {
            Err(bad_value(key, "invalid_value", format!("{key}: strings cannot contain NUL")))
        }
        EnvValue::Json(v) if v.to_string().len() > MAX_JSON_VALUE_BYTES => {
            Err(bad_value(key, "too_large", format!("{key}: JSON values are at most {MAX_JSON_VALUE_BYTES} bytes")))
        }
        _ => Ok(()),
    }
}

/// Checks a secret plaintext: 1 to [`MAX_SECRET_BYTES`] bytes, no NUL (the
/// value ends up in a process environment).
pub fn validate_secret_value(name: &str, value: &SecretPlaintext) -> Result<(), Error> {
    let v = value.expose();
    if v.is_empty() || v.len() > MAX_SECRET_BYTES || v.contains('\0') {
        return Err(Error::Validation {
            message: format!("secret {name}: 1-{MAX_SECRET_BYTES} bytes without NUL"),
            details: Some(serde_json::json!({ "field": "secrets", "reason": "invalid_value", "key": name })),
        });
    }
    Ok(())
}

/// Base URLs: `http://` or `https://`, a host of `[A-Za-z0-9.-]` (or a
/// bracketed IPv6 address), an optional port 1-65535, then an optional
/// path/query without whitespace or control characters; no user info (a
/// password does not belong in a URL), no fragment, at most
/// [`MAX_URL_BYTES`] bytes.
pub fn validate_base_url(url: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::invalid("base_url", "invalid_url", format!("base_url {why}")));
    if url.len() > MAX_URL_BYTES {
        return bad("is too long");
    }
    let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) else {
        return bad("must start with http:// or https://");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains('#') {
        return bad("may contain no whitespace, control characters or fragment");
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return bad("may not carry user info");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else { return bad("has an unclosed IPv6 bracket") };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return bad("has an invalid IPv6 address");
        }
        match after.strip_prefix(':') {
            Some(p) => ("v6", Some(p)),
            None if after.is_empty() => ("v6", None),
            None => return bad("has an invalid host"),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = host == "v6" && authority.starts_with('[')
        || !host.is_empty()
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && host.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if !host_ok {
        return bad("has an invalid host");
    }
    if let Some(p) = port {
        if !p.parse::<u16>().is_ok_and(|n| n > 0) || !p.chars().all(|c| c.is_ascii_digit()) {
            return bad("has an invalid port");
        }
    }
    Ok(())
}

/// Lifecycle ranges: idle TTL in [`IDLE_TTL_HOURS_RANGE`], grace in
/// [`GRACE_HOURS_RANGE`].
pub fn validate_lifecycle(l: &Lifecycle) -> Result<(), Error> {
    if !IDLE_TTL_HOURS_RANGE.contains(&l.idle_ttl_hours) {
        return Err(Error::invalid(
            "lifecycle.idle_ttl_hours",
            "out_of_range",
            format!("idle_ttl_hours must be {}-{}", IDLE_TTL_HOURS_RANGE.start(), IDLE_TTL_HOURS_RANGE.end()),
        ));
    }
    if !GRACE_HOURS_RANGE.contains(&l.grace_hours) {
        return Err(Error::invalid(
            "lifecycle.grace_hours",
            "out_of_range",
            format!("grace_hours must be {}-{}", GRACE_HOURS_RANGE.start(), GRACE_HOURS_RANGE.end()),
        ));
    }
    Ok(())
}

/// Migration settings: at most 100 paths, each a valid repository path and
/// none twice; a command of 1-4096 bytes without NUL.
pub fn validate_migrations(paths: &[String], command: Option<&str>) -> Result<(), Error> {
    if paths.len() > 100 {
        return Err(Error::invalid("migrations.paths", "too_many", "at most 100 migration paths"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in paths {
        let parsed = RepoPath::parse(p)
            .map_err(|_| Error::invalid("migrations.paths", "invalid_path", format!("{p:?} is not a valid path")))?;
        if parsed.as_str() != p || !seen.insert(p.as_str()) {
            return Err(Error::invalid(
                "migrations.paths",
                "duplicate_name",
                format!("{p:?} is listed twice or not normalised"),
            ));
        }
    }
    if let Some(c) = command {
        if c.trim().is_empty() || c.len() > 4096 || c.contains('\0') {
            return Err(Error::invalid("migrations.command", "invalid_command", "command must be 1-4096 bytes"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runtime_profile::test_support::reason;
    use proptest::prelude::*;
    use serde_json::json;

    fn typed(ty: EnvType, value: Value) -> TypedValueInput {
        TypedValueInput { ty, value }
    }

    #[test]
    fn names_follow_the_env_var_rule() {
        for ok in ["A", "_", "DATABASE_URL", "a1_b2", &"X".repeat(128)] {
            assert!(validate_env_var_name("env_vars", ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "Ä", "A.B", &"X".repeat(129)] {
            assert_eq!(reason(&validate_env_var_name("env_vars", bad).unwrap_err()), "invalid_name", "{bad}");
        }
    }

    #[test]
    fn numbers_must_be_finite_json_numbers() {
        for s in ["NaN", "nan", "Infinity", "-Infinity", "+inf", " NaN "] {
            let err = parse_env_value("N", &typed(EnvType::Number, json!(s))).unwrap_err();
            assert_eq!(reason(&err), "not_finite", "{s}");
        }
        for v in [json!("1"), json!(true), json!(null), json!([1]), json!({"a": 1})] {
            assert_eq!(reason(&parse_env_value("N", &typed(EnvType::Number, v.clone())).unwrap_err()), "wrong_type");
        }
        assert_eq!(
            reason(&parse_env_value("N", &typed(EnvType::Number, json!(9_007_199_254_740_993u64))).unwrap_err()),
            "number_out_of_range"
        );
        assert_eq!(parse_env_value("N", &typed(EnvType::Number, json!(-2.5))).unwrap(), EnvValue::Number(-2.5));
        assert!(validate_env_value("N", &EnvValue::Number(f64::INFINITY)).is_err());
    }

    #[test]
    fn booleans_strings_and_json_are_strict() {
        assert_eq!(reason(&parse_env_value("B", &typed(EnvType::Boolean, json!("true"))).unwrap_err()), "wrong_type");
        assert_eq!(reason(&parse_env_value("B", &typed(EnvType::Boolean, json!(1))).unwrap_err()), "wrong_type");
        assert_eq!(parse_env_value("B", &typed(EnvType::Boolean, json!(false))).unwrap(), EnvValue::Boolean(false));
        assert_eq!(reason(&parse_env_value("S", &typed(EnvType::String, json!(3))).unwrap_err()), "wrong_type");
        assert_eq!(reason(&parse_env_value("S", &typed(EnvType::String, json!("a\0b"))).unwrap_err()), "invalid_value");
        let big = "x".repeat(MAX_STRING_VALUE_BYTES + 1);
        assert_eq!(reason(&parse_env_value("S", &typed(EnvType::String, json!(big))).unwrap_err()), "too_large");
        assert_eq!(parse_env_value("J", &typed(EnvType::Json, json!(null))).unwrap(), EnvValue::Json(json!(null)));
        let big = json!({ "k": "x".repeat(MAX_JSON_VALUE_BYTES) });
        assert_eq!(reason(&parse_env_value("J", &typed(EnvType::Json, big)).unwrap_err()), "too_large");
    }

    #[test]
    fn secret_plaintext_never_prints() {
        let s = SecretPlaintext::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), "hunter2-very-secret");
        assert!(validate_secret_value("K", &SecretPlaintext::new("")).is_err());
    }

    #[test]
    fn base_urls_are_http_shaped() {
        for ok in ["https://app.example.com", "http://localhost:8080/x?y=1", "https://[::1]:443/", "http://10.0.0.1"] {
            assert!(validate_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://user:pw@host",
            "https://host:0",
            "https://host:99999",
            "https://host:8a",
            "https://ho st",
            "https://host/#frag",
            "https://-host",
            "https://a..b",
            "https://[zz]",
            "javascript:alert(1)",
        ] {
            assert!(validate_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lifecycle_and_migration_bounds() {
        let l = Lifecycle { idle_ttl_hours: 0, ..Lifecycle::default() };
        assert_eq!(reason(&validate_lifecycle(&l).unwrap_err()), "out_of_range");
        let l = Lifecycle { grace_hours: 169, ..Lifecycle::default() };
        assert_eq!(reason(&validate_lifecycle(&l).unwrap_err()), "out_of_range");
        assert!(validate_lifecycle(&Lifecycle { idle_ttl_hours: 720, grace_hours: 168, auto_cleanup: false }).is_ok());
        assert!(validate_migrations(&["db/migrations".into()], Some("make migrate")).is_ok());
        assert!(validate_migrations(&["../x".into()], None).is_err());
        assert!(validate_migrations(&["a".into(), "a".into()], None).is_err());
        assert!(validate_migrations(&[], Some("  ")).is_err());
    }

    proptest! {
        #[test]
        fn env_var_names_match_the_regex(name in "\\PC{0,140}") {
            let expected = name.len() <= MAX_VAR_NAME_BYTES
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            prop_assert_eq!(validate_env_var_name("env_vars", &name).is_ok(), expected);
        }

        #[test]
        fn valid_names_are_accepted(name in "[A-Za-z_][A-Za-z0-9_]{0,127}") {
            prop_assert!(validate_env_var_name("env_vars", &name).is_ok());
        }

        #[test]
        fn finite_numbers_round_trip(n in proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL) {
            let input = typed(EnvType::Number, json!(n));
            prop_assert_eq!(parse_env_value("N", &input).unwrap(), EnvValue::Number(n));
            let stored = serde_json::to_value(EnvValue::Number(n)).unwrap();
            prop_assert_eq!(serde_json::from_value::<EnvValue>(stored).unwrap(), EnvValue::Number(n));
        }

        #[test]
        fn a_value_is_accepted_only_under_its_own_type(v in arb_json(), ty in arb_type()) {
            let result = parse_env_value("K", &typed(ty, v.clone()));
            let expected = match (ty, &v) {
                (EnvType::Json, _) => true,
                (EnvType::String, Value::String(s)) => !s.contains('\0'),
                (EnvType::Boolean, Value::Bool(_)) => true,
                (EnvType::Number, Value::Number(n)) => n.as_f64().is_some_and(f64::is_finite)
                    && n.as_i64().is_none_or(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER)
                    && n.as_u64().is_none_or(|u| u <= MAX_SAFE_INTEGER),
                _ => false,
            };
            prop_assert_eq!(result.is_ok(), expected, "{:?} {:?}", ty, v);
            if let Ok(value) = result {
                prop_assert_eq!(value.env_type(), ty);
            }
        }
    }

    fn arb_type() -> impl Strategy<Value = EnvType> {
        prop_oneof![Just(EnvType::String), Just(EnvType::Number), Just(EnvType::Boolean), Just(EnvType::Json)]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            proptest::num::f64::NORMAL.prop_map(|f| json!(f)),
            prop_oneof![Just("NaN".to_owned()), Just("Infinity".to_owned()), "\\PC{0,12}", Just("a\0b".to_owned())]
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
