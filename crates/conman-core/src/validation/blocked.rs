//! Glob lists: the app's `blocked_paths` and the globs of `path_rules`.
//! A [`GlobList`] is compiled once from its patterns and matched against
//! [`RepoPath`]s; `*` stays within a segment, `**` crosses segments.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

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
        self.set.is_match(path.as_str())
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

/// The blocked-path policy of an app (SPEC §2.1). `.git/**` is always
/// blocked, whatever the settings say, because Git itself owns it.
#[derive(Debug, Clone)]
pub struct BlockedPaths(GlobList);

impl BlockedPaths {
    /// The SPEC default list.
    pub fn default_patterns() -> Vec<String> {
        vec![".git/**".into(), ".gitignore".into(), ".github/**".into()]
    }

    /// Compiles the app's list plus the always-blocked `.git/**`.
    pub fn new(patterns: &[String]) -> Result<Self, Error> {
        let mut all = patterns.to_vec();
        if !all.iter().any(|p| p == ".git/**") {
            all.push(".git/**".into());
        }
        all.push(".git".into());
        Ok(BlockedPaths(GlobList::new(&all)?))
    }

    /// Refuses `path` with `validation_error` / reason `path_blocked` if blocked.
    pub fn check(&self, path: &RepoPath) -> Result<(), Error> {
        if self.0.matches(path) {
            return Err(Error::Validation {
                message: format!("path {path} is blocked by the app's blocked_paths"),
                details: Some(serde_json::json!({ "field": "path", "reason": "path_blocked", "path": path.as_str() })),
            });
        }
        Ok(())
    }
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
    fn git_dir_is_blocked_even_when_settings_clear_the_list() {
        let blocked = BlockedPaths::new(&[]).unwrap();
        assert!(blocked.check(&p(".git/config")).is_err());
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
