//! Runtime profiles, environments and changeset profile overrides over HTTP
//! (SPEC §2.5, §2.6, §3, §7): an admin defines dev/qa/prod profiles with
//! typed vars and secrets, orders them into environments (prod canonical), a
//! reviewer sees only masks, the admin reveals one secret (audited without
//! the value), patch and revert make revisions 2 and 3; a changeset with an
//! override on prod passes a submit gate that checks the resolved values,
//! lists the override in the submit answer and needs 2 approvals. Every
//! refusal is checked to change nothing, and no secret plaintext is ever in
//! a GET answer, the audit log or a job log.

mod common;

use std::time::Duration;

use common::{Reply, TestServer, Workers};
use conman_core::ports::SecretCipher as _;
use serde_json::{json, Value};

const PROD_TOKEN: &str = "prod-api-token-9876543210";
const PROD_DB: &str = "hunter2x";
const DEV_TOKEN: &str = "dev-api-token-1234567";
const QA_TOKEN: &str = "qa-api-token-7654321";
const PATCHED_TOKEN: &str = "patched-token-5555555";
const OVERRIDE_TOKEN: &str = "s3cret-override";
/// Every plaintext the tests send; none may ever come back (but the reveal).
const PLAINTEXTS: &[&str] = &[PROD_TOKEN, PROD_DB, DEV_TOKEN, QA_TOKEN, PATCHED_TOKEN, OVERRIDE_TOKEN];

/// The SPEC §2.6 mask: up to 8 characters → only the last 4; longer → first 4 and last 4.
fn spec_mask(v: &str) -> String {
    let c: Vec<char> = v.chars().collect();
    if c.len() <= 8 {
        format!(
            "{}{}",
            "*".repeat(c.len().saturating_sub(4).max(4)),
            c[c.len().saturating_sub(4)..].iter().collect::<String>()
        )
    } else {
        format!("{}****{}", c[..4].iter().collect::<String>(), c[c.len() - 4..].iter().collect::<String>())
    }
}

#[track_caller]
fn assert_no_plaintext(what: &str, text: &str) {
    for p in PLAINTEXTS {
        assert!(!text.contains(p), "{what} contains a secret plaintext: {text}");
    }
}

fn profile_body(name: &str, replicas: u32, token: &str) -> Value {
    json!({
        "name": name,
        "kind": "persistent_env",
        "base_url": format!("https://{name}.example.com"),
        "env_vars": {
            "LOG_LEVEL": {"type": "string", "value": "warn"},
            "REPLICAS": {"type": "number", "value": replicas},
            "FEATURE_X": {"type": "boolean", "value": true},
            "LIMITS": {"type": "json", "value": {"cpu": "2", "mem": [1, 2]}}
        },
        "secrets": {"API_TOKEN": token},
        "lifecycle": {"idle_ttl_hours": 48}
    })
}

/// An app with an admin (the operator), a reviewer pair, a config manager,
/// a plain-user author and the author's workspace.
struct Team {
    s: TestServer,
    admin: String,
    app: String,
    author: String,
    rita: String,
    rob: String,
    cm: String,
    ws: String,
}

async fn team() -> Team {
    // The submit gate below is the app's own.
    let s = TestServer::start_with(|s| s.allow_app_gate_commands = true).await;
    let admin = s.admin_token.clone();
    let app = s.create_app(&admin, "shop").await;
    s.write_upstream(&app, "main", "config/app.yaml", b"replicas: 2\n").await;
    let author = s.invite_and_accept(&admin, &app, "dana@example.com", "user").await;
    let rita = s.invite_and_accept(&admin, &app, "rita@example.com", "reviewer").await;
    let rob = s.invite_and_accept(&admin, &app, "rob@example.com", "reviewer").await;
    let cm = s.invite_and_accept(&admin, &app, "carl@example.com", "config_manager").await;
    let ws = s.default_workspace(&author, &app).await;
    Team { s, admin, app, author, rita, rob, cm, ws }
}

impl Team {
    fn path(&self, tail: &str) -> String {
        format!("/api/apps/{}{tail}", self.app)
    }

    async fn send(&self, method: &str, token: &str, tail: &str, body: Option<Value>) -> Reply {
        self.s.req(method, &self.path(tail), Some(token), body).await
    }

    async fn create_profile(&self, body: Value) -> Value {
        let r = self.send("POST", &self.admin, "/runtime-profiles", Some(body)).await;
        r.assert_status(201);
        assert_no_plaintext("create answer", &r.text);
        r.data().clone()
    }

    async fn profile(&self, id: &str) -> Value {
        let r = self.s.get(&self.path(&format!("/runtime-profiles/{id}")), &self.admin).await;
        r.assert_status(200);
        r.data().clone()
    }

    /// What a refused request must not change: the audit chain and the
    /// profile's revision and document.
    async fn snapshot(&self, profile: &str) -> (u64, Value) {
        (self.s.chain_len().await, self.profile(profile).await)
    }

    async fn environments(&self) -> Value {
        let r = self.s.get(&self.path("/environments"), &self.admin).await;
        r.assert_status(200);
        r.data().clone()
    }

    /// Three profiles and the environments dev → qa → prod (canonical).
    async fn setup(&self) -> (String, String, String) {
        let dev = self.create_profile(profile_body("dev", 1, DEV_TOKEN)).await["id"].as_str().unwrap().to_owned();
        let qa = self.create_profile(profile_body("qa", 2, QA_TOKEN)).await["id"].as_str().unwrap().to_owned();
        let mut prod_body = profile_body("prod", 3, PROD_TOKEN);
        prod_body["secrets"]["DB_PASS"] = json!(PROD_DB);
        let prod = self.create_profile(prod_body).await["id"].as_str().unwrap().to_owned();
        let r = self
            .send(
                "PATCH",
                &self.admin,
                "/environments",
                Some(json!({"environments": [
                    {"name": "dev", "position": 0, "is_canonical": false, "runtime_profile_id": dev},
                    {"name": "qa", "position": 1, "is_canonical": false, "runtime_profile_id": qa},
                    {"name": "prod", "position": 2, "is_canonical": true, "runtime_profile_id": prod},
                ]})),
            )
            .await;
        r.assert_status(200);
        (dev, qa, prod)
    }

    /// Every GET answer a reader can see, concatenated.
    async fn all_reads(&self, profiles: &[&str], cs: Option<&str>, job: Option<&str>) -> String {
        let mut paths = vec![
            "/runtime-profiles?limit=100".to_owned(),
            "/environments".to_owned(),
            "/audit?limit=100".to_owned(),
            "/audit?limit=100&page=2".to_owned(),
            "/jobs?limit=100".to_owned(),
        ];
        for p in profiles {
            paths.push(format!("/runtime-profiles/{p}"));
            paths.push(format!("/runtime-profiles/{p}/revisions?limit=100"));
        }
        if let Some(cs) = cs {
            paths.push(format!("/changesets/{cs}"));
            paths.push(format!("/changesets/{cs}/profile-overrides"));
        }
        if let Some(job) = job {
            paths.push(format!("/jobs/{job}"));
            paths.push(format!("/jobs/{job}/logs?limit=1000"));
        }
        let mut all = String::new();
        for p in paths {
            let r = self.s.get(&self.path(&p), &self.admin).await;
            r.assert_status(200);
            all.push_str(&r.text);
        }
        all
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_environments_reveal_revisions_and_an_override_through_the_submit_gate() {
    let t = team().await;
    let s = &t.s;
    let (dev, qa, prod) = t.setup().await;

    // Typed values come back typed; environments are ordered, prod canonical.
    let p = t.profile(&prod).await;
    assert_eq!(p["kind"], "persistent_env");
    assert_eq!(p["revision"], 1);
    assert_eq!(p["env_vars"]["LOG_LEVEL"], json!({"type": "string", "value": "warn"}));
    assert_eq!(p["env_vars"]["REPLICAS"], json!({"type": "number", "value": 3}));
    assert_eq!(p["env_vars"]["FEATURE_X"], json!({"type": "boolean", "value": true}));
    assert_eq!(p["env_vars"]["LIMITS"], json!({"type": "json", "value": {"cpu": "2", "mem": [1, 2]}}));
    assert_eq!(p["lifecycle"]["idle_ttl_hours"], 48);
    assert_eq!(p["lifecycle"]["grace_hours"], 1);
    let envs = t.environments().await;
    let names: Vec<&str> = envs.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev", "qa", "prod"]);
    assert_eq!(envs[2]["is_canonical"], true);
    assert_eq!(envs[2]["runtime_profile_id"], prod.as_str());
    assert_eq!(envs[0]["runtime_profile_id"], dev.as_str());
    let list = s.get(&t.path("/runtime-profiles"), &t.rita).await;
    list.assert_status(200);
    assert_eq!(list.body["pagination"]["total"], 3);

    // A reviewer sees masks only (SPEC §2.6), and cannot reveal.
    let r = s.get(&t.path(&format!("/runtime-profiles/{prod}")), &t.rita).await;
    r.assert_status(200);
    assert_no_plaintext("reviewer's read", &r.text);
    assert_eq!(r.data()["masked_secrets"]["API_TOKEN"]["mask"], spec_mask(PROD_TOKEN));
    assert_eq!(r.data()["masked_secrets"]["API_TOKEN"]["mask"], "prod****3210");
    assert_eq!(r.data()["masked_secrets"]["DB_PASS"]["mask"], spec_mask(PROD_DB));
    assert_eq!(r.data()["masked_secrets"]["DB_PASS"]["mask"], "****er2x");
    assert_eq!(r.data()["secrets"]["API_TOKEN"]["revision"], 1);
    let before = t.snapshot(&prod).await;
    for token in [&t.rita, &t.cm, &t.author] {
        t.send("POST", token, &format!("/runtime-profiles/{prod}/secrets/API_TOKEN/reveal"), None)
            .await
            .assert_error(403, "forbidden");
    }
    assert_eq!(t.snapshot(&prod).await, before, "refused reveals change nothing");

    // The admin reveals one; the audit entry names the key, never the value.
    let r = t.send("POST", &t.admin, &format!("/runtime-profiles/{prod}/secrets/API_TOKEN/reveal"), None).await;
    r.assert_status(200);
    assert_eq!(r.data(), &json!({"key": "API_TOKEN", "value": PROD_TOKEN}));
    t.send("POST", &t.admin, &format!("/runtime-profiles/{prod}/secrets/NOPE/reveal"), None)
        .await
        .assert_error(404, "not_found");
    let audit = s.get(&t.path("/audit?entity_type=runtime_profile&limit=100"), &t.admin).await;
    audit.assert_status(200);
    let revealed: Vec<&Value> =
        audit.data().as_array().unwrap().iter().filter(|e| e["action"] == "runtime_profile.secret_revealed").collect();
    assert_eq!(revealed.len(), 1, "{}", audit.text);
    assert_eq!(revealed[0]["entity_id"], prod.as_str());
    assert!(revealed[0].to_string().contains("API_TOKEN"));
    assert_no_plaintext("audit log", &audit.text);

    // Patch → revision 2; revert to 1 → revision 3 with revision 1's document.
    let r = t
        .send(
            "PATCH",
            &t.admin,
            &format!("/runtime-profiles/{prod}"),
            Some(json!({
                "set_env_vars": {"LOG_LEVEL": {"type": "string", "value": "debug"}},
                "unset_env_vars": ["FEATURE_X"],
                "set_secrets": {"API_TOKEN": PATCHED_TOKEN},
                "lifecycle": {"grace_hours": 2}
            })),
        )
        .await;
    r.assert_status(200);
    assert_no_plaintext("patch answer", &r.text);
    assert_eq!(r.data()["revision"], 2);
    assert_eq!(r.data()["env_vars"]["LOG_LEVEL"]["value"], "debug");
    assert!(r.data()["env_vars"].get("FEATURE_X").is_none());
    assert_eq!(r.data()["masked_secrets"]["API_TOKEN"]["mask"], spec_mask(PATCHED_TOKEN));
    assert_eq!(r.data()["masked_secrets"]["API_TOKEN"]["revision"], 2);
    let r = t.send("POST", &t.admin, &format!("/runtime-profiles/{prod}/revert"), Some(json!({"revision": 1}))).await;
    r.assert_status(200);
    assert_eq!(r.data()["revision"], 3);
    assert_eq!(r.data()["masked_secrets"]["API_TOKEN"]["mask"], spec_mask(PROD_TOKEN), "the old sealed value is back");
    let revs = s.get(&t.path(&format!("/runtime-profiles/{prod}/revisions")), &t.rita).await;
    revs.assert_status(200);
    assert_eq!(revs.body["pagination"]["total"], 3);
    let numbers: Vec<u64> = revs.data().as_array().unwrap().iter().map(|r| r["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [3, 2, 1], "newest first");
    assert_eq!(revs.data()[0]["document"], revs.data()[2]["document"]);
    assert_ne!(revs.data()[1]["document"], revs.data()[2]["document"]);
    assert_eq!(revs.data()[0]["reason"], json!({"type": "revert", "to_revision": 1}));
    assert_eq!(revs.data()[2]["reason"], json!({"type": "create"}));
    let paged = s.get(&t.path(&format!("/runtime-profiles/{prod}/revisions?limit=1&page=2")), &t.rita).await;
    assert_eq!(paged.data()[0]["number"], 2);
    let r = t.send("POST", &t.admin, &format!("/runtime-profiles/{prod}/secrets/API_TOKEN/reveal"), None).await;
    assert_eq!(r.data()["value"], PROD_TOKEN);

    // A changeset with an override on prod; its submit gate sees the values.
    let gate = r#"test "$REPLICAS" = 5 && test "$API_TOKEN" = "s3cret-""override" && test "$LOG_LEVEL" = warn && test "$DB_PASS" = "hunter""2x" && echo gate-ok"#;
    // The real values reach this gate only because the admin opts in.
    let settings = json!({"gates": {"submit": gate}, "unreviewed_gate_secrets": "real"});
    t.send("PATCH", &t.admin, "/settings", Some(settings)).await.assert_status(200);
    s.put_file(&t.author, &t.app, &t.ws, "config/app.yaml", b"replicas: 5\n").await.assert_status(200);
    let r = t.send("POST", &t.author, "/changesets", Some(json!({"workspace_id": t.ws, "title": "Scale prod"}))).await;
    r.assert_status(201);
    let cs = r.data()["id"].as_str().unwrap().to_owned();
    let overrides = json!({"profile_overrides": [{
        "target": {"environment": "prod"},
        "env_vars": {"REPLICAS": {"type": "number", "value": 5}},
        "secrets": {"API_TOKEN": OVERRIDE_TOKEN}
    }]});
    // Only the author edits them.
    let chain = s.chain_len().await;
    t.send("PUT", &t.rita, &format!("/changesets/{cs}/profile-overrides"), Some(overrides.clone()))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(s.chain_len().await, chain);
    let r = t.send("PUT", &t.author, &format!("/changesets/{cs}/profile-overrides"), Some(overrides.clone())).await;
    r.assert_status(200);
    assert_no_plaintext("override answer", &r.text);
    let expected = json!([{
        "target": {"environment": "prod"},
        "env_vars": {"REPLICAS": {"type": "number", "value": 5}},
        "secrets": ["API_TOKEN"]
    }]);
    assert_eq!(r.data()["profile_overrides"], expected);
    let r = s.get(&t.path(&format!("/changesets/{cs}/profile-overrides")), &t.rob).await;
    assert_eq!(r.data()["profile_overrides"], expected);

    let workers = Workers::start(s);
    let r = t.send("POST", &t.author, &format!("/changesets/{cs}/submit"), None).await;
    r.assert_status(200);
    assert_eq!(r.data()["included_profile_overrides"], expected);
    assert_no_plaintext("submit answer", &r.text);
    let job = r.data()["job"]["id"].as_str().unwrap().to_owned();
    let mut view = Value::Null;
    for _ in 0..1000 {
        view = s.get(&t.path(&format!("/changesets/{cs}")), &t.admin).await.data().clone();
        if view["state"] != "submitted" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    workers.stop().await;
    let logs = s.get(&t.path(&format!("/jobs/{job}/logs?limit=1000")), &t.admin).await;
    assert_eq!(view["state"], "in_review", "{view}\n{}", logs.text);
    let lines: Vec<&str> =
        logs.data()["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    let profile_line = lines.iter().find(|l| l.starts_with("runtime profile:")).expect("profile line");
    for name in ["REPLICAS", "LOG_LEVEL", "API_TOKEN", "DB_PASS"] {
        assert!(profile_line.contains(name), "{profile_line}");
    }
    assert!(lines.contains(&"gate-ok"), "{lines:?}");
    assert_no_plaintext("job log", &logs.text);
    // stricter_two_approvals (the default): an override on the canonical env needs 2.
    assert_eq!(view["approval"]["required"], 2, "{view}");
    t.send("POST", &t.rita, &format!("/changesets/{cs}/review"), Some(json!({"action": "approve"})))
        .await
        .assert_status(200);
    let view = s.get(&t.path(&format!("/changesets/{cs}")), &t.admin).await;
    assert_eq!(view.data()["state"], "in_review", "one approval is not enough");
    t.send("POST", &t.rob, &format!("/changesets/{cs}/review"), Some(json!({"action": "approve"})))
        .await
        .assert_status(200);
    let view = s.get(&t.path(&format!("/changesets/{cs}")), &t.admin).await;
    assert_eq!(view.data()["state"], "approved");

    // Overrides of a non-draft changeset are frozen.
    let chain = s.chain_len().await;
    t.send("PUT", &t.author, &format!("/changesets/{cs}/profile-overrides"), Some(json!({"profile_overrides": []})))
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(s.chain_len().await, chain);
    let r = s.get(&t.path(&format!("/changesets/{cs}/profile-overrides")), &t.admin).await;
    assert_eq!(r.data()["profile_overrides"], expected);

    // No plaintext anywhere a reader looks.
    let all = t.all_reads(&[&dev, &qa, &prod], Some(&cs), Some(&job)).await;
    assert_no_plaintext("GET answers", &all);
    assert!(all.contains("API_TOKEN") && all.contains("prod****3210"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_profile_input_is_refused_and_changes_nothing() {
    let t = team().await;
    let (_dev, _qa, prod) = t.setup().await;
    let before = t.snapshot(&prod).await;
    let profiles_before = t.s.get(&t.path("/runtime-profiles"), &t.admin).await.body["pagination"]["total"].clone();

    let mut unknown_top = profile_body("stage", 1, "stage-token-123456");
    unknown_top["colour"] = json!("red");
    let mut unknown_nested = profile_body("stage", 1, "stage-token-123456");
    unknown_nested["lifecycle"]["bogus"] = json!(1);
    let mut unknown_in_value = profile_body("stage", 1, "stage-token-123456");
    unknown_in_value["env_vars"]["REPLICAS"]["unit"] = json!("pods");
    let mut unknown_db = profile_body("stage", 1, "stage-token-123456");
    unknown_db["database"] = json!({"engine": "postgres", "password": "x"});
    let mut wrong_type = profile_body("stage", 1, "stage-token-123456");
    wrong_type["env_vars"]["REPLICAS"] = json!({"type": "number", "value": "abc"});
    let mut nan = profile_body("stage", 1, "stage-token-123456");
    nan["env_vars"]["REPLICAS"] = json!({"type": "number", "value": "NaN"});
    let mut inf = profile_body("stage", 1, "stage-token-123456");
    inf["env_vars"]["REPLICAS"] = json!({"type": "number", "value": "Infinity"});
    let mut bool_as_string = profile_body("stage", 1, "stage-token-123456");
    bool_as_string["env_vars"]["FEATURE_X"] = json!({"type": "boolean", "value": "yes"});
    let mut bad_kind = profile_body("stage", 1, "stage-token-123456");
    bad_kind["kind"] = json!("permanent");
    for (what, body) in [
        ("unknown top-level field", unknown_top),
        ("unknown nested field", unknown_nested),
        ("unknown field in a typed value", unknown_in_value),
        ("unknown database field", unknown_db),
        ("number given as text", wrong_type),
        ("NaN", nan),
        ("Infinity", inf),
        ("boolean given as text", bool_as_string),
        ("unknown kind", bad_kind),
    ] {
        let r = t.send("POST", &t.admin, "/runtime-profiles", Some(body)).await;
        r.assert_error(400, "validation_error");
        assert_no_plaintext(what, &r.text);
        assert!(!r.text.contains("stage-token-123456"), "{what}: {}", r.text);
    }
    // Creating is for app admins.
    t.send("POST", &t.cm, "/runtime-profiles", Some(profile_body("stage", 1, "stage-token-123456")))
        .await
        .assert_error(403, "forbidden");

    let patch_path = format!("/runtime-profiles/{prod}");
    let type_change = t
        .send(
            "PATCH",
            &t.admin,
            &patch_path,
            Some(json!({"set_env_vars": {"REPLICAS": {"type": "string", "value": "5"}}})),
        )
        .await;
    type_change.assert_error(400, "validation_error");
    assert_eq!(type_change.reason(), "type_change", "{}", type_change.text);
    for (what, body) in [
        ("unknown top-level field", json!({"name": "prod2", "colour": "red"})),
        ("unknown nested field", json!({"lifecycle": {"grace_hours": 2, "bogus": true}})),
        ("unknown database field", json!({"database": {"nope": 1}})),
        ("number given as text", json!({"set_env_vars": {"REPLICAS": {"type": "number", "value": "abc"}}})),
        ("NaN", json!({"set_env_vars": {"REPLICAS": {"type": "number", "value": "NaN"}}})),
        ("Infinity", json!({"set_env_vars": {"REPLICAS": {"type": "number", "value": "Infinity"}}})),
        ("unset of an unknown key", json!({"unset_env_vars": ["NOPE"]})),
        ("empty patch", json!({})),
        ("kind is not writable", json!({"kind": "temp_workspace"})),
    ] {
        let r = t.send("PATCH", &t.admin, &patch_path, Some(body)).await;
        r.assert_error(400, "validation_error");
        let _ = what;
    }
    t.send("PATCH", &t.cm, &patch_path, Some(json!({"set_secrets": {"API_TOKEN": "cm-attempt-123456789"}})))
        .await
        .assert_error(403, "forbidden");
    t.send("POST", &t.cm, &format!("{patch_path}/revert"), Some(json!({"revision": 1})))
        .await
        .assert_error(403, "forbidden");
    t.send("POST", &t.admin, &format!("{patch_path}/revert"), Some(json!({"revision": 1})))
        .await
        .assert_error(400, "validation_error");
    t.send("POST", &t.admin, &format!("{patch_path}/revert"), Some(json!({"revision": 1, "x": 1})))
        .await
        .assert_error(400, "validation_error");
    t.send("GET", &t.admin, "/runtime-profiles/not-a-uuid", None).await.assert_error(400, "validation_error");
    assert_eq!(t.snapshot(&prod).await, before, "refused profile writes change nothing");
    let profiles_after = t.s.get(&t.path("/runtime-profiles"), &t.admin).await.body["pagination"]["total"].clone();
    assert_eq!(profiles_after, profiles_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_environment_lists_and_overrides_are_refused_and_change_nothing() {
    let t = team().await;
    let s = &t.s;
    let (dev, qa, prod) = t.setup().await;
    let other_app = s.create_app(&t.admin, "billing").await;
    let r = s
        .req(
            "POST",
            &format!("/api/apps/{other_app}/runtime-profiles"),
            Some(&t.admin),
            Some(profile_body("prod", 1, "other-app-token-123456")),
        )
        .await;
    r.assert_status(201);
    let foreign = r.data()["id"].as_str().unwrap().to_owned();

    let chain = s.chain_len().await;
    let envs = t.environments().await;
    let env = |name: &str, pos: u32, canonical: bool, profile: &str| json!({"name": name, "position": pos, "is_canonical": canonical, "runtime_profile_id": profile});
    for (what, list, reason) in [
        ("two canonical", json!([env("dev", 0, true, &dev), env("prod", 1, true, &prod)]), "canonical_count"),
        ("no canonical", json!([env("dev", 0, false, &dev), env("prod", 1, false, &prod)]), "canonical_count"),
        ("duplicate names", json!([env("dev", 0, false, &dev), env("dev", 1, true, &qa)]), "duplicate_name"),
        ("duplicate positions", json!([env("dev", 0, false, &dev), env("prod", 0, true, &prod)]), "duplicate_position"),
        (
            "another app's profile",
            json!([env("dev", 0, false, &dev), env("prod", 1, true, &foreign)]),
            "unknown_profile",
        ),
        ("bad name", json!([env("Prod", 0, true, &prod)]), "invalid_format"),
    ] {
        let r = t.send("PATCH", &t.admin, "/environments", Some(json!({"environments": list}))).await;
        r.assert_error(400, "validation_error");
        assert_eq!(r.reason(), reason, "{what}: {}", r.text);
    }
    for body in [
        json!({"environments": [env("prod", 0, true, &prod)], "extra": 1}),
        json!({"environments": [{"name": "prod", "position": 0, "is_canonical": true, "colour": "red"}]}),
        json!([env("prod", 0, true, &prod)]),
    ] {
        t.send("PATCH", &t.admin, "/environments", Some(body)).await.assert_error(400, "validation_error");
    }
    t.send("PATCH", &t.cm, "/environments", Some(json!({"environments": [env("prod", 0, true, &prod)]})))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(s.chain_len().await, chain, "refused environment lists change nothing");
    assert_eq!(t.environments().await, envs);

    // Overrides: bad shapes and values on a draft changeset.
    s.put_file(&t.author, &t.app, &t.ws, "config/app.yaml", b"replicas: 9\n").await.assert_status(200);
    let r =
        t.send("POST", &t.author, "/changesets", Some(json!({"workspace_id": t.ws, "title": "Bad overrides"}))).await;
    r.assert_status(201);
    let cs = r.data()["id"].as_str().unwrap().to_owned();
    let path = format!("/changesets/{cs}/profile-overrides");
    let chain = s.chain_len().await;
    let one = |o: Value| json!({"profile_overrides": [o]});
    for (what, body) in [
        (
            "bare list",
            json!([{"target": {"environment": "prod"}, "env_vars": {"REPLICAS": {"type": "number", "value": 5}}}]),
        ),
        ("unknown top-level field", json!({"profile_overrides": [], "extra": true})),
        ("unknown override field", one(json!({"target": {"environment": "prod"}, "env_vars": {}, "note": "x"}))),
        ("unknown target kind", one(json!({"target": {"cluster": "prod"}, "secrets": {"A": "override-secret-1"}}))),
        (
            "wrong type",
            one(
                json!({"target": {"environment": "prod"}, "env_vars": {"REPLICAS": {"type": "number", "value": "abc"}}}),
            ),
        ),
        (
            "NaN",
            one(
                json!({"target": {"environment": "prod"}, "env_vars": {"REPLICAS": {"type": "number", "value": "NaN"}}}),
            ),
        ),
        (
            "type change",
            one(json!({"target": {"environment": "prod"}, "env_vars": {"REPLICAS": {"type": "string", "value": "5"}}})),
        ),
        ("empty override", one(json!({"target": {"environment": "prod"}}))),
        (
            "unknown environment",
            one(json!({"target": {"environment": "staging"}, "secrets": {"API_TOKEN": "override-secret-1"}})),
        ),
        (
            "two overrides on one target",
            json!({"profile_overrides": [
                {"target": {"environment": "prod"}, "env_vars": {"REPLICAS": {"type": "number", "value": 5}}},
                {"target": {"profile_id": prod}, "secrets": {"API_TOKEN": "override-secret-1"}}
            ]}),
        ),
    ] {
        let r = t.send("PUT", &t.author, &path, Some(body)).await;
        r.assert_error(400, "validation_error");
        assert!(!r.text.contains("override-secret-1"), "{what}: {}", r.text);
    }
    let r = t
        .send(
            "PUT",
            &t.author,
            &path,
            Some(one(
                json!({"target": {"environment": "prod"}, "env_vars": {"REPLICAS": {"type": "string", "value": "5"}}}),
            )),
        )
        .await;
    assert_eq!(r.reason(), "type_change", "{}", r.text);
    assert_eq!(s.chain_len().await, chain, "refused overrides change nothing");
    let r = s.get(&t.path(&path), &t.author).await;
    assert_eq!(r.data()["profile_overrides"], json!([]));
}

/// SPEC §7 `POST .../submit {profile_overrides?}`: the body replaces the
/// draft's overrides and they are frozen with revision 1 in the submit's
/// own transaction; overrides the submit refuses refuse the whole submit
/// and change nothing; resubmit takes none (a submitted changeset's
/// overrides are frozen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_takes_profile_overrides_and_freezes_them_with_the_revision() {
    let t = team().await;
    let s = &t.s;
    t.setup().await;
    s.put_file(&t.author, &t.app, &t.ws, "config/app.yaml", b"replicas: 5\n").await.assert_status(200);
    let r = t.send("POST", &t.author, "/changesets", Some(json!({"workspace_id": t.ws, "title": "Scale prod"}))).await;
    r.assert_status(201);
    let cs = r.data()["id"].as_str().unwrap().to_owned();
    let (submit, overrides_path) = (format!("/changesets/{cs}/submit"), format!("/changesets/{cs}/profile-overrides"));
    // Overrides set beforehand with PUT (kept as an endpoint) ...
    let earlier = json!({"profile_overrides": [
        {"target": {"environment": "qa"}, "env_vars": {"REPLICAS": {"type": "number", "value": 3}}}
    ]});
    t.send("PUT", &t.author, &overrides_path, Some(earlier)).await.assert_status(200);
    let earlier_stored = s.get(&t.path(&overrides_path), &t.author).await.data()["profile_overrides"].clone();

    // ... survive a submit whose overrides are refused: nothing changes.
    let chain = s.chain_len().await;
    for (what, body, reason) in [
        (
            "type change",
            json!({"profile_overrides": [
                {"target": {"environment": "prod"}, "env_vars": {"REPLICAS": {"type": "string", "value": "5"}}}
            ]}),
            Some("type_change"),
        ),
        (
            "unknown environment",
            json!({"profile_overrides": [{"target": {"environment": "staging"}, "secrets": {"API_TOKEN": OVERRIDE_TOKEN}}]}),
            None,
        ),
        ("unknown field", json!({"profile_overrides": [], "extra": true}), None),
        ("not a list", json!({"profile_overrides": {"target": {"environment": "prod"}}}), None),
    ] {
        let r = t.send("POST", &t.author, &submit, Some(body)).await;
        r.assert_error(400, "validation_error");
        if let Some(reason) = reason {
            assert_eq!(r.reason(), reason, "{what}: {}", r.text);
        }
        assert_no_plaintext(what, &r.text);
    }
    t.send("POST", &t.rita, &submit, Some(json!({"profile_overrides": []}))).await.assert_error(403, "forbidden");
    assert_eq!(s.chain_len().await, chain, "refused submits change nothing");
    let view = s.get(&t.path(&format!("/changesets/{cs}")), &t.author).await;
    assert_eq!((view.data()["state"].as_str(), view.data()["revision"].as_u64()), (Some("draft"), Some(0)));
    assert_eq!(s.get(&t.path(&overrides_path), &t.author).await.data()["profile_overrides"], earlier_stored);

    // Accepted: the submit's list replaces the earlier one and is frozen.
    let body = json!({"profile_overrides": [{
        "target": {"environment": "prod"},
        "env_vars": {"REPLICAS": {"type": "number", "value": 5}},
        "secrets": {"API_TOKEN": OVERRIDE_TOKEN}
    }]});
    let r = t.send("POST", &t.author, &submit, Some(body.clone())).await;
    r.assert_status(200);
    assert_no_plaintext("submit answer", &r.text);
    let expected = json!([{
        "target": {"environment": "prod"},
        "env_vars": {"REPLICAS": {"type": "number", "value": 5}},
        "secrets": ["API_TOKEN"]
    }]);
    assert_eq!(r.data()["included_profile_overrides"], expected);
    assert_eq!(
        (r.data()["changeset"]["state"].as_str(), r.data()["revision"]["number"].as_u64()),
        (Some("submitted"), Some(1))
    );
    assert_eq!(s.get(&t.path(&overrides_path), &t.rob).await.data()["profile_overrides"], expected);
    let audit = s.get(&t.path(&format!("/audit?entity_type=changeset&entity_id={cs}&limit=100")), &t.admin).await;
    let mut actions: Vec<&str> =
        audit.data().as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "changeset.created",
            "changeset.profile_overrides_set",
            "changeset.profile_overrides_set",
            "changeset.submitted"
        ],
        "{}",
        audit.text
    );

    // Frozen now: neither a second submit nor a resubmit takes overrides.
    let chain = s.chain_len().await;
    t.send("POST", &t.author, &submit, Some(json!({"profile_overrides": []})))
        .await
        .assert_error(409, "invalid_transition");
    t.send("POST", &t.author, &format!("/changesets/{cs}/resubmit"), Some(json!({"profile_overrides": []})))
        .await
        .assert_error(400, "validation_error");
    assert_eq!(s.chain_len().await, chain);
    assert_eq!(s.get(&t.path(&overrides_path), &t.author).await.data()["profile_overrides"], expected);
}

/// An envelope cipher of a 64-hex key.
fn cipher(hex_key: &str) -> conman_core::ports::EnvelopeCipher {
    let bytes: [u8; 32] = hex::decode(hex_key).expect("hex").try_into().expect("32 bytes");
    conman_core::ports::EnvelopeCipher::new(bytes)
}

/// The done-means rotation through the API: an operator rotates the master
/// key; this server switches at once and every secret still opens; the
/// rotation is audited without any key; non-operators and malformed keys
/// are refused and change nothing.
#[tokio::test]
async fn an_operator_rotates_the_master_key_over_http_and_secrets_still_open() {
    let t = team().await;
    let (_, _, prod) = t.setup().await;
    let chain = t.s.chain_len().await;
    let new_key = "ab".repeat(32);
    let r = t.s.req("POST", "/api/admin/secrets/rotate", Some(&t.rita), Some(json!({"new_master_key": new_key}))).await;
    r.assert_error(403, "forbidden");
    for bad in ["abc", &"zz".repeat(32), ""] {
        let r =
            t.s.req("POST", "/api/admin/secrets/rotate", Some(&t.admin), Some(json!({"new_master_key": bad}))).await;
        r.assert_error(400, "validation_error");
    }
    let r = t.s.req("POST", "/api/admin/secrets/rotate", Some(&t.admin), Some(json!({"extra": 1}))).await;
    r.assert_error(400, "validation_error");
    assert_eq!(t.s.chain_len().await, chain, "refused rotations change nothing");

    let old_key = std::fs::read_to_string(t.s.dir.path().join("master.key")).expect("generated key file");
    let old_cipher = cipher(old_key.trim());
    let r =
        t.s.req("POST", "/api/admin/secrets/rotate", Some(&t.admin), Some(json!({"new_master_key": new_key}))).await;
    r.assert_status(200);
    // Every stored secret opens with the new key, and none with the old key alone.
    let new_cipher = cipher(&new_key);
    let stored = t.s.conman.ports().store.all_secrets(None, 1000).await.expect("secrets");
    assert_eq!(stored.len(), 4);
    for secret in &stored {
        let binding = conman_core::services::secret_binding(secret);
        assert!(new_cipher.open(&secret.sealed, &binding).is_ok(), "{} opens with the new key", secret.name);
        assert!(old_cipher.open(&secret.sealed, &binding).is_err(), "{} no longer opens with the old key", secret.name);
    }
    assert_eq!(r.data()["rewrapped"], 4, "dev, qa and two prod secrets: {}", r.text);
    assert_ne!(r.data()["from_key_id"], r.data()["to_key_id"]);
    assert!(!r.text.contains(&new_key), "the answer never echoes the key");
    let reveal = t.send("POST", &t.admin, &format!("/runtime-profiles/{prod}/secrets/DB_PASS/reveal"), None).await;
    reveal.assert_status(200);
    assert_eq!(reveal.data()["value"], PROD_DB, "the server opens secrets with the new key at once");
    let shown = t.profile(&prod).await;
    assert_eq!(shown["masked_secrets"]["API_TOKEN"]["mask"], spec_mask(PROD_TOKEN));
    let audit = t.s.get(&t.path("/audit?limit=100"), &t.admin).await;
    assert!(!audit.text.contains(&new_key), "the audit log never holds a key");
    // Rotating again to the same key is refused: it is the current one now.
    let r =
        t.s.req("POST", "/api/admin/secrets/rotate", Some(&t.admin), Some(json!({"new_master_key": new_key}))).await;
    r.assert_error(400, "validation_error");
}

/// The probe of issue 18 item 1: a plain `user` makes the submit gate's own
/// script print the secrets, plainly and encoded.
const LEAKING_SCRIPT: &str = r#"#!/bin/sh
echo "plain:$API_TOKEN:$DB_PASS"
printf %s "$API_TOKEN" | base64
printf 'x%s' "$DB_PASS$API_TOKEN" | base64
printf %s "$API_TOKEN" | od -An -tx1 | tr -d ' \n'; echo
echo "sees $(printf %s "$API_TOKEN" | wc -c) bytes"
"#;

use base64::Engine as _;

/// What [`LEAKING_SCRIPT`] would print if nothing were hidden.
fn leaked_forms(token: &str, db: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        token.to_owned(),
        db.to_owned(),
        b64.encode(token),
        b64.encode(format!("x{db}{token}")),
        token.bytes().map(|b| format!("{b:02x}")).collect(),
    ]
}

/// Fails when any 10-character piece of a leaked form is in `text`.
#[track_caller]
fn assert_nothing_leaked(what: &str, text: &str, forms: &[String]) {
    for form in forms {
        for window in form.as_bytes().windows(10) {
            let piece = std::str::from_utf8(window).unwrap();
            assert!(!text.contains(piece), "{what} holds {piece:?} of {form:?}:\n{text}");
        }
    }
}

/// Every byte of the installation's store files (SQLite and its WAL).
fn store_bytes(s: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["conman.db", "conman.db-wal"] {
        if let Ok(bytes) = std::fs::read(s.dir.path().join(name)) {
            all.extend(bytes);
        }
    }
    all
}

impl Team {
    /// The author writes the leaking script, the admin makes it the submit
    /// gate, the author submits; answers the job's log lines as the author
    /// reads them.
    async fn submit_leaking_gate(&self) -> Vec<String> {
        let s = &self.s;
        let settings = json!({"gates": {"submit": "sh scripts/validate.sh"}});
        self.send("PATCH", &self.admin, "/settings", Some(settings)).await.assert_status(200);
        s.put_file(&self.author, &self.app, &self.ws, "scripts/validate.sh", LEAKING_SCRIPT.as_bytes())
            .await
            .assert_status(200);
        let r = self
            .send("POST", &self.author, "/changesets", Some(json!({"workspace_id": self.ws, "title": "Validate"})))
            .await;
        r.assert_status(201);
        let cs = r.data()["id"].as_str().unwrap().to_owned();
        let workers = Workers::start(s);
        let r = self.send("POST", &self.author, &format!("/changesets/{cs}/submit"), None).await;
        r.assert_status(200);
        let job = r.data()["job"]["id"].as_str().unwrap().to_owned();
        let mut state = Value::Null;
        for _ in 0..2000 {
            state = s.get(&self.path(&format!("/jobs/{job}")), &self.author).await.data()["job"]["state"].clone();
            if state == "succeeded" || state == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        workers.stop().await;
        let logs = s.get(&self.path(&format!("/jobs/{job}/logs?limit=1000")), &self.author).await;
        logs.assert_status(200);
        assert_eq!(state, "succeeded", "{}", logs.text);
        logs.data()["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap().to_owned()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_submit_gate_gets_placeholder_secrets_by_default() {
    let t = team().await;
    t.setup().await;
    let lines = t.submit_leaking_gate().await;
    let text = lines.join("\n");
    // The script ran, with the names present and placeholder values.
    assert!(lines.iter().any(|l| l == "plain:conman-placeholder-secret:conman-placeholder-secret"), "{text}");
    let profile_line = lines.iter().find(|l| l.starts_with("runtime profile:")).expect("profile line");
    assert!(profile_line.contains("API_TOKEN") && profile_line.contains("placeholder values"), "{profile_line}");
    let forms = leaked_forms(PROD_TOKEN, PROD_DB);
    assert_nothing_leaked("the job log", &text, &forms);
    let stored = String::from_utf8_lossy(&store_bytes(&t.s)).into_owned();
    assert_nothing_leaked("the store files", &stored, &forms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_secrets_of_an_opted_in_app_are_masked_in_every_form_before_they_are_stored() {
    let t = team().await;
    t.setup().await;
    // Only an app_admin opts in.
    let chain = t.s.chain_len().await;
    for token in [&t.author, &t.cm, &t.rita] {
        t.send("PATCH", token, "/settings", Some(json!({"unreviewed_gate_secrets": "real"})))
            .await
            .assert_error(403, "forbidden");
    }
    assert_eq!(t.s.chain_len().await, chain, "refused opt-ins change nothing");
    t.send("PATCH", &t.admin, "/settings", Some(json!({"unreviewed_gate_secrets": "bogus"})))
        .await
        .assert_error(400, "validation_error");
    let r = t.send("PATCH", &t.admin, "/settings", Some(json!({"unreviewed_gate_secrets": "real"}))).await;
    r.assert_status(200);
    assert_eq!(r.data()["settings"]["unreviewed_gate_secrets"], "real");

    let lines = t.submit_leaking_gate().await;
    let text = lines.join("\n");
    // The gate had the real values (their length shows), and the log hides them.
    assert!(lines.iter().any(|l| l == &format!("sees {} bytes", PROD_TOKEN.len())), "{text}");
    assert!(lines.iter().any(|l| l == "plain:***:***"), "{text}");
    let profile_line = lines.iter().find(|l| l.starts_with("runtime profile:")).expect("profile line");
    assert!(profile_line.contains("real values, masked"), "{profile_line}");
    let forms = leaked_forms(PROD_TOKEN, PROD_DB);
    assert_nothing_leaked("the job log", &text, &forms);
    let stored = String::from_utf8_lossy(&store_bytes(&t.s)).into_owned();
    assert_nothing_leaked("the store files", &stored, &forms);
}
