//! Job wake-ups over `LISTEN/NOTIFY`: which committed units notify (a new
//! job, a retry back in the queue, a release — not a finished job, not a
//! unit without jobs, never a rolled-back unit), that a schema's listener
//! hears only its own schema, and that a listener whose connection is killed
//! reconnects by itself and hears the next job. Each listener reports into a
//! channel; it also reports once per (re)connection, which is how the tests
//! know it is listening.

mod common;

use std::time::Duration;

use conman_core::conformance::fixtures::{self, setup, user};
use conman_core::domain::job::{JobState, JobType};
use conman_core::ports::store::{
    AppMutation, JobClaim, JobFinish, JobMutation, JobStore as _, Mutation, Store as _, Unaudited, UnitOfWork,
    UserMutation,
};
use conman_store_pg::{JobListener, PgStore};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::timeout;

/// A listener on `store` and the receiver of its calls back.
fn listen(store: &PgStore) -> (JobListener, UnboundedReceiver<()>) {
    let (tx, rx) = unbounded_channel();
    let listener = store.listen_for_jobs(move || {
        let _ = tx.send(());
    });
    (listener, rx)
}

/// Waits for the next call back (a notification or a connection).
async fn heard(rx: &mut UnboundedReceiver<()>, what: &str) {
    timeout(Duration::from_secs(10), rx.recv()).await.unwrap_or_else(|_| panic!("not heard in 10 s: {what}"));
}

/// Asserts nothing is heard for a while.
async fn silent(rx: &mut UnboundedReceiver<()>, what: &str) {
    if let Ok(Some(())) = timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("heard a notification: {what}");
    }
}

/// A store with one app, its listener (already listening) and the app.
async fn listening(store: &PgStore) -> (JobListener, UnboundedReceiver<()>, conman_core::domain::app::App) {
    let creator = user("ada");
    let app = fixtures::app("billing", &creator);
    setup(
        store,
        [Mutation::from(UserMutation::InsertUser(creator)), Mutation::from(AppMutation::InsertApp(app.clone()))],
    )
    .await;
    let (listener, mut rx) = listen(store);
    heard(&mut rx, "the first connection").await;
    (listener, rx, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_that_make_a_job_runnable_notify_at_commit_and_only_then() {
    let Some((store, _scratch)) = common::fresh_store().await else { return };
    let (_listener, mut rx, app) = listening(&store).await;

    let job = fixtures::job(&app, JobType::Notify);
    setup(&store, [Mutation::from(JobMutation::InsertJob(job.clone()))]).await;
    heard(&mut rx, "a new job").await;

    // Refused: the same id again. Rolled back, so nothing is sent.
    let again = fixtures::commit(&store, [Mutation::from(JobMutation::InsertJob(job.clone()))]).await;
    assert!(again.is_err());
    silent(&mut rx, "a rolled-back insert").await;
    setup(&store, [Mutation::from(UserMutation::InsertUser(user("bob")))]).await;
    silent(&mut rx, "a unit without jobs").await;

    let claim = |worker: &str| JobClaim {
        worker: worker.to_owned(),
        now: fixtures::now(),
        lease_until: fixtures::later(fixtures::now(), 60),
        types: None,
    };
    let finish = |state: JobState| JobFinish {
        id: job.id,
        worker: "w1".into(),
        state,
        result: None,
        error: None,
        run_after: None,
        finished_at: state.is_terminal().then(fixtures::now),
    };
    assert!(store.claim_job(&claim("w1")).await.unwrap().is_some());
    silent(&mut rx, "a claim").await;
    store
        .commit(
            UnitOfWork::new()
                .unaudited(Mutation::from(JobMutation::FinishJob(finish(JobState::Queued))), Unaudited::Fixture),
        )
        .await
        .unwrap();
    heard(&mut rx, "a retry back in the queue").await;

    assert!(store.claim_job(&claim("w1")).await.unwrap().is_some());
    let release = Mutation::from(JobMutation::ReleaseJob { id: job.id, worker: "w1".into() });
    store.commit(UnitOfWork::new().unaudited(release, Unaudited::Fixture)).await.unwrap();
    heard(&mut rx, "a job released at shutdown").await;

    assert!(store.claim_job(&claim("w1")).await.unwrap().is_some());
    store
        .commit(
            UnitOfWork::new()
                .unaudited(Mutation::from(JobMutation::FinishJob(finish(JobState::Succeeded))), Unaudited::Fixture),
        )
        .await
        .unwrap();
    silent(&mut rx, "a job that succeeded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_hears_its_own_schema_only() {
    let Some((left, _left_scratch)) = common::fresh_store().await else { return };
    let Some((right, _right_scratch)) = common::fresh_store().await else { return };
    assert_ne!(left.job_channel(), right.job_channel());
    let (_left_listener, mut left_rx, left_app) = listening(&left).await;
    let (_right_listener, mut right_rx, _) = listening(&right).await;

    setup(&left, [Mutation::from(JobMutation::InsertJob(fixtures::job(&left_app, JobType::Notify)))]).await;
    heard(&mut left_rx, "a job in the listener's schema").await;
    silent(&mut right_rx, "a job in another schema").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_connection_is_killed_reconnects_and_hears_the_next_job() {
    let Some((store, scratch)) = common::fresh_store().await else { return };
    let (_listener, mut rx, app) = listening(&store).await;

    let mut admin = scratch.raw().await;
    let killed: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(format!("conman/{}/listener", scratch.schema()))
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert_eq!(killed, vec![true], "one listener connection was there to kill");

    heard(&mut rx, "the reconnection").await;
    setup(&store, [Mutation::from(JobMutation::InsertJob(fixtures::job(&app, JobType::Notify)))]).await;
    heard(&mut rx, "a job after the reconnection").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_listener_closes_its_connection() {
    let Some((store, scratch)) = common::fresh_store().await else { return };
    let (listener, _rx, _) = listening(&store).await;
    drop(listener);

    let mut admin = scratch.raw().await;
    let name = format!("conman/{}/listener", scratch.schema());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the listener's connection is still open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
