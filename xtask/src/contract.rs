//! The frozen HTTP contract: `docs/contracts/openapi.json` must equal, byte for
//! byte, what `conman-server openapi` prints.
//!
//! Invariant: the frozen file is only ever written by `cargo xtask freeze`, so
//! the contract changes only when someone means it to.

use std::fs;
use std::path::Path;
use std::process::Stdio;

use crate::Failure;

/// Where the frozen contract lives, relative to the workspace root.
pub(crate) const CONTRACT_PATH: &str = "docs/contracts/openapi.json";

const FREEZE_HINT: &str =
    "the HTTP contract changed: if you meant it, run `cargo xtask freeze` and commit docs/contracts/openapi.json";

/// Lines of each side shown by [`diff_summary`] before it elides the rest.
const DIFF_LINES: usize = 12;
/// Characters of one line shown by [`diff_summary`].
const LINE_WIDTH: usize = 160;

/// Gate step: compare the generated document with the frozen one.
pub(crate) fn check(root: &Path) -> Result<(), Failure> {
    let generated = generate(root)?;
    let path = root.join(CONTRACT_PATH);
    let frozen = fs::read(&path).map_err(|e| {
        Failure::new(
            format!("cannot read {CONTRACT_PATH}: {e}"),
            "freeze the contract once with `cargo xtask freeze` and commit docs/contracts/openapi.json",
        )
    })?;
    if frozen == generated {
        println!("{CONTRACT_PATH}: matches conman-server openapi ({} bytes)", frozen.len());
        return Ok(());
    }
    let frozen = String::from_utf8_lossy(&frozen);
    let generated = String::from_utf8_lossy(&generated);
    println!("--- {CONTRACT_PATH} (frozen)\n+++ conman-server openapi (generated)");
    println!("{}", diff_summary(&frozen, &generated));
    Err(Failure::new(format!("{CONTRACT_PATH} differs from `conman-server openapi`"), FREEZE_HINT))
}

/// `cargo xtask freeze`: write the generated document to the frozen path.
pub(crate) fn freeze(root: &Path) -> Result<(), Failure> {
    let generated = generate(root)?;
    let path = root.join(CONTRACT_PATH);
    let before = fs::read(&path).ok();
    if before.as_deref() == Some(generated.as_slice()) {
        println!("{CONTRACT_PATH}: unchanged ({} bytes)", generated.len());
        return Ok(());
    }
    let dir = path.parent().expect("CONTRACT_PATH has a parent directory");
    let write_hint = "check permissions on docs/contracts/";
    fs::create_dir_all(dir).map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display()), write_hint))?;
    fs::write(&path, &generated).map_err(|e| Failure::new(format!("cannot write {CONTRACT_PATH}: {e}"), write_hint))?;
    match before {
        None => println!("{CONTRACT_PATH}: created ({} bytes)", generated.len()),
        Some(before) => {
            println!("{CONTRACT_PATH}: updated ({} bytes -> {} bytes)", before.len(), generated.len());
            println!("{}", diff_summary(&String::from_utf8_lossy(&before), &String::from_utf8_lossy(&generated)));
        }
    }
    println!("review and commit {CONTRACT_PATH}");
    Ok(())
}

/// Runs `conman-server openapi` and returns its stdout (stderr is inherited).
fn generate(root: &Path) -> Result<Vec<u8>, Failure> {
    let mut cmd =
        crate::cargo(root, &["run", "--quiet", "-p", "conman-api", "--bin", "conman-server", "--", "openapi"]);
    let line = crate::display(&cmd);
    let hint = "`conman-server openapi` must build and print the OpenAPI JSON document to stdout";
    println!("$ {line}");
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::new(format!("could not start `{line}`: {e}"), hint))?;
    if !output.status.success() {
        return Err(Failure::new(format!("`{line}` failed ({})", output.status), hint));
    }
    if !output.stdout.trim_ascii_start().starts_with(b"{") {
        return Err(Failure::new(format!("`{line}` did not print a JSON object on stdout"), hint));
    }
    Ok(output.stdout)
}

/// A short unified-style diff: the first differing region, with a little
/// context, common prefix and suffix lines skipped. Long lines (a minified
/// document is one line) are cut to a window around the first difference.
fn diff_summary(expected: &str, actual: &str) -> String {
    // Split on '\n' (not `lines()`) so a missing trailing newline or a '\r'
    // still shows up as a difference.
    let old: Vec<&str> = expected.split('\n').collect();
    let new: Vec<&str> = actual.split('\n').collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old.iter().rev().zip(new.iter().rev()).take(max_suffix).take_while(|(a, b)| a == b).count();
    let old_changed = &old[prefix..old.len() - suffix];
    let new_changed = &new[prefix..new.len() - suffix];
    let column = match (old_changed.first(), new_changed.first()) {
        (Some(a), Some(b)) => a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count(),
        _ => 0,
    };

    let context_start = prefix.saturating_sub(3);
    let mut out = format!("@@ first difference at line {}, column {} @@", prefix + 1, column + 1);
    for line in &old[context_start..prefix] {
        out.push_str(&format!("\n {}", excerpt(line, 0)));
    }
    for (sign, lines) in [('-', old_changed), ('+', new_changed)] {
        for line in lines.iter().take(DIFF_LINES) {
            out.push_str(&format!("\n{sign}{}", excerpt(line, column)));
        }
        if lines.len() > DIFF_LINES {
            out.push_str(&format!("\n{sign} ... ({} more lines)", lines.len() - DIFF_LINES));
        }
    }
    out
}

/// At most [`LINE_WIDTH`] characters of `line`, starting a little before `column`.
fn excerpt(line: &str, column: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= LINE_WIDTH {
        return line.to_string();
    }
    let start = column.saturating_sub(LINE_WIDTH / 4).min(chars.len() - LINE_WIDTH);
    let end = start + LINE_WIDTH;
    let head = if start > 0 { "…" } else { "" };
    let tail = if end < chars.len() { "…" } else { "" };
    format!("{head}{}{tail}", chars[start..end].iter().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_the_changed_lines_with_context() {
        let old = "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3\n}\n";
        let new = "{\n  \"a\": 1,\n  \"b\": 20,\n  \"c\": 3\n}\n";
        assert_eq!(
            diff_summary(old, new),
            "@@ first difference at line 3, column 9 @@\n {\n   \"a\": 1,\n-  \"b\": 2,\n+  \"b\": 20,"
        );
    }

    #[test]
    fn diff_shows_a_missing_trailing_newline() {
        assert_eq!(diff_summary("{}\n", "{}"), "@@ first difference at line 2, column 1 @@\n {}\n-");
    }

    #[test]
    fn diff_cuts_a_minified_document_around_the_difference() {
        let old = format!("{{\"x\":\"{}\",\"v\":1}}", "a".repeat(500));
        let new = format!("{{\"x\":\"{}\",\"v\":2}}", "a".repeat(500));
        let diff = diff_summary(&old, &new);
        assert!(diff.contains("\"v\":1}"), "{diff}");
        assert!(diff.contains("\"v\":2}"), "{diff}");
        assert!(diff.lines().all(|l| l.chars().count() <= LINE_WIDTH + 3), "{diff}");
    }

    #[test]
    fn diff_elides_long_changes() {
        let old = "x\n".repeat(30);
        let diff = diff_summary(&old, "");
        assert!(diff.ends_with("-x\n- ... (18 more lines)"), "{diff}");
    }
}
