//! The wire conventions of SPEC §7 hold on every route: each response
//! carries `x-request-id` (the caller's sane one, else a fresh UUIDv7);
//! errors are `{"error": {code, message, request_id, details?}}` with the
//! same id; unknown routes answer the 404 envelope; lists carry
//! `pagination {page, limit, total}` and refuse out-of-range paging; and
//! the system routes (`/api/health`, `/api/openapi.json`, `/api/docs`)
//! answer what they promise.

mod common;

use axum::http::Method;
use common::{RawRequest, TestServer};
use serde_json::{json, Value};

fn is_uuid_v7(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 7)
}

#[tokio::test]
async fn every_response_success_or_error_carries_a_uuidv7_request_id() {
    let s = TestServer::start().await;
    let app = s.create_app(&s.admin_token, "ids").await;
    let admin = s.admin_token.as_str();
    let cases: Vec<(&str, String, Option<&str>, u16)> = vec![
        ("GET", "/api/health".into(), None, 200),
        ("GET", "/api/openapi.json".into(), None, 200),
        ("GET", "/api/docs".into(), None, 200),
        ("GET", "/api/me".into(), Some(admin), 200),
        ("GET", format!("/api/apps/{app}"), Some(admin), 200),
        ("GET", "/api/apps".into(), Some(admin), 200),
        ("GET", "/api/me".into(), None, 401),
        ("GET", "/api/apps/not-a-uuid".into(), Some(admin), 400),
        ("GET", format!("/api/apps/{}", uuid::Uuid::now_v7()), Some(admin), 404),
        ("GET", "/api/nope".into(), None, 404),
        ("GET", "/elsewhere".into(), None, 404),
        ("DELETE", "/api/health".into(), None, 405),
    ];
    for (method, path, token, status) in cases {
        let r = s.req(method, &path, token, None).await;
        assert_eq!(r.status.as_u16(), status, "{method} {path}: {}", r.text);
        assert!(is_uuid_v7(r.request_id()), "{method} {path}: x-request-id {:?}", r.request_id());
        if status >= 400 {
            assert!(r.body["error"]["code"].is_string(), "{method} {path}: envelope {}", r.text);
            assert!(r.body["error"]["message"].is_string(), "{method} {path}: envelope {}", r.text);
            assert_eq!(r.body["error"]["request_id"], r.request_id(), "{method} {path}");
            assert!(r.body.get("data").is_none());
        } else if path.starts_with("/api/me") || path.starts_with("/api/apps") || path == "/api/health" {
            assert!(r.body.get("data").is_some(), "{method} {path}: {}", r.text);
        }
    }
}

#[tokio::test]
async fn a_sane_caller_request_id_is_echoed_and_an_unsafe_one_is_replaced() {
    let s = TestServer::start().await;
    for id in ["abc-123", "trace:42.7_x", &"x".repeat(128)] {
        let r = s.send(RawRequest::new(Method::GET, "/api/health").header("x-request-id", id)).await;
        assert_eq!(r.request_id(), id);
        let r = s.send(RawRequest::new(Method::GET, "/api/me").header("x-request-id", id)).await;
        r.assert_error(401, "unauthorized");
        assert_eq!(r.body["error"]["request_id"], id);
    }
    for id in ["has space", "<script>", &"x".repeat(129), ""] {
        let r = s.send(RawRequest::new(Method::GET, "/api/me").header("x-request-id", id)).await;
        assert_ne!(r.request_id(), id);
        assert!(is_uuid_v7(r.request_id()), "{id:?} replaced by {:?}", r.request_id());
        assert_eq!(r.body["error"]["request_id"], r.request_id());
    }
    let a = s.req("GET", "/api/health", None, None).await;
    let b = s.req("GET", "/api/health", None, None).await;
    assert_ne!(a.request_id(), b.request_id(), "a fresh id per request");
}

#[tokio::test]
async fn the_request_id_is_recorded_in_the_audit_event_of_the_request() {
    let s = TestServer::start().await;
    let r = s
        .send(
            RawRequest::new(Method::POST, "/api/apps")
                .token(&s.admin_token)
                .json_text(r#"{"name":"traced"}"#)
                .header("x-request-id", "req-traced-1")
                .header("user-agent", "conman-tests/1"),
        )
        .await;
    r.assert_status(201);
    let app = r.data()["id"].as_str().unwrap().to_owned();
    let audit = s.get(&format!("/api/apps/{app}/audit?entity_type=app"), &s.admin_token).await;
    assert_eq!(audit.data()[0]["action"], "app.created");
    assert_eq!(audit.data()[0]["request_id"], "req-traced-1");
    assert_eq!(audit.data()[0]["user_agent"], "conman-tests/1");
}

#[tokio::test]
async fn unknown_routes_answer_the_not_found_envelope() {
    let s = TestServer::start().await;
    for path in ["/api/nope", "/api/apps/x/y/z/w", "/", "/api", "/api/changesets"] {
        let r = s.req("GET", path, Some(&s.admin_token), None).await;
        r.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn every_list_has_pagination_and_refuses_out_of_range_paging() {
    let s = TestServer::start().await;
    let admin = s.admin_token.as_str();
    let app = s.create_app(admin, "pages").await;
    s.invite(admin, &app, "p@example.com", "user").await;
    let lists = [
        "/api/apps".to_owned(),
        format!("/api/apps/{app}/members"),
        format!("/api/apps/{app}/invites"),
        format!("/api/apps/{app}/workspaces"),
        format!("/api/apps/{app}/audit"),
    ];
    for list in &lists {
        let r = s.get(list, admin).await;
        r.assert_status(200);
        assert!(r.data().is_array(), "{list}: {}", r.text);
        let p = &r.body["pagination"];
        assert_eq!(p["page"], 1, "{list}");
        assert_eq!(p["limit"], 20, "{list}");
        assert_eq!(p["total"].as_u64().unwrap(), r.data().as_array().unwrap().len() as u64, "{list}");
        assert!(p["total"].as_u64().unwrap() >= 1, "{list}");

        let r = s.get(&format!("{list}?page=3&limit=100"), admin).await;
        r.assert_status(200);
        assert_eq!(r.body["pagination"]["page"], 3);
        assert_eq!(r.body["pagination"]["limit"], 100);
        assert_eq!(r.data(), &json!([]));

        for bad in ["limit=101", "page=0", "limit=0", "page=-1", "limit=abc", "page=1.5", "bogus=1"] {
            let r = s.get(&format!("{list}?{bad}"), admin).await;
            r.assert_error(400, "validation_error");
        }
    }
}

#[tokio::test]
async fn health_answers_ok() {
    let s = TestServer::start().await;
    let r = s.req("GET", "/api/health", None, None).await;
    r.assert_status(200);
    assert_eq!(r.data()["status"], "ok");
    assert!(r.data()["version"].is_string());
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_and_lists_every_route_of_the_slice() {
    let s = TestServer::start().await;
    let r = s.req("GET", "/api/openapi.json", None, None).await;
    r.assert_status(200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: Value = serde_json::from_str(&r.text).expect("valid JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "openapi {}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    let expected: &[(&str, &[&str])] = &[
        ("/api/health", &["get"]),
        ("/api/auth/login", &["post"]),
        ("/api/auth/logout", &["post"]),
        ("/api/auth/forgot-password", &["post"]),
        ("/api/auth/reset-password", &["post"]),
        ("/api/auth/accept-invite", &["post"]),
        ("/api/me", &["get"]),
        ("/api/me/notification-preferences", &["get", "patch"]),
        ("/api/me/tokens", &["get", "post", "delete"]),
        ("/api/apps", &["get", "post"]),
        ("/api/apps/{app_id}", &["get"]),
        ("/api/apps/{app_id}/settings", &["patch"]),
        ("/api/apps/{app_id}/members", &["get", "post"]),
        ("/api/apps/{app_id}/members/{user_id}", &["delete"]),
        ("/api/apps/{app_id}/invites", &["get", "post"]),
        ("/api/apps/{app_id}/invites/{invite_id}", &["delete"]),
        ("/api/apps/{app_id}/invites/{invite_id}/resend", &["post"]),
        ("/api/apps/{app_id}/workspaces", &["get", "post"]),
        ("/api/apps/{app_id}/workspaces/{ws_id}", &["get", "patch"]),
        ("/api/apps/{app_id}/workspaces/{ws_id}/reset", &["post"]),
        ("/api/apps/{app_id}/workspaces/{ws_id}/sync-integration", &["post"]),
        ("/api/apps/{app_id}/workspaces/{ws_id}/files", &["get", "put", "delete"]),
        ("/api/apps/{app_id}/workspaces/{ws_id}/changes", &["post"]),
        ("/api/apps/{app_id}/workspaces/{ws_id}/checkpoints", &["post"]),
        ("/api/apps/{app_id}/audit", &["get"]),
    ];
    for (path, methods) in expected {
        let item = paths.get(*path).unwrap_or_else(|| panic!("{path} missing from the OpenAPI document"));
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing from the OpenAPI document");
        }
    }
}

#[tokio::test]
async fn the_docs_page_is_html() {
    let s = TestServer::start().await;
    let r = s.req("GET", "/api/docs", None, None).await;
    r.assert_status(200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.text.to_ascii_lowercase().contains("<html"), "{}", &r.text[..r.text.len().min(200)]);
}

#[test]
fn the_contract_check_refuses_answers_that_do_not_match_the_document() {
    use common::contract::verify;
    let json = "application/json";
    let envelope = r#"{"error":{"code":"not_found","message":"m","request_id":"r"}}"#;
    assert_eq!(verify("GET", "/api/health", 200, json, r#"{"data":{"status":"ok","version":"1"}}"#), Ok(()));
    assert!(verify("GET", "/api/health", 200, json, r#"{"data":{"status":1,"version":"1"}}"#).is_err());
    assert!(verify("GET", "/api/health", 200, json, r#"{"status":"ok"}"#).is_err());
    assert!(verify("GET", "/api/health", 418, json, envelope).is_err(), "undocumented status");
    assert_eq!(verify("DELETE", "/api/health", 405, json, envelope), Ok(()));
    assert!(verify("DELETE", "/api/health", 404, json, envelope).is_err(), "a wrong method must answer 405");
    assert!(verify("DELETE", "/api/health", 405, json, r#"{"oops":1}"#).is_err(), "405 outside the envelope");
    assert!(verify("GET", "/api/nope", 404, json, r#"{"data":1}"#).is_err(), "unknown path without envelope");
}

#[tokio::test]
async fn a_wrong_method_answers_405_in_the_envelope_with_the_allowed_methods() {
    let s = TestServer::start().await;
    let r = s.req("DELETE", "/api/health", None, None).await;
    r.assert_error(405, "not_found");
    assert_eq!(r.headers.get("allow").and_then(|v| v.to_str().ok()), Some("GET,HEAD"), "{:?}", r.headers);
}
