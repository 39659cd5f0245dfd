//! `conman migrate --from sqlite://... --to postgres://...` end to end: a
//! SQLite installation built through the library (operator, members, an
//! invite, workspace edits, a gate job run by a real `conman worker`, a job
//! with a truncated log, a job left running by a dead worker, dozens of
//! audit events) is copied by the real binary into a scratch Postgres
//! database; every aggregate then reads back identically from both stores,
//! `conman audit verify` reports the same head on both, and the copy serves
//! logins, sessions and workspace reads from the same data directory.
//!
//! Needs `CONMAN_TEST_DATABASE_URL` (a Postgres server; the scratch database
//! is created beside the named one and dropped afterwards, even on panic —
//! `conman_store_pg::scratch`); without it the test prints "skipped:
//! CONMAN_TEST_DATABASE_URL not set" and passes.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conman_api::compose;
use conman_api::config::Settings;
use conman_core::domain::app::{AppSettingsPatch, GateSettings};
use conman_core::domain::job::{JobState, JobType, LogAppend, LogStream, NewLogLine};
use conman_core::ids::AppId;
use conman_core::ports::git::Node;
use conman_core::ports::store::{JobClaim, JobFilter, JobStore as _, PageRequest, UnitOfWork};
use conman_core::ports::system::Argon2Hasher;
use conman_core::ports::Store;
use conman_core::rbac::Role;
use conman_core::services::{Conman, GateKind, NewApp, NewJob};
use conman_store_pg::scratch::scratch_database;
use conman_store_pg::PgStore;
use conman_store_sqlite::SqliteStore;
use serde_json::Value;

const ADMIN: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    settings: Settings,
}

fn settings(data_dir: &Path, database_url: Option<&str>) -> Settings {
    let mut args = vec!["x".to_owned(), "--data-dir".to_owned(), data_dir.to_str().unwrap().to_owned()];
    if let Some(url) = database_url {
        args.extend(["--database-url".to_owned(), url.to_owned()]);
    }
    let mut settings = Args::try_parse_from(args).unwrap().settings;
    // The gate below is the app's own.
    settings.allow_app_gate_commands = true;
    settings
}

fn open(data_dir: &Path, database_url: Option<&str>) -> Arc<Conman> {
    let settings = settings(data_dir, database_url);
    compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).unwrap().conman
}

/// Runs the `conman` binary on `data_dir`.
fn conman(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conman"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CONMAN_DATABASE_URL")
        .env_remove("CONMAN_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "conman failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A `conman worker` child, killed on drop.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the source installation; answers the app.
async fn build_source(conman: &Conman, data_dir: &Path) -> AppId {
    conman.bootstrap_admin(ADMIN, "Ada Admin", PASSWORD).await.unwrap();
    let ada = conman.local_actor(ADMIN, Default::default()).await.unwrap();
    let bob = conman.create_user(&ada, "bob@example.com", "Bob", PASSWORD, false).await.unwrap();
    let new_app = NewApp { name: "shop".into(), integration_branch: None, import_from: None };
    let app = conman.create_app(&ada, new_app).await.unwrap().id;
    conman.put_member(&ada, app, bob.id, Role::Reviewer).await.unwrap();
    conman.create_invite(&ada, app, "carol@example.com", Role::User).await.unwrap();
    conman.login(ADMIN, PASSWORD, Default::default()).await.unwrap();

    let workspaces = conman.list_workspaces(&ada, app, PageRequest::default()).await.unwrap();
    let ws = workspaces.items.iter().find(|w| w.is_default).expect("default workspace").id;
    for n in 0..30 {
        let content = format!("replicas: {n}\n").into_bytes();
        conman.write_file(&ada, app, ws, &format!("svc{}/config.yaml", n % 3), content, None).await.unwrap();
    }
    let feature = conman.create_workspace(&ada, app, Some("feature".into())).await.unwrap().id;
    conman.write_file(&ada, app, feature, "feature.yaml", b"on: true\n".to_vec(), None).await.unwrap();

    // A gate job run to the end by a real worker process.
    let gates = GateSettings { submit: Some("echo checking; echo all good >&2".into()), ..Default::default() };
    let patch = AppSettingsPatch { gates: Some(gates), ..Default::default() };
    conman.update_settings(&ada, app, patch).await.unwrap();
    let worker = Worker(
        Command::new(env!("CARGO_BIN_EXE_conman"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["worker", "--workers", "1"])
            .env_remove("CONMAN_DATABASE_URL")
            .env_remove("CONMAN_CONFIG")
            .env("CONMAN_JOB_POLL_MS", "50")
            .env("CONMAN_ALLOW_APP_GATE_COMMANDS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let gate = conman.start_gate_run(&ada, app, GateKind::Submit, None).await.unwrap();
    let started = Instant::now();
    while !conman.get_job(&ada, app, gate.id).await.unwrap().state.is_terminal() {
        assert!(started.elapsed() < Duration::from_secs(60), "the gate job did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(worker);
    assert_eq!(conman.get_job(&ada, app, gate.id).await.unwrap().state, JobState::Succeeded);

    // A job whose log lost its oldest lines, left running by a worker that died.
    let store = conman.ports().store.clone();
    let notify = NewJob {
        app_id: app,
        job_type: JobType::Notify,
        entity_type: None,
        entity_id: None,
        payload: serde_json::json!({ "n": 1 }),
        timeout_secs: 60,
    };
    let job = conman.new_job(None, notify.clone());
    store.commit(conman.enqueue_in(UnitOfWork::new(), None, &job)).await.unwrap();
    let lines: Vec<NewLogLine> = (0..10)
        .map(|n| NewLogLine { at: job.created_at, stream: LogStream::Stdout, text: format!("line {n}") })
        .collect();
    store.append_job_log(job.id, &LogAppend::plan(lines, 20)).await.unwrap();
    let now = job.created_at;
    let claim = JobClaim {
        worker: "gone-1".into(),
        now,
        lease_until: now + Duration::from_secs(30),
        types: Some(vec![JobType::Notify]),
    };
    assert_eq!(store.claim_job(&claim).await.unwrap().map(|j| j.id), Some(job.id));
    // And one still queued.
    let queued = conman.new_job(None, notify);
    store.commit(conman.enqueue_in(UnitOfWork::new(), None, &queued)).await.unwrap();
    app
}

/// Every row either store can list, in a comparable form.
async fn snapshot(store: &dyn Store, app: AppId) -> Vec<(String, String)> {
    let all = PageRequest { page: 1, limit: 100 };
    let mut rows = Vec::new();
    let mut push = |what: &str, value: String| rows.push((what.to_owned(), value));
    let users = store.list_users(all).await.unwrap().items;
    for user in &users {
        push("credentials", format!("{:?}", store.list_credentials(user.id).await.unwrap()));
    }
    push("users", format!("{users:?}"));
    push("apps", format!("{:?}", store.list_all_apps(all).await.unwrap()));
    push("members", format!("{:?}", store.list_members(app, all).await.unwrap()));
    push("invites", format!("{:?}", store.list_invites(app, all).await.unwrap()));
    let mut workspaces = store.all_workspaces().await.unwrap();
    workspaces.sort_by_key(|w| w.id);
    push("workspaces", format!("{workspaces:?}"));
    push("outbox", format!("{:?}", store.list_outbox(all).await.unwrap()));
    let jobs = store.list_jobs(app, &JobFilter::default(), all).await.unwrap();
    for job in &jobs.items {
        push("job log", format!("{:?}", store.job_log(job.id, 0, 10_000).await.unwrap()));
    }
    push("jobs", format!("{jobs:?}"));
    push("audit", format!("{:?}", store.audit_chain(0, 10_000).await.unwrap()));
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_installation_copied_to_postgres_reads_back_identically_and_serves_logins() {
    // Prints "skipped: CONMAN_TEST_DATABASE_URL not set" without a server.
    let Some(scratch) = scratch_database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path();
    let source = open(data_dir, None);
    let app = build_source(&source, data_dir).await;
    let session = source.login("bob@example.com", PASSWORD, Default::default()).await.unwrap().token;
    drop(source);

    let sqlite_url = format!("sqlite://{}", data_dir.join("conman.db").display());
    let copy = conman(data_dir, &["--json", "migrate", "--from", &sqlite_url, "--to", scratch.url()]);
    let report = json(&copy);
    for (field, expected) in [
        ("users", 2),
        ("apps", 1),
        ("memberships", 2),
        ("invites", 1),
        ("workspaces", 3), // ada's and bob's defaults (they come with the membership), ada's feature
        ("jobs", 3),
        ("running_jobs", 1),
    ] {
        assert_eq!(report[field], expected, "{field} in {report:#}");
    }
    assert!(report["credentials"].as_u64().unwrap() >= 2, "{report:#}");
    assert!(report["outbox"].as_u64().unwrap() >= 1, "{report:#}");
    assert!(report["job_log_lines"].as_u64().unwrap() >= 4, "{report:#}");
    assert!(report["audit_records"].as_u64().unwrap() >= 40, "{report:#}");
    assert!(report["not_copied"][0].as_str().unwrap().starts_with("password-reset requests"), "{report:#}");

    // A second copy finds the target filled and changes nothing.
    let again = conman(data_dir, &["migrate", "--from", &sqlite_url, "--to", scratch.url()]);
    assert_eq!(again.status.code(), Some(5), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let sqlite = SqliteStore::open(&data_dir.join("conman.db")).unwrap();
    let postgres = PgStore::connect(scratch.url()).await.unwrap();
    let (before, after) = (snapshot(&sqlite, app).await, snapshot(&postgres, app).await);
    assert_eq!(before.len(), after.len());
    for ((what, source_rows), (_, copied_rows)) in before.iter().zip(&after) {
        assert_eq!(source_rows, copied_rows, "{what} differ");
    }
    let jobs = postgres.list_jobs(app, &JobFilter::default(), PageRequest::default()).await.unwrap().items;
    let gate = jobs.iter().find(|j| j.job_type == JobType::GateSubmit).expect("the gate job");
    let gate_log = postgres.job_log(gate.id, 0, 100).await.unwrap().lines;
    assert!(gate_log.iter().any(|l| l.stream == LogStream::Stdout && l.text == "checking"), "{gate_log:?}");
    let running = jobs.iter().find(|j| j.state == JobState::Running).expect("the running job");
    let log = postgres.job_log(running.id, 0, 100).await.unwrap();
    assert!(log.truncated && log.lines[0].seq > 1, "{log:?}");
    postgres.close().await;

    let verified = json(&conman(data_dir, &["--json", "audit", "verify"]));
    let verified_copy = json(&conman(data_dir, &["--json", "--database-url", scratch.url(), "audit", "verify"]));
    assert_eq!(verified["first_break"], Value::Null, "{verified:#}");
    assert_eq!(verified_copy["first_break"], Value::Null, "{verified_copy:#}");
    assert_eq!(verified_copy["records"], verified["records"]);
    assert_eq!(verified_copy["head_hash"], verified["head_hash"]);
    assert_eq!(verified_copy["head_hash"], report["audit_head"]);

    // The copy, on the same data directory, is the same installation.
    let copy = open(data_dir, Some(scratch.url()));
    copy.login(ADMIN, PASSWORD, Default::default()).await.unwrap();
    let bob = copy.authenticate(&session, Default::default()).await.unwrap();
    assert_eq!(bob.user.email.as_str(), "bob@example.com");
    let ada = copy.local_actor(ADMIN, Default::default()).await.unwrap();
    let ws = copy.list_workspaces(&ada, app, PageRequest::default()).await.unwrap();
    let ws = ws.items.iter().find(|w| w.is_default).unwrap().id;
    let (_, node) = copy.read_workspace_path(&ada, app, ws, Some("svc2/config.yaml")).await.unwrap();
    assert!(matches!(node, Node::File(bytes) if bytes == b"replicas: 29\n"));
    assert_eq!(copy.get_job(&ada, app, running.id).await.unwrap().lease_owner.as_deref(), Some("gone-1"));
}
