//! Conformance cases of the job aggregate
//! ([`JobStore`](crate::ports::store::JobStore) plus the job mutations).
//!
//! Invariant: a claim hands the oldest runnable job to exactly one worker;
//! every later change to a running job (renew, finish, release) applies only
//! for the worker holding its lease, and a finish refused for a lost lease
//! takes the rest of its unit down with it; once a cancel was requested only
//! a `canceled` finish applies; a job's log is numbered from 1,
//! follows with `after`, and keeps its newest tail within the bound.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::fixtures::{self, app, audit_entry, job, later, now, outbox, setup};
use super::{assert_code, Spawner};
use crate::domain::app::App;
use crate::domain::job::{Job, JobState, JobType, LogAppend, LogStream, NewLogLine};
use crate::domain::Timestamp;
use crate::error::ErrorCode;
use crate::ids::JobId;
use crate::ports::store::{
    AppMutation, JobClaim, JobFilter, JobFinish, JobMutation, Mutation, OutboxMutation, PageRequest, Store, UnitOfWork,
};

/// Inserts user `ada` and apps `billing` and `search`.
async fn two_apps<S: Store + ?Sized>(store: &S) -> (App, App) {
    let ada = fixtures::users(store, &["ada"]).await.remove(0);
    let (billing, search) = (app("billing", &ada), app("search", &ada));
    setup(
        store,
        [
            Mutation::from(AppMutation::InsertApp(billing.clone())),
            Mutation::from(AppMutation::InsertApp(search.clone())),
        ],
    )
    .await;
    (billing, search)
}

/// Inserts one app and returns it.
async fn one_app<S: Store + ?Sized>(store: &S) -> App {
    two_apps(store).await.0
}

/// Inserts `jobs`.
async fn insert<S: Store + ?Sized>(store: &S, jobs: impl IntoIterator<Item = Job>) {
    setup(store, jobs.into_iter().map(JobMutation::InsertJob)).await;
}

/// A claim by `worker` at `at`, leased for 30 s, of any type.
fn claim_at(worker: &str, at: Timestamp) -> JobClaim {
    JobClaim { worker: worker.into(), now: at, lease_until: later(at, 30), types: None }
}

/// `worker` claims at `at`; answers the claimed job's id.
async fn claimed_id<S: Store + ?Sized>(store: &S, worker: &str, at: Timestamp) -> Option<JobId> {
    store.claim_job(&claim_at(worker, at)).await.expect("claim_job").map(|j| j.id)
}

/// The job as stored (under its app).
async fn reload<S: Store + ?Sized>(store: &S, j: &Job) -> Job {
    store.job(j.app_id, j.id).await.expect("job reads").expect("job exists")
}

/// Ends `worker`'s attempt on `j` with `state`.
fn finish(j: &Job, worker: &str, state: JobState, at: Timestamp) -> JobFinish {
    JobFinish {
        id: j.id,
        worker: worker.into(),
        state,
        result: None,
        error: None,
        run_after: None,
        finished_at: state.is_terminal().then_some(at),
    }
}

/// A job with every optional field set reads back equal under its app,
/// not under another app, and an unknown id is not found.
pub async fn job_lookups_are_scoped_by_app<S: Store>(store: &S) {
    let (billing, search) = two_apps(store).await;
    let ada = store.user_by_handle("ada").await.unwrap().unwrap();
    let at = now();
    let full = Job {
        entity_type: Some("changeset".into()),
        entity_id: Some("cs-42".into()),
        payload: serde_json::json!({ "sha": "4b825dc6", "env": { "K": [1, 2] }, "note": "ünïcode" }),
        attempts: 2,
        max_attempts: 5,
        run_after: later(at, -5),
        lease_owner: Some("host-1/3".into()),
        lease_expires_at: Some(later(at, 25)),
        timeout_secs: 7200,
        state: JobState::Running,
        cancel_requested: true,
        result: Some(serde_json::json!({ "exit_code": 1 })),
        error: Some("exit status 1".into()),
        created_by: Some(ada.id),
        started_at: Some(later(at, -4)),
        ..job(&billing, JobType::GateSubmit)
    };
    let finished = Job { state: JobState::Failed, finished_at: Some(at), ..job(&billing, JobType::DriftCheck) };
    let plain = job(&billing, JobType::Notify);
    insert(store, [full.clone(), finished.clone(), plain.clone()]).await;

    for j in [&full, &finished, &plain] {
        assert_eq!(store.job(billing.id, j.id).await.unwrap().as_ref(), Some(j));
        assert_eq!(store.job(search.id, j.id).await.unwrap(), None, "another app's job is not found");
    }
    assert_eq!(store.job(billing.id, job(&billing, JobType::Notify).id).await.unwrap(), None);
}

/// Listing is per app, newest first (`created_at`, then id), filtered by
/// type and state, paged with totals.
pub async fn list_jobs_filters_and_pages_newest_first<S: Store>(store: &S) {
    let (billing, search) = two_apps(store).await;
    let base = now();
    let specs = [
        (JobType::GateSubmit, JobState::Succeeded),
        (JobType::GateSubmit, JobState::Queued),
        (JobType::Notify, JobState::Queued),
        (JobType::GateSubmit, JobState::Failed),
        (JobType::Notify, JobState::Canceled),
    ];
    let jobs: Vec<Job> = specs
        .iter()
        .zip(0..)
        .map(|(&(job_type, state), i)| Job { state, created_at: later(base, i), ..job(&billing, job_type) })
        .collect();
    // Same creation instant as the newest: the larger id comes first.
    let tie = Job { created_at: later(base, 4), ..job(&billing, JobType::Notify) };
    let elsewhere = job(&search, JobType::GateSubmit);
    insert(store, jobs.iter().cloned()).await;
    insert(store, [tie.clone(), elsewhere.clone()]).await;

    let mut newest_first: Vec<Job> = jobs.iter().cloned().chain([tie]).collect();
    newest_first.sort_by_key(|j| std::cmp::Reverse((j.created_at, j.id.0)));
    let all = PageRequest { page: 1, limit: 100 };
    let app_id = billing.id;
    let list = |filter: JobFilter, page| async move { store.list_jobs(app_id, &filter, page).await.unwrap() };

    let every = list(JobFilter::default(), all).await;
    assert_eq!((every.items, every.total), (newest_first.clone(), 6));
    let expect = |keep: &dyn Fn(&Job) -> bool| newest_first.iter().filter(|j| keep(j)).cloned().collect::<Vec<_>>();

    let gates = list(JobFilter { job_type: Some(JobType::GateSubmit), state: None }, all).await;
    assert_eq!((gates.items, gates.total), (expect(&|j| j.job_type == JobType::GateSubmit), 3));
    let queued = list(JobFilter { job_type: None, state: Some(JobState::Queued) }, all).await;
    assert_eq!((queued.items, queued.total), (expect(&|j| j.state == JobState::Queued), 3));
    let both = list(JobFilter { job_type: Some(JobType::Notify), state: Some(JobState::Canceled) }, all).await;
    assert_eq!(
        (both.items, both.total),
        (expect(&|j| j.job_type == JobType::Notify && j.state == JobState::Canceled), 1)
    );
    let none = list(JobFilter { job_type: Some(JobType::DeployRelease), state: None }, all).await;
    assert_eq!((none.items, none.total), (vec![], 0));

    let second = list(JobFilter::default(), PageRequest { page: 2, limit: 4 }).await;
    assert_eq!((second.items, second.total), (newest_first[4..].to_vec(), 6));
    let other = store.list_jobs(search.id, &JobFilter::default(), all).await.unwrap();
    assert_eq!((other.items, other.total), (vec![elsewhere], 1));
}

/// A claim takes the queued job with the oldest `run_after` (ties by id),
/// leases it and starts an attempt; a job whose `run_after` is still ahead
/// waits for it.
pub async fn claim_takes_the_oldest_runnable_job<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let t = now();
    let at = |secs| Job { run_after: later(t, secs), ..job(&billing, JobType::GateSubmit) };
    let (a, b, c, future) = (at(-10), at(-30), at(-20), at(60));
    let (d, e) = (at(-15), at(-15));
    insert(store, [a.clone(), b.clone(), c.clone(), future.clone(), d.clone(), e.clone()]).await;
    let (first_tie, second_tie) = if d.id.0 < e.id.0 { (&d, &e) } else { (&e, &d) };

    // Leases outlive the test, so no claimed job becomes runnable again.
    let claim = |at| JobClaim { lease_until: later(t, 3600), ..claim_at("w1", at) };
    let claimed = store.claim_job(&claim(t)).await.unwrap().expect("a job is runnable");
    let expected = Job {
        state: JobState::Running,
        lease_owner: Some("w1".into()),
        lease_expires_at: Some(later(t, 3600)),
        attempts: 1,
        started_at: Some(t),
        ..b.clone()
    };
    assert_eq!(claimed, expected);
    assert_eq!(reload(store, &b).await, expected);

    let id_of = |j: Option<Job>| j.map(|j| j.id);
    for want in [&c, first_tie, second_tie, &a] {
        assert_eq!(id_of(store.claim_job(&claim(t)).await.unwrap()), Some(want.id));
    }
    assert_eq!(store.claim_job(&claim(t)).await.unwrap(), None, "the future job is not runnable yet");
    let at_run_after = store.claim_job(&claim(later(t, 60))).await.unwrap();
    assert_eq!(id_of(at_run_after), Some(future.id), "runnable at its run_after");
}

/// A claim limited to some types skips the others, even older ones.
pub async fn claim_can_be_limited_to_types<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let t = now();
    let notify = Job { run_after: later(t, -20), ..job(&billing, JobType::Notify) };
    let gate = Job { run_after: later(t, -10), ..job(&billing, JobType::GateSubmit) };
    insert(store, [notify.clone(), gate.clone()]).await;

    let only = |types: Vec<JobType>| JobClaim { types: Some(types), ..claim_at("w1", t) };
    let got = store.claim_job(&only(vec![JobType::GateSubmit, JobType::GateDeploy])).await.unwrap();
    assert_eq!(got.map(|j| j.id), Some(gate.id));
    assert_eq!(store.claim_job(&only(vec![JobType::DriftCheck])).await.unwrap(), None);
    assert_eq!(store.claim_job(&only(vec![])).await.unwrap(), None, "an empty type list matches nothing");
    assert_eq!(claimed_id(store, "w1", t).await, Some(notify.id));
}

/// Nothing runnable — an empty store, only future, finished, canceled or
/// live-leased jobs — is `None`, and such a claim changes nothing.
pub async fn claim_returns_none_when_nothing_is_runnable<S: Store>(store: &S) {
    let t = now();
    assert_eq!(claimed_id(store, "w1", t).await, None, "empty store");

    let billing = one_app(store).await;
    let base = job(&billing, JobType::GateSubmit);
    let jobs = [
        Job { run_after: later(t, 1), ..job(&billing, JobType::GateSubmit) },
        Job { state: JobState::Succeeded, finished_at: Some(t), run_after: later(t, -9), ..base.clone() },
        Job {
            state: JobState::Failed,
            finished_at: Some(t),
            run_after: later(t, -9),
            ..job(&billing, JobType::Notify)
        },
        Job {
            state: JobState::Canceled,
            finished_at: Some(t),
            run_after: later(t, -9),
            ..job(&billing, JobType::Notify)
        },
        Job {
            state: JobState::Running,
            attempts: 1,
            lease_owner: Some("alive".into()),
            lease_expires_at: Some(later(t, 5)),
            started_at: Some(t),
            run_after: later(t, -9),
            ..job(&billing, JobType::GateDeploy)
        },
    ];
    insert(store, jobs.iter().cloned()).await;
    assert_eq!(claimed_id(store, "w1", t).await, None);
    for j in &jobs {
        assert_eq!(&reload(store, j).await, j, "an unsuccessful claim changes nothing");
    }
}

/// A running job whose lease expired (its worker died) is claimed again by
/// the next worker: a new attempt, the new owner, the first start kept. The
/// dead worker can then neither renew nor finish it.
pub async fn an_expired_lease_is_reclaimed<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let t = now();
    let orphan = Job {
        state: JobState::Running,
        attempts: 1,
        lease_owner: Some("dead".into()),
        lease_expires_at: Some(later(t, -1)),
        started_at: Some(later(t, -40)),
        run_after: later(t, -41),
        cancel_requested: true,
        ..job(&billing, JobType::GateSubmit)
    };
    let live = Job {
        lease_owner: Some("alive".into()),
        lease_expires_at: Some(later(t, 20)),
        run_after: later(t, -50),
        cancel_requested: false,
        ..orphan.clone()
    };
    let live = Job { id: job(&billing, JobType::GateSubmit).id, ..live };
    insert(store, [orphan.clone(), live.clone()]).await;

    let got = store.claim_job(&claim_at("w2", t)).await.unwrap().expect("the orphan is runnable");
    let expected =
        Job { attempts: 2, lease_owner: Some("w2".into()), lease_expires_at: Some(later(t, 30)), ..orphan.clone() };
    assert_eq!(got, expected, "new attempt and owner; started_at and the cancel flag are kept");
    assert_eq!(claimed_id(store, "w3", t).await, None, "a live lease is not taken");
    assert_eq!(reload(store, &live).await, live);

    assert_eq!(store.renew_job_lease(orphan.id, "dead", later(t, 60)).await.unwrap(), None);
    let late = Mutation::from(JobMutation::FinishJob(finish(&orphan, "dead", JobState::Succeeded, t)));
    super::assert_conflict(fixtures::commit(store, [late]).await, crate::ports::store::ConflictReason::LeaseLost);
    assert_eq!(reload(store, &orphan).await, expected);
}

/// 8 workers claim concurrently from 50 runnable jobs until none is left:
/// every job is claimed exactly once.
pub async fn concurrent_claimers_take_each_job_exactly_once<S: Store + 'static>(store: Arc<S>, spawn: Spawner) {
    const WORKERS: usize = 8;
    const JOBS: usize = 50;
    let billing = one_app(&*store).await;
    let t = now();
    let jobs: Vec<Job> =
        (0..JOBS).map(|i| Job { run_after: later(t, -(i as i64)), ..job(&billing, JobType::Notify) }).collect();
    insert(&*store, jobs.iter().cloned()).await;

    let claims: Arc<Mutex<Vec<(JobId, String)>>> = Arc::default();
    let handles: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (store, claims) = (Arc::clone(&store), Arc::clone(&claims));
            spawn(Box::pin(async move {
                let worker = format!("w{w}");
                while let Some(j) = store.claim_job(&claim_at(&worker, t)).await? {
                    assert_eq!(j.lease_owner.as_deref(), Some(worker.as_str()));
                    claims.lock().expect("claims lock").push((j.id, worker.clone()));
                }
                Ok(())
            }))
        })
        .collect();
    for handle in handles {
        handle.await.expect("every claimer runs to the end");
    }

    let claims = claims.lock().expect("claims lock").clone();
    let mut times: BTreeMap<JobId, usize> = BTreeMap::new();
    for (id, _) in &claims {
        *times.entry(*id).or_default() += 1;
    }
    assert_eq!(claims.len(), JOBS, "as many claims as jobs");
    assert!(times.values().all(|&n| n == 1), "a job was claimed twice: {times:?}");
    for j in &jobs {
        let stored = reload(&*store, j).await;
        let owner = claims.iter().find(|(id, _)| *id == j.id).map(|(_, w)| w.clone());
        assert_eq!((stored.state, stored.attempts, stored.lease_owner), (JobState::Running, 1, owner));
    }
}

/// The owner renews (the new expiry is stored) and learns of a cancel
/// request; another worker, or anyone after the job finished, gets `None`.
pub async fn renewal_extends_only_the_owners_lease<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let j = job(&billing, JobType::GateSubmit);
    insert(store, [j.clone()]).await;
    let t = now();
    claimed_id(store, "w1", t).await.expect("claimed");

    assert_eq!(store.renew_job_lease(j.id, "w1", later(t, 90)).await.unwrap(), Some(false));
    assert_eq!(reload(store, &j).await.lease_expires_at, Some(later(t, 90)));
    assert_eq!(store.renew_job_lease(j.id, "w2", later(t, 120)).await.unwrap(), None);
    assert_eq!(reload(store, &j).await.lease_expires_at, Some(later(t, 90)), "another worker changes nothing");

    setup(store, [Mutation::from(JobMutation::RequestJobCancel { id: j.id })]).await;
    assert_eq!(store.renew_job_lease(j.id, "w1", later(t, 100)).await.unwrap(), Some(true));

    setup(store, [Mutation::from(JobMutation::FinishJob(finish(&j, "w1", JobState::Canceled, t)))]).await;
    assert_eq!(store.renew_job_lease(j.id, "w1", later(t, 110)).await.unwrap(), None);
    assert_eq!(store.renew_job_lease(job(&billing, JobType::Notify).id, "w1", t).await.unwrap(), None);
}

/// The owner's `FinishJob` sets the terminal state, result, error and time,
/// and clears the lease; the job is then neither claimable nor finishable.
pub async fn finishing_by_the_owner_ends_the_attempt<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let t = now();
    let ok = Job { run_after: later(t, -2), ..job(&billing, JobType::GateSubmit) };
    let bad = Job { run_after: later(t, -1), ..job(&billing, JobType::GateSubmit) };
    insert(store, [ok.clone(), bad.clone()]).await;
    claimed_id(store, "w1", t).await.expect("claimed");
    claimed_id(store, "w2", t).await.expect("claimed");
    let running = reload(store, &ok).await;

    let result = serde_json::json!({ "exit_code": 0 });
    let done = JobFinish { result: Some(result.clone()), ..finish(&ok, "w1", JobState::Succeeded, later(t, 3)) };
    let lost = JobFinish {
        error: Some("exit status 2".into()),
        result: Some(serde_json::json!({ "exit_code": 2 })),
        ..finish(&bad, "w2", JobState::Failed, later(t, 4))
    };
    setup(store, [Mutation::from(JobMutation::FinishJob(done))]).await;
    setup(store, [Mutation::from(JobMutation::FinishJob(lost))]).await;

    let expected = Job {
        state: JobState::Succeeded,
        result: Some(result),
        finished_at: Some(later(t, 3)),
        lease_owner: None,
        lease_expires_at: None,
        ..running
    };
    assert_eq!(reload(store, &ok).await, expected);
    let failed = reload(store, &bad).await;
    assert_eq!(
        (failed.state, failed.error.as_deref(), failed.finished_at, failed.lease_owner, failed.lease_expires_at),
        (JobState::Failed, Some("exit status 2"), Some(later(t, 4)), None, None)
    );
    assert_eq!(claimed_id(store, "w3", later(t, 3600)).await, None, "finished jobs are never claimed");
    let again = Mutation::from(JobMutation::FinishJob(finish(&ok, "w1", JobState::Failed, t)));
    super::assert_conflict(fixtures::commit(store, [again]).await, crate::ports::store::ConflictReason::LeaseLost);
    assert_eq!(reload(store, &ok).await, expected);
}

/// A `FinishJob` by a worker that does not hold the lease is `conflict`,
/// and the effects committed with it — here an outbox message and the audit
/// entries — are not applied.
pub async fn finishing_without_the_lease_changes_nothing<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let j = job(&billing, JobType::Notify);
    insert(store, [j.clone()]).await;
    claimed_id(store, "w1", now()).await.expect("claimed");
    let running = reload(store, &j).await;
    let chain = fixtures::verified_chain(store, 50).await;

    let effect = outbox("ops", Some(billing.id));
    let unit = UnitOfWork::new()
        .record(
            JobMutation::FinishJob(finish(&j, "w2", JobState::Succeeded, now())),
            audit_entry("job.succeeded", "job", &j.id.to_string()),
        )
        .record(OutboxMutation::InsertOutbox(effect), audit_entry("outbox.queued", "outbox", "1"));
    super::assert_conflict(store.commit(unit).await, crate::ports::store::ConflictReason::LeaseLost);

    assert_eq!(reload(store, &j).await, running);
    assert_eq!(store.list_outbox(PageRequest::default()).await.unwrap().total, 0, "the effect is not applied");
    assert_eq!(fixtures::verified_chain(store, 50).await, chain, "no audit record is added");
}

/// `FinishJob` back to `queued` (a retry) clears the lease, keeps the job
/// unfinished with its error, and makes it claimable only from `run_after`.
pub async fn a_retry_is_claimable_only_after_run_after<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let j = job(&billing, JobType::GateSubmit);
    insert(store, [j.clone()]).await;
    let t = now();
    claimed_id(store, "w1", t).await.expect("claimed");

    let retry = JobFinish {
        error: Some("attempt timed out".into()),
        run_after: Some(later(t, 60)),
        ..finish(&j, "w1", JobState::Queued, t)
    };
    setup(store, [Mutation::from(JobMutation::FinishJob(retry))]).await;
    let queued = reload(store, &j).await;
    assert_eq!(
        (queued.state, queued.run_after, queued.finished_at, queued.lease_owner, queued.lease_expires_at),
        (JobState::Queued, later(t, 60), None, None, None)
    );
    assert_eq!((queued.attempts, queued.error.as_deref()), (1, Some("attempt timed out")));

    assert_eq!(claimed_id(store, "w1", later(t, 59)).await, None, "not before run_after");
    let again = store.claim_job(&claim_at("w2", later(t, 60))).await.unwrap().expect("runnable at run_after");
    assert_eq!((again.id, again.attempts, again.started_at), (j.id, 2, Some(t)), "first start kept");
}

/// `CancelQueuedJob` cancels a queued job at once; a running or finished
/// job is `conflict` and stays as it was.
pub async fn cancelling_applies_only_to_queued_jobs<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let (queued, running) = (job(&billing, JobType::GateSubmit), job(&billing, JobType::GateSubmit));
    let t = now();
    insert(store, [Job { run_after: later(t, -1), ..running.clone() }]).await;
    claimed_id(store, "w1", t).await.expect("claimed");
    insert(store, [queued.clone()]).await;

    setup(store, [Mutation::from(JobMutation::CancelQueuedJob { id: queued.id, at: later(t, 1) })]).await;
    let canceled = Job { state: JobState::Canceled, finished_at: Some(later(t, 1)), ..queued.clone() };
    assert_eq!(reload(store, &queued).await, canceled);
    assert_eq!(claimed_id(store, "w2", later(t, 1)).await, None, "a canceled job is not claimed");

    let before = reload(store, &running).await;
    for id in [running.id, queued.id] {
        let again = Mutation::from(JobMutation::CancelQueuedJob { id, at: later(t, 2) });
        super::assert_conflict(fixtures::commit(store, [again]).await, crate::ports::store::ConflictReason::NotQueued);
    }
    assert_eq!(reload(store, &running).await, before);
    assert_eq!(reload(store, &queued).await, canceled);
}

/// `RequestJobCancel` flags a running job (which keeps running, lease and
/// all); a queued or finished job is `conflict`.
pub async fn a_cancel_request_flags_a_running_job<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let (running, queued) = (job(&billing, JobType::GateSubmit), job(&billing, JobType::GateSubmit));
    let t = now();
    insert(store, [Job { run_after: later(t, -1), ..running.clone() }]).await;
    claimed_id(store, "w1", t).await.expect("claimed");
    insert(store, [Job { run_after: later(t, 60), ..queued.clone() }]).await;
    let before = reload(store, &running).await;

    setup(store, [Mutation::from(JobMutation::RequestJobCancel { id: running.id })]).await;
    assert_eq!(reload(store, &running).await, Job { cancel_requested: true, ..before.clone() });
    setup(store, [Mutation::from(JobMutation::RequestJobCancel { id: running.id })]).await;
    assert!(reload(store, &running).await.cancel_requested, "asking twice is harmless");

    assert_code(
        fixtures::commit(store, [Mutation::from(JobMutation::RequestJobCancel { id: queued.id })]).await,
        ErrorCode::Conflict,
    );
    assert!(!reload(store, &queued).await.cancel_requested);
    setup(store, [Mutation::from(JobMutation::FinishJob(finish(&running, "w1", JobState::Canceled, t)))]).await;
    assert_code(
        fixtures::commit(store, [Mutation::from(JobMutation::RequestJobCancel { id: running.id })]).await,
        ErrorCode::Conflict,
    );
}

/// "A requested cancel wins": once a running job's cancel was requested,
/// its owner's `FinishJob` with any state but `canceled` is `conflict`
/// `cancel_requested` and changes nothing (its unit rolls back whole);
/// `canceled` applies. `jobs_to_cancel` answers exactly the asked-about
/// jobs that run with a cancel requested.
pub async fn a_requested_cancel_wins_over_any_other_end<S: Store>(store: &S) {
    use crate::ports::store::ConflictReason;
    let billing = one_app(store).await;
    let t = now();
    let (asked, other, queued) =
        (job(&billing, JobType::GateSubmit), job(&billing, JobType::GateSubmit), job(&billing, JobType::GateSubmit));
    insert(store, [Job { run_after: later(t, -2), ..asked.clone() }, Job { run_after: later(t, -1), ..other.clone() }])
        .await;
    assert_eq!(claimed_id(store, "w1", t).await, Some(asked.id));
    assert_eq!(claimed_id(store, "w2", t).await, Some(other.id));
    insert(store, [Job { run_after: later(t, 60), ..queued.clone() }]).await;
    let unknown = JobId(uuid::Uuid::now_v7());
    assert_eq!(store.jobs_to_cancel(&[asked.id, other.id, queued.id, unknown]).await.unwrap(), Vec::<JobId>::new());

    setup(store, [Mutation::from(JobMutation::RequestJobCancel { id: asked.id })]).await;
    assert_eq!(store.jobs_to_cancel(&[asked.id, other.id, queued.id, unknown]).await.unwrap(), vec![asked.id]);
    assert_eq!(store.jobs_to_cancel(&[other.id]).await.unwrap(), Vec::<JobId>::new());
    let before = reload(store, &asked).await;
    for state in [JobState::Succeeded, JobState::Failed, JobState::Queued] {
        let end =
            JobFinish { run_after: (state == JobState::Queued).then(|| later(t, 5)), ..finish(&asked, "w1", state, t) };
        let unit = UnitOfWork::new()
            .record(JobMutation::FinishJob(end), audit_entry("job.finished", "job", &asked.id.to_string()))
            .record(
                OutboxMutation::InsertOutbox(outbox("ops", Some(billing.id))),
                audit_entry("outbox.queued", "outbox", "1"),
            );
        super::assert_conflict(store.commit(unit).await, ConflictReason::CancelRequested);
        assert_eq!(reload(store, &asked).await, before, "{state:?} changed nothing");
    }
    assert_eq!(store.list_outbox(PageRequest::default()).await.unwrap().total, 0, "the units rolled back");
    // Not the owner: the lease is what refuses it, cancel or not.
    super::assert_conflict(
        fixtures::commit(store, [Mutation::from(JobMutation::FinishJob(finish(&asked, "w2", JobState::Canceled, t)))])
            .await,
        ConflictReason::LeaseLost,
    );
    setup(store, [Mutation::from(JobMutation::FinishJob(finish(&asked, "w1", JobState::Canceled, t)))]).await;
    assert_eq!(reload(store, &asked).await.state, JobState::Canceled);
    assert_eq!(store.jobs_to_cancel(&[asked.id]).await.unwrap(), Vec::<JobId>::new(), "no longer running");
    // The other job, never asked to cancel, ends as its worker says.
    setup(store, [Mutation::from(JobMutation::FinishJob(finish(&other, "w2", JobState::Succeeded, t)))]).await;
    assert_eq!(reload(store, &other).await.state, JobState::Succeeded);
}

/// `ReleaseJob` by the owner puts the job back in the queue without using
/// up its attempt; by anyone else it is `conflict`.
pub async fn a_released_job_is_queued_again_without_using_an_attempt<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let j = Job { run_after: later(now(), -1), ..job(&billing, JobType::GateSubmit) };
    insert(store, [j.clone()]).await;
    let t = now();
    claimed_id(store, "w1", t).await.expect("claimed");
    let running = reload(store, &j).await;

    let by_other = Mutation::from(JobMutation::ReleaseJob { id: j.id, worker: "w2".into() });
    super::assert_conflict(fixtures::commit(store, [by_other]).await, crate::ports::store::ConflictReason::LeaseLost);
    assert_eq!(reload(store, &j).await, running);

    setup(store, [Mutation::from(JobMutation::ReleaseJob { id: j.id, worker: "w1".into() })]).await;
    let released = reload(store, &j).await;
    assert_eq!(
        released,
        Job { state: JobState::Queued, attempts: 0, lease_owner: None, lease_expires_at: None, ..running }
    );
    let again = store.claim_job(&claim_at("w2", t)).await.unwrap().expect("runnable again");
    assert_eq!((again.id, again.attempts, again.lease_owner.as_deref()), (j.id, 1, Some("w2")));
    let stale = Mutation::from(JobMutation::ReleaseJob { id: j.id, worker: "w1".into() });
    super::assert_conflict(fixtures::commit(store, [stale]).await, crate::ports::store::ConflictReason::LeaseLost);
}

/// Changing or appending to a job that does not exist is `not_found`.
pub async fn job_mutations_of_an_unknown_id_are_not_found<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let ghost = job(&billing, JobType::Notify);
    let t = now();
    for m in [
        Mutation::from(JobMutation::FinishJob(finish(&ghost, "w1", JobState::Succeeded, t))),
        Mutation::from(JobMutation::CancelQueuedJob { id: ghost.id, at: t }),
        Mutation::from(JobMutation::RequestJobCancel { id: ghost.id }),
        Mutation::from(JobMutation::ReleaseJob { id: ghost.id, worker: "w1".into() }),
    ] {
        assert_code(fixtures::commit(store, [m]).await, ErrorCode::NotFound);
    }
    assert_code(store.append_job_log(ghost.id, &LogAppend::plan(lines(0, 1, 10), 1024)).await, ErrorCode::NotFound);
    assert_code(store.job_log(ghost.id, 0, 10).await, ErrorCode::NotFound);
}

/// `count` lines of exactly `len` bytes, numbered from `first`, alternating
/// streams.
fn lines(first: usize, count: usize, len: usize) -> Vec<NewLogLine> {
    let at = now();
    let streams = [LogStream::Stdout, LogStream::Stderr, LogStream::System];
    (first..first + count)
        .map(|i| {
            let mut text = format!("line {i} ");
            text.push_str(&"x".repeat(len.saturating_sub(text.len())));
            NewLogLine { at: later(at, i as i64), stream: streams[i % 3], text }
        })
        .collect()
}

/// Every stored line of `id`, in pages of `page`.
async fn whole_log<S: Store + ?Sized>(store: &S, id: JobId, page: u32) -> (Vec<crate::domain::job::JobLogLine>, bool) {
    let (mut after, mut all) = (0, Vec::new());
    loop {
        let got = store.job_log(id, after, page).await.expect("job_log reads");
        assert!(got.lines.len() <= page as usize, "job_log returned more than its limit");
        match got.lines.last() {
            None => return (all, got.truncated),
            Some(last) => after = last.seq,
        }
        all.extend(got.lines);
    }
}

/// Lines are numbered from 1 per job across appends, read back exactly,
/// and followed with `after`.
pub async fn log_lines_are_numbered_per_job_and_followed_with_after<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let (j, other) = (job(&billing, JobType::GateSubmit), job(&billing, JobType::GateSubmit));
    insert(store, [j.clone(), other.clone()]).await;
    let empty = store.job_log(j.id, 0, 10).await.unwrap();
    assert_eq!((empty.lines, empty.truncated), (vec![], false));

    let (first, second) = (lines(0, 3, 20), lines(3, 2, 30));
    store.append_job_log(j.id, &LogAppend::plan(first.clone(), 1024)).await.unwrap();
    store.append_job_log(other.id, &LogAppend::plan(lines(0, 1, 5), 1024)).await.unwrap();
    store.append_job_log(j.id, &LogAppend::plan(second.clone(), 1024)).await.unwrap();
    store.append_job_log(j.id, &LogAppend::plan(Vec::new(), 1024)).await.unwrap();

    let page = store.job_log(j.id, 0, 100).await.unwrap();
    assert!(!page.truncated);
    let expected: Vec<_> = first
        .iter()
        .chain(&second)
        .zip(1..)
        .map(|(l, seq)| crate::domain::job::JobLogLine { seq, at: l.at, stream: l.stream, text: l.text.clone() })
        .collect();
    assert_eq!(page.lines, expected);
    assert_eq!(store.job_log(j.id, 2, 2).await.unwrap().lines, expected[2..4].to_vec());
    assert_eq!(store.job_log(j.id, 4, 100).await.unwrap().lines, expected[4..].to_vec());
    assert_eq!(store.job_log(j.id, 5, 100).await.unwrap().lines, vec![]);
    let others = store.job_log(other.id, 0, 100).await.unwrap().lines;
    assert_eq!(others.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![1], "numbering is per job");
}

/// Three appends of 400 KiB under a 1 MiB bound: the stored log stays
/// within the bound, the oldest lines go, the newest are all kept (the
/// longest tail that fits), numbering continues, and truncation is marked.
pub async fn the_log_keeps_its_newest_tail_within_the_bound<S: Store>(store: &S) {
    const LIMIT: u64 = 1024 * 1024;
    const LINE: usize = 4096;
    const PER_APPEND: usize = 100; // 400 KiB
    let billing = one_app(store).await;
    let j = job(&billing, JobType::GateSubmit);
    insert(store, [j.clone()]).await;

    for batch in 0..3 {
        store.append_job_log(j.id, &LogAppend::plan(lines(batch * PER_APPEND, PER_APPEND, LINE), LIMIT)).await.unwrap();
        let (log, truncated) = whole_log(store, j.id, 97).await;
        assert_eq!(truncated, batch == 2, "truncated only once something was dropped (after append {batch})");
        assert_eq!(log.last().map(|l| l.seq), Some(((batch + 1) * PER_APPEND) as i64));
    }
    let (log, truncated) = whole_log(store, j.id, 1000).await;
    assert!(truncated);
    let total: usize = log.iter().map(|l| l.text.len()).sum();
    assert!(total as u64 <= LIMIT, "stored {total} bytes over a bound of {LIMIT}");
    assert!(total as u64 + LINE as u64 > LIMIT, "the longest tail that fits is kept ({total} bytes)");
    let kept = (LIMIT as usize) / LINE;
    let seqs: Vec<i64> = log.iter().map(|l| l.seq).collect();
    let newest: Vec<i64> = ((3 * PER_APPEND - kept + 1) as i64..=(3 * PER_APPEND) as i64).collect();
    assert_eq!(seqs, newest, "the newest lines, contiguous");
    assert_eq!(log.last().map(|l| l.text.clone()), lines(3 * PER_APPEND - 1, 1, LINE).pop().map(|l| l.text));

    // Following from an old position reads the kept tail.
    let after_dropped = store.job_log(j.id, 1, 1).await.unwrap();
    assert_eq!(after_dropped.lines.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![newest[0]]);
    assert!(after_dropped.truncated);
}

/// One append larger than the bound keeps only its own newest lines.
pub async fn one_oversized_append_keeps_only_its_tail<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let j = job(&billing, JobType::GateSubmit);
    insert(store, [j.clone()]).await;
    store.append_job_log(j.id, &LogAppend::plan(lines(0, 5, 100), 1000)).await.unwrap();
    store.append_job_log(j.id, &LogAppend::plan(lines(5, 30, 100), 1000)).await.unwrap();

    let (log, truncated) = whole_log(store, j.id, 100).await;
    assert!(truncated);
    assert_eq!(log.iter().map(|l| l.seq).collect::<Vec<_>>(), (26..=35).collect::<Vec<i64>>());
    store.append_job_log(j.id, &LogAppend::plan(lines(35, 1, 10), 1000)).await.unwrap();
    let (log, _) = whole_log(store, j.id, 100).await;
    assert_eq!(log.iter().map(|l| l.seq).collect::<Vec<_>>(), (27..=36).collect::<Vec<i64>>());
}

/// `AppendJobLog` in a unit appends exactly as `append_job_log` does —
/// numbering continued, the bound kept — together with the unit's other
/// changes: a worker's last lines and its `FinishJob` land together, and a
/// unit refused by its `FinishJob` (the lease is gone) appends nothing; an
/// unknown job is `not_found`.
pub async fn a_unit_appends_log_lines_with_its_other_changes<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let j = job(&billing, JobType::GateSubmit);
    insert(store, [j.clone()]).await;
    let t = now();
    let running = store.claim_job(&claim_at("w1", t)).await.unwrap().expect("claimed");
    store.append_job_log(j.id, &LogAppend::plan(lines(0, 2, 10), 1000)).await.unwrap();
    let append = |from: usize, count: usize, size: usize| {
        Mutation::from(JobMutation::AppendJobLog { id: j.id, append: LogAppend::plan(lines(from, count, size), 1000) })
    };

    // Refused by the FinishJob of a worker that does not hold the lease.
    let refused = fixtures::commit(
        store,
        [append(2, 3, 10), Mutation::from(JobMutation::FinishJob(finish(&j, "w2", JobState::Succeeded, t)))],
    )
    .await;
    super::assert_conflict(refused, crate::ports::store::ConflictReason::LeaseLost);
    let (log, _) = whole_log(store, j.id, 100).await;
    assert_eq!(log.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2]);

    // By the owner: lines and the job's end together; then past the bound.
    fixtures::commit(
        store,
        [Mutation::from(JobMutation::FinishJob(finish(&j, "w1", JobState::Succeeded, t))), append(2, 3, 10)],
    )
    .await
    .expect("the owner ends the attempt with its last lines");
    let stored = store.job(billing.id, j.id).await.unwrap().expect("job");
    assert_eq!((stored.state, running.attempts), (JobState::Succeeded, 1));
    let (log, truncated) = whole_log(store, j.id, 100).await;
    assert_eq!(log.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(log[2].text, lines(2, 1, 10)[0].text);
    assert!(!truncated);
    fixtures::commit(store, [append(5, 20, 100)]).await.expect("an append past the bound");
    let (log, truncated) = whole_log(store, j.id, 100).await;
    assert!(truncated);
    assert_eq!(log.iter().map(|l| l.seq).collect::<Vec<_>>(), (16..=25).collect::<Vec<i64>>());

    let unknown = Mutation::from(JobMutation::AppendJobLog {
        id: JobId(uuid::Uuid::now_v7()),
        append: LogAppend::plan(lines(0, 1, 5), 1000),
    });
    assert_code(fixtures::commit(store, [unknown]).await, ErrorCode::NotFound);
}

/// A claim leaves the job's log alone — the core opens the attempt's log
/// itself, with its own text — and a reclaim after the lease expired
/// neither: the lines already there stay as they were.
pub async fn a_claim_leaves_the_log_alone<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let (j, quiet) = (job(&billing, JobType::GateSubmit), job(&billing, JobType::GateSubmit));
    let quiet = Job { run_after: later(j.run_after, 1), ..quiet };
    insert(store, [j.clone(), quiet.clone()]).await;
    store.append_job_log(j.id, &LogAppend::plan(lines(0, 2, 10), 1000)).await.unwrap();
    let before = whole_log(store, j.id, 100).await;
    let t = now();
    assert_eq!(claimed_id(store, "w-1", t).await, Some(j.id));
    assert_eq!(whole_log(store, j.id, 100).await, before);
    // The worker dies; the next claim after its lease takes it again.
    let after_lease = later(t, 31);
    let second = store.claim_job(&claim_at("w-2", after_lease)).await.unwrap().expect("reclaimed");
    assert_eq!((second.id, second.attempts), (j.id, 2));
    assert_eq!(whole_log(store, j.id, 100).await, before);
    assert_eq!(claimed_id(store, "w-3", after_lease).await, Some(quiet.id));
    assert_eq!(whole_log(store, quiet.id, 100).await, (vec![], false));
    // Numbering goes on after the lines already there.
    store.append_job_log(j.id, &LogAppend::plan(lines(2, 1, 10), 1000)).await.unwrap();
    assert_eq!(whole_log(store, j.id, 100).await.0.last().map(|l| l.seq), Some(3));
}

/// A batch whose own oldest lines could never fit is stored as planned:
/// the skipped lines use up their numbers, the log is marked truncated even
/// though no stored line was dropped, and an append of nothing but skipped
/// lines stores nothing and still moves the numbering.
pub async fn skipped_lines_use_up_their_numbers_and_mark_the_log_truncated<S: Store>(store: &S) {
    let billing = one_app(store).await;
    let j = job(&billing, JobType::GateSubmit);
    insert(store, [j.clone()]).await;
    store.append_job_log(j.id, &LogAppend::plan(lines(0, 3, 100), 250)).await.unwrap();
    let (log, truncated) = whole_log(store, j.id, 100).await;
    assert_eq!((log.iter().map(|l| l.seq).collect::<Vec<_>>(), truncated), (vec![2, 3], true));
    store.append_job_log(j.id, &LogAppend::plan(lines(3, 2, 10), 0)).await.unwrap();
    let (log, _) = whole_log(store, j.id, 100).await;
    assert_eq!(log.iter().map(|l| l.seq).collect::<Vec<_>>(), Vec::<i64>::new(), "a bound of 0 keeps nothing");
    store.append_job_log(j.id, &LogAppend::plan(lines(5, 1, 10), 250)).await.unwrap();
    let (log, truncated) = whole_log(store, j.id, 100).await;
    assert_eq!((log.iter().map(|l| l.seq).collect::<Vec<_>>(), truncated), (vec![6], true));
}

/// Counts per (type, state) over every app; zero rows are left out.
pub async fn job_counts_group_by_type_and_state<S: Store>(store: &S) {
    assert_eq!(store.job_counts().await.unwrap(), vec![]);
    let (billing, search) = two_apps(store).await;
    let t = now();
    let make = |a: &App, job_type, state: JobState| Job {
        state,
        finished_at: state.is_terminal().then_some(t),
        ..job(a, job_type)
    };
    insert(
        store,
        [
            make(&billing, JobType::GateSubmit, JobState::Queued),
            make(&search, JobType::GateSubmit, JobState::Queued),
            make(&billing, JobType::GateSubmit, JobState::Succeeded),
            make(&billing, JobType::Notify, JobState::Failed),
            make(&search, JobType::Notify, JobState::Failed),
            make(&search, JobType::Notify, JobState::Failed),
        ],
    )
    .await;
    let mut counts = store.job_counts().await.unwrap();
    counts.sort_by_key(|(job_type, state, _)| (job_type.as_str(), state.as_str()));
    assert_eq!(
        counts,
        vec![
            (JobType::GateSubmit, JobState::Queued, 2),
            (JobType::GateSubmit, JobState::Succeeded, 1),
            (JobType::Notify, JobState::Failed, 3),
        ]
    );
}
