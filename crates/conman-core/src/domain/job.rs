//! Jobs: asynchronous units of work with leases and retries (SPEC §4, §6).

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;
use super::Timestamp;
use crate::ids::{AppId, JobId, UserId};

/// The job types of SPEC §6.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    /// Submit gate of a changeset revision.
    GateSubmit,
    /// Release gate.
    GateRelease,
    /// Deploy gate.
    GateDeploy,
    /// Revalidate queued changesets after a publish.
    RevalidateQueued,
    /// Compose a release.
    ReleaseAssemble,
    /// Deploy a release.
    DeployRelease,
    /// Check an environment for drift.
    DriftCheck,
    /// Provision a temp environment.
    TempEnvProvision,
    /// Expire a temp environment.
    TempEnvExpire,
    /// Clean up a temp environment.
    TempEnvCleanup,
    /// Deliver a notification.
    Notify,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (possibly after a backoff).
    Queued,
    /// Leased by a worker.
    Running,
    /// Finished well.
    Succeeded,
    /// Finished badly with no attempts left.
    Failed,
    /// Canceled.
    Canceled,
}

/// What can happen to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEvent {
    /// A worker claimed it.
    Claim,
    /// The handler succeeded.
    Succeed,
    /// The attempt failed and attempts remain: back to the queue with backoff.
    Retry,
    /// The attempt failed with no attempts left.
    Fail,
    /// Canceled by a user.
    Cancel,
    /// The lease expired (worker died): back to the queue.
    LeaseExpired,
}

use JobEvent as E;
use JobState as S;

/// The SPEC §4 job table, with retry and lease expiry returning to the queue.
pub const JOB_EDGES: &[(S, E, S)] = &[
    (S::Queued, E::Claim, S::Running),
    (S::Queued, E::Cancel, S::Canceled),
    (S::Running, E::Succeed, S::Succeeded),
    (S::Running, E::Retry, S::Queued),
    (S::Running, E::Fail, S::Failed),
    (S::Running, E::Cancel, S::Canceled),
    (S::Running, E::LeaseExpired, S::Queued),
];

impl StateMachine for JobState {
    type Event = JobEvent;
    const ENTITY: &'static str = "job";
    const STATES: &'static [Self] = &[S::Queued, S::Running, S::Succeeded, S::Failed, S::Canceled];
    const EVENTS: &'static [E] = &[E::Claim, E::Succeed, E::Retry, E::Fail, E::Cancel, E::LeaseExpired];

    fn next(self, event: E) -> Option<Self> {
        JOB_EDGES.iter().find(|(f, e, _)| *f == self && *e == event).map(|(_, _, t)| *t)
    }
}

impl JobType {
    /// Every job type.
    pub const ALL: [JobType; 11] = [
        JobType::GateSubmit,
        JobType::GateRelease,
        JobType::GateDeploy,
        JobType::RevalidateQueued,
        JobType::ReleaseAssemble,
        JobType::DeployRelease,
        JobType::DriftCheck,
        JobType::TempEnvProvision,
        JobType::TempEnvExpire,
        JobType::TempEnvCleanup,
        JobType::Notify,
    ];

    /// The wire name (`gate_submit`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::GateSubmit => "gate_submit",
            JobType::GateRelease => "gate_release",
            JobType::GateDeploy => "gate_deploy",
            JobType::RevalidateQueued => "revalidate_queued",
            JobType::ReleaseAssemble => "release_assemble",
            JobType::DeployRelease => "deploy_release",
            JobType::DriftCheck => "drift_check",
            JobType::TempEnvProvision => "temp_env_provision",
            JobType::TempEnvExpire => "temp_env_expire",
            JobType::TempEnvCleanup => "temp_env_cleanup",
            JobType::Notify => "notify",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, crate::Error> {
        JobType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("type", "invalid_job_type", format!("unknown job type {s:?}")))
    }
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 5] =
        [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed, JobState::Canceled];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, crate::Error> {
        JobState::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("state", "invalid_job_state", format!("unknown job state {s:?}")))
    }

    /// Succeeded, failed or canceled.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Canceled)
    }
}

/// A job: one asynchronous unit of work with its lease, attempts and result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Identity.
    pub id: JobId,
    /// Owning app.
    pub app_id: AppId,
    /// What it does.
    pub job_type: JobType,
    /// Where it is.
    pub state: JobState,
    /// Kind of the entity it concerns (`changeset`, `release`, `commit`...).
    pub entity_type: Option<String>,
    /// Id of that entity.
    pub entity_id: Option<String>,
    /// Handler input.
    pub payload: serde_json::Value,
    /// Attempts started so far (a claim starts one).
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Not to be claimed before this instant (backoff).
    pub run_after: Timestamp,
    /// Worker holding the lease while running.
    pub lease_owner: Option<String>,
    /// Lease expiry while running; an expired lease makes the job claimable again.
    pub lease_expires_at: Option<Timestamp>,
    /// Limit of one attempt, seconds.
    pub timeout_secs: u64,
    /// A user asked to cancel it while running.
    pub cancel_requested: bool,
    /// Terminal result payload.
    pub result: Option<serde_json::Value>,
    /// Last error.
    pub error: Option<String>,
    /// Who enqueued it (`None`: the system).
    pub created_by: Option<UserId>,
    /// Enqueue time.
    pub created_at: Timestamp,
    /// First start.
    pub started_at: Option<Timestamp>,
    /// Terminal time.
    pub finished_at: Option<Timestamp>,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output of a command.
    Stdout,
    /// Standard error of a command.
    Stderr,
    /// Conman's own notes (start, exit code, truncation).
    System,
}

impl LogStream {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "system",
        }
    }
}

/// A log line to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    /// When it was produced.
    pub at: Timestamp,
    /// Stream.
    pub stream: LogStream,
    /// Text without the trailing newline (long lines are cut by the writer).
    pub text: String,
}

/// An append to a job's bounded log, planned by the core (the log keeps its
/// tail: SPEC §6.2). Built only by [`LogAppend::plan`], so every store gets
/// the same plan and no store decides which lines of a batch go in.
///
/// Invariant: [`lines`](Self::lines) are the batch's newest lines whose
/// total size (UTF-8 bytes, [`bytes`](Self::bytes)) is within
/// [`limit_bytes`](Self::limit_bytes); the [`skipped`](Self::skipped)
/// oldest lines of the batch could never fit, not even in an empty log.
///
/// A store carries it out mechanically: it numbers the whole batch after
/// the job's last line (skipped lines use up their numbers, so `seq` is the
/// batch's position whatever was dropped), stores [`lines`](Self::lines),
/// then removes its oldest stored lines while the log exceeds the bound,
/// and marks the log truncated when anything was skipped or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAppend {
    skipped: usize,
    lines: Vec<NewLogLine>,
    bytes: u64,
    limit_bytes: u64,
}

impl LogAppend {
    /// Plans appending `lines` (in order) to a log bounded by `limit_bytes`.
    pub fn plan(mut lines: Vec<NewLogLine>, limit_bytes: u64) -> Self {
        let mut bytes: u64 = lines.iter().map(|l| l.text.len() as u64).sum();
        let mut skipped = 0;
        while bytes > limit_bytes {
            bytes -= lines[skipped].text.len() as u64;
            skipped += 1;
        }
        lines.drain(..skipped);
        LogAppend { skipped, lines, bytes, limit_bytes }
    }

    /// How many of the batch's oldest lines are left out (their numbers are
    /// used up all the same).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The lines to store, in order: the batch's newest.
    pub fn lines(&self) -> &[NewLogLine] {
        &self.lines
    }

    /// Lines in the whole batch, stored or skipped: how far the job's last
    /// line number moves.
    pub fn count(&self) -> usize {
        self.skipped + self.lines.len()
    }

    /// Total UTF-8 size of [`lines`](Self::lines); never above the bound.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The log's bound, bytes.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// Whether nothing is appended at all (an empty batch).
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }
}

/// The line that opens attempt `attempt` of `max_attempts` of a job in its
/// log, appended by [`Conman::claim_next_job`](crate::services::Conman::claim_next_job)
/// right after the claim that starts the attempt. Composed here only: no
/// store writes domain text of its own.
pub fn attempt_opening_line(attempt: u32, max_attempts: u32, worker: &str) -> String {
    format!("attempt {attempt} of {max_attempts} on worker {worker}")
}

/// A stored log line; `seq` increases per job, so clients follow with `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobLogLine {
    /// Position in the job's log.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// Stream.
    pub stream: LogStream,
    /// Text.
    pub text: String,
}

/// Bound on a job's stored log (the tail is kept; truncation is marked).
pub const JOB_LOG_LIMIT_BYTES: u64 = 1024 * 1024;

/// Longest stored log line; longer lines are cut and marked.
pub const JOB_LOG_MAX_LINE_BYTES: usize = 16 * 1024;

/// Delay before attempt `attempt + 1` after attempt `attempt` failed:
/// `base * 2^(attempt-1)`, capped at `max`.
pub fn backoff(attempt: u32, base: std::time::Duration, max: std::time::Duration) -> std::time::Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        let (b, m) = (Duration::from_secs(1), Duration::from_secs(60));
        let got: Vec<_> = (1..=8).map(|a| backoff(a, b, m).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(100, b, m), m);
    }

    fn line(text: &str) -> NewLogLine {
        NewLogLine { at: chrono::Utc::now(), stream: LogStream::Stdout, text: text.into() }
    }

    #[test]
    fn a_plan_keeps_the_newest_lines_of_the_batch_that_fit_the_bound() {
        let batch = vec![line("aaaa"), line("bb"), line("c"), line("")];
        let all = LogAppend::plan(batch.clone(), 7);
        assert_eq!((all.skipped(), all.lines().len(), all.bytes(), all.count()), (0, 4, 7, 4));
        let tail = LogAppend::plan(batch.clone(), 6);
        assert_eq!((tail.skipped(), tail.bytes()), (1, 3));
        assert_eq!(tail.lines().iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["bb", "c", ""]);
        let nothing_fits = LogAppend::plan(vec![line("too long")], 3);
        assert_eq!((nothing_fits.skipped(), nothing_fits.lines().len(), nothing_fits.count()), (1, 0, 1));
        assert!(LogAppend::plan(Vec::new(), 0).is_empty());
    }

    proptest::proptest! {
        /// Whatever the batch and bound: the kept lines are a suffix of the
        /// batch, within the bound, and one more line would not have fit.
        #[test]
        fn a_plan_is_the_longest_suffix_within_the_bound(
            sizes in proptest::collection::vec(0usize..40, 0..20),
            limit in 0u64..200,
        ) {
            let batch: Vec<NewLogLine> = sizes.iter().map(|n| line(&"x".repeat(*n))).collect();
            let plan = LogAppend::plan(batch.clone(), limit);
            proptest::prop_assert_eq!(plan.lines(), &batch[plan.skipped()..]);
            proptest::prop_assert!(plan.bytes() <= limit);
            proptest::prop_assert_eq!(plan.bytes(), plan.lines().iter().map(|l| l.text.len() as u64).sum::<u64>());
            if plan.skipped() > 0 {
                proptest::prop_assert!(plan.bytes() + sizes[plan.skipped() - 1] as u64 > limit);
            }
        }
    }
}
