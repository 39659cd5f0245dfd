//! Gates cannot take over the installation (issue 18, decision 0012): a
//! probe gate tries to read the server's environment (`/proc/$PPID/environ`
//! and every other process's), the master key and the SQLite file of the
//! data directory, and lists its own file descriptors (the test holds one
//! open without close-on-exec). In bubblewrap and as a separate user every
//! attempt fails; unsandboxed (`CONMAN_GATE_SANDBOX=none`) the same probe
//! succeeds, which shows the probe is real. Also: kills still reach every
//! process of a sandboxed gate, a sandbox that cannot be honoured fails gate
//! runs (and the worker's start) with the fix, and app admins cannot set
//! gate commands unless the operator allows it.
//!
//! Without bubblewrap or root the sandbox tests print a SKIP line, or fail
//! when `CI=true`.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use common::{TestServer, Workers};
use conman_api::config::Settings;
use conman_api::runtime::{GateSandbox, SandboxMode};
use serde_json::{json, Value};

/// Whether this machine can run the sandbox tests: `Err` says what is
/// missing. Under `CI=true` a missing requirement fails the test.
fn require(what: Result<(), String>) -> bool {
    match what {
        Ok(()) => true,
        Err(missing) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but this machine cannot run the gate sandbox tests: {missing}")
        }
        Err(missing) => {
            eprintln!("SKIP: {missing}");
            false
        }
    }
}

fn bubblewrap_here() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    GateSandbox::resolve(SandboxMode::Bwrap, None, dir.path())
        .map(drop)
        .map_err(|e| format!("{e}: install the Debian package bubblewrap (apt-get install bubblewrap)"))
}

fn root_and_nobody_here() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("the separate-user mode needs the tests to run as root (to switch to nobody)".into());
    }
    match nix::unistd::User::from_name("nobody") {
        Ok(Some(_)) => Ok(()),
        _ => Err("the separate-user mode test needs the user nobody".into()),
    }
}

/// A variable of this process's (the server's) environment that no gate
/// is given: the probe looks for its name.
fn server_variable() -> String {
    let gate = ["PATH", "HOME", "PWD"];
    std::env::vars()
        .map(|(name, _)| name)
        .find(|n| {
            !gate.contains(&n.as_str())
                && !n.starts_with("CONMAN_")
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .expect("the test process has an environment variable of its own")
}

/// The probe gate: one verdict line per attempt.
fn probe(data_dir: &std::path::Path, secret: &str) -> String {
    let data = data_dir.display();
    [
        // First, before the shell redirects or substitutes anything: `ls`
        // lists the descriptors the shell was started with, one a line.
        "echo fds; ls /proc/$$/fd; echo end".to_owned(),
        format!(
            "if tr '\\000' '\\n' < /proc/$PPID/environ 2>/dev/null | grep -q '^{secret}='; \
             then echo 'parent environ: read'; else echo 'parent environ: denied'; fi"
        ),
        format!("if cat {data}/master.key >/dev/null 2>&1; then echo 'master.key: read'; else echo 'master.key: denied'; fi"),
        format!(
            "if head -c 15 {data}/conman.db 2>/dev/null | grep -q 'SQLite format'; \
             then echo 'conman.db: read'; else echo 'conman.db: denied'; fi"
        ),
        // Every process whose environment shows the server's variable.
        format!(
            "n=0; for p in /proc/[0-9]*; do if tr '\\000' '\\n' < $p/environ 2>/dev/null | grep -q '^{secret}='; \
             then n=$((n+1)); fi; done; echo \"foreign environs: $n\""
        ),
        "if echo x > own-file; then echo 'workdir: writable'; else echo 'workdir: read-only'; fi".to_owned(),
        "echo done".to_owned(),
    ]
    .join("; ")
}

/// Runs one submit gate of a new app on `s` to its end; answers the job
/// and its stdout lines.
async fn run_gate(s: &TestServer) -> (Value, Vec<String>) {
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "probed").await;
    let r = s.req("POST", &format!("/api/apps/{app}/jobs"), Some(&admin), Some(json!({ "type": "gate_submit" }))).await;
    r.assert_status(201);
    let job = r.data()["job"]["id"].as_str().unwrap().to_owned();
    let workers = Workers::start(s);
    let done = finished(s, &app, &job).await;
    workers.stop().await;
    let logs = s.get(&format!("/api/apps/{app}/jobs/{job}/logs?limit=1000"), &admin).await;
    logs.assert_status(200);
    eprintln!("gate log: {}", logs.data()["lines"]);
    let stdout = logs.data()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["stream"] == "stdout")
        .map(|l| l["text"].as_str().unwrap().to_owned())
        .collect();
    (done, stdout)
}

async fn finished(s: &TestServer, app: &str, job: &str) -> Value {
    for _ in 0..1500 {
        let r = s.get(&format!("/api/apps/{app}/jobs/{job}"), &s.admin_token).await;
        r.assert_status(200);
        if ["succeeded", "failed", "canceled"].contains(&r.data()["job"]["state"].as_str().unwrap()) {
            return r.data()["job"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {job} did not finish");
}

/// A file of this process without close-on-exec, as a C library might
/// leave one: no gate may see it. Answers the file (keep it) and its fd.
fn leaked_fd() -> (std::fs::File, i32) {
    use std::os::fd::AsRawFd as _;
    let file = std::fs::File::open("/etc/hostname").or_else(|_| std::fs::File::open("/dev/null")).unwrap();
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).unwrap();
    let fd = file.as_raw_fd();
    (file, fd)
}

/// Starts a server whose submit gate is the probe, with `tune` applied.
async fn probed_server(tune: impl FnOnce(&mut Settings)) -> TestServer {
    let secret = server_variable();
    let (s, installation) = TestServer::open_with(|settings| {
        settings.gate_submit_cmd = Some(probe(&settings.data_dir.clone(), &secret));
        tune(settings);
    })
    .await;
    assert_eq!(installation.gate_sandbox_error, None);
    s
}

/// The verdicts every isolated mode must give.
const ISOLATED: [&str; 11] = [
    "fds",
    "0",
    "1",
    "2",
    "end",
    "parent environ: denied",
    "master.key: denied",
    "conman.db: denied",
    "foreign environs: 0",
    "workdir: writable",
    "done",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_bubblewrap_the_probe_gate_reads_nothing_of_the_installation() {
    if !require(bubblewrap_here()) {
        return;
    }
    let (_file, _fd) = leaked_fd();
    let s = probed_server(|settings| settings.gate_sandbox = SandboxMode::Bwrap).await;
    let (job, stdout) = run_gate(&s).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(stdout, ISOLATED, "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_separate_user_the_probe_gate_reads_nothing_of_the_installation() {
    if !require(root_and_nobody_here()) {
        return;
    }
    let (_file, _fd) = leaked_fd();
    let secret = server_variable();
    let (s, installation) = TestServer::open_with(|settings| {
        // Opened to everyone: the start must close it again.
        std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        settings.gate_submit_cmd = Some(probe(&settings.data_dir.clone(), &secret));
        settings.gate_sandbox = SandboxMode::User;
        settings.gate_user = Some("nobody".into());
    })
    .await;
    assert_eq!(installation.gate_sandbox_error, None);
    assert!(matches!(installation.gate_sandbox, GateSandbox::User(_)), "{:?}", installation.gate_sandbox);
    let mode = std::fs::metadata(s.dir.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data directory is closed to the gate user");
    let (job, stdout) = run_gate(&s).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(stdout, ISOLATED, "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsandboxed_the_same_probe_reads_the_installation() {
    let (_file, leaked) = leaked_fd();
    let s = probed_server(|settings| settings.gate_sandbox = SandboxMode::None).await;
    let (job, stdout) = run_gate(&s).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    // Descriptors are closed in every mode, this one included.
    assert_eq!(stdout[..5], ISOLATED[..5], "fd {leaked} of the server must not reach the gate");
    assert_eq!(stdout[5..8], ["parent environ: read", "master.key: read", "conman.db: read"], "{job}");
    let foreign: u32 = stdout[8].strip_prefix("foreign environs: ").unwrap().parse().unwrap();
    assert!(foreign >= 1, "the server's own environment is readable: {stdout:?}");
    assert_eq!(stdout[9..], ISOLATED[9..]);
}

/// Host processes whose command line holds `token`.
fn processes_with(token: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let zombie = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()) == Some('Z');
        if !zombie && String::from_utf8_lossy(&cmdline).contains(token) {
            found.push(pid);
        }
    }
    found
}

/// Waits until no host process has `token` in its command line.
async fn all_gone(token: &str) {
    for _ in 0..500 {
        if processes_with(token).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("processes of the gate outlived it: {:?}", processes_with(token));
}

/// A gate that starts sleepers in and out of its process group (`setsid`
/// too), reports, then waits; `token` marks their command lines.
fn sleepers(token: &str) -> String {
    format!("sleep 1000.{token} & (sleep 1000.{token} &); setsid sleep 1000.{token} & echo up; wait")
}

fn token() -> String {
    format!("{}{:06}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_micros()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_bubblewrap_a_timeout_kills_every_process_of_the_gate_even_setsid_ones() {
    if !require(bubblewrap_here()) {
        return;
    }
    let token = token();
    let (s, _installation) = TestServer::open_with(|settings| {
        settings.gate_submit_cmd = Some(sleepers(&token));
        settings.gate_timeout_secs = 2;
        settings.gate_sandbox = SandboxMode::Bwrap;
    })
    .await;
    let (job, stdout) = run_gate(&s).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["result"]["timed_out"], true, "{job}");
    assert_eq!(stdout, ["up"]);
    all_gone(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_bubblewrap_a_cancel_kills_every_process_of_the_gate() {
    if !require(bubblewrap_here()) {
        return;
    }
    let token = token();
    let (s, _installation) = TestServer::open_with(|settings| {
        settings.gate_submit_cmd = Some(sleepers(&token));
        settings.gate_sandbox = SandboxMode::Bwrap;
    })
    .await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "canceled").await;
    let r = s.req("POST", &format!("/api/apps/{app}/jobs"), Some(&admin), Some(json!({ "type": "gate_submit" }))).await;
    let job = r.data()["job"]["id"].as_str().unwrap().to_owned();
    let workers = Workers::start(&s);
    // bwrap (twice: outside and as the sandbox's pid 1), the shell and the sleepers.
    for _ in 0..1000 {
        if processes_with(&token).len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(processes_with(&token).len() >= 4, "bwrap, the shell and the sleepers run: {:?}", processes_with(&token));
    s.req("POST", &format!("/api/apps/{app}/jobs/{job}/cancel"), Some(&admin), None).await.assert_status(200);
    let done = finished(&s, &app, &job).await;
    workers.stop().await;
    assert_eq!(done["state"], "canceled", "{done}");
    all_gone(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_that_cannot_be_honoured_fails_gate_runs_and_the_worker_start_with_the_fix() {
    let (s, installation) = TestServer::open_with(|settings| {
        settings.gate_submit_cmd = Some("echo should never run".into());
        settings.gate_sandbox = SandboxMode::User;
        settings.gate_user = None;
    })
    .await;
    let why = installation.gate_sandbox_error.clone().expect("a start error");
    assert!(why.contains("CONMAN_GATE_SANDBOX=user needs CONMAN_GATE_USER"), "{why}");
    let (job, stdout) = run_gate(&s).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("could not start") && error.contains("needs CONMAN_GATE_USER"), "{error}");
    assert!(stdout.is_empty(), "the command never ran: {stdout:?}");

    let mut settings = common::settings_for(s.dir.path());
    settings.gate_sandbox = SandboxMode::User;
    let err = conman_api::launch::run_worker(settings).await.unwrap_err().to_string();
    assert!(err.contains("refusing to start") && err.contains("CONMAN_GATE_USER"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_admins_cannot_set_gate_commands_unless_the_operator_allows_it() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "locked").await;
    let patch = json!({ "gates": { "submit": "cat /proc/$PPID/environ" } });
    s.req("PATCH", &format!("/api/apps/{app}/settings"), Some(&admin), Some(patch.clone()))
        .await
        .assert_error(403, "forbidden");

    let s = TestServer::start_with(|settings| settings.allow_app_gate_commands = true).await;
    let app = s.create_app(&s.admin_token, "open").await;
    s.req("PATCH", &format!("/api/apps/{app}/settings"), Some(&s.admin_token), Some(patch)).await.assert_status(200);
}
