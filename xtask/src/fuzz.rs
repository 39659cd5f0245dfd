//! Gate step `fuzz`: schemathesis against a real `conman-server`
//! (decision 0014).
//!
//! Invariants:
//! - the server is the real binary on an embedded SQLite store in a fresh
//!   data directory under `target/fuzz/`, on 127.0.0.1 and a port the
//!   system picks; it is killed when the step ends, however it ends;
//! - it is seeded through its own API (`xtask/fuzz/seed.py`): an app, a
//!   `user` member, a workspace with a file, a changeset with a comment,
//!   a runtime profile with a secret, an invite, a job and a draft
//!   release, so path parameters name real objects;
//! - schemathesis (pinned in `.ci/fuzz-requirements.txt`, installed by
//!   `.ci/run` into `.ci/.venv`) runs over `/api/openapi.json` with every
//!   check, the configuration of `xtask/fuzz/schemathesis.toml`, a fixed
//!   seed and bounded examples: once as the `user` member, then as the
//!   operator (who is also the app's admin), then logout alone (it revokes
//!   the token it is called with); any failure fails the step;
//! - without the virtual environment the step fails in CI and says loudly
//!   that it was skipped, and how to install it, elsewhere.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::gate::in_ci;
use crate::{cargo, display, run_inherited, Failure};

/// The virtual environment `.ci/run` creates, relative to the root.
const VENV: &str = ".ci/.venv";
/// The pinned requirements of that environment.
const REQUIREMENTS: &str = ".ci/fuzz-requirements.txt";
/// Schemathesis configuration and the seeding script.
const CONFIG: &str = "xtask/fuzz/schemathesis.toml";
const SEED: &str = "xtask/fuzz/seed.py";
/// The operation that revokes the caller's token.
const LOGOUT: &str = "/api/auth/logout";

/// Operator of the fuzzed installation.
const ADMIN_EMAIL: &str = "admin@fuzz.example";
/// Password of every account the seed creates (SPEC minimum is 12).
const PASSWORD: &str = "fuzzing horse battery staple";

/// Longest wait for the server to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Gate step: see the module documentation.
pub(crate) fn run(root: &Path) -> Result<(), Failure> {
    let schemathesis = root.join(VENV).join("bin/schemathesis");
    let python = root.join(VENV).join("bin/python");
    if !schemathesis.is_file() || !python.is_file() {
        let install = format!("python3 -m venv {VENV} && {VENV}/bin/pip install -r {REQUIREMENTS}");
        if in_ci() {
            return Err(Failure::new(
                format!("schemathesis is not installed in {VENV}: CI must run the fuzz step"),
                format!("use .ci/run, or install it with `{install}`"),
            ));
        }
        println!("************************************************************");
        println!("*  fuzz: SKIPPED (no schemathesis in {VENV})");
        println!("*  Install it with:");
        println!("*    {install}");
        println!("*  CI runs this step.");
        println!("************************************************************");
        return Ok(());
    }
    run_inherited(
        &mut cargo(root, &["build", "--quiet", "-p", "conman-api", "-p", "conman-cli", "--bins"]),
        "conman-server and conman must build",
    )?;
    let bin = target_dir(root).join("debug");
    let work = target_dir(root).join("fuzz");
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| io_failure(&work, e))?;
    }
    let data = work.join("data");
    fs::create_dir_all(&data).map_err(|e| io_failure(&data, e))?;

    let mut bootstrap = Command::new(bin.join("conman"));
    bootstrap
        .arg("--data-dir")
        .arg(&data)
        .args(["bootstrap-admin", ADMIN_EMAIL, "Fuzz Admin"])
        .env("CONMAN_BOOTSTRAP_PASSWORD", PASSWORD)
        .stdin(Stdio::null());
    run_inherited(&mut bootstrap, "`conman bootstrap-admin` must create the operator of a fresh installation")?;

    let server = Server::start(&bin.join("conman-server"), &data, &work.join("server.log"))?;
    println!("conman-server listening on {} (log: {})", server.base, work.join("server.log").display());

    let seeded = seed(root, &python, &server.base)?;
    let mut failed = Vec::new();
    // Logout revokes the token it is called with, which would turn every
    // later case into a 401: it runs last, in a run of its own.
    let runs = [
        ("user", "user", ["--exclude-path", LOGOUT]),
        ("admin", "admin", ["--exclude-path", LOGOUT]),
        ("logout", "user", ["--include-path", LOGOUT]),
    ];
    for (run, who, filter) in runs {
        let token = seeded.get(&format!("{}_TOKEN", who.to_uppercase())).cloned().unwrap_or_default();
        let mut cmd = Command::new(&schemathesis);
        cmd.arg("--config-file")
            .arg(root.join(CONFIG))
            .arg("run")
            .arg(format!("{}/api/openapi.json", server.base))
            .args(filter)
            .arg("--report-dir")
            .arg(work.join(format!("report-{run}")))
            .current_dir(&work)
            .env("NO_COLOR", "1")
            .env("CONMAN_FUZZ_TOKEN", token)
            .stdin(Stdio::null());
        for (key, value) in &seeded {
            // Ids of the run's own caller win over the other's.
            let own = key.strip_prefix(&format!("{}_", who.to_uppercase()));
            if let Some(name) = own {
                cmd.env(format!("CONMAN_FUZZ_{name}"), value);
            } else if !key.starts_with("USER_") && !key.starts_with("ADMIN_") {
                cmd.env(format!("CONMAN_FUZZ_{key}"), value);
            }
        }
        println!("\n--- schemathesis: {run} run, as the {who} ---");
        if let Err(failure) = run_inherited(&mut cmd, "") {
            eprintln!("{failure}");
            failed.push(run);
        }
    }
    drop(server);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            format!("schemathesis reported failures in the runs: {}", failed.join(", ")),
            format!(
                "each failure above names the operation and a curl line to reproduce it (reports and the \
                 server log in {}); fix the schema, the docs or the handler — see decision 0014",
                work.display()
            ),
        ))
    }
}

fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(format!("{}: {e}", path.display()), "check the permissions of the target directory")
}

/// Runs the seeding script; answers its `KEY=VALUE` lines.
fn seed(root: &Path, python: &Path, base: &str) -> Result<BTreeMap<String, String>, Failure> {
    let mut cmd = Command::new(python);
    cmd.arg(root.join(SEED)).arg(base).arg(ADMIN_EMAIL).arg(PASSWORD).stdin(Stdio::null()).stderr(Stdio::inherit());
    let line = display(&cmd);
    println!("$ {line}");
    let hint = "the seeding script talks to the server through its API; see the server log for why it refused";
    let output = cmd.output().map_err(|e| Failure::new(format!("could not start `{line}`: {e}"), hint))?;
    if !output.status.success() {
        return Err(Failure::new(format!("`{line}` failed ({})", output.status), hint));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let seeded: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    for key in ["USER_TOKEN", "ADMIN_TOKEN", "APP_ID"] {
        if !seeded.contains_key(key) {
            return Err(Failure::new(format!("the seeding script printed no {key}"), hint));
        }
    }
    let shown: Vec<&str> = seeded.keys().filter(|k| !k.ends_with("TOKEN")).map(String::as_str).collect();
    println!("seeded: {}", shown.join(", "));
    Ok(seeded)
}

/// The running server; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(binary: &Path, data: &Path, log: &Path) -> Result<Server, Failure> {
        let hint = "conman-server must start on a fresh data directory and log `listening on http://ADDR`";
        let mut cmd = Command::new(binary);
        cmd.arg("--data-dir")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--workers", "1"])
            .env("NO_COLOR", "1")
            .env("CONMAN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let line = display(&cmd);
        println!("$ {line}");
        let mut child = cmd.spawn().map_err(|e| Failure::new(format!("could not start `{line}`: {e}"), hint))?;
        let (found, listening) = mpsc::channel();
        let mut file = fs::File::create(log).map_err(|e| io_failure(log, e))?;
        let (lines_tx, lines) = mpsc::channel::<String>();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines_tx = lines_tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        drop(lines_tx);
        thread::spawn(move || {
            for line in lines {
                let _ = writeln!(file, "{line}");
                if let Some(addr) = listening_address(&line) {
                    let _ = found.send(addr);
                }
            }
        });
        let mut server = Server { child, base: String::new() };
        match listening.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                server.base = format!("http://{addr}");
                Ok(server)
            }
            Err(_) => {
                Err(Failure::new(format!("`{line}` did not say where it listens (log: {})", log.display()), hint))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1:PORT` out of the server's `listening on http://…` line.
fn listening_address(line: &str) -> Option<String> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let addr: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':')).collect();
    (!addr.is_empty()).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::listening_address;

    #[test]
    fn the_address_is_read_from_the_servers_log_line() {
        let line = "2026-12-03T10:00:00Z  INFO Conman listening on http://127.0.0.1:41234 data_dir=/x";
        assert_eq!(listening_address(line).as_deref(), Some("127.0.0.1:41234"));
        assert_eq!(listening_address("INFO something else"), None);
    }
}
