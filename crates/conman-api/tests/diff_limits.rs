//! Issue 18 item 3: a semantic diff of hostile YAML cannot freeze the
//! server. Parsing runs within `ParseLimits` — an alias bomb is reported at
//! file level with reason `too_complex` — and on the blocking pool, so the
//! async threads keep answering while large diffs are computed.

mod common;

use std::sync::Arc;

use common::{b64, TestServer};
use serde_json::{json, Value};

/// A YAML alias bomb under serde_yaml_ng's own repetition limit (which
/// counts alias jumps, not values): a thousand values, referenced twenty
/// times, referenced twenty times — 400,000 values from 9 KB.
fn alias_bomb(seed: usize) -> String {
    let values: Vec<String> = (0..1000).map(|i| format!("v{seed}_{i}")).collect();
    format!(
        "a: &a [{}]\nb: &b [{}]\nc: [{}]\n",
        values.join(", "),
        vec!["*a"; 20].join(", "),
        vec!["*b"; 20].join(", ")
    )
}

/// A changeset whose diff holds `files` alias bombs, and its diff URL.
async fn bomb_changeset(s: &TestServer, files: usize) -> String {
    let admin = s.admin_token.as_str();
    let app = s.create_app(admin, "bombs").await;
    let ws = s.default_workspace(admin, &app).await;
    let ops: Vec<Value> = (0..files)
        .map(|i| json!({ "op": "put", "path": format!("bomb{i}.yaml"), "content": b64(alias_bomb(i)) }))
        .collect();
    s.req("POST", &format!("/api/apps/{app}/workspaces/{ws}/changes"), Some(admin), Some(json!({ "ops": ops })))
        .await
        .assert_status(200);
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/changesets"),
            Some(admin),
            Some(json!({ "workspace_id": ws, "title": "Bombs" })),
        )
        .await;
    r.assert_status(201);
    let cs = r.data()["id"].as_str().expect("changeset id").to_owned();
    format!("/api/apps/{app}/changesets/{cs}/diff?mode=semantic")
}

#[tokio::test]
async fn an_alias_bomb_is_reported_at_file_level_as_too_complex() {
    let s = TestServer::start().await;
    let url = bomb_changeset(&s, 1).await;
    let r = s.get(&url, &s.admin_token).await;
    r.assert_status(200);
    let file = &r.data()["files"][0];
    assert_eq!(file["path"], "bomb0.yaml");
    assert_eq!(file["level"], "file", "{file}");
    assert_eq!(file["reason"], "too_complex", "{file}");
    assert_eq!(file["changes"], json!([]));
    let note = file["note"].as_str().unwrap();
    assert!(note.starts_with("new side is too complex to compare by key: more than 200000 values"), "{note}");
    assert_eq!(r.data()["summary"]["by_op"]["file_added"], 1);
}

/// While four large diffs are being computed, a request that needs no diff
/// is answered. The test runs on a single-threaded runtime: if parsing ran
/// on the async thread, nothing else — not even the test's own timer —
/// could run until every diff had finished.
#[tokio::test(flavor = "current_thread")]
async fn the_async_thread_keeps_answering_while_large_diffs_run() {
    let s = Arc::new(TestServer::start().await);
    // Twelve bombs per diff: each spends a side's node budget (200,000), so
    // a diff spends its whole budget (2,000,000 values) on parsing.
    let url = bomb_changeset(&s, 12).await;
    let diffs: Vec<_> = (0..4)
        .map(|_| {
            let (s, url) = (Arc::clone(&s), url.clone());
            tokio::spawn(async move { s.get(&url, &s.admin_token).await })
        })
        .collect();
    // Let the four requests reach their parse, then ask for something else.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let health = s.req("GET", "/api/health", None, None).await;
    health.assert_status(200);
    let still_running = diffs.iter().filter(|d| !d.is_finished()).count();
    assert!(still_running > 0, "every diff had finished before /api/health was answered: they held the async thread");
    for diff in diffs {
        let r = diff.await.expect("diff task");
        r.assert_status(200);
        let files = r.data()["files"].as_array().unwrap().clone();
        assert_eq!(files.len(), 12);
        assert!(files.iter().all(|f| f["reason"] == "too_complex"), "{files:?}");
    }
}
