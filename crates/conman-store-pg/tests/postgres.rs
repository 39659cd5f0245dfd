//! Postgres-specific behaviour beyond the shared conformance suite: the
//! append-only triggers, one audit chain and exclusive claims across several
//! pools (as several processes would hold), job-log appends racing on one
//! job from two pools, migrations across reconnects,
//! refusal of a newer schema, schema isolation, and the error mapping of
//! constraints the suite does not reach. Raw SQL goes through a plain
//! connection on the test's scratch schema.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use conman_core::conformance::fixtures::{self, setup, user, user_created, verified_chain};
use conman_core::domain::job::{Job, JobState, JobType};
use conman_core::domain::user::CredentialKind;
use conman_core::ids::JobId;
use conman_core::ports::store::{
    AppMutation, JobClaim, JobMutation, JobStore, Mutation, PageRequest, Store, Unaudited, UnitOfWork, UserMutation,
    UserStore,
};
use conman_core::ErrorCode;
use conman_store_pg::{PgStore, SCHEMA_VERSION};
use sqlx::Row as _;

#[tokio::test]
async fn the_audit_log_refuses_update_delete_and_truncate() {
    let Some((store, scratch)) = common::fresh_store().await else { return };
    let ada = user("ada");
    store
        .commit(UnitOfWork::new().record(Mutation::from(UserMutation::InsertUser(ada.clone())), user_created(&ada)))
        .await
        .unwrap();
    let before = verified_chain(&store, 10).await;

    let mut conn = scratch.raw().await;
    for sql in [
        "UPDATE audit SET action = 'forged'",
        "UPDATE audit SET hash = 'x' WHERE seq = 1",
        "DELETE FROM audit",
        "TRUNCATE audit",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(verified_chain(&store, 10).await, before);
}

/// The database chains a unit's records itself (SHA-256 in SQL over the
/// content the core staged): content that stresses the canonical JSON — escapes,
/// non-ASCII, nested values, nulls, a tenth-of-a-second timestamp — chains
/// exactly as the core's verifier walks it, however many records a unit has.
#[tokio::test]
async fn records_chained_in_the_database_verify_with_the_core() {
    use conman_core::domain::audit::RequestContext;
    let Some((store, _scratch)) = common::fresh_store().await else { return };
    let ada = user("ada");
    let mut unit = UnitOfWork::new().record(Mutation::from(UserMutation::InsertUser(ada.clone())), user_created(&ada));
    for (i, text) in
        ["plain", "quote \" backslash \\ tab \t newline \n", "ünïcode ✓ 😀", "\u{7f}\u{1}", ""].into_iter().enumerate()
    {
        let mut e = fixtures::audit_entry("probe.hashed", "probe", &format!("{i}-{text}"));
        e.occurred_at = chrono::DateTime::from_timestamp(1_900_000_000 + i as i64, 100_000_000).expect("valid");
        e.actor_id = Some(ada.id);
        e.before = (i % 2 == 0).then(|| serde_json::json!({ "text": text, "n": [1, 2.5, null], "z": { "a": true } }));
        e.after = Some(serde_json::json!(text));
        e.git_sha = (i == 3).then(|| "0".repeat(40));
        e.request = RequestContext { request_id: Some(text.to_owned()), ip: None, user_agent: Some("ü".into()) };
        unit = unit.audit_only(e);
    }
    store.commit(unit).await.expect("the unit commits");
    store.commit(UnitOfWork::new().audit_only(user_created(&ada))).await.expect("a second unit commits");
    let chain = verified_chain(&store, 3).await;
    assert_eq!(chain.len(), 7);
    assert_eq!(chain[2].entry.after, Some(serde_json::json!("quote \" backslash \\ tab \t newline \n")));
}

/// A unit refused after it staged its audit entries (here by a taken unique
/// key in its second mutation) leaves no record, staged or chained, and its
/// connection — the only one in the pool — is back outside any transaction:
/// the next unit on it commits and chains right after the last record.
#[tokio::test]
async fn a_refused_unit_leaves_nothing_staged_and_its_connection_serves_the_next_unit() {
    let Some(scratch) = common::scratch() else { return };
    let options = conman_store_pg::PgOptions {
        schema: Some(scratch.schema().to_owned()),
        max_connections: 1,
        ..conman_store_pg::PgOptions::new(scratch.url())
    };
    let store = PgStore::connect_with(&options).await.expect("connect");
    let ada = user("ada");
    store
        .commit(UnitOfWork::new().record(Mutation::from(UserMutation::InsertUser(ada.clone())), user_created(&ada)))
        .await
        .unwrap();

    let bob = user("bob");
    let refused = UnitOfWork::new()
        .unaudited(Mutation::from(UserMutation::InsertUser(bob.clone())), Unaudited::Fixture)
        .record(Mutation::from(UserMutation::InsertUser(ada.clone())), user_created(&bob))
        .audit_only(user_created(&ada));
    let err = store.commit(refused).await.expect_err("ada exists");
    assert_eq!(err.code(), ErrorCode::Conflict, "{err:?}");

    let mut conn = scratch.raw().await;
    let staged: i64 = sqlx::query("SELECT count(*) FROM audit_pending").fetch_one(&mut conn).await.unwrap().get(0);
    assert_eq!(staged, 0);
    assert_eq!(verified_chain(&store, 10).await.len(), 1);
    assert_eq!(store.list_users(PageRequest { page: 1, limit: 10 }).await.unwrap().total, 1);

    store
        .commit(UnitOfWork::new().record(Mutation::from(UserMutation::InsertUser(bob.clone())), user_created(&bob)))
        .await
        .unwrap();
    let chain = verified_chain(&store, 10).await;
    assert_eq!(chain.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    let staged: i64 = sqlx::query("SELECT count(*) FROM audit_pending").fetch_one(&mut conn).await.unwrap().get(0);
    assert_eq!(staged, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_committing_concurrently_keep_one_chain() {
    let Some(scratch) = common::scratch() else { return };
    let stores = [Arc::new(scratch.store().await), Arc::new(scratch.store().await)];
    const TASKS: usize = 8;
    const UNITS: usize = 6;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = Arc::clone(&stores[t % 2]);
            tokio::spawn(async move {
                for u in 0..UNITS {
                    let new = user(&format!("p{t}-u{u}"));
                    // Two entries per unit: a unit's records stay adjacent.
                    let unit = UnitOfWork::new()
                        .record(Mutation::from(UserMutation::InsertUser(new.clone())), user_created(&new))
                        .audit_only(fixtures::audit_entry("user.welcomed", "user", &new.id.to_string()));
                    store.commit(unit).await.expect("every unit commits");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }

    for store in &stores {
        let chain = verified_chain(&**store, 13).await;
        assert_eq!(chain.len(), TASKS * UNITS * 2);
        for pair in chain.chunks(2) {
            assert_eq!(pair[0].entry.entity_id, pair[1].entry.entity_id, "a unit's entries are adjacent");
            assert_eq!(
                (pair[0].entry.action.as_str(), pair[1].entry.action.as_str()),
                ("user.created", "user.welcomed")
            );
        }
    }
    let users = stores[1].list_users(PageRequest { page: 1, limit: 100 }).await.unwrap();
    assert_eq!(users.total, (TASKS * UNITS) as u64);
    // Every unit chained what it staged: nothing is left behind.
    let mut conn = scratch.raw().await;
    let staged: i64 = sqlx::query("SELECT count(*) FROM audit_pending").fetch_one(&mut conn).await.unwrap().get(0);
    assert_eq!(staged, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimers_on_two_pools_never_share_a_job() {
    let Some(scratch) = common::scratch() else { return };
    let stores = [Arc::new(scratch.store().await), Arc::new(scratch.store().await)];
    let creator = user("ada");
    let app = fixtures::app("billing", &creator);
    setup(
        &*stores[0],
        [
            Mutation::from(UserMutation::InsertUser(creator.clone())),
            Mutation::from(AppMutation::InsertApp(app.clone())),
        ],
    )
    .await;
    const JOBS: usize = 60;
    let t = fixtures::now();
    let jobs: Vec<Job> = (0..JOBS)
        .map(|i| Job {
            id: JobId(uuid::Uuid::now_v7()),
            app_id: app.id,
            job_type: JobType::Notify,
            state: JobState::Queued,
            entity_type: None,
            entity_id: Some(i.to_string()),
            payload: serde_json::json!({ "n": i }),
            attempts: 0,
            max_attempts: 3,
            run_after: fixtures::later(t, -1),
            lease_owner: None,
            lease_expires_at: None,
            timeout_secs: 60,
            cancel_requested: false,
            result: None,
            error: None,
            created_by: None,
            created_at: t,
            started_at: None,
            finished_at: None,
        })
        .collect();
    setup(&*stores[0], jobs.iter().cloned().map(JobMutation::InsertJob)).await;

    let claimers: Vec<_> = (0..6)
        .map(|w| {
            let store = Arc::clone(&stores[w % 2]);
            tokio::spawn(async move {
                let claim =
                    JobClaim { worker: format!("w{w}"), now: t, lease_until: fixtures::later(t, 3600), types: None };
                let mut mine = Vec::new();
                while let Some(job) = store.claim_job(&claim).await.expect("claim") {
                    assert_eq!(job.lease_owner.as_deref(), Some(claim.worker.as_str()));
                    mine.push(job.id);
                }
                mine
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.expect("claimer task"));
    }
    let unique: BTreeSet<JobId> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), JOBS, "every job is claimed exactly once");
    assert_eq!(unique, jobs.iter().map(|j| j.id).collect());
}

#[tokio::test]
async fn reconnecting_keeps_data_and_applies_migrations_once() {
    let Some(scratch) = common::scratch() else { return };
    let ada = user("ada");
    {
        let store = scratch.store().await;
        setup(&store, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;
        store.close().await;
    }
    let migrations = || async {
        let mut conn = scratch.raw().await;
        sqlx::query("SELECT version, installed_on::text FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
            .collect::<Vec<_>>()
    };
    let first = migrations().await;
    assert_eq!(first.iter().map(|(v, _)| *v).collect::<Vec<_>>(), (1..=SCHEMA_VERSION).collect::<Vec<_>>());

    for _ in 0..2 {
        let store = scratch.store().await;
        assert_eq!(store.user(ada.id).await.unwrap(), Some(ada.clone()));
        assert_eq!(verified_chain(&store, 10).await.len(), 1);
        assert_eq!(store.schema(), Some(scratch.schema()));
    }
    assert_eq!(migrations().await, first, "no migration ran again");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some((store, scratch)) = common::fresh_store().await else { return };
    store.close().await;
    let mut conn = scratch.raw().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'from the future', true, '\\x00', 0)",
    )
    .bind(SCHEMA_VERSION + 1)
    .execute(&mut conn)
    .await
    .unwrap();

    let err = PgStore::connect_with_schema(scratch.url(), scratch.schema()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(format!("{err:?}").contains("upgrade conman"), "{err:?}");
}

#[tokio::test]
async fn schemas_isolate_installations_in_one_database() {
    let Some((left, _left_scratch)) = common::fresh_store().await else { return };
    let Some((right, _right_scratch)) = common::fresh_store().await else { return };
    let ada = user("ada");
    setup(&left, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;
    // The same user (same email, handle and id) fits in the other schema.
    setup(&right, [Mutation::from(UserMutation::InsertUser(ada.clone()))]).await;
    setup(&right, [Mutation::from(UserMutation::InsertUser(user("bob")))]).await;

    assert_eq!(left.list_users(PageRequest::default()).await.unwrap().total, 1);
    assert_eq!(right.list_users(PageRequest::default()).await.unwrap().total, 2);
    assert_eq!(verified_chain(&left, 10).await.len(), 1);
    assert_eq!(verified_chain(&right, 10).await.len(), 2);
}

#[tokio::test]
async fn a_reference_to_a_missing_entity_is_a_conflict() {
    let Some((store, _scratch)) = common::fresh_store().await else { return };
    let orphan = fixtures::credential(&user("ghost"), CredentialKind::Session);
    let err = fixtures::commit(&store, [Mutation::from(UserMutation::InsertCredential(orphan))]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err:?}");
    assert_eq!(verified_chain(&store, 10).await, vec![], "the refused unit left no audit record");
}

#[tokio::test]
async fn bad_urls_and_schema_names_are_refused_before_connecting() {
    let cases = [
        ("mysql://localhost/db", None),
        ("postgres://localhost/db", Some("Public")),
        ("postgres://localhost/db", Some("x; DROP TABLE users")),
        ("postgres://localhost/db", Some("1abc")),
        ("postgres://localhost/db", Some("")),
    ];
    for (url, schema) in cases {
        let opened = match schema {
            None => PgStore::connect(url).await,
            Some(schema) => PgStore::connect_with_schema(url, schema).await,
        };
        let err = opened.expect_err(url);
        assert_eq!(err.code(), ErrorCode::Validation, "{url} {schema:?}: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_log_appends_on_two_pools_number_lines_once_and_keep_the_bound() {
    use conman_core::domain::job::{LogAppend, LogStream, NewLogLine};
    let Some(scratch) = common::scratch() else { return };
    let stores = [Arc::new(scratch.store().await), Arc::new(scratch.store().await)];
    let creator = user("ada");
    let app = fixtures::app("billing", &creator);
    let job = fixtures::job(&app, JobType::Notify);
    setup(
        &*stores[0],
        [
            Mutation::from(UserMutation::InsertUser(creator.clone())),
            Mutation::from(AppMutation::InsertApp(app.clone())),
            Mutation::from(JobMutation::InsertJob(job.clone())),
        ],
    )
    .await;
    // Lines of 10 bytes; 8 writers × 25 appends × 3 lines = 600 lines, 6,000
    // bytes, against a bound of 1,000: most appends fit, many must trim.
    const WRITERS: usize = 8;
    const APPENDS: usize = 25;
    const BOUND: u64 = 1_000;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&stores[w % 2]);
            let id = job.id;
            tokio::spawn(async move {
                for a in 0..APPENDS {
                    let lines: Vec<NewLogLine> = (0..3)
                        .map(|l| NewLogLine {
                            at: fixtures::now(),
                            stream: LogStream::Stdout,
                            text: format!("w{w}a{a:02}l{l}----")[..10].to_owned(),
                        })
                        .collect();
                    store.append_job_log(id, &LogAppend::plan(lines, BOUND)).await.expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer task");
    }
    let total = (WRITERS * APPENDS * 3) as i64;
    let page = stores[1].job_log(job.id, 0, 10_000).await.expect("log reads");
    assert!(page.truncated);
    let seqs: Vec<i64> = page.lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs.last().copied(), Some(total), "every line got a number, none twice");
    assert_eq!(seqs, ((total - seqs.len() as i64 + 1)..=total).collect::<Vec<_>>(), "the newest tail, no gap");
    let stored: u64 = page.lines.iter().map(|l| l.text.len() as u64).sum();
    assert!(stored <= BOUND && stored > BOUND - 30, "{stored} bytes kept");
    let mut conn = scratch.raw().await;
    let row = sqlx::query("SELECT log_seq, log_bytes FROM jobs WHERE id = $1")
        .bind(job.id.0)
        .fetch_one(&mut conn)
        .await
        .expect("job row");
    assert_eq!((row.get::<i64, _>(0), row.get::<i64, _>(1)), (total, stored as i64));
}
