//! Jobs, their leases and logs (SPEC §6.2): reads and mutations.

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::job::{Job, JobLogLine, JobState, JobType, LogAppend};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, JobId};

/// Filter of the job listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Only this type.
    pub job_type: Option<JobType>,
    /// Only this state.
    pub state: Option<JobState>,
}

/// A worker's request for the next job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobClaim {
    /// The worker's id (unique per process and slot).
    pub worker: String,
    /// Now, by the core's clock.
    pub now: Timestamp,
    /// The lease expiry to set.
    pub lease_until: Timestamp,
    /// Only these types (`None`: any).
    pub types: Option<Vec<JobType>>,
}

/// A page of a job's log.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLogPage {
    /// Lines with `seq > after`, in order.
    pub lines: Vec<JobLogLine>,
    /// Older lines were dropped to keep the log within its bound.
    pub truncated: bool,
}

/// How a running job ends its attempt (see [`JobMutation::FinishJob`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobFinish {
    /// The job.
    pub id: JobId,
    /// The worker that must still hold the lease.
    pub worker: String,
    /// `succeeded`, `failed`, `canceled`, or `queued` (retry after `run_after`).
    pub state: JobState,
    /// Result payload.
    pub result: Option<serde_json::Value>,
    /// Error text.
    pub error: Option<String>,
    /// Next attempt not before (retries only).
    pub run_after: Option<Timestamp>,
    /// Terminal time (terminal states only).
    pub finished_at: Option<Timestamp>,
}

/// A change to jobs.
#[derive(Debug, Clone, PartialEq)]
pub enum JobMutation {
    /// Enqueue a job.
    InsertJob(Job),
    /// End a running attempt: only while `worker` still holds the lease and
    /// the job is running (else `conflict` [`LeaseLost`], changing nothing —
    /// so the effects committed in the same unit apply at most once). Once a
    /// cancel was requested, only `state = canceled` applies: any other end
    /// is `conflict` [`CancelRequested`], changing nothing ("a requested
    /// cancel wins"; the core then ends the attempt canceled). Clears the
    /// lease.
    ///
    /// [`LeaseLost`]: super::ConflictReason::LeaseLost
    /// [`CancelRequested`]: super::ConflictReason::CancelRequested
    FinishJob(JobFinish),
    /// Append to a job's log inside the unit, exactly as
    /// [`JobStore::append_job_log`] does on its own (an unknown job is
    /// `not_found`). A worker ends an attempt with its last buffered lines
    /// and the `FinishJob` in one unit: one commit instead of two.
    AppendJobLog {
        /// Which job.
        id: JobId,
        /// The append, planned by the core.
        append: LogAppend,
    },
    /// Cancel a queued job (`conflict` [`NotQueued`] unless it is queued).
    ///
    /// [`NotQueued`]: super::ConflictReason::NotQueued
    CancelQueuedJob {
        /// Which.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// Ask a running job to stop (`conflict` [`NotRunning`] unless it is
    /// running).
    ///
    /// [`NotRunning`]: super::ConflictReason::NotRunning
    RequestJobCancel {
        /// Which.
        id: JobId,
    },
    /// Give a running job back to the queue without using up its attempt
    /// (graceful shutdown); only while `worker` holds the lease.
    ReleaseJob {
        /// Which.
        id: JobId,
        /// The worker holding it.
        worker: String,
    },
}

/// Jobs, their leases and logs (SPEC §6.2).
#[async_trait]
pub trait JobStore: Send + Sync {
    /// A job of an app.
    async fn job(&self, app_id: AppId, id: JobId) -> Result<Option<Job>, Error>;
    /// Jobs of an app, newest first.
    async fn list_jobs(&self, app_id: AppId, filter: &JobFilter, page: PageRequest) -> Result<Page<Job>, Error>;
    /// Atomically claims the oldest runnable job — queued with
    /// `run_after <= now`, or running with `lease_expires_at < now` (its
    /// worker died) — ordered by `run_after` then id. The claimed job is
    /// running, leased to `claim.worker` until `claim.lease_until`, its
    /// `attempts` + 1 and `started_at` set if unset; its log is untouched
    /// (the core opens the attempt's log after the claim). Two claimers
    /// never get the same job. `None` when nothing is runnable.
    async fn claim_job(&self, claim: &JobClaim) -> Result<Option<Job>, Error>;
    /// Extends the lease while `worker` holds it and the job runs; answers
    /// the job's cancel flag, or `None` when the lease is lost.
    async fn renew_job_lease(&self, id: JobId, worker: &str, until: Timestamp) -> Result<Option<bool>, Error>;
    /// Of `ids`, those still running with a cancel requested (in no
    /// particular order); unknown ids are skipped. A worker asks this at
    /// its poll interval about the jobs it runs.
    async fn jobs_to_cancel(&self, ids: &[JobId]) -> Result<Vec<JobId>, Error>;
    /// Carries out `append` as [`LogAppend`] says: the whole batch numbered
    /// after the job's last line, its kept lines stored, then the oldest
    /// stored lines dropped while the log exceeds the bound (sum of the
    /// lines' UTF-8 byte lengths), the log marked truncated when anything
    /// was skipped or dropped. An unknown job is `not_found`.
    async fn append_job_log(&self, id: JobId, append: &LogAppend) -> Result<(), Error>;
    /// Up to `limit` lines with `seq > after` (an unknown job is `not_found`).
    async fn job_log(&self, id: JobId, after: i64, limit: u32) -> Result<JobLogPage, Error>;
    /// Count of jobs per (type, state), for metrics; zero rows omitted.
    async fn job_counts(&self) -> Result<Vec<(JobType, JobState, u64)>, Error>;
}
