//! `cargo xtask gate`: the one command CI and people run before merging.
//!
//! Invariant: steps run in a fixed order, each timed under its own header, and
//! the gate stops at the first failure with a non-zero exit and a hint saying
//! how to fix it. There is deliberately no way to skip a step.

use std::env;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, run_inherited, Failure};

/// Set to run the Postgres-backed tests; unset in CI is a failure.
const DATABASE_URL_VAR: &str = "CONMAN_TEST_DATABASE_URL";

struct Step {
    name: &'static str,
    run: fn(&Path) -> Result<(), Failure>,
}

const STEPS: &[Step] = &[
    Step { name: "fmt", run: fmt },
    Step { name: "tidy", run: crate::tidy::run },
    Step { name: "clippy", run: clippy },
    Step { name: "docs", run: docs },
    Step { name: "test", run: test },
    Step { name: "embed", run: embed },
    Step { name: "contract", run: crate::contract::check },
    Step { name: "fuzz", run: crate::fuzz::run },
    Step { name: "surface", run: crate::surface::check },
];

pub(crate) fn run(root: &Path) -> ExitCode {
    let total = STEPS.len();
    let gate_start = Instant::now();
    for (index, step) in STEPS.iter().enumerate() {
        println!("\n==> gate [{}/{total}] {}", index + 1, step.name);
        let start = Instant::now();
        let result = (step.run)(root);
        let took = seconds(start.elapsed());
        match result {
            Ok(()) => println!("<== {} ok in {took}", step.name),
            Err(failure) => {
                eprintln!("\n<== {} FAILED in {took}", step.name);
                eprintln!("{failure}");
                eprintln!(
                    "gate: step {}/{total} ({}) failed after {}; later steps did not run",
                    index + 1,
                    step.name,
                    seconds(gate_start.elapsed())
                );
                return ExitCode::FAILURE;
            }
        }
    }
    println!("\ngate: all {total} steps passed in {}", seconds(gate_start.elapsed()));
    ExitCode::SUCCESS
}

fn fmt(root: &Path) -> Result<(), Failure> {
    run_inherited(&mut cargo(root, &["fmt", "--all", "--", "--check"]), "run `cargo fmt --all` and commit the result")
}

fn clippy(root: &Path) -> Result<(), Failure> {
    run_inherited(
        &mut cargo(root, &["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"]),
        "fix the clippy warnings above; for a justified exception use a narrow `#[expect(clippy::..., reason = \"...\")]`",
    )
}

/// The core is embedded by other Rust tools: its documentation must build
/// without a warning (every public item is documented: `#![deny(missing_docs)]`).
fn docs(root: &Path) -> Result<(), Failure> {
    let mut doc = cargo(root, &["doc", "-p", "conman-core", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    run_inherited(&mut doc, "fix the rustdoc warnings above (broken links, missing docs) in conman-core")
}

fn test(root: &Path) -> Result<(), Failure> {
    announce_postgres()?;
    let hint = "fix the failing tests above";
    if nextest_available(root) {
        let mut nextest = cargo(root, &["nextest", "run", "--workspace", "--all-features", "--no-fail-fast"]);
        let config = root.join(".config/nextest.toml");
        if config.is_file() {
            nextest.arg("--config-file").arg(&config);
        }
        run_inherited(&mut nextest, hint)?;
        // nextest does not run doctests.
        run_inherited(&mut cargo(root, &["test", "--workspace", "--all-features", "--doc"]), hint)
    } else {
        println!("(cargo-nextest not installed: using cargo test; `cargo install cargo-nextest --locked` for nextest)");
        run_inherited(&mut cargo(root, &["test", "--workspace", "--all-features"]), hint)
    }
}

/// Runs `examples/embed-core`: the core embedded with the SQLite store and
/// the git adapter, no HTTP, from app creation to a changeset in review.
fn embed(root: &Path) -> Result<(), Failure> {
    run_inherited(
        &mut cargo(root, &["run", "--quiet", "-p", "conman-embed-example"]),
        "the embedding example failed: a public core API it relies on changed or broke (examples/embed-core)",
    )
}

/// Says loudly whether the Postgres-backed tests will run; in CI they must.
fn announce_postgres() -> Result<(), Failure> {
    match env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => {
            println!("Postgres tests: ON ({})", redact_password(&url));
            Ok(())
        }
        _ if in_ci() => Err(Failure::new(
            format!("CI must run the Postgres tests: set {DATABASE_URL_VAR}"),
            format!("use .ci/run, or export {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres"),
        )),
        _ => {
            println!("************************************************************");
            println!("*  Postgres tests: SKIPPED ({DATABASE_URL_VAR} not set)");
            println!("*  Only the SQLite store is exercised; CI runs both.");
            println!("************************************************************");
            Ok(())
        }
    }
}

/// `CI` set to anything but empty, `0` or `false`.
pub(crate) fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

fn nextest_available(root: &Path) -> bool {
    cargo(root, &["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The URL with any password removed (from the userinfo and from a
/// `password=` query parameter). Anything that is not a URL is hidden whole.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "connection string hidden: not a URL".to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query.split('&').filter(|param| !param.starts_with("password=")).collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_password_keeps_everything_but_the_password() {
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/postgres"),
            ("postgres://conman:s3cr:et@db:5432/conman", "postgres://conman@db:5432/conman"),
            ("postgres://u:p@h/db?sslmode=require&password=x", "postgres://u@h/db?sslmode=require"),
            ("postgres://h/db?password=x", "postgres://h/db"),
            ("postgres://localhost", "postgres://localhost"),
            ("host=db password=x", "connection string hidden: not a URL"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_password(url), expected, "{url}");
        }
    }
}
