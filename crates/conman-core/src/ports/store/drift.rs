//! Drift baselines and migration execution records: reads and mutations.
//!
//! Invariants every store keeps (pinned by `conformance::drift`):
//! - both are append-only: inserted, never updated or deleted (a
//!   duplicate id is [`ConflictReason::Taken`](super::ConflictReason::Taken));
//!   read back equal; lookups are scoped by app;
//! - an environment's last validation is its newest (validation time, then
//!   id) — the drift baseline;
//! - migration records are listed newest first (recording time, then id);
//! - a validation refers to an existing app and environment; a migration
//!   record also to its release and deployment (`missing_reference`
//!   otherwise); an environment with either cannot be removed.

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::drift::{EnvironmentValidation, MigrationExecution};
use crate::error::Error;
use crate::ids::{AppId, EnvironmentId};

/// A change to drift records.
#[derive(Debug, Clone, PartialEq)]
pub enum DriftMutation {
    /// Record a validation of an environment.
    InsertValidation(EnvironmentValidation),
    /// Record a run of an environment's migrations.
    InsertMigrationExecution(MigrationExecution),
}

/// Drift baselines and migration records.
#[async_trait]
pub trait DriftStore: Send + Sync {
    /// The environment's newest validation: its drift baseline.
    async fn last_validation(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
    ) -> Result<Option<EnvironmentValidation>, Error>;
    /// The environment's migration records, newest first.
    async fn migration_executions(
        &self,
        app_id: AppId,
        environment_id: EnvironmentId,
        page: PageRequest,
    ) -> Result<Page<MigrationExecution>, Error>;
}
