//! Deployments: one release on one environment (SPEC §2.5, §4).

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;

/// Where a deployment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Recorded, not started.
    Pending,
    /// Gate and deploy command running.
    Running,
    /// Done.
    Succeeded,
    /// Gate or command failed.
    Failed,
    /// Stopped before it finished.
    Canceled,
}

/// What can happen to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentEvent {
    /// Start running.
    Start,
    /// Finished well.
    Succeed,
    /// Finished badly.
    Fail,
    /// Stopped.
    Cancel,
}

use DeploymentEvent as E;
use DeploymentState as S;

/// The SPEC §4 deployment table. Cancel is allowed while pending or running.
pub const DEPLOYMENT_EDGES: &[(S, E, S)] = &[
    (S::Pending, E::Start, S::Running),
    (S::Pending, E::Cancel, S::Canceled),
    (S::Running, E::Succeed, S::Succeeded),
    (S::Running, E::Fail, S::Failed),
    (S::Running, E::Cancel, S::Canceled),
];

impl StateMachine for DeploymentState {
    type Event = DeploymentEvent;
    const ENTITY: &'static str = "deployment";
    const STATES: &'static [Self] = &[S::Pending, S::Running, S::Succeeded, S::Failed, S::Canceled];
    const EVENTS: &'static [E] = &[E::Start, E::Succeed, E::Fail, E::Cancel];

    fn next(self, event: E) -> Option<Self> {
        DEPLOYMENT_EDGES.iter().find(|(f, e, _)| *f == self && *e == event).map(|(_, _, t)| *t)
    }
}
