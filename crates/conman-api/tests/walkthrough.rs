//! The happy path of the foundation slice over HTTP, as the README walks a
//! new user through it: log in, create an app, invite a reviewer who
//! accepts and sees the app, edit files in a workspace (single writes and
//! an atomic batch of put/delete/move), read files and listings back,
//! switch to `manual_checkpoint`, checkpoint, reset, sync — and find every
//! step in the app's audit log, filterable and paginated.

mod common;

use common::{b64, TestServer, PASSWORD};
use serde_json::{json, Value};

fn actions(list: &Value) -> Vec<String> {
    list.as_array().expect("list").iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_new_team_logs_in_invites_a_reviewer_and_edits_checkpoints_resets_and_syncs_a_workspace() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let admin_id = s.user_id(&admin).await;

    // Create an app: the operator becomes its app_admin.
    let r = s.req("POST", "/api/apps", Some(&admin), Some(json!({ "name": "shop" }))).await;
    r.assert_status(201);
    assert_eq!(r.data()["name"], "shop");
    assert_eq!(r.data()["role"], "app_admin");
    assert_eq!(r.data()["settings"]["integration_branch"], "main");
    assert_eq!(r.data()["settings"]["commit_mode_default"], "submit_commit");
    assert_eq!(r.data()["settings"]["file_size_limit_bytes"], 5 * 1024 * 1024);
    let app = r.data()["id"].as_str().unwrap().to_owned();

    // Invite a reviewer; the token comes back once in the answer.
    let invite = s.invite(&admin, &app, "rita@example.com", "reviewer").await;
    let invite_id = invite.data()["id"].as_str().unwrap().to_owned();
    let invite_token = invite.data()["token"].as_str().unwrap().to_owned();
    assert_eq!(invite.data()["invite"]["state"], "pending");
    assert_eq!(invite.data()["invite"]["role"], "reviewer");
    let listed = s.get(&format!("/api/apps/{app}/invites"), &admin).await;
    listed.assert_status(200);
    assert!(!listed.text.contains(&invite_token), "invite listings never show the token");

    // The reviewer accepts and is logged in.
    let r = s
        .req(
            "POST",
            "/api/auth/accept-invite",
            None,
            Some(json!({ "token": &invite_token, "name": "Rita Reviewer", "password": PASSWORD })),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.data()["user"]["email"], "rita@example.com");
    assert_eq!(r.data()["user"]["name"], "Rita Reviewer");
    let reviewer = r.data()["token"].as_str().unwrap().to_owned();
    let reviewer_id = r.data()["user"]["id"].as_str().unwrap().to_owned();

    // The reviewer sees the app among their memberships and apps; can log in again.
    let me = s.get("/api/me", &reviewer).await;
    me.assert_status(200);
    assert_eq!(me.data()["memberships"], json!([{ "app_id": app, "app_name": "shop", "role": "reviewer" }]));
    let apps = s.get("/api/apps", &reviewer).await;
    assert_eq!(apps.data()[0]["id"], app.as_str());
    assert_eq!(apps.data()[0]["role"], "reviewer");
    assert_eq!(apps.body["pagination"]["total"], 1);
    s.login("rita@example.com", PASSWORD).await;
    let members = s.get(&format!("/api/apps/{app}/members"), &admin).await;
    assert_eq!(members.body["pagination"]["total"], 2);
    let invites = s.get(&format!("/api/apps/{app}/invites"), &admin).await;
    assert_eq!(invites.data()[0]["state"], "accepted");
    assert_eq!(invites.data()[0]["accepted_by"], reviewer_id.as_str());

    // The admin's default workspace is created on first use, at the integration head.
    let ws = s.default_workspace(&admin, &app).await;
    let r = s.get(&format!("/api/apps/{app}/workspaces/{ws}"), &admin).await;
    r.assert_status(200);
    assert_eq!(r.data()["branch"], "ws/admin/default");
    let base = r.data()["base_sha"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["head_sha"], base.as_str());
    assert_eq!(r.data()["commit_mode"], Value::Null);

    // Single-file writes.
    let r = s.put_file(&admin, &app, &ws, "config/app.yaml", b"port: 8080\n").await;
    r.assert_status(200);
    assert_eq!(r.data()["paths"], json!(["config/app.yaml"]));
    let head_after_first = r.data()["head_sha"].as_str().unwrap().to_owned();
    assert_eq!(head_after_first.len(), 40);
    assert_ne!(head_after_first, base);
    s.put_file(&admin, &app, &ws, "notes.txt", b"remember").await.assert_status(200);
    assert_eq!(s.read_file(&admin, &app, &ws, "config/app.yaml").await.as_deref(), Some(&b"port: 8080\n"[..]));

    // Submit-commit mode has no checkpoints.
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/workspaces/{ws}/checkpoints"),
            Some(&admin),
            Some(json!({ "message": "x" })),
        )
        .await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "submit_commit_mode");

    // One atomic batch: put, move, delete.
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/workspaces/{ws}/changes"),
            Some(&admin),
            Some(json!({
                "message": "restructure",
                "ops": [
                    { "op": "put", "path": "config/db.yaml", "content": b64("url: postgres://db\n") },
                    { "op": "move", "from": "notes.txt", "to": "docs/notes.txt" },
                    { "op": "delete", "path": "config/app.yaml" },
                ]
            })),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.data()["paths"], json!(["config/db.yaml", "notes.txt", "docs/notes.txt", "config/app.yaml"]));
    assert_eq!(s.list_dir(&admin, &app, &ws, "").await, ["config", "docs"]);
    assert_eq!(s.list_dir(&admin, &app, &ws, "config").await, ["config/db.yaml"]);
    assert_eq!(s.read_file(&admin, &app, &ws, "docs/notes.txt").await.as_deref(), Some(&b"remember"[..]));
    assert_eq!(s.read_file(&admin, &app, &ws, "notes.txt").await, None);
    assert_eq!(s.read_file(&admin, &app, &ws, "config/app.yaml").await, None);
    let root = s.get(&format!("/api/apps/{app}/workspaces/{ws}/files"), &admin).await;
    assert_eq!(root.data()["kind"], "dir");
    assert_eq!(root.data()["entries"][0], json!({ "name": "config", "path": "config", "kind": "dir", "size": null }));
    let file = s.get(&format!("/api/apps/{app}/workspaces/{ws}/files?path=config/db.yaml"), &admin).await;
    assert_eq!(file.data()["kind"], "file");
    assert_eq!(file.data()["size"], 19);
    assert_eq!(file.data()["content"], b64("url: postgres://db\n"));

    // A reviewer reads others' workspaces (read is open to every member).
    assert_eq!(
        s.read_file(&reviewer, &app, &ws, "config/db.yaml").await.as_deref(),
        Some(&b"url: postgres://db\n"[..])
    );

    // Single delete.
    let r = s
        .req(
            "DELETE",
            &format!("/api/apps/{app}/workspaces/{ws}/files"),
            Some(&admin),
            Some(json!({ "path": "docs/notes.txt" })),
        )
        .await;
    r.assert_status(200);
    assert_eq!(s.read_file(&admin, &app, &ws, "docs/notes.txt").await, None);

    // Switch to manual_checkpoint and checkpoint.
    let r = s
        .req(
            "PATCH",
            &format!("/api/apps/{app}/workspaces/{ws}"),
            Some(&admin),
            Some(json!({ "commit_mode": "manual_checkpoint", "title": "Main work" })),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.data()["commit_mode"], "manual_checkpoint");
    assert_eq!(r.data()["title"], "Main work");
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/workspaces/{ws}/checkpoints"),
            Some(&admin),
            Some(json!({ "message": "First checkpoint" })),
        )
        .await;
    r.assert_status(201);
    let commit = r.data()["commit_sha"].as_str().expect("a commit").to_owned();
    assert_eq!(commit.len(), 40);
    assert_eq!(s.head(&admin, &app, &ws).await, commit, "after a checkpoint the head is the branch commit");
    assert_eq!(s.read_file(&admin, &app, &ws, "config/db.yaml").await.as_deref(), Some(&b"url: postgres://db\n"[..]));
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/workspaces/{ws}/checkpoints"),
            Some(&admin),
            Some(json!({ "message": "Nothing new" })),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.data()["commit_sha"], Value::Null, "nothing to commit answers null");

    // Reset: back to the baseline, every edit gone.
    s.put_file(&admin, &app, &ws, "scratch.txt", b"x").await.assert_status(200);
    let r = s.req("POST", &format!("/api/apps/{app}/workspaces/{ws}/reset"), Some(&admin), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["base_sha"], base.as_str());
    assert_eq!(s.head(&admin, &app, &ws).await, base);
    assert_eq!(s.read_file(&admin, &app, &ws, "config/db.yaml").await, None);
    assert_eq!(s.read_file(&admin, &app, &ws, "scratch.txt").await, None);
    assert!(s.list_dir(&admin, &app, &ws, "").await.is_empty());

    // Sync: the integration branch has not moved, so it is up to date.
    let r = s.req("POST", &format!("/api/apps/{app}/workspaces/{ws}/sync-integration"), Some(&admin), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["head_sha"], base.as_str());
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/workspaces/{ws}/sync-integration"),
            Some(&admin),
            Some(json!({ "strategy": "rebase" })),
        )
        .await;
    r.assert_status(200);

    // The audit log tells the story, newest first.
    let all = s.get(&format!("/api/apps/{app}/audit?limit=100"), &admin).await;
    all.assert_status(200);
    let total = all.body["pagination"]["total"].as_u64().unwrap();
    assert_eq!(all.data().as_array().unwrap().len() as u64, total);
    let seen = actions(all.data());
    for action in [
        "app.created",
        "member.added",
        "invite.created",
        "invite.accepted",
        "workspace.created",
        "workspace.files_changed",
        "workspace.updated",
        "workspace.checkpointed",
        "workspace.reset",
    ] {
        assert!(seen.iter().any(|a| a == action), "{action} missing from {seen:?}");
    }
    assert_eq!(seen.last().map(String::as_str), Some("app.created"), "oldest last: {seen:?}");
    assert_eq!(seen.first().map(String::as_str), Some("workspace.reset"), "newest first: {seen:?}");
    let seqs: Vec<i64> = all.data().as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first by seq: {seqs:?}");
    let writes = all.data().as_array().unwrap().iter().filter(|e| e["action"] == "workspace.files_changed").count();
    assert_eq!(writes, 5, "one audit event per write request (3 puts, 1 batch, 1 delete)");
    let checkpoint = all.data().as_array().unwrap().iter().find(|e| e["action"] == "workspace.checkpointed").unwrap();
    assert_eq!(checkpoint["git_sha"], commit.as_str());
    assert_eq!(checkpoint["actor_id"], admin_id.as_str());
    assert!(checkpoint["request_id"].as_str().is_some_and(|r| !r.is_empty()), "request context recorded");

    // Filter by entity type and id.
    let r = s.get(&format!("/api/apps/{app}/audit?entity_type=workspace&limit=100"), &admin).await;
    r.assert_status(200);
    assert!(r.data().as_array().unwrap().iter().all(|e| e["entity_type"] == "workspace"));
    assert_eq!(r.body["pagination"]["total"].as_u64().unwrap(), r.data().as_array().unwrap().len() as u64);
    assert_eq!(
        r.body["pagination"]["total"], 10,
        "2 created (each member's default), 5 writes, updated, checkpointed, reset"
    );
    let r = s.get(&format!("/api/apps/{app}/audit?entity_type=invite&entity_id={invite_id}"), &admin).await;
    assert_eq!(actions(r.data()), ["invite.accepted", "invite.created"]);
    let r = s.get(&format!("/api/apps/{app}/audit?entity_id={ws}&limit=100"), &admin).await;
    assert!(r.data().as_array().unwrap().iter().all(|e| e["entity_id"] == ws.as_str()));
    assert_eq!(actions(r.data()).last().map(String::as_str), Some("workspace.created"));

    // Filter by actor: the reviewer did exactly the acceptance, which
    // created their default workspace.
    let r = s.get(&format!("/api/apps/{app}/audit?actor={reviewer_id}"), &admin).await;
    assert_eq!(actions(r.data()), ["workspace.created", "member.added", "invite.accepted"]);
    assert!(r.data().as_array().unwrap().iter().all(|e| e["actor_id"] == reviewer_id.as_str()));

    // Filter by time range: since is inclusive, until exclusive.
    let events = all.data().as_array().unwrap();
    let pivot = events[events.len() / 2]["occurred_at"].as_str().unwrap().to_owned();
    let pivot_t: chrono::DateTime<chrono::Utc> = pivot.parse().unwrap();
    let since = s.get(&format!("/api/apps/{app}/audit?limit=100&since={}", common::encode(&pivot)), &admin).await;
    since.assert_status(200);
    let until = s.get(&format!("/api/apps/{app}/audit?limit=100&until={}", common::encode(&pivot)), &admin).await;
    until.assert_status(200);
    let count = |r: &common::Reply| r.body["pagination"]["total"].as_u64().unwrap();
    assert_eq!(count(&since) + count(&until), total, "since and until split the log");
    assert!(count(&since) > 0 && count(&until) > 0);
    for e in since.data().as_array().unwrap() {
        assert!(e["occurred_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap() >= pivot_t);
    }
    for e in until.data().as_array().unwrap() {
        assert!(e["occurred_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap() < pivot_t);
    }
    let window = s
        .get(
            &format!("/api/apps/{app}/audit?since={}&until={}", common::encode(&pivot), common::encode(&pivot)),
            &admin,
        )
        .await;
    assert_eq!(window.body["pagination"]["total"], 0, "an empty window");
    let inverted =
        s.get(&format!("/api/apps/{app}/audit?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z"), &admin).await;
    inverted.assert_error(400, "validation_error");

    // Pagination: pages are slices of the full list with the same total.
    let p2 = s.get(&format!("/api/apps/{app}/audit?limit=2&page=2"), &admin).await;
    p2.assert_status(200);
    assert_eq!(p2.body["pagination"], json!({ "page": 2, "limit": 2, "total": total }));
    assert_eq!(p2.data().as_array().unwrap(), &events[2..4]);
    let beyond = s.get(&format!("/api/apps/{app}/audit?limit=100&page=50"), &admin).await;
    beyond.assert_status(200);
    assert_eq!(beyond.data(), &json!([]));
    assert_eq!(beyond.body["pagination"]["total"], total);

    // Any member may read the audit log.
    let r = s.get(&format!("/api/apps/{app}/audit"), &reviewer).await;
    r.assert_status(200);
    assert_eq!(r.body["pagination"]["total"], total);

    // Neither one-time tokens nor password hashes ever reach the audit log.
    assert!(!all.text.contains(&invite_token), "invite token in the audit log");
    assert!(!all.text.contains(&reviewer), "session token in the audit log");
    assert!(!all.text.contains("argon2"), "password hash in the audit log");
    assert!(!all.text.contains("token_hash"), "token hash in the audit log");

    // The whole chain verifies.
    assert!(s.chain_len().await >= total);
}

#[tokio::test]
async fn personal_api_tokens_authenticate_are_shown_once_and_listed_without_the_secret() {
    let s = TestServer::start().await;
    let r = s
        .req("POST", "/api/me/tokens", Some(&s.admin_token), Some(json!({ "name": "ci bot", "expires_in_days": 30 })))
        .await;
    r.assert_status(201);
    let token = r.data()["token"].as_str().unwrap().to_owned();
    let id = r.data()["id"].as_str().unwrap().to_owned();
    assert!(r.data()["expires_at"].is_string());
    let me = s.get("/api/me", &token).await;
    me.assert_status(200);
    assert_eq!(me.data()["user"]["email"], common::ADMIN_EMAIL);
    let list = s.get("/api/me/tokens", &s.admin_token).await;
    list.assert_status(200);
    assert_eq!(list.data()[0]["id"], id.as_str());
    assert!(list.data()[0].get("token").is_none(), "never shown again: {}", list.text);
    assert!(!list.text.contains(&token));

    // Notification preferences round-trip.
    let r =
        s.req("PATCH", "/api/me/notification-preferences", Some(&token), Some(json!({ "email_enabled": false }))).await;
    r.assert_status(200);
    assert_eq!(r.data()["email_enabled"], false);
    let r = s.get("/api/me/notification-preferences", &s.admin_token).await;
    assert_eq!(r.data()["email_enabled"], false);
}

#[tokio::test]
async fn members_are_added_re_roled_and_removed_by_the_app_admin_but_the_last_admin_stays() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let admin_id = s.user_id(&admin).await;
    let app = s.create_app(&admin, "members").await;
    let other_app = s.create_app(&admin, "elsewhere").await;
    let u = s.invite_and_accept(&admin, &other_app, "uma@example.com", "user").await;
    let uma = s.user_id(&u).await;

    let r = s
        .req("POST", &format!("/api/apps/{app}/members"), Some(&admin), Some(json!({ "user_id": uma, "role": "user" })))
        .await;
    r.assert_status(200);
    assert_eq!(r.data(), &json!({ "app_id": app, "user_id": uma, "role": "user" }));
    s.get(&format!("/api/apps/{app}"), &u).await.assert_status(200);
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/members"),
            Some(&admin),
            Some(json!({ "user_id": uma, "role": "config_manager" })),
        )
        .await;
    r.assert_status(200);
    let me = s.get("/api/me", &u).await;
    assert!(me.data()["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["app_id"] == app.as_str() && m["role"] == "config_manager"));

    // The only app_admin can neither leave nor be demoted.
    let r = s.req("DELETE", &format!("/api/apps/{app}/members/{admin_id}"), Some(&admin), None).await;
    r.assert_error(409, "conflict");
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/members"),
            Some(&admin),
            Some(json!({ "user_id": admin_id, "role": "user" })),
        )
        .await;
    r.assert_error(409, "conflict");

    let r = s.req("DELETE", &format!("/api/apps/{app}/members/{uma}"), Some(&admin), None).await;
    r.assert_status(200);
    s.get(&format!("/api/apps/{app}"), &u).await.assert_error(404, "not_found");
    let r = s.req("DELETE", &format!("/api/apps/{app}/members/{uma}"), Some(&admin), None).await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn invites_are_resent_with_a_fresh_token_and_revoked() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "resend").await;
    let first = s.invite(&admin, &app, "newbie@example.com", "user").await;
    let id = first.data()["id"].as_str().unwrap().to_owned();
    let old_token = first.data()["token"].as_str().unwrap().to_owned();
    let r = s.req("POST", &format!("/api/apps/{app}/invites/{id}/resend"), Some(&admin), None).await;
    r.assert_status(200);
    let new_token = r.data()["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, old_token);
    let accept = |token: String| {
        let s = &s;
        async move {
            s.req(
                "POST",
                "/api/auth/accept-invite",
                None,
                Some(json!({ "token": token, "name": "New Bie", "password": PASSWORD })),
            )
            .await
        }
    };
    accept(old_token).await.assert_error(404, "not_found");
    accept(new_token).await.assert_status(200);

    let second = s.invite(&admin, &app, "later@example.com", "reviewer").await;
    let id2 = second.data()["id"].as_str().unwrap().to_owned();
    let r = s.req("DELETE", &format!("/api/apps/{app}/invites/{id2}"), Some(&admin), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["state"], "revoked");
    let r = s.req("DELETE", &format!("/api/apps/{app}/invites/{id2}"), Some(&admin), None).await;
    r.assert_error(409, "invalid_transition");
}

#[tokio::test]
async fn apps_are_created_fresh_or_imported_and_a_refused_creation_leaves_nothing_behind() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let repos = || s.dir.path().join("repos").read_dir().unwrap().count();

    // A fresh app on a chosen integration branch.
    let r = s
        .req("POST", "/api/apps", Some(&admin), Some(json!({ "name": "dev-app", "integration_branch": "develop" })))
        .await;
    r.assert_status(201);
    assert_eq!(r.data()["settings"]["integration_branch"], "develop");
    let dev = r.data()["id"].as_str().unwrap().to_owned();
    let ws = s.default_workspace(&admin, &dev).await;
    s.put_file(&admin, &dev, &ws, "seed.yaml", b"seed: true\n").await.assert_status(200);
    s.write_upstream(&dev, "develop", "upstream.yaml", b"u: 1\n").await;

    // Import from a local path (here: the first app's repository).
    let source = s.dir.path().join("repos").join(format!("{dev}.git"));
    let r = s
        .req(
            "POST",
            "/api/apps",
            Some(&admin),
            Some(
                json!({ "name": "imported", "integration_branch": "develop", "import_from": source.to_str().unwrap() }),
            ),
        )
        .await;
    r.assert_status(201);
    let imported = r.data()["id"].as_str().unwrap().to_owned();
    let iws = s.default_workspace(&admin, &imported).await;
    assert_eq!(s.read_file(&admin, &imported, &iws, "upstream.yaml").await.as_deref(), Some(&b"u: 1\n"[..]));
    assert_eq!(s.read_file(&admin, &imported, &iws, "seed.yaml").await, None, "workspace edits are not on the branch");

    // Refused creations: no app, no repository, no audit event.
    let chain = s.chain_len().await;
    let before = repos();
    let cases = [
        (json!({ "name": "dev-app" }), 409, "conflict"),
        (json!({ "name": "Bad Name" }), 400, "validation_error"),
        (json!({ "name": "" }), 400, "validation_error"),
        (json!({ "name": "x".repeat(64) }), 400, "validation_error"),
        (json!({ "name": "bad-branch", "integration_branch": "../x" }), 400, "validation_error"),
        (json!({ "name": "nowhere", "import_from": "/nonexistent/repo.git" }), 400, "validation_error"),
        (json!({ "name": "relative", "import_from": "repos/x.git" }), 400, "validation_error"),
        (json!({ "name": "ftp", "import_from": "ftp://example.com/x.git" }), 400, "validation_error"),
        (
            json!({ "name": "no-branch", "import_from": source.to_str().unwrap(), "integration_branch": "nope" }),
            400,
            "validation_error",
        ),
    ];
    for (body, status, code) in cases {
        let r = s.req("POST", "/api/apps", Some(&admin), Some(body.clone())).await;
        r.assert_error(status, code);
        assert!(!r.text.contains(s.dir.path().to_str().unwrap()), "no internal paths in {}", r.text);
    }
    // https and ssh sources are refused before any fetch (the git adapter
    // has no TLS or SSH stack; docs/decisions/0006).
    for src in ["https://github.com/example/config.git", "ssh://git@example.com/config.git"] {
        let r = s.req("POST", "/api/apps", Some(&admin), Some(json!({ "name": "remote", "import_from": src }))).await;
        r.assert_error(400, "validation_error");
        assert_eq!(r.body["error"]["details"]["reason"], "unsupported_transport", "{}", r.text);
    }
    assert_eq!(s.chain_len().await, chain);
    assert_eq!(repos(), before, "no repository left behind");
    assert_eq!(s.get("/api/apps", &admin).await.body["pagination"]["total"], 2);
}

/// Workspaces of the app as `token` lists them: (owner id, is_default) pairs.
async fn workspaces(s: &TestServer, token: &str, app: &str) -> Vec<(String, bool)> {
    let r = s.get(&format!("/api/apps/{app}/workspaces?limit=100"), token).await;
    r.assert_status(200);
    let list = r.data().as_array().expect("workspace list").clone();
    list.iter().map(|w| (w["owner_id"].as_str().unwrap().to_owned(), w["is_default"] == true)).collect()
}

/// SPEC §2.2 "each user gets one default workspace per app": it comes with
/// the membership (app creation, invite acceptance, member added), and
/// listing workspaces is a read that writes nothing — no audit event, no
/// workspace row.
#[tokio::test]
async fn default_workspaces_come_with_the_membership_and_listing_them_writes_nothing() {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let admin_id = s.user_id(&admin).await;
    let app = s.create_app(&admin, "defaults").await;
    let elsewhere = s.create_app(&admin, "elsewhere").await;

    // The creator's default workspace exists at once.
    let chain = s.chain_len().await;
    assert_eq!(workspaces(&s, &admin, &app).await, [(admin_id.clone(), true)]);
    assert_eq!(s.chain_len().await, chain, "a GET wrote an audit event");

    // Invite accepted: the new member's default workspace exists before
    // they ask for it, and their first GET writes nothing.
    let ivy = s.invite_and_accept(&admin, &app, "ivy@example.com", "user").await;
    let ivy_id = s.user_id(&ivy).await;
    let chain = s.chain_len().await;
    let listed = workspaces(&s, &ivy, &app).await;
    assert_eq!(s.chain_len().await, chain, "a member's first GET wrote an audit event");
    assert_eq!(listed, [(admin_id.clone(), true), (ivy_id.clone(), true)]);
    assert_eq!(workspaces(&s, &ivy, &app).await, listed, "a GET added a workspace row");

    // Member added by the admin (an account from another app): the same.
    let max = s.invite_and_accept(&admin, &elsewhere, "max@example.com", "user").await;
    let max_id = s.user_id(&max).await;
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/members"),
            Some(&admin),
            Some(json!({ "user_id": max_id, "role": "reviewer" })),
        )
        .await;
    r.assert_status(200);
    let chain = s.chain_len().await;
    let listed = workspaces(&s, &max, &app).await;
    assert_eq!(s.chain_len().await, chain, "an added member's first GET wrote an audit event");
    assert_eq!(listed, [(admin_id.clone(), true), (ivy_id, true), (max_id.clone(), true)]);

    // A role change or a repeated grant creates nothing more.
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{app}/members"),
            Some(&admin),
            Some(json!({ "user_id": max_id, "role": "user" })),
        )
        .await;
    r.assert_status(200);
    assert_eq!(workspaces(&s, &admin, &app).await.len(), 3);
    assert_eq!(workspaces(&s, &max, &elsewhere).await, [(admin_id, true), (max_id, true)]);
}
