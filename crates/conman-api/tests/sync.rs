//! `sync-integration` (SPEC §2.2) over HTTP: when the integration branch
//! moved under a workspace, a conflicting edit answers 409 `conflict` with
//! `details.paths` and leaves the workspace exactly as it was (head, files,
//! base, audit); a non-conflicting upstream change merges in (or rebases)
//! and keeps the workspace's own edits, in both commit modes. Releases do
//! not exist yet, so the test moves the integration branch through the git
//! port directly.

mod common;

use common::TestServer;
use serde_json::json;

struct Setup {
    s: TestServer,
    admin: String,
    app: String,
    ws: String,
}

/// An app whose integration branch holds `a.yaml`, and an admin's workspace
/// started from it (the default workspace, created with the app, predates
/// the upstream write).
async fn setup(name: &str) -> Setup {
    let s = TestServer::start().await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, name).await;
    s.write_upstream(&app, "main", "a.yaml", b"v: 0\n").await;
    let r = s.req("POST", &format!("/api/apps/{app}/workspaces"), Some(&admin), Some(json!({ "title": "work" }))).await;
    r.assert_status(201);
    let ws = r.data()["id"].as_str().expect("workspace id").to_owned();
    assert_eq!(s.read_file(&admin, &app, &ws, "a.yaml").await.as_deref(), Some(&b"v: 0\n"[..]));
    Setup { s, admin, app, ws }
}

impl Setup {
    async fn new_workspace(&self, title: &str) -> serde_json::Value {
        let url = format!("/api/apps/{}/workspaces", self.app);
        let r = self.s.req("POST", &url, Some(&self.admin), Some(json!({ "title": title }))).await;
        r.assert_status(201);
        r.data().clone()
    }

    async fn sync(&self, body: Option<serde_json::Value>) -> common::Reply {
        let url = format!("/api/apps/{}/workspaces/{}/sync-integration", self.app, self.ws);
        self.s.req("POST", &url, Some(&self.admin), body).await
    }

    async fn workspace(&self) -> serde_json::Value {
        self.s.get(&format!("/api/apps/{}/workspaces/{}", self.app, self.ws), &self.admin).await.data().clone()
    }

    async fn read(&self, path: &str) -> Option<String> {
        self.s.read_file(&self.admin, &self.app, &self.ws, path).await.map(|b| String::from_utf8(b).unwrap())
    }
}

#[tokio::test]
async fn a_conflicting_upstream_edit_answers_409_with_the_paths_and_leaves_the_workspace_untouched() {
    let t = setup("conflicts").await;
    t.s.put_file(&t.admin, &t.app, &t.ws, "a.yaml", b"v: workspace\n").await.assert_status(200);
    t.s.put_file(&t.admin, &t.app, &t.ws, "mine.yaml", b"m: 1\n").await.assert_status(200);
    t.s.write_upstream(&t.app, "main", "a.yaml", b"v: upstream\n").await;
    let before = t.workspace().await;
    let chain = t.s.chain_len().await;

    for body in [None, Some(json!({ "strategy": "merge" })), Some(json!({ "strategy": "rebase" }))] {
        let r = t.sync(body.clone()).await;
        r.assert_error(409, "conflict");
        assert_eq!(r.body["error"]["details"]["paths"], json!(["a.yaml"]), "{body:?}: {}", r.text);
    }
    assert_eq!(t.workspace().await, before, "head, base and record unchanged");
    assert_eq!(t.s.chain_len().await, chain, "nothing audited");
    assert_eq!(t.read("a.yaml").await.as_deref(), Some("v: workspace\n"));
    assert_eq!(t.read("mine.yaml").await.as_deref(), Some("m: 1\n"));

    // Resolving by taking upstream's content makes the sync go through.
    t.s.put_file(&t.admin, &t.app, &t.ws, "a.yaml", b"v: upstream\n").await.assert_status(200);
    let r = t.sync(None).await;
    r.assert_status(200);
    assert_eq!(t.read("a.yaml").await.as_deref(), Some("v: upstream\n"));
    assert_eq!(t.read("mine.yaml").await.as_deref(), Some("m: 1\n"));
}

#[tokio::test]
async fn several_conflicting_paths_are_all_reported_sorted() {
    let t = setup("many-conflicts").await;
    for path in ["z.yaml", "a.yaml", "dir/m.yaml"] {
        t.s.put_file(&t.admin, &t.app, &t.ws, path, b"ours\n").await.assert_status(200);
        t.s.write_upstream(&t.app, "main", path, b"theirs\n").await;
    }
    t.s.put_file(&t.admin, &t.app, &t.ws, "only-ours.yaml", b"x\n").await.assert_status(200);
    let r = t.sync(None).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.body["error"]["details"]["paths"], json!(["a.yaml", "dir/m.yaml", "z.yaml"]));
}

#[tokio::test]
async fn a_non_conflicting_upstream_change_merges_in_and_keeps_the_workspace_edits() {
    let t = setup("merges").await;
    t.s.put_file(&t.admin, &t.app, &t.ws, "b.yaml", b"b: ws\n").await.assert_status(200);
    let upstream = t.s.write_upstream(&t.app, "main", "c.yaml", b"c: upstream\n").await;
    let before = t.workspace().await;
    assert_ne!(before["base_sha"], upstream.as_str());

    let r = t.sync(None).await;
    r.assert_status(200);
    assert_eq!(r.data()["base_sha"], upstream.as_str(), "the workspace is now based on upstream");
    let head = r.data()["head_sha"].as_str().unwrap().to_owned();
    assert_ne!(head, before["head_sha"].as_str().unwrap());
    assert_eq!(t.workspace().await["head_sha"], head.as_str());
    assert_eq!(t.read("c.yaml").await.as_deref(), Some("c: upstream\n"));
    assert_eq!(t.read("b.yaml").await.as_deref(), Some("b: ws\n"));
    assert_eq!(t.read("a.yaml").await.as_deref(), Some("v: 0\n"));

    // The sync is audited with the new head, and a second sync is a no-op.
    let audit = t.s.get(&format!("/api/apps/{}/audit?entity_id={}", t.app, t.ws), &t.admin).await;
    assert_eq!(audit.data()[0]["action"], "workspace.synced");
    assert_eq!(audit.data()[0]["git_sha"], head.as_str());
    let chain = t.s.chain_len().await;
    let r = t.sync(None).await;
    r.assert_status(200);
    assert_eq!(r.data()["head_sha"], head.as_str());
    assert_eq!(t.s.chain_len().await, chain);

    // Later edits build on the synced head.
    t.s.put_file(&t.admin, &t.app, &t.ws, "d.yaml", b"d\n").await.assert_status(200);
    assert_eq!(t.read("c.yaml").await.as_deref(), Some("c: upstream\n"));
    assert_eq!(t.read("b.yaml").await.as_deref(), Some("b: ws\n"));
}

#[tokio::test]
async fn rebase_and_manual_checkpoint_workspaces_sync_too() {
    let t = setup("rebases").await;
    t.s.req(
        "PATCH",
        &format!("/api/apps/{}/workspaces/{}", t.app, t.ws),
        Some(&t.admin),
        Some(json!({ "commit_mode": "manual_checkpoint" })),
    )
    .await
    .assert_status(200);
    t.s.put_file(&t.admin, &t.app, &t.ws, "committed.yaml", b"c\n").await.assert_status(200);
    let r =
        t.s.req(
            "POST",
            &format!("/api/apps/{}/workspaces/{}/checkpoints", t.app, t.ws),
            Some(&t.admin),
            Some(json!({ "message": "checkpoint" })),
        )
        .await;
    r.assert_status(201);
    t.s.put_file(&t.admin, &t.app, &t.ws, "pending.yaml", b"p\n").await.assert_status(200);
    let upstream = t.s.write_upstream(&t.app, "main", "up.yaml", b"u\n").await;

    let r = t.sync(Some(json!({ "strategy": "rebase" }))).await;
    r.assert_status(200);
    assert_eq!(r.data()["base_sha"], upstream.as_str());
    for (path, content) in
        [("up.yaml", "u\n"), ("committed.yaml", "c\n"), ("pending.yaml", "p\n"), ("a.yaml", "v: 0\n")]
    {
        assert_eq!(t.read(path).await.as_deref(), Some(content), "{path}");
    }

    // Reset now returns to the new baseline (upstream), dropping every edit.
    let r = t.s.req("POST", &format!("/api/apps/{}/workspaces/{}/reset", t.app, t.ws), Some(&t.admin), None).await;
    r.assert_status(200);
    assert_eq!(t.workspace().await["head_sha"], upstream.as_str());
    assert_eq!(t.read("committed.yaml").await, None);
    assert_eq!(t.read("up.yaml").await.as_deref(), Some("u\n"));
}

#[tokio::test]
async fn a_new_workspace_starts_from_the_current_integration_head() {
    let t = setup("baseline").await;
    let upstream = t.s.write_upstream(&t.app, "main", "new.yaml", b"n\n").await;
    let r = t
        .s
        .req("POST", &format!("/api/apps/{}/workspaces", t.app), Some(&t.admin), Some(json!({ "title": "Second try" })))
        .await;
    r.assert_status(201);
    assert_eq!(r.data()["base_sha"], upstream.as_str());
    assert_eq!(r.data()["branch"], "ws/admin/second-try");
    let ws2 = r.data()["id"].as_str().unwrap();
    assert_eq!(t.s.read_file(&t.admin, &t.app, ws2, "new.yaml").await.as_deref(), Some(&b"n\n"[..]));
    // The older workspace does not see it until it syncs.
    assert_eq!(t.read("new.yaml").await, None);
    t.sync(None).await.assert_status(200);
    assert_eq!(t.read("new.yaml").await.as_deref(), Some("n\n"));
}

/// Baseline mode `canonical_env_release` (SPEC §2.1): new workspaces,
/// `reset` and `sync-integration` start from what is deployed on the
/// canonical environment (its `refs/heads/env/<name>`), and from the
/// integration head while nothing is deployed there. The env ref is moved
/// through the git port here, as a deployment moves it.
#[tokio::test]
async fn canonical_env_release_starts_workspaces_from_the_canonical_environment() {
    let t = setup("baseline").await;
    let app: conman_core::ids::AppId = t.app.parse().unwrap();
    let patch = json!({ "baseline_mode": "canonical_env_release" });
    t.s.req("PATCH", &format!("/api/apps/{}/settings", t.app), Some(&t.admin), Some(patch)).await.assert_status(200);
    let envs = json!({ "environments": [
        { "name": "dev", "position": 0, "is_canonical": false },
        { "name": "prod", "position": 1, "is_canonical": true },
    ]});
    t.s.req("PATCH", &format!("/api/apps/{}/environments", t.app), Some(&t.admin), Some(envs)).await.assert_status(200);
    let released = t.s.write_upstream(&t.app, "main", "a.yaml", b"v: 1\n").await;
    // Nothing deployed on prod: the integration head.
    assert_eq!(t.new_workspace("before").await["base_sha"], released.as_str());

    let git = &t.s.conman.ports().git;
    git.update_ref(app, "refs/heads/env/prod", Some(&released), None).await.unwrap();
    let unreleased = t.s.write_upstream(&t.app, "main", "a.yaml", b"v: 2\n").await;
    let ws = t.new_workspace("after").await;
    assert_eq!(ws["base_sha"], released.as_str(), "starts from prod's release, not the newer integration head");
    let id = ws["id"].as_str().unwrap();
    assert_eq!(t.s.read_file(&t.admin, &t.app, id, "a.yaml").await.as_deref(), Some(&b"v: 1\n"[..]));
    // Only the canonical environment counts.
    git.update_ref(app, "refs/heads/env/dev", Some(&unreleased), None).await.unwrap();
    let url = format!("/api/apps/{}/workspaces/{}/reset", t.app, t.ws);
    let r = t.s.req("POST", &url, Some(&t.admin), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["base_sha"], released.as_str());
}
