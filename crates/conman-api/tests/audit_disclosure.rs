//! Issue 18 item 7: the audit log shows each member only what the role may
//! see elsewhere — request context (client IP, user agent) to `app_admin`s,
//! a pending invite's email to the roles that may list invites — and says
//! which fields it removed.

mod common;

use axum::http::Method;
use common::{RawRequest, TestServer};
use serde_json::{json, Value};

const SECRET_EMAIL: &str = "pending.person@example.com";

/// Every event of the app's audit log as `token` reads it.
async fn audit(s: &TestServer, token: &str, app: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/apps/{app}/audit?limit=100"), token).await;
    r.assert_status(200);
    r.data().as_array().expect("a page of events").clone()
}

#[tokio::test]
async fn request_context_and_invite_emails_are_shown_to_admins_only() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "disclosure").await;
    let member = s.invite_and_accept(&admin, &app, "rita@example.com", "config_manager").await;
    // A pending invite, created from a known address and user agent.
    let path = format!("/api/apps/{app}/invites");
    let body = serde_json::to_vec(&json!({ "email": SECRET_EMAIL, "role": "user" })).unwrap();
    let raw = RawRequest::new(Method::POST, &path)
        .token(&admin)
        .json_text(body)
        .client_ip("203.0.113.7")
        .header("user-agent", "probe/1.0");
    s.send(raw).await.assert_status(201);
    // The invite list is the admins'.
    s.get(&format!("/api/apps/{app}/invites"), &member).await.assert_error(403, "forbidden");

    let as_admin = audit(&s, &admin, &app).await;
    let created = as_admin.iter().find(|e| e["action"] == "invite.created" && e["after"]["email"] == SECRET_EMAIL);
    let created = created.expect("the admin sees the pending invite's email");
    assert_eq!(created["ip"], "203.0.113.7");
    assert_eq!(created["user_agent"], "probe/1.0");
    assert_eq!(created["redacted"], json!([]));

    let as_member = audit(&s, &member, &app).await;
    assert_eq!(as_member.len(), as_admin.len(), "the member sees every event, redacted");
    let text = serde_json::to_string(&as_member).unwrap();
    assert!(!text.contains(SECRET_EMAIL), "a pending invite's email leaked: {text}");
    assert!(!text.contains("203.0.113.7") && !text.contains("probe/1.0"), "request context leaked: {text}");
    let created = as_member.iter().find(|e| e["id"] == created["id"]).expect("the same event");
    assert_eq!(created["ip"], Value::Null);
    assert_eq!(created["user_agent"], Value::Null);
    assert_eq!(created["redacted"], json!(["request.ip", "request.user_agent", "after.email"]));
    assert_eq!(created["after"]["role"], "user", "the rest of the invite stays visible");
    assert_eq!(created["hash"], as_admin.iter().find(|e| e["id"] == created["id"]).unwrap()["hash"]);
}
