//! Deployments over HTTP (SPEC §2.5, §4, §7, issue 14), on a real git
//! repository, a real SQLite file and real job workers: release → dev →
//! promote qa → skip-stage prod with two approvals recorded by two users →
//! rollback, with the environment refs, deployment records and release
//! states checked at each step; the refusals of bad deploys and bad
//! approvals (each changing nothing); drift blocking until a drift check
//! passes (the deploy gate sees the current profile); freeze windows and
//! the admin override; two deploys racing on one environment; a concurrent
//! batch; and environments with history that cannot be removed.

mod common;

use std::time::Duration;

use common::{TestServer, Workers};
use serde_json::{json, Value};

/// An app with three environments (dev, qa, prod), each with a profile; a
/// config manager, an author, two reviewers and a plain user.
struct Site {
    s: TestServer,
    app: String,
    admin: String,
    cm: String,
    author: String,
    rita: String,
    rob: String,
    uma: String,
    /// Environment ids by name.
    envs: Vec<(String, String)>,
    /// Runtime profile ids by environment name.
    profiles: Vec<(String, String)>,
}

fn profile_body(name: &str) -> Value {
    json!({
        "name": name,
        "kind": "persistent_env",
        "base_url": format!("https://{name}.example.com"),
        "env_vars": { "LOG_LEVEL": {"type": "string", "value": "warn"} },
        "secrets": { "API_TOKEN": format!("{name}-token-0123456789") }
    })
}

impl Site {
    async fn open() -> Site {
        Site::open_with(|_| {}).await
    }

    async fn open_with(tune: impl FnOnce(&mut conman_api::config::Settings)) -> Site {
        let s = TestServer::start_with(tune).await;
        let admin = s.admin_token.clone();
        let app = s.create_app(&admin, "site").await;
        s.write_upstream(&app, "main", "config/app.yaml", b"replicas: 1\n").await;
        let cm = s.invite_and_accept(&admin, &app, "carl@example.com", "config_manager").await;
        let author = s.invite_and_accept(&admin, &app, "dana@example.com", "user").await;
        let rita = s.invite_and_accept(&admin, &app, "rita@example.com", "reviewer").await;
        let rob = s.invite_and_accept(&admin, &app, "rob@example.com", "reviewer").await;
        let uma = s.invite_and_accept(&admin, &app, "uma@example.com", "user").await;
        let mut site = Site { s, app, admin, cm, author, rita, rob, uma, envs: Vec::new(), profiles: Vec::new() };
        let mut list = Vec::new();
        for (position, name) in ["dev", "qa", "prod"].iter().enumerate() {
            let r = site.send("POST", &site.admin.clone(), "/runtime-profiles", Some(profile_body(name))).await;
            r.assert_status(201);
            let profile = r.data()["id"].as_str().unwrap().to_owned();
            site.profiles.push((name.to_string(), profile.clone()));
            list.push(json!({
                "name": name, "position": position, "is_canonical": *name == "prod", "runtime_profile_id": profile,
            }));
        }
        let r = site.send("PATCH", &site.admin.clone(), "/environments", Some(json!({ "environments": list }))).await;
        r.assert_status(200);
        for env in r.data().as_array().unwrap() {
            site.envs.push((env["name"].as_str().unwrap().to_owned(), env["id"].as_str().unwrap().to_owned()));
        }
        site
    }

    fn path(&self, tail: &str) -> String {
        format!("/api/apps/{}{tail}", self.app)
    }

    async fn send(&self, method: &str, token: &str, tail: &str, body: Option<Value>) -> common::Reply {
        self.s.req(method, &self.path(tail), Some(token), body).await
    }

    async fn get(&self, tail: &str) -> Value {
        let r = self.s.get(&self.path(tail), &self.cm).await;
        r.assert_status(200);
        r.data().clone()
    }

    fn env(&self, name: &str) -> String {
        self.envs.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone()).expect("environment")
    }

    fn profile(&self, name: &str) -> String {
        self.profiles.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone()).expect("profile")
    }

    /// A published release changing `config/app.yaml` to `content`, and its
    /// composed commit.
    async fn published(&self, title: &str, content: &str) -> (String, String) {
        let r = self.send("POST", &self.author, "/workspaces", Some(json!({ "title": title }))).await;
        r.assert_status(201);
        let ws = r.data()["id"].as_str().unwrap().to_owned();
        self.s.put_file(&self.author, &self.app, &ws, "config/app.yaml", content.as_bytes()).await.assert_status(200);
        let r =
            self.send("POST", &self.author, "/changesets", Some(json!({ "workspace_id": ws, "title": title }))).await;
        r.assert_status(201);
        let cs = r.data()["id"].as_str().unwrap().to_owned();
        self.shipped(&self.author, title, &cs).await
    }

    /// Takes `author`'s draft changeset `cs` through its gate, a review and
    /// the queue into a published release of its own: (release, commit).
    async fn shipped(&self, author: &str, title: &str, cs: &str) -> (String, String) {
        self.send("POST", author, &format!("/changesets/{cs}/submit"), None).await.assert_status(200);
        self.wait(|| async { self.get(&format!("/changesets/{cs}")).await["state"] != "submitted" }).await;
        let vote = json!({ "action": "approve" });
        self.send("POST", &self.rita, &format!("/changesets/{cs}/review"), Some(vote)).await.assert_status(200);
        self.send("POST", author, &format!("/changesets/{cs}/queue"), None).await.assert_status(200);
        let r = self.send("POST", &self.cm, "/releases", Some(json!({ "title": title }))).await;
        r.assert_status(201);
        let rel = r.data()["id"].as_str().unwrap().to_owned();
        let pick = json!({ "changeset_ids": [cs] });
        self.send("POST", &self.cm, &format!("/releases/{rel}/changesets"), Some(pick)).await.assert_status(200);
        self.send("POST", &self.cm, &format!("/releases/{rel}/assemble"), None).await.assert_status(200);
        self.wait(|| async { self.get(&format!("/releases/{rel}")).await["state"] != "assembling" }).await;
        let r = self.send("POST", &self.cm, &format!("/releases/{rel}/publish"), None).await;
        r.assert_status(200);
        (rel, r.data()["composed_sha"].as_str().unwrap().to_owned())
    }

    async fn wait<F, Fut>(&self, done: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..3000 {
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the condition never held");
    }

    /// Polls a deployment until it has finished, answering it.
    async fn finished(&self, id: &str) -> Value {
        for _ in 0..3000 {
            let d = self.get(&format!("/deployments/{id}")).await;
            if ["succeeded", "failed", "canceled"].contains(&d["state"].as_str().unwrap()) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("deployment {id} never finished");
    }

    /// Deploys `rel` to `env` as the config manager; the deployment id.
    async fn deploy(&self, env: &str, body: Value) -> common::Reply {
        self.send("POST", &self.cm, &format!("/environments/{}/deploy", self.env(env)), Some(body)).await
    }

    /// Deploys and waits for success.
    async fn deployed(&self, env: &str, rel: &str) -> Value {
        let r = self.deploy(env, json!({ "release_id": rel })).await;
        r.assert_status(201);
        let id = r.data()[0]["deployment"]["id"].as_str().unwrap().to_owned();
        let d = self.finished(&id).await;
        assert_eq!(d["state"], "succeeded", "{d}");
        d
    }

    fn env_ref(&self, env: &str) -> Option<String> {
        let repo = self.s.dir.path().join("repos").join(format!("{}.git", self.app));
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", &format!("refs/heads/env/{env}")])
            .env("GIT_DIR", &repo)
            .output()
            .expect("git runs");
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `path` at `rev` in the app's repository (git's CLI).
    fn file_at(&self, rev: &str, path: &str) -> String {
        let repo = self.s.dir.path().join("repos").join(format!("{}.git", self.app));
        let out = std::process::Command::new("git")
            .args(["show", &format!("{rev}:{path}")])
            .env("GIT_DIR", &repo)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git show {rev}:{path}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// An app admin's emergency edit of `env`'s profile: `LOG_LEVEL` set to `value`.
    async fn set_log_level(&self, env: &str, value: &str) {
        let patch = json!({ "set_env_vars": {"LOG_LEVEL": {"type": "string", "value": value}} });
        let path = format!("/runtime-profiles/{}", self.profile(env));
        self.send("PATCH", &self.admin, &path, Some(patch)).await.assert_status(200);
    }

    async fn release_state(&self, rel: &str) -> String {
        self.get(&format!("/releases/{rel}")).await["state"].as_str().unwrap().to_owned()
    }

    async fn deployment_total(&self) -> u64 {
        self.s.get(&self.path("/deployments"), &self.cm).await.body["pagination"]["total"].as_u64().unwrap()
    }

    async fn status(&self, env: &str) -> Value {
        self.get(&format!("/environments/{}/status", self.env(env))).await
    }
}

#[tokio::test]
async fn release_dev_promote_qa_skip_stage_prod_with_two_approvals_then_rollback() {
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let (r1, c1) = site.published("replicas 2", "replicas: 2\n").await;
    let (r2, c2) = site.published("replicas 3", "replicas: 3\n").await;

    // Release → dev: the first stage takes any published release.
    let d = site.deployed("dev", &r1).await;
    assert_eq!(d["kind"], "deploy");
    assert_eq!(d["commit"], c1);
    assert_eq!(d["profile_revision"], 1);
    assert_eq!(site.env_ref("dev").as_deref(), Some(c1.as_str()));
    assert_eq!(site.release_state(&r1).await, "deployed_partial");

    // Promote → qa: the exact artifact of the stage before.
    let r = site.send("POST", &site.cm, &format!("/environments/{}/promote", site.env("qa")), Some(json!({}))).await;
    r.assert_status(201);
    assert_eq!(r.data()["deployment"]["kind"], "promote");
    assert_eq!(r.data()["deployment"]["release_id"], r1);
    let promoted = site.finished(r.data()["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(promoted["state"], "succeeded", "{promoted}");
    assert_eq!(site.env_ref("qa").as_deref(), Some(c1.as_str()));
    assert_eq!(site.release_state(&r1).await, "deployed_partial");

    // R2 to dev, then straight to prod: qa does not run it, a skip-stage.
    site.deployed("dev", &r2).await;
    let before = site.deployment_total().await;
    let r = site.deploy("prod", json!({ "release_id": r2 })).await;
    r.assert_error(400, "validation_error");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("is_skip_stage"), "{}", r.body);
    assert_eq!(site.deployment_total().await, before, "a refused deploy records nothing");
    // Promoting R2 to qa while asserting R1 runs on dev is refused too.
    let qa_promote = format!("/environments/{}/promote", site.env("qa"));
    let r = site.send("POST", &site.cm, &qa_promote, Some(json!({ "release_id": r1 }))).await;
    r.assert_error(400, "validation_error");
    let r = site.send("POST", &site.cm, &format!("/environments/{}/promote", site.env("dev")), Some(json!({}))).await;
    r.assert_error(400, "validation_error");

    let r = site.deploy("prod", json!({ "release_id": r2, "is_skip_stage": true })).await;
    r.assert_status(201);
    let pending = r.data()[0]["deployment"].clone();
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["exception"], "skip_stage");
    assert!(r.data()[0]["job"].is_null());
    assert!(pending["approval_expires_at"].is_string());
    let id = pending["id"].as_str().unwrap().to_owned();
    let approve = format!("/deployments/{id}/approve");

    // The requester, a plain user and a non-member may not approve.
    site.send("POST", &site.cm, &approve, None).await.assert_error(403, "forbidden");
    site.send("POST", &site.uma, &approve, None).await.assert_error(403, "forbidden");
    let outsider = site
        .s
        .invite_and_accept(&site.admin, &site.s.create_app(&site.admin, "other").await, "oz@example.com", "app_admin")
        .await;
    site.send("POST", &outsider, &approve, None).await.assert_error(404, "not_found");
    let d = site.get(&format!("/deployments/{id}")).await;
    assert_eq!(d["approvals"], json!([]), "refused approvals record nothing");

    // Rita approves; her second approval is refused; it still waits.
    let r = site.send("POST", &site.rita, &approve, None).await;
    r.assert_status(200);
    assert_eq!(r.data()[0]["deployment"]["state"], "pending");
    site.send("POST", &site.rita, &approve, None).await.assert_error(409, "conflict");
    assert_eq!(site.env_ref("prod"), None, "nothing moves before the second approval");

    // Rob's approval starts it.
    let r = site.send("POST", &site.rob, &approve, None).await;
    r.assert_status(200);
    assert_eq!(r.data()[0]["deployment"]["state"], "running");
    assert_eq!(r.data()[0]["job"]["type"], "deploy_release");
    let d = site.finished(&id).await;
    assert_eq!(d["state"], "succeeded", "{d}");
    assert_eq!(d["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(site.env_ref("prod").as_deref(), Some(c2.as_str()));
    site.send("POST", &site.cm, &format!("/deployments/{id}/cancel"), None)
        .await
        .assert_error(409, "invalid_transition");

    // Rollback prod to R1: R2 is rolled back, prod runs R1 again.
    let rollback = format!("/environments/{}/rollback", site.env("prod"));
    let r = site.send("POST", &site.cm, &rollback, Some(json!({ "mode": "redeploy_prior" }))).await;
    r.assert_error(400, "validation_error");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("ran no release before"), "{}", r.body);
    let r = site.send("POST", &site.cm, &rollback, Some(json!({ "mode": "redeploy_prior", "release_id": r1 }))).await;
    r.assert_status(201);
    let back = site.finished(r.data()["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(back["state"], "succeeded", "{back}");
    assert_eq!(back["kind"], "redeploy_prior");
    assert_eq!(back["rolled_back_release_id"], r2);
    assert_eq!(back["previous_release_id"], r2);
    assert_eq!(site.env_ref("prod").as_deref(), Some(c1.as_str()));
    assert_eq!(site.release_state(&r2).await, "rolled_back");
    assert_eq!(site.release_state(&r1).await, "deployed_partial", "dev still runs R2");

    let status = site.status("prod").await;
    assert_eq!(status["current_release_id"], r1);
    assert_eq!(status["current_commit"], c1);
    assert_eq!(status["last_deployment"]["rolled_back_release_id"], r2);
    assert!(status["drift"].is_null() && status["freeze"].is_null() && status["active_deployment"].is_null());

    let list = site
        .s
        .get(&site.path(&format!("/deployments?environment={}&state=succeeded", site.env("prod"))), &site.cm)
        .await;
    list.assert_status(200);
    assert_eq!(list.body["pagination"]["total"], 2);
    workers.stop().await;
}

#[tokio::test]
async fn bad_deploys_are_refused_and_change_nothing() {
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let (r1, c1) = site.published("replicas 2", "replicas: 2\n").await;
    site.deployed("dev", &r1).await;
    let draft = site.send("POST", &site.cm, "/releases", Some(json!({ "title": "draft" }))).await;
    let draft = draft.data()["id"].as_str().unwrap().to_owned();
    let other_app = site.s.create_app(&site.admin, "elsewhere").await;
    let foreign =
        site.s.req("POST", &format!("/api/apps/{other_app}/releases"), Some(&site.admin), Some(json!({}))).await;
    let foreign = foreign.data()["id"].as_str().unwrap().to_owned();
    let unknown = uuid::Uuid::now_v7().to_string();
    let before_total = site.deployment_total().await;
    let before_audit = site.s.audit_total(&site.admin, &site.app).await;

    let qa = site.env("qa");
    let cases: Vec<(&str, &str, Value, &str, u16, &str)> = vec![
        ("unpublished release", "deploy", json!({ "release_id": draft }), "cm", 409, "invalid_transition"),
        ("release of another app", "deploy", json!({ "release_id": foreign }), "cm", 404, "not_found"),
        ("unknown release", "deploy", json!({ "release_id": unknown }), "cm", 404, "not_found"),
        (
            "skip flag on a promotion",
            "deploy",
            json!({ "release_id": r1, "is_skip_stage": true }),
            "cm",
            400,
            "validation_error",
        ),
        (
            "batch flag without a batch",
            "deploy",
            json!({ "release_id": r1, "is_concurrent_batch": true }),
            "cm",
            400,
            "validation_error",
        ),
        (
            "batch without its flag",
            "deploy",
            json!({ "release_id": r1, "with_environment_ids": [site.env("prod")] }),
            "cm",
            400,
            "validation_error",
        ),
        (
            "batch naming an environment twice",
            "deploy",
            json!({ "release_id": r1, "is_concurrent_batch": true, "with_environment_ids": [qa] }),
            "cm",
            400,
            "validation_error",
        ),
        ("a reviewer deploying", "deploy", json!({ "release_id": r1 }), "rita", 403, "forbidden"),
        ("a user deploying", "deploy", json!({ "release_id": r1 }), "uma", 403, "forbidden"),
        ("unknown field", "deploy", json!({ "release_id": r1, "approvers": ["x"] }), "cm", 400, "validation_error"),
        (
            "revert_and_release with nothing deployed",
            "rollback",
            json!({ "mode": "revert_and_release" }),
            "cm",
            400,
            "validation_error",
        ),
        ("unknown rollback mode", "rollback", json!({ "mode": "undo" }), "cm", 400, "validation_error"),
        (
            "rollback with nothing deployed",
            "rollback",
            json!({ "mode": "redeploy_prior", "release_id": r1 }),
            "cm",
            400,
            "validation_error",
        ),
        (
            "freeze override by a config manager, not frozen",
            "deploy",
            json!({ "release_id": r1, "freeze_override": "  " }),
            "cm",
            400,
            "validation_error",
        ),
    ];
    for (what, action, body, who, status, code) in cases {
        let token = match who {
            "rita" => &site.rita,
            "uma" => &site.uma,
            _ => &site.cm,
        };
        let r = site.send("POST", token, &format!("/environments/{qa}/{action}"), Some(body)).await;
        assert_eq!(r.status.as_u16(), status, "{what}: {}", r.body);
        assert_eq!(r.code(), code, "{what}: {}", r.body);
    }
    let r = site
        .send("POST", &site.cm, &format!("/environments/{unknown}/deploy"), Some(json!({ "release_id": r1 })))
        .await;
    r.assert_error(404, "not_found");
    site.send("POST", &site.rita, &format!("/deployments/{unknown}/approve"), None)
        .await
        .assert_error(404, "not_found");

    assert_eq!(site.deployment_total().await, before_total, "no refusal recorded a deployment");
    assert_eq!(site.s.audit_total(&site.admin, &site.app).await, before_audit, "no refusal wrote an audit entry");
    assert_eq!(site.env_ref("qa"), None);
    assert_eq!(site.env_ref("dev").as_deref(), Some(c1.as_str()));
    workers.stop().await;
}

#[tokio::test]
async fn a_drifted_environment_refuses_deploys_until_its_drift_check_passes() {
    // The deploy gate sees the environment's profile: it fails while
    // LOG_LEVEL is `panic`.
    let site = Site::open_with(|s| s.gate_deploy_cmd = Some("test \"$LOG_LEVEL\" != panic".into())).await;
    let workers = Workers::start(&site.s);
    let (r1, _) = site.published("replicas 2", "replicas: 2\n").await;
    let (r2, c2) = site.published("replicas 3", "replicas: 3\n").await;
    site.deployed("dev", &r1).await;
    assert!(site.status("dev").await["drift"].is_null());

    // An emergency edit by the app admin: dev has drifted.
    let patch = json!({
        "set_env_vars": {"LOG_LEVEL": {"type": "string", "value": "panic"}},
        "set_secrets": {"API_TOKEN": "rotated-secret-value-42"}
    });
    let r = site.send("PATCH", &site.admin, &format!("/runtime-profiles/{}", site.profile("dev")), Some(patch)).await;
    r.assert_status(200);
    let drift = site.status("dev").await["drift"].clone();
    assert_eq!(drift["profile_changed"], true, "{drift}");
    assert_eq!(drift["keys"], json!(["env_vars.LOG_LEVEL", "secrets.API_TOKEN"]), "{drift}");

    let before = site.deployment_total().await;
    let r = site.deploy("dev", json!({ "release_id": r2 })).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "drifted");
    assert_eq!(r.body["error"]["details"]["keys"], json!(["env_vars.LOG_LEVEL", "secrets.API_TOKEN"]));
    assert!(!r.text.contains("rotated-secret-value-42") && !r.text.contains("panic"), "{}", r.text);
    assert_eq!(site.deployment_total().await, before);

    // A drift check against the bad profile fails: still drifted.
    let check = format!("/environments/{}/drift-check", site.env("dev"));
    let r = site.send("POST", &site.cm, &check, None).await;
    r.assert_status(201);
    assert_eq!(r.data()["job"]["type"], "drift_check");
    let job = r.data()["job"]["id"].as_str().unwrap().to_owned();
    site.wait(|| async {
        ["succeeded", "failed"].contains(&site.get(&format!("/jobs/{job}")).await["job"]["state"].as_str().unwrap())
    })
    .await;
    assert_eq!(site.get(&format!("/jobs/{job}")).await["job"]["state"], "failed");
    assert!(!site.status("dev").await["drift"].is_null());
    site.deploy("dev", json!({ "release_id": r2 })).await.assert_error(409, "conflict");

    // Fixed profile, passing check: deploys are accepted again.
    let patch = json!({ "set_env_vars": {"LOG_LEVEL": {"type": "string", "value": "info"}} });
    site.send("PATCH", &site.admin, &format!("/runtime-profiles/{}", site.profile("dev")), Some(patch))
        .await
        .assert_status(200);
    let r = site.send("POST", &site.cm, &check, None).await;
    let job = r.data()["job"]["id"].as_str().unwrap().to_owned();
    site.wait(|| async {
        ["succeeded", "failed"].contains(&site.get(&format!("/jobs/{job}")).await["job"]["state"].as_str().unwrap())
    })
    .await;
    assert_eq!(site.get(&format!("/jobs/{job}")).await["job"]["state"], "succeeded");
    assert!(site.status("dev").await["drift"].is_null());
    let d = site.deployed("dev", &r2).await;
    assert_eq!(d["profile_revision"], 3);
    assert_eq!(site.env_ref("dev").as_deref(), Some(c2.as_str()));
    workers.stop().await;

    // The metrics: two refusals for drift, two successful deploy attempts
    // (the workers run in this process), dev's deployments by state.
    let metrics = site.s.req("GET", "/api/metrics", None, None).await;
    metrics.assert_status(200);
    let has = |line: String| assert!(metrics.text.contains(&line), "{line} missing from:\n{}", metrics.text);
    has(format!("conman_deploys_drift_blocked_total{{app=\"{}\"}} 2", site.app));
    has("conman_deploy_duration_seconds_count{outcome=\"succeeded\"} 2".to_owned());
    has(format!(
        "conman_deployments{{app=\"{}\",environment=\"{}\",state=\"succeeded\"}} 2",
        site.app,
        site.env("dev")
    ));
}

#[tokio::test]
async fn a_freeze_window_refuses_deploys_unless_an_app_admin_overrides_with_a_reason() {
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let (r1, _) = site.published("replicas 2", "replicas: 2\n").await;
    let windows = format!("/environments/{}/freeze-windows", site.env("dev"));
    let now = chrono::Utc::now();
    let one_off = json!({
        "schedule": { "kind": "one_off", "starts_at": now - chrono::TimeDelta::hours(1), "ends_at": now + chrono::TimeDelta::hours(1) },
        "reason": "quarter close",
    });
    site.send("POST", &site.cm, &windows, Some(one_off.clone())).await.assert_error(403, "forbidden");
    let bad_zone = json!({
        "schedule": { "kind": "weekly", "start_day": "friday", "start_time": "16:00", "end_day": "monday", "end_time": "08:00", "timezone": "Mars/Olympus" },
        "reason": "weekend",
    });
    site.send("POST", &site.admin, &windows, Some(bad_zone)).await.assert_error(400, "validation_error");
    // A weekly window three days away from now never covers this test.
    let day = (now + chrono::TimeDelta::days(3)).format("%A").to_string().to_lowercase();
    let weekly = json!({
        "schedule": { "kind": "weekly", "start_day": day, "start_time": "00:00", "end_day": day, "end_time": "01:00", "timezone": "UTC" },
        "reason": "weekly maintenance",
    });
    site.send("POST", &site.admin, &windows, Some(weekly)).await.assert_status(201);
    let r = site.send("POST", &site.admin, &windows, Some(one_off)).await;
    r.assert_status(201);
    let window = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(site.get(&windows).await.as_array().unwrap().len(), 2);
    assert_eq!(site.status("dev").await["freeze"]["id"], window);

    let before = site.deployment_total().await;
    let r = site.deploy("dev", json!({ "release_id": r1 })).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "frozen");
    let r = site.deploy("dev", json!({ "release_id": r1, "freeze_override": "hotfix for the close" })).await;
    r.assert_error(409, "conflict");
    assert_eq!(site.deployment_total().await, before, "only an app_admin overrides a freeze");

    let dev = site.env("dev");
    let r = site
        .send(
            "POST",
            &site.admin,
            &format!("/environments/{dev}/deploy"),
            Some(json!({ "release_id": r1, "freeze_override": "hotfix for the close" })),
        )
        .await;
    r.assert_status(201);
    let d = site.finished(r.data()[0]["deployment"]["id"].as_str().unwrap()).await;
    assert_eq!(d["state"], "succeeded");
    assert_eq!(d["freeze_override"], "hotfix for the close");

    site.send("DELETE", &site.admin, &format!("/freeze-windows/{window}"), None).await.assert_status(200);
    assert_eq!(site.get(&windows).await.as_array().unwrap().len(), 1);
    workers.stop().await;
}

#[tokio::test]
async fn of_two_deploys_racing_on_one_environment_exactly_one_holds_it() {
    // No workers: the winner stays running, holding the environment.
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let (r1, _) = site.published("replicas 2", "replicas: 2\n").await;
    let (r2, _) = site.published("replicas 3", "replicas: 3\n").await;
    workers.stop().await;
    let (a, b) =
        tokio::join!(site.deploy("dev", json!({ "release_id": r1 })), site.deploy("dev", json!({ "release_id": r2 })));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let loser = if a.status.as_u16() == 409 { &a } else { &b };
    assert_eq!(loser.reason(), "environment_busy", "{}", loser.body);
    assert_eq!(site.deployment_total().await, 1);
    assert!(!site.status("dev").await["active_deployment"].is_null());
    // Another environment is not held by it.
    site.send(
        "POST",
        &site.cm,
        &format!("/environments/{}/deploy", site.env("qa")),
        Some(json!({ "release_id": r1, "is_skip_stage": true })),
    )
    .await
    .assert_status(201);
}

#[tokio::test]
async fn a_concurrent_batch_waits_for_two_approvals_and_then_runs_everywhere() {
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let (r1, c1) = site.published("replicas 2", "replicas: 2\n").await;
    let body = json!({ "release_id": r1, "is_concurrent_batch": true, "with_environment_ids": [site.env("qa"), site.env("prod")] });
    let r = site.deploy("dev", body).await;
    r.assert_status(201);
    let batch = r.data().as_array().unwrap().clone();
    assert_eq!(batch.len(), 3);
    let group = batch[0]["deployment"]["group_id"].clone();
    assert!(group.is_string());
    for started in &batch {
        assert_eq!(started["deployment"]["state"], "pending");
        assert_eq!(started["deployment"]["exception"], "concurrent_batch");
        assert_eq!(started["deployment"]["group_id"], group);
    }
    let first = batch[1]["deployment"]["id"].as_str().unwrap().to_owned();
    site.send("POST", &site.rita, &format!("/deployments/{first}/approve"), None).await.assert_status(200);
    let r = site.send("POST", &site.rob, &format!("/deployments/{first}/approve"), None).await;
    r.assert_status(200);
    assert_eq!(r.data().as_array().unwrap().len(), 3, "one approval covers the batch");
    for started in &batch {
        let d = site.finished(started["deployment"]["id"].as_str().unwrap()).await;
        assert_eq!(d["state"], "succeeded", "{d}");
    }
    for env in ["dev", "qa", "prod"] {
        assert_eq!(site.env_ref(env).as_deref(), Some(c1.as_str()), "{env}");
    }
    assert_eq!(site.release_state(&r1).await, "deployed_full");

    // Environments with history stay.
    let envs = json!({ "environments": [
        { "name": "dev", "position": 0, "is_canonical": false, "runtime_profile_id": site.profile("dev") },
        { "name": "prod", "position": 2, "is_canonical": true, "runtime_profile_id": site.profile("prod") },
    ]});
    let r = site.send("PATCH", &site.admin, "/environments", Some(envs)).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "has_deployments");
    assert_eq!(site.get("/environments").await.as_array().unwrap().len(), 3);

    // A rejected batch ends canceled everywhere.
    let (r2, _) = site.published("replicas 3", "replicas: 3\n").await;
    let body = json!({ "release_id": r2, "is_concurrent_batch": true, "with_environment_ids": [site.env("qa")] });
    let r = site.deploy("dev", body).await;
    let id = r.data()[0]["deployment"]["id"].as_str().unwrap().to_owned();
    let r = site
        .send("POST", &site.rita, &format!("/deployments/{id}/reject"), Some(json!({ "reason": "not this week" })))
        .await;
    r.assert_status(200);
    for d in r.data().as_array().unwrap() {
        assert_eq!(d["state"], "canceled");
        assert_eq!(d["rejection"]["reason"], "not this week");
    }
    site.send("POST", &site.rob, &format!("/deployments/{id}/approve"), None)
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(site.env_ref("dev").as_deref(), Some(c1.as_str()));
    workers.stop().await;
}

/// `revert_and_release`: the release dev runs is reverted on the
/// integration branch in memory, published as a new release that names
/// what it reverts, and deployed; the reverted release is `rolled_back`.
/// A revert that later changes conflict with, or of a release dev does not
/// run, is refused and changes nothing.
#[tokio::test]
async fn revert_and_release_publishes_the_revert_and_deploys_it() {
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let (r1, _) = site.published("replicas 2", "replicas: 2\n").await;
    let (r2, c2) = site.published("cache on", "replicas: 2\ncache: true\n").await;
    site.deployed("dev", &r1).await;
    site.deployed("dev", &r2).await;
    let rollback = format!("/environments/{}/rollback", site.env("dev"));

    // Only the running release is reverted there.
    let before = (site.deployment_total().await, site.get("/releases").await.as_array().unwrap().len());
    let r =
        site.send("POST", &site.cm, &rollback, Some(json!({ "mode": "revert_and_release", "release_id": r1 }))).await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "not_running");
    let r = site.send("POST", &site.rita, &rollback, Some(json!({ "mode": "revert_and_release" }))).await;
    r.assert_error(403, "forbidden");
    assert_eq!((site.deployment_total().await, site.get("/releases").await.as_array().unwrap().len()), before);

    let r = site.send("POST", &site.cm, &rollback, Some(json!({ "mode": "revert_and_release" }))).await;
    r.assert_status(201);
    let started = r.data()["deployment"].clone();
    assert_eq!((&started["kind"], &started["rolled_back_release_id"]), (&json!("revert_and_release"), &json!(r2)));
    let done = site.finished(started["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let revert = site.get(&format!("/releases/{}", done["release_id"].as_str().unwrap())).await;
    assert_eq!((&revert["state"], &revert["reverts_release_id"]), (&json!("deployed_partial"), &json!(r2)), "{revert}");
    assert!(revert["tag"].as_str().unwrap().ends_with(".3"), "the day's third release: {revert}");
    assert_eq!(revert["base_sha"], json!(c2), "composed onto the integration head");
    let commit = revert["composed_sha"].as_str().unwrap().to_owned();
    assert_eq!(site.env_ref("dev").as_deref(), Some(commit.as_str()));
    assert_eq!(site.file_at(&commit, "config/app.yaml"), "replicas: 2\n", "r2's change is gone");
    assert_eq!(site.file_at("refs/heads/main", "config/app.yaml"), "replicas: 2\n", "on the integration branch too");
    assert_eq!(site.release_state(&r2).await, "rolled_back");
    let status = site.status("dev").await;
    assert_eq!(status["current_release_id"], revert["id"]);
    assert_eq!(status["last_deployment"]["rolled_back_release_id"], json!(r2));

    // A later release changes the line r1 changed: reverting r1 conflicts.
    let (r3, _) = site.published("replicas 5", "replicas: 5\n").await;
    site.deployed("dev", &r1).await;
    let before = (site.deployment_total().await, site.get("/releases").await.as_array().unwrap().len());
    let r = site.send("POST", &site.cm, &rollback, Some(json!({ "mode": "revert_and_release" }))).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "revert_conflict");
    assert_eq!(r.body["error"]["details"]["paths"], json!(["config/app.yaml"]));
    assert_eq!((site.deployment_total().await, site.get("/releases").await.as_array().unwrap().len()), before);
    assert_eq!(site.file_at("refs/heads/main", "config/app.yaml"), "replicas: 5\n");
    assert_eq!(site.release_state(&r3).await, "published");
    workers.stop().await;
}

/// A drift-fix changeset records the drifted environment's current profile
/// state in the repository; released and deployed, it goes through the
/// drift block and ends the drift — but only while its record matches: a
/// fix made before a later edit is refused like any deploy.
#[tokio::test]
async fn a_drift_fix_changeset_released_and_deployed_ends_the_drift() {
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let (r1, _) = site.published("replicas 2", "replicas: 2\n").await;
    site.deployed("dev", &r1).await;
    let fix_path = |env: &str| format!("/environments/{}/create-drift-fix-changeset", site.env(env));

    let r = site.send("POST", &site.cm, &fix_path("dev"), None).await;
    r.assert_error(400, "validation_error");
    assert_eq!(r.reason(), "not_drifted");
    site.set_log_level("dev", "debug").await;
    site.send("POST", &site.rita, &fix_path("dev"), None).await.assert_error(403, "forbidden");

    // The fix records revision 2; a later edit (revision 3) makes it stale.
    let r = site.send("POST", &site.cm, &fix_path("dev"), None).await;
    r.assert_status(201);
    let stale = r.data().clone();
    assert_eq!(stale["title"], "Drift fix: dev");
    let ws = stale["workspace_id"].as_str().unwrap();
    let file =
        site.s.get(&site.path(&format!("/workspaces/{ws}/files?path=.conman/drift-fix/dev.json")), &site.cm).await;
    file.assert_status(200);
    let recorded: Value = {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(file.data()["content"].as_str().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    assert_eq!(recorded["profile_revision"], 2, "{recorded}");
    assert_eq!(recorded["keys"], json!(["env_vars.LOG_LEVEL"]));
    assert!(!recorded.to_string().contains("debug"), "names only, never a value: {recorded}");
    let (stale_rel, _) = site.shipped(&site.cm, "stale fix", stale["id"].as_str().unwrap()).await;
    site.set_log_level("dev", "trace").await;
    let r = site.deploy("dev", json!({ "release_id": stale_rel })).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "drifted");

    // A fix of the current state goes through and ends the drift.
    let r = site.send("POST", &site.cm, &fix_path("dev"), None).await;
    r.assert_status(201);
    let (fix_rel, fix_commit) = site.shipped(&site.cm, "fix", r.data()["id"].as_str().unwrap()).await;
    let d = site.deployed("dev", &fix_rel).await;
    assert_eq!(d["profile_revision"], 3, "{d}");
    assert_eq!(site.env_ref("dev").as_deref(), Some(fix_commit.as_str()));
    assert!(site.status("dev").await["drift"].is_null(), "the deploy recorded the new baseline");
    let (r2, _) = site.published("replicas 3", "replicas: 3\n").await;
    site.deployed("dev", &r2).await;
    workers.stop().await;
}

/// Each successful deploy to an environment whose profile has migrations
/// writes a migration execution record, listed per environment newest
/// first; environments without migrations have none.
#[tokio::test]
async fn deploys_record_the_migrations_they_ran_per_environment() {
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let patch = json!({ "migrations": { "paths": ["db/migrations"], "command": "echo migrate" } });
    let path = format!("/runtime-profiles/{}", site.profile("dev"));
    site.send("PATCH", &site.admin, &path, Some(patch)).await.assert_status(200);
    let (r1, _) = site.published("replicas 2", "replicas: 2\n").await;
    let (r2, _) = site.published("replicas 3", "replicas: 3\n").await;
    let d1 = site.deployed("dev", &r1).await;
    let d2 = site.deployed("dev", &r2).await;
    site.deployed("qa", &r2).await;

    let list = site.s.get(&site.path(&format!("/environments/{}/migrations", site.env("dev"))), &site.uma).await;
    list.assert_status(200);
    let records = list.data().as_array().unwrap().clone();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!((&records[0]["release_id"], &records[0]["deployment_id"]), (&json!(r2), &d2["id"]));
    assert_eq!((&records[1]["release_id"], &records[1]["deployment_id"]), (&json!(r1), &d1["id"]));
    assert_eq!(records[0]["paths"], json!(["db/migrations"]));
    assert_eq!(records[0]["command"], "echo migrate");
    assert_eq!(list.body["pagination"]["total"], 2);
    let qa = site.s.get(&site.path(&format!("/environments/{}/migrations", site.env("qa"))), &site.uma).await;
    assert_eq!(qa.data(), &json!([]), "qa's profile has no migrations");
    let unknown = format!("/environments/{}/migrations", uuid::Uuid::now_v7());
    site.s.get(&site.path(&unknown), &site.uma).await.assert_error(404, "not_found");
    workers.stop().await;
}

/// The approval that would start a pending skip-stage checks the
/// environment again: a freeze that began after the request, or a drift,
/// refuses it and records nothing; once lifted the same approval starts it.
#[tokio::test]
async fn the_last_approval_never_starts_a_deploy_into_a_freeze_or_a_drift() {
    let site = Site::open().await;
    let workers = Workers::start(&site.s);
    let (r1, _) = site.published("replicas 2", "replicas: 2\n").await;
    site.deployed("dev", &r1).await;
    let r = site.deploy("prod", json!({ "release_id": r1, "is_skip_stage": true })).await;
    r.assert_status(201);
    let dep = r.data()[0]["deployment"]["id"].as_str().unwrap().to_owned();
    let approve = format!("/deployments/{dep}/approve");
    site.send("POST", &site.rita, &approve, None).await.assert_status(200);

    // A freeze began after the request.
    let windows = format!("/environments/{}/freeze-windows", site.env("prod"));
    let now = chrono::Utc::now();
    let one_off = json!({
        "schedule": { "kind": "one_off", "starts_at": now - chrono::TimeDelta::hours(1), "ends_at": now + chrono::TimeDelta::hours(1) },
        "reason": "quarter close",
    });
    let r = site.send("POST", &site.admin, &windows, Some(one_off)).await;
    r.assert_status(201);
    let window = r.data()["id"].as_str().unwrap().to_owned();
    let audit = site.s.audit_total(&site.admin, &site.app).await;
    let r = site.send("POST", &site.rob, &approve, None).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "frozen");
    let d = site.get(&format!("/deployments/{dep}")).await;
    assert_eq!((&d["state"], d["approvals"].as_array().unwrap().len()), (&json!("pending"), 1), "{d}");
    assert_eq!(site.s.audit_total(&site.admin, &site.app).await, audit, "the refusal recorded nothing");
    site.send("DELETE", &site.admin, &format!("/freeze-windows/{window}"), None).await.assert_status(200);

    let r = site.send("POST", &site.rob, &approve, None).await;
    r.assert_status(200);
    assert!(r.data()[0]["job"]["id"].is_string(), "the same approval starts it now: {}", r.body);
    let d = site.finished(&dep).await;
    assert_eq!(d["state"], "succeeded", "{d}");

    // qa runs r1 (a baseline); r2 to qa skips dev: pending. qa drifts
    // before the second approval.
    let r = site.send("POST", &site.cm, &format!("/environments/{}/promote", site.env("qa")), Some(json!({}))).await;
    r.assert_status(201);
    site.finished(r.data()["deployment"]["id"].as_str().unwrap()).await;
    let (r2, _) = site.published("replicas 3", "replicas: 3\n").await;
    let r = site.deploy("qa", json!({ "release_id": r2, "is_skip_stage": true })).await;
    r.assert_status(201);
    let dep = r.data()[0]["deployment"]["id"].as_str().unwrap().to_owned();
    let approve = format!("/deployments/{dep}/approve");
    site.send("POST", &site.rita, &approve, None).await.assert_status(200);
    site.set_log_level("qa", "debug").await;
    let r = site.send("POST", &site.rob, &approve, None).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.reason(), "drifted");
    assert_eq!(site.get(&format!("/deployments/{dep}")).await["approvals"].as_array().unwrap().len(), 1);
    let r = site.send("POST", &site.cm, &format!("/environments/{}/drift-check", site.env("qa")), None).await;
    r.assert_status(201);
    site.wait(|| async { site.status("qa").await["drift"].is_null() }).await;
    site.send("POST", &site.rob, &approve, None).await.assert_status(200);
    assert_eq!(site.finished(&dep).await["state"], "succeeded");
    workers.stop().await;
}
