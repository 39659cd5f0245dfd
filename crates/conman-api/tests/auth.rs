//! Authentication and invites over HTTP, the refusals of the issue's "Bad
//! input" list that need more than one request: a second or revoked or
//! expired invite acceptance (409), an invite to an email that already has
//! an account (its password must be proven; no session without proof),
//! password reset (the token only ever reaches the outbox, and works once),
//! session and API-token expiry, and login throttling per account and per
//! client IP (429) with one generic answer whether or not the email exists.
//! Time-dependent cases run on a server whose clock the test moves.

mod common;

use axum::http::Method;
use common::{RawRequest, TestClock, TestServer, PASSWORD};
use conman_core::ports::store::PageRequest;
use serde_json::{json, Value};

async fn accept(s: &TestServer, token: &str, name: &str, password: &str) -> common::Reply {
    s.req("POST", "/api/auth/accept-invite", None, Some(json!({ "token": token, "name": name, "password": password })))
        .await
}

async fn login_reply(s: &TestServer, email: &str, password: &str) -> common::Reply {
    s.req("POST", "/api/auth/login", None, Some(json!({ "email": email, "password": password }))).await
}

async fn invite_state(s: &TestServer, app: &str, id: &str) -> Value {
    // A fresh session: tests that move the clock outlive the first one.
    let admin = s.login(common::ADMIN_EMAIL, PASSWORD).await;
    let r = s.get(&format!("/api/apps/{app}/invites?limit=100"), &admin).await;
    r.assert_status(200);
    r.data().as_array().unwrap().iter().find(|i| i["id"] == id).expect("invite listed")["state"].clone()
}

/// Outbox messages of a kind for a recipient, newest first (operator read).
async fn outbox(s: &TestServer, kind: &str, email: &str) -> Vec<String> {
    let operator = s.operator().await;
    let page = PageRequest::new(Some(1), Some(100)).unwrap();
    let messages = s.conman.list_outbox(&operator, page).await.expect("outbox");
    messages.items.into_iter().filter(|m| m.kind == kind && m.recipient.to_string() == email).map(|m| m.body).collect()
}

fn token_in(body: &str) -> String {
    body.split_whitespace().find(|w| w.starts_with("cm_")).expect("a token in the message").to_owned()
}

#[tokio::test]
async fn a_second_acceptance_of_an_invite_is_an_invalid_transition_and_changes_nothing() {
    let s = TestServer::start().await;
    let app = s.create_app(&s.admin_token, "twice").await;
    let invite = s.invite(&s.admin_token, &app, "once@example.com", "reviewer").await;
    let token = invite.data()["token"].as_str().unwrap().to_owned();
    accept(&s, &token, "Once", PASSWORD).await.assert_status(200);
    let chain = s.chain_len().await;
    let r = accept(&s, &token, "Once", PASSWORD).await;
    r.assert_error(409, "invalid_transition");
    assert!(r.body.get("data").is_none(), "no session: {}", r.text);
    assert_eq!(s.chain_len().await, chain, "no session, membership or audit event");
    let members = s.get(&format!("/api/apps/{app}/members"), &s.admin_token).await;
    assert_eq!(members.body["pagination"]["total"], 2);
}

#[tokio::test]
async fn a_revoked_invite_cannot_be_accepted_nor_resent() {
    let s = TestServer::start().await;
    let app = s.create_app(&s.admin_token, "revoked").await;
    let invite = s.invite(&s.admin_token, &app, "nope@example.com", "user").await;
    let (id, token) =
        (invite.data()["id"].as_str().unwrap().to_owned(), invite.data()["token"].as_str().unwrap().to_owned());
    s.req("DELETE", &format!("/api/apps/{app}/invites/{id}"), Some(&s.admin_token), None).await.assert_status(200);
    let chain = s.chain_len().await;
    accept(&s, &token, "Nope", PASSWORD).await.assert_error(409, "invalid_transition");
    s.req("POST", &format!("/api/apps/{app}/invites/{id}/resend"), Some(&s.admin_token), None)
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(s.chain_len().await, chain);
    login_reply(&s, "nope@example.com", PASSWORD).await.assert_error(401, "unauthorized");
    assert_eq!(invite_state(&s, &app, &id).await, "revoked");
}

#[tokio::test]
async fn an_expired_invite_cannot_be_accepted_until_it_is_resent() {
    let clock = TestClock::new();
    let s = TestServer::start_with_clock(clock.clone()).await;
    let app = s.create_app(&s.admin_token, "expiry").await;
    let invite = s.invite(&s.admin_token, &app, "late@example.com", "user").await;
    let (id, token) =
        (invite.data()["id"].as_str().unwrap().to_owned(), invite.data()["token"].as_str().unwrap().to_owned());
    let expires: chrono::DateTime<chrono::Utc> = invite.data()["expires_at"].as_str().unwrap().parse().unwrap();
    let created: chrono::DateTime<chrono::Utc> =
        invite.data()["invite"]["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires - created, chrono::Duration::days(7), "invites live 7 days");

    clock.advance(chrono::Duration::days(7) - chrono::Duration::seconds(1));
    assert_eq!(invite_state(&s, &app, &id).await, "pending");
    clock.advance(chrono::Duration::seconds(1));
    assert_eq!(invite_state(&s, &app, &id).await, "expired");
    let chain = s.chain_len().await;
    accept(&s, &token, "Late", PASSWORD).await.assert_error(409, "invalid_transition");
    assert_eq!(s.chain_len().await, chain);
    login_reply(&s, "late@example.com", PASSWORD).await.assert_error(401, "unauthorized");

    // Resending revives it with a fresh token; the old token stays dead.
    let admin = s.login(common::ADMIN_EMAIL, PASSWORD).await;
    let r = s.req("POST", &format!("/api/apps/{app}/invites/{id}/resend"), Some(&admin), None).await;
    r.assert_status(200);
    let fresh = r.data()["token"].as_str().unwrap().to_owned();
    assert_eq!(invite_state(&s, &app, &id).await, "pending");
    accept(&s, &token, "Late", PASSWORD).await.assert_error(404, "not_found");
    let r = accept(&s, &fresh, "Late", PASSWORD).await;
    r.assert_status(200);
    let me = s.get("/api/me", r.data()["token"].as_str().unwrap()).await;
    assert_eq!(me.data()["memberships"][0]["app_id"], app.as_str());
}

#[tokio::test]
async fn accepting_an_invite_for_an_existing_account_requires_that_accounts_password() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let first = s.create_app(&admin, "first").await;
    let second = s.create_app(&admin, "second").await;
    let existing = s.invite_and_accept(&admin, &first, "existing@example.com", "user").await;
    let invite = s.invite(&admin, &second, "existing@example.com", "reviewer").await;
    let (id, token) =
        (invite.data()["id"].as_str().unwrap().to_owned(), invite.data()["token"].as_str().unwrap().to_owned());

    // Wrong password (even one that would be a valid new password): 401, nothing happens.
    let chain = s.chain_len().await;
    for wrong in ["another long passphrase", "x", ""] {
        let r = accept(&s, &token, "Impostor", wrong).await;
        r.assert_error(401, "unauthorized");
        assert!(r.body.get("data").is_none(), "no session without proof: {}", r.text);
        assert!(!r.text.contains("cm_"), "no token without proof: {}", r.text);
    }
    assert_eq!(s.chain_len().await, chain, "no session, membership or user change");
    assert_eq!(invite_state(&s, &second, &id).await, "pending");
    let me = s.get("/api/me", &existing).await;
    assert_eq!(me.data()["memberships"].as_array().unwrap().len(), 1);
    assert_eq!(me.data()["user"]["name"], "Invited Person");
    login_reply(&s, "existing@example.com", "another long passphrase").await.assert_error(401, "unauthorized");

    // The right password: accepted, membership created, name kept.
    let r = accept(&s, &token, "Impostor", PASSWORD).await;
    r.assert_status(200);
    assert_eq!(r.data()["user"]["email"], "existing@example.com");
    assert_eq!(r.data()["user"]["name"], "Invited Person", "an existing account keeps its name");
    let session = r.data()["token"].as_str().unwrap().to_owned();
    let me = s.get("/api/me", &session).await;
    let roles: Vec<(String, String)> = me.data()["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["app_name"].as_str().unwrap().to_owned(), m["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(roles, [("first".to_owned(), "user".to_owned()), ("second".to_owned(), "reviewer".to_owned())]);
    assert_eq!(invite_state(&s, &second, &id).await, "accepted");
    s.get("/api/me", &existing).await.assert_status(200);
    let users = s.conman.list_users(&s.operator().await, PageRequest::default()).await.unwrap();
    assert_eq!(users.total, 2, "no second account for the same email");
}

#[tokio::test]
async fn accepting_with_a_weak_password_or_no_name_creates_no_account() {
    let s = TestServer::start().await;
    let app = s.create_app(&s.admin_token, "weak").await;
    let invite = s.invite(&s.admin_token, &app, "weak@example.com", "user").await;
    let (id, token) =
        (invite.data()["id"].as_str().unwrap().to_owned(), invite.data()["token"].as_str().unwrap().to_owned());
    let chain = s.chain_len().await;
    for (name, password) in [("Weak", "short"), ("Weak", "elevenchars"), ("", PASSWORD), ("   ", PASSWORD)] {
        let r = accept(&s, &token, name, password).await;
        r.assert_error(400, "validation_error");
    }
    assert_eq!(s.chain_len().await, chain);
    assert_eq!(invite_state(&s, &app, &id).await, "pending");
    login_reply(&s, "weak@example.com", "short").await.assert_error(401, "unauthorized");
    accept(&s, &token, "Strong", "twelve chars").await.assert_status(200);
}

#[tokio::test]
async fn inviting_someone_who_is_already_a_member_is_a_conflict() {
    let s = TestServer::start().await;
    let app = s.create_app(&s.admin_token, "dupe").await;
    s.invite_and_accept(&s.admin_token, &app, "member@example.com", "user").await;
    let chain = s.chain_len().await;
    for email in ["member@example.com", "MEMBER@example.com", common::ADMIN_EMAIL] {
        let r = s
            .req(
                "POST",
                &format!("/api/apps/{app}/invites"),
                Some(&s.admin_token),
                Some(json!({ "email": email, "role": "reviewer" })),
            )
            .await;
        r.assert_error(409, "conflict");
    }
    assert_eq!(s.chain_len().await, chain);
}

#[tokio::test]
async fn the_invite_token_reaches_the_invitees_outbox_as_well_as_the_one_answer() {
    let s = TestServer::start().await;
    let app = s.create_app(&s.admin_token, "mail").await;
    let invite = s.invite(&s.admin_token, &app, "mailme@example.com", "user").await;
    let token = invite.data()["token"].as_str().unwrap();
    let mails = outbox(&s, "invite", "mailme@example.com").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(token_in(&mails[0]), token);
}

#[tokio::test]
async fn forgot_password_answers_202_without_the_token_which_goes_to_the_outbox_and_resets_once() {
    let s = TestServer::start().await;
    let app = s.create_app(&s.admin_token, "forgetful").await;
    let old_session = s.invite_and_accept(&s.admin_token, &app, "forgetful@example.com", "user").await;
    let r = s.req("POST", "/api/me/tokens", Some(&old_session), Some(json!({ "name": "script" }))).await;
    let api_token = r.data()["token"].as_str().unwrap().to_owned();

    let r = s.req("POST", "/api/auth/forgot-password", None, Some(json!({ "email": "forgetful@example.com" }))).await;
    r.assert_status(202);
    assert_eq!(r.data(), &json!({ "ok": true }));
    let mails = outbox(&s, "password_reset", "forgetful@example.com").await;
    assert_eq!(mails.len(), 1, "one reset message in the outbox");
    let reset_token = token_in(&mails[0]);
    assert!(!r.text.contains(&reset_token), "the HTTP answer never carries the reset token");
    assert!(!r.text.contains("cm_"));

    // A too-short new password is refused and does not spend the token.
    let r = s
        .req("POST", "/api/auth/reset-password", None, Some(json!({ "token": reset_token, "new_password": "short" })))
        .await;
    r.assert_error(400, "validation_error");
    let new_password = "a brand new passphrase";
    let r = s
        .req(
            "POST",
            "/api/auth/reset-password",
            None,
            Some(json!({ "token": reset_token, "new_password": new_password })),
        )
        .await;
    r.assert_status(200);

    // Once only.
    let chain = s.chain_len().await;
    let r = s
        .req(
            "POST",
            "/api/auth/reset-password",
            None,
            Some(json!({ "token": reset_token, "new_password": "yet another passphrase" })),
        )
        .await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "invalid_token");
    assert_eq!(s.chain_len().await, chain);
    let r = s
        .req(
            "POST",
            "/api/auth/reset-password",
            None,
            Some(json!({ "token": "cm_made_up", "new_password": "yet another passphrase" })),
        )
        .await;
    r.assert_error(400, "validation_error");

    // The new password works, the old one does not, and every old credential is revoked.
    login_reply(&s, "forgetful@example.com", PASSWORD).await.assert_error(401, "unauthorized");
    s.login("forgetful@example.com", new_password).await;
    s.get("/api/me", &old_session).await.assert_error(401, "unauthorized");
    s.get("/api/me", &api_token).await.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn forgot_password_for_an_unknown_email_answers_the_same_and_sends_nothing() {
    let s = TestServer::start().await;
    let known = s.req("POST", "/api/auth/forgot-password", None, Some(json!({ "email": common::ADMIN_EMAIL }))).await;
    let operator = s.operator().await;
    let count = |s: &TestServer| {
        let operator = operator.clone();
        let conman = s.conman.clone();
        async move { conman.list_outbox(&operator, PageRequest::default()).await.unwrap().total }
    };
    let before = count(&s).await;
    for email in ["ghost@example.com", "not-an-email", ""] {
        let r = s.req("POST", "/api/auth/forgot-password", None, Some(json!({ "email": email }))).await;
        assert_eq!(r.status, known.status, "{email:?}");
        assert_eq!(r.data(), known.data(), "{email:?}");
    }
    assert_eq!(count(&s).await, before, "nothing sent for unknown emails");
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_so_the_sixth_attempt_is_429_even_with_the_right_password() {
    let clock = TestClock::new();
    let s = TestServer::start_with_clock(clock.clone()).await;
    let app = s.create_app(&s.admin_token, "locks").await;
    s.invite_and_accept(&s.admin_token, &app, "locked@example.com", "user").await;
    for i in 0..5 {
        let r = login_reply(&s, "locked@example.com", &format!("wrong password {i}")).await;
        r.assert_error(401, "unauthorized");
    }
    let chain = s.chain_len().await;
    let r = login_reply(&s, "locked@example.com", PASSWORD).await;
    r.assert_error(429, "rate_limited");
    assert!(r.body.get("data").is_none());
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "retry-after {retry}");
    // The email's case does not get around the lock.
    login_reply(&s, "LOCKED@example.com", PASSWORD).await.assert_error(429, "rate_limited");
    assert_eq!(s.chain_len().await, chain, "no session was opened");
    // Other accounts are not affected.
    s.login(common::ADMIN_EMAIL, PASSWORD).await;
    // The window slides: after 15 minutes the right password works again.
    clock.advance(chrono::Duration::minutes(15));
    s.login("locked@example.com", PASSWORD).await;
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_401_as_a_wrong_password() {
    let s = TestServer::start().await;
    let wrong = login_reply(&s, common::ADMIN_EMAIL, "not the password").await;
    wrong.assert_error(401, "unauthorized");
    for email in ["nobody@example.com", "not-an-email", ""] {
        let unknown = login_reply(&s, email, "not the password").await;
        unknown.assert_error(401, "unauthorized");
        assert_eq!(unknown.body["error"]["message"], wrong.body["error"]["message"], "{email:?}");
        assert_eq!(unknown.body["error"].get("details"), wrong.body["error"].get("details"), "{email:?}");
    }
    // Unknown emails are throttled exactly like known ones.
    for _ in 0..4 {
        login_reply(&s, "nobody@example.com", "x").await.assert_error(401, "unauthorized");
    }
    login_reply(&s, "nobody@example.com", "x").await.assert_error(429, "rate_limited");
}

#[tokio::test]
async fn one_client_ip_is_limited_across_accounts() {
    let s = TestServer::start().await;
    let login_from = |ip: &'static str, email: String, password: &'static str| {
        let s = &s;
        async move {
            let body = serde_json::to_vec(&json!({ "email": email, "password": password })).unwrap();
            s.send(RawRequest::new(Method::POST, "/api/auth/login").json_text(body).client_ip(ip)).await
        }
    };
    for i in 0..20 {
        login_from("192.0.2.10", format!("probe{i}@example.com"), "guess").await.assert_error(401, "unauthorized");
    }
    login_from("192.0.2.10", common::ADMIN_EMAIL.into(), PASSWORD).await.assert_error(429, "rate_limited");
    login_from("198.51.100.7", common::ADMIN_EMAIL.into(), PASSWORD).await.assert_status(200);
}

#[tokio::test]
async fn sessions_expire_after_24_hours_and_api_tokens_at_their_expiry() {
    let clock = TestClock::new();
    let s = TestServer::start_with_clock(clock.clone()).await;
    let session = s.login(common::ADMIN_EMAIL, PASSWORD).await;
    let r = s.req("POST", "/api/me/tokens", Some(&session), Some(json!({ "name": "day", "expires_in_days": 1 }))).await;
    let day_token = r.data()["token"].as_str().unwrap().to_owned();
    let r = s.req("POST", "/api/me/tokens", Some(&session), Some(json!({ "name": "forever" }))).await;
    assert_eq!(r.data()["expires_at"], Value::Null);
    let forever = r.data()["token"].as_str().unwrap().to_owned();

    clock.advance(chrono::Duration::hours(24) - chrono::Duration::seconds(1));
    for token in [&session, &day_token, &forever] {
        s.get("/api/me", token).await.assert_status(200);
    }
    clock.advance(chrono::Duration::seconds(1));
    s.get("/api/me", &session).await.assert_error(401, "unauthorized");
    s.get("/api/me", &day_token).await.assert_error(401, "unauthorized");
    s.get("/api/me", &forever).await.assert_status(200);
}

#[tokio::test]
async fn a_user_who_asked_for_several_resets_can_log_in_with_the_new_password() {
    let s = TestServer::start().await;
    let app = s.create_app(&s.admin_token, "impatient").await;
    s.invite_and_accept(&s.admin_token, &app, "impatient@example.com", "user").await;
    for _ in 0..5 {
        let r =
            s.req("POST", "/api/auth/forgot-password", None, Some(json!({ "email": "impatient@example.com" }))).await;
        r.assert_status(202);
    }
    let token = token_in(&outbox(&s, "password_reset", "impatient@example.com").await[0]);
    let r = s
        .req(
            "POST",
            "/api/auth/reset-password",
            None,
            Some(json!({ "token": token, "new_password": "a brand new passphrase" })),
        )
        .await;
    r.assert_status(200);
    // Reset requests are throttled apart from login failures.
    login_reply(&s, "impatient@example.com", "a brand new passphrase").await.assert_status(200);
}
