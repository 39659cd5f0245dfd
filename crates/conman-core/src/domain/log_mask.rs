//! [`SecretMask`]: hides secret values in job log lines, the way CI systems
//! print `***` (SPEC §6.3; docs/decisions/0013-job-log-secrets.md).
//!
//! A mask is built once from the secret values a job could print and
//! applied to every line before it is stored or streamed. It hides each
//! value in the forms a command is likely to print it in:
//! - as is, and JSON-string escaped;
//! - hex, lower and upper case;
//! - percent-encoded (RFC 3986 unreserved characters kept), upper and lower
//!   case hex digits;
//! - base64, standard and URL-safe alphabets, at each of the three byte
//!   alignments the value can have inside a longer encoded stream (the
//!   characters that depend on the value alone, so `echo "$S" | base64`
//!   and `printf 'x%s' "$S" | base64` are both caught), and the value
//!   encoded on its own with its padding.
//!
//! Invariants:
//! - a value shorter than [`MIN_MASKED_LEN`] bytes is not masked, in any
//!   form, nor is any form shorter than that (masking `1` or `ab` would
//!   shred every log while hiding nothing): secret values should be longer,
//!   and the decision record says so;
//! - a form split across a line break (e.g. `base64` wrapping at 76
//!   columns) is masked on both sides: the end of a line that is the first
//!   [`MIN_SPLIT_LEN`] or more bytes of a form, and the start of a line
//!   that completes a form begun on the previous line of the same stream;
//! - masking never panics and keeps lines valid UTF-8: a masked range is
//!   widened to character boundaries and replaced by [`MASK`];
//! - `Debug` never prints a value or a form.
//!
//! Masking is a second line of defence: content nobody reviewed gets no
//! real secret values in the first place (`unreviewed_gate_secrets`).

use aho_corasick::{AhoCorasick, Anchored, Input, MatchKind, StartKind};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::error::Error;

/// What a masked range becomes.
pub const MASK: &str = "***";
/// Shortest form that is masked, in bytes.
pub const MIN_MASKED_LEN: usize = 4;
/// Shortest piece of a form masked at a line break, in bytes.
pub const MIN_SPLIT_LEN: usize = 8;

/// The masks of a set of secret values. Cheap to apply, built once per job.
pub struct SecretMask {
    /// Every form, found anywhere in a line (every overlapping match).
    inline: Option<AhoCorasick>,
    /// Every prefix (at least [`MIN_SPLIT_LEN`] long) of every form,
    /// reversed: an anchored search on a reversed line end finds the
    /// longest form prefix the line ends with.
    line_end: Option<AhoCorasick>,
    /// Length of the longest form.
    longest: usize,
}

impl std::fmt::Debug for SecretMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretMask").field("longest", &self.longest).finish_non_exhaustive()
    }
}

impl SecretMask {
    /// A mask hiding `values` (and their encoded forms).
    pub fn new<I, V>(values: I) -> Result<SecretMask, Error>
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        let mut forms: Vec<Vec<u8>> = Vec::new();
        for value in values {
            let value = value.as_ref();
            if value.len() >= MIN_MASKED_LEN {
                forms.extend(forms_of(value));
            }
        }
        forms.retain(|f| f.len() >= MIN_MASKED_LEN);
        forms.sort();
        forms.dedup();
        let longest = forms.iter().map(Vec::len).max().unwrap_or(0);
        let mut prefixes: Vec<Vec<u8>> = forms
            .iter()
            .flat_map(|form| (MIN_SPLIT_LEN..form.len()).map(move |n| form[..n].iter().rev().copied().collect()))
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let build = |patterns: &[Vec<u8>], kind: MatchKind, start: StartKind| -> Result<Option<AhoCorasick>, Error> {
            if patterns.is_empty() {
                return Ok(None);
            }
            AhoCorasick::builder()
                .match_kind(kind)
                .start_kind(start)
                .build(patterns)
                .map(Some)
                .map_err(|e| Error::internal(format_args!("building the job log's secret mask: {e}")))
        };
        Ok(SecretMask {
            inline: build(&forms, MatchKind::Standard, StartKind::Unanchored)?,
            line_end: build(&prefixes, MatchKind::LeftmostLongest, StartKind::Anchored)?,
            longest,
        })
    }

    /// A mask that hides nothing.
    pub fn none() -> SecretMask {
        SecretMask { inline: None, line_end: None, longest: 0 }
    }

    /// True when nothing would be masked.
    pub fn is_empty(&self) -> bool {
        self.inline.is_none()
    }

    /// How many bytes of a line a stream must keep as `previous` for the
    /// next [`SecretMask::mask_line`] of that stream.
    pub fn carry_len(&self) -> usize {
        self.longest.saturating_sub(1)
    }

    /// `line` with every form masked; `previous` is the end (at least
    /// [`SecretMask::carry_len`] bytes, or all) of the previous line of the
    /// same stream, unmasked, so a form split across the break is found.
    pub fn mask_line(&self, previous: &[u8], line: &str) -> String {
        let Some(inline) = &self.inline else { return line.to_owned() };
        let bytes = line.as_bytes();
        let carry = &previous[previous.len().saturating_sub(self.carry_len())..];
        let mut joined = Vec::with_capacity(carry.len() + bytes.len());
        joined.extend_from_slice(carry);
        joined.extend_from_slice(bytes);
        let mut ranges: Vec<(usize, usize)> = inline
            .find_overlapping_iter(&joined)
            .filter(|m| m.end() > carry.len())
            .map(|m| (m.start().saturating_sub(carry.len()), m.end() - carry.len()))
            .collect();
        if let Some(line_end) = &self.line_end {
            let tail: Vec<u8> = bytes.iter().rev().take(self.longest).copied().collect();
            if let Some(m) = line_end.find(Input::new(&tail).anchored(Anchored::Yes)) {
                ranges.push((bytes.len() - m.end(), bytes.len()));
            }
        }
        if ranges.is_empty() {
            return line.to_owned();
        }
        replace_ranges(line, ranges)
    }
}

/// `line` with each range widened to character boundaries, overlapping or
/// touching ranges merged, and each merged range replaced by [`MASK`].
fn replace_ranges(line: &str, ranges: Vec<(usize, usize)>) -> String {
    let mut widened: Vec<(usize, usize)> = ranges
        .into_iter()
        .map(|(mut start, end)| {
            let mut end = end.min(line.len());
            while !line.is_char_boundary(start) {
                start -= 1;
            }
            while !line.is_char_boundary(end) {
                end += 1;
            }
            (start, end)
        })
        .collect();
    widened.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(widened.len());
    for (start, end) in widened {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for (start, end) in merged {
        out.push_str(&line[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&line[at..]);
    out
}

/// The forms one value may be printed in (unfiltered, may repeat).
fn forms_of(value: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![value.to_vec()];
    if let Ok(text) = std::str::from_utf8(value) {
        if let Ok(json) = serde_json::to_string(text) {
            forms.push(json.as_bytes()[1..json.len() - 1].to_vec());
        }
    }
    let hex = hex::encode(value);
    forms.push(hex.to_ascii_uppercase().into_bytes());
    forms.push(hex.into_bytes());
    forms.push(percent_encode(value, true));
    forms.push(percent_encode(value, false));
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for align in 0..3 {
            forms.push(base64_core(engine, value, align));
        }
    }
    // The value encoded on its own, padding included.
    forms.push(STANDARD.encode(value).into_bytes());
    forms.push(URL_SAFE.encode(value).into_bytes());
    forms
}

/// The base64 characters that depend on `value` alone when it is preceded
/// by `align` bytes in the encoded stream (0, 1 or 2).
fn base64_core(engine: &impl base64::Engine, value: &[u8], align: usize) -> Vec<u8> {
    let mut input = vec![0u8; align];
    input.extend_from_slice(value);
    let encoded = engine.encode(&input).into_bytes();
    // Character i covers bits [6i, 6i + 6); the value covers
    // [8 * align, 8 * (align + len)).
    let first = (8 * align).div_ceil(6);
    let end = (8 * (align + value.len())) / 6;
    encoded.get(first..end.min(encoded.len())).map(<[u8]>::to_vec).unwrap_or_default()
}

/// RFC 3986 percent-encoding (unreserved characters kept), with upper- or
/// lower-case hex digits.
fn percent_encode(value: &[u8], upper: bool) -> Vec<u8> {
    let mut out = String::with_capacity(value.len() * 3);
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "s3cr3t-Value/with+chars=";

    fn mask(values: &[&str]) -> SecretMask {
        SecretMask::new(values.iter().map(|v| v.as_bytes())).unwrap()
    }

    fn masked(line: &str) -> String {
        mask(&[SECRET]).mask_line(b"", line)
    }

    #[test]
    fn the_plain_value_is_masked() {
        assert_eq!(masked(&format!("token={SECRET} ok")), "token=*** ok");
        assert_eq!(masked("nothing to hide"), "nothing to hide");
    }

    #[test]
    fn hex_and_percent_forms_are_masked() {
        let hex = hex::encode(SECRET);
        assert_eq!(masked(&format!("x {hex} y")), "x *** y");
        assert_eq!(masked(&format!("x {} y", hex.to_uppercase())), "x *** y");
        assert_eq!(masked("u=s3cr3t-Value%2Fwith%2Bchars%3D&"), "u=***&");
        assert_eq!(masked("u=s3cr3t-Value%2fwith%2bchars%3d&"), "u=***&");
    }

    #[test]
    fn base64_is_masked_at_every_alignment_and_alphabet() {
        for prefix in ["", "x", "xy", "xyz"] {
            for suffix in ["", "\n", "ab"] {
                let plain = format!("{prefix}{SECRET}{suffix}");
                for encoded in [STANDARD_NO_PAD.encode(&plain), URL_SAFE_NO_PAD.encode(&plain)] {
                    let out = masked(&encoded);
                    assert!(out.contains(MASK), "{plain:?} as {encoded} was not masked: {out}");
                    // What is left is at most the characters shared with
                    // the neighbours: a few, never the value's core.
                    assert!(out.len() <= MASK.len() + 8, "{encoded} left too much: {out}");
                }
            }
        }
    }

    #[test]
    fn json_escaped_values_are_masked() {
        let m = mask(&["pa\"ss\\word"]);
        assert_eq!(m.mask_line(b"", r#"{"p":"pa\"ss\\word"}"#), r#"{"p":"***"}"#);
    }

    #[test]
    fn a_value_split_across_lines_is_masked_on_both_sides() {
        let long = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";
        let m = mask(&[long]);
        let (first, second) = (format!("begin {}", &long[..30]), format!("{} end", &long[30..]));
        assert_eq!(m.mask_line(b"", &first), "begin ***");
        assert_eq!(m.mask_line(first.as_bytes(), &second), "*** end");
    }

    #[test]
    fn base64_wrapped_at_76_columns_is_masked_on_both_lines() {
        let value = "k".repeat(20) + "-a-long-secret-value-that-wraps-in-base64-output-0123456789";
        let m = mask(&[value.as_str()]);
        let encoded = STANDARD_NO_PAD.encode(format!("{value}\n"));
        let (first, second) = encoded.split_at(76);
        let (a, b) = (m.mask_line(b"", first), m.mask_line(first.as_bytes(), second));
        assert_eq!(a, MASK, "{first} -> {a}");
        assert!(b.starts_with(MASK) && b.len() <= MASK.len() + 4, "{second} -> {b}");
    }

    #[test]
    fn short_values_are_not_masked() {
        let m = mask(&["abc"]);
        assert!(m.is_empty());
        assert_eq!(m.mask_line(b"", "abc abc"), "abc abc");
    }

    #[test]
    fn multibyte_text_stays_valid_utf8() {
        let m = mask(&["größe-geheim"]);
        assert_eq!(m.mask_line(b"", "é größe-geheim ü"), "é *** ü");
    }

    #[test]
    fn debug_shows_no_value() {
        assert!(!format!("{:?}", mask(&[SECRET])).contains("s3cr3t"));
    }

    proptest! {
        /// Whatever surrounds it, a value printed as is never survives.
        #[test]
        fn a_printed_value_never_survives(
            value in "[ -~]{4,40}",
            before in "[ -~]{0,30}",
            after in "[ -~]{0,30}",
        ) {
            let m = mask(&[value.as_str()]);
            let out = m.mask_line(b"", &format!("{before}{value}{after}"));
            prop_assert!(!out.contains(&value), "{value:?} survived in {out:?}");
        }

        /// Base64 of the value inside any stream never shows its core.
        #[test]
        fn base64_of_a_value_never_survives(
            value in proptest::collection::vec(any::<u8>(), 8..48),
            before in proptest::collection::vec(any::<u8>(), 0..6),
            after in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            let m = SecretMask::new([&value]).unwrap();
            let stream = [before.as_slice(), &value, &after].concat();
            let encoded = STANDARD_NO_PAD.encode(&stream);
            let out = m.mask_line(b"", &encoded);
            let core = base64_core(&STANDARD_NO_PAD, &value, before.len() % 3);
            prop_assert!(!out.as_bytes().windows(core.len()).any(|w| w == core.as_slice()));
        }

        /// Masking never panics on arbitrary text and keeps text that
        /// holds no form unchanged.
        #[test]
        fn unrelated_text_is_unchanged(line in "[a-z ]{0,80}") {
            let m = mask(&["ZZ-SECRET-99"]);
            prop_assert_eq!(m.mask_line(b"", &line), line);
        }
    }
}
