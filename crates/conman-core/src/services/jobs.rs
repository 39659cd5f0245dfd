//! Jobs (SPEC §6): enqueueing, reading, cancelling, and the worker side —
//! claim with a lease, run the type's handler, finish with retry and
//! backoff. The worker *loop* (timers, concurrency, signals) lives in the
//! runtime of the binaries; every decision lives here.
//!
//! Idempotent effects: a handler does not write; it answers the effects of
//! its success as a [`UnitOfWork`], committed together with the job's
//! `FinishJob` — which only applies while the worker still holds the lease.
//! A worker that died mid-job never commits, its job is reclaimed and run
//! again, and the effects land exactly once.
//!
//! A requested cancel wins: once a running job's cancel is committed, the
//! store refuses any end but `canceled` (`conflict` `cancel_requested`) and
//! the core ends the attempt canceled instead — whatever the handler
//! answered, whichever process asked.
//!
//! [`Conman::read_job_log`] reads the job's state before its lines, so its
//! `complete` (terminal, nothing after this page) is never true while a
//! line is missing.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::job_log_mask::MaskedLog;
use super::{Actor, AuditWhat, Conman};
use crate::domain::job::{
    attempt_opening_line, backoff, Job, JobEvent, JobState, JobType, LogAppend, LogStream, NewLogLine,
    JOB_LOG_MAX_LINE_BYTES,
};
use crate::domain::StateMachine;
use crate::error::Error;
use crate::ids::{AppId, JobId};
use crate::ports::runner::LogSink;
use crate::ports::store::{
    JobClaim, JobFilter, JobFinish, JobLogPage, JobMutation, Page, PageRequest, Unaudited, UnitOfWork,
};
use crate::rbac::Capability;

/// What a handler's run came to.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Done; `effects` are committed with the job's completion.
    Succeeded {
        /// Result payload.
        result: Value,
        /// Store changes the success causes (applied exactly once).
        effects: UnitOfWork,
    },
    /// The attempt failed.
    Failed {
        /// Why.
        error: String,
        /// Whether another attempt may succeed (transient failure).
        retryable: bool,
        /// Result payload, if any (e.g. a gate's exit code).
        result: Option<Value>,
    },
}

/// Runs one job type.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Runs `job`, writing progress to `log`. Must not write to the store
    /// itself: effects go into the outcome.
    async fn run(&self, conman: &Conman, job: &Job, log: &dyn LogSink) -> JobOutcome;

    /// Store changes caused by the job reaching the terminal `state`
    /// (succeeded, failed — retries exhausted or not retryable — or
    /// canceled), committed with its `FinishJob` so they apply exactly once.
    /// Reads only. The default causes none.
    async fn settle(
        &self,
        _conman: &Conman,
        _job: &Job,
        _state: JobState,
        _error: Option<&str>,
    ) -> Result<UnitOfWork, Error> {
        Ok(UnitOfWork::new())
    }
}

/// Whether a worker still holds a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Still ours; `cancel_requested` when a user asked it to stop.
    Held {
        /// A user asked to cancel.
        cancel_requested: bool,
    },
    /// Someone else has it now, or it is no longer running.
    Lost,
}

/// How an attempt ended, from the runtime's view.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// The handler answered.
    Finished(JobOutcome),
    /// A user cancelled it; the handler was stopped.
    Canceled,
    /// The attempt ran past the job's timeout; the handler was stopped.
    TimedOut,
}

/// A page of a job's log as a follower reads it ([`Conman::read_job_log`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobLogRead {
    /// The lines after the requested one.
    pub page: JobLogPage,
    /// The job's state, read before the lines.
    pub state: JobState,
    /// The job had ended before the lines were read and this page holds
    /// the rest of its log: a follower stops here.
    pub complete: bool,
}

/// A new job's description.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// App.
    pub app_id: AppId,
    /// Type.
    pub job_type: JobType,
    /// Entity kind.
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// Handler input.
    pub payload: Value,
    /// Attempt timeout, seconds.
    pub timeout_secs: u64,
}

/// Longest worker id, in bytes.
pub const WORKER_ID_MAX_BYTES: usize = 200;

/// Refuses a worker id that is empty, too long, or holds control characters.
fn check_worker_id(worker: &str) -> Result<(), Error> {
    if worker.is_empty() || worker.len() > WORKER_ID_MAX_BYTES || worker.chars().any(char::is_control) {
        return Err(Error::invalid(
            "worker",
            "invalid",
            format!("a worker id is 1-{WORKER_ID_MAX_BYTES} bytes without control characters"),
        ));
    }
    Ok(())
}

/// `lines` fit for the store: NUL replaced (text columns on Postgres refuse
/// it, and it carries no meaning in a log) and overlong lines cut.
fn sanitized_log_lines(mut lines: Vec<NewLogLine>) -> Vec<NewLogLine> {
    for line in &mut lines {
        if line.text.contains('\0') {
            line.text = line.text.replace('\0', "\u{FFFD}");
        }
        if line.text.len() > JOB_LOG_MAX_LINE_BYTES {
            let mut cut = JOB_LOG_MAX_LINE_BYTES;
            while !line.text.is_char_boundary(cut) {
                cut -= 1;
            }
            line.text.truncate(cut);
            line.text.push_str(" …[line truncated]");
        }
    }
    lines
}

/// Refuses a log page request out of range.
fn check_log_page(after: i64, limit: u32) -> Result<(), Error> {
    if !(1..=5000).contains(&limit) || after < 0 {
        return Err(Error::invalid("limit", "out_of_range", "limit must be 1-5000 and after >= 0"));
    }
    Ok(())
}

fn job_view(job: &Job) -> Value {
    json!({
        "type": job.job_type,
        "state": job.state,
        "attempts": job.attempts,
        "entity_type": job.entity_type,
        "entity_id": job.entity_id,
        "error": job.error,
    })
}

impl Conman {
    /// Adds (or replaces) the handler of a job type. Later issues register
    /// theirs here; a type without a handler fails its jobs with a clear error.
    pub fn with_job_handler(mut self, job_type: JobType, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.insert(job_type, handler);
        self
    }

    /// A job record ready to be enqueued in a unit of work.
    pub fn new_job(&self, actor: Option<&Actor>, spec: NewJob) -> Job {
        let now = self.now();
        Job {
            id: self.new_id(),
            app_id: spec.app_id,
            job_type: spec.job_type,
            state: JobState::Queued,
            entity_type: spec.entity_type,
            entity_id: spec.entity_id,
            payload: spec.payload,
            attempts: 0,
            max_attempts: self.config.jobs.max_attempts,
            run_after: now,
            lease_owner: None,
            lease_expires_at: None,
            timeout_secs: spec.timeout_secs.max(1),
            cancel_requested: false,
            result: None,
            error: None,
            created_by: actor.map(|a| a.user.id),
            created_at: now,
            started_at: None,
            finished_at: None,
        }
    }

    /// Adds `job` and its audit entry to `unit`.
    pub fn enqueue_in(&self, unit: UnitOfWork, actor: Option<&Actor>, job: &Job) -> UnitOfWork {
        let audit = self.audit_entry(
            actor,
            Some(job.app_id),
            AuditWhat::new("job", job.id, "job.enqueued").after(job_view(job)),
        );
        unit.record(JobMutation::InsertJob(job.clone()), audit)
    }

    /// Commits a unit that enqueued jobs and wakes the workers.
    pub async fn commit_and_wake(&self, unit: UnitOfWork) -> Result<(), Error> {
        self.store().commit(unit).await?;
        self.wakeup.job_enqueued();
        Ok(())
    }

    /// A job of an app (any member).
    pub async fn get_job(&self, actor: &Actor, app_id: AppId, id: JobId) -> Result<Job, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().job(app_id, id).await?.ok_or(Error::NotFound(JobId::KIND))
    }

    /// Jobs of an app, newest first (any member).
    pub async fn list_jobs(
        &self,
        actor: &Actor,
        app_id: AppId,
        filter: JobFilter,
        page: PageRequest,
    ) -> Result<Page<Job>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().list_jobs(app_id, &filter, page).await
    }

    /// A page of a job's log for a follower (any member): the job's state
    /// is read *before* the lines, so every line written before that state
    /// became terminal is in the store when the lines are read, and
    /// `complete` — terminal, and this page not full — is never true while
    /// lines are missing (a job finishing between two reads only delays
    /// `complete` to the next page).
    pub async fn read_job_log(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: JobId,
        after: i64,
        limit: u32,
    ) -> Result<JobLogRead, Error> {
        let job = self.get_job(actor, app_id, id).await?;
        check_log_page(after, limit)?;
        let page = self.store().job_log(id, after, limit).await?;
        let complete = job.state.is_terminal() && page.lines.len() < limit as usize;
        Ok(JobLogRead { page, state: job.state, complete })
    }

    /// A job's log after line `after` (any member).
    pub async fn job_log(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: JobId,
        after: i64,
        limit: u32,
    ) -> Result<JobLogPage, Error> {
        Ok(self.read_job_log(actor, app_id, id, after, limit).await?.page)
    }

    /// Cancels a queued job at once, or asks a running one to stop: once
    /// the request commits, the wake-up tells this process's worker running
    /// it to kill it at once (other processes' workers learn of it from
    /// their store's notification or at their poll, [`Conman::jobs_to_stop`]),
    /// and from then on its attempt can only end canceled ("a requested
    /// cancel wins", enforced by the store's `FinishJob`). Own jobs by
    /// anyone, any job by a config manager; a finished job is
    /// `invalid_transition`.
    pub async fn cancel_job(&self, actor: &Actor, app_id: AppId, id: JobId) -> Result<Job, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        let job = self.store().job(app_id, id).await?.ok_or(Error::NotFound(JobId::KIND))?;
        // System jobs belong to nobody: only config managers cancel them.
        let owner = job.created_by.unwrap_or(crate::ids::UserId(uuid::Uuid::nil()));
        scope.require(Capability::CancelJob, Some(owner))?;
        let next = job.state.apply(JobEvent::Cancel)?;
        let (mutation, after) = match job.state {
            JobState::Queued => {
                let at = self.now();
                (JobMutation::CancelQueuedJob { id, at }, Job { state: next, finished_at: Some(at), ..job.clone() })
            }
            _ => (JobMutation::RequestJobCancel { id }, Job { cancel_requested: true, ..job.clone() }),
        };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("job", id, "job.cancel_requested").before(job_view(&job)).after(job_view(&after)),
        );
        self.store().commit(UnitOfWork::new().record(mutation, audit)).await?;
        if after.cancel_requested {
            self.wakeup.cancel_requested(id);
        }
        Ok(after)
    }

    /// Of the jobs `running` (those a worker process runs now), the ones
    /// whose cancel was requested: the worker stops them. Asked at the
    /// worker's poll interval, so a cancel requested through another
    /// process is noticed without a notification.
    pub async fn jobs_to_stop(&self, running: &[JobId]) -> Result<Vec<JobId>, Error> {
        if running.is_empty() {
            return Ok(Vec::new());
        }
        self.store().jobs_to_cancel(running).await
    }

    /// Counts per (type, state), for metrics.
    pub async fn job_counts(&self) -> Result<Vec<(JobType, JobState, u64)>, Error> {
        self.store().job_counts().await
    }

    /// Queued changesets per app (the release queue depth), for metrics.
    pub async fn queue_depths(&self) -> Result<Vec<(crate::ids::AppId, u64)>, Error> {
        self.store().queue_depths().await
    }

    /// Deployments per environment and state, for metrics.
    pub async fn deployment_counts(&self) -> Result<Vec<crate::ports::store::DeploymentCount>, Error> {
        self.store().deployment_counts().await
    }

    // ---- worker side -------------------------------------------------

    /// Claims the next runnable job for `worker`, then opens the attempt's
    /// log with [`attempt_opening_line`] (so even a worker killed right
    /// after claiming leaves a trace of the attempt; a line that cannot be
    /// stored is a warning, not a lost claim). A job reclaimed after
    /// its worker died once too often is failed here instead of run again.
    /// A worker id must be 1 to [`WORKER_ID_MAX_BYTES`] bytes without
    /// control characters (it is shown in logs and stored with the lease).
    pub async fn claim_next_job(&self, worker: &str) -> Result<Option<Job>, Error> {
        check_worker_id(worker)?;
        loop {
            let now = self.now();
            let lease = chrono::Duration::from_std(self.config.jobs.lease_ttl).map_err(Error::internal)?;
            let claim = JobClaim { worker: worker.to_owned(), now, lease_until: now + lease, types: None };
            let Some(job) = self.store().claim_job(&claim).await? else { return Ok(None) };
            let opening = NewLogLine {
                at: now,
                stream: LogStream::System,
                text: attempt_opening_line(job.attempts, job.max_attempts, worker),
            };
            if let Err(e) = self.append_job_log(job.id, vec![opening]).await {
                tracing::warn!(job = %job.id, error = %e, "could not store the attempt's opening log line");
            }
            if job.attempts > job.max_attempts {
                let error = format!("gave up after {} attempts (workers lost)", job.max_attempts);
                match self
                    .finish(&job, worker, JobState::Failed, None, Some(error.clone()), UnitOfWork::new(), None)
                    .await
                {
                    // A requested cancel wins here too.
                    Err(e) if e.is_cancel_requested() => {
                        self.finish_canceled(&job, worker, None, error, UnitOfWork::new()).await?;
                    }
                    other => other?,
                }
                continue;
            }
            return Ok(Some(job));
        }
    }

    /// Renews `worker`'s lease on `job`.
    pub async fn renew_job_lease(&self, job: &Job, worker: &str) -> Result<LeaseStatus, Error> {
        let lease = chrono::Duration::from_std(self.config.jobs.lease_ttl).map_err(Error::internal)?;
        Ok(match self.store().renew_job_lease(job.id, worker, self.now() + lease).await? {
            Some(cancel_requested) => LeaseStatus::Held { cancel_requested },
            None => LeaseStatus::Lost,
        })
    }

    /// Runs the handler of `job`'s type, every line it logs masked with
    /// the app's secret values first (`job_log_mask`).
    pub async fn run_job_handler(&self, job: &Job, log: &dyn LogSink) -> JobOutcome {
        let mask = match self.job_secret_mask(job.app_id).await {
            Ok(mask) => mask,
            Err(e) => {
                return JobOutcome::Failed {
                    error: format!("the job log's secret mask could not be built: {e}"),
                    retryable: true,
                    result: None,
                }
            }
        };
        let log = MaskedLog::new(log, mask);
        match self.handlers.get(&job.job_type).cloned() {
            Some(handler) => handler.run(self, job, &log).await,
            None => JobOutcome::Failed {
                error: format!("no handler for job type {} in this build", job.job_type.as_str()),
                retryable: false,
                result: None,
            },
        }
    }

    /// Ends an attempt: success (with its effects), retry with backoff,
    /// failure, cancellation or timeout. Answers the job's new state;
    /// `conflict` when the lease was lost meanwhile (nothing is written).
    pub async fn complete_job(&self, job: &Job, worker: &str, end: AttemptEnd) -> Result<JobState, Error> {
        self.complete_job_with_log(job, worker, end, Vec::new()).await
    }

    /// [`Conman::complete_job`], appending `log_tail` — the attempt's last
    /// log lines — in the same unit as the job's end: nothing is written
    /// when that unit is refused (the caller still holds the lines).
    pub async fn complete_job_with_log(
        &self,
        job: &Job,
        worker: &str,
        end: AttemptEnd,
        log_tail: Vec<NewLogLine>,
    ) -> Result<JobState, Error> {
        let log_tail = (!log_tail.is_empty()).then(|| JobMutation::AppendJobLog {
            id: job.id,
            append: LogAppend::plan(sanitized_log_lines(log_tail), self.config.jobs.log_limit_bytes),
        });
        let with_tail = |effects: UnitOfWork| match log_tail.clone() {
            Some(tail) => effects.unaudited(tail, Unaudited::LogAppend),
            None => effects,
        };
        // What a failed attempt would keep if a requested cancel wins.
        let mut failure = None;
        let ended = match end {
            AttemptEnd::Finished(JobOutcome::Succeeded { result, effects }) => self
                .finish(job, worker, JobState::Succeeded, Some(result), None, with_tail(effects), None)
                .await
                .map(|()| JobState::Succeeded),
            AttemptEnd::Finished(JobOutcome::Failed { error, retryable, result }) => {
                failure = Some((result.clone(), error.clone()));
                self.fail_or_retry(job, worker, error, retryable, result, with_tail(UnitOfWork::new())).await
            }
            AttemptEnd::TimedOut => {
                let error = format!("attempt timed out after {} s", job.timeout_secs);
                failure = Some((None, error.clone()));
                self.fail_or_retry(job, worker, error, true, None, with_tail(UnitOfWork::new())).await
            }
            AttemptEnd::Canceled => {
                return self.finish_canceled(job, worker, None, "canceled".into(), with_tail(UnitOfWork::new())).await
            }
        };
        match ended {
            // A requested cancel wins over any other end (the store refused
            // it): the attempt ends canceled, its success effects dropped,
            // its log tail kept; a failure keeps its result and error text.
            Err(e) if e.is_cancel_requested() => {
                let (result, error) = match failure {
                    Some((result, error)) => (result, error),
                    None => (None, "canceled".to_owned()),
                };
                self.finish_canceled(job, worker, result, error, with_tail(UnitOfWork::new())).await
            }
            other => other,
        }
    }

    /// A failed attempt: retried after its backoff while attempts remain
    /// and `retryable`, else failed.
    async fn fail_or_retry(
        &self,
        job: &Job,
        worker: &str,
        error: String,
        retryable: bool,
        result: Option<Value>,
        effects: UnitOfWork,
    ) -> Result<JobState, Error> {
        if retryable && job.attempts < job.max_attempts {
            let delay = backoff(job.attempts, self.config.jobs.backoff_base, self.config.jobs.backoff_max);
            let run_after = self.now() + chrono::Duration::from_std(delay).map_err(Error::internal)?;
            self.finish(job, worker, JobState::Queued, result, Some(error), effects, Some(run_after)).await?;
            return Ok(JobState::Queued);
        }
        self.finish(job, worker, JobState::Failed, result, Some(error), effects, None).await?;
        Ok(JobState::Failed)
    }

    /// Ends the attempt canceled.
    async fn finish_canceled(
        &self,
        job: &Job,
        worker: &str,
        result: Option<Value>,
        error: String,
        effects: UnitOfWork,
    ) -> Result<JobState, Error> {
        self.finish(job, worker, JobState::Canceled, result, Some(error), effects, None).await?;
        Ok(JobState::Canceled)
    }

    /// Gives a running job back to the queue (graceful shutdown).
    pub async fn release_job(&self, job: &Job, worker: &str) -> Result<(), Error> {
        let audit = self.audit_entry(
            None,
            Some(job.app_id),
            AuditWhat::new("job", job.id, "job.released")
                .before(job_view(job))
                .after(serde_json::json!({ "state": JobState::Queued, "released_by": worker })),
        );
        let unit = UnitOfWork::new().record(JobMutation::ReleaseJob { id: job.id, worker: worker.to_owned() }, audit);
        self.store().commit(unit).await?;
        self.wakeup.job_enqueued();
        Ok(())
    }

    /// Appends log lines to a job, cutting overlong lines and keeping the
    /// log within its bound.
    pub async fn append_job_log(&self, id: JobId, lines: Vec<NewLogLine>) -> Result<(), Error> {
        let append = LogAppend::plan(sanitized_log_lines(lines), self.config.jobs.log_limit_bytes);
        self.store().append_job_log(id, &append).await
    }

    /// A log line of Conman's own, stamped now.
    pub fn system_line(&self, text: impl Into<String>) -> NewLogLine {
        NewLogLine { at: self.now(), stream: LogStream::System, text: text.into() }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        job: &Job,
        worker: &str,
        state: JobState,
        result: Option<Value>,
        error: Option<String>,
        effects: UnitOfWork,
        run_after: Option<crate::domain::Timestamp>,
    ) -> Result<(), Error> {
        let now = self.now();
        let finished_at = state.is_terminal().then_some(now);
        let after = Job { state, result: result.clone(), error: error.clone(), finished_at, ..job.clone() };
        let action = match state {
            JobState::Succeeded => "job.succeeded",
            JobState::Failed => "job.failed",
            JobState::Canceled => "job.canceled",
            _ => "job.retry_scheduled",
        };
        let audit = self.audit_entry(
            None,
            Some(job.app_id),
            AuditWhat::new("job", job.id, action).before(job_view(job)).after(job_view(&after)),
        );
        let finish = JobFinish { id: job.id, worker: worker.to_owned(), state, result, error, run_after, finished_at };
        let mut tries = 0;
        loop {
            // The settlement reads entities other writers may change; a lost
            // compare-and-set on one of them recomputes it on fresh state.
            let settled = match self.handlers.get(&job.job_type) {
                Some(handler) if state.is_terminal() => {
                    handler.settle(self, job, state, finish.error.as_deref()).await?
                }
                _ => UnitOfWork::new(),
            };
            let retry_possible = !settled.mutations().is_empty();
            let unit = UnitOfWork::new()
                .record(JobMutation::FinishJob(finish.clone()), audit.clone())
                .append(effects.clone())
                .append(settled);
            match self.store().commit(unit).await {
                Err(e) if retry_possible && e.is_stale_version() && tries < 3 => tries += 1,
                Err(e) => return Err(e),
                Ok(()) => break,
            }
        }
        if state == JobState::Queued {
            self.wakeup.job_enqueued();
        }
        Ok(())
    }
}
