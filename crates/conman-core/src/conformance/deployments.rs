//! Conformance cases of the deployment aggregate
//! ([`DeploymentStore`](crate::ports::store::DeploymentStore) plus the
//! deployment mutations).
//!
//! Invariant: a deployment round-trips whole, lookups are scoped by app,
//! updates are compare-and-set on `version`, at most one deployment per
//! environment is active — a second one, in the same unit or another, is
//! `taken` (`environment`) and refuses its whole unit, while different
//! environments hold one each and a finished deployment frees its
//! environment — listings are newest first with every filter, and an
//! environment with deployments cannot be removed.

use std::sync::Arc;

use super::fixtures::{self, app, deployment, environment, later, release, setup};
use super::{assert_code, assert_conflict, Spawner};
use crate::domain::app::App;
use crate::domain::deployment::{
    Deployment, DeploymentApproval, DeploymentException, DeploymentKind, DeploymentOutcome, DeploymentRejection,
    DeploymentState,
};
use crate::domain::environment::Environment;
use crate::domain::release::{Release, ReleaseState};
use crate::domain::user::User;
use crate::error::{Error, ErrorCode};
use crate::ids::{DeploymentId, EnvironmentId, JobId, ReleaseId};
use crate::ports::store::{
    AppMutation, ConflictReason, DeploymentCount, DeploymentFilter, DeploymentMutation, Mutation, PageRequest,
    ProfileMutation, Record, ReleaseMutation, Store,
};
use crate::rbac::Role;

/// An app with environments dev, qa, prod and two published releases, and
/// a second app with one environment and release: what the deployment,
/// freeze and drift cases deploy on.
pub(crate) struct Stage {
    pub(crate) ada: User,
    pub(crate) bob: User,
    pub(crate) app: App,
    pub(crate) envs: Vec<Environment>,
    pub(crate) releases: Vec<Release>,
    pub(crate) other_app: App,
    pub(crate) other_env: Environment,
    pub(crate) other_release: Release,
}

fn published(app: &App, by: &User, tag: &str) -> Release {
    Release { state: ReleaseState::Published, tag: Some(tag.into()), ..release(app, by, &[]) }
}

/// Sets up a [`Stage`].
pub(crate) async fn stage<S: Store>(store: &S) -> Stage {
    let users = fixtures::users(store, &["ada", "bob"]).await;
    let (billing, search) = (app("billing", &users[0]), app("search", &users[0]));
    let envs = vec![
        environment(&billing, "dev", 0, false),
        environment(&billing, "qa", 1, false),
        environment(&billing, "prod", 2, true),
    ];
    let other_env = environment(&search, "prod", 0, true);
    let releases =
        vec![published(&billing, &users[0], "r2026.12.03.1"), published(&billing, &users[0], "r2026.12.03.2")];
    let other_release = published(&search, &users[0], "r2026.12.03.1");
    let mut steps = vec![
        Mutation::from(AppMutation::InsertApp(billing.clone())),
        Mutation::from(AppMutation::InsertApp(search.clone())),
        Mutation::from(ProfileMutation::ReplaceEnvironments { app_id: billing.id, environments: envs.clone() }),
        Mutation::from(ProfileMutation::ReplaceEnvironments {
            app_id: search.id,
            environments: vec![other_env.clone()],
        }),
    ];
    steps.extend(releases.iter().chain([&other_release]).cloned().map(|r| ReleaseMutation::InsertRelease(r).into()));
    setup(store, steps).await;
    Stage {
        ada: users[0].clone(),
        bob: users[1].clone(),
        app: billing,
        envs,
        releases,
        other_app: search,
        other_env,
        other_release,
    }
}

fn taken_environment() -> ConflictReason {
    ConflictReason::Taken { record: Record::Deployment, field: "environment".into() }
}

/// A finished (succeeded) deployment with every field set.
fn full(s: &Stage) -> Deployment {
    let base = deployment(&s.envs[2], &s.releases[1], &s.ada);
    let at = base.created_at;
    Deployment {
        kind: DeploymentKind::RedeployPrior,
        exception: Some(DeploymentException::SkipStage),
        group_id: Some(DeploymentId(uuid::Uuid::now_v7())),
        state: DeploymentState::Succeeded,
        approvals: vec![
            DeploymentApproval { user_id: s.bob.id, role: Role::Reviewer, at: later(at, 10) },
            DeploymentApproval { user_id: s.ada.id, role: Role::AppAdmin, at: later(at, 20) },
        ],
        rejection: Some(DeploymentRejection { user_id: s.bob.id, at: later(at, 5), reason: Some("not yet".into()) }),
        approval_expires_at: Some(later(at, 86_400)),
        active: false,
        job_id: Some(JobId(uuid::Uuid::now_v7())),
        previous_commit: Some(fixtures::sha()),
        previous_release_id: Some(s.releases[0].id),
        rolled_back_release_id: Some(s.releases[0].id),
        profile_revision: Some(7),
        freeze_override: Some("hotfix for the outage".into()),
        failure: Some("first attempt timed out".into()),
        started_at: Some(later(at, 21)),
        finished_at: Some(later(at, 30)),
        updated_at: later(at, 30),
        version: 4,
        ..base
    }
}

/// A deployment reads back equal, field for field, under its app only.
pub async fn deployment_round_trips_whole_and_is_scoped_by_app<S: Store>(store: &S) {
    let s = stage(store).await;
    let plain = deployment(&s.envs[0], &s.releases[0], &s.ada);
    let everything = full(&s);
    setup(
        store,
        [DeploymentMutation::InsertDeployment(plain.clone()), DeploymentMutation::InsertDeployment(everything.clone())],
    )
    .await;

    assert_eq!(store.deployment(s.app.id, plain.id).await.unwrap(), Some(plain.clone()));
    assert_eq!(store.deployment(s.app.id, everything.id).await.unwrap(), Some(everything.clone()));
    assert_eq!(store.deployment(s.other_app.id, plain.id).await.unwrap(), None);
    assert_eq!(store.active_deployment(s.other_app.id, s.envs[0].id).await.unwrap(), None);
    assert_eq!(store.last_succeeded_deployment(s.other_app.id, s.envs[2].id).await.unwrap(), None);
}

/// Updates are compare-and-set on `version`; an unknown deployment is not found.
pub async fn deployment_update_is_compare_and_set<S: Store>(store: &S) {
    let s = stage(store).await;
    let pending = deployment(&s.envs[0], &s.releases[0], &s.ada);
    setup(store, [DeploymentMutation::InsertDeployment(pending.clone())]).await;

    let running = pending.start(later(pending.created_at, 1)).unwrap();
    setup(store, [DeploymentMutation::UpdateDeployment(running.clone())]).await;
    assert_eq!(store.deployment(s.app.id, pending.id).await.unwrap(), Some(running.clone()));

    let stale = pending.finish(DeploymentOutcome::Canceled { reason: None }, later(pending.created_at, 2)).unwrap();
    assert_eq!(stale.version, running.version, "computed from the old version");
    assert_conflict(
        fixtures::commit(store, [DeploymentMutation::UpdateDeployment(stale)]).await,
        ConflictReason::StaleVersion { entity: "deployment" },
    );
    assert_eq!(store.deployment(s.app.id, pending.id).await.unwrap(), Some(running.clone()));

    let elsewhere = Deployment { app_id: s.other_app.id, version: running.version + 1, ..running.clone() };
    assert_code(fixtures::commit(store, [DeploymentMutation::UpdateDeployment(elsewhere)]).await, ErrorCode::NotFound);
    let unknown = Deployment { version: 2, ..deployment(&s.envs[1], &s.releases[0], &s.ada) };
    assert_code(fixtures::commit(store, [DeploymentMutation::UpdateDeployment(unknown)]).await, ErrorCode::NotFound);
}

/// Two active deployments of one environment in one unit: the unit is
/// refused whole, with everything else in it.
pub async fn two_active_deployments_of_one_environment_in_one_unit_are_refused<S: Store>(store: &S) {
    let s = stage(store).await;
    let bystander = deployment(&s.envs[1], &s.releases[0], &s.ada);
    let first = deployment(&s.envs[0], &s.releases[0], &s.ada);
    let second = deployment(&s.envs[0], &s.releases[1], &s.bob);
    let before = fixtures::verified_chain(store, 100).await.len();
    assert_conflict(
        fixtures::commit(
            store,
            [
                DeploymentMutation::InsertDeployment(bystander.clone()),
                DeploymentMutation::InsertDeployment(first.clone()),
                DeploymentMutation::InsertDeployment(second.clone()),
            ],
        )
        .await,
        taken_environment(),
    );
    for id in [bystander.id, first.id, second.id] {
        assert_eq!(store.deployment(s.app.id, id).await.unwrap(), None, "nothing of the unit is written");
    }
    assert_eq!(store.active_deployment(s.app.id, s.envs[0].id).await.unwrap(), None);
    assert_eq!(fixtures::verified_chain(store, 100).await.len(), before, "nor audited");
}

/// A second active deployment of an environment in a later unit is refused
/// (inserted active, or updated to active), and so is its whole unit.
pub async fn a_second_active_deployment_in_another_unit_is_refused<S: Store>(store: &S) {
    let s = stage(store).await;
    let holder = deployment(&s.envs[0], &s.releases[0], &s.ada);
    let waiting = Deployment { active: false, ..deployment(&s.envs[0], &s.releases[1], &s.bob) };
    setup(
        store,
        [DeploymentMutation::InsertDeployment(holder.clone()), DeploymentMutation::InsertDeployment(waiting.clone())],
    )
    .await;

    let bystander = deployment(&s.envs[1], &s.releases[0], &s.ada);
    let racer = deployment(&s.envs[0], &s.releases[1], &s.bob);
    assert_conflict(
        fixtures::commit(
            store,
            [
                DeploymentMutation::InsertDeployment(bystander.clone()),
                DeploymentMutation::InsertDeployment(racer.clone()),
            ],
        )
        .await,
        taken_environment(),
    );
    assert_eq!(store.deployment(s.app.id, racer.id).await.unwrap(), None);
    assert_eq!(store.deployment(s.app.id, bystander.id).await.unwrap(), None, "the whole unit is refused");

    // Approvals complete: the waiting one would hold the environment now.
    let approved = Deployment { active: true, version: 2, ..waiting.clone() };
    assert_conflict(
        fixtures::commit(store, [DeploymentMutation::UpdateDeployment(approved)]).await,
        taken_environment(),
    );
    assert_eq!(store.deployment(s.app.id, waiting.id).await.unwrap(), Some(waiting));
    assert_eq!(store.active_deployment(s.app.id, s.envs[0].id).await.unwrap(), Some(holder));
}

/// Each environment holds its own active deployment; finishing one frees
/// its environment for the next.
pub async fn active_deployments_are_per_environment_and_finishing_frees_one<S: Store>(store: &S) {
    let s = stage(store).await;
    let on_dev = deployment(&s.envs[0], &s.releases[0], &s.ada);
    let on_qa = deployment(&s.envs[1], &s.releases[0], &s.ada);
    let on_other = deployment(&s.other_env, &s.other_release, &s.ada);
    setup(
        store,
        [
            DeploymentMutation::InsertDeployment(on_dev.clone()),
            DeploymentMutation::InsertDeployment(on_qa.clone()),
            DeploymentMutation::InsertDeployment(on_other.clone()),
        ],
    )
    .await;
    assert_eq!(store.active_deployment(s.app.id, s.envs[0].id).await.unwrap(), Some(on_dev.clone()));
    assert_eq!(store.active_deployment(s.app.id, s.envs[1].id).await.unwrap(), Some(on_qa.clone()));
    assert_eq!(store.active_deployment(s.app.id, s.envs[2].id).await.unwrap(), None);
    assert_eq!(store.active_deployment(s.other_app.id, s.other_env.id).await.unwrap(), Some(on_other));

    let t = on_dev.created_at;
    let running = on_dev.start(later(t, 1)).unwrap();
    let done = running.finish(DeploymentOutcome::Failed { reason: "gate failed".into() }, later(t, 2)).unwrap();
    let next = deployment(&s.envs[0], &s.releases[1], &s.bob);
    // Finishing and the next deployment in one unit: the environment is free by then.
    setup(
        store,
        [
            Mutation::from(DeploymentMutation::UpdateDeployment(running)),
            Mutation::from(DeploymentMutation::UpdateDeployment(done.clone())),
            Mutation::from(DeploymentMutation::InsertDeployment(next.clone())),
        ],
    )
    .await;
    assert_eq!(store.active_deployment(s.app.id, s.envs[0].id).await.unwrap(), Some(next));
    assert_eq!(store.deployment(s.app.id, on_dev.id).await.unwrap(), Some(done));
}

/// Deployments list newest first, filtered by environment, state, release
/// and group (together too), with totals and pages.
pub async fn deployments_list_newest_first_with_every_filter<S: Store>(store: &S) {
    let s = stage(store).await;
    let base = fixtures::now();
    let group = DeploymentId(uuid::Uuid::now_v7());
    let states = [DeploymentState::Succeeded, DeploymentState::Failed, DeploymentState::Canceled];
    let listed: Vec<Deployment> = (0..9)
        .map(|i| {
            let d = deployment(&s.envs[i % 3], &s.releases[i / 5], &s.ada);
            Deployment {
                state: states[i % 3],
                active: false,
                group_id: (i >= 6).then_some(group),
                created_at: later(base, i as i64),
                ..d
            }
        })
        .collect();
    let elsewhere = deployment(&s.other_env, &s.other_release, &s.ada);
    // Inserted oldest first, so insertion order cannot pass for "newest first".
    setup(store, listed.iter().cloned().chain([elsewhere]).map(DeploymentMutation::InsertDeployment)).await;
    let newest_first: Vec<Deployment> = listed.iter().rev().cloned().collect();
    let expect = |keep: &dyn Fn(&Deployment) -> bool| -> Vec<Deployment> {
        newest_first.iter().filter(|d| keep(d)).cloned().collect()
    };

    let all = store.list_deployments(s.app.id, &DeploymentFilter::default(), PageRequest::default()).await.unwrap();
    assert_eq!((all.items, all.total), (newest_first.clone(), 9));
    // The metric's counts: per environment and state, across apps, ordered.
    let mut want: Vec<DeploymentCount> = s
        .envs
        .iter()
        .zip(states)
        .map(|(e, state)| DeploymentCount { app_id: s.app.id, environment_id: e.id, state, count: 3 })
        .collect();
    want.push(DeploymentCount {
        app_id: s.other_app.id,
        environment_id: s.other_env.id,
        state: DeploymentState::Pending,
        count: 1,
    });
    want.sort_by_key(|c| (c.app_id, c.environment_id, c.state.as_str()));
    assert_eq!(store.deployment_counts().await.unwrap(), want);
    let second = store
        .list_deployments(s.app.id, &DeploymentFilter::default(), PageRequest { page: 2, limit: 4 })
        .await
        .unwrap();
    assert_eq!((second.items, second.total), (newest_first[4..8].to_vec(), 9));

    let filters: Vec<(DeploymentFilter, Vec<Deployment>)> = vec![
        (
            DeploymentFilter { environment_id: Some(s.envs[1].id), ..Default::default() },
            expect(&|d| d.environment_id == s.envs[1].id),
        ),
        (
            DeploymentFilter { state: Some(DeploymentState::Failed), ..Default::default() },
            expect(&|d| d.state == DeploymentState::Failed),
        ),
        (
            DeploymentFilter { release_id: Some(s.releases[1].id), ..Default::default() },
            expect(&|d| d.release_id == s.releases[1].id),
        ),
        (DeploymentFilter { group_id: Some(group), ..Default::default() }, expect(&|d| d.group_id == Some(group))),
        (
            DeploymentFilter {
                environment_id: Some(s.envs[0].id),
                state: Some(DeploymentState::Succeeded),
                release_id: Some(s.releases[1].id),
                group_id: Some(group),
            },
            expect(&|d| d.environment_id == s.envs[0].id && d.release_id == s.releases[1].id && d.group_id.is_some()),
        ),
        (DeploymentFilter { environment_id: Some(s.other_env.id), ..Default::default() }, vec![]),
        (DeploymentFilter { state: Some(DeploymentState::Running), ..Default::default() }, vec![]),
    ];
    for (filter, want) in filters {
        assert!(want.len() < 9, "the filter {filter:?} filters");
        let got = store.list_deployments(s.app.id, &filter, PageRequest::default()).await.unwrap();
        assert_eq!(got.total, want.len() as u64, "{filter:?}");
        assert_eq!(got.items, want, "{filter:?}");
    }
}

/// The last succeeded deployment of an environment is the one that
/// finished last, whatever the creation order; failures do not count.
pub async fn the_last_succeeded_deployment_is_the_one_that_finished_last<S: Store>(store: &S) {
    let s = stage(store).await;
    let base = fixtures::now();
    let done = |release: &Release, created: i64, finished: i64, state| Deployment {
        state,
        active: false,
        created_at: later(base, created),
        finished_at: Some(later(base, finished)),
        ..deployment(&s.envs[2], release, &s.ada)
    };
    let early_long = done(&s.releases[0], 0, 50, DeploymentState::Succeeded);
    let late_quick = done(&s.releases[1], 10, 20, DeploymentState::Succeeded);
    let failed_last = done(&s.releases[1], 20, 90, DeploymentState::Failed);
    let canceled_last = done(&s.releases[1], 25, 95, DeploymentState::Canceled);
    assert_eq!(store.last_succeeded_deployment(s.app.id, s.envs[2].id).await.unwrap(), None);
    let on_prod = [early_long.clone(), late_quick, failed_last, canceled_last];
    setup(store, on_prod.map(DeploymentMutation::InsertDeployment)).await;
    assert_eq!(store.last_succeeded_deployment(s.app.id, s.envs[2].id).await.unwrap(), Some(early_long));
    assert_eq!(store.last_succeeded_deployment(s.app.id, s.envs[1].id).await.unwrap(), None, "other environments");

    let on_qa =
        Deployment { environment_id: s.envs[1].id, ..done(&s.releases[1], 30, 100, DeploymentState::Succeeded) };
    setup(store, [DeploymentMutation::InsertDeployment(on_qa.clone())]).await;
    assert_eq!(store.last_succeeded_deployment(s.app.id, s.envs[1].id).await.unwrap(), Some(on_qa));
}

/// A deployment of an unknown environment, release or user is refused; an
/// id is unique; an environment with deployments cannot be removed.
pub async fn deployments_refer_to_existing_rows_and_pin_their_environment<S: Store>(store: &S) {
    let s = stage(store).await;
    let d = deployment(&s.envs[0], &s.releases[0], &s.ada);
    let missing = ConflictReason::MissingReference;
    let unknown_env = Deployment { environment_id: EnvironmentId(uuid::Uuid::now_v7()), ..d.clone() };
    assert_conflict(
        fixtures::commit(store, [DeploymentMutation::InsertDeployment(unknown_env)]).await,
        missing.clone(),
    );
    let unknown_release = Deployment { release_id: ReleaseId(uuid::Uuid::now_v7()), ..d.clone() };
    assert_conflict(
        fixtures::commit(store, [DeploymentMutation::InsertDeployment(unknown_release)]).await,
        missing.clone(),
    );
    let unknown_user = Deployment { requested_by: fixtures::user("eve").id, ..d.clone() };
    assert_conflict(
        fixtures::commit(store, [DeploymentMutation::InsertDeployment(unknown_user)]).await,
        missing.clone(),
    );

    setup(store, [DeploymentMutation::InsertDeployment(d.clone())]).await;
    // The same deployment again: its id is named before its environment.
    assert_conflict(
        fixtures::commit(store, [DeploymentMutation::InsertDeployment(d.clone())]).await,
        ConflictReason::Taken { record: Record::Deployment, field: "id".into() },
    );

    let without_dev = ProfileMutation::ReplaceEnvironments { app_id: s.app.id, environments: s.envs[1..].to_vec() };
    assert_conflict(fixtures::commit(store, [without_dev]).await, missing);
    assert_eq!(store.environments(s.app.id).await.unwrap().len(), 3, "the environment stays");
    // An environment without history still goes.
    let without_prod = ProfileMutation::ReplaceEnvironments { app_id: s.app.id, environments: s.envs[..2].to_vec() };
    setup(store, [without_prod]).await;
    assert_eq!(store.environments(s.app.id).await.unwrap().len(), 2);
}

/// Deploys racing on one environment from concurrent units: exactly one
/// holds it, every other is refused `taken` (`environment`).
pub async fn racing_deploys_to_one_environment_leave_exactly_one_active<S: Store + 'static>(
    store: Arc<S>,
    spawn: Spawner,
) {
    let s = stage(&*store).await;
    let racers: Vec<Deployment> =
        (0..6).map(|i| deployment(&s.envs[2], &s.releases[i % 2], if i % 2 == 0 { &s.ada } else { &s.bob })).collect();
    let tasks: Vec<_> = racers
        .iter()
        .cloned()
        .map(|d| {
            let store = Arc::clone(&store);
            spawn(Box::pin(async move { fixtures::commit(&*store, [DeploymentMutation::InsertDeployment(d)]).await }))
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await {
            Ok(()) => won += 1,
            Err(err) => assert_eq!(err, Error::from(taken_environment())),
        }
    }
    assert_eq!(won, 1, "exactly one deploy holds the environment");
    let holder = store.active_deployment(s.app.id, s.envs[2].id).await.unwrap().expect("one holds it");
    assert!(racers.contains(&holder));
    let all = store.list_deployments(s.app.id, &DeploymentFilter::default(), PageRequest::default()).await.unwrap();
    assert_eq!(all.items, vec![holder]);
}
