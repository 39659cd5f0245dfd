//! Embedding `conman-core` in another Rust program, without HTTP: compose
//! the core over the SQLite store and the git adapter, create an app, edit
//! a workspace, open and submit a changeset, run its submit gate with the
//! core's own worker calls, and check the audit chain.
//!
//! Run it with `cargo run -p conman-embed-example [DATA_DIR]` (a temporary
//! directory when none is given). The gate runs it on every change; it
//! exits non-zero if any step does not end as described.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use conman_core::domain::audit::RequestContext;
use conman_core::domain::changeset::ChangesetState;
use conman_core::domain::job::{JobState, LogStream};
use conman_core::ports::system::{Argon2Hasher, OsRandomTokens, SystemClock, UuidV7Ids};
use conman_core::ports::LogSink;
use conman_core::services::{AttemptEnd, Config, Conman, NewApp, NewChangeset, Ports};

/// Prints a job's log lines as they come.
struct PrintedLog;

#[async_trait]
impl LogSink for PrintedLog {
    async fn line(&self, stream: LogStream, text: String) {
        println!("    [{stream:?}] {text}");
    }
}

fn compose(dir: &Path) -> Result<Conman, Box<dyn std::error::Error>> {
    let store = conman_store_sqlite::SqliteStore::open(&dir.join("conman.db"))?;
    let git = conman_git::GitRepos::new(dir.join("repos"))?;
    let ports = Ports {
        store: Arc::new(store),
        git: Arc::new(git),
        clock: Arc::new(SystemClock),
        ids: Arc::new(UuidV7Ids),
        passwords: Arc::new(Argon2Hasher::recommended()),
        tokens: Arc::new(OsRandomTokens),
    };
    Ok(Conman::new(ports, Config::default()))
}

async fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let conman = compose(dir)?;
    println!("embedded Conman over {}", dir.display());

    let admin = conman.bootstrap_admin("ada@example.com", "Ada", "a long enough password").await?;
    let ada = conman.local_actor(admin.email.as_str(), RequestContext::default()).await?;
    let app = conman.create_app(&ada, NewApp { name: "billing".into(), ..Default::default() }).await?;
    println!("created app {} ({})", app.name, app.id.0);

    let ws = conman.create_workspace(&ada, app.id, Some("raise the rate limit".into())).await?;
    let wrote =
        conman.write_file(&ada, app.id, ws.id, "config/limits.yaml", b"rate_limit: 200\n".to_vec(), None).await?;
    println!("wrote {:?} in workspace {}: head {}", wrote.paths, ws.branch, wrote.head.as_str());

    let cs = conman
        .create_changeset(
            &ada,
            app.id,
            NewChangeset {
                workspace_id: ws.id,
                title: "Raise the rate limit".into(),
                description: None,
                depends_on: vec![],
            },
        )
        .await?;
    let submitted = conman.submit_changeset(&ada, app.id, cs.id).await?;
    println!("submitted changeset {} as revision {}", cs.id.0, submitted.revision.number);

    // No job runtime is composed: drive the submit gate with the core's
    // worker calls (claim, run, complete) — what `conman worker` does.
    let job = conman.claim_next_job("embed-example/1").await?.ok_or("the submit gate job was not queued")?;
    println!("running job {} ({})", job.id.0, job.job_type.as_str());
    let outcome = conman.run_job_handler(&job, &PrintedLog).await;
    let state = conman.complete_job(&job, "embed-example/1", AttemptEnd::Finished(outcome)).await?;
    if state != JobState::Succeeded {
        return Err(format!("the submit gate ended {state:?}").into());
    }
    let cs = conman.get_changeset(&ada, app.id, cs.id).await?.changeset;
    if cs.state != ChangesetState::InReview {
        return Err(format!("the changeset is {:?}, not in_review", cs.state).into());
    }
    println!("changeset is {}", cs.state.as_str());

    let report = conman.verify_audit_chain().await?;
    println!("audit chain verified: {report:?}");
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let temp;
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            temp = match tempfile::tempdir() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: no temporary directory: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            temp.path().to_path_buf()
        }
    };
    match run(&dir).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
