//! Glob lists: the app's `blocked_paths` and the globs of `path_rules`.
//! A [`GlobList`] is compiled once from its patterns and matched against
//! [`RepoPath`]s; `*` stays within a segment, `**` crosses segments.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::git_names::{fold_git_special, is_git_reserved, is_git_special};
use super::RepoPath;
use crate::error::Error;

/// A compiled list of glob patterns.
#[derive(Debug, Clone)]
pub struct GlobList {
    patterns: Vec<String>,
    set: GlobSet,
}

impl GlobList {
    /// Compiles `patterns`, refusing any that is not a valid glob.
    pub fn new(patterns: &[String]) -> Result<Self, Error> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            builder.add(compile(pattern)?);
        }
        let set = builder.build().map_err(|e| Error::invalid("globs", "invalid_glob", e.to_string()))?;
        Ok(GlobList { patterns: patterns.to_vec(), set })
    }

    /// True when `path` matches any pattern.
    pub fn matches(&self, path: &RepoPath) -> bool {
        self.matches_str(path.as_str())
    }

    fn matches_str(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    /// The patterns this list was built from.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

fn compile(pattern: &str) -> Result<Glob, Error> {
    if pattern.is_empty() || pattern.len() > 1024 {
        return Err(Error::invalid("globs", "invalid_glob", "a glob must be 1 to 1024 bytes"));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| Error::invalid("globs", "invalid_glob", format!("invalid glob {pattern:?}: {e}")))
}

/// The blocked-path policy of an app (SPEC §2.1).
///
/// Invariants: every spelling of `.git` that git itself refuses
/// ([`is_git_reserved`], in any segment) is blocked, whatever the settings
/// say, because Git owns it; and a git-special name (`.gitignore`,
/// `.github`, ...) is matched in the spelling case-insensitive filesystems
/// see ([`fold_git_special`]), so `.GITHUB/x` or `.GITIGNORE` is blocked
/// wherever `.github/**` or `.gitignore` is. Other names match exactly.
#[derive(Debug, Clone)]
pub struct BlockedPaths {
    /// The app's patterns, matched against the path as written.
    exact: GlobList,
    /// The same patterns with their git-special segments folded, matched
    /// against the path with its git-special segments folded.
    folded: GlobList,
}

impl BlockedPaths {
    /// The SPEC default list.
    pub fn default_patterns() -> Vec<String> {
        vec![".git/**".into(), ".gitignore".into(), ".github/**".into()]
    }

    /// Compiles the app's list (git's own `.git` is blocked besides, by
    /// [`Self::check`]).
    pub fn new(patterns: &[String]) -> Result<Self, Error> {
        let exact = GlobList::new(patterns)?;
        let folded: Vec<String> = patterns.iter().map(|p| fold_special_segments(p)).collect();
        Ok(BlockedPaths { exact, folded: GlobList::new(&folded)? })
    }

    /// Refuses `path` with `validation_error` / reason `path_blocked` if blocked.
    pub fn check(&self, path: &RepoPath) -> Result<(), Error> {
        let reserved = path.segments().any(is_git_reserved);
        if reserved || self.exact.matches(path) || self.folded.matches_str(&fold_special_segments(path.as_str())) {
            return Err(Error::Validation {
                message: if reserved {
                    format!("path {path} is blocked: git reserves '.git' in every spelling")
                } else {
                    format!("path {path} is blocked by the app's blocked_paths")
                },
                details: Some(serde_json::json!({ "field": "path", "reason": "path_blocked", "path": path.as_str() })),
            });
        }
        Ok(())
    }
}

/// `path` (or a glob) with each git-special segment in its folded spelling.
fn fold_special_segments(path: &str) -> String {
    path.split('/')
        .map(|s| if is_git_special(s) { fold_git_special(s) } else { s.to_owned() })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RepoPath {
        RepoPath::parse(s).unwrap()
    }

    #[test]
    fn default_list_blocks_git_internals_and_workflows() {
        let blocked = BlockedPaths::new(&BlockedPaths::default_patterns()).unwrap();
        for path in [".git/config", ".git/hooks/pre-commit", ".gitignore", ".github/workflows/x.yml", ".git"] {
            assert!(blocked.check(&p(path)).is_err(), "{path} should be blocked");
        }
        for path in ["config.yaml", "a/.gitignore", "github/x", ".gitattributes", "docs/.github"] {
            assert!(blocked.check(&p(path)).is_ok(), "{path} should be allowed");
        }
    }

    #[test]
    fn git_special_names_are_blocked_in_every_spelling() {
        let blocked = BlockedPaths::new(&BlockedPaths::default_patterns()).unwrap();
        for path in [
            ".GITHUB/workflows/x.yml",
            ".GitHub/x",
            ".GITIGNORE",
            ".gitignore.",
            ".git\u{200c}",
            ".g\u{200c}it/config",
            "a/.GIT/x",
            "deep/dir/.git./x",
            "GIT~1/config",
            ".git::$INDEX_ALLOCATION/x",
        ] {
            assert!(blocked.check(&p(path)).is_err(), "{path:?} should be blocked");
        }
        // Folding applies to git-special names only: other names stay exact.
        let list = BlockedPaths::new(&["Secrets/**".to_owned(), ".GitHub/**".to_owned()]).unwrap();
        assert!(list.check(&p("Secrets/a")).is_err());
        assert!(list.check(&p("secrets/a")).is_ok());
        assert!(list.check(&p(".github/a")).is_err(), "a git-special pattern folds too");
    }

    #[test]
    fn git_dir_is_blocked_even_when_settings_clear_the_list() {
        let blocked = BlockedPaths::new(&[]).unwrap();
        assert!(blocked.check(&p(".git/config")).is_err());
        assert!(blocked.check(&p(".GIT")).is_err());
        assert!(blocked.check(&p("a/b/.git/c")).is_err());
        assert!(blocked.check(&p(".github/x")).is_ok());
    }

    #[test]
    fn star_does_not_cross_directories() {
        let list = GlobList::new(&["secrets/*.yaml".to_owned()]).unwrap();
        assert!(list.matches(&p("secrets/a.yaml")));
        assert!(!list.matches(&p("secrets/deep/a.yaml")));
    }

    #[test]
    fn invalid_globs_are_refused() {
        assert!(GlobList::new(&["a[".to_owned()]).is_err());
        assert!(GlobList::new(&[String::new()]).is_err());
    }
}
