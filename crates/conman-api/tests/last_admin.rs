//! Issue 18 item 4: an app keeps at least one `app_admin` even when two
//! admins demote each other at the same moment, and a server operator can
//! always get back in.

mod common;

use std::sync::Arc;

use common::TestServer;
use serde_json::json;

/// Ten trials of two admins demoting each other at once: never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let s = Arc::new(TestServer::start().await);
    let operator = s.admin_token.clone();
    let operator_id = s.user_id(&operator).await;
    let mut raced = 0;
    for trial in 0..10 {
        let app = s.create_app(&operator, &format!("race-{trial}")).await;
        let rita = s.invite_and_accept(&operator, &app, &format!("rita{trial}@example.com"), "app_admin").await;
        let rita_id = s.user_id(&rita).await;
        let demote = |token: String, user: String| {
            let (s, app) = (Arc::clone(&s), app.clone());
            tokio::spawn(async move {
                let body = json!({ "user_id": user, "role": "user" });
                s.req("POST", &format!("/api/apps/{app}/members"), Some(&token), Some(body)).await
            })
        };
        let (a, b) = (demote(operator.clone(), rita_id.clone()), demote(rita.clone(), operator_id.clone()));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        // One demotion commits. The other either raced it and was refused
        // by the store's guard (409 last_app_admin) or came after it and
        // found its author no longer an admin (403).
        let statuses = [a.status.as_u16(), b.status.as_u16()];
        assert!(
            statuses == [200, 409] || statuses == [409, 200] || statuses == [200, 403] || statuses == [403, 200],
            "trial {trial}: {statuses:?}"
        );
        if let Some(refused) = [&a, &b].into_iter().find(|r| r.status == 409) {
            assert_eq!(refused.reason(), "last_app_admin", "{}", refused.text);
            raced += 1;
        }
        let members = s.get(&format!("/api/apps/{app}/members?limit=100"), &operator).await;
        let admins = members.data().as_array().unwrap().iter().filter(|m| m["role"] == "app_admin").count();
        assert_eq!(admins, 1, "trial {trial}: one admin remains");
    }
    println!("{raced} of 10 trials raced into the store's guard");
}

#[tokio::test]
async fn an_operator_can_make_themself_admin_of_any_app_and_it_is_audited() {
    let s = TestServer::start().await;
    let operator = s.admin_token.clone();
    let operator_id = s.user_id(&operator).await;
    let app = s.create_app(&operator, "locked-out").await;
    let bob = s.invite_and_accept(&operator, &app, "bob@example.com", "app_admin").await;
    // Bob removes the operator, then is the app's only admin.
    s.req("DELETE", &format!("/api/apps/{app}/members/{operator_id}"), Some(&bob), None).await.assert_status(200);
    s.get(&format!("/api/apps/{app}"), &operator).await.assert_error(404, "not_found");

    // A member who is not an operator cannot use the way in.
    let rita = s.invite_and_accept(&bob, &app, "rita@example.com", "user").await;
    let r = s.req("POST", &format!("/api/apps/{app}/admins"), Some(&rita), None).await;
    r.assert_error(403, "forbidden");

    let r = s.req("POST", &format!("/api/apps/{app}/admins"), Some(&operator), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["role"], "app_admin");
    assert_eq!(r.data()["user_id"], operator_id);
    s.get(&format!("/api/apps/{app}"), &operator).await.assert_status(200);
    let audit = s.get(&format!("/api/apps/{app}/audit?entity_type=membership&limit=100"), &operator).await;
    let granted = audit.data().as_array().unwrap().iter().find(|e| e["action"] == "member.operator_granted").cloned();
    let granted = granted.expect("the grant is audited");
    assert_eq!(granted["actor_id"], operator_id);
    assert_eq!(granted["after"]["role"], "app_admin");
    // Granting again changes nothing.
    let before = s.chain_len().await;
    s.req("POST", &format!("/api/apps/{app}/admins"), Some(&operator), None).await.assert_status(200);
    assert_eq!(s.chain_len().await, before);
}
