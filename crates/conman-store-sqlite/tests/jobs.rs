//! SQLite-specific job behaviour beyond the shared conformance suite:
//! claims through several stores on one file (as several processes would),
//! a claim among tens of thousands of finished jobs, and a schema-1
//! database upgraded in place.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use conman_core::conformance::fixtures::{app, job, later, now, setup, user};
use conman_core::domain::app::App;
use conman_core::domain::format_timestamp;
use conman_core::domain::job::{Job, JobState, JobType};
use conman_core::domain::user::User;
use conman_core::ports::store::{
    AppMutation, AppStore, JobClaim, JobMutation, JobStore, Mutation, Store, Unaudited, UnitOfWork, UserMutation,
};
use conman_core::Error;
use conman_store_sqlite::{SqliteStore, SCHEMA_VERSION};
use rusqlite::{params, Connection};
use tempfile::TempDir;

fn db_path() -> (PathBuf, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    (dir.path().join("conman.db"), dir)
}

fn claim(worker: &str) -> JobClaim {
    let at = now();
    JobClaim { worker: worker.into(), now: at, lease_until: later(at, 30), types: None }
}

/// Inserts a user and an app and returns the app.
async fn an_app<S: Store>(store: &S) -> App {
    let ada = user("ada");
    let billing = app("billing", &ada);
    setup(
        store,
        [Mutation::from(UserMutation::InsertUser(ada)), Mutation::from(AppMutation::InsertApp(billing.clone()))],
    )
    .await;
    billing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimers_on_separate_connections_never_share_a_job() {
    let (path, _dir) = db_path();
    // Separate stores have separate writer connections, like separate
    // worker processes on one installation.
    let stores: Vec<SqliteStore> = (0..3).map(|_| SqliteStore::open(&path).unwrap()).collect();
    let billing = an_app(&stores[0]).await;
    let t = now();
    let jobs: Vec<Job> = (0..60).map(|i| Job { run_after: later(t, -i), ..job(&billing, JobType::Notify) }).collect();
    setup(&stores[0], jobs.iter().cloned().map(JobMutation::InsertJob)).await;

    let tasks: Vec<_> = (0..9)
        .map(|w| {
            let store = stores[w % 3].clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(j) = store.claim_job(&claim(&format!("w{w}"))).await? {
                    mine.push(j.id);
                }
                Ok::<_, Error>(mine)
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap().unwrap());
    }
    let distinct: BTreeSet<_> = claimed.iter().copied().collect();
    assert_eq!((claimed.len(), distinct.len()), (60, 60), "every job claimed exactly once");
}

#[tokio::test]
async fn a_claim_stays_fast_among_many_finished_jobs() {
    const FINISHED: usize = 30_000;
    const ROUNDS: u32 = 20;
    let (path, _dir) = db_path();
    let store = SqliteStore::open(&path).unwrap();
    let billing = an_app(&store).await;
    let t = now();
    for chunk in 0..FINISHED / 1000 {
        let done = (0..1000).map(|i| Job {
            state: JobState::Succeeded,
            run_after: later(t, -((chunk * 1000 + i) as i64) - 100),
            finished_at: Some(t),
            ..job(&billing, JobType::GateSubmit)
        });
        store
            .commit(done.map(JobMutation::InsertJob).fold(UnitOfWork::new(), |u, m| u.unaudited(m, Unaudited::Fixture)))
            .await
            .unwrap();
    }
    let wanted = job(&billing, JobType::GateSubmit);
    setup(&store, [Mutation::from(JobMutation::InsertJob(wanted.clone()))]).await;

    // One full pass over the table, as a yardstick measured under the
    // same load: a claim must cost less than reading every job.
    let conn = Connection::open(&path).unwrap();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let scanned: i64 = conn.query_row("SELECT COUNT(*) FROM jobs WHERE error IS NULL", [], |r| r.get(0)).unwrap();
        assert_eq!(scanned, FINISHED as i64 + 1);
    }
    let scan = started.elapsed() / ROUNDS;

    let started = Instant::now();
    for _ in 0..ROUNDS {
        assert_eq!(store.claim_job(&claim("w")).await.unwrap().map(|j| j.id), Some(wanted.id));
        setup(&store, [Mutation::from(JobMutation::ReleaseJob { id: wanted.id, worker: "w".into() })]).await;
    }
    let claim_and_release = started.elapsed() / ROUNDS;
    assert!(claim_and_release < scan, "claim + release took {claim_and_release:?}, a table scan {scan:?}");
}

/// Creates a schema-1 database (as the previous release left it) at
/// `path`, holding `billing` and its creator.
fn schema_one(path: &Path, ada: &User, billing: &App) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(include_str!("../migrations/0001_initial.sql")).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL,
            applied_at TEXT NOT NULL) STRICT;
         INSERT INTO schema_migrations VALUES (1, 'initial', '2024-01-01T00:00:00.000000Z');",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, 0, 1, ?6, ?6, 1)",
        params![
            ada.id.to_string(),
            ada.email.as_str(),
            ada.name,
            ada.handle.as_str(),
            ada.password_hash,
            format_timestamp(&ada.created_at)
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO apps VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)",
        params![
            billing.id.to_string(),
            billing.name,
            serde_json::to_string(&billing.settings).unwrap(),
            ada.id.to_string(),
            format_timestamp(&billing.created_at)
        ],
    )
    .unwrap();
}

#[tokio::test]
async fn a_schema_one_database_is_upgraded_in_place() {
    let (path, _dir) = db_path();
    let ada = user("ada");
    let billing = app("billing", &ada);
    schema_one(&path, &ada, &billing);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.app(billing.id).await.unwrap(), Some(billing.clone()), "existing rows survive");
    let j = job(&billing, JobType::GateSubmit);
    setup(&store, [Mutation::from(JobMutation::InsertJob(j.clone()))]).await;
    assert_eq!(store.job(billing.id, j.id).await.unwrap(), Some(j));
    let versions: Vec<i64> = {
        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn.prepare("SELECT version FROM schema_migrations ORDER BY version").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
}
