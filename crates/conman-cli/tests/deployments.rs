//! `conman deploy | promote | rollback | approve | deployments` and
//! `conman env status | drift-check | freeze` end to end through the real
//! binary on one SQLite installation, with a background `conman worker`
//! running the jobs: two releases shipped from the CLI; release 1 to dev
//! (`--follow` prints the deploy gate's log), promoted to qa; release 2 to
//! prod as a skip-stage that waits for two approvals (the requester's own
//! approval refused, a second approval by the same reviewer refused, the
//! second reviewer's `approve --follow` starts it); rollback of prod to
//! release 1, shown by `env status` and `deployments ls`; a freeze window
//! refuses a deploy until it is removed; an emergency profile edit drifts
//! prod, which refuses deploys naming the drifted key until `env
//! drift-check --follow` passes; bad input exits non-zero with a clear
//! message and changes nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::{bootstrap, create_user, fails, json, json_in, ok, Worker};
use serde_json::Value;

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const CY: &str = "cy@example.com";
const PASSWORD: &str = "correct horse battery staple";
const PROD_PROFILE: &str = r#"{
  "base_url": "https://shop.example.com",
  "env_vars": {"LOG_LEVEL": {"type": "string", "value": "warn"}},
  "secrets": {"API_TOKEN": "prod-token-0123456789"}
}"#;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v:#}")).to_owned()
}

/// Ships `content` as `config/app.yaml` in a published release: ada's
/// workspace, a changeset submitted (gate followed), approved by bob,
/// queued, selected, assembled and published. Answers the release id.
fn ship(dir: &Path, title: &str, content: &str) -> String {
    ok(dir, ADA, &["ws", "reset", "--app", "shop"]);
    ok(dir, ADA, &["ws", "put", "--app", "shop", "config/app.yaml", "--content", content]);
    let cs = id(&json(dir, ADA, &["cs", "new", "--app", "shop", "--title", title]));
    ok(dir, ADA, &["cs", "submit", "--app", "shop", &cs, "--follow"]);
    json(dir, BOB, &["cs", "review", "--app", "shop", &cs, "approve"]);
    json(dir, ADA, &["cs", "queue", "--app", "shop", &cs]);
    let rel = id(&json(dir, ADA, &["release", "new", "--app", "shop", "--title", title]));
    json(dir, ADA, &["release", "add", "--app", "shop", &rel, &cs]);
    assert_eq!(json(dir, ADA, &["release", "assemble", "--app", "shop", &rel])["state"], "validated");
    assert_eq!(json(dir, ADA, &["release", "publish", "--app", "shop", &rel])["state"], "published");
    rel
}

/// An RFC 3339 instant `offset` from now (`-1 hour`, `+1 hour`), by `date`.
fn instant(offset: &str) -> String {
    let out = Command::new("date").args(["-u", "-d", offset, "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn deployment_count(dir: &Path) -> usize {
    json(dir, ADA, &["deployments", "ls", "--app", "shop", "--limit", "100"]).as_array().unwrap().len()
}

#[test]
fn the_manual_path_from_dev_to_a_two_person_skip_stage_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ADA, PASSWORD);
    json(dir, ADA, &["app", "create", "shop"]);
    for user in [BOB, CY] {
        create_user(dir, ADA, user, PASSWORD);
        ok(dir, ADA, &["member", "add", "shop", user, "reviewer"]);
    }
    json_in(dir, ADA, &["profile", "new", "--app", "shop", "prodp", "--file", "-"], Some(PROD_PROFILE));
    let envs = dir.join("envs.json");
    std::fs::write(
        &envs,
        r#"[{"name": "dev", "position": 0, "is_canonical": false, "runtime_profile_id": null},
            {"name": "qa", "position": 1, "is_canonical": false, "runtime_profile_id": null},
            {"name": "prod", "position": 2, "is_canonical": true, "runtime_profile_id": "prodp"}]"#,
    )
    .unwrap();
    json(dir, ADA, &["env", "set", "--app", "shop", "--file", envs.to_str().unwrap()]);
    let _worker = Worker::start(dir, 2);
    let r1 = ship(dir, "Replicas 1", "replicas: 1\n");

    // Release 1 to dev, following its job's log; then promoted to qa.
    let out = common::run_as(dir, ADA, &["deploy", "--app", "shop", "--release", &r1, "dev", "--follow"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("deploy gate ok"), "--follow prints the job's log:\n{stderr}");
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("succeeded"), "{human}");
    let promoted = json(dir, ADA, &["promote", "--app", "shop", "qa", "--follow"]);
    assert_eq!((&promoted["state"], &promoted["kind"]), (&"succeeded".into(), &"promote".into()), "{promoted:#}");
    assert_eq!(promoted["release_id"], r1.as_str());

    // Refusals change nothing.
    let before = deployment_count(dir);
    let (code, stderr) = fails(dir, ADA, &["deploy", "--app", "shop", "--release", &r1, "staging"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no environment named staging"), "{stderr}");
    let (code, stderr) = fails(dir, ADA, &["promote", "--app", "shop", "dev"]);
    assert_eq!(code, 2, "nothing comes before the first stage: {stderr}");
    let (code, stderr) = fails(dir, BOB, &["deploy", "--app", "shop", "--release", &r1, "dev"]);
    assert_eq!(code, 3, "a reviewer may not deploy: {stderr}");
    let (code, stderr) = fails(dir, ADA, &["deploy", "--app", "shop", "--release", &r1, "prod", "--skip-stage"]);
    assert_eq!(code, 2, "qa runs release 1: no stage is skipped: {stderr}");
    assert!(stderr.contains("skips no stage"), "{stderr}");
    let (code, stderr) = fails(dir, ADA, &["deployments", "ls", "--app", "shop", "--state", "done"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unknown deployment state"), "{stderr}");
    assert_eq!(deployment_count(dir), before, "refused requests record nothing");

    // Release 2 straight to prod: a skip-stage waiting for two approvals.
    let r2 = ship(dir, "Replicas 2", "replicas: 2\n");
    ok(dir, ADA, &["deploy", "--app", "shop", "--release", &r2, "dev", "--follow"]);
    let (code, stderr) = fails(dir, ADA, &["deploy", "--app", "shop", "--release", &r2, "prod"]);
    assert_eq!(code, 2, "a skip-stage must be acknowledged: {stderr}");
    assert!(stderr.contains("is_skip_stage"), "{stderr}");
    let started = json(dir, ADA, &["deploy", "--app", "shop", "--release", &r2, "prod", "--skip-stage"]);
    let pending = &started[0]["deployment"];
    assert_eq!((&pending["state"], &pending["exception"]), (&"pending".into(), &"skip_stage".into()), "{started:#}");
    assert!(started[0]["job"].is_null(), "it waits for approvals: {started:#}");
    let dep = id(pending);
    let (code, stderr) = fails(dir, ADA, &["approve", "--app", "shop", &dep]);
    assert_eq!(code, 3, "the requester may not approve by default: {stderr}");
    let first = json(dir, BOB, &["approve", "--app", "shop", &dep]);
    assert_eq!(first[0]["deployment"]["approvals"].as_array().unwrap().len(), 1, "{first:#}");
    assert!(first[0]["job"].is_null(), "one approval starts nothing: {first:#}");
    let (code, stderr) = fails(dir, BOB, &["approve", "--app", "shop", &dep]);
    assert_eq!(code, 5, "the same approver twice: {stderr}");
    let done = json(dir, CY, &["approve", "--app", "shop", &dep, "--follow"]);
    assert_eq!(done[0]["state"], "succeeded", "the second approval starts it: {done:#}");
    let shown = ok(dir, ADA, &["deployments", "show", "--app", "shop", &dep]);
    assert!(shown.contains("approvals 2/2") && shown.contains("skip_stage"), "{shown}");

    // Rollback of prod to release 1.
    let rolled = json(dir, ADA, &["rollback", "--app", "shop", "prod", "--release", &r1, "--follow"]);
    assert_eq!((&rolled["state"], &rolled["kind"]), (&"succeeded".into(), &"redeploy_prior".into()), "{rolled:#}");
    let status = json(dir, BOB, &["env", "status", "--app", "shop", "prod"]);
    assert_eq!(status["current_release_id"], r1.as_str(), "{status:#}");
    assert_eq!(status["last_deployment"]["rolled_back_release_id"], r2.as_str(), "{status:#}");
    assert!(status["drift"].is_null() && status["freeze"].is_null(), "{status:#}");
    let human = ok(dir, BOB, &["env", "status", "--app", "shop", "prod"]);
    assert!(human.contains(&format!("rolled back release {r2}")), "{human}");
    let listed = json(dir, BOB, &["deployments", "ls", "--app", "shop", "--env", "prod"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");
    let (code, stderr) = fails(dir, ADA, &["deployments", "cancel", "--app", "shop", &dep]);
    assert_eq!(code, 5, "a finished deployment cannot be undone: {stderr}");

    // A freeze window refuses deploys until it is removed.
    let window = json(
        dir,
        ADA,
        &["env", "freeze", "add", "--app", "shop", "prod", "--reason", "quarter close"]
            .into_iter()
            .chain(["--from", &instant("-1 hour"), "--until", &instant("+1 hour")])
            .collect::<Vec<_>>(),
    );
    assert_eq!(json(dir, BOB, &["env", "status", "--app", "shop", "prod"])["freeze"]["id"], window["id"]);
    let before = deployment_count(dir);
    let (code, stderr) = fails(dir, ADA, &["promote", "--app", "shop", "prod"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("quarter close"), "the refusal says why: {stderr}");
    assert_eq!(deployment_count(dir), before);
    let (code, stderr) = fails(
        dir,
        ADA,
        &["env", "freeze", "add", "--app", "shop", "prod", "--reason", "x", "--weekly-from", "someday 16:00"]
            .into_iter()
            .chain(["--weekly-until", "monday 08:00", "--timezone", "Europe/Berlin"])
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 2, "{stderr}");
    let (code, stderr) = fails(
        dir,
        ADA,
        &["env", "freeze", "add", "--app", "shop", "prod", "--reason", "x", "--from", "yesterday", "--until", "later"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("freeze schedule is not valid"), "{stderr}");
    let weekly = json(
        dir,
        ADA,
        &["env", "freeze", "add", "--app", "shop", "qa", "--reason", "weekend", "--weekly-from", "fri 16:00"]
            .into_iter()
            .chain(["--weekly-until", "mon 08:00", "--timezone", "Europe/Berlin"])
            .collect::<Vec<_>>(),
    );
    assert_eq!(weekly["schedule"]["start_day"], "friday", "{weekly:#}");
    ok(dir, ADA, &["env", "freeze", "rm", "--app", "shop", &id(&window)]);
    assert_eq!(json(dir, BOB, &["env", "freeze", "ls", "--app", "shop", "prod"]), serde_json::json!([]));

    // An emergency profile edit drifts prod: deploys are refused, naming
    // the key, until a drift check passes.
    json(dir, ADA, &["profile", "edit", "--app", "shop", "prodp", "--set", "LOG_LEVEL=string:debug"]);
    let status = json(dir, BOB, &["env", "status", "--app", "shop", "prod"]);
    assert_eq!(status["drift"]["keys"], serde_json::json!(["env_vars.LOG_LEVEL"]), "{status:#}");
    let (code, stderr) = fails(dir, ADA, &["promote", "--app", "shop", "prod"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("env_vars.LOG_LEVEL") && !stderr.contains("debug"), "{stderr}");
    let checked = json(dir, ADA, &["env", "drift-check", "--app", "shop", "prod", "--follow"]);
    assert!(checked["drift"].is_null(), "the check passed: {checked:#}");
    let again = json(dir, ADA, &["promote", "--app", "shop", "prod", "--follow"]);
    assert_eq!(again["state"], "succeeded", "{again:#}");
    let (code, stderr) = fails(dir, ADA, &["env", "drift-fix", "--app", "shop", "prod"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("has not drifted"), "{stderr}");
    json(dir, ADA, &["profile", "edit", "--app", "shop", "prodp", "--set", "LOG_LEVEL=string:info"]);
    let fix = json(dir, ADA, &["env", "drift-fix", "--app", "shop", "prod"]);
    assert_eq!((&fix["title"], &fix["state"]), (&"Drift fix: prod".into(), &"draft".into()), "{fix:#}");

    // Release 2 runs on dev: reverted there as a new release.
    let reverted = json(dir, ADA, &["rollback", "--app", "shop", "dev", "--revert", "--follow"]);
    assert_eq!((&reverted["state"], &reverted["kind"]), (&"succeeded".into(), &"revert_and_release".into()));
    assert_eq!(reverted["rolled_back_release_id"], r2.as_str(), "{reverted:#}");
    let revert = json(dir, ADA, &["release", "show", "--app", "shop", reverted["release_id"].as_str().unwrap()]);
    assert_eq!(revert["reverts_release_id"], r2.as_str(), "{revert:#}");
}

/// SIGKILL of the worker while a deploy's gate runs: the deployment stays
/// `running` and holds its environment, nothing moved; after the lease
/// lapses another worker reclaims the job, runs the gate again and
/// completes the deploy — the environment ref, the deployment record and
/// the release state agree.
#[test]
fn a_deploy_whose_worker_is_killed_mid_gate_is_finished_by_another() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ADA, PASSWORD);
    json(dir, ADA, &["app", "create", "shop"]);
    create_user(dir, ADA, BOB, PASSWORD);
    ok(dir, ADA, &["member", "add", "shop", BOB, "reviewer"]);
    let envs = dir.join("envs.json");
    std::fs::write(&envs, r#"[{"name": "dev", "position": 0, "is_canonical": true, "runtime_profile_id": null}]"#)
        .unwrap();
    json(dir, ADA, &["env", "set", "--app", "shop", "--file", envs.to_str().unwrap()]);
    let rel = {
        let _worker = Worker::start(dir, 2);
        ship(dir, "Replicas 1", "replicas: 1\n")
    };
    // The first run of the deploy gate hangs; the one after the crash passes.
    let runs = dir.join("runs");
    let runs_path = runs.to_str().unwrap();
    // `exec`: the sleep keeps the shell's pid, so the test can end it alone.
    let gate =
        format!("echo $$ >> {runs_path}; if [ $(wc -l < {runs_path}) -eq 1 ]; then exec sleep 60; fi; echo gate ok");
    let env: &[(&str, &str)] =
        &[("CONMAN_GATE_DEPLOY_CMD", &gate), ("CONMAN_JOB_LEASE_SECS", "2"), ("CONMAN_GATE_SANDBOX", "none")];
    let first = Worker::start_with(dir, 1, env);
    let started = json(dir, ADA, &["deploy", "--app", "shop", "--release", &rel, "dev"]);
    let dep = id(&started[0]["deployment"]);
    let lines = || std::fs::read_to_string(&runs).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>();
    common::wait_until("the deploy gate started", || !lines().is_empty());
    assert_eq!(lines().len(), 1, "the gate started once");
    drop(first); // SIGKILL
                 // A SIGKILLed unsandboxed worker cannot stop its command: end that one
                 // process (a positive pid, never a group or -1).
    let pid: u32 = lines()[0].trim().parse().expect("the gate wrote its pid");
    assert!(pid > 1, "a real pid: {pid}");
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();

    let held = json(dir, ADA, &["deployments", "show", "--app", "shop", &dep]);
    assert_eq!((&held["state"], &held["active"]), (&"running".into(), &true.into()), "{held:#}");
    let status = json(dir, ADA, &["env", "status", "--app", "shop", "dev"]);
    assert!(status["current_release_id"].is_null(), "nothing deployed yet: {status:#}");
    let (code, stderr) = fails(dir, ADA, &["deploy", "--app", "shop", "--release", &rel, "dev"]);
    assert_eq!(code, 5, "the environment is still held: {stderr}");

    let _second = Worker::start_with(dir, 1, env);
    let done = json(dir, ADA, &["deployments", "show", "--app", "shop", &dep, "--follow"]);
    assert_eq!((&done["state"], &done["active"]), (&"succeeded".into(), &false.into()), "{done:#}");
    assert_eq!(lines().len(), 2, "the gate ran once per attempt");
    let status = json(dir, ADA, &["env", "status", "--app", "shop", "dev"]);
    assert_eq!(status["current_release_id"], rel.as_str(), "{status:#}");
    let release = json(dir, ADA, &["release", "show", "--app", "shop", &rel]);
    assert_eq!(release["state"], "deployed_full", "its only environment runs it: {release:#}");
    assert_eq!(status["current_commit"], release["composed_sha"], "the env ref is the release commit");
    let git = Command::new("git")
        .args(["rev-parse", "refs/heads/env/dev"])
        .env("GIT_DIR", dir.join("repos").join(format!("{}.git", status["environment"]["app_id"].as_str().unwrap())))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&git.stdout).trim(), release["composed_sha"].as_str().unwrap());
}
