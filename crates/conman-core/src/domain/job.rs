//! Jobs: asynchronous units of work with leases and retries (SPEC §4, §6).

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;

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

/// Delay before attempt `attempt + 1` after attempt `attempt` failed:
/// `base * 2^(attempt-1)`, capped at `max`.
pub fn backoff(attempt: u32, base: std::time::Duration, max: std::time::Duration) -> std::time::Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::machine::check;
    use std::time::Duration;

    #[test]
    fn every_cell_of_the_spec_table() {
        check::table(JOB_EDGES);
    }

    #[test]
    fn random_event_sequences_follow_the_model() {
        check::random_walks(S::Queued, JOB_EDGES);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let (b, m) = (Duration::from_secs(1), Duration::from_secs(60));
        let got: Vec<_> = (1..=8).map(|a| backoff(a, b, m).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(100, b, m), m);
    }
}
