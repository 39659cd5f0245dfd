//! Request body ceilings over real TCP (issue 18 item 5, decision 0014):
//! unauthenticated endpoints used to read bodies up to 90 MiB, so a few
//! parallel anonymous logins held a gigabyte. Each route class now has its
//! own ceiling, decided before the body is held:
//! - a body over the ceiling with a `Content-Length` is answered `413`
//!   without a byte of it being read (the test sends none);
//! - a chunked body is cut off once it passes the ceiling: the server
//!   answers `413` and closes, and the client never gets to send the rest;
//! - a file write may carry the app's `file_size_limit_bytes` of content in
//!   base64; the caller is authenticated and the app found first.
//!
//! Every answer goes through the contract check. Reads are bounded by a
//! generous guard so a server that waits for a body it should refuse fails
//! the test instead of hanging it; no assertion is about time.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{b64, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

/// Longest wait for an answer the server owes at once (a hang guard).
const GUARD: Duration = Duration::from_secs(60);

/// The ceiling of the unauthenticated auth bodies (`crate::body`).
const AUTH_LIMIT: u64 = 16 * 1024;

/// What a chunked upload of `UPLOAD_BYTES` would send in total: more than
/// any ceiling of these tests, less than the old 90 MiB global ceiling (so
/// the old server read it whole and answered something other than 413).
const UPLOAD_BYTES: usize = 64 * 1024 * 1024;

const CHUNK: usize = 64 * 1024;

/// Serves `s` on a real socket until the returned sender fires.
async fn serve(s: &TestServer) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(conman_api::serve(listener, s.conman.clone(), async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// One HTTP/1.1 answer read off a socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    text: String,
    body: Value,
}

impl Answer {
    #[track_caller]
    fn assert_too_large(&self, limit: u64) {
        assert_eq!(self.status, 413, "status; body: {}", self.text);
        assert_eq!(self.body["error"]["code"], "payload_too_large", "{}", self.text);
        assert_eq!(self.body["error"]["details"]["limit_bytes"], limit, "{}", self.text);
        assert!(self.body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{}", self.text);
    }
}

/// Reads one answer (status line, headers, a `Content-Length` body) and
/// checks it against the contract.
async fn read_answer(read: OwnedReadHalf, method: &str, path: &str) -> Answer {
    let mut reader = BufReader::new(read);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line, got {status_line:?}"));
    let (mut length, mut content_type) = (0usize, String::new());
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header");
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().expect("content-length"),
            "content-type" => content_type = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut bytes = vec![0; length];
    reader.read_exact(&mut bytes).await.expect("answer body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    common::contract::check(method, path, status, &content_type, &text);
    Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

fn head(method: &str, path: &str, addr: SocketAddr, token: Option<&str>, framing: &str) -> String {
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}{framing}\r\n")
}

/// Sends only the head of a request declaring a `declared`-byte body, and
/// reads the answer without sending a byte of that body.
async fn declare_only(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, declared: u64) -> Answer {
    let (read, mut write) = TcpStream::connect(addr).await.expect("connect").into_split();
    let framing = format!("content-length: {declared}\r\n");
    write.write_all(head(method, path, addr, token, &framing).as_bytes()).await.expect("send head");
    let answer = tokio::time::timeout(GUARD, read_answer(read, method, path))
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} {path}: the server is waiting for a body it should refuse"));
    drop(write);
    answer
}

/// A chunked upload of `UPLOAD_BYTES`: `prefix`, then `A`s. Answers the
/// server's answer and whether the client got to send the whole body.
async fn upload_chunked(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    prefix: &[u8],
) -> (Answer, bool) {
    let (read, mut write) = TcpStream::connect(addr).await.expect("connect").into_split();
    let framing = "transfer-encoding: chunked\r\n";
    write.write_all(head(method, path, addr, token, framing).as_bytes()).await.expect("send head");
    let mut first = prefix.to_vec();
    first.resize(CHUNK, b'A');
    let writer = tokio::spawn(async move {
        let filler = vec![b'A'; CHUNK];
        let mut sent = 0;
        while sent < UPLOAD_BYTES {
            let data = if sent == 0 { &first } else { &filler };
            let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
            frame.extend_from_slice(data);
            frame.extend_from_slice(b"\r\n");
            if write.write_all(&frame).await.is_err() {
                return false;
            }
            sent += data.len();
        }
        write.write_all(b"0\r\n\r\n").await.is_ok()
    });
    let answer = tokio::time::timeout(GUARD, read_answer(read, method, path))
        .await
        .unwrap_or_else(|_| panic!("no answer to the chunked {method} {path}"));
    let sent_all = tokio::time::timeout(GUARD, writer)
        .await
        .unwrap_or_else(|_| panic!("the server answered {method} {path} but neither read nor closed the connection"))
        .expect("writer task");
    (answer, sent_all)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(GUARD).build().expect("http client")
}

/// Sends a JSON body with a `Content-Length` and checks the answer.
async fn post_json(
    addr: SocketAddr,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut request = client()
        .request(method.clone(), format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().await.expect("answer body");
    common::contract::check(method.as_str(), path, status, &content_type, &text);
    Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_one_mib_login_is_refused_with_413_in_the_envelope() {
    let s = TestServer::start().await;
    let (addr, _stop) = serve(&s).await;
    let password = "p".repeat(1024 * 1024);
    let body = serde_json::to_vec(&json!({ "email": common::ADMIN_EMAIL, "password": password })).expect("json");
    post_json(addr, reqwest::Method::POST, "/api/auth/login", None, body).await.assert_too_large(AUTH_LIMIT);
    // A login of ordinary size still works.
    let body =
        serde_json::to_vec(&json!({ "email": common::ADMIN_EMAIL, "password": common::PASSWORD })).expect("json");
    let r = post_json(addr, reqwest::Method::POST, "/api/auth/login", None, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unauthenticated_endpoint_refuses_a_declared_oversize_body_without_reading_it() {
    let s = TestServer::start().await;
    let (addr, _stop) = serve(&s).await;
    for path in ["/api/auth/login", "/api/auth/forgot-password", "/api/auth/reset-password", "/api/auth/accept-invite"]
    {
        declare_only(addr, "POST", path, None, 50 * 1024 * 1024).await.assert_too_large(AUTH_LIMIT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_login_body_is_cut_off_once_it_passes_the_limit() {
    let s = TestServer::start().await;
    let (addr, _stop) = serve(&s).await;
    let (answer, sent_all) =
        upload_chunked(addr, "POST", "/api/auth/login", None, br#"{"email":"a@example.com","password":""#).await;
    answer.assert_too_large(AUTH_LIMIT);
    assert!(!sent_all, "the server read the whole {UPLOAD_BYTES}-byte body instead of cutting it off");
    // The server is fine afterwards.
    let r = post_json(
        addr,
        reqwest::Method::POST,
        "/api/auth/forgot-password",
        None,
        br#"{"email":"x@example.com"}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_route_refuses_a_one_mib_body_with_413() {
    let s = TestServer::start().await;
    let (addr, _stop) = serve(&s).await;
    let body = serde_json::to_vec(&json!({ "name": "n".repeat(1024 * 1024) })).expect("json");
    post_json(addr, reqwest::Method::POST, "/api/apps", Some(&s.admin_token), body).await.assert_too_large(512 * 1024);
}

/// An app whose files may hold 1 KiB, its admin's workspace, and the
/// ceiling of a single file write there (1 KiB in base64 + 128 KiB).
struct FileFixture {
    s: TestServer,
    app: String,
    ws: String,
    put_limit: u64,
}

async fn file_fixture() -> FileFixture {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "limits").await;
    let r = s
        .req(
            "PATCH",
            &format!("/api/apps/{app}/settings"),
            Some(&admin),
            Some(json!({ "file_size_limit_bytes": 1024 })),
        )
        .await;
    r.assert_status(200);
    let ws = s.default_workspace(&admin, &app).await;
    FileFixture { s, app, ws, put_limit: 1368 + 128 * 1024 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_write_at_the_apps_limit_succeeds_and_a_body_over_it_is_refused_unread() {
    let f = file_fixture().await;
    let (addr, _stop) = serve(&f.s).await;
    let admin = f.s.admin_token.as_str();
    let files = format!("/api/apps/{}/workspaces/{}/files", f.app, f.ws);
    let put = |content: Vec<u8>| serde_json::to_vec(&json!({ "path": "edge.bin", "content": b64(content) })).unwrap();

    let r = post_json(addr, reqwest::Method::PUT, &files, Some(admin), put(vec![b'y'; 1024])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // One byte over: the body fits the wire ceiling, the core refuses the content.
    post_json(addr, reqwest::Method::PUT, &files, Some(admin), put(vec![b'y'; 1025])).await.assert_too_large(1024);
    // Far over: refused from the declared length, before the body is read.
    declare_only(addr, "PUT", &files, Some(admin), 50 * 1024 * 1024).await.assert_too_large(f.put_limit);
    // Chunked: cut off once it passes the ceiling.
    let (answer, sent_all) =
        upload_chunked(addr, "PUT", &files, Some(admin), br#"{"path":"big.bin","content":""#).await;
    answer.assert_too_large(f.put_limit);
    assert!(!sent_all, "the server read the whole {UPLOAD_BYTES}-byte file body instead of cutting it off");
    assert_eq!(f.s.read_file(admin, &f.app, &f.ws, "edge.bin").await, Some(vec![b'y'; 1024]));
    assert_eq!(f.s.read_file(admin, &f.app, &f.ws, "big.bin").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_carries_at_most_the_apps_file_limit_of_content() {
    let f = file_fixture().await;
    let (addr, _stop) = serve(&f.s).await;
    let admin = f.s.admin_token.as_str();
    let changes = format!("/api/apps/{}/workspaces/{}/changes", f.app, f.ws);
    let batch = serde_json::to_vec(&json!({ "ops": [
        { "op": "put", "path": "a.bin", "content": b64(vec![b'a'; 1024]) },
        { "op": "move", "from": "a.bin", "to": "b.bin" },
    ] }))
    .unwrap();
    let r = post_json(addr, reqwest::Method::POST, &changes, Some(admin), batch).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let batch_limit = 1368 + 128 * 1024 + 1000 * (2 * 4096 + 64);
    let (answer, sent_all) =
        upload_chunked(addr, "POST", &changes, Some(admin), br#"{"ops":[{"op":"put","path":"c.bin","content":""#).await;
    answer.assert_too_large(batch_limit);
    assert!(!sent_all, "the server read the whole {UPLOAD_BYTES}-byte batch instead of cutting it off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_write_is_authenticated_and_its_app_found_before_the_body_is_read() {
    let f = file_fixture().await;
    let (addr, _stop) = serve(&f.s).await;
    let files = format!("/api/apps/{}/workspaces/{}/files", f.app, f.ws);
    // Anonymous: 401 before the body.
    let (answer, sent_all) = upload_chunked(addr, "PUT", &files, None, br#"{"path":"x","content":""#).await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert!(!sent_all, "an anonymous body was read whole");
    // Signed in, but not a member of the app: 404 before the body.
    let other_app = f.s.create_app(&f.s.admin_token, "elsewhere").await;
    let outsider = f.s.invite_and_accept(&f.s.admin_token, &other_app, "outsider@example.com", "app_admin").await;
    let (answer, sent_all) = upload_chunked(addr, "PUT", &files, Some(&outsider), br#"{"path":"x","content":""#).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], "not_found", "{}", answer.text);
    assert!(!sent_all, "an outsider's body was read whole");
}
