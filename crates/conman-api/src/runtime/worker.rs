//! The worker loop: [`run_workers`] runs N slots in this process, each
//! claiming a job, running its handler and ending the attempt, until
//! shutdown.
//!
//! One attempt races, in one `select!`:
//! - the handler (its outcome is passed to `Conman::complete_job`; if a
//!   cancel was requested meanwhile the core ends it canceled anyway);
//! - the cancel signal ([`NotifyWakeup::watch_cancel`]): fired in this
//!   process right after a cancel request commits, by the Postgres listener
//!   for a request of any process, and by this process's cancel poll —
//!   every `poll_interval`, `Conman::jobs_to_stop` over the jobs running
//!   here — for a request no notification told about; it stops the handler
//!   and ends the attempt `Canceled`;
//! - lease renewal every `lease_ttl / 3`: a cancel request seen there stops
//!   the handler the same way; a lost lease abandons the job without
//!   completing it (another worker owns it now);
//! - the job's own timeout (`AttemptEnd::TimedOut`);
//! - shutdown: the handler gets `shutdown_grace` to finish, then it is
//!   dropped and the job released back to the queue.
//!
//! Invariants: every decision (retry, backoff, give up, a requested cancel
//! winning over the handler's outcome) is the core's; a
//! stopped handler is *dropped*, which kills its command's process group
//! (see `command.rs`); no slot claims after shutdown began; an idle slot
//! wakes on the in-process notify or every `poll_interval` (jobs enqueued by
//! other processes), and arms the notify before claiming so no wake-up is
//! lost.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conman_core::domain::job::{Job, JobState, JobType, LogStream, NewLogLine};
use conman_core::ports::runner::{JobWakeup as _, LogSink as _};
use conman_core::services::{AttemptEnd, Conman, JobOutcome, LeaseStatus};
use conman_core::Error;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::log_sink::JobLog;
use super::metrics;
use super::wakeup::{CancelWatch, NotifyWakeup};

/// How this process runs jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// Jobs run at once (slots); 0 runs none.
    pub concurrency: usize,
    /// How often an idle slot looks for work without a wake-up.
    pub poll_interval: Duration,
    /// How long running jobs may finish after shutdown begins before they
    /// are released back to the queue.
    pub shutdown_grace: Duration,
    /// Worker ids are `<id_prefix>-<pid>-<slot>`.
    pub id_prefix: String,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 2,
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            id_prefix: host_name(),
        }
    }
}

/// This machine's name (for worker ids), `worker` when unknown.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

/// Runs `options.concurrency` worker slots until `shutdown` resolves, then
/// lets running jobs finish within the grace period (releasing those that
/// do not) and returns. A slot that panics is logged and restarted; its job
/// is reclaimed after its lease expires.
pub async fn run_workers(
    conman: Arc<Conman>,
    wakeup: Arc<NotifyWakeup>,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopped) = watch::channel(false);
    let options = Arc::new(options);
    let mut slots = JoinSet::new();
    let mut slot_of = HashMap::new();
    let spawn = |slots: &mut JoinSet<()>, slot_of: &mut HashMap<tokio::task::Id, usize>, n: usize| {
        let slot = Slot {
            conman: Arc::clone(&conman),
            wakeup: Arc::clone(&wakeup),
            options: Arc::clone(&options),
            worker: format!("{}-{}-{n}", options.id_prefix, std::process::id()),
            stop: stopped.clone(),
        };
        let handle = slots.spawn(slot.run());
        slot_of.insert(handle.id(), n);
    };
    for n in 0..options.concurrency {
        spawn(&mut slots, &mut slot_of, n);
    }
    let cancel_poll = (options.concurrency > 0)
        .then(|| tokio::spawn(poll_cancels(Arc::clone(&conman), Arc::clone(&wakeup), options.poll_interval)));
    tracing::info!(slots = options.concurrency, prefix = %options.id_prefix, "job workers started");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(joined) = slots.join_next_with_id() => {
                let (id, panicked) = match joined {
                    Ok((id, ())) => (id, false),
                    Err(e) => (e.id(), e.is_panic()),
                };
                if let Some(n) = slot_of.remove(&id) {
                    tracing::error!(slot = n, panicked, "job worker slot ended unexpectedly; restarting it");
                    spawn(&mut slots, &mut slot_of, n);
                }
            }
        }
    }
    tracing::info!(grace_secs = options.shutdown_grace.as_secs_f64(), "job workers stopping");
    let _ = stop.send(true);
    while let Some(joined) = slots.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "job worker slot failed during shutdown");
        }
    }
    // Polled on while running jobs had their grace period.
    if let Some(cancel_poll) = cancel_poll {
        cancel_poll.abort();
    }
    tracing::info!("job workers stopped");
}

/// Every `every`, asks the core which of the jobs running in this process
/// had their cancel requested (through another process, or while no
/// notification could tell) and signals their attempts. One store read per
/// interval for the whole process, none while nothing runs.
async fn poll_cancels(conman: Arc<Conman>, wakeup: Arc<NotifyWakeup>, every: Duration) {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let running = wakeup.running_jobs();
        match conman.jobs_to_stop(&running).await {
            Ok(to_stop) => to_stop.into_iter().for_each(|job| wakeup.cancel_requested(job)),
            Err(e) => tracing::warn!(error = ?e, "polling for cancel requests failed; retrying at the next tick"),
        }
    }
}

/// One worker slot.
struct Slot {
    conman: Arc<Conman>,
    wakeup: Arc<NotifyWakeup>,
    options: Arc<WorkerOptions>,
    worker: String,
    stop: watch::Receiver<bool>,
}

/// How an attempt left the worker's hands.
enum Attempt {
    /// It ended; the core decides what follows.
    Ended(AttemptEnd),
    /// The lease was lost: someone else owns the job.
    Lost,
    /// Shutdown: give it back.
    Released,
}

impl Slot {
    async fn run(mut self) {
        let wakeup = Arc::clone(&self.wakeup);
        loop {
            if *self.stop.borrow() {
                return;
            }
            let notified = wakeup.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.conman.claim_next_job(&self.worker).await {
                Ok(Some(job)) => {
                    self.run_job(job).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(worker = %self.worker, error = ?e, "claiming a job failed; retrying"),
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(self.options.poll_interval) => {}
                () = super::stop_requested(&mut self.stop) => return,
            }
        }
    }

    async fn run_job(&mut self, job: Job) {
        let conman = Arc::clone(&self.conman);
        let runnable_since = job.created_at.max(job.run_after);
        let waited = (conman.ports().clock.now() - runnable_since).to_std().unwrap_or_default();
        metrics::observe_queue_wait(job.job_type, waited);
        tracing::info!(
            job = %job.id, app = %job.app_id, job_type = job.job_type.as_str(), attempt = job.attempts,
            worker = %self.worker, waited_ms = waited.as_millis() as u64, "job started"
        );
        let started = Instant::now();
        // The core opened the attempt's log after the claim; it goes on from there.
        let log = JobLog::start(Arc::clone(&conman), job.id);
        let cancel = self.wakeup.watch_cancel(job.id);
        let attempt = attempt(&conman, &self.worker, &self.options, &mut self.stop, &job, &log, &cancel).await;
        drop(cancel);
        let ran = started.elapsed();
        metrics::observe_run(job.job_type, ran);
        let ran_ms = ran.as_millis() as u64;
        match attempt {
            Attempt::Ended(end) => {
                match &end {
                    AttemptEnd::Canceled => log.line(LogStream::System, "canceled: the job was stopped".into()).await,
                    AttemptEnd::TimedOut => {
                        let msg =
                            format!("the attempt ran past the job's timeout of {} s and was stopped", job.timeout_secs);
                        log.line(LogStream::System, msg).await;
                    }
                    AttemptEnd::Finished(_) => {}
                }
                if let AttemptEnd::Finished(JobOutcome::Succeeded { result, .. }) = &end {
                    metrics::observe_result(job.job_type, result);
                }
                if let Some(outcome) = deploy_outcome(&job, &end) {
                    metrics::observe_deploy(outcome, ran);
                }
                // The last lines go in with the job's end: one commit.
                let tail = log.into_tail().await;
                let completed = complete(&conman, &job, &self.worker, end, &tail).await;
                if completed.is_err() && !tail.is_empty() {
                    if let Err(e) = conman.append_job_log(job.id, tail).await {
                        tracing::warn!(job = %job.id, error = ?e, "could not store the attempt's last log lines");
                    }
                }
                match completed {
                    Ok(state) => tracing::info!(
                        job = %job.id, job_type = job.job_type.as_str(), state = state.as_str(), ran_ms, "job attempt ended"
                    ),
                    Err(Error::Conflict { .. }) => tracing::warn!(
                        job = %job.id, worker = %self.worker, "lease lost before completion; another worker owns the job"
                    ),
                    Err(e) => tracing::error!(job = %job.id, error = ?e, "could not record the end of a job attempt"),
                }
            }
            Attempt::Lost => {
                log.line(LogStream::System, format!("worker {} lost the lease; attempt abandoned", self.worker)).await;
                log.finish().await;
                tracing::warn!(job = %job.id, worker = %self.worker, ran_ms, "lease lost; attempt abandoned");
            }
            Attempt::Released => {
                log.line(LogStream::System, "the worker is shutting down; job released to the queue".into()).await;
                log.finish().await;
                match conman.release_job(&job, &self.worker).await {
                    Ok(()) => tracing::info!(job = %job.id, ran_ms, "job released at shutdown"),
                    Err(e) => {
                        tracing::warn!(job = %job.id, error = ?e, "could not release a job; its lease will expire")
                    }
                }
            }
        }
    }
}

/// Runs one attempt of `job` (see the module docs for what it races).
async fn attempt(
    conman: &Conman,
    worker: &str,
    options: &WorkerOptions,
    stop: &mut watch::Receiver<bool>,
    job: &Job,
    log: &JobLog,
    cancel: &CancelWatch,
) -> Attempt {
    let handler = conman.run_job_handler(job, log);
    tokio::pin!(handler);
    let cancel_requested = cancel.requested();
    tokio::pin!(cancel_requested);
    let every = (conman.config().jobs.lease_ttl / 3).max(Duration::from_millis(10));
    let mut renew = tokio::time::interval_at(Instant::now() + every, every);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let timeout = tokio::time::sleep(Duration::from_secs(job.timeout_secs));
    tokio::pin!(timeout);
    // Armed when shutdown begins.
    let grace = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(grace);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            outcome = &mut handler => return Attempt::Ended(AttemptEnd::Finished(outcome)),
            // Returning drops the handler, which kills its command.
            () = &mut cancel_requested => return Attempt::Ended(AttemptEnd::Canceled),
            _ = renew.tick() => match conman.renew_job_lease(job, worker).await {
                Ok(LeaseStatus::Held { cancel_requested: true }) => return Attempt::Ended(AttemptEnd::Canceled),
                Ok(LeaseStatus::Held { cancel_requested: false }) => {}
                Ok(LeaseStatus::Lost) => return Attempt::Lost,
                Err(e) => tracing::warn!(job = %job.id, error = ?e, "lease renewal failed; retrying at the next tick"),
            },
            () = &mut timeout => return Attempt::Ended(AttemptEnd::TimedOut),
            () = super::stop_requested(stop), if !shutting_down => {
                shutting_down = true;
                grace.as_mut().reset(Instant::now() + options.shutdown_grace);
            }
            () = &mut grace, if shutting_down => return Attempt::Released,
        }
    }
}

/// `complete_job_with_log`, retried a few times on store failures (not on
/// `conflict`: that means the lease is gone).
async fn complete(
    conman: &Conman,
    job: &Job,
    worker: &str,
    end: AttemptEnd,
    log_tail: &[NewLogLine],
) -> Result<JobState, Error> {
    let mut tries = 0u32;
    loop {
        match conman.complete_job_with_log(job, worker, end.clone(), log_tail.to_vec()).await {
            Err(e) if !matches!(e, Error::Conflict { .. }) && tries < 3 => {
                tries += 1;
                tracing::warn!(job = %job.id, error = ?e, tries, "recording a job's end failed; retrying");
                tokio::time::sleep(Duration::from_millis(200) * tries).await;
            }
            other => return other,
        }
    }
}

/// The outcome label of an ended `deploy_release` attempt for the deploy
/// duration metric; `None` for other jobs and for stale deploys (the
/// deployment had already ended: nothing was deployed).
fn deploy_outcome(job: &Job, end: &AttemptEnd) -> Option<&'static str> {
    if job.job_type != JobType::DeployRelease {
        return None;
    }
    match end {
        AttemptEnd::Finished(JobOutcome::Succeeded { result, .. }) if result["stale"] == true => None,
        AttemptEnd::Finished(JobOutcome::Succeeded { .. }) => Some("succeeded"),
        AttemptEnd::Finished(JobOutcome::Failed { .. }) => Some("failed"),
        AttemptEnd::TimedOut => Some("timed_out"),
        AttemptEnd::Canceled => Some("canceled"),
    }
}
