//! `cargo xtask bench`: Conman's performance bars, each measured side by
//! side with its baseline, printing medians and ratios.
//!
//! Scenario 1 (foundation issue): on a synthetic app repository of 10,000
//! files (100 dirs × 100 YAML files),
//! - a single-file write into a workspace through the core service (git
//!   commit + audit in SQLite), against the same write done by the `git`
//!   command line (7 processes: rev-parse, hash-object, read-tree,
//!   update-index, write-tree, commit-tree, update-ref), with the same
//!   write through the git port alone beside them;
//! - a file read at a ref, through the core service and through the git
//!   port, against `git show REF:PATH`.
//!
//! Bars: write median ≤ 2 ms and ≥ 10× faster than the CLI sequence; read
//! median ≤ 0.5 ms.
//!
//! Scenario 2 (jobs issue): with an idle runner (one process, its poll
//! interval 10 s so only the wake-up can start a job), the enqueue-to-start
//! latency of a no-op job (bar: median ≤ 20 ms); and 1,000 no-op jobs
//! through one worker process on SQLite (bar: ≤ 2 s). Every throughput
//! observer, here and in the Postgres rows, counts finished jobs every
//! [`PROGRESS_POLL`], so the SQLite and Postgres figures are comparable.
//!
//! Postgres rows (Postgres issue): when `CONMAN_BENCH_DATABASE_URL` (or else
//! `CONMAN_TEST_DATABASE_URL`) names a Postgres server, scenario 1's core
//! write and read and scenario 2 run again on scratch databases created
//! beside the named one (with `psql`) and dropped afterwards, printed beside
//! the SQLite figures; then 2,000 no-op gate jobs (no gate command is
//! configured, so each gate passes without starting a process) go through 4
//! `conman worker` processes — the release binary next to this bench, which
//! `cargo xtask bench` builds first — timed from the workers' start until
//! every job succeeded. Bars: Postgres write median ≤ 4 ms; 2,000 jobs
//! through 4 worker processes ≤ 4 s.
//!
//! Scenario 3 (changesets issue): diffs and listing, see
//! `scenarios/changesets.rs`. Scenario 4 (runtime-profiles issue):
//! decrypting a profile's 100 secrets and rotating 10,000, see
//! `scenarios/profiles.rs`. Scenario 5 (issue 19): 8 reads of one app
//! through the git port at once against one after another (bar: at once ≤
//! 0.7× one after another), see `scenarios/git_port.rs`. Scenario 6 (issue
//! 13): the release composer and the queue's revalidation check beside
//! git's own merge machinery, see `scenarios/composer.rs`. Scenario 7
//! (issue 13): publishing a release of 100 queued changesets through the
//! core beside `git update-ref` + `git tag -a` (bar: median ≤ 50 ms), see
//! `scenarios/publish.rs`. Scenario 8 (issue 14): a deploy's overhead from
//! request to `succeeded` with the worker in this process (bar: median ≤
//! 20 ms) and 10 environments of one app deployed at once (bar: all
//! succeed, ≤ 2× one), see `scenarios/deploy.rs`; both run on the
//! installation of `scenarios/lab.rs`.
//!
//! Every bar goes through one [`Bars`] collector, which prints its verdict
//! and, at the end, one summary line naming the failed bars.
//!
//! Run with `--quick` for fewer iterations, `--check` to exit with 1 when a
//! bar failed (without it the exit code is 0 whatever the bars say),
//! `--only-changesets` for scenario 3 alone, `--only-git-reads` for
//! scenario 5 alone (with the git port's write row beside the CLI chain),
//! `--only-composer` for scenario 6 alone, `--only-publish` for scenario
//! 7 alone, `--only-deploy` for scenario 8 alone,
//! `--only-workers` for the 4-worker-process row alone (3 runs with
//! `--quick`, else 7, and their median), `--only-postgres-io` for scenario
//! 1's core write and read on Postgres alone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conman_core::domain::audit::RequestContext;
use conman_core::ids::{AppId, WorkspaceId};
use conman_core::ports::git::{FileOp, Signature, WriteRequest};
use conman_core::ports::system::{Argon2Hasher, OsRandomTokens, SystemClock, UuidV7Ids};
use conman_core::ports::Store;
use conman_core::services::{Actor, Config, Conman, NewApp, Ports};
use conman_core::validation::RepoPath;
use conman_store_pg::PgStore;

#[path = "scenarios/changesets.rs"]
mod changesets_scenario;
#[path = "scenarios/composer.rs"]
mod composer_scenario;
#[path = "scenarios/deploy.rs"]
mod deploy_scenario;
#[path = "scenarios/git_port.rs"]
mod git_port_scenario;
#[path = "scenarios/lab.rs"]
mod lab;
#[path = "scenarios/profiles.rs"]
mod profiles_scenario;
#[path = "scenarios/publish.rs"]
mod publish_scenario;

struct Stats {
    median: Duration,
    p90: Duration,
    n: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    Stats { median: samples[n / 2], p90: samples[(n * 9) / 10], n }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, s: &Stats) {
    println!("  {name:<44} median {:>10}   p90 {:>10}   (n={})", ms(s.median), ms(s.p90), s.n);
}

/// Every bar's verdict: each printed where it is decided, all summed up in
/// one line at the end; with `--check` a failed bar makes the exit code 1.
#[derive(Default)]
struct Bars {
    verdicts: Vec<(String, bool)>,
}

impl Bars {
    /// Records and prints the verdict of `bar` (its text says the limit).
    fn check(&mut self, bar: impl Into<String>, ok: bool) {
        let bar = bar.into();
        println!("  bar {bar}: {}", if ok { "PASS" } else { "FAIL" });
        self.verdicts.push((bar, ok));
    }

    /// Prints the summary line; answers whether every bar passed.
    fn summarise(&self) -> bool {
        let failed: Vec<&str> = self.verdicts.iter().filter(|(_, ok)| !ok).map(|(bar, _)| bar.as_str()).collect();
        let total = self.verdicts.len();
        if failed.is_empty() {
            println!("bars: all {total} passed");
        } else {
            println!("bars: {} of {total} FAILED: {}", failed.len(), failed.join("; "));
        }
        failed.is_empty()
    }
}

/// How often a job-throughput observer counts the finished jobs, on every
/// store and in every row: a count competes with the workers for the
/// database (on Postgres it costs about 1.7 ms, counting every job), so all
/// observers poll at this one pace and their figures stay comparable; each
/// answers up to this much late, never early.
const PROGRESS_POLL: Duration = Duration::from_millis(50);

fn git(repo: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> String {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(repo).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("GIT_AUTHOR_NAME", "Bench").env("GIT_AUTHOR_EMAIL", "bench@example.com");
    cmd.env("GIT_COMMITTER_NAME", "Bench").env("GIT_COMMITTER_EMAIL", "bench@example.com");
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("git is installed");
    if let Some(input) = stdin {
        use std::io::Write as _;
        child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    }
    let out = child.wait_with_output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

/// The write a CLI-based implementation would do: one file into a ref.
fn cli_write(repo: &Path, index: &Path, refname: &str, path: &str, content: &[u8]) {
    let head = git(repo, &["rev-parse", refname], &[], None);
    let blob = git(repo, &["hash-object", "-w", "--stdin"], &[], Some(content));
    let idx = index.to_str().expect("utf8 path");
    let env = [("GIT_INDEX_FILE", idx)];
    git(repo, &["read-tree", &head], &env, None);
    git(repo, &["update-index", "--add", "--cacheinfo", &format!("100644,{blob},{path}")], &env, None);
    let tree = git(repo, &["write-tree"], &env, None);
    let commit = git(repo, &["commit-tree", &tree, "-p", &head, "-m", "bench write"], &[], None);
    git(repo, &["update-ref", refname, &commit, &head], &[], None);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let quick = flag("--quick");
    let (writes, reads, cli_writes, cli_reads) = if quick { (100, 500, 10, 20) } else { (500, 2000, 30, 60) };
    let latency_samples = if quick { 50 } else { 200 };
    let read_rounds = if quick { 9 } else { 31 };
    let publish_rounds = if quick { 7 } else { 21 };
    let (deploy_rounds, deploy_together) = if quick { (20, 5) } else { (100, 15) };
    let postgres = ["CONMAN_BENCH_DATABASE_URL", "CONMAN_TEST_DATABASE_URL"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|url| !url.trim().is_empty()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut bars = Bars::default();
    if flag("--only-changesets") {
        // Scenario 3 alone (a quick loop while tuning diffs).
        rt.block_on(changesets_scenario::scenario_changesets(&mut bars, if quick { 30 } else { 200 }));
    } else if flag("--only-git-reads") {
        // Scenario 5 alone, with the git port's write row beside the CLI chain.
        let writes = git_port_scenario::WriteRow { writes, cli_writes };
        rt.block_on(git_port_scenario::scenario_git_port(&mut bars, read_rounds, Some(writes)));
    } else if flag("--only-composer") {
        rt.block_on(composer_scenario::scenario_composer(
            &mut bars,
            if quick { 5 } else { 15 },
            if quick { 1 } else { 3 },
        ));
    } else if flag("--only-publish") {
        rt.block_on(publish_scenario::scenario_publish(&mut bars, publish_rounds));
    } else if flag("--only-deploy") {
        rt.block_on(deploy_scenario::scenario_deploy(&mut bars, deploy_rounds, deploy_together));
    } else if flag("--only-workers") {
        // The 4-worker-process row alone, several runs.
        let Some(url) = postgres else {
            println!("--only-workers needs CONMAN_BENCH_DATABASE_URL (or CONMAN_TEST_DATABASE_URL)");
            return ExitCode::from(2);
        };
        rt.block_on(worker_runs(&mut bars, &url, if quick { 3 } else { 7 }));
    } else if flag("--only-postgres-io") {
        // Scenario 1's core write and read on Postgres alone.
        let Some(url) = postgres else {
            println!("--only-postgres-io needs CONMAN_BENCH_DATABASE_URL (or CONMAN_TEST_DATABASE_URL)");
            return ExitCode::from(2);
        };
        rt.block_on(async {
            match postgres_io(&url, writes, reads).await {
                Ok(io) => {
                    row("write via core (commit + audit), postgres", &io.write);
                    row("read via core (auth + ref + blob), postgres", &io.read);
                    bars.check("postgres write median ≤ 4 ms", io.write.median <= Duration::from_millis(4));
                }
                Err(e) => bars.check(format!("postgres rows ran ({e})"), false),
            }
        });
    } else {
        rt.block_on(async {
            let io = scenario_workspace_io(&mut bars, writes, reads, cli_writes, cli_reads).await;
            let jobs = scenario_jobs(&mut bars, latency_samples).await;
            changesets_scenario::scenario_changesets(&mut bars, if quick { 30 } else { 200 }).await;
            profiles_scenario::scenario_profiles(&mut bars, if quick { 30 } else { 200 }).await;
            git_port_scenario::scenario_git_port(&mut bars, read_rounds, None).await;
            composer_scenario::scenario_composer(&mut bars, if quick { 5 } else { 15 }, if quick { 1 } else { 3 })
                .await;
            publish_scenario::scenario_publish(&mut bars, publish_rounds).await;
            deploy_scenario::scenario_deploy(&mut bars, deploy_rounds, deploy_together).await;
            match postgres {
                Some(url) => {
                    postgres_rows(&mut bars, &url, &Figures { io, jobs }, writes, reads, latency_samples).await;
                }
                None => println!("postgres rows skipped (set CONMAN_BENCH_DATABASE_URL)"),
            }
        });
    }
    let all_passed = bars.summarise();
    if flag("--check") && !all_passed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The core's workspace write and read timings.
struct IoFigures {
    write: Stats,
    read: Stats,
}

/// Scenario 2's figures: enqueue-to-start latency and 1,000 jobs' time.
struct JobFigures {
    latency: Stats,
    through: Duration,
}

/// One store's figures, for the side-by-side rows.
struct Figures {
    io: IoFigures,
    jobs: JobFigures,
}

/// The core over `store`, with repositories under `dir`.
fn core_on(store: Arc<dyn Store>, dir: &Path) -> Conman {
    Conman::new(
        Ports {
            store,
            git: Arc::new(conman_git::GitRepos::new(dir.join("repos")).expect("repos")),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            passwords: Arc::new(Argon2Hasher::insecure_fast_for_tests()),
            tokens: Arc::new(OsRandomTokens),
        },
        Config::default(),
    )
}

/// A core on `store` (with `cipher` as its secrets cipher) holding an
/// operator who administers one app (scenario 4).
async fn seeded_core(
    store: Arc<dyn Store>,
    dir: &Path,
    cipher: Option<Arc<dyn conman_core::ports::SecretCipher>>,
) -> (Arc<Conman>, Actor, AppId) {
    let mut conman = core_on(store, dir);
    if let Some(cipher) = cipher {
        conman = conman.with_secrets(cipher);
    }
    let admin = conman.bootstrap_admin("keys@example.com", "Keys", "bench-password-123").await.expect("admin");
    let actor = conman.local_actor(admin.email.as_str(), RequestContext::default()).await.expect("actor");
    let app = conman.create_app(&actor, NewApp { name: "profiles".into(), ..Default::default() }).await.expect("app");
    (Arc::new(conman), actor, app.id)
}

/// A job that does nothing: the runner's own overhead is what is measured.
struct NoopHandler;

#[async_trait::async_trait]
impl conman_core::services::JobHandler for NoopHandler {
    async fn run(
        &self,
        _: &Conman,
        _: &conman_core::domain::job::Job,
        _: &dyn conman_core::ports::LogSink,
    ) -> conman_core::services::JobOutcome {
        conman_core::services::JobOutcome::Succeeded {
            result: serde_json::json!({}),
            effects: conman_core::ports::store::UnitOfWork::new(),
        }
    }
}

async fn scenario_jobs(bars: &mut Bars, latency_samples: usize) -> JobFigures {
    println!("Scenario 2: job runner on SQLite");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = conman_store_sqlite::SqliteStore::open(&dir.path().join("conman.db")).expect("store");
    let figures = job_runner(Arc::new(store), dir.path(), latency_samples).await;
    row("enqueue-to-start, idle runner (wake-up)", &figures.latency);
    println!(
        "  1,000 no-op jobs through one worker process   {:>10}   ({:.0} jobs/s)",
        ms(figures.through),
        1000.0 / figures.through.as_secs_f64()
    );
    bars.check("enqueue-to-start median ≤ 20 ms", figures.latency.median <= Duration::from_millis(20));
    bars.check("1,000 jobs ≤ 2 s", figures.through <= Duration::from_secs(2));
    figures
}

/// Scenario 2 on `store`: the enqueue-to-start latency with an idle runner,
/// then 1,000 queued no-op jobs through one in-process runner of 4 slots.
async fn job_runner(store: Arc<dyn Store>, dir: &Path, latency_samples: usize) -> JobFigures {
    use conman_api::runtime::wakeup::NotifyWakeup;
    use conman_api::runtime::worker::{run_workers, WorkerOptions};
    use conman_core::domain::job::{JobState, JobType};
    use conman_core::ports::store::UnitOfWork;
    use conman_core::services::NewJob;

    let git_repos = Arc::new(conman_git::GitRepos::new(dir.join("repos")).expect("repos"));
    let wakeup = Arc::new(NotifyWakeup::new());
    let conman = Arc::new(
        Conman::new(
            Ports {
                store,
                git: git_repos.clone(),
                clock: Arc::new(SystemClock),
                ids: Arc::new(UuidV7Ids),
                passwords: Arc::new(Argon2Hasher::insecure_fast_for_tests()),
                tokens: Arc::new(OsRandomTokens),
            },
            Config::default(),
        )
        .with_job_runtime(
            Arc::new(conman_api::runtime::command::ProcessRunner::new(
                (*git_repos).clone(),
                // Only no-op jobs: no gate command ever starts.
                conman_api::runtime::GateSandbox::Unsandboxed,
            )),
            wakeup.clone(),
        )
        .with_job_handler(JobType::Notify, Arc::new(NoopHandler)),
    );
    let admin = conman.bootstrap_admin("jobs@example.com", "Jobs", "bench-password-123").await.expect("admin");
    let actor = conman.local_actor(admin.email.as_str(), RequestContext::default()).await.expect("actor");
    let app = conman.create_app(&actor, NewApp { name: "jobs".into(), ..Default::default() }).await.expect("app");
    let noop = || NewJob {
        app_id: app.id,
        job_type: JobType::Notify,
        entity_type: None,
        entity_id: None,
        payload: serde_json::json!({}),
        timeout_secs: 60,
    };
    let store = conman.ports().store.clone();
    let wait_done = |id| {
        let store = store.clone();
        async move {
            loop {
                let job = store.job(app.id, id).await.expect("job").expect("exists");
                if job.state.is_terminal() {
                    return job;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    };

    // Latency with an idle runner: only the wake-up can start the job in time.
    let options = WorkerOptions { concurrency: 1, poll_interval: Duration::from_secs(10), ..Default::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = tokio::spawn(run_workers(conman.clone(), wakeup.clone(), options, async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut samples = Vec::with_capacity(latency_samples);
    for _ in 0..latency_samples {
        let job = conman.new_job(None, noop());
        let t = Instant::now();
        conman.commit_and_wake(conman.enqueue_in(UnitOfWork::new(), None, &job)).await.expect("enqueue");
        let done = wait_done(job.id).await;
        assert_eq!(done.state, JobState::Succeeded);
        let started = done.started_at.expect("started");
        let latency = (started - job.created_at).to_std().unwrap_or_default();
        samples.push(latency.min(t.elapsed()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let latency = stats(samples);
    let _ = stop.send(());
    workers.await.expect("workers stop");

    // Throughput: 1,000 queued no-op jobs through one worker process.
    let mut ids = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let job = conman.new_job(None, noop());
        ids.push(job.id);
        conman.ports().store.commit(conman.enqueue_in(UnitOfWork::new(), None, &job)).await.expect("enqueue");
    }
    let options = WorkerOptions { concurrency: 4, poll_interval: Duration::from_millis(50), ..Default::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let t = Instant::now();
    let workers = tokio::spawn(run_workers(conman.clone(), wakeup.clone(), options, async {
        let _ = stopped.await;
    }));
    loop {
        let counts = conman.job_counts().await.expect("counts");
        let done: u64 = counts
            .iter()
            .filter(|(t, s, _)| *t == JobType::Notify && *s == JobState::Succeeded)
            .map(|(_, _, n)| *n)
            .sum();
        if done >= 1000 + latency.n as u64 {
            break;
        }
        tokio::time::sleep(PROGRESS_POLL).await;
    }
    let through = t.elapsed();
    let _ = stop.send(());
    workers.await.expect("workers stop");

    JobFigures { latency, through }
}

/// An app whose repository holds 10,000 files, and its default workspace.
struct SeededApp {
    conman: Arc<Conman>,
    actor: Actor,
    app: AppId,
    ws: WorkspaceId,
}

/// Creates the scenario 1 app on `store` (repositories under `dir`) and
/// seeds its repository; answers it and the seeding time.
async fn seeded_app(store: Arc<dyn Store>, dir: &Path) -> (SeededApp, Duration) {
    let conman = Arc::new(core_on(store, dir));
    let admin = conman.bootstrap_admin("bench@example.com", "Bench", "bench-password-123").await.expect("admin");
    let actor = conman.local_actor(admin.email.as_str(), RequestContext::default()).await.expect("actor");
    let app = conman.create_app(&actor, NewApp { name: "bench".into(), ..Default::default() }).await.expect("app");

    let t = Instant::now();
    let author = Signature { name: "Bench".into(), email: "bench@example.com".into() };
    for d in 0..100 {
        let ops = (0..100)
            .map(|f| FileOp::Put {
                path: RepoPath::parse(&format!("svc{d:03}/config{f:03}.yaml")).expect("path"),
                content: format!("service: svc{d:03}\nindex: {f}\nreplicas: 3\nimage: registry/app:{d}.{f}\n")
                    .into_bytes(),
            })
            .collect();
        let request = WriteRequest {
            target_ref: "refs/heads/main".into(),
            base_ref: "refs/heads/main".into(),
            ops,
            message: format!("seed svc{d:03}"),
            author: author.clone(),
        };
        conman.ports().git.write(app.id, request).await.expect("seed");
    }
    let seeding = t.elapsed();

    // The default workspace came with the app, before the seeding: reset it
    // to the seeded baseline so it holds the 10,000 files.
    let ws = conman.my_default_workspace(&actor, app.id).await.expect("ws").expect("default workspace");
    conman.reset_workspace(&actor, app.id, ws.id).await.expect("reset to the seeded baseline");
    (SeededApp { conman, actor, app: app.id, ws: ws.id }, seeding)
}

/// The core's single-file write (git commit on the WIP ref + audit row)
/// after a warm-up, and its file read.
async fn core_io(s: &SeededApp, writes: usize, reads: usize) -> IoFigures {
    let (conman, actor) = (&s.conman, &s.actor);
    for i in 0..20 {
        let path = format!("svc{:03}/warm{i}.yaml", i % 100);
        conman.write_file(actor, s.app, s.ws, &path, b"warm: 1\n".to_vec(), None).await.expect("warm");
    }
    let mut samples = Vec::with_capacity(writes);
    for i in 0..writes {
        let path = format!("svc{:03}/config{:03}.yaml", i % 100, (i * 7) % 100);
        let content = format!("service: x\nrevision: {i}\n").into_bytes();
        let t = Instant::now();
        conman.write_file(actor, s.app, s.ws, &path, content, None).await.expect("write");
        samples.push(t.elapsed());
    }
    let write = stats(samples);

    let mut samples = Vec::with_capacity(reads);
    for i in 0..reads {
        let path = format!("svc{:03}/config{:03}.yaml", i % 100, (i * 13) % 100);
        let t = Instant::now();
        conman.read_workspace_path(actor, s.app, s.ws, Some(&path)).await.expect("read");
        samples.push(t.elapsed());
    }
    IoFigures { write, read: stats(samples) }
}

async fn scenario_workspace_io(
    bars: &mut Bars,
    writes: usize,
    reads: usize,
    cli_writes: usize,
    cli_reads: usize,
) -> IoFigures {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = conman_store_sqlite::SqliteStore::open(&dir.path().join("conman.db")).expect("store");
    println!("Scenario 1: workspace write and read on a 10,000-file repository");
    let (seeded, seeding) = seeded_app(Arc::new(store), dir.path()).await;
    println!("  seeded 10,000 files in {:.2} s", seeding.as_secs_f64());
    let IoFigures { write: core_write, read: core_read } = core_io(&seeded, writes, reads).await;
    let SeededApp { conman, actor, app, ws } = seeded;

    let head = conman.get_workspace(&actor, app, ws).await.expect("ws").1;
    let mut samples = Vec::with_capacity(reads);
    for i in 0..reads {
        let path = RepoPath::parse(&format!("svc{:03}/config{:03}.yaml", i % 100, (i * 13) % 100)).expect("path");
        let t = Instant::now();
        conman.ports().git.read(app, &head, Some(&path)).await.expect("read");
        samples.push(t.elapsed());
    }
    let port_read = stats(samples);

    // Baselines with the git command line on the same repository.
    let repo = dir.path().join("repos").join(format!("{}.git", app));
    assert!(repo.exists(), "repository at {}", repo.display());
    let port_writes = git_port_scenario::WriteRow { writes, cli_writes }
        .measure(conman.ports().git.as_ref(), app, &repo, &dir.path().join("bench.index"), &head)
        .await;
    let mut samples = Vec::with_capacity(cli_reads);
    for i in 0..cli_reads {
        let spec = format!("{}:svc{:03}/config{:03}.yaml", head, i % 100, (i * 13) % 100);
        let t = Instant::now();
        git(&repo, &["show", &spec], &[], None);
        samples.push(t.elapsed());
    }
    let cli_read_stats = stats(samples);

    row("write via core (commit + audit)", &core_write);
    port_writes.print();
    row("read via core (auth + ref + blob)", &core_read);
    row("read via git port", &port_read);
    row("read via git show", &cli_read_stats);
    let write_ratio = port_writes.cli.median.as_secs_f64() / core_write.median.as_secs_f64();
    let read_ratio = cli_read_stats.median.as_secs_f64() / core_read.median.as_secs_f64();
    println!("  ratio write: core is {write_ratio:.1}× faster than the git CLI sequence");
    println!("  ratio read:  core is {read_ratio:.1}× faster than git show");
    let write_ok = core_write.median <= Duration::from_millis(2) && write_ratio >= 10.0;
    let read_ok = core_read.median <= Duration::from_micros(500);
    bars.check("write median ≤ 2 ms and ≥ 10× CLI", write_ok);
    bars.check("read median ≤ 0.5 ms", read_ok);
    IoFigures { write: core_write, read: core_read }
}

/// A database of its own on the Postgres server of `admin_url`, created and
/// dropped (`WITH (FORCE)`, ending any connection left) with `psql`.
struct ScratchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDb {
    fn create(admin_url: &str, tag: &str) -> Result<ScratchDb, String> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!("conman_bench_{tag}_{}_{nanos}", std::process::id());
        psql(admin_url, &format!("CREATE DATABASE \"{name}\""))?;
        let url = with_database(admin_url, &name);
        Ok(ScratchDb { admin_url: admin_url.to_owned(), name, url })
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Err(e) = psql(&self.admin_url, &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)) {
            eprintln!("warning: could not drop the scratch database {}: {e}", self.name);
        }
    }
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql ({e}); it creates the scratch databases"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `url` with its database (the path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// `url` without the password of its `user:password@` part.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        _ => url.to_owned(),
    }
}

/// A connected Postgres store on a fresh scratch database.
async fn scratch_store(admin_url: &str, tag: &str) -> Result<(PgStore, ScratchDb), String> {
    let db = ScratchDb::create(admin_url, tag)?;
    let store = PgStore::connect(&db.url).await.map_err(|e| format!("connecting to the scratch database: {e:?}"))?;
    Ok((store, db))
}

/// Scenario 1's core write and read on a scratch Postgres database.
async fn postgres_io(url: &str, writes: usize, reads: usize) -> Result<IoFigures, String> {
    let (store, db) = scratch_store(url, "io").await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (seeded, _) = seeded_app(Arc::new(store.clone()), dir.path()).await;
    let figures = core_io(&seeded, writes, reads).await;
    drop(seeded);
    store.close().await;
    drop(db);
    Ok(figures)
}

/// Scenario 1's core write and read and scenario 2 on Postgres, printed
/// beside the SQLite figures, then 2,000 jobs through 4 worker processes.
async fn postgres_rows(
    bars: &mut Bars,
    url: &str,
    sqlite: &Figures,
    writes: usize,
    reads: usize,
    latency_samples: usize,
) {
    println!("Postgres rows (scratch databases on {}, dropped afterwards)", redacted(&with_database(url, "…")));
    let io = match postgres_io(url, writes, reads).await {
        Ok(io) => io,
        Err(e) => {
            bars.check(format!("postgres rows ran ({e})"), false);
            return;
        }
    };
    let jobs = async {
        let (store, db) = scratch_store(url, "jobs").await?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let figures = job_runner(Arc::new(store.clone()), dir.path(), latency_samples).await;
        store.close().await;
        drop(db);
        Ok::<_, String>(figures)
    };
    let jobs = match jobs.await {
        Ok(jobs) => jobs,
        Err(e) => {
            bars.check(format!("postgres rows ran ({e})"), false);
            return;
        }
    };
    let processes = worker_processes(url, 2000, 4, 4).await;

    let side = |name: &str, sqlite: Option<Duration>, postgres: Duration, note: String| {
        let sqlite = sqlite.map_or_else(|| "—".to_owned(), ms);
        println!("  {name:<44} sqlite {sqlite:>10}   postgres {:>10}{note}", ms(postgres));
    };
    let p90 = |s: &Stats| format!("   (postgres p90 {}, n={})", ms(s.p90), s.n);
    side("write via core (commit + audit), median", Some(sqlite.io.write.median), io.write.median, p90(&io.write));
    side("read via core (auth + ref + blob), median", Some(sqlite.io.read.median), io.read.median, p90(&io.read));
    side(
        "enqueue-to-start, idle runner, median",
        Some(sqlite.jobs.latency.median),
        jobs.latency.median,
        p90(&jobs.latency),
    );
    let rate = |d: Duration, n: f64| format!("   ({:.0} jobs/s on postgres)", n / d.as_secs_f64());
    side(
        "1,000 no-op jobs through one worker process",
        Some(sqlite.jobs.through),
        jobs.through,
        rate(jobs.through, 1000.0),
    );
    match &processes {
        Ok(run) => side(
            "2,000 no-op jobs through 4 worker processes",
            None,
            run.total,
            rate(run.total, 2000.0) + ", 4 slots each; " + &run.describe(),
        ),
        Err(e) => println!("  2,000 no-op jobs through 4 worker processes: {e}"),
    }
    bars.check("postgres write median ≤ 4 ms", io.write.median <= Duration::from_millis(4));
    let within = processes.as_ref().is_ok_and(|run| run.total <= Duration::from_secs(4));
    bars.check("2,000 jobs through 4 worker processes ≤ 4 s", within);
}

/// `conman worker` children, killed when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The release `conman` binary beside this bench (`target/release/deps/..`).
fn conman_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let binary = exe.parent().and_then(Path::parent).map(|dir| dir.join("conman")).ok_or("no target directory")?;
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "skipped: no {} (cargo build --release -p conman-cli --bin conman; cargo xtask bench does)",
            binary.display()
        ))
    }
}

/// `runs` runs of 2,000 jobs through 4 worker processes, each printed, then
/// their median against the bar.
async fn worker_runs(bars: &mut Bars, url: &str, runs: usize) {
    let mut took: Vec<Duration> = Vec::new();
    for run in 1..=runs {
        match worker_processes(url, 2000, 4, 4).await {
            Ok(run_figures) => {
                println!("  run {run}: {}", run_figures.describe());
                took.push(run_figures.total);
            }
            Err(e) => println!("  run {run}: {e}"),
        }
    }
    if took.len() == runs {
        let max = took.iter().copied().max().unwrap_or_default();
        let s = stats(took);
        let within = s.median <= Duration::from_secs(4);
        println!("  2,000 jobs through 4 worker processes: median {}, max {}", ms(s.median), ms(max));
        bars.check(format!("2,000 jobs through 4 worker processes ≤ 4 s (median of {runs})"), within);
    } else {
        bars.check(format!("2,000 jobs through 4 worker processes ran {runs} times"), false);
    }
}

/// One run of [`worker_processes`].
struct WorkerRun {
    /// Jobs run.
    jobs: usize,
    /// From the processes' start until every job succeeded.
    total: Duration,
    /// From the processes' start until the first job succeeded (process
    /// start-up: connecting, the migration and master-key checks).
    first: Duration,
}

impl WorkerRun {
    fn describe(&self) -> String {
        let rest = self.total.saturating_sub(self.first);
        format!(
            "{} (first job done after {}, then {:.0} jobs/s)",
            ms(self.total),
            ms(self.first),
            self.jobs.saturating_sub(1) as f64 / rest.as_secs_f64().max(1e-9)
        )
    }
}

/// Enqueues `jobs` no-op gate jobs on a scratch database, starts `processes`
/// `conman worker` processes of `slots` slots on it (polling every 10 ms),
/// and answers the time from their start until every job succeeded.
async fn worker_processes(url: &str, jobs: usize, processes: usize, slots: usize) -> Result<WorkerRun, String> {
    use conman_core::domain::job::{JobState, JobType};
    use conman_core::ports::store::UnitOfWork;
    use conman_core::services::{GateKind, GatePayload, NewJob};

    let binary = conman_binary()?;
    let (store, db) = scratch_store(url, "workers").await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let conman = core_on(Arc::new(store.clone()), dir.path());
    let admin = conman.bootstrap_admin("workers@example.com", "Workers", "bench-password-123").await.expect("admin");
    let actor = conman.local_actor(admin.email.as_str(), RequestContext::default()).await.expect("actor");
    let app = conman.create_app(&actor, NewApp { name: "gates".into(), ..Default::default() }).await.expect("app");
    // No gate command anywhere: each gate passes without starting a process.
    let payload = GatePayload {
        gate: GateKind::Submit,
        commit: "0".repeat(40),
        changeset_id: None,
        release_id: None,
        environment: None,
    };
    let payload = serde_json::to_value(&payload).expect("payload");
    for _ in 0..jobs.div_ceil(100) {
        let mut unit = UnitOfWork::new();
        for _ in 0..100 {
            let spec = NewJob {
                app_id: app.id,
                job_type: JobType::GateSubmit,
                entity_type: None,
                entity_id: None,
                payload: payload.clone(),
                timeout_secs: 60,
            };
            unit = conman.enqueue_in(unit, None, &conman.new_job(None, spec));
        }
        store.commit(unit).await.expect("enqueue");
    }

    let start = Instant::now();
    let mut workers = Workers(Vec::new());
    for n in 0..processes {
        let log = std::fs::File::create(dir.path().join(format!("worker{n}.log"))).map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--database-url")
            .arg(&db.url)
            .args(["worker", "--workers", &slots.to_string()])
            .current_dir(dir.path())
            .env_remove("CONMAN_CONFIG")
            .env_remove("CONMAN_GATE_SUBMIT_CMD")
            .env("CONMAN_JOB_POLL_MS", "10")
            .env("CONMAN_SECRETS_MASTER_KEY", "00".repeat(32))
            .env("CONMAN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        workers.0.push(child);
    }
    let mut first = None;
    let outcome = loop {
        let counts = conman.job_counts().await.map_err(|e| format!("{e:?}"))?;
        let count =
            |state| counts.iter().filter(|(t, s, _)| *t == JobType::GateSubmit && *s == state).map(|c| c.2).sum();
        let (succeeded, failed): (u64, u64) = (count(JobState::Succeeded), count(JobState::Failed));
        if succeeded > 0 && first.is_none() {
            first = Some(start.elapsed());
        }
        if succeeded == jobs as u64 {
            let total = start.elapsed();
            break Ok(WorkerRun { jobs, total, first: first.unwrap_or(total) });
        }
        if failed > 0 {
            break Err(format!("{failed} jobs failed (see the worker logs)"));
        }
        if let Some(exited) = workers.0.iter_mut().find_map(|c| c.try_wait().ok().flatten()) {
            let log = std::fs::read_to_string(dir.path().join("worker0.log")).unwrap_or_default();
            break Err(format!("a worker exited ({exited}); worker0.log:\n{log}"));
        }
        if start.elapsed() > Duration::from_secs(120) {
            break Err(format!("only {succeeded} of {jobs} jobs succeeded after 120 s"));
        }
        tokio::time::sleep(PROGRESS_POLL).await;
    };
    drop(workers);
    store.close().await;
    drop(db);
    outcome
}
