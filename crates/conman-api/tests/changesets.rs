//! Changesets over HTTP (SPEC §2.3, §4, §7): the end-to-end flow (edit a
//! YAML file → create → submit, whose gate job runs on a real worker →
//! in review → votes → approved → queued; resubmit freezes revision 2 and
//! resets approvals; frozen revisions keep their diff while the workspace
//! moves on; raw and semantic diffs), a failing gate sending the changeset
//! back to draft, comments with anchors and edit history, notifications in
//! the outbox, every refusal with its status and code while nothing changes
//! (state and the audit chain re-read), and a property test driving random
//! action sequences through the API against a model of the SPEC §4 machine.

mod common;

use std::time::Duration;

use common::{TestServer, Workers};
use conman_api::config::Settings;
use conman_api::runtime::SandboxMode;
use conman_core::ports::store::PageRequest;
use proptest::prelude::*;
use serde_json::{json, Value};

const YAML_BEFORE: &str = "server:\n  port: 8080\n  replicas: 2\nname: shop\n";
const YAML_AFTER: &str = "server:\n  port: 8080\n  replicas: 3\nname: shop\n";

/// An app whose integration branch holds `config/app.yaml`, with an author
/// (reviewer role, so self-approval is refused for the right reason), two
/// reviewers, a plain user, and the author's default workspace.
struct Team {
    s: TestServer,
    admin: String,
    app: String,
    author: String,
    author_id: String,
    rita: String,
    rob: String,
    user: String,
    ws: String,
}

async fn team() -> Team {
    team_with(|_| {}).await
}

/// The team on an installation whose settings `tune` changes; app admins
/// may set gate commands (the gate tests set the app's own).
async fn team_with(tune: impl FnOnce(&mut Settings)) -> Team {
    let s = TestServer::start_with(|s| {
        s.allow_app_gate_commands = true;
        tune(s);
    })
    .await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "shop").await;
    s.write_upstream(&app, "main", "config/app.yaml", YAML_BEFORE.as_bytes()).await;
    let author = s.invite_and_accept(&admin, &app, "dana@example.com", "reviewer").await;
    let rita = s.invite_and_accept(&admin, &app, "rita@example.com", "reviewer").await;
    let rob = s.invite_and_accept(&admin, &app, "rob@example.com", "reviewer").await;
    let user = s.invite_and_accept(&admin, &app, "ulla@example.com", "user").await;
    let author_id = s.user_id(&author).await;
    let ws = s.default_workspace(&author, &app).await;
    Team { s, admin, app, author, author_id, rita, rob, user, ws }
}

impl Team {
    fn cs_path(&self, cs: &str, tail: &str) -> String {
        format!("/api/apps/{}/changesets/{cs}{tail}", self.app)
    }

    async fn post(&self, token: &str, path: &str, body: Option<Value>) -> common::Reply {
        self.s.req("POST", path, Some(token), body).await
    }

    /// Creates a changeset on `ws` as `token`.
    async fn create(&self, token: &str, ws: &str, title: &str) -> String {
        let r = self
            .post(
                token,
                &format!("/api/apps/{}/changesets", self.app),
                Some(json!({ "workspace_id": ws, "title": title })),
            )
            .await;
        r.assert_status(201);
        r.data()["id"].as_str().expect("changeset id").to_owned()
    }

    async fn show(&self, cs: &str) -> Value {
        let r = self.s.get(&self.cs_path(cs, ""), &self.admin).await;
        r.assert_status(200);
        r.data().clone()
    }

    async fn state(&self, cs: &str) -> String {
        self.show(cs).await["state"].as_str().expect("state").to_owned()
    }

    /// Polls until the changeset leaves `submitted` (its gate settled).
    async fn settled(&self, cs: &str) -> Value {
        for _ in 0..1000 {
            let view = self.show(cs).await;
            if view["state"] != "submitted" {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the submit gate of {cs} never settled");
    }

    async fn review(&self, token: &str, cs: &str, body: Value) -> common::Reply {
        self.post(token, &self.cs_path(cs, "/review"), Some(body)).await
    }

    async fn diff(&self, cs: &str, query: &str) -> Value {
        let r = self.s.get(&self.cs_path(cs, &format!("/diff{query}")), &self.admin).await;
        r.assert_status(200);
        r.data().clone()
    }

    /// What a refused request must not change: the audit chain (one event
    /// per mutation), and the changeset's state, revision and votes.
    async fn snapshot(&self, cs: &str) -> (u64, Value, Value, Value) {
        let view = self.show(cs).await;
        (self.s.chain_len().await, view["state"].clone(), view["revision"].clone(), view["reviews"].clone())
    }

    /// Outbox messages of `kind` for `email` (operator read).
    async fn outbox(&self, kind: &str, email: &str) -> Vec<String> {
        let operator = self.s.operator().await;
        let page = PageRequest::new(Some(1), Some(100)).unwrap();
        let messages = self.s.conman.list_outbox(&operator, page).await.expect("outbox");
        messages
            .items
            .into_iter()
            .filter(|m| m.kind == kind && m.recipient.to_string() == email)
            .map(|m| m.subject)
            .collect()
    }
}

fn key_changes(diff: &Value, path: &str) -> Vec<Value> {
    let file = diff["files"].as_array().expect("files").iter().find(|f| f["path"] == path).expect("file in diff");
    file["changes"].as_array().expect("changes").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_edit_goes_from_draft_through_gate_review_and_resubmit_to_the_queue() {
    let t = team().await;
    let (s, app) = (&t.s, t.app.as_str());
    let r = s
        .req("PATCH", &format!("/api/apps/{app}/settings"), Some(&t.admin), Some(json!({ "required_approvals": 2 })))
        .await;
    r.assert_status(200);
    let workers = Workers::start(s);

    // Edit, then open a draft: its diff is the live workspace.
    s.put_file(&t.author, app, &t.ws, "config/app.yaml", YAML_AFTER.as_bytes()).await.assert_status(200);
    let cs = t.create(&t.author, &t.ws, "More replicas").await;
    let draft = t.show(&cs).await;
    assert_eq!(draft["state"], "draft");
    assert_eq!(draft["revision"], 0);
    assert_eq!(draft["author_id"], t.author_id.as_str());
    assert_eq!(draft["revisions"], json!([]));
    assert_eq!(draft["approval"], Value::Null);
    let live = t.diff(&cs, "").await;
    assert_eq!(live["mode"], "raw");
    assert_eq!(live["revision"], Value::Null);
    assert_eq!(live["files"][0]["path"], "config/app.yaml");

    // Submit: revision 1 frozen, the gate job starts and passes.
    let r = t.post(&t.author, &t.cs_path(&cs, "/submit"), None).await;
    r.assert_status(200);
    let submitted = r.data();
    assert_eq!(submitted["changeset"]["state"], "submitted");
    assert_eq!(submitted["revision"]["number"], 1);
    assert_eq!(submitted["revision"]["files"], json!(["config/app.yaml"]));
    assert_eq!(submitted["job"]["type"], "gate_submit");
    assert_eq!(submitted["included_profile_overrides"], json!([]));
    let job1 = submitted["job"]["id"].as_str().unwrap().to_owned();
    let rev1_head = submitted["revision"]["head_sha"].as_str().unwrap().to_owned();
    assert_eq!(submitted["changeset"]["head_sha"], rev1_head.as_str());
    assert_eq!(submitted["changeset"]["gate_job_id"], job1.as_str());
    let view = t.settled(&cs).await;
    assert_eq!(view["state"], "in_review", "{view}");
    let job = s.get(&format!("/api/apps/{app}/jobs/{job1}"), &t.admin).await;
    assert_eq!(job.data()["job"]["state"], "succeeded", "{}", job.text);
    assert_eq!(view["approval"]["approvals"], 0);
    assert_eq!(view["approval"]["required"], 2);

    // Raw and semantic diffs of revision 1.
    let raw1 = t.diff(&cs, "?mode=raw").await;
    assert_eq!(raw1["revision"], 1);
    assert_eq!(raw1["head_sha"], rev1_head.as_str());
    let file = &raw1["files"][0];
    assert_eq!((file["path"].as_str(), file["status"].as_str()), (Some("config/app.yaml"), Some("modified")));
    assert_eq!((file["additions"].as_u64(), file["deletions"].as_u64()), (Some(1), Some(1)));
    let patch = file["patch"].as_str().unwrap();
    assert!(patch.contains("-  replicas: 2") && patch.contains("+  replicas: 3"), "{patch}");
    assert_eq!(raw1["stats"], json!({ "files": 1, "additions": 1, "deletions": 1 }));
    let semantic = t.diff(&cs, "?mode=semantic").await;
    assert_eq!(semantic["mode"], "semantic");
    let changes = key_changes(&semantic, "config/app.yaml");
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["op"], "modified");
    assert_eq!(changes[0]["key"], "server.replicas");
    assert_eq!((changes[0]["old_value"].clone(), changes[0]["new_value"].clone()), (json!(2), json!(3)));
    assert_eq!(semantic["summary"]["by_op"]["modified"], 1);

    // Listing filters by state and author.
    let list = s.get(&format!("/api/apps/{app}/changesets?state=in_review&author={}", t.author_id), &t.rita).await;
    list.assert_status(200);
    assert_eq!(list.body["pagination"]["total"], 1);
    assert_eq!(list.data()[0]["id"], cs.as_str());
    let none = s.get(&format!("/api/apps/{app}/changesets?state=approved"), &t.rita).await;
    assert_eq!(none.body["pagination"]["total"], 0);

    // One approval of two: still in review.
    let r = t.review(&t.rita, &cs, json!({ "action": "approve", "comment": "fine", "revision": 1 })).await;
    r.assert_status(200);
    assert_eq!(r.data()["changeset"]["state"], "in_review");
    assert_eq!(r.data()["approval"]["approvals"], 1);
    assert_eq!(r.data()["review"]["comment"], "fine");

    // The workspace moves on; revision 1's diff does not.
    s.put_file(&t.author, app, &t.ws, "config/extra.yaml", b"feature: on\n").await.assert_status(200);
    assert_eq!(t.diff(&cs, "?mode=raw&revision=1").await, raw1);
    assert_eq!(t.diff(&cs, "").await, raw1, "the default is the latest revision, still 1");

    // Resubmit: revision 2, approvals back to zero, the gate runs again.
    let r = t.post(&t.author, &t.cs_path(&cs, "/resubmit"), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["revision"]["number"], 2);
    assert_eq!(r.data()["changeset"]["revision"], 2);
    assert_eq!(r.data()["changeset"]["state"], "submitted");
    assert_ne!(r.data()["job"]["id"], job1.as_str());
    let view = t.settled(&cs).await;
    assert_eq!(view["state"], "in_review");
    assert_eq!(view["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(view["approval"]["revision"], 2);
    assert_eq!(view["approval"]["approvals"], 0, "a new revision resets approvals");
    assert_eq!(view["reviews"].as_array().unwrap().len(), 1, "the old vote stays on revision 1");
    assert_eq!(view["reviews"][0]["revision"], 1);
    let raw2 = t.diff(&cs, "").await;
    assert_eq!(raw2["revision"], 2);
    assert_eq!(raw2["stats"]["files"], 2);
    assert_eq!(t.diff(&cs, "?revision=1").await, raw1);

    // Two reviewers approve revision 2: approved; the author queues it.
    let r = t.review(&t.rita, &cs, json!({ "action": "approve" })).await;
    r.assert_status(200);
    assert_eq!(r.data()["changeset"]["state"], "in_review");
    let r = t.review(&t.rob, &cs, json!({ "action": "approve", "revision": 2 })).await;
    r.assert_status(200);
    assert_eq!(r.data()["changeset"]["state"], "approved");
    assert_eq!(r.data()["approval"]["approved"], true);
    assert_eq!(r.data()["approval"]["approvals"], 2);
    let r = t.post(&t.author, &t.cs_path(&cs, "/queue"), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["state"], "queued");
    assert_eq!(t.state(&cs).await, "queued");

    // Once approved, no more edits of the changeset itself.
    let r = s.req("PATCH", &t.cs_path(&cs, ""), Some(&t.author), Some(json!({ "title": "Too late" }))).await;
    r.assert_error(409, "invalid_transition");

    // Notifications went to the outbox.
    assert!(!t.outbox("changeset_submitted", "rita@example.com").await.is_empty());
    assert!(!t.outbox("review_requested", "rob@example.com").await.is_empty());
    assert!(t.outbox("changeset_submitted", "dana@example.com").await.is_empty(), "never to the actor");
    let to_author = t.outbox("review_requested", "dana@example.com").await;
    assert!(to_author.is_empty(), "review requests skip the author: {to_author:?}");
    assert_eq!(t.outbox("changeset_approved", "dana@example.com").await.len(), 1);
    assert_eq!(t.outbox("changeset_queued", "admin@example.com").await.len(), 1);

    // Every step is audited.
    let audit = s.get(&format!("/api/apps/{app}/audit?entity_type=changeset&entity_id={cs}&limit=100"), &t.admin).await;
    audit.assert_status(200);
    let actions: Vec<&str> = audit.data().as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in [
        "changeset.created",
        "changeset.submitted",
        "changeset.gate_passed",
        "changeset.review_recorded",
        "changeset.resubmitted",
        "changeset.approved",
        "changeset.queued",
    ] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    workers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_submit_gate_sends_the_changeset_back_to_draft_with_the_failure() {
    let t = team().await;
    let (s, app) = (&t.s, t.app.as_str());
    let r = s
        .req(
            "PATCH",
            &format!("/api/apps/{app}/settings"),
            Some(&t.admin),
            Some(json!({ "gates": { "submit": "exit 3" } })),
        )
        .await;
    r.assert_status(200);
    let workers = Workers::start(s);
    s.put_file(&t.author, app, &t.ws, "config/app.yaml", YAML_AFTER.as_bytes()).await.assert_status(200);
    let cs = t.create(&t.author, &t.ws, "Doomed").await;
    let r = t.post(&t.author, &t.cs_path(&cs, "/submit"), None).await;
    r.assert_status(200);
    let job = r.data()["job"]["id"].as_str().unwrap().to_owned();
    let view = t.settled(&cs).await;
    workers.stop().await;
    assert_eq!(view["state"], "draft", "{view}");
    let failure = view["gate_failure"].as_str().expect("gate_failure");
    assert!(failure.contains('3'), "{failure}");
    assert_eq!(view["revision"], 1, "the frozen revision stays");
    let job = s.get(&format!("/api/apps/{app}/jobs/{job}"), &t.admin).await;
    assert_eq!(job.data()["job"]["state"], "failed");
    assert_eq!(t.outbox("changeset_gate_failed", "dana@example.com").await.len(), 1);
    // Back in draft it can be submitted again; the failure is cleared.
    let r = t.post(&t.author, &t.cs_path(&cs, "/submit"), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["revision"]["number"], 2);
    assert_eq!(r.data()["changeset"]["gate_failure"], Value::Null);
}

#[tokio::test]
async fn comments_are_anchored_listed_oldest_first_and_edited_only_by_their_author() {
    let t = team().await;
    let (s, app) = (&t.s, t.app.as_str());
    s.put_file(&t.author, app, &t.ws, "config/app.yaml", YAML_AFTER.as_bytes()).await.assert_status(200);
    let cs = t.create(&t.author, &t.ws, "Commented").await;
    t.post(&t.author, &t.cs_path(&cs, "/submit"), None).await.assert_status(200);
    let comments = t.cs_path(&cs, "/comments");

    let r = t
        .post(
            &t.rita,
            &comments,
            Some(json!({ "body": "  why 3?  ", "anchor": { "path": "config/app.yaml", "line": 3, "revision": 1 } })),
        )
        .await;
    r.assert_status(201);
    let first = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["body"], "why 3?");
    assert_eq!(r.data()["anchor"], json!({ "path": "config/app.yaml", "line": 3, "revision": 1 }));
    assert_eq!(r.data()["edits"], json!([]));
    let r = t.post(&t.user, &comments, Some(json!({ "body": "users may comment too" }))).await;
    r.assert_status(201);
    assert_eq!(r.data()["anchor"], Value::Null);

    let list = s.get(&comments, &t.author).await;
    list.assert_status(200);
    assert_eq!(list.body["pagination"]["total"], 2);
    assert_eq!(list.data()[0]["id"], first.as_str(), "oldest first");
    let page2 = s.get(&format!("{comments}?page=2&limit=1"), &t.author).await;
    assert_eq!(page2.data().as_array().unwrap().len(), 1);
    assert_ne!(page2.data()[0]["id"], first.as_str());

    // The author edits: the old body is kept.
    let edit_path = format!("{comments}/{first}");
    let r = s.req("PATCH", &edit_path, Some(&t.rita), Some(json!({ "body": "why 3 replicas?" }))).await;
    r.assert_status(200);
    assert_eq!(r.data()["body"], "why 3 replicas?");
    assert_eq!(r.data()["edits"].as_array().unwrap().len(), 1);
    assert_eq!(r.data()["edits"][0]["body"], "why 3?");
    assert!(r.data()["edits"][0]["replaced_at"].is_string());

    // Someone else may not; an anchor must name an existing revision; nothing changes.
    let before = (s.chain_len().await, s.get(&comments, &t.admin).await.body);
    let r = s.req("PATCH", &edit_path, Some(&t.author), Some(json!({ "body": "hijacked" }))).await;
    r.assert_error(403, "forbidden");
    let r = t
        .post(&t.rita, &comments, Some(json!({ "body": "x", "anchor": { "path": "config/app.yaml", "revision": 2 } })))
        .await;
    r.assert_error(400, "validation_error");
    let r =
        t.post(&t.rita, &comments, Some(json!({ "body": "x", "anchor": { "path": "../etc", "revision": 1 } }))).await;
    r.assert_error(400, "validation_error");
    let r = t.post(&t.rita, &comments, Some(json!({ "body": "   " }))).await;
    r.assert_error(400, "validation_error");
    let r = s.req("PATCH", &edit_path, Some(&t.rita), Some(json!({ "body": "x", "anchor": null }))).await;
    r.assert_error(400, "validation_error");
    let unknown = uuid::Uuid::now_v7();
    s.req("PATCH", &format!("{comments}/{unknown}"), Some(&t.rita), Some(json!({ "body": "x" })))
        .await
        .assert_error(404, "not_found");
    assert_eq!((s.chain_len().await, s.get(&comments, &t.admin).await.body), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_changeset_requests_answer_the_right_code_and_change_nothing() {
    let t = team().await;
    let (s, app) = (&t.s, t.app.as_str());
    let workers = Workers::start(s);
    s.put_file(&t.author, app, &t.ws, "config/app.yaml", YAML_AFTER.as_bytes()).await.assert_status(200);
    let cs = t.create(&t.author, &t.ws, "Target").await;

    // An invalid transition: queueing a draft.
    let before = t.snapshot(&cs).await;
    t.post(&t.author, &t.cs_path(&cs, "/queue"), None).await.assert_error(409, "invalid_transition");
    t.post(&t.author, &t.cs_path(&cs, "/resubmit"), None).await.assert_error(409, "invalid_transition");
    t.post(&t.author, &t.cs_path(&cs, "/move-to-draft"), None).await.assert_error(409, "invalid_transition");
    t.review(&t.rita, &cs, json!({ "action": "approve" })).await.assert_error(409, "invalid_transition");
    assert_eq!(t.snapshot(&cs).await, before);

    // Into review.
    t.post(&t.author, &t.cs_path(&cs, "/submit"), None).await.assert_status(200);
    assert_eq!(t.settled(&cs).await["state"], "in_review");
    let before = t.snapshot(&cs).await;

    // Wrong role, self-approval, another author's submit.
    t.review(&t.user, &cs, json!({ "action": "approve" })).await.assert_error(403, "forbidden");
    t.review(&t.user, &cs, json!({ "action": "reject" })).await.assert_error(403, "forbidden");
    let r = t.review(&t.author, &cs, json!({ "action": "approve" })).await;
    r.assert_error(403, "forbidden");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("own"), "{}", r.text);
    t.post(&t.rita, &t.cs_path(&cs, "/resubmit"), None).await.assert_error(403, "forbidden");

    // Bad bodies and queries.
    t.review(&t.rita, &cs, json!({ "action": "lgtm" })).await.assert_error(400, "validation_error");
    t.review(&t.rita, &cs, json!({ "action": "approve", "score": 10 })).await.assert_error(400, "validation_error");
    t.post(&t.author, &t.cs_path(&cs, "/resubmit"), Some(json!({ "profile_overrides": [] })))
        .await
        .assert_error(400, "validation_error");
    let r = s.get(&t.cs_path(&cs, "/diff?mode=fancy"), &t.admin).await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.body["error"]["details"]["field"], "mode");
    s.get(&t.cs_path(&cs, "/diff?mode=raw&revision=7"), &t.admin).await.assert_error(404, "not_found");
    s.get(&t.cs_path(&cs, "/diff?colour=blue"), &t.admin).await.assert_error(400, "validation_error");
    s.get(&format!("/api/apps/{app}/changesets?state=merged"), &t.admin).await.assert_error(400, "validation_error");
    s.get(&format!("/api/apps/{app}/changesets?author=nobody"), &t.admin).await.assert_error(400, "validation_error");
    s.get(&format!("/api/apps/{app}/changesets/not-a-uuid"), &t.admin).await.assert_error(400, "validation_error");
    s.get(&format!("/api/apps/{app}/changesets/{}", uuid::Uuid::now_v7()), &t.admin)
        .await
        .assert_error(404, "not_found");
    s.req("GET", &t.cs_path(&cs, ""), None, None).await.assert_error(401, "unauthorized");

    // A second open changeset on the same workspace.
    let r = t
        .post(
            &t.author,
            &format!("/api/apps/{app}/changesets"),
            Some(json!({ "workspace_id": t.ws, "title": "Second" })),
        )
        .await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "open_changeset_exists");
    // Someone else's workspace; unknown fields on create.
    let r = t
        .post(&t.rita, &format!("/api/apps/{app}/changesets"), Some(json!({ "workspace_id": t.ws, "title": "Mine" })))
        .await;
    r.assert_error(403, "forbidden");
    let r = t
        .post(
            &t.author,
            &format!("/api/apps/{app}/changesets"),
            Some(json!({ "workspace_id": t.ws, "title": "x", "state": "approved" })),
        )
        .await;
    r.assert_error(400, "validation_error");
    assert_eq!(t.snapshot(&cs).await, before);

    // A vote on an old revision after a resubmit.
    t.post(&t.author, &t.cs_path(&cs, "/resubmit"), None).await.assert_status(200);
    assert_eq!(t.settled(&cs).await["state"], "in_review");
    let before = t.snapshot(&cs).await;
    let r = t.review(&t.rita, &cs, json!({ "action": "approve", "revision": 1 })).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "not_latest_revision");
    assert_eq!(t.snapshot(&cs).await, before);
    workers.stop().await;

    // Dependencies: a cycle, and a changeset of another app.
    let ws2 = {
        let r = t.post(&t.author, &format!("/api/apps/{app}/workspaces"), Some(json!({ "title": "second" }))).await;
        r.assert_status(201);
        r.data()["id"].as_str().unwrap().to_owned()
    };
    let r = t
        .post(
            &t.author,
            &format!("/api/apps/{app}/changesets"),
            Some(json!({ "workspace_id": ws2, "title": "Depends", "depends_on": [cs] })),
        )
        .await;
    r.assert_status(201);
    let dependent = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["depends_on"], json!([cs]));
    let other_app = s.create_app(&t.admin, "elsewhere").await;
    let other_ws = s.default_workspace(&t.admin, &other_app).await;
    let r = t
        .post(
            &t.admin,
            &format!("/api/apps/{other_app}/changesets"),
            Some(json!({ "workspace_id": other_ws, "title": "Foreign" })),
        )
        .await;
    r.assert_status(201);
    let foreign = r.data()["id"].as_str().unwrap().to_owned();
    let admin_ws = s.default_workspace(&t.admin, app).await;

    let before = t.snapshot(&cs).await;
    let cs_url = t.cs_path(&cs, "");
    let patch = |body: Value| s.req("PATCH", &cs_url, Some(&t.author), Some(body));
    let r = patch(json!({ "depends_on": [dependent] })).await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "cycle");
    let r = patch(json!({ "depends_on": [cs] })).await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "cycle");
    let r = patch(json!({ "depends_on": [foreign] })).await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "unknown_changeset");
    let r = patch(json!({ "depends_on": ["not-a-uuid"] })).await;
    r.assert_error(400, "validation_error");
    let r = t
        .post(
            &t.admin,
            &format!("/api/apps/{app}/changesets"),
            Some(json!({ "workspace_id": admin_ws, "title": "x", "depends_on": [foreign] })),
        )
        .await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "unknown_changeset");

    // Another app's changeset under this app's path is not found.
    t.post(&t.admin, &t.cs_path(&foreign, "/comments"), Some(json!({ "body": "hello" })))
        .await
        .assert_error(404, "not_found");
    s.get(&t.cs_path(&foreign, "/comments"), &t.admin).await.assert_error(404, "not_found");
    s.get(&t.cs_path(&foreign, "/diff"), &t.admin).await.assert_error(404, "not_found");
    t.post(&t.admin, &t.cs_path(&foreign, "/submit"), None).await.assert_error(404, "not_found");
    s.get(&format!("/api/apps/{other_app}/changesets/{cs}"), &t.admin).await.assert_error(404, "not_found");
    assert_eq!(t.snapshot(&cs).await, before);
    assert_eq!(t.show(&dependent).await["depends_on"], json!([cs]));
    let listed = s.get(&format!("/api/apps/{app}/changesets?state=draft"), &t.admin).await;
    assert_eq!(listed.body["pagination"]["total"], 1, "no changeset was created by a refused request");
}

// ---------------------------------------------------------------------------
// The SPEC §4 machine, driven through the API.

/// An action of the property test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Submit,
    Resubmit,
    Approve,
    RequestChanges,
    Reject,
    Queue,
    MoveToDraft,
    GatePass,
    GateFail,
}

/// The model: SPEC §4 for the actions above (one approval is enough).
fn model(state: &str, act: Act) -> Option<&'static str> {
    match (state, act) {
        ("draft", Act::Submit) => Some("submitted"),
        ("submitted" | "in_review" | "changes_requested", Act::Resubmit) => Some("submitted"),
        ("in_review", Act::Approve) => Some("approved"),
        ("in_review", Act::RequestChanges) => Some("changes_requested"),
        ("in_review", Act::Reject) => Some("rejected"),
        ("approved", Act::Queue) => Some("queued"),
        ("changes_requested" | "queued" | "conflicted" | "needs_revalidation", Act::MoveToDraft) => Some("draft"),
        ("submitted", Act::GatePass) => Some("in_review"),
        ("submitted", Act::GateFail) => Some("draft"),
        _ => None,
    }
}

const ACTS: [Act; 9] = [
    Act::Submit,
    Act::Resubmit,
    Act::Approve,
    Act::RequestChanges,
    Act::Reject,
    Act::Queue,
    Act::MoveToDraft,
    Act::GatePass,
    Act::GateFail,
];

/// A step of the walk: with `follow`, one of the actions the model allows
/// in the current state (so walks get deep into the machine), otherwise
/// any action (mostly refusals); `pick` chooses which.
#[derive(Debug, Clone, Copy)]
struct Step {
    follow: bool,
    pick: usize,
}

fn step() -> impl Strategy<Value = Step> {
    (proptest::bool::weighted(0.6), 0usize..64).prop_map(|(follow, pick)| Step { follow, pick })
}

impl Step {
    fn act(self, state: &str) -> Act {
        let allowed: Vec<Act> = ACTS.into_iter().filter(|a| model(state, *a).is_some()).collect();
        if self.follow && !allowed.is_empty() {
            allowed[self.pick % allowed.len()]
        } else {
            ACTS[self.pick % ACTS.len()]
        }
    }
}

/// Runs the gate jobs waiting for `verdict` (0 passes) until none is left.
async fn run_gates(t: &Team, verdict_file: &std::path::Path, verdict: u8) {
    std::fs::write(verdict_file, verdict.to_string()).expect("write verdict");
    let workers = Workers::start(&t.s);
    for _ in 0..2000 {
        let mut pending = 0;
        for state in ["queued", "running"] {
            let r = t.s.get(&format!("/api/apps/{}/jobs?state={state}&limit=1", t.app), &t.admin).await;
            pending += r.body["pagination"]["total"].as_u64().expect("total");
        }
        if pending == 0 {
            workers.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gate jobs never finished");
}

async fn drive(steps: Vec<Step>) {
    // The gate reads its verdict from the test's directory, which a gate
    // sandbox hides: this walk runs its gates unsandboxed.
    let t = team_with(|s| s.gate_sandbox = SandboxMode::None).await;
    let verdict = t.s.dir.path().join("verdict");
    let command = format!("exit \"$(cat {})\"", verdict.display());
    let r =
        t.s.req(
            "PATCH",
            &format!("/api/apps/{}/settings", t.app),
            Some(&t.admin),
            Some(json!({ "gates": { "submit": command } })),
        )
        .await;
    r.assert_status(200);
    t.s.put_file(&t.author, &t.app, &t.ws, "config/app.yaml", YAML_AFTER.as_bytes()).await.assert_status(200);
    let cs = t.create(&t.author, &t.ws, "Random walk").await;
    let mut state = "draft".to_owned();
    let mut revision = 0u64;
    for (step, choice) in steps.into_iter().enumerate() {
        let act = choice.act(&state);
        let expected = model(&state, act);
        let before = t.snapshot(&cs).await;
        let reply = match act {
            Act::GatePass | Act::GateFail => {
                // Not an HTTP action: the worker runs whatever gate jobs wait.
                run_gates(&t, &verdict, if act == Act::GatePass { 0 } else { 3 }).await;
                None
            }
            Act::Submit => Some(t.post(&t.author, &t.cs_path(&cs, "/submit"), None).await),
            Act::Resubmit => Some(t.post(&t.author, &t.cs_path(&cs, "/resubmit"), None).await),
            Act::Approve => Some(t.review(&t.rita, &cs, json!({ "action": "approve" })).await),
            Act::RequestChanges => Some(t.review(&t.rita, &cs, json!({ "action": "request_changes" })).await),
            Act::Reject => Some(t.review(&t.rita, &cs, json!({ "action": "reject" })).await),
            Act::Queue => Some(t.post(&t.author, &t.cs_path(&cs, "/queue"), None).await),
            Act::MoveToDraft => Some(t.post(&t.author, &t.cs_path(&cs, "/move-to-draft"), None).await),
        };
        let after = t.state(&cs).await;
        let context = format!("step {step}: {act:?} from {state}");
        match (expected, reply) {
            (Some(next), Some(reply)) => {
                reply.assert_status(200);
                assert_eq!(after, next, "{context}: {}", reply.text);
                if matches!(act, Act::Submit | Act::Resubmit) {
                    revision += 1;
                }
            }
            (None, Some(reply)) => {
                reply.assert_error(409, "invalid_transition");
                assert_eq!(t.snapshot(&cs).await, before, "{context}: a refusal changed something");
            }
            (Some(next), None) => assert_eq!(after, next, "{context}"),
            (None, None) => assert_eq!(after, state, "{context}: no gate was waiting"),
        }
        assert_eq!(t.show(&cs).await["revision"], revision, "{context}");
        state = after;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every action the model refuses answers 409 `invalid_transition` and
    /// changes nothing; every action it allows lands in the model's state.
    #[test]
    fn random_action_sequences_follow_the_spec_machine(steps in proptest::collection::vec(step(), 8)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(drive(steps));
    }
}
