//! `cargo xtask bench [ARGS..]`: runs conman-api's `conman_bench` target.
//!
//! Invariant: a thin pass-through — arguments go after `--` untouched and the
//! bench's exit code is ours.

use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(root: &Path, args: &[String]) -> ExitCode {
    let mut cmd = crate::cargo(root, &["bench", "-p", "conman-api", "--bench", "conman_bench", "--"]);
    cmd.args(args);
    println!("$ {}", crate::display(&cmd));
    match cmd.status() {
        Ok(status) => match status.code() {
            // Exit codes are 0..=255 on every platform we run on; anything else
            // (or death by signal) is reported as a plain failure.
            Some(code) => u8::try_from(code).map_or(ExitCode::FAILURE, ExitCode::from),
            None => {
                eprintln!("error: the bench was terminated ({status})");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: could not start cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
