//! `conman worker` as real processes (2 s lease, 100 ms poll, 1 s shutdown
//! grace) sharing one SQLite store and one set of repositories with the
//! test: a worker killed with SIGKILL mid-job has its job reclaimed by
//! another after the lease expires and finished exactly once; two worker
//! processes racing over 50 quick jobs run each exactly once; SIGTERM
//! releases a running job back to the queue and exits cleanly; a worker
//! killed with SIGKILL takes its bubblewrap-sandboxed gate with it.
//!
//! The test process enqueues through the core (`Conman::start_gate_run`);
//! the workers find the jobs by polling, as any worker finds jobs enqueued
//! by another process. Every child is killed on drop, so a failing test
//! leaves no worker behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conman_api::compose;
use conman_api::config::Settings;
use conman_core::domain::app::{AppSettingsPatch, GateSettings};
use conman_core::domain::job::{Job, JobLogLine, JobState, LogStream};
use conman_core::ids::{AppId, JobId};
use conman_core::ports::git::{FileOp, Sha, Signature, WriteRequest};
use conman_core::ports::store::{AuditFilter, PageRequest};
use conman_core::ports::system::Argon2Hasher;
use conman_core::services::{Actor, Conman, GateKind, NewApp};
use conman_core::validation::RepoPath;
use tempfile::TempDir;

const ADMIN: &str = "admin@example.com";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    settings: Settings,
}

/// An installation on disk, opened in this process for setup and checks.
struct Installation {
    dir: TempDir,
    conman: Arc<Conman>,
    actor: Actor,
    app: AppId,
}

impl Installation {
    async fn new() -> Installation {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let mut settings = Args::try_parse_from(["x", "--data-dir", &data_dir]).unwrap().settings;
        // The gates below are the app's own.
        settings.allow_app_gate_commands = true;
        let conman = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).unwrap().conman;
        conman.bootstrap_admin(ADMIN, "Ada Admin", "correct horse battery staple").await.unwrap();
        let actor = conman.local_actor(ADMIN, Default::default()).await.unwrap();
        let new_app = NewApp { name: "gates".into(), integration_branch: None, import_from: None };
        let app = conman.create_app(&actor, new_app).await.unwrap().id;
        Installation { dir, conman, actor, app }
    }

    /// Commits `config.yaml` with `content` on `main`.
    async fn commit(&self, content: &str) -> Sha {
        let put = FileOp::Put { path: RepoPath::parse("config.yaml").unwrap(), content: content.as_bytes().to_vec() };
        let request = WriteRequest {
            target_ref: "refs/heads/main".into(),
            base_ref: "refs/heads/main".into(),
            ops: vec![put],
            message: content.into(),
            author: Signature { name: "Ada".into(), email: ADMIN.into() },
        };
        self.conman.ports().git.write(self.app, request).await.unwrap()
    }

    async fn gate(&self, command: &str) {
        let gates = GateSettings { submit: Some(command.into()), timeout_secs: Some(120), ..Default::default() };
        let patch = AppSettingsPatch { gates: Some(gates), ..Default::default() };
        self.conman.update_settings(&self.actor, self.app, patch).await.unwrap();
    }

    async fn start_gate(&self, commit: &Sha) -> Job {
        self.conman.start_gate_run(&self.actor, self.app, GateKind::Submit, Some(commit.as_str())).await.unwrap()
    }

    async fn job(&self, id: JobId) -> Job {
        self.conman.get_job(&self.actor, self.app, id).await.unwrap()
    }

    async fn wait(&self, id: JobId, within: Duration, done: impl Fn(&Job) -> bool) -> Job {
        let start = Instant::now();
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(start.elapsed() < within, "job not there after {within:?}: {job:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn log(&self, id: JobId) -> Vec<JobLogLine> {
        self.conman.job_log(&self.actor, self.app, id, 0, 5000).await.unwrap().lines
    }

    /// Audit actions recorded for job `id`.
    async fn audit_actions(&self, id: JobId) -> Vec<String> {
        let filter =
            AuditFilter { entity_type: Some("job".into()), entity_id: Some(id.to_string()), ..Default::default() };
        let page = PageRequest::new(Some(1), Some(100)).unwrap();
        let records = self.conman.query_audit(&self.actor, self.app, filter, page).await.unwrap();
        records.items.into_iter().map(|r| r.record.entry.action).collect()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `conman worker` with `slots` slots, a 2 s lease and a 100 ms
    /// poll, gates unsandboxed: they share files and pids with the test
    /// through its directory, which a gate sandbox hides.
    fn worker(&self, name: &str, slots: usize) -> Worker {
        self.worker_in(name, slots, "none")
    }

    /// [`worker`](Self::worker) with `CONMAN_GATE_SANDBOX=sandbox`.
    fn worker_in(&self, name: &str, slots: usize, sandbox: &str) -> Worker {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_conman"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["worker", "--workers", &slots.to_string()])
            .current_dir(self.dir.path())
            .env_remove("CONMAN_DATABASE_URL")
            .env_remove("CONMAN_CONFIG")
            .env("CONMAN_JOB_LEASE_SECS", "2")
            .env("CONMAN_JOB_POLL_MS", "100")
            .env("CONMAN_JOB_SHUTDOWN_GRACE_SECS", "1")
            .env("CONMAN_LOG", "info")
            .env("CONMAN_ALLOW_APP_GATE_COMMANDS", "true")
            .env("CONMAN_GATE_SANDBOX", sandbox)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Worker { child, log: self.path(&format!("{name}.log")) }
    }
}

/// A `conman worker` child, killed if still running when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    async fn terminate(mut self) {
        signal(&self.child.id().to_string(), "-TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                assert!(status.success(), "worker exited with {status}:\n{log}");
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "worker did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill <signal> <target>` (a negative target is a process group).
fn signal(target: &str, signal: &str) {
    let _ = Command::new("kill").args([signal, "--", target]).stderr(Stdio::null()).status();
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

async fn wait_for_lines(path: &Path, count: usize, within: Duration) {
    let start = Instant::now();
    while lines(path).len() < count {
        assert!(start.elapsed() < within, "{} has fewer than {count} lines", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_has_its_job_reclaimed_and_finished_exactly_once() {
    let inst = Installation::new().await;
    let runs = inst.path("runs");
    // The first attempt hangs; the one after the crash passes.
    let runs_path = runs.to_str().unwrap();
    inst.gate(&format!(
        "echo $$ >> {runs_path}; if [ $(wc -l < {runs_path}) -eq 1 ]; then sleep 1000; fi; echo finished"
    ))
    .await;
    let commit = inst.commit("a: 1\n").await;
    let mut first = inst.worker("first", 1);
    let job = inst.start_gate(&commit).await;
    wait_for_lines(&runs, 1, Duration::from_secs(20)).await;
    let running = inst.job(job.id).await;
    assert_eq!(running.state, JobState::Running);

    first.sigkill();
    let killed_at = Instant::now();
    // A SIGKILLed worker cannot clean up its command: do it for it.
    signal(&format!("-{}", lines(&runs)[0]), "-KILL");
    let second = inst.worker("second", 1);
    let job = inst.wait(job.id, Duration::from_secs(30), |j| j.state.is_terminal()).await;
    let took = killed_at.elapsed();
    second.terminate().await;

    eprintln!("job of a SIGKILLed worker finished {took:?} after the kill (lease 2 s)");
    assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
    assert_eq!(job.attempts, 2);
    assert_eq!(lines(&runs).len(), 2, "the command ran once per attempt");
    let actions = inst.audit_actions(job.id).await;
    assert_eq!(actions.iter().filter(|a| *a == "job.succeeded").count(), 1, "{actions:?}");
    let log = inst.log(job.id).await;
    let system: Vec<&str> = log.iter().filter(|l| l.stream == LogStream::System).map(|l| l.text.as_str()).collect();
    assert!(system.iter().any(|l| l.starts_with("attempt 1 of 3 on worker")), "{system:?}");
    assert!(system.iter().any(|l| l.starts_with("attempt 2 of 3 on worker")), "{system:?}");
    assert!(log.iter().any(|l| l.stream == LogStream::Stdout && l.text == "finished"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_racing_over_50_jobs_run_each_exactly_once() {
    let inst = Installation::new().await;
    let ran = inst.path("ran");
    inst.gate(&format!("echo $CONMAN_COMMIT >> {}", ran.to_str().unwrap())).await;
    let mut commits = Vec::new();
    for n in 0..50 {
        commits.push(inst.commit(&format!("n: {n}\n")).await);
    }
    let a = inst.worker("a", 2);
    let b = inst.worker("b", 2);
    let started = Instant::now();
    let mut jobs = Vec::new();
    for commit in &commits {
        jobs.push(inst.start_gate(commit).await.id);
    }
    for id in &jobs {
        let job = inst.wait(*id, Duration::from_secs(120), |j| j.state.is_terminal()).await;
        assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
        assert_eq!(job.attempts, 1, "{job:#?}");
    }
    let took = started.elapsed();
    a.terminate().await;
    b.terminate().await;

    eprintln!("50 gate jobs through two worker processes (2 slots each): {took:?}");
    let ran = lines(&ran);
    assert_eq!(ran.len(), 50, "every job ran exactly once: {ran:?}");
    let unique: BTreeSet<&String> = ran.iter().collect();
    let expected: BTreeSet<String> = commits.iter().map(|c| c.to_string()).collect();
    assert_eq!(unique.len(), 50, "no job ran twice");
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), expected);
    let owners: BTreeSet<String> = {
        let mut owners = BTreeSet::new();
        for id in &jobs {
            for line in inst.log(*id).await {
                if let Some(worker) = line.text.strip_prefix("attempt 1 of 3 on worker ") {
                    owners.insert(worker.rsplit_once('-').unwrap().0.to_owned());
                }
            }
        }
        owners
    };
    eprintln!("jobs were run by {} worker processes: {owners:?}", owners.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_a_running_job_and_the_worker_exits_cleanly() {
    let inst = Installation::new().await;
    let pid_file = inst.path("shell.pid");
    inst.gate(&format!("echo $$ > {}; sleep 1000", pid_file.to_str().unwrap())).await;
    let commit = inst.commit("a: 1\n").await;
    let worker = inst.worker("worker", 1);
    let job = inst.start_gate(&commit).await;
    wait_for_lines(&pid_file, 1, Duration::from_secs(20)).await;
    let group = lines(&pid_file)[0].clone();

    let stopping = Instant::now();
    // The sleeping job outlasts the 1 s grace and is released.
    worker.terminate().await;
    let took = stopping.elapsed();
    eprintln!("SIGTERM to exit with a running job (1 s grace): {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    let job = inst.job(job.id).await;
    assert_eq!(job.state, JobState::Queued, "{job:#?}");
    assert_eq!(job.attempts, 0);
    assert!(!Path::new(&format!("/proc/{group}")).exists() || is_zombie(&group), "the command's group was killed");
}

fn is_zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// Host processes whose command line holds `token` (zombies excluded).
fn processes_with(token: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || is_zombie(&pid) {
            continue;
        }
        if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(token)) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_worker_takes_its_sandboxed_gate_with_it() {
    let probe = tempfile::tempdir().unwrap();
    if let Err(missing) =
        conman_api::runtime::GateSandbox::resolve(conman_api::runtime::SandboxMode::Bwrap, None, probe.path())
    {
        let missing = format!("{missing}: install the Debian package bubblewrap (apt-get install bubblewrap)");
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "CI=true but {missing}");
        eprintln!("SKIP: {missing}");
        return;
    }
    let inst = Installation::new().await;
    let token = format!("{}{}", std::process::id(), Instant::now().elapsed().subsec_nanos());
    // In the group, and out of it in a session of its own.
    inst.gate(&format!("sleep 1000.{token} & setsid sleep 1000.{token} & wait")).await;
    let commit = inst.commit("a: 1\n").await;
    let mut worker = inst.worker_in("sandboxed", 1, "bwrap");
    inst.start_gate(&commit).await;
    // bwrap outside and as the sandbox's init, the shell, the sleepers.
    let start = Instant::now();
    while processes_with(&token).len() < 5 {
        assert!(start.elapsed() < Duration::from_secs(30), "the gate never ran: {:?}", processes_with(&token));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    worker.sigkill();
    let killed = Instant::now();
    while !processes_with(&token).is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the gate outlived its SIGKILLed worker: {:?}",
            processes_with(&token)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
