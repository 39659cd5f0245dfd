//! SQL literals, for the one piece of SQL this store sends with values
//! written into its text: a unit's last message (see `unit_of_work.rs`),
//! a simple query that stages the unit's audit entries, chains them and
//! commits in one round trip. Everything else binds parameters.
//!
//! Invariants:
//! - a text value is written as an escape string, `E'…'`, with every `\`
//!   and every `'` doubled: Postgres reads back exactly the value, and
//!   nothing in it can end the literal, whatever `standard_conforming_strings`
//!   says (an escape string does not depend on it);
//! - a value holding NUL is refused: Postgres text cannot hold it, and the
//!   protocol ends a query's text at the first NUL;
//! - uuids and timestamps are formatted from their types (hex digits and
//!   RFC 3339), timestamps truncated to microseconds as [`crate::codec::ts`]
//!   stores them, so a literal stores the same value a bound parameter would.

use std::fmt::Write as _;

use conman_core::domain::Timestamp;
use conman_core::Error;
use uuid::Uuid;

use crate::codec::ts;

/// Appends `value` as an escape-string literal.
pub(crate) fn text(out: &mut String, value: &str) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::invalid("text", "invalid", "text cannot contain the NUL character"));
    }
    out.reserve(value.len() + 3);
    out.push_str("E'");
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    Ok(())
}

/// Appends `value` as an escape-string literal, or `NULL`.
pub(crate) fn opt_text(out: &mut String, value: Option<&str>) -> Result<(), Error> {
    match value {
        Some(value) => text(out, value),
        None => {
            out.push_str("NULL");
            Ok(())
        }
    }
}

/// Appends `value` as a `uuid`.
pub(crate) fn uuid(out: &mut String, value: Uuid) {
    let _ = write!(out, "'{}'::uuid", value.hyphenated());
}

/// Appends `value` as a `uuid`, or `NULL`.
pub(crate) fn opt_uuid(out: &mut String, value: Option<Uuid>) {
    match value {
        Some(value) => uuid(out, value),
        None => out.push_str("NULL"),
    }
}

/// Appends `value` as a `timestamptz` in UTC, to the microsecond.
pub(crate) fn timestamp(out: &mut String, value: &Timestamp) {
    let _ = write!(out, "'{}'::timestamptz", ts(value).to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(value: &str) -> String {
        let mut out = String::new();
        text(&mut out, value).expect("literal");
        out
    }

    #[test]
    fn quotes_and_backslashes_are_doubled_inside_an_escape_string() {
        assert_eq!(lit("plain"), "E'plain'");
        assert_eq!(lit("it's"), "E'it''s'");
        assert_eq!(lit(r"a\'; DROP TABLE audit; --"), r"E'a\\''; DROP TABLE audit; --'");
        assert_eq!(lit("é\n☃"), "E'é\n☃'");
    }

    #[test]
    fn nul_is_refused() {
        let mut out = String::from("kept");
        assert!(text(&mut out, "a\0b").is_err());
        assert_eq!(out, "kept", "a refused value writes nothing");
    }

    #[test]
    fn timestamps_are_utc_microseconds() {
        let at: Timestamp = "2026-11-22T04:01:02.438369999Z".parse().expect("timestamp");
        let mut out = String::new();
        timestamp(&mut out, &at);
        assert_eq!(out, "'2026-11-22T04:01:02.438369Z'::timestamptz");
    }

    #[test]
    fn nulls_and_uuids() {
        let mut out = String::new();
        opt_uuid(&mut out, None);
        out.push(',');
        opt_text(&mut out, None).expect("null");
        out.push(',');
        uuid(&mut out, Uuid::nil());
        assert_eq!(out, "NULL,NULL,'00000000-0000-0000-0000-000000000000'::uuid");
    }
}
