//! Scenario 8 of `cargo xtask bench` (issue 14: deployments), on the
//! [`Lab`] installation (SQLite, the worker in this process with the
//! server's defaults — 2 slots, 1 s poll, so the wake-up starts each job —
//! and no deploy gate or deploy command configured, so a deployment is
//! Conman's own overhead), one app with 10 environments `stage0`..`stage9`
//! (positions 0..9) and two published releases A and B:
//! - (a) one deploy: `Conman::deploy_release` to `stage0` (the first stage,
//!   so never a skip-stage), timed from the call until the deployment is
//!   `succeeded` in the store, alternating A and B round by round so every
//!   deploy moves the environment ref. Printed beside it: the call itself,
//!   the job's enqueue-to-start and start-to-finish (the job runtime's
//!   share of the whole). Bar: median ≤ 20 ms;
//! - (b) 10 environments at once: A is first promoted down the chain
//!   (`stage0` → … → `stage9`, untimed), so each environment's previous
//!   stage runs A; then 10 `deploy_release` calls of A, one per
//!   environment, start together (tokio tasks), each a valid request
//!   whatever order they land in (`stage0` is the first stage, `stage k` a
//!   promotion since `stage k-1` runs A before and after its own deploy),
//!   none needing approvals; timed from the start until all 10 are
//!   `succeeded`. The refs already hold A's commit, so these deployments
//!   move no ref (a different release on all 10 at once would be a
//!   skip-stage on 9 of them); the single deploy they are compared with is
//!   measured the same way in the same rounds: A redeployed to one
//!   environment (a different one each round). Bar: all succeed and the 10
//!   take ≤ 2× the single one. One more row, informational, runs (b) with
//!   a worker of 10 slots (one per environment).
//!
//! To show where the time goes, each part also prints the process's CPU
//! time over its median run (all threads, from `/proc/self/task`) and (b)
//! the median run's timeline: per deployment, when its call answered, its
//! job started and it finished.
//!
//! Invariant: each timed run starts with the worker idle; one poller per
//! run watches all its deployments, reading the store about every
//! millisecond (tokio's timer), so a figure is at most that late and
//! watching 10 costs about what watching 1 does; a deployment that does
//! not succeed, or a request that comes back waiting for approvals, fails
//! the run's bar instead of being timed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conman_api::runtime::worker::WorkerOptions;
use conman_core::domain::deployment::{Deployment, DeploymentState};
use conman_core::ids::{AppId, DeploymentId, EnvironmentId, ReleaseId};
use conman_core::services::{Conman, DeployRequest, DeploymentStarted, EnvironmentInput};

use super::lab::Lab;
use super::{ms, row, stats, Bars};

/// Environments of the app.
const ENVIRONMENTS: usize = 10;

/// Bar (a): one deploy's median, request to `succeeded`.
const SINGLE_BAR: Duration = Duration::from_millis(20);

/// Bar (b): 10 at once take at most this many times one.
const MAX_RATIO: f64 = 2.0;

/// How long a poller sleeps between looks (tokio's timer makes it about a
/// millisecond).
const POLL: Duration = Duration::from_micros(200);

/// How long a deployment may take before the run fails.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// One deployment's figures, from the start of its run.
struct Timing {
    /// Until it was `succeeded` (its `finished_at`, wall clock).
    whole: Duration,
    /// Until its `deploy_release` call answered.
    request: Duration,
    /// Its job's enqueue to its start (wake-up and claim).
    to_start: Duration,
    /// Its job's start to its finish (the job runtime's share).
    job: Duration,
    /// When its job started (wall clock).
    job_started: chrono::DateTime<chrono::Utc>,
}

/// CPU time this process has used so far, summed over its threads
/// (`/proc/self/task/*/schedstat`, nanoseconds on a CPU); zero where that
/// is not readable. A thread that exits takes its share with it, so a
/// figure over a window can only be low, never high.
fn cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Duration::ZERO };
    let nanos: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum();
    Duration::from_nanos(nanos)
}

/// What the process did during one timed run.
struct Window {
    /// Wall time.
    wall: Duration,
    /// CPU time over all threads (the worker's, the store's blocking
    /// threads', the requests' and the one poller's).
    cpu: Duration,
}

/// One timed run: a release deployed to one or more environments at once.
struct Run {
    /// From the start until every deployment was seen `succeeded`.
    total: Duration,
    /// The figures of each deployment.
    each: Vec<Timing>,
    /// The wall clock at the start (to place each job's start).
    wall_start: chrono::DateTime<chrono::Utc>,
    /// CPU used meanwhile.
    window: Window,
}

fn between(from: chrono::DateTime<chrono::Utc>, to: Option<chrono::DateTime<chrono::Utc>>) -> Duration {
    to.map_or(Duration::ZERO, |to| (to - from).to_std().unwrap_or_default())
}

/// Waits until the deployment has finished (untimed set-up steps).
async fn finished(conman: &Conman, app: AppId, id: DeploymentId) -> Deployment {
    let start = Instant::now();
    loop {
        let d = conman.ports().store.deployment(app, id).await.expect("read").expect("exists");
        if !matches!(d.state, DeploymentState::Pending | DeploymentState::Running) {
            return d;
        }
        assert!(start.elapsed() < SETTLE_LIMIT, "deployment {id} never finished");
        tokio::time::sleep(POLL).await;
    }
}

/// What a request task answers: its deployment, or why it did not run.
type Answer = Result<(DeploymentStarted, Duration), String>;

/// Deploys `release` to each of `envs` at once — one `deploy_release` call
/// per environment, each a tokio task — after the worker went idle, and
/// waits until every deployment finished. One poller watches them all
/// (see the loop), so watching 10 costs about what watching 1 does.
/// Answers the run, or why a deployment did not succeed.
async fn deploy_all(lab: &Lab, release: ReleaseId, envs: &[EnvironmentId]) -> Result<Run, String> {
    lab.idle().await;
    let (conman, app) = (&lab.conman, lab.app);
    let cpu = cpu_time();
    let wall_start = chrono::Utc::now();
    let start = Instant::now();
    let answers: Arc<Mutex<Vec<Option<Answer>>>> = Arc::new(Mutex::new((0..envs.len()).map(|_| None).collect()));
    for (i, env) in envs.iter().enumerate() {
        let (conman, actor, env, answers) = (Arc::clone(conman), lab.actor.clone(), *env, Arc::clone(&answers));
        tokio::spawn(async move {
            let request = DeployRequest {
                release_id: release,
                environment_ids: vec![env],
                freeze_override: None,
                is_skip_stage: false,
                is_concurrent_batch: false,
            };
            let answer = match conman.deploy_release(&actor, app, request).await {
                Ok(mut started) => match started.pop() {
                    Some(s) if s.job.is_some() => Ok((s, start.elapsed())),
                    Some(s) => Err(format!("it waits for approvals ({:?})", s.deployment.exception)),
                    None => Err("no deployment".to_owned()),
                },
                Err(e) => Err(format!("refused: {e}")),
            };
            answers.lock().expect("answers")[i] = Some(answer);
        });
    }
    // Each tick reads the unfinished deployments in request order, up to
    // the first one still running (one point read while all wait).
    let mut done: Vec<Option<Deployment>> = (0..envs.len()).map(|_| None).collect();
    'watch: loop {
        for (i, slot) in done.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let id = match &answers.lock().expect("answers")[i] {
                Some(Ok((started, _))) => started.deployment.id,
                Some(Err(e)) => return Err(e.clone()),
                None => break,
            };
            let d = conman.ports().store.deployment(app, id).await.expect("read").expect("exists");
            if matches!(d.state, DeploymentState::Pending | DeploymentState::Running) {
                break;
            }
            *slot = Some(d);
        }
        if done.iter().all(Option::is_some) {
            break 'watch;
        }
        assert!(start.elapsed() < SETTLE_LIMIT, "deployments never finished");
        tokio::time::sleep(POLL).await;
    }
    let total = start.elapsed();
    let window = Window { wall: total, cpu: cpu_time().saturating_sub(cpu) };

    let answers: Vec<Answer> = answers.lock().expect("answers").drain(..).map(|a| a.expect("answered")).collect();
    let mut each = Vec::with_capacity(envs.len());
    for (answer, done) in answers.into_iter().zip(done) {
        let ((started, request), done) = (answer?, done.expect("finished"));
        if done.state != DeploymentState::Succeeded {
            return Err(format!("it ended {}: {}", done.state.as_str(), done.failure.unwrap_or_default()));
        }
        let job_id = started.job.as_ref().expect("a running deployment has its job").id;
        let job = loop {
            let job = conman.ports().store.job(app, job_id).await.expect("read").expect("exists");
            if job.state.is_terminal() {
                break job;
            }
            tokio::time::sleep(POLL).await;
        };
        let begun = job.started_at.unwrap_or(job.created_at);
        each.push(Timing {
            whole: between(wall_start, done.finished_at),
            request,
            to_start: between(job.created_at, Some(begun)),
            job: between(begun, job.finished_at),
            job_started: begun,
        });
    }
    Ok(Run { total, each, wall_start, window })
}

/// Runs scenario 8 with `rounds` timed single deploys for (a) and
/// `together` rounds for (b).
pub(super) async fn scenario_deploy(bars: &mut Bars, rounds: usize, together: usize) {
    println!("Scenario 8: deployments without deploy commands (SQLite, worker in process: 2 slots)");
    let mut lab = Lab::open("deploy").await;
    let input = (0..ENVIRONMENTS)
        .map(|k| EnvironmentInput {
            name: format!("stage{k}"),
            position: k as u32,
            is_canonical: k == ENVIRONMENTS - 1,
            runtime_profile_id: None,
        })
        .collect();
    let envs: Vec<EnvironmentId> = lab
        .conman
        .replace_environments(&lab.actor, lab.app, input)
        .await
        .expect("environments")
        .iter()
        .map(|e| e.id)
        .collect();
    let a = lab.published("Release A", "config/a.yaml", "a: 1\n").await.id;
    let b = lab.published("Release B", "config/b.yaml", "b: 1\n").await.id;

    // (a): A and B in turn on the first stage, each deploy moving its ref.
    deploy_all(&lab, a, &envs[..1]).await.expect("warm-up deploy of A");
    deploy_all(&lab, b, &envs[..1]).await.expect("warm-up deploy of B");
    let mut runs = Vec::with_capacity(rounds);
    let mut failure = None;
    for n in 0..rounds {
        match deploy_all(&lab, if n % 2 == 0 { a } else { b }, &envs[..1]).await {
            Ok(run) => runs.push(run),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if rounds % 2 == 0 {
        deploy_all(&lab, a, &envs[..1]).await.expect("A back on the first stage");
    }
    match failure {
        Some(e) => bars.check(format!("deploy to the first stage succeeds ({e})"), false),
        None => print_single(bars, &runs),
    }

    // (b): A down the chain, then A to all 10 at once beside A to one.
    for (k, target) in envs.iter().enumerate().skip(1) {
        lab.idle().await;
        let started = lab.conman.promote_release(&lab.actor, lab.app, *target, None, None).await.expect("promote");
        let done = finished(&lab.conman, lab.app, started.deployment.id).await;
        assert_eq!(done.state, DeploymentState::Succeeded, "promotion to stage{}", k);
    }
    let (mut one, mut ten) = (Vec::with_capacity(together), Vec::with_capacity(together));
    let mut failure = None;
    for n in 0..together {
        let env = n % ENVIRONMENTS;
        let outcome = match deploy_all(&lab, a, &envs[env..=env]).await {
            Ok(single) => deploy_all(&lab, a, &envs).await.map(|all| (single, all)),
            Err(e) => Err(format!("one: {e}")),
        };
        match outcome {
            Ok((single, all)) => {
                one.push(single);
                ten.push(all);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let wide = if failure.is_none() {
        lab.restart_worker(WorkerOptions { concurrency: ENVIRONMENTS, ..WorkerOptions::default() }).await;
        let mut wide = Vec::new();
        for _ in 0..together {
            match deploy_all(&lab, a, &envs).await {
                Ok(all) => wide.push(all.total),
                Err(e) => println!("  (10 slots) {e}"),
            }
        }
        wide
    } else {
        Vec::new()
    };
    lab.idle().await;
    lab.stop_worker().await;
    match failure {
        Some(e) => bars.check(format!("10 environments at once: all succeed ({e})"), false),
        None => print_together(bars, one, ten, wide),
    }
}

fn print_single(bars: &mut Bars, runs: &[Run]) {
    let figures: Vec<&Timing> = runs.iter().map(|r| &r.each[0]).collect();
    let mut shares: Vec<f64> = runs.iter().map(|r| r.each[0].job.as_secs_f64() / r.total.as_secs_f64()).collect();
    shares.sort_by(f64::total_cmp);
    let share = shares[shares.len() / 2];
    let whole = stats(runs.iter().map(|r| r.total).collect());
    row("deploy to stage0, request → succeeded", &whole);
    row("  the deploy_release call", &stats(figures.iter().map(|t| t.request).collect()));
    row("  job enqueued → started (wake-up, claim)", &stats(figures.iter().map(|t| t.to_start).collect()));
    row("  job started → finished (the job runtime)", &stats(figures.iter().map(|t| t.job).collect()));
    println!("  job runtime's share of the whole: {:.0} % (median of rounds)", share * 100.0);
    println!("  CPU, median round: {}", cpu_line(runs));
    bars.check("deploy request → succeeded median ≤ 20 ms", whole.median <= SINGLE_BAR);
}

/// "X ms CPU in Y ms (Z cores)" for the median run (by wall time) of `runs`.
fn cpu_line(runs: &[Run]) -> String {
    let mut sorted: Vec<&Window> = runs.iter().map(|r| &r.window).collect();
    sorted.sort_by_key(|w| w.wall);
    let w = sorted[sorted.len() / 2];
    let cores = w.cpu.as_secs_f64() / w.wall.as_secs_f64().max(1e-9);
    format!("{} of CPU in {} ({cores:.2} cores busy on average)", ms(w.cpu), ms(w.wall))
}

/// A run's timeline: for each deployment, when its call answered, its job
/// started and it finished (`finished_at`), in ms from the start, by job start.
fn timeline(run: &Run) -> String {
    let at = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let mut each: Vec<&Timing> = run.each.iter().collect();
    each.sort_by_key(|t| t.job_started);
    each.iter()
        .map(|t| format!("{}/{}/{}", at(t.request), at(between(run.wall_start, Some(t.job_started))), at(t.whole)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_together(bars: &mut Bars, one: Vec<Run>, ten: Vec<Run>, wide: Vec<Duration>) {
    let mut by_total: Vec<&Run> = ten.iter().collect();
    by_total.sort_by_key(|r| r.total);
    let median_run = timeline(by_total[by_total.len() / 2]);
    let requests = stats(ten.iter().map(|r| r.each.iter().map(|t| t.request).max().unwrap_or_default()).collect());
    let jobs = stats(ten.iter().flat_map(|r| r.each.iter().map(|t| t.job)).collect());
    let ten_stats = stats(ten.iter().map(|r| r.total).collect());
    let one_stats = stats(one.iter().map(|r| r.total).collect());
    row(&format!("{ENVIRONMENTS} environments at once, until all succeeded"), &ten_stats);
    row("  until the last of the 10 calls answered", &requests);
    row("  each deploy job, started → finished", &jobs);
    row("one environment, the same redeploy of A", &one_stats);
    if !wide.is_empty() {
        row(&format!("{ENVIRONMENTS} at once, worker of {ENVIRONMENTS} slots (info)"), &stats(wide));
    }
    println!("  CPU, median run: {ENVIRONMENTS} at once {}; one {}", cpu_line(&ten), cpu_line(&one));
    println!("  median run of 10 (answered/job started/succeeded, ms from the start, by job start): {median_run}");
    let ratio = ten_stats.median.as_secs_f64() / one_stats.median.as_secs_f64();
    let (ten_ms, one_ms) = (ms(ten_stats.median), ms(one_stats.median));
    println!("  ratio deploy: {ENVIRONMENTS} at once take {ratio:.2}× one ({ten_ms} vs {one_ms})");
    bars.check(format!("{ENVIRONMENTS} environments at once: all succeed and ≤ {MAX_RATIO}× one"), ratio <= MAX_RATIO);
}
