//! Repository paths. A [`RepoPath`] is relative, `/`-separated and normalised:
//! no empty, `.` or `..` segments, no leading `/`, no NUL, no backslash, at
//! most [`MAX_PATH_BYTES`] bytes (SPEC §2.2). Construction is the only check.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::Error;

/// Longest accepted path, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// A validated path inside an app repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath(String);

impl RepoPath {
    /// Validates `raw` and returns it as a path, or says exactly what is wrong.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let refuse = |reason: &str, message: &str| Err(Error::invalid("path", reason, message));
        if raw.is_empty() {
            return refuse("empty", "path is empty");
        }
        if raw.len() > MAX_PATH_BYTES {
            return refuse("too_long", "path is longer than 4096 bytes");
        }
        if raw.contains('\0') {
            return refuse("nul", "path contains a NUL byte");
        }
        if raw.contains('\\') {
            return refuse("backslash", "path contains a backslash; use '/'");
        }
        if raw.starts_with('/') {
            return refuse("absolute", "path must be relative");
        }
        for segment in raw.split('/') {
            match segment {
                "" => return refuse("empty_segment", "path has an empty segment"),
                "." | ".." => return refuse("dot_segment", "path has a '.' or '..' segment"),
                _ => {}
            }
            if segment.chars().any(char::is_control) {
                return refuse("control_char", "path contains a control character");
            }
        }
        Ok(RepoPath(raw.to_owned()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments of the path, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RepoPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason(raw: &str) -> String {
        match RepoPath::parse(raw).unwrap_err() {
            Error::Validation { details: Some(d), .. } => d["reason"].as_str().unwrap().to_owned(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn accepts_normal_relative_paths() {
        for ok in ["a", "config/app.yaml", "a/b/c.d.e", ".env", "dir/.hidden", "ünï/cödé.txt"] {
            assert_eq!(RepoPath::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_each_odd_path_with_its_reason() {
        let long = "a".repeat(5000);
        let cases = [
            ("", "empty"),
            ("../x", "dot_segment"),
            ("a/../b", "dot_segment"),
            ("a/./b", "dot_segment"),
            ("/etc/passwd", "absolute"),
            ("a//b", "empty_segment"),
            ("a/", "empty_segment"),
            ("a\0b", "nul"),
            ("a\\b", "backslash"),
            (long.as_str(), "too_long"),
            ("a\nb", "control_char"),
        ];
        for (raw, want) in cases {
            assert_eq!(reason(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn exactly_4096_bytes_is_the_limit() {
        let at_limit = "a".repeat(MAX_PATH_BYTES);
        assert!(RepoPath::parse(&at_limit).is_ok());
        assert!(RepoPath::parse(&format!("{at_limit}b")).is_err());
    }

    proptest! {
        #[test]
        fn accepted_paths_are_normalised(raw in "[a-z./\\\\]{0,24}") {
            if let Ok(p) = RepoPath::parse(&raw) {
                prop_assert!(!p.as_str().starts_with('/'));
                prop_assert!(!p.as_str().contains('\\'));
                for seg in p.segments() {
                    prop_assert!(!seg.is_empty() && seg != "." && seg != "..");
                }
            }
        }

        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            let _ = RepoPath::parse(&raw);
        }
    }
}
