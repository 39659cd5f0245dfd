//! Conformance cases of drift baselines and migration records
//! ([`DriftStore`](crate::ports::store::DriftStore) plus the drift
//! mutations).
//!
//! Invariant: validations and migration records round-trip whole, are
//! append-only (a duplicate id is `taken`), and are scoped by app and
//! environment; the last validation is the newest one; migration records
//! list newest first with totals and pages; both refer to existing rows
//! and pin their environment.

use super::assert_conflict;
use super::deployments::stage;
use super::fixtures::{self, deployment, later, migration_execution, setup, validation};
use crate::domain::drift::{migrations_fingerprint, EnvironmentValidation, MigrationExecution, ValidationSource};
use crate::domain::runtime_profile::AppliedState;
use crate::ids::{DeploymentId, EnvironmentId, JobId, ReleaseId, RuntimeProfileId};
use crate::ports::store::{
    collect_pages, ConflictReason, DeploymentMutation, DriftMutation, Mutation, PageRequest, ProfileMutation, Record,
    Store,
};

/// The last validation of an environment is the newest, whatever the
/// insertion order; each environment has its own.
pub async fn the_last_validation_is_the_newest<S: Store>(store: &S) {
    let s = stage(store).await;
    let prod = &s.envs[2];
    let base = fixtures::now();
    let by_job = ValidationSource::DriftCheck { job_id: JobId(uuid::Uuid::now_v7()) };
    let by_deploy = ValidationSource::Deployment { deployment_id: DeploymentId(uuid::Uuid::now_v7()) };
    let older = EnvironmentValidation { at: later(base, 10), ..validation(prod, by_job) };
    let newest = EnvironmentValidation {
        profile_id: Some(RuntimeProfileId(uuid::Uuid::now_v7())),
        profile_revision: Some(9),
        migrations_fingerprint: "sha256:0123".into(),
        at: later(base, 30),
        ..validation(prod, by_deploy)
    };
    let oldest = EnvironmentValidation { at: later(base, 0), profile_revision: None, ..validation(prod, by_job) };
    assert_eq!(store.last_validation(s.app.id, prod.id).await.unwrap(), None);
    setup(store, [&older, &newest, &oldest].map(|v| DriftMutation::InsertValidation(v.clone()))).await;
    assert_eq!(store.last_validation(s.app.id, prod.id).await.unwrap(), Some(newest.clone()));
    assert_eq!(store.last_validation(s.app.id, s.envs[1].id).await.unwrap(), None, "per environment");
    assert_eq!(store.last_validation(s.other_app.id, prod.id).await.unwrap(), None, "scoped by app");

    // A newer one replaces it as the baseline; the old ones stay.
    let latest = EnvironmentValidation { at: later(base, 40), ..validation(prod, by_job) };
    setup(store, [DriftMutation::InsertValidation(latest.clone())]).await;
    assert_eq!(store.last_validation(s.app.id, prod.id).await.unwrap(), Some(latest));
    assert_conflict(
        fixtures::commit(store, [DriftMutation::InsertValidation(newest)]).await,
        ConflictReason::Taken { record: Record::EnvironmentValidation, field: "id".into() },
    );
}

/// Migration records read back equal and list newest first, per
/// environment and app, with totals and pages; an id is unique.
pub async fn migration_records_list_newest_first<S: Store>(store: &S) {
    let s = stage(store).await;
    let prod = &s.envs[2];
    let deploys = [
        deployment(prod, &s.releases[0], &s.ada),
        crate::domain::deployment::Deployment { active: false, ..deployment(prod, &s.releases[1], &s.ada) },
    ];
    setup(store, deploys.iter().cloned().map(DeploymentMutation::InsertDeployment)).await;
    let base = fixtures::now();
    let records: Vec<MigrationExecution> = (0..5)
        .map(|i| MigrationExecution {
            recorded_at: later(base, i),
            applied_state: (i % 2 == 0).then(|| AppliedState {
                last_applied: format!("000{i}"),
                checksum: Some(format!("sum{i}")),
                recorded_at: later(base, i),
            }),
            profile_revision: 1 + i as u32,
            command: (i != 3).then(|| "./migrate up".to_owned()),
            ..migration_execution(&deploys[i as usize % 2])
        })
        .collect();
    let on_qa = migration_execution(&deployment(&s.envs[1], &s.releases[0], &s.ada));
    // Inserted oldest first, so insertion order cannot pass for "newest first".
    setup(store, records.iter().cloned().map(DriftMutation::InsertMigrationExecution)).await;
    let newest_first: Vec<MigrationExecution> = records.iter().rev().cloned().collect();

    let all = store.migration_executions(s.app.id, prod.id, PageRequest::default()).await.unwrap();
    assert_eq!((all.items, all.total), (newest_first.clone(), 5));
    let second = store.migration_executions(s.app.id, prod.id, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!((second.items, second.total), (newest_first[2..4].to_vec(), 5));
    assert_eq!(store.migration_executions(s.other_app.id, prod.id, PageRequest::default()).await.unwrap().total, 0);
    let qa = store.migration_executions(s.app.id, s.envs[1].id, PageRequest::default()).await.unwrap();
    assert_eq!(qa.total, 0, "per environment");

    // Read back whole, the fingerprint is the one of what was written.
    let read = collect_pages(|page| store.migration_executions(s.app.id, prod.id, page)).await.unwrap();
    assert_eq!(migrations_fingerprint(&read), migrations_fingerprint(&records));
    assert_conflict(
        fixtures::commit(store, [DriftMutation::InsertMigrationExecution(records[0].clone())]).await,
        ConflictReason::Taken { record: Record::MigrationExecution, field: "id".into() },
    );
    // A record of a deployment that is not stored is refused.
    assert_conflict(
        fixtures::commit(store, [DriftMutation::InsertMigrationExecution(on_qa)]).await,
        ConflictReason::MissingReference,
    );
}

/// Validations and migration records of unknown rows are refused, and an
/// environment that has either cannot be removed.
pub async fn drift_records_refer_to_existing_rows_and_pin_their_environment<S: Store>(store: &S) {
    let s = stage(store).await;
    let (dev, qa) = (&s.envs[0], &s.envs[1]);
    let source = ValidationSource::DriftCheck { job_id: JobId(uuid::Uuid::now_v7()) };
    let missing = ConflictReason::MissingReference;
    let unknown_env =
        EnvironmentValidation { environment_id: EnvironmentId(uuid::Uuid::now_v7()), ..validation(dev, source) };
    assert_conflict(fixtures::commit(store, [DriftMutation::InsertValidation(unknown_env)]).await, missing.clone());

    let d = deployment(qa, &s.releases[0], &s.ada);
    setup(store, [DeploymentMutation::InsertDeployment(d.clone())]).await;
    let unknown_release = MigrationExecution { release_id: ReleaseId(uuid::Uuid::now_v7()), ..migration_execution(&d) };
    assert_conflict(
        fixtures::commit(store, [DriftMutation::InsertMigrationExecution(unknown_release)]).await,
        missing.clone(),
    );
    let unknown_env =
        MigrationExecution { environment_id: EnvironmentId(uuid::Uuid::now_v7()), ..migration_execution(&d) };
    assert_conflict(
        fixtures::commit(store, [DriftMutation::InsertMigrationExecution(unknown_env)]).await,
        missing.clone(),
    );

    setup(store, [DriftMutation::InsertValidation(validation(dev, source))]).await;
    for kept in [0, 1] {
        let without = s.envs.iter().enumerate().filter(|(i, _)| *i != kept).map(|(_, e)| e.clone()).collect();
        let removal = ProfileMutation::ReplaceEnvironments { app_id: s.app.id, environments: without };
        assert_conflict(fixtures::commit(store, [Mutation::from(removal)]).await, missing.clone());
    }
    assert_eq!(store.environments(s.app.id).await.unwrap().len(), 3);
}
