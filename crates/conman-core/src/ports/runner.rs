//! The command-runner port: runs a gate command in a fresh directory holding
//! the exported tree of a commit, with exactly the environment given, a
//! timeout that kills the whole process group, and every output line sent
//! to a [`LogSink`]. Dropping the returned future also kills the group (that
//! is how cancellation reaches the process).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::job::LogStream;
use crate::error::Error;
use crate::ids::AppId;
use crate::ports::git::Sha;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// App whose repository holds the commit.
    pub app_id: AppId,
    /// Commit whose tree is exported into the working directory.
    pub commit: Sha,
    /// Shell command (`sh -c`).
    pub command: String,
    /// The complete environment of the process (nothing is inherited).
    pub env: BTreeMap<String, String>,
    /// Wall-clock limit; past it the process group is killed.
    pub timeout: Duration,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// It exited with this code (`None` when killed by a signal).
    Exited {
        /// Exit code.
        code: Option<i32>,
    },
    /// It ran past its timeout; the process group was killed.
    TimedOut,
    /// It could not be started (no shell, export failed...).
    FailedToStart {
        /// Why (no secrets, no internal paths).
        reason: String,
    },
}

impl CommandOutcome {
    /// True for exit code 0.
    pub fn passed(&self) -> bool {
        matches!(self, CommandOutcome::Exited { code: Some(0) })
    }
}

/// Receives a job's log lines as they are produced.
#[async_trait]
pub trait LogSink: Send + Sync {
    /// One line (without its newline).
    async fn line(&self, stream: LogStream, text: String);
}

/// Runs commands.
#[async_trait]
pub trait CommandRunner: Send + Sync {
    /// Runs `spec`, streaming output to `log`.
    async fn run(&self, spec: CommandSpec, log: &dyn LogSink) -> Result<CommandOutcome, Error>;
}

/// Tells workers that a job was enqueued, so they start it at once instead
/// of at their next poll, and that a cancel was requested, so the worker
/// running the job stops it at once instead of at its next check
/// (in-process: a notify; across processes: e.g. Postgres `LISTEN/NOTIFY`).
pub trait JobWakeup: Send + Sync {
    /// A job became runnable.
    fn job_enqueued(&self);
    /// A cancel of the running job `job` was committed.
    fn cancel_requested(&self, job: crate::ids::JobId);
}

/// A wake-up that does nothing (workers fall back to polling).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoWakeup;

impl JobWakeup for NoWakeup {
    fn job_enqueued(&self) {}
    fn cancel_requested(&self, _job: crate::ids::JobId) {}
}
