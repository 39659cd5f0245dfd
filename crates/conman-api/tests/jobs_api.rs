//! The jobs HTTP API and `/api/metrics`: start a gate run, read the job in
//! its `{"job": ...}` envelope, follow its log with `after`, filter the
//! listing, the refusals (409 on a finished job, 404 unknown or foreign,
//! 400 malformed, 403 by role), and the Prometheus metrics.

mod common;

use std::time::Duration;

use common::{TestServer, Workers};
use serde_json::json;

async fn wait_terminal(s: &TestServer, app: &str, job: &str) -> serde_json::Value {
    for _ in 0..500 {
        let r = s.get(&format!("/api/apps/{app}/jobs/{job}"), &s.admin_token).await;
        r.assert_status(200);
        let state = r.data()["job"]["state"].as_str().unwrap().to_owned();
        if ["succeeded", "failed", "canceled"].contains(&state.as_str()) {
            return r.data()["job"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {job} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_run_is_started_read_followed_and_counted_in_metrics() {
    let s = TestServer::start_with(|s| s.allow_app_gate_commands = true).await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "gated").await;
    let r = s
        .req(
            "PATCH",
            &format!("/api/apps/{app}/settings"),
            Some(&admin),
            Some(json!({ "gates": { "submit": "echo hello-from-gate; echo second line >&2", "timeout_secs": 30 } })),
        )
        .await;
    r.assert_status(200);

    let r = s.req("POST", &format!("/api/apps/{app}/jobs"), Some(&admin), Some(json!({ "type": "gate_submit" }))).await;
    r.assert_status(201);
    let job = r.data()["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["job"]["state"], "queued");
    assert_eq!(r.data()["job"]["type"], "gate_submit");

    let workers = Workers::start(&s);
    let done = wait_terminal(&s, &app, &job).await;
    workers.stop().await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["passed"], true);
    assert_eq!(done["attempts"], 1);

    let logs = s.get(&format!("/api/apps/{app}/jobs/{job}/logs"), &admin).await;
    logs.assert_status(200);
    let texts: Vec<&str> =
        logs.data()["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"hello-from-gate"), "{texts:?}");
    assert!(texts.contains(&"second line"), "{texts:?}");
    assert_eq!(logs.data()["state"], "succeeded");
    assert_eq!(logs.data()["complete"], true, "a finished job's whole log in one page");
    let next = logs.data()["next_after"].as_i64().unwrap();
    let rest = s.get(&format!("/api/apps/{app}/jobs/{job}/logs?after={next}"), &admin).await;
    assert_eq!(rest.data()["lines"].as_array().unwrap().len(), 0, "following from next_after gives nothing new");
    let partial = s.get(&format!("/api/apps/{app}/jobs/{job}/logs?after=1&limit=1"), &admin).await;
    assert_eq!(partial.data()["lines"][0]["seq"], 2);
    assert_eq!(partial.data()["complete"], false, "a full page may have more after it");

    let list = s.get(&format!("/api/apps/{app}/jobs?type=gate_submit&state=succeeded"), &admin).await;
    list.assert_status(200);
    assert_eq!(list.body["pagination"]["total"], 1);
    let none = s.get(&format!("/api/apps/{app}/jobs?state=failed"), &admin).await;
    assert_eq!(none.body["pagination"]["total"], 0);

    let metrics = s.req("GET", "/api/metrics", None, None).await;
    metrics.assert_status(200);
    assert!(metrics.text.contains("conman_jobs"), "{}", metrics.text);
    let line = metrics
        .text
        .lines()
        .find(|l| l.starts_with("conman_jobs{") && l.contains("gate_submit") && l.contains("succeeded"))
        .unwrap_or_else(|| panic!("no gate_submit/succeeded gauge in {}", metrics.text));
    assert!(line.trim_end().ends_with(" 1"), "{line}");
    assert!(metrics.text.contains("conman_job_run_seconds"), "{}", metrics.text);
}

#[tokio::test]
async fn job_requests_are_refused_with_the_right_codes_and_change_nothing() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "refusals").await;
    let other = s.create_app(&admin, "other").await;
    let user = s.invite_and_accept(&admin, &app, "user@example.com", "user").await;

    let r = s.req("POST", &format!("/api/apps/{app}/jobs"), Some(&admin), Some(json!({ "type": "gate_submit" }))).await;
    let job = r.data()["job"]["id"].as_str().unwrap().to_owned();

    // A user may not start gate runs; only gate types can be started; commits must exist.
    s.req("POST", &format!("/api/apps/{app}/jobs"), Some(&user), Some(json!({ "type": "gate_submit" })))
        .await
        .assert_error(403, "forbidden");
    s.req("POST", &format!("/api/apps/{app}/jobs"), Some(&admin), Some(json!({ "type": "notify" })))
        .await
        .assert_error(400, "validation_error");
    s.req("POST", &format!("/api/apps/{app}/jobs"), Some(&admin), Some(json!({ "type": "bogus" })))
        .await
        .assert_error(400, "validation_error");
    s.req(
        "POST",
        &format!("/api/apps/{app}/jobs"),
        Some(&admin),
        Some(json!({ "type": "gate_submit", "commit": "xyz" })),
    )
    .await
    .assert_error(400, "validation_error");
    let unknown_commit = "0123456789abcdef0123456789abcdef01234567";
    s.req(
        "POST",
        &format!("/api/apps/{app}/jobs"),
        Some(&admin),
        Some(json!({ "type": "gate_submit", "commit": unknown_commit })),
    )
    .await
    .assert_error(404, "not_found");

    // Unknown, foreign and malformed ids.
    s.get(&format!("/api/apps/{app}/jobs/{}", uuid::Uuid::now_v7()), &admin).await.assert_error(404, "not_found");
    s.get(&format!("/api/apps/{other}/jobs/{job}"), &admin).await.assert_error(404, "not_found");
    s.get(&format!("/api/apps/{app}/jobs/not-a-uuid"), &admin).await.assert_error(400, "validation_error");
    s.get(&format!("/api/apps/{app}/jobs?state=sleeping"), &admin).await.assert_error(400, "validation_error");
    s.get(&format!("/api/apps/{app}/jobs/{job}/logs?limit=0"), &admin).await.assert_error(400, "validation_error");

    // A user may not cancel someone else's job; the admin cancels the queued job once.
    s.req("POST", &format!("/api/apps/{app}/jobs/{job}/cancel"), Some(&user), None)
        .await
        .assert_error(403, "forbidden");
    let r = s.req("POST", &format!("/api/apps/{app}/jobs/{job}/cancel"), Some(&admin), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["job"]["state"], "canceled");
    let again = s.req("POST", &format!("/api/apps/{app}/jobs/{job}/cancel"), Some(&admin), None).await;
    again.assert_error(409, "invalid_transition");
    let after = s.get(&format!("/api/apps/{app}/jobs/{job}"), &admin).await;
    assert_eq!(after.data()["job"]["state"], "canceled");
    assert_eq!(after.data()["job"]["attempts"], 0, "a canceled queued job never ran");
}
