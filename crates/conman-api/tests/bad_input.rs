//! Bad input of the foundation slice (issue "Bad input"): every refusal
//! answers the right status and `error.code`, and changes nothing — the
//! audit chain (one event per mutation, same transaction), the workspace
//! head and the listings are re-read after each refused request.
//!
//! Covered: traversal and odd paths, blocked paths, oversize content (413),
//! invalid base64, malformed JSON, unknown fields, wrong types, malformed
//! UUIDs, missing/garbage/revoked credentials (401), wrong role on every
//! endpoint of the slice (403), unknown ids (404), ids that exist but
//! belong to another app or to an app the caller is not in (404).

mod common;

use axum::http::Method;
use common::{b64, RawRequest, TestServer};
use serde_json::{json, Value};

/// An app with an admin workspace that has one file, and a second app.
struct Fixture {
    s: TestServer,
    admin: String,
    app: String,
    ws: String,
    other_app: String,
    other_ws: String,
}

async fn fixture() -> Fixture {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "app-a").await;
    let ws = s.default_workspace(&admin, &app).await;
    s.put_file(&admin, &app, &ws, "exists.txt", b"original").await.assert_status(200);
    let other_app = s.create_app(&admin, "app-b").await;
    let other_ws = s.default_workspace(&admin, &other_app).await;
    s.put_file(&admin, &other_app, &other_ws, "b.txt", b"in b").await.assert_status(200);
    Fixture { s, admin, app, ws, other_app, other_ws }
}

impl Fixture {
    fn ws_path(&self, tail: &str) -> String {
        format!("/api/apps/{}/workspaces/{}{tail}", self.app, self.ws)
    }

    /// What must not change: the whole audit chain, the workspace head and files.
    async fn snapshot(&self) -> (u64, String, Vec<String>) {
        (
            self.s.chain_len().await,
            self.s.head(&self.admin, &self.app, &self.ws).await,
            self.s.list_dir(&self.admin, &self.app, &self.ws, "").await,
        )
    }
}

fn long_path() -> String {
    format!("{}/x.yaml", "d".repeat(4995))
}

/// Paths SPEC §2.2 refuses, with the reason the answer must give.
fn bad_paths() -> Vec<(String, &'static str)> {
    vec![
        ("../x".into(), "dot_segment"),
        ("x/../../y".into(), "dot_segment"),
        ("/etc/passwd".into(), "absolute"),
        ("a//b".into(), "empty_segment"),
        ("a/".into(), "empty_segment"),
        ("a/./b".into(), "dot_segment"),
        ("./a".into(), "dot_segment"),
        ("a\u{0}b".into(), "nul"),
        ("a\\b".into(), "backslash"),
        ("..\\x".into(), "backslash"),
        ("a\tb".into(), "control_char"),
        (long_path(), "too_long"),
    ]
}

#[tokio::test]
async fn traversal_and_odd_paths_are_refused_on_every_file_route_and_change_nothing() {
    let f = fixture().await;
    let (s, admin) = (&f.s, f.admin.as_str());
    let before = f.snapshot().await;
    let mut cases = bad_paths();
    cases.push((String::new(), "empty"));
    for (path, reason) in &cases {
        let shown = path.chars().take(40).collect::<String>();
        let attempts: Vec<(&str, String, Value, Option<u64>)> = vec![
            ("PUT", f.ws_path("/files"), json!({ "path": path, "content": b64("x") }), None),
            ("DELETE", f.ws_path("/files"), json!({ "path": path }), None),
            (
                "POST",
                f.ws_path("/changes"),
                json!({ "ops": [{ "op": "put", "path": path, "content": b64("x") }] }),
                Some(0),
            ),
            (
                "POST",
                f.ws_path("/changes"),
                json!({ "ops": [
                    { "op": "put", "path": "ok.txt", "content": b64("fine") },
                    { "op": "delete", "path": path },
                ] }),
                Some(1),
            ),
            (
                "POST",
                f.ws_path("/changes"),
                json!({ "ops": [{ "op": "move", "from": "exists.txt", "to": path }] }),
                Some(0),
            ),
            (
                "POST",
                f.ws_path("/changes"),
                json!({ "ops": [{ "op": "move", "from": path, "to": "moved.txt" }] }),
                Some(0),
            ),
        ];
        for (method, url, body, op_index) in attempts {
            let r = s.req(method, &url, Some(admin), Some(body.clone())).await;
            r.assert_error(400, "validation_error");
            assert_eq!(r.reason(), *reason, "{method} {url} path {shown:?}: {}", r.text);
            assert_eq!(r.body["error"]["details"]["field"], "path", "{method} path {shown:?}");
            if let Some(i) = op_index {
                assert_eq!(r.body["error"]["details"]["op_index"], i, "{body}: {}", r.text);
            }
        }
        if !path.is_empty() {
            let r = s.get(&format!("{}?path={}", f.ws_path("/files"), common::encode(path)), admin).await;
            r.assert_error(400, "validation_error");
            assert_eq!(r.reason(), *reason, "GET path {shown:?}");
        }
    }
    assert_eq!(f.snapshot().await, before, "refused writes changed something");
    assert_eq!(s.read_file(admin, &f.app, &f.ws, "ok.txt").await, None, "a batch is all or nothing");
    assert_eq!(s.read_file(admin, &f.app, &f.ws, "exists.txt").await.as_deref(), Some(&b"original"[..]));
}

#[tokio::test]
async fn a_path_of_exactly_4096_bytes_is_accepted() {
    let f = fixture().await;
    let path = format!("{}/x.yaml", "d".repeat(4096 - 7));
    assert_eq!(path.len(), 4096);
    f.s.put_file(&f.admin, &f.app, &f.ws, &path, b"deep").await.assert_status(200);
    assert_eq!(f.s.read_file(&f.admin, &f.app, &f.ws, &path).await.as_deref(), Some(&b"deep"[..]));
}

#[tokio::test]
async fn blocked_paths_are_refused_with_reason_path_blocked_and_change_nothing() {
    let f = fixture().await;
    let (s, admin) = (&f.s, f.admin.as_str());
    let before = f.snapshot().await;
    for path in [".git/config", ".git", ".git/hooks/pre-commit", ".github/workflows/x.yml", ".gitignore"] {
        let attempts = [
            ("PUT", f.ws_path("/files"), json!({ "path": path, "content": b64("x") })),
            ("DELETE", f.ws_path("/files"), json!({ "path": path })),
            ("POST", f.ws_path("/changes"), json!({ "ops": [{ "op": "put", "path": path, "content": b64("x") }] })),
            (
                "POST",
                f.ws_path("/changes"),
                json!({ "ops": [
                    { "op": "put", "path": "ok.txt", "content": b64("fine") },
                    { "op": "move", "from": "exists.txt", "to": path },
                ] }),
            ),
            ("POST", f.ws_path("/changes"), json!({ "ops": [{ "op": "move", "from": path, "to": "x.txt" }] })),
        ];
        for (method, url, body) in attempts {
            let r = s.req(method, &url, Some(admin), Some(body.clone())).await;
            r.assert_error(400, "validation_error");
            assert_eq!(r.reason(), "path_blocked", "{method} {body}: {}", r.text);
        }
    }
    assert_eq!(f.snapshot().await, before);

    // The app's own list applies; `.git/**` stays blocked whatever it says.
    let r = s
        .req(
            "PATCH",
            &format!("/api/apps/{}/settings", f.app),
            Some(admin),
            Some(json!({ "blocked_paths": ["secrets/**"] })),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.data()["settings"]["blocked_paths"], json!(["secrets/**"]));
    let r = s.put_file(admin, &f.app, &f.ws, "secrets/prod.yaml", b"x").await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "path_blocked");
    let r = s.put_file(admin, &f.app, &f.ws, ".git/config", b"x").await;
    assert_eq!(r.reason(), "path_blocked");
    s.put_file(admin, &f.app, &f.ws, ".github/workflows/x.yml", b"x").await.assert_status(200);
}

/// Issue 18 item 6: every spelling of a git-special name that git or a
/// case-insensitive filesystem treats as the lowercase one is refused like
/// it, and the repository stays clean for `git fsck` (checked when the
/// server drops).
#[tokio::test]
async fn git_special_names_are_blocked_in_every_spelling_git_sees() {
    let f = fixture().await;
    let (s, admin) = (&f.s, f.admin.as_str());
    let before = f.snapshot().await;
    for path in [
        ".GITHUB/workflows/x.yml",
        ".GITIGNORE",
        ".git\u{200c}",
        ".g\u{200c}it/config",
        "a/.GIT/x",
        "sub/.git./x",
        "GIT~1/config",
        ".git::$INDEX_ALLOCATION/x",
    ] {
        let r = s.put_file(admin, &f.app, &f.ws, path, b"x").await;
        r.assert_error(400, "validation_error");
        assert_eq!(r.reason(), "path_blocked", "{path:?}: {}", r.text);
        let r = s
            .req(
                "POST",
                &f.ws_path("/changes"),
                Some(admin),
                Some(json!({ "ops": [{ "op": "move", "from": "exists.txt", "to": path }] })),
            )
            .await;
        assert_eq!(r.reason(), "path_blocked", "move to {path:?}: {}", r.text);
    }
    assert_eq!(f.snapshot().await, before);
    // Names that merely look alike are ordinary files.
    for path in ["github/x", ".gitattributes", "docs/.GITHUB", "x.git"] {
        s.put_file(admin, &f.app, &f.ws, path, b"x").await.assert_status(200);
    }
}

#[tokio::test]
async fn content_over_the_apps_file_size_limit_is_refused_with_413_and_changes_nothing() {
    let f = fixture().await;
    let (s, admin) = (&f.s, f.admin.as_str());
    let r = s
        .req(
            "PATCH",
            &format!("/api/apps/{}/settings", f.app),
            Some(admin),
            Some(json!({ "file_size_limit_bytes": 1024 })),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.data()["settings"]["file_size_limit_bytes"], 1024);
    let before = f.snapshot().await;

    let big = vec![b'x'; 1025];
    s.put_file(admin, &f.app, &f.ws, "big.bin", &big).await.assert_error(413, "payload_too_large");
    let r = s
        .req(
            "POST",
            &f.ws_path("/changes"),
            Some(admin),
            Some(json!({ "ops": [
                { "op": "put", "path": "small.txt", "content": b64("ok") },
                { "op": "put", "path": "big.bin", "content": b64(&big) },
            ] })),
        )
        .await;
    r.assert_error(413, "payload_too_large");
    // Replacing an existing file with oversize content is refused too.
    s.put_file(admin, &f.app, &f.ws, "exists.txt", &big).await.assert_error(413, "payload_too_large");
    assert_eq!(f.snapshot().await, before);
    assert_eq!(s.read_file(admin, &f.app, &f.ws, "small.txt").await, None);

    // At the limit is fine; other apps keep their own limit.
    s.put_file(admin, &f.app, &f.ws, "edge.bin", &vec![b'y'; 1024]).await.assert_status(200);
    s.put_file(admin, &f.other_app, &f.other_ws, "big.bin", &big).await.assert_status(200);
}

#[tokio::test]
async fn invalid_settings_are_refused_and_leave_the_settings_as_they_were() {
    let f = fixture().await;
    let (s, admin) = (&f.s, f.admin.as_str());
    let url = format!("/api/apps/{}/settings", f.app);
    let app_before = s.get(&format!("/api/apps/{}", f.app), admin).await.body;
    let chain = s.chain_len().await;
    for body in [
        json!({ "file_size_limit_bytes": 0 }),
        json!({ "file_size_limit_bytes": 67_108_865u64 }),
        json!({ "file_size_limit_bytes": "big" }),
        json!({ "file_size_limit_bytes": -1 }),
        json!({ "required_approvals": 0 }),
        json!({ "required_approvals": 21 }),
        json!({ "baseline_mode": "latest" }),
        json!({ "commit_mode_default": "sometimes" }),
        json!({ "blocked_paths": ["a["] }),
        json!({ "blocked_paths": "secrets/**" }),
        json!({ "integration_branch": "no-such-branch" }),
        json!({ "colour": "blue" }),
        json!([1, 2]),
    ] {
        let r = s.req("PATCH", &url, Some(admin), Some(body.clone())).await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.text);
        r.assert_error(400, "validation_error");
    }
    assert_eq!(s.get(&format!("/api/apps/{}", f.app), admin).await.body, app_before);
    assert_eq!(s.chain_len().await, chain);
}

#[tokio::test]
async fn invalid_base64_content_is_refused_and_changes_nothing() {
    let f = fixture().await;
    let (s, admin) = (&f.s, f.admin.as_str());
    let before = f.snapshot().await;
    for content in ["not base64!!", "YQ", "YQ=", "Y Q==", "====", "aGVsbG8=\n", "a\u{0}b"] {
        let r =
            s.req("PUT", &f.ws_path("/files"), Some(admin), Some(json!({ "path": "f.txt", "content": content }))).await;
        r.assert_error(400, "validation_error");
        assert_eq!(r.reason(), "invalid_base64", "{content:?}");
        let r = s
            .req(
                "POST",
                &f.ws_path("/changes"),
                Some(admin),
                Some(json!({ "ops": [
                    { "op": "put", "path": "ok.txt", "content": b64("x") },
                    { "op": "put", "path": "f.txt", "content": content },
                ] })),
            )
            .await;
        r.assert_error(400, "validation_error");
        assert_eq!(r.reason(), "invalid_base64", "{content:?}");
        assert_eq!(r.body["error"]["details"]["op_index"], 1);
    }
    assert_eq!(f.snapshot().await, before);
    // Empty content is valid base64 of an empty file.
    s.put_file(admin, &f.app, &f.ws, "empty.txt", b"").await.assert_status(200);
    assert_eq!(s.read_file(admin, &f.app, &f.ws, "empty.txt").await.as_deref(), Some(&b""[..]));
}

#[tokio::test]
async fn malformed_json_unknown_fields_wrong_types_and_non_json_bodies_are_validation_errors() {
    let f = fixture().await;
    let (s, admin) = (&f.s, f.admin.as_str());
    let app = f.app.as_str();
    let before = f.snapshot().await;
    let settings = format!("/api/apps/{app}/settings");
    let members = format!("/api/apps/{app}/members");
    let invites = format!("/api/apps/{app}/invites");
    let workspaces = format!("/api/apps/{app}/workspaces");
    let (files, changes, checkpoints, ws) =
        (f.ws_path("/files"), f.ws_path("/changes"), f.ws_path("/checkpoints"), f.ws_path(""));
    let sync = f.ws_path("/sync-integration");
    let cases: Vec<(Method, &str, &str, &str)> = vec![
        // (method, path, body, what is wrong)
        (Method::POST, "/api/auth/login", r#"{"email": "admin@example.com", "password": "#, "truncated JSON"),
        (Method::POST, "/api/auth/login", r#"{"email": "admin@example.com"}"#, "missing field"),
        (Method::POST, "/api/auth/login", r#"{"email": "admin@example.com", "password": 5}"#, "wrong type"),
        (
            Method::POST,
            "/api/auth/login",
            r#"{"email": "a@example.com", "password": "x", "remember": true}"#,
            "unknown field",
        ),
        (Method::POST, "/api/auth/accept-invite", r#"{"token": 1, "password": "x"}"#, "wrong type"),
        (Method::POST, "/api/auth/reset-password", r#"{"token": "t"}"#, "missing field"),
        (Method::POST, "/api/auth/forgot-password", r#"{"mail": "a@example.com"}"#, "unknown field"),
        (Method::POST, "/api/apps", r#"{"name": "x", "private": true}"#, "unknown field"),
        (Method::POST, "/api/apps", r#"{"name": ["x"]}"#, "wrong type"),
        (Method::POST, "/api/apps", "name=x", "not JSON"),
        (Method::PATCH, &settings, r#"{"required_approvals": "two"}"#, "wrong type"),
        (Method::PATCH, &settings, "{", "truncated JSON"),
        (Method::POST, &members, r#"{"user_id": "not-a-uuid", "role": "user"}"#, "malformed uuid in body"),
        (Method::POST, &members, r#"{"user_id": "0190a6f2-7d4e-7b3c-9d8a-1b2c3d4e5f60", "role": "boss"}"#, "bad enum"),
        (Method::POST, &invites, r#"{"email": "x@example.com", "role": "user", "extra": 1}"#, "unknown field"),
        (Method::POST, &invites, r#"{"email": "not an email", "role": "user"}"#, "bad email"),
        (Method::POST, &workspaces, r#"{"title": 42}"#, "wrong type"),
        (Method::PATCH, &ws, r#"{"commit_mode": "whenever"}"#, "bad enum"),
        (Method::PATCH, &ws, r#"{"owner_id": "0190a6f2-7d4e-7b3c-9d8a-1b2c3d4e5f60"}"#, "unknown field"),
        (Method::PUT, &files, r#"{"path": "a.txt"}"#, "missing content"),
        (Method::PUT, &files, r#"{"path": "a.txt", "content": "eA==", "mode": "755"}"#, "unknown field"),
        (Method::PUT, &files, r#"{"path": 7, "content": "eA=="}"#, "wrong type"),
        (Method::PUT, &files, r#"{"path": "a.txt", "content": "eA==""#, "truncated JSON"),
        (Method::PUT, &files, "", "empty body"),
        (Method::PUT, &files, "null", "null body"),
        (Method::DELETE, &files, r#"{"paths": ["exists.txt"]}"#, "unknown field"),
        (Method::POST, &changes, r#"{"ops": [{"op": "copy", "from": "exists.txt", "to": "b"}]}"#, "unknown op"),
        (
            Method::POST,
            &changes,
            r#"{"ops": [{"op": "put", "path": "a", "content": "eA==", "x": 1}]}"#,
            "unknown op field",
        ),
        (Method::POST, &changes, r#"{"ops": [{"path": "a", "content": "eA=="}]}"#, "missing op tag"),
        (Method::POST, &changes, r#"{"ops": {"op": "delete", "path": "exists.txt"}}"#, "wrong type"),
        (Method::POST, &changes, r#"{"ops": []}"#, "empty batch"),
        (Method::POST, &checkpoints, r#"{}"#, "missing message"),
        (Method::POST, &sync, r#"{"strategy": "squash"}"#, "bad enum"),
        (Method::POST, &sync, "[", "truncated JSON"),
        (Method::POST, "/api/me/tokens", r#"{"name": "t", "expires_in_days": 0}"#, "out of range"),
        (Method::POST, "/api/me/tokens", r#"{"name": "t", "expires_in_days": "soon"}"#, "wrong type"),
        (Method::PATCH, "/api/me/notification-preferences", r#"{"email_enabled": "yes"}"#, "wrong type"),
    ];
    for (method, path, body, what) in cases {
        let r = s.send(RawRequest::new(method.clone(), path).token(admin).json_text(body)).await;
        assert_eq!(r.status.as_u16(), 400, "{what}: {method} {path}: {}", r.text);
        r.assert_error(400, "validation_error");
        assert!(!r.text.contains("/tmp/"), "{what}: no internal paths in messages: {}", r.text);
    }

    // JSON sent without a JSON content type is refused.
    let r = s
        .send(RawRequest {
            content_type: Some("text/plain"),
            body: br#"{"path":"t.txt","content":"eA=="}"#.to_vec(),
            ..RawRequest::new(Method::PUT, &files).token(admin)
        })
        .await;
    r.assert_error(400, "validation_error");
    let r = s
        .send(RawRequest {
            body: br#"{"name":"nocontenttype"}"#.to_vec(),
            ..RawRequest::new(Method::POST, "/api/apps").token(admin)
        })
        .await;
    r.assert_error(400, "validation_error");

    assert_eq!(f.snapshot().await, before);
    let apps = s.get("/api/apps", admin).await;
    assert_eq!(apps.body["pagination"]["total"], 2, "no app was created");
}

#[tokio::test]
async fn a_thousand_and_one_operations_in_a_batch_are_refused() {
    let f = fixture().await;
    let ops: Vec<Value> =
        (0..1001).map(|i| json!({ "op": "put", "path": format!("f{i}.txt"), "content": "eA==" })).collect();
    let before = f.snapshot().await;
    let r = f.s.req("POST", &f.ws_path("/changes"), Some(&f.admin), Some(json!({ "ops": ops }))).await;
    r.assert_error(400, "validation_error");
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn malformed_uuids_in_url_paths_are_validation_errors() {
    let f = fixture().await;
    let (s, admin) = (&f.s, f.admin.as_str());
    let (app, ws) = (f.app.as_str(), f.ws.as_str());
    let admin_id = s.user_id(admin).await;
    let before = f.snapshot().await;
    let put = json!({ "path": "a.txt", "content": b64("x") });
    for bad in
        ["not-a-uuid", "123", "0190a6f2-7d4e-7b3c-9d8a-1b2c3d4e5f6", "0190a6f2-7d4e-7b3c-9d8a-1b2c3d4e5f60x", "%20"]
    {
        let cases: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("/api/apps/{bad}"), None),
            ("PATCH", format!("/api/apps/{bad}/settings"), Some(json!({ "required_approvals": 2 }))),
            ("GET", format!("/api/apps/{bad}/members"), None),
            ("POST", format!("/api/apps/{bad}/members"), Some(json!({ "user_id": admin_id, "role": "user" }))),
            ("DELETE", format!("/api/apps/{bad}/members/{admin_id}"), None),
            ("DELETE", format!("/api/apps/{app}/members/{bad}"), None),
            ("GET", format!("/api/apps/{bad}/invites"), None),
            ("POST", format!("/api/apps/{bad}/invites"), Some(json!({ "email": "z@example.com", "role": "user" }))),
            ("POST", format!("/api/apps/{app}/invites/{bad}/resend"), None),
            ("DELETE", format!("/api/apps/{app}/invites/{bad}"), None),
            ("GET", format!("/api/apps/{bad}/workspaces"), None),
            ("POST", format!("/api/apps/{bad}/workspaces"), None),
            ("GET", format!("/api/apps/{bad}/workspaces/{ws}"), None),
            ("GET", format!("/api/apps/{app}/workspaces/{bad}"), None),
            ("PATCH", format!("/api/apps/{app}/workspaces/{bad}"), Some(json!({ "title": "t" }))),
            ("POST", format!("/api/apps/{app}/workspaces/{bad}/reset"), None),
            ("POST", format!("/api/apps/{app}/workspaces/{bad}/sync-integration"), None),
            ("GET", format!("/api/apps/{app}/workspaces/{bad}/files"), None),
            ("PUT", format!("/api/apps/{app}/workspaces/{bad}/files"), Some(put.clone())),
            ("PUT", format!("/api/apps/{bad}/workspaces/{ws}/files"), Some(put.clone())),
            ("DELETE", format!("/api/apps/{app}/workspaces/{bad}/files"), Some(json!({ "path": "exists.txt" }))),
            (
                "POST",
                format!("/api/apps/{app}/workspaces/{bad}/changes"),
                Some(json!({ "ops": [{ "op": "delete", "path": "exists.txt" }] })),
            ),
            ("POST", format!("/api/apps/{app}/workspaces/{bad}/checkpoints"), Some(json!({ "message": "m" }))),
            ("GET", format!("/api/apps/{bad}/audit"), None),
        ];
        for (method, path, body) in cases {
            let r = s.req(method, &path, Some(admin), body).await;
            r.assert_error(400, "validation_error");
            assert_eq!(r.reason(), "malformed_uuid", "{method} {path}: {}", r.text);
        }
    }
    for q in ["actor=not-a-uuid", "since=yesterday", "until=2024-13-01T00:00:00Z"] {
        s.get(&format!("/api/apps/{app}/audit?{q}"), admin).await.assert_error(400, "validation_error");
    }
    let r = s.req("DELETE", "/api/me/tokens", Some(admin), Some(json!({ "id": "nope" }))).await;
    r.assert_error(400, "validation_error");
    assert_eq!(f.snapshot().await, before);
}

/// Every authenticated route of the slice, with well-formed ids and bodies.
fn authenticated_routes(f: &Fixture, some_id: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let (app, ws) = (&f.app, &f.ws);
    vec![
        ("POST", "/api/auth/logout".into(), None),
        ("GET", "/api/me".into(), None),
        ("GET", "/api/me/notification-preferences".into(), None),
        ("PATCH", "/api/me/notification-preferences".into(), Some(json!({ "email_enabled": false }))),
        ("GET", "/api/me/tokens".into(), None),
        ("POST", "/api/me/tokens".into(), Some(json!({ "name": "t" }))),
        ("DELETE", "/api/me/tokens".into(), Some(json!({ "id": some_id }))),
        ("GET", "/api/apps".into(), None),
        ("POST", "/api/apps".into(), Some(json!({ "name": "sneaky" }))),
        ("GET", format!("/api/apps/{app}"), None),
        ("PATCH", format!("/api/apps/{app}/settings"), Some(json!({ "required_approvals": 3 }))),
        ("GET", format!("/api/apps/{app}/members"), None),
        ("POST", format!("/api/apps/{app}/members"), Some(json!({ "user_id": some_id, "role": "user" }))),
        ("DELETE", format!("/api/apps/{app}/members/{some_id}"), None),
        ("GET", format!("/api/apps/{app}/invites"), None),
        ("POST", format!("/api/apps/{app}/invites"), Some(json!({ "email": "q@example.com", "role": "user" }))),
        ("POST", format!("/api/apps/{app}/invites/{some_id}/resend"), None),
        ("DELETE", format!("/api/apps/{app}/invites/{some_id}"), None),
        ("GET", format!("/api/apps/{app}/workspaces"), None),
        ("POST", format!("/api/apps/{app}/workspaces"), Some(json!({ "title": "x" }))),
        ("GET", format!("/api/apps/{app}/workspaces/{ws}"), None),
        ("PATCH", format!("/api/apps/{app}/workspaces/{ws}"), Some(json!({ "title": "renamed" }))),
        ("POST", format!("/api/apps/{app}/workspaces/{ws}/reset"), None),
        ("POST", format!("/api/apps/{app}/workspaces/{ws}/sync-integration"), None),
        ("GET", format!("/api/apps/{app}/workspaces/{ws}/files?path=exists.txt"), None),
        (
            "PUT",
            format!("/api/apps/{app}/workspaces/{ws}/files"),
            Some(json!({ "path": "n.txt", "content": b64("x") })),
        ),
        ("DELETE", format!("/api/apps/{app}/workspaces/{ws}/files"), Some(json!({ "path": "exists.txt" }))),
        (
            "POST",
            format!("/api/apps/{app}/workspaces/{ws}/changes"),
            Some(json!({ "ops": [{ "op": "delete", "path": "exists.txt" }] })),
        ),
        ("POST", format!("/api/apps/{app}/workspaces/{ws}/checkpoints"), Some(json!({ "message": "m" }))),
        ("GET", format!("/api/apps/{app}/audit"), None),
    ]
}

#[tokio::test]
async fn missing_malformed_garbage_and_revoked_credentials_are_unauthorized_on_every_route() {
    let f = fixture().await;
    let s = &f.s;
    let some_id = uuid::Uuid::now_v7().to_string();
    let before = f.snapshot().await;

    // A session that logged out, and an API token that was revoked.
    let logged_out = s.login(common::ADMIN_EMAIL, common::PASSWORD).await;
    s.req("POST", "/api/auth/logout", Some(&logged_out), None).await.assert_status(200);
    let r = s.req("POST", "/api/me/tokens", Some(&f.admin), Some(json!({ "name": "soon revoked" }))).await;
    let revoked = r.data()["token"].as_str().unwrap().to_owned();
    let revoked_id = r.data()["id"].as_str().unwrap().to_owned();
    s.get("/api/me", &revoked).await.assert_status(200);
    s.req("DELETE", "/api/me/tokens", Some(&f.admin), Some(json!({ "id": revoked_id }))).await.assert_status(200);
    let before_chain = s.chain_len().await;

    let long = format!("cm_{}", "A".repeat(600));
    let authorizations: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("empty bearer", Some("Bearer ".into())),
        ("basic scheme", Some("Basic YWRtaW46cGFzc3dvcmQ=".into())),
        ("bare token", Some(f.admin.clone())),
        ("garbage token", Some("Bearer garbage".into())),
        ("too long token", Some(format!("Bearer {long}"))),
        ("logged out session", Some(format!("Bearer {logged_out}"))),
        ("revoked api token", Some(format!("Bearer {revoked}"))),
    ];
    for (method, path, body) in authenticated_routes(&f, &some_id) {
        for (what, authorization) in &authorizations {
            let mut raw = RawRequest::new(method.parse().unwrap(), &path);
            if let Some(a) = authorization {
                raw = raw.header("authorization", a.clone());
            }
            if let Some(b) = &body {
                raw = raw.json_text(serde_json::to_vec(b).unwrap());
            }
            let r = s.send(raw).await;
            assert_eq!(r.status.as_u16(), 401, "{what}: {method} {path}: {}", r.text);
            r.assert_error(401, "unauthorized");
        }
    }
    assert_eq!(s.chain_len().await, before_chain, "an unauthenticated request changed something");
    let (_, head, files) = before;
    let (_, head_after, files_after) = f.snapshot().await;
    assert_eq!((head, files), (head_after, files_after));
    // Logging out twice with the same token is unauthorized too.
    s.req("POST", "/api/auth/logout", Some(&logged_out), None).await.assert_error(401, "unauthorized");
    // The admin's own session still works.
    s.get("/api/me", &f.admin).await.assert_status(200);
}

#[tokio::test]
async fn logging_out_with_an_api_token_revokes_that_token_only() {
    let f = fixture().await;
    let s = &f.s;
    let r = s.req("POST", "/api/me/tokens", Some(&f.admin), Some(json!({ "name": "script" }))).await;
    let api = r.data()["token"].as_str().unwrap().to_owned();
    s.req("POST", "/api/auth/logout", Some(&api), None).await.assert_status(200);
    s.get("/api/me", &api).await.assert_error(401, "unauthorized");
    s.get("/api/me", &f.admin).await.assert_status(200);
    let list = s.get("/api/me/tokens", &f.admin).await;
    assert!(list.data()[0]["revoked_at"].is_string(), "{}", list.text);
}

/// Everything an admin-only or owner-only refusal must leave untouched.
async fn app_state(s: &TestServer, admin: &str, app: &str, ws: &str) -> Value {
    json!({
        "chain": s.chain_len().await,
        "app": s.get(&format!("/api/apps/{app}"), admin).await.body,
        "members": s.get(&format!("/api/apps/{app}/members?limit=100"), admin).await.body,
        "invites": s.get(&format!("/api/apps/{app}/invites?limit=100"), admin).await.body,
        "workspace": s.get(&format!("/api/apps/{app}/workspaces/{ws}"), admin).await.body,
        "files": s.list_dir(admin, app, ws, "").await,
    })
}

#[tokio::test]
async fn wrong_role_is_forbidden_on_every_endpoint_of_the_slice_and_changes_nothing() {
    let f = fixture().await;
    let (s, admin, app) = (&f.s, f.admin.as_str(), f.app.as_str());

    // Members of every role, and a workspace owned by a plain user.
    let owner = s.invite_and_accept(admin, app, "owner@example.com", "user").await;
    let owner_id = s.user_id(&owner).await;
    let target = s.default_workspace(&owner, app).await;
    s.put_file(&owner, app, &target, "keep.yaml", b"k: 1").await.assert_status(200);
    s.req(
        "PATCH",
        &format!("/api/apps/{app}/workspaces/{target}"),
        Some(&owner),
        Some(json!({ "commit_mode": "manual_checkpoint" })),
    )
    .await
    .assert_status(200);
    s.put_file(&owner, app, &target, "pending.yaml", b"p: 1").await.assert_status(200);
    let mut members = Vec::new();
    for (email, role) in
        [("uli@example.com", "user"), ("rev@example.com", "reviewer"), ("cm@example.com", "config_manager")]
    {
        members.push((role, s.invite_and_accept(admin, app, email, role).await));
    }
    let pending = s.invite(admin, app, "pending@example.com", "user").await.data()["id"].as_str().unwrap().to_owned();
    let outsider = s.invite_and_accept(admin, &f.other_app, "outsider@example.com", "user").await;
    let outsider_id = s.user_id(&outsider).await;

    let admin_only: Vec<(&str, String, Option<Value>)> = vec![
        ("PATCH", format!("/api/apps/{app}/settings"), Some(json!({ "required_approvals": 2 }))),
        ("PATCH", format!("/api/apps/{app}/settings"), Some(json!({ "blocked_paths": [] }))),
        ("POST", format!("/api/apps/{app}/members"), Some(json!({ "user_id": outsider_id, "role": "user" }))),
        ("POST", format!("/api/apps/{app}/members"), Some(json!({ "user_id": owner_id, "role": "app_admin" }))),
        ("DELETE", format!("/api/apps/{app}/members/{owner_id}"), None),
        ("POST", format!("/api/apps/{app}/invites"), Some(json!({ "email": "new@example.com", "role": "user" }))),
        ("GET", format!("/api/apps/{app}/invites"), None),
        ("POST", format!("/api/apps/{app}/invites/{pending}/resend"), None),
        ("DELETE", format!("/api/apps/{app}/invites/{pending}"), None),
    ];
    let owner_only: Vec<(&str, String, Option<Value>)> = vec![
        (
            "PUT",
            format!("/api/apps/{app}/workspaces/{target}/files"),
            Some(json!({ "path": "x.yaml", "content": b64("x") })),
        ),
        (
            "PUT",
            format!("/api/apps/{app}/workspaces/{target}/files"),
            Some(json!({ "path": "keep.yaml", "content": b64("x") })),
        ),
        ("DELETE", format!("/api/apps/{app}/workspaces/{target}/files"), Some(json!({ "path": "keep.yaml" }))),
        (
            "POST",
            format!("/api/apps/{app}/workspaces/{target}/changes"),
            Some(json!({ "ops": [{ "op": "move", "from": "keep.yaml", "to": "gone.yaml" }] })),
        ),
        ("POST", format!("/api/apps/{app}/workspaces/{target}/checkpoints"), Some(json!({ "message": "not mine" }))),
        ("POST", format!("/api/apps/{app}/workspaces/{target}/reset"), None),
        ("POST", format!("/api/apps/{app}/workspaces/{target}/sync-integration"), None),
        ("PATCH", format!("/api/apps/{app}/workspaces/{target}"), Some(json!({ "title": "mine now" }))),
        ("PATCH", format!("/api/apps/{app}/workspaces/{target}"), Some(json!({ "commit_mode": "submit_commit" }))),
    ];

    let before = app_state(s, admin, app, &target).await;
    let mut refused = 0;
    for (role, token) in &members {
        for (method, path, body) in &admin_only {
            let r = s.req(method, path, Some(token), body.clone()).await;
            assert_eq!(r.status.as_u16(), 403, "{role}: {method} {path}: {}", r.text);
            r.assert_error(403, "forbidden");
            assert_eq!(app_state(s, admin, app, &target).await, before, "{role}: {method} {path} changed state");
            refused += 1;
        }
    }
    let mut non_owners: Vec<(&str, &str)> = members.iter().map(|(r, t)| (*r, t.as_str())).collect();
    non_owners.push(("app_admin", admin));
    for (role, token) in &non_owners {
        for (method, path, body) in &owner_only {
            let r = s.req(method, path, Some(token), body.clone()).await;
            assert_eq!(r.status.as_u16(), 403, "{role}: {method} {path}: {}", r.text);
            r.assert_error(403, "forbidden");
            assert_eq!(app_state(s, admin, app, &target).await, before, "{role}: {method} {path} changed state");
            refused += 1;
        }
    }
    assert_eq!(refused, 3 * 9 + 4 * 9);

    // Only server operators create apps — an app_admin who is not one cannot.
    let app_admin_not_operator = s.invite_and_accept(admin, app, "boss@example.com", "app_admin").await;
    let chain = s.chain_len().await;
    let repos = || f.s.dir.path().join("repos").read_dir().unwrap().count();
    let repos_before = repos();
    for token in [members[0].1.as_str(), app_admin_not_operator.as_str(), outsider.as_str()] {
        let r = s.req("POST", "/api/apps", Some(token), Some(json!({ "name": "rogue" }))).await;
        r.assert_error(403, "forbidden");
    }
    assert_eq!(s.chain_len().await, chain);
    assert!(!s.get("/api/apps?limit=100", admin).await.text.contains("rogue"));
    assert_eq!(repos(), repos_before, "no repository was created");

    // The same people may do all of it in their own workspace.
    let (_, uli) = &members[0];
    let own = s.default_workspace(uli, app).await;
    s.put_file(uli, app, &own, "mine.yaml", b"m: 1").await.assert_status(200);
    s.req("PATCH", &format!("/api/apps/{app}/workspaces/{own}"), Some(uli), Some(json!({ "title": "Mine" })))
        .await
        .assert_status(200);
    s.req("POST", &format!("/api/apps/{app}/workspaces/{own}/reset"), Some(uli), None).await.assert_status(200);
}

#[tokio::test]
async fn unknown_ids_answer_not_found_and_change_nothing() {
    let f = fixture().await;
    let (s, admin, app, ws) = (&f.s, f.admin.as_str(), f.app.as_str(), f.ws.as_str());
    let missing = uuid::Uuid::now_v7().to_string();
    let before = f.snapshot().await;
    let put = json!({ "path": "a.txt", "content": b64("x") });
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/apps/{missing}"), None),
        ("PATCH", format!("/api/apps/{missing}/settings"), Some(json!({ "required_approvals": 2 }))),
        ("GET", format!("/api/apps/{missing}/members"), None),
        ("POST", format!("/api/apps/{app}/members"), Some(json!({ "user_id": missing, "role": "user" }))),
        ("DELETE", format!("/api/apps/{app}/members/{missing}"), None),
        ("GET", format!("/api/apps/{missing}/invites"), None),
        ("POST", format!("/api/apps/{missing}/invites"), Some(json!({ "email": "z@example.com", "role": "user" }))),
        ("POST", format!("/api/apps/{app}/invites/{missing}/resend"), None),
        ("DELETE", format!("/api/apps/{app}/invites/{missing}"), None),
        ("GET", format!("/api/apps/{missing}/workspaces"), None),
        ("POST", format!("/api/apps/{missing}/workspaces"), None),
        ("GET", format!("/api/apps/{app}/workspaces/{missing}"), None),
        ("PATCH", format!("/api/apps/{app}/workspaces/{missing}"), Some(json!({ "title": "t" }))),
        ("POST", format!("/api/apps/{app}/workspaces/{missing}/reset"), None),
        ("POST", format!("/api/apps/{app}/workspaces/{missing}/sync-integration"), None),
        ("GET", format!("/api/apps/{app}/workspaces/{missing}/files"), None),
        ("PUT", format!("/api/apps/{app}/workspaces/{missing}/files"), Some(put.clone())),
        ("PUT", format!("/api/apps/{missing}/workspaces/{ws}/files"), Some(put.clone())),
        ("DELETE", format!("/api/apps/{app}/workspaces/{missing}/files"), Some(json!({ "path": "exists.txt" }))),
        (
            "POST",
            format!("/api/apps/{app}/workspaces/{missing}/changes"),
            Some(json!({ "ops": [{ "op": "delete", "path": "exists.txt" }] })),
        ),
        ("POST", format!("/api/apps/{app}/workspaces/{missing}/checkpoints"), Some(json!({ "message": "m" }))),
        ("GET", format!("/api/apps/{missing}/audit"), None),
        ("DELETE", "/api/me/tokens".into(), Some(json!({ "id": missing }))),
        // Files that do not exist.
        ("GET", format!("/api/apps/{app}/workspaces/{ws}/files?path=nope.txt"), None),
        ("GET", format!("/api/apps/{app}/workspaces/{ws}/files?path=exists.txt/below"), None),
        ("DELETE", format!("/api/apps/{app}/workspaces/{ws}/files"), Some(json!({ "path": "nope.txt" }))),
        (
            "POST",
            format!("/api/apps/{app}/workspaces/{ws}/changes"),
            Some(json!({ "ops": [
                { "op": "put", "path": "ok.txt", "content": b64("x") },
                { "op": "move", "from": "nope.txt", "to": "b.txt" },
            ] })),
        ),
    ];
    for (method, path, body) in cases {
        let r = s.req(method, &path, Some(admin), body).await;
        assert_eq!(r.status.as_u16(), 404, "{method} {path}: {}", r.text);
        r.assert_error(404, "not_found");
    }
    assert_eq!(f.snapshot().await, before);
    // Accepting with an unknown invite token.
    let r = s
        .req(
            "POST",
            "/api/auth/accept-invite",
            None,
            Some(json!({ "token": "cm_nope", "name": "N", "password": common::PASSWORD })),
        )
        .await;
    r.assert_error(404, "not_found");
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn an_app_the_caller_is_not_a_member_of_is_indistinguishable_from_a_missing_one() {
    let f = fixture().await;
    let (s, admin, app, ws) = (&f.s, f.admin.as_str(), f.app.as_str(), f.ws.as_str());
    // A member of app-b only, and a second server operator who is in no app.
    let stranger = s.invite_and_accept(admin, &f.other_app, "stranger@example.com", "app_admin").await;
    f.s.conman.bootstrap_admin("op2@example.com", "Other Operator", common::PASSWORD).await.unwrap();
    let operator2 = s.login("op2@example.com", common::PASSWORD).await;
    let missing = uuid::Uuid::now_v7().to_string();
    let before = app_state(s, admin, app, ws).await;
    let paths = |id: &str| -> Vec<(&'static str, String, Option<Value>)> {
        vec![
            ("GET", format!("/api/apps/{id}"), None),
            ("PATCH", format!("/api/apps/{id}/settings"), Some(json!({ "required_approvals": 2 }))),
            ("GET", format!("/api/apps/{id}/members"), None),
            (
                "POST",
                format!("/api/apps/{id}/members"),
                Some(json!({ "user_id": uuid::Uuid::now_v7(), "role": "user" })),
            ),
            ("GET", format!("/api/apps/{id}/invites"), None),
            ("POST", format!("/api/apps/{id}/invites"), Some(json!({ "email": "z@example.com", "role": "user" }))),
            ("GET", format!("/api/apps/{id}/workspaces"), None),
            ("POST", format!("/api/apps/{id}/workspaces"), Some(json!({ "title": "in" }))),
            ("GET", format!("/api/apps/{id}/workspaces/{ws}"), None),
            ("GET", format!("/api/apps/{id}/workspaces/{ws}/files?path=exists.txt"), None),
            (
                "PUT",
                format!("/api/apps/{id}/workspaces/{ws}/files"),
                Some(json!({ "path": "a.txt", "content": b64("x") })),
            ),
            ("POST", format!("/api/apps/{id}/workspaces/{ws}/reset"), None),
            ("GET", format!("/api/apps/{id}/audit"), None),
        ]
    };
    for token in [stranger.as_str(), operator2.as_str()] {
        for ((method, path, body), (_, missing_path, missing_body)) in paths(app).into_iter().zip(paths(&missing)) {
            let r = s.req(method, &path, Some(token), body).await;
            assert_eq!(r.status.as_u16(), 404, "{method} {path}: {}", r.text);
            r.assert_error(404, "not_found");
            let m = s.req(method, &missing_path, Some(token), missing_body).await;
            assert_eq!(
                r.body["error"]["message"], m.body["error"]["message"],
                "{method} {path}: same answer as a missing app"
            );
        }
        let apps = s.get("/api/apps?limit=100", token).await;
        assert!(!apps.text.contains(app), "the app is not listed to a non-member");
    }
    assert_eq!(app_state(s, admin, app, ws).await, before);
}

#[tokio::test]
async fn a_workspace_of_another_app_is_not_found_under_this_app() {
    let f = fixture().await;
    let (s, admin, app) = (&f.s, f.admin.as_str(), f.app.as_str());
    let foreign = f.other_ws.as_str();
    let head_b = s.head(admin, &f.other_app, foreign).await;
    let chain = s.chain_len().await;
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/apps/{app}/workspaces/{foreign}"), None),
        ("PATCH", format!("/api/apps/{app}/workspaces/{foreign}"), Some(json!({ "title": "hijack" }))),
        ("POST", format!("/api/apps/{app}/workspaces/{foreign}/reset"), None),
        ("POST", format!("/api/apps/{app}/workspaces/{foreign}/sync-integration"), None),
        ("GET", format!("/api/apps/{app}/workspaces/{foreign}/files?path=b.txt"), None),
        ("GET", format!("/api/apps/{app}/workspaces/{foreign}/files"), None),
        (
            "PUT",
            format!("/api/apps/{app}/workspaces/{foreign}/files"),
            Some(json!({ "path": "x.txt", "content": b64("x") })),
        ),
        ("DELETE", format!("/api/apps/{app}/workspaces/{foreign}/files"), Some(json!({ "path": "b.txt" }))),
        (
            "POST",
            format!("/api/apps/{app}/workspaces/{foreign}/changes"),
            Some(json!({ "ops": [{ "op": "delete", "path": "b.txt" }] })),
        ),
        ("POST", format!("/api/apps/{app}/workspaces/{foreign}/checkpoints"), Some(json!({ "message": "m" }))),
    ];
    for (method, path, body) in cases {
        let r = s.req(method, &path, Some(admin), body).await;
        assert_eq!(r.status.as_u16(), 404, "{method} {path}: {}", r.text);
        r.assert_error(404, "not_found");
    }
    assert_eq!(s.chain_len().await, chain);
    assert_eq!(s.head(admin, &f.other_app, foreign).await, head_b);
    assert_eq!(s.read_file(admin, &f.other_app, foreign, "b.txt").await.as_deref(), Some(&b"in b"[..]));
    let ws_b = s.get(&format!("/api/apps/{}/workspaces/{foreign}", f.other_app), admin).await;
    assert_eq!(ws_b.data()["title"], Value::Null);
}

#[tokio::test]
async fn an_invite_or_member_of_another_app_is_not_found_under_this_app() {
    let f = fixture().await;
    let (s, admin, app) = (&f.s, f.admin.as_str(), f.app.as_str());
    let foreign = s.invite(admin, &f.other_app, "b-invitee@example.com", "user").await;
    let foreign_id = foreign.data()["id"].as_str().unwrap().to_owned();
    let foreign_token = foreign.data()["token"].as_str().unwrap().to_owned();
    let b_member = s.invite_and_accept(admin, &f.other_app, "b-member@example.com", "user").await;
    let b_member_id = s.user_id(&b_member).await;
    let chain = s.chain_len().await;
    for (method, path) in [
        ("POST", format!("/api/apps/{app}/invites/{foreign_id}/resend")),
        ("DELETE", format!("/api/apps/{app}/invites/{foreign_id}")),
        ("DELETE", format!("/api/apps/{app}/members/{b_member_id}")),
    ] {
        s.req(method, &path, Some(admin), None).await.assert_error(404, "not_found");
    }
    assert_eq!(s.chain_len().await, chain);
    let invites_b = s.get(&format!("/api/apps/{}/invites", f.other_app), admin).await;
    let inv = invites_b.data().as_array().unwrap().iter().find(|i| i["id"] == foreign_id.as_str()).unwrap().clone();
    assert_eq!(inv["state"], "pending");
    s.get(&format!("/api/apps/{}", f.other_app), &b_member).await.assert_status(200);
    // The untouched token still works in its own app.
    let r = s
        .req(
            "POST",
            "/api/auth/accept-invite",
            None,
            Some(json!({ "token": foreign_token, "name": "B", "password": common::PASSWORD })),
        )
        .await;
    r.assert_status(200);
    let me = s.get("/api/me", r.data()["token"].as_str().unwrap()).await;
    assert_eq!(me.data()["memberships"][0]["app_id"], f.other_app.as_str());
}

#[tokio::test]
async fn requests_with_the_wrong_method_answer_405_in_the_envelope_and_change_nothing() {
    let f = fixture().await;
    let before = f.snapshot().await;
    let r =
        f.s.req("POST", &f.ws_path("/files"), Some(&f.admin), Some(json!({ "path": "m.txt", "content": b64("x") })))
            .await;
    r.assert_error(405, "not_found");
    assert_eq!(r.headers.get("allow").and_then(|v| v.to_str().ok()), Some("GET,HEAD,PUT,DELETE"), "{:?}", r.headers);
    assert_eq!(f.snapshot().await, before);
}

#[tokio::test]
async fn a_body_over_the_servers_ceiling_is_refused_with_413() {
    let f = fixture().await;
    let before = f.snapshot().await;
    // 90 MiB is the ceiling (64 MiB of content as base64); send 91 MiB.
    let mut body = br#"{"path":"huge.bin","content":""#.to_vec();
    body.resize(91 * 1024 * 1024, b'A');
    body.extend_from_slice(br#""}"#);
    let url = f.ws_path("/files");
    let r = f.s.send(RawRequest::new(Method::PUT, &url).token(&f.admin).json_text(body)).await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(f.snapshot().await, before);
}
