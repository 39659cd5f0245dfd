//! Running the real `conman` binary in tests: a clean environment in the
//! installation's directory, bounded runs, JSON answers, and a background
//! `conman worker`.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `conman --data-dir DIR` without the CONMAN_ variables of the caller,
/// run in `dir` (so no stray `conman.toml` or `.env` is read); gates echo
/// a line and workers poll every 100 ms.
pub(crate) fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conman"));
    cmd.arg("--data-dir").arg(dir);
    for var in [
        "CONMAN_DATABASE_URL",
        "CONMAN_CONFIG",
        "CONMAN_TOKEN",
        "CONMAN_AS",
        "CONMAN_SECRETS_MASTER_KEY",
        "CONMAN_LISTEN",
        "CONMAN_WORKERS",
        "CONMAN_GATE_RELEASE_CMD",
        "CONMAN_DEPLOY_CMD",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CONMAN_GATE_SUBMIT_CMD", "echo submit gate ok")
        .env("CONMAN_GATE_DEPLOY_CMD", "echo deploy gate ok")
        .env("CONMAN_JOB_POLL_MS", "100");
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to the end (at most 120 s), feeding it `stdin`.
pub(crate) fn run_command(cmd: &mut Command, stdin: Option<&str>) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let pid = child.id().to_string();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match finished.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("{cmd:?} did not finish in 120 s");
        }
    }
}

/// `conman --as USER ARGS`.
pub(crate) fn run_as(dir: &Path, user: &str, args: &[&str], stdin: Option<&str>) -> Output {
    run_command(command(dir).args(["--as", user]).args(args), stdin)
}

/// `conman --as USER ARGS`, which must succeed; answers stdout.
pub(crate) fn ok(dir: &Path, user: &str, args: &[&str]) -> String {
    let out = run_as(dir, user, args, None);
    assert!(out.status.success(), "conman {args:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `conman --as USER --json ARGS` fed `stdin`, parsed.
pub(crate) fn json_in(dir: &Path, user: &str, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    let out = run_as(dir, user, &[&["--json"], args].concat(), stdin);
    assert!(out.status.success(), "conman {args:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{text}"))
}

/// `conman --as USER --json ARGS`, parsed.
pub(crate) fn json(dir: &Path, user: &str, args: &[&str]) -> serde_json::Value {
    json_in(dir, user, args, None)
}

/// `conman --as USER ARGS`, which must fail; answers (exit code, stderr).
pub(crate) fn fails(dir: &Path, user: &str, args: &[&str]) -> (i32, String) {
    let out = run_as(dir, user, args, None);
    assert!(!out.status.success(), "conman {args:?} should have failed:\n{}", String::from_utf8_lossy(&out.stdout));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Creates the operator `email` with `bootstrap-admin`.
pub(crate) fn bootstrap(dir: &Path, email: &str, password: &str) {
    let boot = run_command(
        command(dir).args(["bootstrap-admin", email, "Operator"]).env("CONMAN_BOOTSTRAP_PASSWORD", password),
        None,
    );
    assert!(boot.status.success(), "{}", String::from_utf8_lossy(&boot.stderr));
}

/// Creates the user `email` as the operator `admin`.
pub(crate) fn create_user(dir: &Path, admin: &str, email: &str, password: &str) {
    let created = run_command(
        command(dir).args(["--as", admin, "user", "create", email, email]).env("CONMAN_USER_PASSWORD", password),
        None,
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
}

/// Polls `done` every 100 ms for at most 20 s; panics naming `what`.
pub(crate) fn wait_until(what: &str, done: impl Fn() -> bool) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting until {what}");
    });
}

/// A `conman worker` child, killed on drop.
pub(crate) struct Worker(Child);

impl Worker {
    /// Starts `conman worker --workers N` on `dir`.
    pub(crate) fn start(dir: &Path, workers: u32) -> Worker {
        Worker::start_with(dir, workers, &[])
    }

    /// [`Worker::start`] with more environment variables.
    pub(crate) fn start_with(dir: &Path, workers: u32, env: &[(&str, &str)]) -> Worker {
        let mut cmd = command(dir);
        cmd.args(["worker", "--workers", &workers.to_string()]);
        for (name, value) in env {
            cmd.env(name, value);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        Worker(child)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
