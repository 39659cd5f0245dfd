//! `cargo xtask`: Conman's project automation. It depends on std and a Rust
//! parser (for the core's frozen surface) only, so it builds in seconds.
//!
//! Invariant: every command works from any working directory — the workspace
//! root is derived from this crate's manifest, never from the cwd — and child
//! commands run with inherited stdio so their output streams as usual.

mod bench;
mod contract;
mod fuzz;
mod gate;
mod surface;
mod tidy;

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  gate            the one check CI and people run: fmt, tidy, clippy, core docs, tests,
                  the embedding example, the frozen OpenAPI contract, schemathesis against a
                  real server (fuzz) and the core surface; stops at the first failure
  freeze          regenerate the frozen contracts in docs/contracts/: openapi.json from
                  conman-server, conman-core.surface.rs.txt from conman-core's sources
  fuzz            the gate's fuzz step alone: schemathesis against a real, seeded server
  bench [ARGS..]  cargo bench -p conman-api --bench conman_bench -- ARGS..
  help            this message
";

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    match command.as_deref() {
        None | Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("gate") if rest.is_empty() => gate::run(&root),
        Some("freeze") if rest.is_empty() => report(contract::freeze(&root).and_then(|()| surface::freeze(&root))),
        Some("fuzz") if rest.is_empty() => report(fuzz::run(&root)),
        Some("bench") => bench::run(&root, &rest),
        Some(cmd @ ("gate" | "freeze" | "fuzz")) => {
            eprintln!("error: `cargo xtask {cmd}` takes no arguments (got {rest:?})\n\n{USAGE}");
            ExitCode::from(2)
        }
        Some(other) => {
            eprintln!("error: unknown command `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The workspace root: the parent of this crate's directory.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().expect("xtask lives one level below the workspace root").to_path_buf()
}

/// Why a command or gate step failed, and what the reader should do about it.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) hint: String,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Failure {
        Failure { message: message.into(), hint: hint.into() }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\nhint: {}", self.hint)?;
        }
        Ok(())
    }
}

fn report(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo <args>` run from the workspace root.
pub(crate) fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(args).current_dir(root);
    cmd
}

/// The command line as a reader would type it, for logs and error messages.
pub(crate) fn display(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` with inherited stdio; a non-zero exit becomes a [`Failure`] with `hint`.
pub(crate) fn run_inherited(cmd: &mut Command, hint: &str) -> Result<(), Failure> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd.status().map_err(|e| Failure::new(format!("could not start `{line}`: {e}"), hint))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!("`{line}` failed ({status})"), hint))
    }
}
