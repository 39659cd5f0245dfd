//! Temp environments: short-lived environments with idle TTL, grace and undo
//! (SPEC §2.7, §4).

use serde::{Deserialize, Serialize};

use super::machine::StateMachine;

/// Where a temp environment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TempEnvState {
    /// Provision command running.
    Provisioning,
    /// In use.
    Active,
    /// Soft-deleted, inside its grace period.
    Expired,
    /// Cleaned up for good.
    Deleted,
    /// Provisioning failed.
    Failed,
}

/// What can happen to a temp environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TempEnvEvent {
    /// Provisioning finished.
    Provisioned,
    /// Provisioning failed.
    ProvisionFailed,
    /// Idle TTL ran out, or the owner deleted it.
    Expire,
    /// Undo during grace.
    UndoExpire,
    /// Grace ran out; cleanup done.
    Delete,
}

use TempEnvEvent as E;
use TempEnvState as S;

/// The SPEC §4 temp-environment table.
pub const TEMP_ENV_EDGES: &[(S, E, S)] = &[
    (S::Provisioning, E::Provisioned, S::Active),
    (S::Provisioning, E::ProvisionFailed, S::Failed),
    (S::Active, E::Expire, S::Expired),
    (S::Expired, E::UndoExpire, S::Active),
    (S::Expired, E::Delete, S::Deleted),
];

impl StateMachine for TempEnvState {
    type Event = TempEnvEvent;
    const ENTITY: &'static str = "temp_env";
    const STATES: &'static [Self] = &[S::Provisioning, S::Active, S::Expired, S::Deleted, S::Failed];
    const EVENTS: &'static [E] = &[E::Provisioned, E::ProvisionFailed, E::Expire, E::UndoExpire, E::Delete];

    fn next(self, event: E) -> Option<Self> {
        TEMP_ENV_EDGES.iter().find(|(f, e, _)| *f == self && *e == event).map(|(_, _, t)| *t)
    }
}
