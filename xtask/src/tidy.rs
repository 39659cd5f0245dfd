//! Tidy checks: structural rules of the repository that no compiler enforces,
//! in the spirit of rust-analyzer's `tidy.rs`.
//!
//! Invariant: each check is a pure function from the workspace root to a list
//! of problems (empty means clean), so the gate and `cargo test -p xtask` run
//! exactly the same code.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::Failure;

/// Crates that must never be a (non-dev) dependency of `conman-core`; their
/// `-`/`_` families (`sqlx-core`, `tokio-util`, `tower-http`, ...) are banned too.
const CORE_BANNED_DEPS: &[&str] =
    &["sqlx", "rusqlite", "git2", "axum", "hyper", "tower", "reqwest", "tokio", "utoipa", "clap"];

/// One tidy check: a name, the check itself, and what to do when it fails.
struct Check {
    name: &'static str,
    run: fn(&Path) -> Vec<String>,
    hint: &'static str,
}

const CHECKS: &[Check] = &[
    Check {
        name: "conman-core has no driver dependencies",
        run: core_banned_dependencies,
        hint: "conman-core is the pure domain: put driver code in an adapter crate (dev-dependencies are fine)",
    },
    Check {
        name: "every .rs file starts with a `//!` module doc",
        run: missing_module_docs,
        hint: "start each file with a `//!` line saying what it is for and its invariant",
    },
    Check {
        name: "no #[ignore] or #[should_panic] tests",
        run: ignored_or_should_panic_tests,
        hint: "assert the `Err` instead of #[should_panic]; fix or delete ignored tests",
    },
    Check {
        name: "docs/ARCHITECTURE.md mentions every crate",
        run: architecture_gaps,
        hint: "give each crate a section in docs/ARCHITECTURE.md with `Invariant:` and `Boundary:` lines",
    },
];

/// Gate step: runs every check, reports all problems, fails if there are any.
pub(crate) fn run(root: &Path) -> Result<(), Failure> {
    let mut failed = Vec::new();
    for check in CHECKS {
        let problems = (check.run)(root);
        if problems.is_empty() {
            println!("tidy: ok      {}", check.name);
        } else {
            println!("tidy: FAILED  {} ({} problem(s))", check.name, problems.len());
            for problem in &problems {
                println!("    {problem}");
            }
            println!("    hint: {}", check.hint);
            failed.push(check.name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            format!("tidy: {} of {} checks failed: {}", failed.len(), CHECKS.len(), failed.join("; ")),
            "see the per-check hints above; `cargo test -p xtask` runs the same checks",
        ))
    }
}

/// (a) Banned crates in the `[dependencies]` of `crates/conman-core/Cargo.toml`.
fn core_banned_dependencies(root: &Path) -> Vec<String> {
    let rel = "crates/conman-core/Cargo.toml";
    match fs::read_to_string(root.join(rel)) {
        Ok(manifest) => banned_dependencies(&manifest, CORE_BANNED_DEPS)
            .into_iter()
            .map(|(line, name)| format!("{rel}:{line}: depends on `{name}`"))
            .collect(),
        Err(e) => vec![format!("{rel}: cannot read: {e}")],
    }
}

/// (b) `.rs` files under `crates/` and `xtask/` whose first non-empty line is not `//!`.
fn missing_module_docs(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for file in rust_files(root, &["crates", "xtask"], &mut problems) {
        match fs::read_to_string(&file) {
            Ok(text) if starts_with_module_doc(&text) => {}
            Ok(_) => problems.push(format!("{}: first line is not a `//!` module doc", relative(root, &file))),
            Err(e) => problems.push(format!("{}: cannot read: {e}", relative(root, &file))),
        }
    }
    problems
}

/// (c) `#[ignore]` and `#[should_panic]` attributes in `.rs` files under `crates/`.
fn ignored_or_should_panic_tests(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for file in rust_files(root, &["crates"], &mut problems) {
        match fs::read_to_string(&file) {
            Ok(text) => {
                for (line, attr) in forbidden_test_attributes(&text) {
                    problems.push(format!("{}:{line}: {attr}", relative(root, &file)));
                }
            }
            Err(e) => problems.push(format!("{}: cannot read: {e}", relative(root, &file))),
        }
    }
    problems
}

/// (d) Crate directories under `crates/` that `docs/ARCHITECTURE.md` never names.
fn architecture_gaps(root: &Path) -> Vec<String> {
    let doc = match fs::read_to_string(root.join("docs/ARCHITECTURE.md")) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("docs/ARCHITECTURE.md: cannot read: {e}")],
    };
    match crate_dirs(root) {
        Ok(crates) => crates
            .into_iter()
            .filter(|name| !mentions(&doc, name))
            .map(|name| format!("docs/ARCHITECTURE.md: never mentions `{name}` (crates/{name})"))
            .collect(),
        Err(e) => vec![format!("crates/: cannot list: {e}")],
    }
}

/// `(line number, dependency name)` for each banned crate in a regular
/// dependency table: `[dependencies]`, `[dependencies.NAME]` and their
/// `[target.'cfg(..)'.dependencies]` forms. Dev and build dependencies are
/// not looked at. A line-based reading of TOML, enough for Cargo manifests.
fn banned_dependencies(manifest: &str, banned: &[&str]) -> Vec<(usize, String)> {
    let is_banned = |name: &str| {
        banned.iter().any(|b| name == *b || name.strip_prefix(b).is_some_and(|rest| rest.starts_with(['-', '_'])))
    };
    let mut found = Vec::new();
    let mut in_dependencies = false;
    for (index, raw) in manifest.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(header) = line.strip_prefix('[') {
            let header: String = header.trim_end_matches(']').chars().filter(|c| !c.is_whitespace()).collect();
            let is_target = header.starts_with("target.");
            in_dependencies = header == "dependencies" || (is_target && header.ends_with(".dependencies"));
            // `[dependencies.NAME]`: the table's keys are NAME's settings, not dependencies.
            let table_name = match header.strip_prefix("dependencies.") {
                Some(name) => Some(name),
                None if is_target => header.rsplit_once(".dependencies.").map(|(_, name)| name),
                None => None,
            };
            if let Some(name) = table_name.map(|n| n.trim_matches(['"', '\''])).filter(|n| is_banned(n)) {
                found.push((index + 1, name.to_string()));
            }
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.trim();
        let name = key.split('.').next().unwrap_or(key).trim_matches(['"', '\'', ' ']);
        // A renamed dependency: `db = { package = "sqlx", ... }`.
        let package = value
            .split_once("package")
            .and_then(|(_, rest)| rest.trim_start().strip_prefix('='))
            .and_then(|rest| rest.trim_start().strip_prefix('"'))
            .and_then(|rest| rest.split('"').next());
        for candidate in [Some(name), package].into_iter().flatten() {
            if is_banned(candidate) {
                found.push((index + 1, candidate.to_string()));
                break;
            }
        }
    }
    found
}

fn starts_with_module_doc(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().map(str::trim).find(|line| !line.is_empty()).is_some_and(|line| line.starts_with("//!"))
}

/// `(line number, attribute)` for each `#[ignore]` / `#[should_panic]`
/// (with or without arguments) outside comments.
fn forbidden_test_attributes(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        for attr in ["#[ignore", "#[should_panic"] {
            let hit = compact.match_indices(attr).any(|(at, _)| {
                let after = compact[at + attr.len()..].chars().next();
                matches!(after, Some(']' | '=' | '('))
            });
            if hit {
                found.push((index + 1, if attr == "#[ignore" { "#[ignore]" } else { "#[should_panic]" }));
            }
        }
    }
    found
}

/// Whether `doc` names `word` as a whole word (not as part of a longer crate name).
fn mentions(doc: &str, word: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    doc.match_indices(word).any(|(at, _)| {
        let before = doc[..at].chars().next_back();
        let after = doc[at + word.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// Names of the directories under `crates/` that hold a `Cargo.toml`, sorted.
fn crate_dirs(root: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(root.join("crates"))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Every `.rs` file under the given top-level directories, skipping `target`
/// and hidden directories, sorted. Unreadable directories become problems.
fn rust_files(root: &Path, dirs: &[&str], problems: &mut Vec<String>) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<String>) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return problems.push(format!("{}: cannot list: {e}", relative(root, dir))),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, root, files, problems);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), root, &mut files, problems);
    }
    files.sort();
    files
}

/// `path` relative to the workspace root, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_clean(check: &Check) {
        let problems = (check.run)(&crate::workspace_root());
        assert!(problems.is_empty(), "tidy: {}\n  {}\nhint: {}", check.name, problems.join("\n  "), check.hint);
    }

    // The repository itself — the same checks `cargo xtask gate` runs.

    #[test]
    fn conman_core_has_no_driver_dependencies() {
        assert_clean(&CHECKS[0]);
    }

    #[test]
    fn every_rs_file_starts_with_a_module_doc() {
        assert_clean(&CHECKS[1]);
    }

    #[test]
    fn no_ignored_or_should_panic_tests() {
        assert_clean(&CHECKS[2]);
    }

    #[test]
    fn architecture_md_mentions_every_crate() {
        assert_clean(&CHECKS[3]);
    }

    // The checks' own behaviour, on inline fixtures.

    #[test]
    fn banned_dependencies_reads_only_regular_dependency_tables() {
        let manifest = r#"
[package]
name = "tokio-like" # not a dependency

[dependencies]
serde.workspace = true
tokio = { workspace = true }
"sqlx-core" = "0.8"
tokio_stream = "0.1"
tokionic = "1"
db = { package = "rusqlite", version = "0.32" }

[dependencies.axum]
version = "0.8"

[target.'cfg(unix)'.dependencies]
git2 = "0.20"

[dev-dependencies]
tokio.workspace = true

[dev-dependencies.hyper]
version = "1"

[build-dependencies]
clap = "4"
"#;
        let found = banned_dependencies(manifest, CORE_BANNED_DEPS);
        let found: Vec<(usize, &str)> = found.iter().map(|(line, name)| (*line, name.as_str())).collect();
        assert_eq!(
            found,
            [(7, "tokio"), (8, "sqlx-core"), (9, "tokio_stream"), (11, "rusqlite"), (13, "axum"), (17, "git2")]
        );
    }

    #[test]
    fn module_doc_must_be_the_first_non_empty_line() {
        assert!(starts_with_module_doc("//! Doc.\nfn f() {}"));
        assert!(starts_with_module_doc("\n\n   //! Doc after blank lines."));
        assert!(!starts_with_module_doc("// plain comment\n//! Doc."));
        assert!(!starts_with_module_doc("#![allow(dead_code)]\n//! Doc."));
        assert!(!starts_with_module_doc("/// Item doc.\nfn f() {}"));
        assert!(!starts_with_module_doc(""));
    }

    #[test]
    fn forbidden_attributes_are_found_in_every_spelling() {
        let text = "\
#[test]
#[ignore]
fn a() {}
#[ignore = \"slow\"]
#[should_panic(expected = \"boom\")]
#[ should_panic ]
// #[ignore] in a comment is fine
/// so is #[should_panic] in a doc comment
#[ignore_this_custom_attribute]
";
        assert_eq!(
            forbidden_test_attributes(text),
            [(2, "#[ignore]"), (4, "#[ignore]"), (5, "#[should_panic]"), (6, "#[should_panic]")]
        );
    }

    #[test]
    fn mentions_needs_the_whole_crate_name() {
        assert!(mentions("## `conman-core`\nInvariant: ...", "conman-core"));
        assert!(mentions("conman-api.", "conman-api"));
        assert!(!mentions("conman-store-pg", "conman-store"));
        assert!(!mentions("the conman-api-types crate", "conman-api"));
    }
}
