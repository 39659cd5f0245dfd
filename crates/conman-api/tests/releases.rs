//! Releases over HTTP (SPEC §2.4, §4, §7), on a real git repository, a
//! real SQLite file and real job workers: changesets go through the whole
//! flow to the queue; a config manager selects three of six and reorders
//! them; assembly composes two and drops the one that conflicts (with its
//! path); publish moves the integration branch and writes the annotated tag
//! `rYYYY.MM.DD.1`; the unselected stay queued and are revalidated, one of
//! them moving to `conflicted`, and the queue view lists the rest in queue
//! order with their last revalidation. Also: two publishes at once (exactly one
//! wins), a re-assembly after the branch moved, and refusals by role.

mod common;

use std::time::Duration;

use common::{TestServer, Workers};
use serde_json::{json, Value};

const BASE: &[(&str, &str)] = &[
    ("config/a.yaml", "a: 1\n"),
    ("config/b.yaml", "b: 1\n"),
    ("config/c.yaml", "c: 1\n"),
    ("config/d.yaml", "d: 1\n"),
];

/// An app with four files, a config manager (`cm`), an author and a reviewer.
struct Shop {
    s: TestServer,
    app: String,
    cm: String,
    author: String,
    reviewer: String,
}

impl Shop {
    async fn open() -> Shop {
        Shop::open_with(|_| {}).await
    }

    async fn open_with(tune: impl FnOnce(&mut conman_api::config::Settings)) -> Shop {
        let s = TestServer::start_with(tune).await;
        let admin = s.admin_token.clone();
        let app = s.create_app(&admin, "shop").await;
        for (path, content) in BASE {
            s.write_upstream(&app, "main", path, content.as_bytes()).await;
        }
        let cm = s.invite_and_accept(&admin, &app, "carl@example.com", "config_manager").await;
        let author = s.invite_and_accept(&admin, &app, "dana@example.com", "user").await;
        let reviewer = s.invite_and_accept(&admin, &app, "rita@example.com", "reviewer").await;
        Shop { s, app, cm, author, reviewer }
    }

    fn path(&self, tail: &str) -> String {
        format!("/api/apps/{}{tail}", self.app)
    }

    async fn post(&self, token: &str, tail: &str, body: Option<Value>) -> common::Reply {
        self.s.req("POST", &self.path(tail), Some(token), body).await
    }

    async fn get(&self, tail: &str) -> Value {
        let r = self.s.get(&self.path(tail), &self.cm).await;
        r.assert_status(200);
        r.data().clone()
    }

    /// A changeset by the author writing `content` to `file` on a workspace
    /// of its own, taken through submit, gate, approval and queue.
    async fn queued(&self, title: &str, file: &str, content: &str) -> String {
        let r = self.post(&self.author, "/workspaces", Some(json!({ "title": title }))).await;
        r.assert_status(201);
        let ws = r.data()["id"].as_str().expect("workspace id").to_owned();
        self.s.put_file(&self.author, &self.app, &ws, file, content.as_bytes()).await.assert_status(200);
        let r = self.post(&self.author, "/changesets", Some(json!({ "workspace_id": ws, "title": title }))).await;
        r.assert_status(201);
        let cs = r.data()["id"].as_str().expect("changeset id").to_owned();
        self.post(&self.author, &format!("/changesets/{cs}/submit"), None).await.assert_status(200);
        self.wait_changeset(&cs, |state| state != "submitted").await;
        let vote = json!({ "action": "approve" });
        self.post(&self.reviewer, &format!("/changesets/{cs}/review"), Some(vote)).await.assert_status(200);
        self.post(&self.author, &format!("/changesets/{cs}/queue"), None).await.assert_status(200);
        assert_eq!(self.state_of(&cs).await, "queued");
        cs
    }

    async fn state_of(&self, cs: &str) -> String {
        self.get(&format!("/changesets/{cs}")).await["state"].as_str().expect("state").to_owned()
    }

    async fn wait_changeset(&self, cs: &str, done: impl Fn(&str) -> bool) -> String {
        for _ in 0..2000 {
            let state = self.state_of(cs).await;
            if done(&state) {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("changeset {cs} never settled");
    }

    /// Polls until the release leaves `assembling`.
    async fn assembled(&self, rel: &str) -> Value {
        for _ in 0..2000 {
            let view = self.get(&format!("/releases/{rel}")).await;
            if view["state"] != "assembling" {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("release {rel} never finished assembling");
    }

    /// Polls until every job of `job_type` has ended.
    async fn jobs_done(&self, job_type: &str) -> Vec<Value> {
        for _ in 0..2000 {
            let jobs = self.s.get(&self.path(&format!("/jobs?type={job_type}&limit=100")), &self.cm).await;
            let items = jobs.body["data"].as_array().cloned().unwrap_or_default();
            if !items.is_empty() && items.iter().all(|j| j["state"] == "succeeded" || j["state"] == "failed") {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{job_type} jobs never finished");
    }

    async fn new_release(&self, title: &str) -> String {
        let r = self.post(&self.cm, "/releases", Some(json!({ "title": title }))).await;
        r.assert_status(201);
        assert_eq!(r.data()["state"], "draft");
        r.data()["id"].as_str().expect("release id").to_owned()
    }

    fn git(&self, args: &[&str]) -> String {
        let repo = self.s.dir.path().join("repos").join(format!("{}.git", self.app));
        let out = std::process::Command::new("git").args(args).env("GIT_DIR", &repo).output().expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn ids(view: &Value) -> Vec<String> {
    view["changesets"]
        .as_array()
        .expect("changesets")
        .iter()
        .map(|c| c["changeset_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn three_of_six_queued_changesets_ship_and_the_rest_stay_queued_and_are_revalidated() {
    let shop = Shop::open().await;
    let workers = Workers::start(&shop.s);
    let a1 = shop.queued("raise a", "config/a.yaml", "a: 2\n").await;
    let b = shop.queued("raise b", "config/b.yaml", "b: 2\n").await;
    let a3 = shop.queued("other a", "config/a.yaml", "a: 3\n").await;
    let c = shop.queued("raise c", "config/c.yaml", "c: 2\n").await;
    let d = shop.queued("raise d", "config/d.yaml", "d: 2\n").await;
    let a9 = shop.queued("late a", "config/a.yaml", "a: 9\n").await;
    let head_before = shop.git(&["rev-parse", "refs/heads/main"]);
    let metrics = shop.s.req("GET", "/api/metrics", None, None).await;
    let depth = format!("conman_release_queue_depth{{app=\"{}\"}} 6", shop.app);
    assert!(metrics.text.contains(&depth), "{}", metrics.text);

    let rel = shop.new_release("Weekly").await;
    let r = shop
        .post(&shop.cm, &format!("/releases/{rel}/changesets"), Some(json!({ "changeset_ids": [a3, a1, b] })))
        .await;
    r.assert_status(200);
    assert_eq!(ids(r.data()), [a3.clone(), a1.clone(), b.clone()]);
    let r =
        shop.post(&shop.cm, &format!("/releases/{rel}/reorder"), Some(json!({ "changeset_ids": [a1, b, a3] }))).await;
    r.assert_status(200);
    assert_eq!(ids(r.data()), [a1.clone(), b.clone(), a3.clone()]);

    let r = shop.post(&shop.cm, &format!("/releases/{rel}/assemble"), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["release"]["state"], "assembling");
    assert_eq!(r.data()["job"]["type"], "release_assemble");
    assert_eq!(r.data()["release"]["base_sha"], head_before);
    let view = shop.assembled(&rel).await;
    assert_eq!(view["state"], "validated", "{view}");
    let items = view["changesets"].as_array().unwrap();
    assert_eq!(items[0]["outcome"], "composed");
    assert_eq!(items[1]["outcome"], "composed");
    assert_eq!(items[2]["outcome"], "conflicted", "{view}");
    assert_eq!(items[2]["conflicting_paths"], json!(["config/a.yaml"]));
    assert_eq!(view["gates"].as_array().unwrap().len(), 1, "one gate run for an app without environments");
    assert_eq!(view["gates"][0]["passed"], true);
    assert_eq!(shop.state_of(&a3).await, "conflicted");
    // Nothing published yet: the branch has not moved.
    assert_eq!(shop.git(&["rev-parse", "refs/heads/main"]), head_before);

    let r = shop.post(&shop.cm, &format!("/releases/{rel}/publish"), None).await;
    r.assert_status(200);
    let tag = format!("r{}.1", chrono::Utc::now().format("%Y.%m.%d"));
    assert_eq!(r.data()["state"], "published");
    assert_eq!(r.data()["tag"], tag);
    let composed = view["composed_sha"].as_str().unwrap().to_owned();
    assert_eq!(shop.git(&["rev-parse", "refs/heads/main"]), composed);
    assert_eq!(shop.git(&["cat-file", "-t", &format!("refs/tags/{tag}")]), "tag");
    assert_eq!(shop.git(&["rev-parse", &format!("refs/tags/{tag}^{{commit}}")]), composed);
    assert_eq!(shop.git(&["show", &format!("{composed}:config/a.yaml")]), "a: 2");
    assert_eq!(shop.git(&["show", &format!("{composed}:config/b.yaml")]), "b: 2");
    assert_eq!(shop.git(&["show", &format!("{composed}:config/c.yaml")]), "c: 1");
    assert_eq!(shop.state_of(&a1).await, "released");
    assert_eq!(shop.state_of(&b).await, "released");

    // Revalidation: the unselected stay queued, the one now conflicting leaves.
    let jobs = shop.jobs_done("revalidate_queued").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["state"], "succeeded", "{:?}", jobs[0]);
    assert_eq!(jobs[0]["result"]["checked"], 3, "{:?}", jobs[0]);
    assert_eq!(jobs[0]["result"]["conflicted"], 1);
    assert_eq!(shop.state_of(&c).await, "queued");
    assert_eq!(shop.state_of(&d).await, "queued");
    assert_eq!(shop.state_of(&a9).await, "conflicted");
    // The queue view: queue order, each with its last revalidation.
    let queue = shop.s.get(&shop.path("/changesets?state=queued"), &shop.author).await;
    queue.assert_status(200);
    let listed: Vec<&Value> = queue.body["data"].as_array().unwrap().iter().collect();
    let order: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(order, [c.as_str(), d.as_str()], "oldest queued first");
    for cs in &listed {
        assert_eq!(cs["last_revalidation"]["outcome"], "clean", "{cs}");
        assert_eq!(cs["last_revalidation"]["head"], composed.as_str());
        assert!(cs["queued_at"].is_string());
    }
    let a9_view = shop.get(&format!("/changesets/{a9}")).await;
    assert_eq!(a9_view["last_revalidation"]["outcome"], "conflicted", "{a9_view}");
    // A published release is immutable.
    let r = shop.post(&shop.cm, &format!("/releases/{rel}/changesets"), Some(json!({ "changeset_ids": [c] }))).await;
    r.assert_error(409, "invalid_transition");
    shop.post(&shop.cm, &format!("/releases/{rel}/publish"), None).await.assert_error(409, "invalid_transition");
    // Listed with a state filter.
    let list = shop.s.get(&shop.path("/releases?state=published"), &shop.author).await;
    list.assert_status(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let list = shop.s.get(&shop.path("/releases?state=draft"), &shop.author).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
    workers.stop().await;
}

#[tokio::test]
async fn of_two_publishes_at_once_exactly_one_wins_and_the_other_re_assembles() {
    let shop = Shop::open().await;
    let workers = Workers::start(&shop.s);
    let c = shop.queued("raise c", "config/c.yaml", "c: 2\n").await;
    let d = shop.queued("raise d", "config/d.yaml", "d: 2\n").await;
    let first = shop.new_release("first").await;
    let second = shop.new_release("second").await;
    for (rel, cs) in [(&first, &c), (&second, &d)] {
        let body = Some(json!({ "changeset_ids": [cs] }));
        shop.post(&shop.cm, &format!("/releases/{rel}/changesets"), body).await.assert_status(200);
        shop.post(&shop.cm, &format!("/releases/{rel}/assemble"), None).await.assert_status(200);
        assert_eq!(shop.assembled(rel).await["state"], "validated");
    }
    let (publish_first, publish_second) = (format!("/releases/{first}/publish"), format!("/releases/{second}/publish"));
    let (one, two) =
        tokio::join!(shop.post(&shop.cm, &publish_first, None), shop.post(&shop.cm, &publish_second, None));
    let (won, lost, loser) = match (one.status.as_u16(), two.status.as_u16()) {
        (200, 409) => (one, two, second.clone()),
        (409, 200) => (two, one, first.clone()),
        other => panic!("expected one 200 and one 409, got {other:?}"),
    };
    let tag = format!("r{}.1", chrono::Utc::now().format("%Y.%m.%d"));
    assert_eq!(won.data()["tag"], tag);
    assert_eq!(lost.code(), "conflict");
    assert_eq!(lost.reason(), "integration_moved");
    assert_eq!(shop.get(&format!("/releases/{loser}")).await["state"], "validated");
    // The loser re-assembles on the new head and publishes as number 2.
    shop.post(&shop.cm, &format!("/releases/{loser}/assemble"), None).await.assert_status(200);
    let view = shop.assembled(&loser).await;
    assert_eq!(view["state"], "validated", "{view}");
    let r = shop.post(&shop.cm, &format!("/releases/{loser}/publish"), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["tag"], format!("r{}.2", chrono::Utc::now().format("%Y.%m.%d")));
    let head = shop.git(&["rev-parse", "refs/heads/main"]);
    assert_eq!(shop.git(&["show", &format!("{head}:config/c.yaml")]), "c: 2");
    assert_eq!(shop.git(&["show", &format!("{head}:config/d.yaml")]), "d: 2");
    workers.stop().await;
}

#[tokio::test]
async fn only_config_managers_act_on_releases_and_a_refusal_changes_nothing() {
    let shop = Shop::open().await;
    let workers = Workers::start(&shop.s);
    let c = shop.queued("raise c", "config/c.yaml", "c: 2\n").await;
    workers.stop().await;
    let rel = shop.new_release("mine").await;
    let chain = shop.s.chain_len().await;
    for token in [&shop.author, &shop.reviewer] {
        shop.post(token, "/releases", Some(json!({}))).await.assert_error(403, "forbidden");
        let body = Some(json!({ "changeset_ids": [c] }));
        shop.post(token, &format!("/releases/{rel}/changesets"), body.clone()).await.assert_error(403, "forbidden");
        shop.post(token, &format!("/releases/{rel}/reorder"), body).await.assert_error(403, "forbidden");
        shop.post(token, &format!("/releases/{rel}/assemble"), None).await.assert_error(403, "forbidden");
        shop.post(token, &format!("/releases/{rel}/publish"), None).await.assert_error(403, "forbidden");
        // Reading is every member's.
        shop.s.get(&shop.path(&format!("/releases/{rel}")), token).await.assert_status(200);
    }
    // Bad input from a config manager: refused, nothing changes.
    let twice = Some(json!({ "changeset_ids": [c, c] }));
    shop.post(&shop.cm, &format!("/releases/{rel}/changesets"), twice).await.assert_error(400, "validation_error");
    shop.post(&shop.cm, &format!("/releases/{rel}/assemble"), None).await.assert_error(400, "validation_error");
    shop.post(&shop.cm, &format!("/releases/{rel}/publish"), None).await.assert_error(409, "invalid_transition");
    let unknown = Some(json!({ "changeset_ids": [uuid::Uuid::now_v7()] }));
    shop.post(&shop.cm, &format!("/releases/{rel}/changesets"), unknown).await.assert_error(400, "validation_error");
    assert_eq!(shop.s.chain_len().await, chain, "a refused request is not audited");
    assert_eq!(shop.get(&format!("/releases/{rel}")).await["changesets"], json!([]));
}

/// After a publish, a queued changeset whose merge onto the new head gives a
/// tree other than the one its submit gate passed on is gated again on the
/// merged tree: a failure moves it to `needs_revalidation` with the reason,
/// a pass keeps it queued and records the tree as gated.
#[tokio::test]
async fn a_publish_gates_again_the_queued_changesets_whose_merged_tree_differs() {
    // Each change alone passes; b and c raised together fail.
    let gate = "! { grep -q 2 config/b.yaml && grep -q 2 config/c.yaml; }";
    let shop = Shop::open_with(|s| s.gate_submit_cmd = Some(gate.into())).await;
    let workers = Workers::start(&shop.s);
    let b = shop.queued("raise b", "config/b.yaml", "b: 2\n").await;
    let c = shop.queued("raise c", "config/c.yaml", "c: 2\n").await;
    let d = shop.queued("raise d", "config/d.yaml", "d: 2\n").await;

    let rel = shop.new_release("b only").await;
    let r = shop.post(&shop.cm, &format!("/releases/{rel}/changesets"), Some(json!({ "changeset_ids": [b] }))).await;
    r.assert_status(200);
    shop.post(&shop.cm, &format!("/releases/{rel}/assemble"), None).await.assert_status(200);
    assert_eq!(shop.assembled(&rel).await["state"], "validated");
    shop.post(&shop.cm, &format!("/releases/{rel}/publish"), None).await.assert_status(200);
    let head = shop.git(&["rev-parse", "refs/heads/main"]);

    // c merged onto the new head holds b: 2 and c: 2: its gate fails there.
    assert_eq!(shop.wait_changeset(&c, |s| s != "queued").await, "needs_revalidation");
    let view = shop.get(&format!("/changesets/{c}")).await;
    assert_eq!(view["last_revalidation"]["outcome"], "gate_failed", "{view}");
    assert_eq!(view["last_revalidation"]["head"], head);
    assert!(view["gate_failure"].as_str().unwrap().contains("merged tree"), "{view}");
    // d merged onto it passes: queued, gated on the merged tree.
    let mut outcome = Value::Null;
    for _ in 0..2000 {
        outcome = shop.get(&format!("/changesets/{d}")).await["last_revalidation"]["outcome"].clone();
        if outcome != "gate_running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(outcome, "clean");
    assert_eq!(shop.state_of(&d).await, "queued");
    // Each re-run was a submit gate job on a commit of the merged tree.
    let gates = shop.jobs_done("gate_submit").await;
    let regates: Vec<&Value> = gates
        .iter()
        .filter(|j| j["payload"]["commit"] != Value::Null)
        .filter(|j| {
            let commit = j["payload"]["commit"].as_str().unwrap();
            shop.git(&["rev-list", "--parents", "-n", "1", commit]).split(' ').nth(1) == Some(head.as_str())
        })
        .collect();
    assert_eq!(regates.len(), 2, "one re-run each for c and d: {gates:#?}");
    assert_eq!(regates.iter().filter(|j| j["state"] == "failed").count(), 1);
    let audit =
        shop.s.get(&shop.path(&format!("/audit?entity_type=changeset&entity_id={c}&limit=100")), &shop.cm).await;
    let actions: Vec<&str> =
        audit.body["data"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(
        actions.contains(&"changeset.regate_started") && actions.contains(&"changeset.regate_failed"),
        "{actions:?}"
    );

    // A release that brings in exactly d's change: d merged onto the new
    // head is the very tree its gate passed on, so it is not gated again.
    let e = shop.queued("same as d", "config/d.yaml", "d: 2\n").await;
    let rel = shop.new_release("e").await;
    let r = shop.post(&shop.cm, &format!("/releases/{rel}/changesets"), Some(json!({ "changeset_ids": [e] }))).await;
    r.assert_status(200);
    shop.post(&shop.cm, &format!("/releases/{rel}/assemble"), None).await.assert_status(200);
    assert_eq!(shop.assembled(&rel).await["state"], "validated");
    shop.post(&shop.cm, &format!("/releases/{rel}/publish"), None).await.assert_status(200);
    let head2 = shop.git(&["rev-parse", "refs/heads/main"]);
    let mut view = Value::Null;
    for _ in 0..2000 {
        view = shop.get(&format!("/changesets/{d}")).await;
        if view["last_revalidation"]["head"] == head2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(view["last_revalidation"]["head"], head2, "{view}");
    assert_eq!(view["last_revalidation"]["outcome"], "clean", "{view}");
    assert_eq!(view["state"], "queued");
    let gates = shop.jobs_done("gate_submit").await;
    let on_head2 = gates.iter().filter(|j| {
        let commit = j["payload"]["commit"].as_str().unwrap();
        shop.git(&["rev-list", "--parents", "-n", "1", commit]).split(' ').nth(1) == Some(head2.as_str())
    });
    assert_eq!(on_head2.count(), 0, "d was gated again on the tree it already passed on");
    workers.stop().await;
}
