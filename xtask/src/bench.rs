//! `cargo xtask bench [ARGS..]`: builds the release `conman` binary (the
//! Postgres rows start it as worker processes), then runs conman-api's
//! `conman_bench` target.
//!
//! Invariant: a thin pass-through — arguments go after `--` untouched and the
//! bench's exit code is ours. So `cargo xtask bench -- --check` fails (cargo
//! reports the bench's non-zero exit) exactly when a bar printed FAIL, and
//! without `--check` a slow figure never fails the command.

use std::path::Path;
use std::process::{Command, ExitCode};

pub(crate) fn run(root: &Path, args: &[String]) -> ExitCode {
    let build = crate::cargo(root, &["build", "--release", "-p", "conman-cli", "--bin", "conman"]);
    match exit_code(build, "the build") {
        0 => {}
        failed => return ExitCode::from(failed),
    }
    let mut bench = crate::cargo(root, &["bench", "-p", "conman-api", "--bench", "conman_bench", "--"]);
    bench.args(args);
    ExitCode::from(exit_code(bench, "the bench"))
}

/// Runs `cmd` with inherited stdio and answers its exit code (1 when it
/// could not start or died by a signal).
fn exit_code(mut cmd: Command, what: &str) -> u8 {
    println!("$ {}", crate::display(&cmd));
    match cmd.status() {
        Ok(status) => match status.code() {
            // Exit codes are 0..=255 on every platform we run on; anything else
            // (or death by signal) is reported as a plain failure.
            Some(code) => u8::try_from(code).unwrap_or(1),
            None => {
                eprintln!("error: {what} was terminated ({status})");
                1
            }
        },
        Err(e) => {
            eprintln!("error: could not start cargo: {e}");
            1
        }
    }
}
