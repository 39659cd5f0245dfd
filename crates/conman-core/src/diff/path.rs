//! Dotted key paths of the semantic diff: how a position in a parsed tree is
//! written as text.
//!
//! Invariants:
//! - map keys are joined with `.`; array indices are appended as `[n]`
//!   (no dot before them): `spec.containers[0].image`;
//! - a key that is empty, equals `$`, or contains `.`, `[`, `]`, `"` or any
//!   whitespace is written as a double-quoted string in which `"` and `\`
//!   are escaped with a backslash: `labels."app.kubernetes.io/name"`;
//!   every other key is written verbatim, so the text parses back to the
//!   same segments unambiguously;
//! - a multi-document YAML file prefixes every path with `[doc N]`
//!   (0-based); the prefix is never used for single documents;
//! - the root of a document is `$` (or the bare `[doc N]` prefix).
//!
//! The same writer is used by the tree walk and by the line indexers, so a
//! path found in the text is spelled exactly like the path of a change.

use std::cmp::Ordering;

/// The key written for the root of a single document.
pub(super) const ROOT: &str = "$";

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Seg<'a> {
    /// Document of a multi-document YAML file (0-based).
    Doc(usize),
    /// A map key.
    Key(&'a str),
    /// An array index.
    Index(usize),
}

impl Seg<'_> {
    /// Natural order: documents and indices by number, keys by text; kinds
    /// that cannot meet at the same position order doc < key < index.
    pub(super) fn cmp_natural(&self, other: &Seg<'_>) -> Ordering {
        match (self, other) {
            (Seg::Doc(a), Seg::Doc(b)) | (Seg::Index(a), Seg::Index(b)) => a.cmp(b),
            (Seg::Key(a), Seg::Key(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Seg::Doc(_) => 0,
            Seg::Key(_) => 1,
            Seg::Index(_) => 2,
        }
    }
}

/// Compares two paths segment by segment (a prefix sorts first).
pub(super) fn cmp_paths(a: &[Seg<'_>], b: &[Seg<'_>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = x.cmp_natural(y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// True when `key` must be quoted to be read back unambiguously.
pub(super) fn needs_quotes(key: &str) -> bool {
    key.is_empty() || key == ROOT || key.chars().any(|c| matches!(c, '.' | '[' | ']' | '"') || c.is_whitespace())
}

/// Appends a map key (with its `.` separator when not first).
pub(super) fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    if needs_quotes(key) {
        out.push('"');
        for c in key.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(key);
    }
}

/// Appends an array index.
pub(super) fn push_index(out: &mut String, index: usize) {
    out.push('[');
    out.push_str(&index.to_string());
    out.push(']');
}

/// Appends a document prefix (only ever first).
pub(super) fn push_doc(out: &mut String, doc: usize) {
    out.push_str("[doc ");
    out.push_str(&doc.to_string());
    out.push(']');
}

/// Appends one segment.
pub(super) fn push_seg(out: &mut String, seg: &Seg<'_>) {
    match seg {
        Seg::Doc(d) => push_doc(out, *d),
        Seg::Key(k) => push_key(out, k),
        Seg::Index(i) => push_index(out, *i),
    }
}

/// Writes a path without the root marker (`""` for the root).
pub(super) fn write_raw(segs: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in segs {
        push_seg(&mut out, seg);
    }
    out
}

/// Writes a path as reported in a change (`$` for the root).
pub(super) fn write(segs: &[Seg<'_>]) -> String {
    let out = write_raw(segs);
    if out.is_empty() {
        ROOT.to_owned()
    } else {
        out
    }
}

/// An owned segment, as read back from text (tests and consumers that
/// apply a diff).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OwnedSeg {
    Doc(usize),
    Key(String),
    Index(usize),
}

/// Reads a path written by [`write`] back into segments; `None` when the
/// text is not such a path.
#[cfg(test)]
pub(super) fn parse(text: &str) -> Option<Vec<OwnedSeg>> {
    let mut segs = Vec::new();
    if text == ROOT {
        return Some(segs);
    }
    let mut rest = text;
    if let Some(after) = rest.strip_prefix("[doc ") {
        let end = after.find(']')?;
        segs.push(OwnedSeg::Doc(after[..end].parse().ok()?));
        rest = &after[end + 1..];
    }
    let mut first = segs.is_empty();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            segs.push(OwnedSeg::Index(after[..end].parse().ok()?));
            rest = &after[end + 1..];
        } else {
            if !first {
                rest = rest.strip_prefix('.')?;
            }
            if let Some(after) = rest.strip_prefix('"') {
                let mut key = String::new();
                let mut chars = after.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => key.push(chars.next()?.1),
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => key.push(c),
                    }
                }
                segs.push(OwnedSeg::Key(key));
                rest = &after[end? + 1..];
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                if end == 0 {
                    return None;
                }
                segs.push(OwnedSeg::Key(rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
        first = false;
    }
    Some(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let cases: Vec<(Vec<Seg<'_>>, &str)> = vec![
            (vec![], "$"),
            (vec![Seg::Key("a"), Seg::Key("b")], "a.b"),
            (vec![Seg::Key("a"), Seg::Index(0), Seg::Key("c")], "a[0].c"),
            (vec![Seg::Index(2)], "[2]"),
            (vec![Seg::Key("labels"), Seg::Key("app.k8s.io/name")], r#"labels."app.k8s.io/name""#),
            (vec![Seg::Key(""), Seg::Key("a b"), Seg::Key(r#"q"\"#)], "\"\".\"a b\".\"q\\\"\\\\\""),
            (vec![Seg::Doc(1), Seg::Key("x")], "[doc 1].x"),
            (vec![Seg::Doc(0)], "[doc 0]"),
            (vec![Seg::Key("$")], r#""$""#),
            (vec![Seg::Key("back\\slash")], "back\\slash"),
        ];
        for (segs, text) in cases {
            let written = write(&segs);
            assert_eq!(written, text);
            let back = parse(&written).expect("parses");
            let expected: Vec<OwnedSeg> = segs
                .iter()
                .map(|s| match s {
                    Seg::Doc(d) => OwnedSeg::Doc(*d),
                    Seg::Key(k) => OwnedSeg::Key((*k).to_owned()),
                    Seg::Index(i) => OwnedSeg::Index(*i),
                })
                .collect();
            assert_eq!(back, expected, "{written}");
        }
    }

    #[test]
    fn natural_order_compares_indices_numerically() {
        let a = [Seg::Key("a"), Seg::Index(2)];
        let b = [Seg::Key("a"), Seg::Index(10)];
        assert_eq!(cmp_paths(&a, &b), Ordering::Less);
        assert_eq!(cmp_paths(&a[..1], &a), Ordering::Less);
    }
}
