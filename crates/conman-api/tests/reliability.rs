//! Reliability of the foundation slice over real TCP (issue "Reliability"):
//! 32 concurrent writes of distinct files into one workspace all land (no
//! lost update), also when checkpoints race with them, and killing the real `conman-server` process with SIGKILL in
//! the middle of a stream of writes, then restarting it on the same data
//! directory, keeps every acknowledged write in Git and every audit event
//! matching Git (intact hash chain, every audited sha a real commit on the
//! workspace's history, the workspace head audited); a commit whose audit
//! event was lost in the crash window is audited when the server starts. Everything is bounded
//! by timeouts, and the child process is killed if the test fails.

mod common;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{b64, settings_for, TestServer, ADMIN_EMAIL, PASSWORD};
use conman_api::compose;
use conman_core::ids::AppId;
use conman_core::ids::IntentId;
use conman_core::ports::git::{FileOp, Node, Sha, Signature, WriteRequest};
use conman_core::ports::store::{AuditFilter, Intent, IntentMutation, PageRequest, Unaudited, UnitOfWork};
use conman_core::ports::system::Argon2Hasher;
use conman_core::services::NewApp;
use conman_core::validation::RepoPath;
use serde_json::{json, Value};
use tokio::time::timeout;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("http client")
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(token);
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

/// Serves `s` on a real socket until the returned sender fires.
async fn serve(
    s: &TestServer,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(conman_api::serve(listener, s.conman.clone(), async {
        let _ = stopped.await;
    }));
    (format!("http://{addr}"), stop, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_writes_of_distinct_files_into_one_workspace_all_land_in_the_branch() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "concurrent").await;
    let ws = s.default_workspace(&admin, &app).await;
    s.req(
        "PATCH",
        &format!("/api/apps/{app}/workspaces/{ws}"),
        Some(&admin),
        Some(json!({ "commit_mode": "manual_checkpoint" })),
    )
    .await
    .assert_status(200);
    let (base, stop, server) = serve(&s).await;
    let http = client();

    let url = format!("{base}/api/apps/{app}/workspaces/{ws}/files");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (http, url, token) = (http.clone(), url.clone(), admin.clone());
            tokio::spawn(async move {
                let body = json!({ "path": format!("files/f{i:02}.yaml"), "content": b64(format!("n: {i}\n")) });
                call(&http, reqwest::Method::PUT, &url, &token, Some(body)).await
            })
        })
        .collect();
    let mut heads = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (status, body) =
            timeout(Duration::from_secs(60), task).await.expect("write finished in time").expect("task");
        assert_eq!(status, 200, "write {i}: {body}");
        heads.push(body["data"]["head_sha"].as_str().unwrap().to_owned());
    }
    let distinct: std::collections::BTreeSet<_> = heads.iter().collect();
    assert_eq!(distinct.len(), 32, "each write is its own commit");

    // All 32 files are at the workspace head, each with its own content.
    let listing = s.list_dir(&admin, &app, &ws, "files").await;
    let expected: Vec<String> = (0..32).map(|i| format!("files/f{i:02}.yaml")).collect();
    assert_eq!(listing, expected);
    for i in 0..32 {
        let got = s.read_file(&admin, &app, &ws, &format!("files/f{i:02}.yaml")).await;
        assert_eq!(got, Some(format!("n: {i}\n").into_bytes()));
    }
    // Every acknowledged head is on the workspace's history, and audited once.
    let head = s.head(&admin, &app, &ws).await;
    let app_id: AppId = app.parse().unwrap();
    let git = &s.conman.ports().git;
    for h in &heads {
        assert!(git.is_ancestor(app_id, &Sha(h.clone()), &Sha(head.clone())).await.unwrap(), "{h} lost from history");
    }
    let audit = s.get(&format!("/api/apps/{app}/audit?entity_id={ws}&entity_type=workspace&limit=100"), &admin).await;
    let writes: Vec<&Value> =
        audit.data().as_array().unwrap().iter().filter(|e| e["action"] == "workspace.files_changed").collect();
    assert_eq!(writes.len(), 32);
    for h in &heads {
        assert!(writes.iter().any(|e| e["git_sha"] == h.as_str()), "write {h} not audited");
    }

    // A checkpoint puts all 32 on the workspace branch itself.
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        &format!("{base}/api/apps/{app}/workspaces/{ws}/checkpoints"),
        &admin,
        Some(json!({ "message": "all of them" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let branch_head = git.resolve_ref(app_id, "refs/heads/ws/admin/default").await.unwrap().expect("branch");
    assert_eq!(branch_head.as_str(), body["data"]["commit_sha"].as_str().unwrap());
    let dir = RepoPath::parse("files").unwrap();
    match git.read(app_id, &branch_head, Some(&dir)).await.unwrap() {
        Some(Node::Dir(entries)) => assert_eq!(entries.len(), 32),
        other => panic!("files/ on the branch: {other:?}"),
    }

    let _ = stop.send(());
    timeout(Duration::from_secs(10), server).await.expect("server stops").expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_racing_checkpoints_and_batches_lose_nothing() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "racing").await;
    let ws = s.default_workspace(&admin, &app).await;
    s.req(
        "PATCH",
        &format!("/api/apps/{app}/workspaces/{ws}"),
        Some(&admin),
        Some(json!({ "commit_mode": "manual_checkpoint" })),
    )
    .await
    .assert_status(200);
    let (base, stop, server) = serve(&s).await;
    let http = client();
    let ws_url = format!("{base}/api/apps/{app}/workspaces/{ws}");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (http, ws_url, token) = (http.clone(), ws_url.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let (method, url, body, expected) = match i % 4 {
                // Every fourth request is a checkpoint, every fourth a two-file batch.
                0 => (
                    reqwest::Method::POST,
                    format!("{ws_url}/checkpoints"),
                    json!({ "message": format!("cp {i}") }),
                    201,
                ),
                1 => (
                    reqwest::Method::POST,
                    format!("{ws_url}/changes"),
                    json!({ "ops": [
                        { "op": "put", "path": format!("batch/{i:02}-a.yaml"), "content": b64(format!("{i}a")) },
                        { "op": "put", "path": format!("batch/{i:02}-b.yaml"), "content": b64(format!("{i}b")) },
                    ] }),
                    200,
                ),
                _ => (
                    reqwest::Method::PUT,
                    format!("{ws_url}/files"),
                    json!({ "path": format!("single/{i:02}.yaml"), "content": b64(format!("{i}")) }),
                    200,
                ),
            };
            let (status, body) = call(&http, method, &url, &token, Some(body)).await;
            (i, status, expected, body)
        }));
    }
    for task in tasks {
        let (i, status, expected, body) = timeout(Duration::from_secs(60), task).await.expect("in time").expect("task");
        assert_eq!(status, expected, "request {i}: {body}");
    }
    // A final checkpoint puts whatever is pending on the branch too.
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        &format!("{ws_url}/checkpoints"),
        &admin,
        Some(json!({ "message": "last" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let batch = s.list_dir(&admin, &app, &ws, "batch").await;
    let single = s.list_dir(&admin, &app, &ws, "single").await;
    assert_eq!(batch.len(), 12, "{batch:?}");
    assert_eq!(single.len(), 12, "{single:?}");
    let app_id: AppId = app.parse().unwrap();
    let git = &s.conman.ports().git;
    let branch = git.resolve_ref(app_id, "refs/heads/ws/admin/default").await.unwrap().expect("branch");
    assert_eq!(s.head(&admin, &app, &ws).await, branch.as_str(), "nothing left pending after the last checkpoint");
    for dir in ["batch", "single"] {
        match git.read(app_id, &branch, Some(&RepoPath::parse(dir).unwrap())).await.unwrap() {
            Some(Node::Dir(entries)) => assert_eq!(entries.len(), 12, "{dir} on the branch"),
            other => panic!("{dir} on the branch: {other:?}"),
        }
    }
    let _ = stop.send(());
    timeout(Duration::from_secs(10), server).await.expect("server stops").expect("join").expect("serve");
}

/// A `conman-server` child process, killed when dropped.
struct ServerProcess {
    child: Child,
    base: String,
}

impl ServerProcess {
    fn start(data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_conman-server"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(data_dir)
            .env("NO_COLOR", "1")
            .env("CONMAN_LOG", "info")
            .env_remove("CONMAN_DATABASE_URL")
            .env_remove("CONMAN_CONFIG")
            .env_remove("CONMAN_SECRETS_MASTER_KEY")
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
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while process.base.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '\u{1b}').collect();
                        let addr: SocketAddr = addr.parse().unwrap_or_else(|_| panic!("address in {line:?}"));
                        process.base = format!("http://{addr}");
                    }
                }
                Err(_) => panic!("conman-server did not report its address; output: {:?}", log.lock().unwrap()),
            }
        }
        process
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_stream_of_writes_loses_no_acknowledged_write_and_keeps_audit_matching_git() {
    timeout(Duration::from_secs(120), crash_and_restart()).await.expect("crash test finished in time");
}

async fn crash_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_for(dir.path());
    {
        // The operator exists before the server first starts.
        let installation = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).expect("open");
        installation.conman.bootstrap_admin(ADMIN_EMAIL, "Ada Admin", PASSWORD).await.expect("bootstrap");
    }

    let mut server = ServerProcess::start(dir.path());
    let http = client();
    let base = server.base.clone();
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": PASSWORD }))
        .send()
        .await;
    let login: Value = r.expect("login").json().await.expect("login body");
    let token = login["data"]["token"].as_str().expect("token").to_owned();
    let (status, body) =
        call(&http, reqwest::Method::POST, &format!("{base}/api/apps"), &token, Some(json!({ "name": "crashy" })))
            .await;
    assert_eq!(status, 201, "{body}");
    let app = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, body) =
        call(&http, reqwest::Method::GET, &format!("{base}/api/apps/{app}/workspaces"), &token, None).await;
    assert_eq!(status, 200, "{body}");
    let ws = body["data"][0]["id"].as_str().unwrap().to_owned();

    // A client streams sequential writes and records each acknowledged one.
    let acked = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
    let writer = {
        let (http, acked, token) = (http.clone(), acked.clone(), token.clone());
        let url = format!("{base}/api/apps/{app}/workspaces/{ws}/files");
        tokio::spawn(async move {
            for i in 0..5000usize {
                let body = json!({ "path": format!("stream/f{i:04}.yaml"), "content": b64(format!("value: {i}\n")) });
                let Ok(response) = http.put(&url).bearer_auth(&token).json(&body).send().await else { return i };
                if response.status() != 200 {
                    return i;
                }
                let Ok(v) = response.json::<Value>().await else { return i };
                acked.lock().unwrap().push((i, v["data"]["head_sha"].as_str().unwrap().to_owned()));
            }
            5000
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 50 {
        assert!(tokio::time::Instant::now() < deadline, "50 writes were not acknowledged in time");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();
    let attempted = timeout(Duration::from_secs(20), writer).await.expect("writer stops").expect("writer task");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 50 && attempted < 5000, "acknowledged {} of {attempted}", acked.len());

    // Restart on the same data directory; the old session still works.
    let server = ServerProcess::start(dir.path());
    let base = server.base.clone();
    let files_url = format!("{base}/api/apps/{app}/workspaces/{ws}/files");
    let (status, listing) = call(&http, reqwest::Method::GET, &format!("{files_url}?path=stream"), &token, None).await;
    assert_eq!(status, 200, "{listing}");
    let present: Vec<String> =
        listing["data"]["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_owned()).collect();
    for (i, _) in &acked {
        let path = format!("stream/f{i:04}.yaml");
        assert!(present.contains(&path), "acknowledged write {path} lost after SIGKILL");
        let (status, file) = call(&http, reqwest::Method::GET, &format!("{files_url}?path={path}"), &token, None).await;
        assert_eq!(status, 200, "{file}");
        assert_eq!(common::unb64(file["data"]["content"].as_str().unwrap()), format!("value: {i}\n").into_bytes());
    }
    // At most the one write in flight at the kill landed without its answer.
    assert!(
        present.len() == acked.len() || present.len() == acked.len() + 1,
        "{} files for {} acks",
        present.len(),
        acked.len()
    );
    let (_, ws_body) =
        call(&http, reqwest::Method::GET, &format!("{base}/api/apps/{app}/workspaces/{ws}"), &token, None).await;
    let head = ws_body["data"]["head_sha"].as_str().unwrap().to_owned();
    // Not asserted here: that the restarted server accepts new writes. A
    // SIGKILL between libgit2 creating a ref's `.lock` and renaming it leaves
    // the lock behind, and every later write to that workspace answers 409
    // (reported as a product bug; this test stays deterministic without it).
    drop(server);

    // Offline checks on the installation the server left behind.
    let installation = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).expect("reopen");
    let conman = installation.conman;
    let verification = conman.verify_audit_chain().await.expect("verify");
    assert!(verification.is_intact(), "audit chain broken: {:?}", verification.first_break);
    let app_id: AppId = app.parse().unwrap();
    let store = &conman.ports().store;
    let git = &conman.ports().git;
    assert!(store.audit_has_sha(app_id, &head).await.unwrap(), "the workspace head after the crash has an audit event");
    for (i, sha) in &acked {
        assert!(store.audit_has_sha(app_id, sha).await.unwrap(), "acknowledged write {i} ({sha}) not audited");
    }
    let filter = AuditFilter { app_id: Some(app_id), ..Default::default() };
    let mut page = PageRequest::new(Some(1), Some(100)).unwrap();
    let mut checked = 0;
    loop {
        let events = store.list_audit(&filter, page).await.expect("audit page");
        for event in &events.items {
            let Some(sha) = &event.entry.git_sha else { continue };
            let sha = Sha(sha.clone());
            let commit = git.read(app_id, &sha, None).await;
            assert!(
                matches!(commit, Ok(Some(_))),
                "{} {}: commit {sha} missing: {commit:?}",
                event.seq,
                event.entry.action
            );
            // One workspace, no releases: every audited commit is on its history.
            assert!(
                git.is_ancestor(app_id, &sha, &Sha(head.clone())).await.unwrap(),
                "{} {} at {sha} is not on the workspace history",
                event.seq,
                event.entry.action
            );
            checked += 1;
        }
        if u64::from(page.page) * u64::from(page.limit) >= events.total {
            break;
        }
        page.page += 1;
    }
    assert!(checked > acked.len(), "audited shas checked: {checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_ref_move_was_lost_in_a_crash_is_rolled_forward_when_the_server_starts() {
    timeout(Duration::from_secs(90), recovered_at_start()).await.expect("finished in time");
}

async fn recovered_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_for(dir.path());
    let (app, ws, orphan) = {
        let installation = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).expect("open");
        let conman = installation.conman;
        conman.bootstrap_admin(ADMIN_EMAIL, "Ada Admin", PASSWORD).await.expect("bootstrap");
        let actor = conman.local_actor(ADMIN_EMAIL, Default::default()).await.expect("actor");
        let app = conman.create_app(&actor, NewApp { name: "window".into(), ..Default::default() }).await.expect("app");
        let ws = conman.create_workspace(&actor, app.id, None).await.expect("workspace");
        conman.write_file(&actor, app.id, ws.id, "audited.yaml", b"a\n".to_vec(), None).await.expect("write");
        // The crash window: the write's audit entry and intent were
        // committed, the process died before the WIP ref moved.
        let request = WriteRequest {
            target_ref: ws.wip_ref(),
            base_ref: ws.branch_ref(),
            ops: vec![FileOp::Put { path: RepoPath::parse("orphan.yaml").unwrap(), content: b"o\n".to_vec() }],
            message: "written just before the crash".into(),
            author: Signature { name: "Ada Admin".into(), email: ADMIN_EMAIL.into() },
        };
        let plan = conman.ports().git.plan_write(app.id, request).await.expect("git plan");
        let orphan = plan.head.clone();
        let intent = Intent {
            id: IntentId(uuid::Uuid::now_v7()),
            app_id: app.id,
            operation: "workspace.files_changed".into(),
            owner_type: "workspace".into(),
            owner_id: ws.id.to_string(),
            moves: plan.moves,
            created_at: chrono::Utc::now(),
        };
        let unit = UnitOfWork::new().unaudited(IntentMutation::RecordIntent(intent), Unaudited::RefIntent);
        conman.ports().store.commit(unit).await.expect("intent recorded");
        let wip = conman.ports().git.resolve_ref(app.id, &ws.wip_ref()).await.unwrap();
        assert_ne!(wip.as_ref(), Some(&orphan), "the ref has not moved yet");
        (app.id.to_string(), ws.id.to_string(), orphan)
    };

    let server = ServerProcess::start(dir.path());
    let http = client();
    let base = server.base.clone();
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": PASSWORD }))
        .send()
        .await;
    let login: Value = r.expect("login").json().await.expect("login body");
    let token = login["data"]["token"].as_str().expect("token").to_owned();
    let audit_url = format!("{base}/api/apps/{app}/audit?entity_id={ws}&limit=100");
    let (status, audit) = call(&http, reqwest::Method::GET, &audit_url, &token, None).await;
    assert_eq!(status, 200, "{audit}");
    let newest = &audit["data"][0];
    assert_eq!(newest["action"], "intent.rolled_forward", "{audit}");
    assert_eq!(newest["git_sha"], orphan.as_str());
    assert_eq!(newest["actor_id"], Value::Null, "the system recovered it");
    let total = audit["pagination"]["total"].clone();
    let (status, file) = call(
        &http,
        reqwest::Method::GET,
        &format!("{base}/api/apps/{app}/workspaces/{ws}/files?path=orphan.yaml"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{file}");
    drop(server);

    // A second start finds nothing left to repair.
    let server = ServerProcess::start(dir.path());
    let base = server.base.clone();
    let audit_url = format!("{base}/api/apps/{app}/audit?entity_id={ws}&limit=100");
    let (_, audit) = call(&http, reqwest::Method::GET, &audit_url, &token, None).await;
    assert_eq!(audit["pagination"]["total"], total, "recovery is idempotent");
    drop(server);

    let installation = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).expect("reopen");
    let verification = installation.conman.verify_audit_chain().await.expect("verify");
    assert!(verification.is_intact(), "{:?}", verification.first_break);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_use_creates_exactly_one_default_workspace() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "first-use").await;
    let (base, stop, server) = serve(&s).await;
    let http = client();
    let url = format!("{base}/api/apps/{app}/workspaces");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), admin.clone());
            tokio::spawn(async move { call(&http, reqwest::Method::GET, &url, &token, None).await })
        })
        .collect();
    for task in tasks {
        let (status, body) = timeout(Duration::from_secs(30), task).await.expect("in time").expect("task");
        assert_eq!(status, 200, "{body}");
    }
    let r = s.get(&format!("/api/apps/{app}/workspaces"), &admin).await;
    assert_eq!(r.body["pagination"]["total"], 1, "{}", r.text);
    assert_eq!(r.data()[0]["is_default"], true);
    let _ = stop.send(());
    timeout(Duration::from_secs(10), server).await.expect("server stops").expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_lock_left_by_a_killed_server_does_not_make_the_workspace_unwritable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_for(dir.path());
    let (app, ws, lock) = {
        let installation = compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).expect("open");
        let conman = installation.conman;
        conman.bootstrap_admin(ADMIN_EMAIL, "Ada Admin", PASSWORD).await.expect("bootstrap");
        let actor = conman.local_actor(ADMIN_EMAIL, Default::default()).await.expect("actor");
        let app = conman.create_app(&actor, NewApp { name: "locked".into(), ..Default::default() }).await.expect("app");
        let ws = conman.create_workspace(&actor, app.id, None).await.expect("workspace");
        let out = conman.write_file(&actor, app.id, ws.id, "a.yaml", b"a\n".to_vec(), None).await.expect("write");
        // What SIGKILL leaves when it lands between libgit2's lock and rename.
        let lock = dir.path().join("repos").join(format!("{}.git", app.id)).join(format!("{}.lock", ws.wip_ref()));
        std::fs::write(&lock, format!("{}\n", out.head)).unwrap();
        (app.id.to_string(), ws.id.to_string(), lock)
    };
    let server = ServerProcess::start(dir.path());
    let http = client();
    let base = server.base.clone();
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": PASSWORD }))
        .send()
        .await;
    let login: Value = r.expect("login").json().await.expect("login body");
    let token = login["data"]["token"].as_str().expect("token").to_owned();
    let url = format!("{base}/api/apps/{app}/workspaces/{ws}/files");
    let (status, body) =
        call(&http, reqwest::Method::PUT, &url, &token, Some(json!({ "path": "b.yaml", "content": b64("b\n") }))).await;
    assert_eq!(status, 200, "a write after restart: {body} (stale lock still present: {})", lock.exists());
}
