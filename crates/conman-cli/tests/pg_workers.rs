//! `conman worker` processes sharing one Postgres database (a scratch
//! database per test, from `CONMAN_TEST_DATABASE_URL`) and one data
//! directory with the test:
//!
//! - four workers and 2,000 gate jobs, one of the workers killed with
//!   SIGKILL while it holds jobs: every job succeeds exactly once (one
//!   `job.succeeded` audit event each), none is lost, a command runs twice
//!   only for a job the killed worker was running, and the killed worker's
//!   jobs are reclaimed after their 2 s lease and finished by the others;
//! - workers polling only every 10 s start a job the test enqueues within
//!   moments, woken across processes by `LISTEN/NOTIFY`.
//!
//! Each job is a submit gate on a commit of its own whose command appends
//! `$CONMAN_COMMIT` to a shared file, so the file is the proof of how often
//! each job's command ran. The test process enqueues through the core
//! (`Conman::start_gate_run`). Without `CONMAN_TEST_DATABASE_URL` each test
//! prints "skipped" and passes; CI always sets it. Every child is killed on
//! drop and the scratch database dropped, so a failing test leaves nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conman_api::compose;
use conman_api::config::Settings;
use conman_core::domain::app::{AppSettingsPatch, GateSettings};
use conman_core::domain::job::{Job, JobState};
use conman_core::ids::{AppId, JobId};
use conman_core::ports::git::{FileOp, Sha, Signature, WriteRequest};
use conman_core::ports::store::{AuditFilter, JobFilter, PageRequest};
use conman_core::ports::system::Argon2Hasher;
use conman_core::services::{Actor, Conman, GateKind, NewApp};
use conman_core::validation::RepoPath;
use conman_store_pg::scratch::{scratch_database, ScratchDatabase};
use tempfile::TempDir;

const ADMIN: &str = "admin@example.com";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    settings: Settings,
}

/// An installation on Postgres, opened in this process for setup and checks.
struct Installation {
    conman: Arc<Conman>,
    actor: Actor,
    app: AppId,
    // Dropped last: the workers (owned by the test) are gone by then.
    dir: TempDir,
    db: ScratchDatabase,
}

impl Installation {
    async fn new(db: ScratchDatabase) -> Installation {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap().to_owned();
        // No workers here: the test process only enqueues and checks.
        let args = ["x", "--data-dir", &data_dir, "--database-url", db.url(), "--workers", "0"];
        let mut settings = Args::try_parse_from(args).unwrap().settings;
        // The gates below are the app's own.
        settings.allow_app_gate_commands = true;
        let conman = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).unwrap().conman;
        conman.bootstrap_admin(ADMIN, "Ada Admin", "correct horse battery staple").await.unwrap();
        let actor = conman.local_actor(ADMIN, Default::default()).await.unwrap();
        let new_app = NewApp { name: "gates".into(), integration_branch: None, import_from: None };
        let app = conman.create_app(&actor, new_app).await.unwrap().id;
        Installation { conman, actor, app, dir, db }
    }

    /// Commits `files` (name, content) on `main`.
    async fn commit(&self, files: &[(&str, &str)]) -> Sha {
        let ops = files
            .iter()
            .map(|(path, content)| FileOp::Put {
                path: RepoPath::parse(path).unwrap(),
                content: content.as_bytes().to_vec(),
            })
            .collect();
        let request = WriteRequest {
            target_ref: "refs/heads/main".into(),
            base_ref: "refs/heads/main".into(),
            ops,
            message: files[0].1.into(),
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

    /// Every job of the app, straight from the store (one page).
    async fn jobs(&self) -> Vec<Job> {
        self.list(JobFilter::default()).await
    }

    /// The app's jobs in `state`.
    async fn jobs_in(&self, state: JobState) -> Vec<Job> {
        self.list(JobFilter { state: Some(state), ..Default::default() }).await
    }

    async fn list(&self, filter: JobFilter) -> Vec<Job> {
        let all = PageRequest { page: 1, limit: 100_000 };
        self.conman.ports().store.list_jobs(self.app, &filter, all).await.unwrap().items
    }

    /// Jobs per state.
    async fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for (_, state, n) in self.conman.ports().store.job_counts().await.unwrap() {
            *counts.entry(state.as_str()).or_default() += n;
        }
        counts
    }

    /// How many `job.succeeded` events each job has.
    async fn successes(&self) -> BTreeMap<String, usize> {
        let filter = AuditFilter { app_id: Some(self.app), entity_type: Some("job".into()), ..Default::default() };
        let all = PageRequest { page: 1, limit: 100_000 };
        let records = self.conman.ports().store.list_audit(&filter, all).await.unwrap();
        let mut per_job = BTreeMap::new();
        for record in records.items.into_iter().filter(|r| r.entry.action == "job.succeeded") {
            *per_job.entry(record.entry.entity_id).or_default() += 1;
        }
        per_job
    }

    /// The workers that ran job `id`'s attempts, in order (from its log).
    async fn attempt_workers(&self, id: JobId) -> Vec<String> {
        let log = self.conman.job_log(&self.actor, self.app, id, 0, 5000).await.unwrap().lines;
        log.iter()
            .filter_map(|line| line.text.strip_prefix("attempt ")?.split_once(" on worker ").map(|(_, w)| w.to_owned()))
            .collect()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `conman worker` with `slots` slots, a 2 s lease and polling
    /// every `poll_ms`.
    fn worker(&self, name: &str, slots: usize, poll_ms: u64) -> Worker {
        let log = self.path(&format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_conman"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["worker", "--workers", &slots.to_string()])
            .current_dir(self.dir.path())
            .env("CONMAN_DATABASE_URL", self.db.url())
            .env_remove("CONMAN_CONFIG")
            .env("CONMAN_JOB_LEASE_SECS", "2")
            .env("CONMAN_JOB_POLL_MS", poll_ms.to_string())
            .env("CONMAN_JOB_SHUTDOWN_GRACE_SECS", "1")
            .env("CONMAN_LOG", "info")
            .env("CONMAN_ALLOW_APP_GATE_COMMANDS", "true")
            // The gates share files with the test through its directory,
            // which a gate sandbox hides.
            .env("CONMAN_GATE_SANDBOX", "none")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Worker { child, log }
    }
}

/// A `conman worker` child, killed if still running when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    /// The `<host>-<pid>-` prefix of this process's worker ids.
    fn id_infix(&self) -> String {
        format!("-{}-", self.child.id())
    }

    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits until the log has a line containing `text`.
    async fn wait_for_log(&self, text: &str, within: Duration) {
        let start = Instant::now();
        while !std::fs::read_to_string(&self.log).unwrap_or_default().contains(text) {
            assert!(start.elapsed() < within, "no {text:?} in {} after {within:?}", self.log.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

/// Kills, when dropped, the process groups listed in a file: the hanging
/// commands a SIGKILLed worker leaves behind, even if the test fails.
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        for group in lines(&self.0) {
            signal(&format!("-{group}"), "-KILL");
        }
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

async fn wait_for_lines(path: &Path, count: usize, within: Duration) {
    let start = Instant::now();
    while lines(path).len() < count {
        assert!(start.elapsed() < within, "{} has fewer than {count} lines after {within:?}", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Total jobs, of which the first `HANGING` hang on their first attempt.
const JOBS: usize = 2000;
const HANGING: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_worker_processes_run_2000_jobs_exactly_once_and_reclaim_the_jobs_of_a_killed_one() {
    let Some(db) = scratch_database().await else { return };
    let inst = Installation::new(db).await;
    let (ran, hung) = (inst.path("ran"), inst.path("hung"));
    let (ran_path, hung_path) = (ran.to_str().unwrap(), hung.to_str().unwrap());
    let reaper = Reaper(hung.clone());
    // Commits whose config says `hang` hang on their first run (recording
    // the shell, whose process group the test kills), then pass.
    inst.gate(&format!(
        "echo $CONMAN_COMMIT >> {ran_path}; \
         if grep -q hang config.yaml && [ $(grep -c $CONMAN_COMMIT {ran_path}) -eq 1 ]; then \
           echo $$ >> {hung_path}; sleep 1000; \
         fi"
    ))
    .await;
    let setup = Instant::now();
    let mut commits = Vec::with_capacity(JOBS);
    for n in 0..JOBS {
        let hang = if n < HANGING { "hang: true\n" } else { "" };
        commits.push(inst.commit(&[("config.yaml", &format!("n: {n}\n{hang}"))]).await);
    }
    eprintln!("{JOBS} commits made in {:?}", setup.elapsed());

    // Everything is queued before any worker starts, the hanging jobs
    // first; the rest from four tasks.
    let enqueueing = Instant::now();
    let mut jobs = Vec::with_capacity(JOBS);
    for commit in &commits[..HANGING] {
        jobs.push(inst.start_gate(commit).await.id);
    }
    let inst = Arc::new(inst);
    let enqueuers: Vec<_> = (0..4)
        .map(|part| {
            let (inst, commits) = (Arc::clone(&inst), commits.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for commit in commits[HANGING..].iter().skip(part).step_by(4) {
                    ids.push(inst.start_gate(commit).await.id);
                }
                ids
            })
        })
        .collect();
    for enqueuer in enqueuers {
        jobs.extend(enqueuer.await.unwrap());
    }
    eprintln!("{JOBS} gate jobs enqueued in {:?}", enqueueing.elapsed());

    // The victim starts alone, so its first claims take the oldest jobs —
    // the hanging ones — and it surely holds jobs when it dies; its third
    // slot runs quick jobs beside them, as do the three others.
    let mut victim = inst.worker("victim", HANGING + 1, 100);
    let started = Instant::now();
    wait_for_lines(&hung, HANGING, Duration::from_secs(30)).await;
    let others: Vec<Worker> = (1..4).map(|n| inst.worker(&format!("worker{n}"), 2, 100)).collect();

    // Kill the victim mid-run, then the hanging commands it leaves behind.
    wait_for_lines(&ran, HANGING + JOBS / 4, Duration::from_secs(60)).await;
    victim.sigkill();
    let killed_at = inst.conman.ports().clock.now();
    let killed_after = started.elapsed();
    let victim_infix = victim.id_infix();
    drop(reaper);
    let held: Vec<Job> = inst
        .jobs_in(JobState::Running)
        .await
        .into_iter()
        .filter(|j| j.lease_owner.as_deref().is_some_and(|owner| owner.contains(&victim_infix)))
        .collect();
    let held_ids: BTreeSet<JobId> = held.iter().map(|j| j.id).collect();
    assert!(jobs[..HANGING].iter().all(|id| held_ids.contains(id)), "the victim held the hanging jobs: {held:#?}");

    let mut quick_done = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = inst.counts().await;
        assert_eq!(counts.get("failed"), None, "no job fails: {counts:?}");
        let succeeded = counts.get("succeeded").copied().unwrap_or_default();
        if succeeded + held.len() as u64 >= JOBS as u64 && quick_done.is_none() {
            quick_done = Some(started.elapsed());
        }
        if succeeded == JOBS as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "not all jobs succeeded in time: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    for worker in others {
        worker.terminate().await;
    }
    let mut reclaimed_after = Duration::ZERO;
    for job in &held {
        let finished = inst.job(job.id).await.finished_at.expect("finished");
        reclaimed_after = reclaimed_after.max((finished - killed_at).to_std().unwrap_or_default());
    }
    eprintln!(
        "{JOBS} gate jobs through 4 worker processes on Postgres: {took:?} from the first worker's start \
         ({:?} for all but {held} of them); the worker SIGKILLed {killed_after:?} in held {held} jobs, \
         reclaimed and finished by the others within {reclaimed_after:?} of the kill (lease 2 s)",
        quick_done.unwrap_or(took),
        held = held.len(),
    );

    // Every job succeeded once, and ran once unless the victim was running it.
    let all = inst.jobs().await;
    assert_eq!(all.len(), JOBS);
    assert_eq!(all.iter().map(|j| j.id).collect::<BTreeSet<_>>(), jobs.iter().copied().collect());
    let successes = inst.successes().await;
    assert_eq!(successes.len(), JOBS, "one job.succeeded per job");
    assert!(successes.values().all(|n| *n == 1), "no job succeeded twice");
    let mut runs: BTreeMap<String, u32> = BTreeMap::new();
    for line in lines(&ran) {
        *runs.entry(line).or_default() += 1;
    }
    assert_eq!(runs.keys().cloned().collect::<BTreeSet<_>>(), commits.iter().map(|c| c.to_string()).collect());
    for job in &all {
        assert_eq!(job.state, JobState::Succeeded, "{job:#?}");
        let commit = job.entity_id.clone().unwrap();
        let ran_times = runs[&commit];
        if job.attempts == 1 {
            assert_eq!(ran_times, 1, "job {} ran {ran_times} times in one attempt", job.id);
            continue;
        }
        // A second attempt: only for a job the victim held.
        assert_eq!(job.attempts, 2, "{job:#?}");
        assert!(held_ids.contains(&job.id), "job {} was retried but the victim did not hold it", job.id);
        assert!((1..=2).contains(&ran_times), "job {} ran {ran_times} times in two attempts", job.id);
    }
    for job in &held {
        let reclaimed = inst.job(job.id).await;
        assert_eq!(reclaimed.attempts, 2, "the victim's job {} was reclaimed: {reclaimed:#?}", job.id);
        // The victim may die before its batched log line about the attempt
        // is flushed, so only the finishing attempt's line is certain.
        let workers = inst.attempt_workers(job.id).await;
        let last = workers.last().unwrap_or_else(|| panic!("no attempt line for job {}", job.id));
        assert!(!last.contains(&victim_infix), "a surviving worker finished it: {workers:?}");
        assert!(workers.len() <= 2, "{workers:?}");
    }
    for (n, commit) in commits[..HANGING].iter().enumerate() {
        assert_eq!(runs[&commit.to_string()], 2, "hanging job {n} ran once per attempt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_polling_every_10_s_start_a_job_enqueued_elsewhere_at_once() {
    let Some(db) = scratch_database().await else { return };
    let inst = Installation::new(db).await;
    let ran = inst.path("ran");
    inst.gate(&format!("echo $CONMAN_COMMIT >> {}", ran.to_str().unwrap())).await;
    let mut commits = Vec::new();
    for n in 0..5 {
        commits.push(inst.commit(&[("config.yaml", &format!("n: {n}\n"))]).await);
    }
    let workers = [inst.worker("a", 1, 10_000), inst.worker("b", 1, 10_000)];
    for worker in &workers {
        worker.wait_for_log("listening for job notifications", Duration::from_secs(30)).await;
        worker.wait_for_log("job workers started", Duration::from_secs(30)).await;
    }
    // Past their first poll: from now on only a wake-up or the 10 s poll
    // makes them claim.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut waits = Vec::new();
    for (n, commit) in commits.iter().enumerate() {
        let enqueued = Instant::now();
        let job = inst.start_gate(commit).await;
        wait_for_lines(&ran, n + 1, Duration::from_secs(30)).await;
        let waited = enqueued.elapsed();
        let job = inst.job(job.id).await;
        let started_after = (job.started_at.unwrap() - job.created_at).to_std().unwrap_or_default();
        eprintln!("job {n}: claimed {started_after:?} after it was enqueued; its command ran after {waited:?}");
        waits.push(started_after);
        // Idle again before the next one.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for worker in workers {
        worker.terminate().await;
    }
    waits.sort();
    let median = waits[waits.len() / 2];
    assert!(median <= Duration::from_millis(500), "median enqueue-to-start {median:?} (polling is every 10 s)");
    assert!(waits.iter().all(|w| *w < Duration::from_secs(2)), "a job waited for a poll: {waits:?}");
}
