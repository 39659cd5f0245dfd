//! The job runtime end to end, in one process: gate jobs enqueued through
//! `Conman::start_gate_run` on a real SQLite store and a real git
//! repository, run by `run_workers` with the real `ProcessRunner` (real
//! `/bin/sh` processes), and judged by the job's final state, result, error
//! and stored log. Covers the "Bad input and faults" list of the jobs
//! issue that one process can show; the multi-process ones (SIGKILL, two
//! workers racing) live in `crates/conman-cli/tests/worker.rs`.
//!
//! Gates run in the sandbox `CONMAN_GATE_SANDBOX=auto` picks (bubblewrap
//! where installed), except in the tests that exchange files or pids with
//! the gate through the test's directory, which a sandbox hides: those run
//! unsandboxed ([`Harness::unsandboxed`]); `tests/gate_sandbox.rs` shows
//! the same kills inside the sandbox.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use conman_api::compose;
use conman_api::config::Settings;
use conman_api::runtime::{
    metrics, run_workers, GateSandbox, JobLog, NotifyWakeup, ProcessRunner, SandboxMode, WorkerOptions,
};
use conman_core::domain::app::{AppSettingsPatch, GateSettings};
use conman_core::domain::job::{Job, JobLogLine, JobState, JobType, LogStream};
use conman_core::ids::{AppId, JobId};
use conman_core::ports::envelope::EnvelopeCipher;
use conman_core::ports::git::{FileOp, GitPort, Sha, Signature, WriteRequest};
use conman_core::ports::runner::LogSink;
use conman_core::ports::store::UnitOfWork;
use conman_core::ports::system::{Argon2Hasher, OsRandomTokens, SystemClock, UuidV7Ids};
use conman_core::services::{Actor, Config, Conman, GateKind, JobHandler, JobOutcome, NewApp, NewJob, Ports};
use conman_core::validation::RepoPath;
use conman_core::Error;
use conman_git::GitRepos;
use conman_store_sqlite::SqliteStore;
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ADMIN: &str = "admin@example.com";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    settings: Settings,
}

/// One installation: store, repositories, an app with `config.yaml` on a
/// commit, and its creator (an operator, hence the app's admin).
struct Harness {
    dir: TempDir,
    conman: Arc<Conman>,
    wakeup: Arc<NotifyWakeup>,
    actor: Actor,
    app: AppId,
    commit: Sha,
    /// Kept open for its job listener (Postgres harnesses).
    _installation: Option<compose::Installation>,
}

fn fast_hasher() -> Argon2Hasher {
    Argon2Hasher::insecure_fast_for_tests()
}

/// Settings of a Postgres installation in `data_dir` running `workers`.
fn postgres_settings(data_dir: &std::path::Path, url: &str, workers: usize, lease_secs: u64) -> Settings {
    let (data_dir, workers, lease) = (data_dir.to_str().unwrap(), workers.to_string(), lease_secs.to_string());
    let args = ["x", "--data-dir", data_dir, "--database-url", url, "--workers", &workers, "--job-lease-secs", &lease];
    let mut settings = Args::try_parse_from(args).unwrap().settings;
    settings.secrets_master_key = Some("11".repeat(32));
    settings.allow_app_gate_commands = true;
    settings
}

impl Harness {
    async fn new() -> Harness {
        Harness::with(|_| {}, Vec::new()).await
    }

    /// With a tuned configuration and extra job handlers.
    async fn with(tune: impl FnOnce(&mut Config), handlers: Vec<(JobType, Arc<dyn JobHandler>)>) -> Harness {
        Harness::build(SandboxMode::Auto, tune, handlers).await
    }

    /// Gates unsandboxed (`CONMAN_GATE_SANDBOX=none`): for the tests that
    /// share files and pids with the gate through the test's directory.
    async fn unsandboxed(tune: impl FnOnce(&mut Config)) -> Harness {
        Harness::build(SandboxMode::None, tune, Vec::new()).await
    }

    /// App gate commands allowed, the sandbox `mode` resolves to here.
    async fn build(
        mode: SandboxMode,
        tune: impl FnOnce(&mut Config),
        handlers: Vec<(JobType, Arc<dyn JobHandler>)>,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let settings = Args::try_parse_from(["x", "--data-dir", &data_dir, "--job-lease-secs", "2"]).unwrap().settings;
        let mut config = settings.core_config();
        config.allow_app_gate_commands = true;
        tune(&mut config);
        let sandbox = GateSandbox::resolve(mode, None, dir.path()).expect("the gate sandbox resolves");
        let git = GitRepos::new(dir.path().join("repos")).unwrap();
        let wakeup = Arc::new(NotifyWakeup::new());
        let ports = Ports {
            store: Arc::new(SqliteStore::open(&dir.path().join("conman.db")).unwrap()),
            git: Arc::new(git.clone()),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            passwords: Arc::new(Argon2Hasher::insecure_fast_for_tests()),
            tokens: Arc::new(OsRandomTokens),
        };
        let mut conman = Conman::new(ports, config)
            .with_job_runtime(Arc::new(ProcessRunner::new(git.clone(), sandbox)), wakeup.clone())
            .with_secrets(Arc::new(EnvelopeCipher::new([7; 32])));
        for (job_type, handler) in handlers {
            conman = conman.with_job_handler(job_type, handler);
        }
        Harness::set_up(dir, Arc::new(conman), wakeup, git, None).await
    }

    /// On the Postgres database at `url` (through the composition, as a
    /// server runs: its job listener turns notices into `wakeup` calls),
    /// with leases of `lease_secs`.
    /// Its one test shares a marker file with the gate: unsandboxed.
    async fn on_postgres(url: &str, lease_secs: u64) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = postgres_settings(dir.path(), url, 1, lease_secs);
        settings.gate_sandbox = SandboxMode::None;
        let installation = compose::open_with_hasher(&settings, fast_hasher()).expect("open the installation");
        let git = GitRepos::new(dir.path().join("repos")).unwrap();
        let (conman, wakeup) = (installation.conman.clone(), installation.wakeup.clone());
        Harness::set_up(dir, conman, wakeup, git, Some(installation)).await
    }

    /// Another process of the Postgres installation of `self` (no workers,
    /// wake-ups of its own): what it commits reaches `self`'s workers only
    /// through the store.
    fn other_postgres_process(&self, url: &str) -> compose::Installation {
        compose::open_with_hasher(&postgres_settings(self.dir.path(), url, 0, 300), fast_hasher())
            .expect("open the second installation")
    }

    /// The admin, an app and its commit on a fresh installation.
    async fn set_up(
        dir: TempDir,
        conman: Arc<Conman>,
        wakeup: Arc<NotifyWakeup>,
        git: GitRepos,
        installation: Option<compose::Installation>,
    ) -> Harness {
        conman.bootstrap_admin(ADMIN, "Ada Admin", "correct horse battery staple").await.unwrap();
        let actor = conman.local_actor(ADMIN, Default::default()).await.unwrap();
        let new_app = NewApp { name: "gates".into(), integration_branch: None, import_from: None };
        let app = conman.create_app(&actor, new_app).await.unwrap().id;
        let put = FileOp::Put { path: RepoPath::parse("config.yaml").unwrap(), content: b"key: value\n".to_vec() };
        let request = WriteRequest {
            target_ref: "refs/heads/main".into(),
            base_ref: "refs/heads/main".into(),
            ops: vec![put],
            message: "config".into(),
            author: Signature { name: "Ada".into(), email: ADMIN.into() },
        };
        let commit = git.write(app, request).await.unwrap();
        Harness { dir, conman, wakeup, actor, app, commit, _installation: installation }
    }

    /// The same installation as another process sees it, with in-process
    /// signals of its own that reach none of `self`'s workers: a cancel it
    /// requests reaches them only through the store (the cancel poll).
    fn other_process(&self) -> Conman {
        Conman::new(self.conman.ports().clone(), self.conman.config().clone())
    }

    /// Enqueues a job of `job_type` (empty payload, 30 s timeout) by the
    /// admin and wakes the workers.
    async fn enqueue(&self, job_type: JobType) -> Job {
        let spec = NewJob {
            app_id: self.app,
            job_type,
            entity_type: None,
            entity_id: None,
            payload: json!({}),
            timeout_secs: 30,
        };
        let job = self.conman.new_job(Some(&self.actor), spec);
        self.conman.commit_and_wake(self.conman.enqueue_in(UnitOfWork::new(), Some(&self.actor), &job)).await.unwrap();
        job
    }

    /// Sets the app's submit gate command and timeout.
    async fn gate(&self, command: &str, timeout_secs: u64) {
        let gates =
            GateSettings { submit: Some(command.into()), timeout_secs: Some(timeout_secs), ..Default::default() };
        let patch = AppSettingsPatch { gates: Some(gates), ..Default::default() };
        self.conman.update_settings(&self.actor, self.app, patch).await.unwrap();
    }

    /// Starts a submit gate run on the harness commit.
    async fn start_gate(&self) -> Job {
        self.conman.start_gate_run(&self.actor, self.app, GateKind::Submit, Some(self.commit.as_str())).await.unwrap()
    }

    fn workers(&self, options: WorkerOptions) -> Workers {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(run_workers(self.conman.clone(), self.wakeup.clone(), options, shutdown));
        Workers { stop: Some(stop), task }
    }

    async fn job(&self, id: JobId) -> Job {
        self.conman.get_job(&self.actor, self.app, id).await.unwrap()
    }

    /// Polls until `done` holds for the job, at most `within`.
    async fn wait(&self, id: JobId, within: Duration, done: impl Fn(&Job) -> bool) -> Job {
        let start = Instant::now();
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(start.elapsed() < within, "job not there after {within:?}: {job:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finished(&self, id: JobId, within: Duration) -> Job {
        self.wait(id, within, |j| j.state.is_terminal()).await
    }

    /// The whole stored log and its truncation flag.
    async fn log(&self, id: JobId) -> (Vec<JobLogLine>, bool) {
        let mut lines = Vec::new();
        let mut truncated = false;
        loop {
            let after = lines.last().map_or(0, |l: &JobLogLine| l.seq);
            let page = self.conman.job_log(&self.actor, self.app, id, after, 5000).await.unwrap();
            truncated = truncated || page.truncated;
            if page.lines.is_empty() {
                return (lines, truncated);
            }
            lines.extend(page.lines);
        }
    }

    /// Text of the log lines of `stream`.
    async fn output(&self, id: JobId, stream: LogStream) -> Vec<String> {
        self.log(id).await.0.into_iter().filter(|l| l.stream == stream).map(|l| l.text).collect()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

/// Running workers and their shutdown switch.
struct Workers {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Workers {
    /// Signals shutdown and waits for `run_workers` to return.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), &mut self.task).await.expect("workers stop").unwrap();
    }
}

fn options() -> WorkerOptions {
    WorkerOptions {
        concurrency: 2,
        poll_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(5),
        id_prefix: "test".into(),
    }
}

/// True while a process with this pid runs (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()) != Some('Z'),
        Err(_) => false,
    }
}

/// Live processes of process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // state ppid pgrp ...
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            members.push(pid);
        }
    }
    members
}

/// Waits until the pid written to `file` exists, then answers it.
async fn read_pid(file: &str) -> i32 {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(file) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no pid in {file}");
}

/// Waits (briefly: SIGKILL is asynchronous) until `check` is false.
async fn eventually_not(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if !check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} still true after 2 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_command_sees_the_exported_tree_and_only_the_allowed_environment() {
    let h = Harness::new().await;
    h.gate("cat config.yaml; echo to-stderr >&2; env | cut -d= -f1 | sort", 30).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;

    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    assert_eq!(job.result, Some(json!({ "passed": true, "exit_code": 0 })));
    assert_eq!(job.attempts, 1);
    let stdout = h.output(job.id, LogStream::Stdout).await;
    assert_eq!(stdout[0], "key: value", "the exported tree is the working directory: {stdout:?}");
    let names: Vec<&str> = stdout[1..].iter().map(String::as_str).collect();
    assert_eq!(names, ["CONMAN_APP_ID", "CONMAN_COMMIT", "CONMAN_GATE", "HOME", "PATH", "PWD"]);
    assert_eq!(h.output(job.id, LogStream::Stderr).await, ["to-stderr"]);
    let system = h.output(job.id, LogStream::System).await.join("\n");
    assert!(system.contains("gate passed (exit 0)"), "{system}");

    let text = metrics::render(&metrics::StoreCounts::read(&h.conman).await.unwrap());
    assert!(text.contains("conman_jobs{type=\"gate_submit\",state=\"succeeded\"} 1"), "{text}");
    assert!(text.contains("conman_job_run_seconds_count{type=\"gate_submit\"}"), "{text}");
    assert!(text.contains("conman_job_queue_wait_seconds_count{type=\"gate_submit\"}"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_does_not_exist_fails_with_127_and_is_not_retried() {
    let h = Harness::new().await;
    h.gate("no-such-command-anywhere --flag", 30).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;

    assert_eq!(job.state, JobState::Failed, "{job:#?}");
    assert_eq!(job.attempts, 1, "a failing gate is a verdict, not retried");
    assert_eq!(job.result, Some(json!({ "passed": false, "exit_code": 127 })));
    assert_eq!(job.error.as_deref(), Some("gate command exited with code 127"));
    let stderr = h.output(job.id, LogStream::Stderr).await.join("\n");
    assert!(stderr.contains("not found"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_exiting_non_zero_fails_with_its_exit_code() {
    let h = Harness::new().await;
    h.gate("echo checking; printf 'no newline at the end'; exit 3", 30).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;

    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.result, Some(json!({ "passed": false, "exit_code": 3 })));
    assert_eq!(job.error.as_deref(), Some("gate command exited with code 3"));
    assert_eq!(h.output(job.id, LogStream::Stdout).await, ["checking", "no newline at the end"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_output_is_stored_lossily_without_breaking_the_log() {
    let h = Harness::new().await;
    h.gate(r"printf 'a\000b\377\376c\r\nok\n'; head -c 4096 /dev/urandom; echo; echo end", 30).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;

    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    let stdout = h.output(job.id, LogStream::Stdout).await;
    assert_eq!(stdout[0], "a\u{FFFD}b\u{FFFD}\u{FFFD}c");
    assert_eq!(stdout[1], "ok");
    assert_eq!(stdout.last().map(String::as_str), Some("end"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_printing_10_mib_finishes_with_a_bounded_truncated_log() {
    let h = Harness::new().await;
    h.gate(r"head -c 10485760 /dev/zero | tr '\0' 'x' | fold -w 100; echo; echo last-line", 120).await;
    let workers = h.workers(options());
    let started = Instant::now();
    let job = h.start_gate().await;
    let job = h.finished(job.id, Duration::from_secs(120)).await;
    let took = started.elapsed();
    workers.stop().await;

    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    let (lines, truncated) = h.log(job.id).await;
    let bytes: usize = lines.iter().map(|l| l.text.len()).sum();
    eprintln!("10 MiB gate: {took:?}, {} lines / {bytes} bytes stored", lines.len());
    assert!(truncated, "the log is marked truncated");
    assert!(bytes <= 1024 * 1024, "stored log is {bytes} bytes");
    let stdout: Vec<&str> = lines.iter().filter(|l| l.stream == LogStream::Stdout).map(|l| l.text.as_str()).collect();
    assert_eq!(stdout.last(), Some(&"last-line"), "the tail is kept");
    // 10 MiB is 104,857.6 lines of 100: the last `x` line is 60 long.
    assert!(stdout[..stdout.len() - 2].iter().all(|l| *l == "x".repeat(100)));
    assert_eq!(stdout[stdout.len() - 2], "x".repeat(60));
    assert!(stdout.len() > 5000, "about 1 MiB of 100-byte lines is kept, got {}", stdout.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_log_is_written_in_few_batches_and_in_order() {
    let h = Harness::new().await;
    let job = h.start_gate().await;
    let log = JobLog::start(h.conman.clone(), job.id);
    let line = "y".repeat(100);
    for _ in 0..104_858 {
        log.line(LogStream::Stdout, line.clone()).await;
    }
    log.line(LogStream::Stdout, "the end".into()).await;
    let appends = log.appends();
    log.finish().await;
    eprintln!("104,859 lines of ~100 bytes: {appends} store appends before finish");
    assert!(appends <= 500, "{appends} store appends for 10 MiB");
    let (lines, truncated) = h.log(job.id).await;
    assert!(truncated);
    assert_eq!(lines.last().map(|l| l.text.as_str()), Some("the end"));
    assert!(lines.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_never_ends_is_killed_at_its_timeout() {
    let h = Harness::new().await;
    h.gate("echo starting; sleep 1000", 2).await;
    let workers = h.workers(options());
    let started = Instant::now();
    let job = h.start_gate().await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    let took = started.elapsed();
    workers.stop().await;

    eprintln!("a 2 s gate timeout ended the job after {took:?}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.result, Some(json!({ "passed": false, "timed_out": true })));
    assert!(job.error.as_deref().unwrap().contains("timed out after 2 s"), "{job:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_forked_by_a_timed_out_command_dies_with_it() {
    let h = Harness::unsandboxed(|_| {}).await;
    let pid_file = h.path("child.pid");
    h.gate(&format!("sleep 1000 & echo $! > {pid_file}; (sleep 1000 &) ; wait"), 2).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    let child = read_pid(&pid_file).await;
    assert!(alive(child));
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;

    assert_eq!(job.state, JobState::Failed);
    eventually_not("the forked child is alive", || alive(child)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_child_left_by_a_passing_command_is_killed_too() {
    let h = Harness::unsandboxed(|_| {}).await;
    let pid_file = h.path("daemon.pid");
    h.gate(&format!("sleep 1000 & echo $! > {pid_file}; echo done"), 30).await;
    let workers = h.workers(options());
    let started = Instant::now();
    let job = h.start_gate().await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    let took = started.elapsed();
    workers.stop().await;

    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    assert!(took < Duration::from_secs(5), "the job ends when the shell exits, not at the timeout: {took:?}");
    let daemon = read_pid(&pid_file).await;
    eventually_not("the background child is alive", || alive(daemon)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_kills_its_process_group() {
    let h = Harness::unsandboxed(|_| {}).await;
    let pid_file = h.path("shell.pid");
    h.gate(&format!("echo $$ > {pid_file}; sleep 1000 & sleep 1000"), 60).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    let group = read_pid(&pid_file).await;
    assert!(group_members(group).len() >= 2, "shell and sleeps run");
    let asked = Instant::now();
    let after = h.conman.cancel_job(&h.actor, h.app, job.id).await.unwrap();
    assert!(after.cancel_requested);
    let job = h.finished(job.id, Duration::from_secs(10)).await;
    let took = asked.elapsed();
    workers.stop().await;

    eprintln!("cancel of a running job took {took:?} (lease 2 s, renewal every 667 ms)");
    assert_eq!(job.state, JobState::Canceled, "{job:#?}");
    eventually_not("the process group has members", || !group_members(group).is_empty()).await;
    let system = h.output(job.id, LogStream::System).await.join("\n");
    assert!(system.contains("canceled"), "{system}");
}

/// Leases long enough that renewal never comes during a test: whatever
/// stops a canceled job is the cancel path itself.
fn long_leases(config: &mut Config) {
    config.jobs.lease_ttl = Duration::from_secs(300);
}

/// Waits until the job's stdout has `line`.
async fn printed(h: &Harness, id: JobId, line: &str) {
    for _ in 0..1000 {
        if h.output(id, LogStream::Stdout).await.iter().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the job never printed {line:?}");
}

/// The gate of the cancel tests: prints `before`, sleeps 30 s, then writes
/// `marker` and prints `after` — so a canceled job that shows neither was
/// really killed during its sleep.
fn sleeping_gate(marker: &str) -> String {
    format!("echo before; sleep 30; touch {marker}; echo after")
}

/// The job ended canceled with the command killed mid-sleep.
async fn assert_killed_mid_sleep(h: &Harness, job: &Job, marker: &str) {
    assert_eq!(job.state, JobState::Canceled, "{job:#?}");
    let stdout = h.output(job.id, LogStream::Stdout).await;
    assert_eq!(stdout, ["before"], "the line after the sleep never came");
    assert!(!std::path::Path::new(marker).exists(), "the command never got past its sleep");
    let system = h.output(job.id, LogStream::System).await.join("\n");
    assert!(system.contains("canceled: the job was stopped"), "{system}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_gate_canceled_while_running_ends_canceled_even_if_it_exits_first() {
    let h = Harness::unsandboxed(long_leases).await;
    let release = h.path("release");
    // Runs until the test lets it go, then passes.
    h.gate(&format!("echo started; while [ ! -f {release} ]; do sleep 0.01; done; echo released"), 60).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    printed(&h, job.id, "started").await;
    let asked = h.conman.cancel_job(&h.actor, h.app, job.id).await.unwrap();
    assert!(asked.cancel_requested);
    // Whether the kill or the gate's own exit comes first, it ends canceled.
    std::fs::write(&release, "").unwrap();
    let job = h.finished(job.id, Duration::from_secs(30)).await;
    workers.stop().await;
    assert_eq!(job.state, JobState::Canceled, "{job:#?}");
    assert_eq!(job.error.as_deref(), Some("canceled"), "{job:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_second_gate_canceled_in_process_is_killed_during_its_sleep() {
    let h = Harness::unsandboxed(long_leases).await;
    let marker = h.path("woke");
    h.gate(&sleeping_gate(&marker), 120).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    printed(&h, job.id, "before").await;
    h.conman.cancel_job(&h.actor, h.app, job.id).await.unwrap();
    let job = h.finished(job.id, Duration::from_secs(60)).await;
    workers.stop().await;
    assert_killed_mid_sleep(&h, &job, &marker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_requested_by_another_process_is_found_by_the_cancel_poll() {
    let h = Harness::unsandboxed(long_leases).await;
    let marker = h.path("woke");
    h.gate(&sleeping_gate(&marker), 120).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    printed(&h, job.id, "before").await;
    // Its in-process signal reaches none of these workers.
    let other = h.other_process();
    other.cancel_job(&h.actor, h.app, job.id).await.unwrap();
    let job = h.finished(job.id, Duration::from_secs(60)).await;
    workers.stop().await;
    assert_killed_mid_sleep(&h, &job, &marker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_cancel_requested_by_another_process_is_notified_to_the_worker() {
    let Some(db) = conman_store_pg::scratch::scratch_database().await else { return };
    let h = Harness::on_postgres(db.url(), 300).await;
    let marker = h.path("woke");
    h.gate(&sleeping_gate(&marker), 120).await;
    // No cancel poll within the test: only the notification can stop it.
    let workers = h.workers(WorkerOptions { poll_interval: Duration::from_secs(300), ..options() });
    let job = h.start_gate().await;
    printed(&h, job.id, "before").await;
    let other = h.other_postgres_process(db.url());
    let actor = other.conman.local_actor(ADMIN, Default::default()).await.unwrap();
    other.conman.cancel_job(&actor, h.app, job.id).await.unwrap();
    let job = h.finished(job.id, Duration::from_secs(60)).await;
    workers.stop().await;
    assert_killed_mid_sleep(&h, &job, &marker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_finished_job_is_an_invalid_transition_and_unknown_ids_are_not_found() {
    let h = Harness::new().await;
    h.gate("true", 30).await;
    let workers = h.workers(options());
    let job = h.start_gate().await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;
    assert_eq!(job.state, JobState::Succeeded);

    let err = h.conman.cancel_job(&h.actor, h.app, job.id).await.unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err:?}");
    assert_eq!(err.code().http_status(), 409);
    let unknown = JobId(uuid::Uuid::now_v7());
    let err = h.conman.cancel_job(&h.actor, h.app, unknown).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(err.code().http_status(), 404);
    assert!(matches!(h.conman.get_job(&h.actor, h.app, unknown).await, Err(Error::NotFound(_))));
    assert!(matches!(h.conman.job_log(&h.actor, h.app, unknown, 0, 10).await, Err(Error::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_enqueued_while_the_runner_is_idle_starts_on_the_wakeup_not_the_poll() {
    let h = Harness::new().await;
    let workers = h.workers(WorkerOptions { poll_interval: Duration::from_secs(10), ..options() });
    // Let both slots find nothing and go to sleep on the 10 s poll.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let enqueued = Instant::now();
        let job = h.start_gate().await;
        h.wait(job.id, Duration::from_secs(5), |j| j.state != JobState::Queued).await;
        latencies.push(enqueued.elapsed());
        h.finished(job.id, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    workers.stop().await;
    latencies.sort();
    eprintln!("enqueue-to-start with an idle runner (10 s poll): {latencies:?}");
    assert!(latencies[latencies.len() - 1] < Duration::from_millis(200), "{latencies:?}");
}

/// Fails its first attempt with a transient error, succeeds after.
struct FailsOnce {
    calls: AtomicU32,
    at: Mutex<Vec<Instant>>,
}

#[async_trait]
impl JobHandler for FailsOnce {
    async fn run(&self, _conman: &Conman, _job: &Job, log: &dyn LogSink) -> JobOutcome {
        self.at.lock().unwrap().push(Instant::now());
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            log.line(LogStream::System, "flaky: failing once".into()).await;
            JobOutcome::Failed { error: "transient".into(), retryable: true, result: None }
        } else {
            JobOutcome::Succeeded { result: json!({ "ok": true }), effects: UnitOfWork::new() }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_is_retried_after_its_backoff() {
    let handler = Arc::new(FailsOnce { calls: AtomicU32::new(0), at: Mutex::new(Vec::new()) });
    let backoff = Duration::from_millis(500);
    let h = Harness::with(|c| c.jobs.backoff_base = backoff, vec![(JobType::Notify, handler.clone())]).await;
    let workers = h.workers(WorkerOptions { poll_interval: Duration::from_millis(50), ..options() });
    let job = h.enqueue(JobType::Notify).await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;

    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    assert_eq!(job.attempts, 2);
    assert_eq!(job.result, Some(json!({ "ok": true })));
    let at = handler.at.lock().unwrap().clone();
    assert_eq!(at.len(), 2);
    let gap = at[1] - at[0];
    eprintln!("retry started {gap:?} after the failed attempt (backoff {backoff:?})");
    assert!(gap >= backoff, "retried after {gap:?}, before the backoff of {backoff:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_releases_a_running_job_which_a_later_worker_finishes() {
    let h = Harness::unsandboxed(|_| {}).await;
    let pid_file = h.path("shell.pid");
    h.gate(&format!("echo $$ > {pid_file}; sleep 1000"), 60).await;
    let workers = h.workers(WorkerOptions { shutdown_grace: Duration::from_millis(300), ..options() });
    let job = h.start_gate().await;
    let group = read_pid(&pid_file).await;
    let stopping = Instant::now();
    workers.stop().await;
    let took = stopping.elapsed();

    eprintln!("shutdown with a 300 ms grace took {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let released = h.job(job.id).await;
    assert_eq!(released.state, JobState::Queued, "{released:#?}");
    assert_eq!(released.attempts, 0, "a release does not use up an attempt");
    assert_eq!(released.lease_owner, None);
    eventually_not("the released job's process group has members", || !group_members(group).is_empty()).await;

    h.gate("echo second run", 60).await;
    let workers = h.workers(options());
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempts, 1);
    let system = h.output(job.id, LogStream::System).await.join("\n");
    assert!(system.contains("released to the queue"), "{system}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_a_job_finish_within_the_grace_period() {
    let h = Harness::new().await;
    h.gate("sleep 1; echo finished", 60).await;
    let workers = h.workers(WorkerOptions { shutdown_grace: Duration::from_secs(10), ..options() });
    let job = h.start_gate().await;
    h.wait(job.id, Duration::from_secs(10), |j| j.state == JobState::Running).await;
    workers.stop().await;
    let job = h.job(job.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    assert_eq!(h.output(job.id, LogStream::Stdout).await, ["finished"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_missing_from_the_repository_fails_to_start_without_paths_in_the_message() {
    let h = Harness::new().await;
    h.gate("true", 30).await;
    // Lose the repository after the job was enqueued.
    let job = h.start_gate().await;
    std::fs::remove_dir_all(h.dir.path().join("repos").join(format!("{}.git", h.app))).unwrap();
    let workers = h.workers(options());
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;
    assert_eq!(job.state, JobState::Failed, "{job:#?}");
    let error = job.error.unwrap();
    assert!(error.contains("could not start") && !error.contains(h.dir.path().to_str().unwrap()), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_no_op_jobs_flow_through_one_runner() {
    let h = Harness::new().await;
    // No gate command: each job passes at once, so this measures the runner.
    for _ in 0..1000 {
        h.start_gate().await;
    }
    let started = Instant::now();
    let workers = h.workers(options());
    loop {
        let counts = h.conman.job_counts().await.unwrap();
        let done: u64 = counts.iter().filter(|(_, s, _)| *s == JobState::Succeeded).map(|(_, _, n)| n).sum();
        if done == 1000 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{counts:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    workers.stop().await;
    eprintln!("1,000 no-op jobs through one runner (2 slots, debug build): {took:?}");
}

/// Prints what it is given, as a job of any type could.
struct Prints(Vec<String>);

#[async_trait]
impl JobHandler for Prints {
    async fn run(&self, _conman: &Conman, _job: &Job, log: &dyn LogSink) -> JobOutcome {
        for line in &self.0 {
            log.line(LogStream::Stdout, line.clone()).await;
        }
        JobOutcome::Succeeded { result: json!({}), effects: UnitOfWork::new() }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_type_logs_the_apps_secrets_masked_current_and_rotated_values_alike() {
    use base64::Engine as _;
    const OLD: &str = "rotated-away-secret-0001";
    const NEW: &str = "current-secret-value-0002";
    let b64 = base64::engine::general_purpose::STANDARD.encode(NEW);
    let printed = vec![format!("old={OLD}"), format!("new={NEW}"), format!("b64={b64}"), "nothing secret".to_owned()];
    let h = Harness::with(|_| {}, vec![(JobType::Notify, Arc::new(Prints(printed)) as Arc<dyn JobHandler>)]).await;
    let input: conman_api::dto::CreateProfileRequest = serde_json::from_value(json!({
        "name": "prod", "kind": "persistent_env", "secrets": {"TOKEN": OLD}
    }))
    .unwrap();
    let input = input.into();
    let profile = h.conman.create_runtime_profile(&h.actor, h.app, input).await.unwrap();
    let patch: conman_api::dto::PatchProfileRequest =
        serde_json::from_value(json!({"set_secrets": {"TOKEN": NEW}})).unwrap();
    let patch = patch.into();
    h.conman.patch_runtime_profile(&h.actor, h.app, profile.profile.id, patch).await.unwrap();

    let workers = h.workers(options());
    let job = h.enqueue(JobType::Notify).await;
    let job = h.finished(job.id, Duration::from_secs(20)).await;
    workers.stop().await;
    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    assert_eq!(h.output(job.id, LogStream::Stdout).await, ["old=***", "new=***", "b64=***", "nothing secret"]);
}
