//! Shared harness of the HTTP integration tests: a fresh installation in a
//! temporary data directory (real SQLite store, real Git repositories), an
//! operator bootstrapped in it, and requests sent in-process through
//! `tower::ServiceExt::oneshot` against `conman_api::router` (no sockets).
//! Each test binary uses a subset of the helpers.
#![allow(dead_code, unreachable_pub)]

pub mod contract;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use chrono::SubsecRound as _;
use clap::Parser;
use conman_api::compose;
use conman_api::config::Settings;
use conman_core::domain::Timestamp;
use conman_core::ids::AppId;
use conman_core::ports::git::{FileOp, Sha, Signature, WriteRequest};
use conman_core::ports::system::{Argon2Hasher, OsRandomTokens, UuidV7Ids};
use conman_core::ports::Clock;
use conman_core::services::{Actor, Conman, Ports};
use conman_core::validation::RepoPath;
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt as _;

/// The operator every test server starts with.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// Password of every account the tests create (SPEC minimum is 12).
pub const PASSWORD: &str = "correct horse battery staple";

/// Parses `Settings` exactly as the binaries do, from flags only.
#[derive(Parser)]
struct SettingsArgs {
    #[command(flatten)]
    settings: Settings,
}

/// Settings for an installation in `data_dir`.
pub fn settings_for(data_dir: &std::path::Path) -> Settings {
    let data_dir = data_dir.to_str().expect("utf-8 temp path");
    SettingsArgs::try_parse_from(["x", "--data-dir", data_dir]).expect("settings parse").settings
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct TestClock(Mutex<Timestamp>);

impl TestClock {
    /// Starts at the current wall-clock time.
    pub fn new() -> Arc<Self> {
        Arc::new(TestClock(Mutex::new(chrono::Utc::now().trunc_subsecs(6))))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().expect("clock lock");
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// One answer: status, headers, raw body and the body parsed as JSON
/// (`Value::Null` when it is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    /// `error.code` of an error envelope ("" otherwise).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// `error.details.reason` of an error envelope ("" otherwise).
    pub fn reason(&self) -> &str {
        self.body["error"]["details"]["reason"].as_str().unwrap_or("")
    }

    /// `data` of a success envelope.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The `x-request-id` header.
    pub fn request_id(&self) -> &str {
        self.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts status and error code, and that the envelope is well formed.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert_eq!(self.code(), code, "error code; body: {}", self.text);
        assert!(self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "message: {}", self.text);
        assert_eq!(self.body["error"]["request_id"].as_str(), Some(self.request_id()), "request_id: {}", self.text);
        self
    }

    /// Asserts a success status.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        self
    }
}

/// Base64 of `bytes`, as file content travels in JSON.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes base64 file content.
pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64 content")
}

/// A request to build by hand (headers, raw bodies, client address).
pub struct RawRequest<'a> {
    pub method: Method,
    pub path: &'a str,
    pub token: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: Vec<u8>,
    pub headers: Vec<(&'a str, String)>,
    pub client: Option<SocketAddr>,
}

impl<'a> RawRequest<'a> {
    /// A request without body.
    pub fn new(method: Method, path: &'a str) -> Self {
        RawRequest {
            method,
            path,
            token: None,
            content_type: None,
            body: Vec::new(),
            headers: Vec::new(),
            client: None,
        }
    }

    pub fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    /// A raw body with `content-type: application/json`.
    pub fn json_text(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some("application/json");
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Pretends the request came from `ip` (what the TCP server records).
    pub fn client_ip(mut self, ip: &str) -> Self {
        self.client = Some(SocketAddr::new(ip.parse().expect("ip"), 40000));
        self
    }
}

/// A Conman installation and a way to talk HTTP to it.
pub struct TestServer {
    pub dir: TempDir,
    pub conman: Arc<Conman>,
    pub router: axum::Router,
    /// Session of the bootstrapped operator.
    pub admin_token: String,
}

/// Every repository a test leaves behind must satisfy `git fsck --strict`:
/// nothing Conman writes may make git warn (`hasDotgit`, bad modes, broken
/// trees). Checked when the server is dropped, unless the test already failed.
impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let Ok(repos) = std::fs::read_dir(self.dir.path().join("repos")) else { return };
        for repo in repos.flatten().map(|e| e.path()) {
            if repo.extension().is_none_or(|ext| ext != "git") || !repo.join("HEAD").is_file() {
                continue;
            }
            let out = std::process::Command::new("git")
                .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
                .env("GIT_DIR", &repo)
                .output()
                .expect("git fsck runs");
            let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(
                out.status.success() && report.trim().is_empty(),
                "git fsck of {} reported:\n{report}",
                repo.display()
            );
        }
    }
}

impl TestServer {
    /// A fresh installation opened the way the binaries open it.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`start`](Self::start) with settings changed by `tune` first.
    pub async fn start_with(tune: impl FnOnce(&mut Settings)) -> Self {
        Self::open_with(tune).await.0
    }

    /// [`start_with`](Self::start_with), also answering the opened
    /// installation (its gate sandbox and start-up verdict).
    pub async fn open_with(tune: impl FnOnce(&mut Settings)) -> (Self, compose::Installation) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = settings_for(dir.path());
        tune(&mut settings);
        let installation =
            compose::open_with_hasher(&settings, Argon2Hasher::insecure_fast_for_tests()).expect("open installation");
        let server = Self::from_conman(dir, installation.conman.clone()).await;
        (server, installation)
    }

    /// A fresh installation whose clock the test controls.
    pub async fn start_with_clock(clock: Arc<TestClock>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = settings_for(dir.path());
        let store = conman_store_sqlite::SqliteStore::open(&dir.path().join("conman.db")).expect("open store");
        let git = conman_git::GitRepos::new(dir.path().join("repos")).expect("open repos");
        let ports = Ports {
            store: Arc::new(store),
            git: Arc::new(git),
            clock,
            ids: Arc::new(UuidV7Ids),
            passwords: Arc::new(Argon2Hasher::insecure_fast_for_tests()),
            tokens: Arc::new(OsRandomTokens),
        };
        let conman = Arc::new(Conman::new(ports, settings.core_config()));
        Self::from_conman(dir, conman).await
    }

    async fn from_conman(dir: TempDir, conman: Arc<Conman>) -> Self {
        conman.bootstrap_admin(ADMIN_EMAIL, "Ada Admin", PASSWORD).await.expect("bootstrap operator");
        let router = conman_api::router(conman.clone());
        let mut server = TestServer { dir, conman, router, admin_token: String::new() };
        server.admin_token = server.login(ADMIN_EMAIL, PASSWORD).await;
        server
    }

    /// Sends a hand-built request.
    pub async fn send(&self, raw: RawRequest<'_>) -> Reply {
        let method = raw.method.to_string();
        let mut builder = Request::builder().method(raw.method).uri(raw.path);
        if let Some(token) = raw.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(ct) = raw.content_type {
            builder = builder.header("content-type", ct);
        }
        for (name, value) in raw.headers {
            builder = builder.header(name, value);
        }
        let uri = raw.path.to_owned();
        let mut request = builder.body(Body::from(raw.body)).expect("request");
        if let Some(addr) = raw.client {
            request.extensions_mut().insert(ConnectInfo(addr));
        }
        let response = self.router.clone().oneshot(request).await.expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        contract::check(&method, &uri, status.as_u16(), content_type, &text);
        Reply { status, headers, text, body }
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn req(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut raw = RawRequest::new(method.parse().expect("method"), path);
        raw.token = token;
        if let Some(body) = body {
            raw = raw.json_text(serde_json::to_vec(&body).expect("json"));
        }
        self.send(raw).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.req("GET", path, Some(token), None).await
    }

    /// Logs in and answers the session token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self.req("POST", "/api/auth/login", None, Some(json!({ "email": email, "password": password }))).await;
        r.assert_status(200);
        r.data()["token"].as_str().expect("token").to_owned()
    }

    /// The caller's user id.
    pub async fn user_id(&self, token: &str) -> String {
        let r = self.get("/api/me", token).await;
        r.assert_status(200);
        r.data()["user"]["id"].as_str().expect("user id").to_owned()
    }

    /// Creates an app and answers its id.
    pub async fn create_app(&self, token: &str, name: &str) -> String {
        let r = self.req("POST", "/api/apps", Some(token), Some(json!({ "name": name }))).await;
        r.assert_status(201);
        r.data()["id"].as_str().expect("app id").to_owned()
    }

    /// Invites `email` with `role`, answers the create reply.
    pub async fn invite(&self, admin_token: &str, app_id: &str, email: &str, role: &str) -> Reply {
        let r = self
            .req(
                "POST",
                &format!("/api/apps/{app_id}/invites"),
                Some(admin_token),
                Some(json!({ "email": email, "role": role })),
            )
            .await;
        r.assert_status(201);
        r
    }

    /// Invites a new account and accepts for it; answers its session token.
    pub async fn invite_and_accept(&self, admin_token: &str, app_id: &str, email: &str, role: &str) -> String {
        let invite = self.invite(admin_token, app_id, email, role).await;
        let token = invite.data()["token"].as_str().expect("invite token");
        let r = self
            .req(
                "POST",
                "/api/auth/accept-invite",
                None,
                Some(json!({ "token": token, "name": "Invited Person", "password": PASSWORD })),
            )
            .await;
        r.assert_status(200);
        r.data()["token"].as_str().expect("session token").to_owned()
    }

    /// The caller's default workspace in the app (created on first use).
    pub async fn default_workspace(&self, token: &str, app_id: &str) -> String {
        let me = self.user_id(token).await;
        let r = self.get(&format!("/api/apps/{app_id}/workspaces?limit=100"), token).await;
        r.assert_status(200);
        r.data()
            .as_array()
            .expect("workspace list")
            .iter()
            .find(|w| w["owner_id"] == me.as_str() && w["is_default"] == true)
            .and_then(|w| w["id"].as_str())
            .expect("default workspace")
            .to_owned()
    }

    /// `PUT .../files`.
    pub async fn put_file(&self, token: &str, app_id: &str, ws_id: &str, path: &str, content: &[u8]) -> Reply {
        self.req(
            "PUT",
            &format!("/api/apps/{app_id}/workspaces/{ws_id}/files"),
            Some(token),
            Some(json!({ "path": path, "content": b64(content) })),
        )
        .await
    }

    /// Content of a file at the workspace head, `None` when it is absent.
    pub async fn read_file(&self, token: &str, app_id: &str, ws_id: &str, path: &str) -> Option<Vec<u8>> {
        let r = self.get(&format!("/api/apps/{app_id}/workspaces/{ws_id}/files?path={}", encode(path)), token).await;
        match r.status.as_u16() {
            200 => {
                assert_eq!(r.data()["kind"], "file", "{}", r.text);
                Some(unb64(r.data()["content"].as_str().expect("content")))
            }
            404 => None,
            _ => panic!("reading {path}: {}", r.text),
        }
    }

    /// Names of the entries of a directory (root when `path` is empty).
    pub async fn list_dir(&self, token: &str, app_id: &str, ws_id: &str, path: &str) -> Vec<String> {
        let r = self.get(&format!("/api/apps/{app_id}/workspaces/{ws_id}/files?path={}", encode(path)), token).await;
        r.assert_status(200);
        assert_eq!(r.data()["kind"], "dir", "{}", r.text);
        r.data()["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The workspace head as the API reports it.
    pub async fn head(&self, token: &str, app_id: &str, ws_id: &str) -> String {
        let r = self.get(&format!("/api/apps/{app_id}/workspaces/{ws_id}"), token).await;
        r.assert_status(200);
        r.data()["head_sha"].as_str().expect("head_sha").to_owned()
    }

    /// Number of audit events of the app (`pagination.total`).
    pub async fn audit_total(&self, token: &str, app_id: &str) -> u64 {
        let r = self.get(&format!("/api/apps/{app_id}/audit?limit=1"), token).await;
        r.assert_status(200);
        r.body["pagination"]["total"].as_u64().expect("total")
    }

    /// Number of audit events in the whole installation (every mutation
    /// writes one in the same transaction, so an unchanged count means the
    /// store did not change).
    pub async fn chain_len(&self) -> u64 {
        let v = self.conman.verify_audit_chain().await.expect("verify chain");
        assert!(v.is_intact(), "audit chain broken: {:?}", v.first_break);
        v.records
    }

    /// The operator as an in-process actor (for operator-only core reads).
    pub async fn operator(&self) -> Actor {
        self.conman.local_actor(ADMIN_EMAIL, Default::default()).await.expect("operator actor")
    }

    /// Writes a file straight onto a branch of the app's repository through
    /// the git port (integration-branch moves have no HTTP route yet).
    pub async fn write_upstream(&self, app_id: &str, branch: &str, path: &str, content: &[u8]) -> Sha {
        let app: AppId = app_id.parse().expect("app id");
        let r#ref = format!("refs/heads/{branch}");
        let request = WriteRequest {
            target_ref: r#ref.clone(),
            base_ref: r#ref,
            ops: vec![FileOp::Put { path: RepoPath::parse(path).expect("path"), content: content.to_vec() }],
            message: format!("upstream edit of {path}"),
            author: Signature { name: "Upstream".into(), email: "upstream@example.com".into() },
        };
        self.conman.ports().git.write(app, request).await.expect("upstream write")
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Job workers (one slot, polling every 10 ms) running on a test server's
/// installation until [`Workers::stop`].
pub struct Workers(Option<tokio::sync::oneshot::Sender<()>>, Option<tokio::task::JoinHandle<()>>);

impl Workers {
    /// Starts them.
    pub fn start(s: &TestServer) -> Self {
        use conman_api::runtime::{run_workers, NotifyWakeup, WorkerOptions};
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options =
            WorkerOptions { concurrency: 1, poll_interval: std::time::Duration::from_millis(10), ..Default::default() };
        let task = tokio::spawn(run_workers(s.conman.clone(), Arc::new(NotifyWakeup::new()), options, async {
            let _ = stopped.await;
        }));
        Workers(Some(stop), Some(task))
    }

    /// Stops them and waits (at most 20 s) until they have.
    pub async fn stop(mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.1.take() {
            tokio::time::timeout(std::time::Duration::from_secs(20), task).await.expect("workers stop").expect("join");
        }
    }
}
