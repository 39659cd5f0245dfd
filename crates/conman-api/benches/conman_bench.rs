//! `cargo xtask bench`: Conman's performance bars, each measured side by
//! side with its baseline, printing medians and ratios.
//!
//! Scenario 1 (foundation issue): on a synthetic app repository of 10,000
//! files (100 dirs × 100 YAML files),
//! - a single-file write into a workspace through the core service (git
//!   commit + audit in SQLite), against the same write done by the `git`
//!   command line (hash-object, temporary index, write-tree, commit-tree,
//!   update-ref);
//! - a file read at a ref, through the core service and through the git
//!   port, against `git show REF:PATH`.
//!
//! Bars: write median ≤ 2 ms and ≥ 10× faster than the CLI sequence; read
//! median ≤ 0.5 ms.
//!
//! Scenario 2 (jobs issue): with an idle runner (one process, its poll
//! interval 10 s so only the wake-up can start a job), the enqueue-to-start
//! latency of a no-op job (bar: median ≤ 20 ms); and 1,000 no-op jobs
//! through one worker process on SQLite (bar: ≤ 2 s).
//!
//! Run with `--quick` for fewer iterations.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conman_core::domain::audit::RequestContext;
use conman_core::ports::git::{FileOp, Signature, WriteRequest};
use conman_core::ports::store::PageRequest;
use conman_core::ports::system::{Argon2Hasher, OsRandomTokens, SystemClock, UuidV7Ids};
use conman_core::services::{Config, Conman, NewApp, Ports};
use conman_core::validation::RepoPath;

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

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

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

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (writes, reads, cli_writes, cli_reads) = if quick { (100, 500, 10, 20) } else { (500, 2000, 30, 60) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async move {
        scenario_workspace_io(writes, reads, cli_writes, cli_reads).await;
        scenario_jobs(if quick { 50 } else { 200 }).await;
    });
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

async fn scenario_jobs(latency_samples: usize) {
    use conman_api::runtime::wakeup::NotifyWakeup;
    use conman_api::runtime::worker::{run_workers, WorkerOptions};
    use conman_core::domain::job::{JobState, JobType};
    use conman_core::ports::store::UnitOfWork;
    use conman_core::services::NewJob;

    println!("Scenario 2: job runner on SQLite");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = conman_store_sqlite::SqliteStore::open(&dir.path().join("conman.db")).expect("store");
    let git_repos = Arc::new(conman_git::GitRepos::new(dir.path().join("repos")).expect("repos"));
    let wakeup = Arc::new(NotifyWakeup::new());
    let conman = Arc::new(
        Conman::new(
            Ports {
                store: Arc::new(store),
                git: git_repos.clone(),
                clock: Arc::new(SystemClock),
                ids: Arc::new(UuidV7Ids),
                passwords: Arc::new(Argon2Hasher::insecure_fast_for_tests()),
                tokens: Arc::new(OsRandomTokens),
            },
            Config::default(),
        )
        .with_job_runtime(
            Arc::new(conman_api::runtime::command::ProcessRunner::new((*git_repos).clone())),
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
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let through = t.elapsed();
    let _ = stop.send(());
    workers.await.expect("workers stop");

    row("enqueue-to-start, idle runner (wake-up)", &latency);
    println!(
        "  1,000 no-op jobs through one worker process   {:>10}   ({:.0} jobs/s)",
        ms(through),
        1000.0 / through.as_secs_f64()
    );
    println!("  bar enqueue-to-start median ≤ 20 ms: {}", verdict(latency.median <= Duration::from_millis(20)));
    println!("  bar 1,000 jobs ≤ 2 s: {}", verdict(through <= Duration::from_secs(2)));
}

async fn scenario_workspace_io(writes: usize, reads: usize, cli_writes: usize, cli_reads: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = conman_store_sqlite::SqliteStore::open(&dir.path().join("conman.db")).expect("store");
    let git_repos = conman_git::GitRepos::new(dir.path().join("repos")).expect("repos");
    let conman = Arc::new(Conman::new(
        Ports {
            store: Arc::new(store),
            git: Arc::new(git_repos),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            passwords: Arc::new(Argon2Hasher::insecure_fast_for_tests()),
            tokens: Arc::new(OsRandomTokens),
        },
        Config::default(),
    ));
    let admin = conman.bootstrap_admin("bench@example.com", "Bench", "bench-password-123").await.expect("admin");
    let actor = conman.local_actor(admin.email.as_str(), RequestContext::default()).await.expect("actor");
    let app = conman.create_app(&actor, NewApp { name: "bench".into(), ..Default::default() }).await.expect("app");

    println!("Scenario 1: workspace write and read on a 10,000-file repository");
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
    println!("  seeded 10,000 files in {:.2} s", t.elapsed().as_secs_f64());

    let workspaces = conman.list_workspaces(&actor, app.id, PageRequest::default()).await.expect("ws");
    let ws = workspaces.items.into_iter().find(|w| w.is_default).expect("default workspace");

    // Warm-up, then measure the core write path (git commit on the WIP ref + audit row).
    for i in 0..20 {
        let path = format!("svc{:03}/warm{i}.yaml", i % 100);
        conman.write_file(&actor, app.id, ws.id, &path, b"warm: 1\n".to_vec(), None).await.expect("warm");
    }
    let mut samples = Vec::with_capacity(writes);
    for i in 0..writes {
        let path = format!("svc{:03}/config{:03}.yaml", i % 100, (i * 7) % 100);
        let content = format!("service: x\nrevision: {i}\n").into_bytes();
        let t = Instant::now();
        conman.write_file(&actor, app.id, ws.id, &path, content, None).await.expect("write");
        samples.push(t.elapsed());
    }
    let core_write = stats(samples);

    let mut samples = Vec::with_capacity(reads);
    for i in 0..reads {
        let path = format!("svc{:03}/config{:03}.yaml", i % 100, (i * 13) % 100);
        let t = Instant::now();
        conman.read_workspace_path(&actor, app.id, ws.id, Some(&path)).await.expect("read");
        samples.push(t.elapsed());
    }
    let core_read = stats(samples);

    let head = conman.get_workspace(&actor, app.id, ws.id).await.expect("ws").1;
    let mut samples = Vec::with_capacity(reads);
    for i in 0..reads {
        let path = RepoPath::parse(&format!("svc{:03}/config{:03}.yaml", i % 100, (i * 13) % 100)).expect("path");
        let t = Instant::now();
        conman.ports().git.read(app.id, &head, Some(&path)).await.expect("read");
        samples.push(t.elapsed());
    }
    let port_read = stats(samples);

    // Baselines with the git command line on the same repository.
    let repo = dir.path().join("repos").join(format!("{}.git", app.id));
    assert!(repo.exists(), "repository at {}", repo.display());
    let index = dir.path().join("bench.index");
    let bench_ref = "refs/heads/bench-cli";
    git(&repo, &["update-ref", bench_ref, head.as_str()], &[], None);
    let mut samples = Vec::with_capacity(cli_writes);
    for i in 0..cli_writes {
        let path = format!("svc{:03}/config{:03}.yaml", i % 100, (i * 7) % 100);
        let t = Instant::now();
        cli_write(&repo, &index, bench_ref, &path, format!("cli: {i}\n").as_bytes());
        samples.push(t.elapsed());
    }
    let cli_write_stats = stats(samples);
    let mut samples = Vec::with_capacity(cli_reads);
    for i in 0..cli_reads {
        let spec = format!("{}:svc{:03}/config{:03}.yaml", head, i % 100, (i * 13) % 100);
        let t = Instant::now();
        git(&repo, &["show", &spec], &[], None);
        samples.push(t.elapsed());
    }
    let cli_read_stats = stats(samples);

    row("write via core (commit + audit)", &core_write);
    row("write via git CLI (hash-object…update-ref)", &cli_write_stats);
    row("read via core (auth + ref + blob)", &core_read);
    row("read via git port", &port_read);
    row("read via git show", &cli_read_stats);
    let write_ratio = cli_write_stats.median.as_secs_f64() / core_write.median.as_secs_f64();
    let read_ratio = cli_read_stats.median.as_secs_f64() / core_read.median.as_secs_f64();
    println!("  ratio write: core is {write_ratio:.1}× faster than the git CLI sequence");
    println!("  ratio read:  core is {read_ratio:.1}× faster than git show");
    let write_ok = core_write.median <= Duration::from_millis(2) && write_ratio >= 10.0;
    let read_ok = core_read.median <= Duration::from_micros(500);
    println!("  bar write median ≤ 2 ms and ≥ 10× CLI: {}", verdict(write_ok));
    println!("  bar read median ≤ 0.5 ms: {}", verdict(read_ok));
}
