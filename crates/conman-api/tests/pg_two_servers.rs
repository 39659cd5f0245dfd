//! Two real `conman-server` processes sharing one Postgres database (a
//! scratch database from `CONMAN_TEST_DATABASE_URL`) and one data
//! directory, as the operator guide's "Several servers on Postgres" runs
//! them: 32 concurrent writes of distinct files into one workspace, split
//! across both servers, all answer 200 and all land (git compare-and-swap
//! with retry across processes), each write is audited exactly once and no
//! audited write names a commit that never became the head (the store
//! refuses an intent planned on a head the other server moved, decision
//! 0008), and the audit log is one unbroken hash chain.
//!
//! Without `CONMAN_TEST_DATABASE_URL` the test prints "skipped" and passes;
//! CI always sets it. The children are killed on drop and the scratch
//! database is dropped, so a failing test leaves nothing behind.

mod common;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{b64, unb64, ADMIN_EMAIL, PASSWORD};
use conman_api::compose;
use conman_api::config::Settings;
use conman_core::ids::AppId;
use conman_core::ports::git::Sha;
use conman_core::ports::store::{AuditFilter, PageRequest};
use conman_core::ports::system::Argon2Hasher;
use conman_store_pg::scratch::scratch_database;
use serde_json::{json, Value};
use tokio::time::timeout;

/// The secrets master key every process of the installation shares.
const MASTER_KEY: &str = "5f0c2a9d8e7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    settings: Settings,
}

fn settings(data_dir: &Path, database_url: &str) -> Settings {
    let data_dir = data_dir.to_str().expect("utf-8 temp path");
    let args = ["x", "--data-dir", data_dir, "--database-url", database_url, "--workers", "0"];
    let mut settings = Args::try_parse_from(args).expect("settings parse").settings;
    settings.secrets_master_key = Some(MASTER_KEY.to_owned());
    settings
}

/// A `conman-server` child process (API only), killed when dropped.
struct ServerProcess {
    child: Child,
    base: String,
}

impl ServerProcess {
    fn start(data_dir: &Path, database_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_conman-server"))
            .arg("--data-dir")
            .arg(data_dir)
            .current_dir(data_dir)
            .env("CONMAN_LISTEN", "127.0.0.1:0")
            .env("CONMAN_DATABASE_URL", database_url)
            .env("CONMAN_SECRETS_MASTER_KEY", MASTER_KEY)
            .env("CONMAN_WORKERS", "0")
            .env("CONMAN_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("CONMAN_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn conman-server");
        let (tx, rx) = mpsc::channel::<String>();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let (tx, log) = (tx.clone(), log.clone());
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut process = ServerProcess { child, base: String::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while process.base.is_empty() {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                        let addr: SocketAddr = addr.parse().unwrap_or_else(|_| panic!("address in {line:?}"));
                        process.base = format!("http://{addr}");
                    }
                }
                Err(_) => panic!("conman-server did not report its address; output: {:?}", log.lock().unwrap()),
            }
        }
        process
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("http client")
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let method = request.try_clone().and_then(|r| r.build().ok()).map(|r| r.method().to_string()).unwrap_or_default();
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let path = response.url().path().to_owned();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().await.expect("response body");
    common::contract::check(&method, &path, status, &content_type, &text);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_take_32_concurrent_writes_into_one_workspace_and_lose_none() {
    let Some(db) = scratch_database().await else { return };
    timeout(Duration::from_secs(120), two_servers(db.url())).await.expect("finished in time");
}

async fn two_servers(database_url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path(), database_url);
    {
        // The operator exists before the servers start.
        let installation = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).expect("open");
        installation.conman.bootstrap_admin(ADMIN_EMAIL, "Ada Admin", PASSWORD).await.expect("bootstrap");
    }
    let servers = [ServerProcess::start(dir.path(), database_url), ServerProcess::start(dir.path(), database_url)];
    let (a, b) = (servers[0].base.clone(), servers[1].base.clone());
    let http = client();

    // Log in on one server; the session works on the other (one store).
    let login = http.post(format!("{a}/api/auth/login")).json(&json!({ "email": ADMIN_EMAIL, "password": PASSWORD }));
    let login: Value = login.send().await.expect("login").json().await.expect("login body");
    let token = login["data"]["token"].as_str().expect("token").to_owned();
    let (status, body) =
        call(&http, reqwest::Method::POST, &format!("{a}/api/apps"), &token, Some(json!({ "name": "shared" }))).await;
    assert_eq!(status, 201, "{body}");
    let app = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, body) =
        call(&http, reqwest::Method::GET, &format!("{b}/api/apps/{app}/workspaces"), &token, None).await;
    assert_eq!(status, 200, "{body}");
    let ws = body["data"][0]["id"].as_str().unwrap().to_owned();

    // 32 writes at once, even ones to the first server, odd ones to the second.
    let started = Instant::now();
    let writes: Vec<_> = (0..32)
        .map(|i| {
            let base = if i % 2 == 0 { &a } else { &b };
            let url = format!("{base}/api/apps/{app}/workspaces/{ws}/files");
            let (http, token) = (http.clone(), token.clone());
            tokio::spawn(async move {
                let body = json!({ "path": format!("files/f{i:02}.yaml"), "content": b64(format!("n: {i}\n")) });
                call(&http, reqwest::Method::PUT, &url, &token, Some(body)).await
            })
        })
        .collect();
    let mut heads = Vec::new();
    for (i, write) in writes.into_iter().enumerate() {
        let (status, body) = write.await.expect("write task");
        assert_eq!(status, 200, "write {i}: {body}");
        heads.push(body["data"]["head_sha"].as_str().unwrap().to_owned());
    }
    eprintln!("32 concurrent writes through two conman-server processes on Postgres: {:?}", started.elapsed());
    let distinct: std::collections::BTreeSet<_> = heads.iter().collect();
    assert_eq!(distinct.len(), 32, "each write is its own commit");

    // Both servers see all 32 files, each with its own content.
    let files_url = |base: &str| format!("{base}/api/apps/{app}/workspaces/{ws}/files");
    for base in [&a, &b] {
        let (status, listing) =
            call(&http, reqwest::Method::GET, &format!("{}?path=files", files_url(base)), &token, None).await;
        assert_eq!(status, 200, "{listing}");
        let present: Vec<&str> =
            listing["data"]["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
        let expected: Vec<String> = (0..32).map(|i| format!("files/f{i:02}.yaml")).collect();
        assert_eq!(present, expected, "listed by {base}");
    }
    for i in 0..32 {
        let url = format!("{}?path=files/f{i:02}.yaml", files_url(&b));
        let (status, file) = call(&http, reqwest::Method::GET, &url, &token, None).await;
        assert_eq!(status, 200, "{file}");
        assert_eq!(unb64(file["data"]["content"].as_str().unwrap()), format!("n: {i}\n").into_bytes());
    }
    let (_, workspace) =
        call(&http, reqwest::Method::GET, &format!("{a}/api/apps/{app}/workspaces/{ws}"), &token, None).await;
    let head = Sha(workspace["data"]["head_sha"].as_str().unwrap().to_owned());
    drop(servers);

    // Offline: every acknowledged head is on the workspace history and
    // audited once, and the audit log is one unbroken chain.
    let installation = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).expect("reopen");
    let conman = installation.conman;
    let app_id: AppId = app.parse().unwrap();
    let git = &conman.ports().git;
    for h in &heads {
        assert!(git.is_ancestor(app_id, &Sha(h.clone()), &head).await.unwrap(), "{h} lost from the history");
    }
    let filter = AuditFilter {
        app_id: Some(app_id),
        entity_type: Some("workspace".into()),
        entity_id: Some(ws.clone()),
        ..Default::default()
    };
    let events = conman.ports().store.list_audit(&filter, PageRequest { page: 1, limit: 1000 }).await.unwrap();
    let written: Vec<&str> = events
        .items
        .iter()
        .filter(|e| e.entry.action == "workspace.files_changed")
        .filter_map(|e| e.entry.git_sha.as_deref())
        .collect();
    assert_eq!(written.len(), heads.len(), "one audited write per head moved: {written:?}");
    for h in &heads {
        assert!(written.contains(&h.as_str()), "write {h} not audited");
    }
    // No audited write for a commit that never became the head (a write
    // planned on a head the other server moved is refused before its unit).
    for w in &written {
        assert!(git.is_ancestor(app_id, &Sha((*w).to_owned()), &head).await.unwrap(), "audited {w} never landed");
    }
    let abandoned: Vec<_> = events.items.iter().filter(|e| e.entry.action == "intent.abandoned").collect();
    assert!(abandoned.is_empty(), "no intent was abandoned: {abandoned:?}");
    let verification = conman.verify_audit_chain().await.expect("verify");
    assert!(verification.is_intact(), "audit chain broken: {:?}", verification.first_break);
    assert!(verification.records >= 32 + 3, "{} records", verification.records);
}
