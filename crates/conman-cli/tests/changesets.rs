//! `conman cs` end to end through the real binary on one SQLite
//! installation: bootstrap-admin, an app, a reviewer added with `conman
//! member add`; `ws put` of a YAML file → `cs new` → `cs submit --follow`
//! (the submit gate run by a background `conman worker`, its log followed)
//! → the reviewer's `cs review approve` → `cs queue` → `cs show --json`
//! says queued and equals the API's `data` for the same changeset; the
//! semantic diff lists the modified key; the raw diff off a terminal has no
//! ANSI escapes (and, under a pseudo-terminal when `script` exists, is
//! coloured unless `NO_COLOR`); comments, edit, move to draft, resubmit;
//! bad input exits non-zero with a clear message.
//!
//! The integration branch gets its first version of the file through the
//! library (no CLI command lands commits on it before releases exist), so
//! the workspace edit modifies a key rather than adding a file.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use conman_api::compose;
use conman_api::config::Settings;
use conman_api::dto::ChangesetDetailDto;
use conman_core::ids::{AppId, ChangesetId};
use conman_core::ports::git::{FileOp, Signature, WriteRequest};
use conman_core::validation::RepoPath;
use serde_json::Value;

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const PASSWORD: &str = "correct horse battery staple";
const BASELINE: &str = "server:\n  port: 8080\n  host: localhost\n";
const EDITED: &str = "server:\n  port: 9090\n  host: localhost\n";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    settings: Settings,
}

/// `conman --data-dir DIR` with a clean environment of the CONMAN_
/// variables this test does not set itself, run in `dir` (so no stray
/// `conman.toml` or `.env` is read). The submit gate echoes a line.
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conman"));
    cmd.arg("--data-dir").arg(dir);
    in_clean_env(&mut cmd, dir);
    cmd
}

fn in_clean_env(cmd: &mut Command, dir: &Path) {
    for var in ["CONMAN_DATABASE_URL", "CONMAN_CONFIG", "CONMAN_TOKEN", "CONMAN_AS", "NO_COLOR"] {
        cmd.env_remove(var);
    }
    cmd.env("CONMAN_GATE_SUBMIT_CMD", "echo gate says ok").env("CONMAN_JOB_POLL_MS", "100");
    cmd.current_dir(dir).stdin(Stdio::null());
}

/// Runs `conman ARGS` to the end (at most 120 s).
fn run(dir: &Path, args: &[&str]) -> Output {
    run_command(command(dir).args(args))
}

fn run_command(cmd: &mut Command) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id().to_string();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match finished.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("{cmd:?} did not finish in 120 s");
        }
    }
}

/// `conman --as USER ARGS`, which must succeed; answers stdout.
fn ok(dir: &Path, user: &str, args: &[&str]) -> String {
    let out = run(dir, &[&["--as", user], args].concat());
    assert!(out.status.success(), "conman {args:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `conman --as USER --json ARGS`, parsed.
fn json(dir: &Path, user: &str, args: &[&str]) -> Value {
    let text = ok(dir, user, &[&["--json"], args].concat());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{text}"))
}

/// `conman --as USER ARGS`, which must fail; answers (exit code, stderr).
fn fails(dir: &Path, user: &str, args: &[&str]) -> (i32, String) {
    let out = run(dir, &[&["--as", user], args].concat());
    assert!(!out.status.success(), "conman {args:?} should have failed:\n{}", String::from_utf8_lossy(&out.stdout));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A `conman worker` child, killed on drop.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn settings(dir: &Path) -> Settings {
    Args::try_parse_from(["x", "--data-dir", dir.to_str().unwrap()]).unwrap().settings
}

/// Runs library calls of the setup and checks.
fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(work)
}

/// Commits `config/app.yaml` on the app's `main` through the library.
async fn commit_baseline(dir: &Path, app: AppId) {
    let conman = compose::open(&settings(dir)).unwrap().conman;
    let put = FileOp::Put { path: RepoPath::parse("config/app.yaml").unwrap(), content: BASELINE.as_bytes().to_vec() };
    let request = WriteRequest {
        target_ref: "refs/heads/main".into(),
        base_ref: "refs/heads/main".into(),
        ops: vec![put],
        message: "baseline config".into(),
        author: Signature { name: "Ada".into(), email: ADA.into() },
    };
    conman.ports().git.write(app, request).await.unwrap();
}

/// The API's `data` for `GET .../changesets/:id`, read through the library.
async fn api_detail(dir: &Path, app: AppId, id: ChangesetId) -> Value {
    let conman = compose::open(&settings(dir)).unwrap().conman;
    let ada = conman.local_actor(ADA, Default::default()).await.unwrap();
    let view = conman.get_changeset(&ada, app, id).await.unwrap();
    serde_json::to_value(ChangesetDetailDto::from(&view)).unwrap()
}

/// An installation in `dir`: operator ada, her app `shop`, and bob, a
/// reviewer there, all made through the binary; answers the app's id.
fn installation_with_a_reviewer(dir: &Path) -> AppId {
    let boot = run_command(
        command(dir).args(["bootstrap-admin", ADA, "Ada Admin"]).env("CONMAN_BOOTSTRAP_PASSWORD", PASSWORD),
    );
    assert!(boot.status.success(), "{}", String::from_utf8_lossy(&boot.stderr));
    let app = json(dir, ADA, &["app", "create", "shop"]);
    let app_id: AppId = app["id"].as_str().unwrap().parse().unwrap();
    let created = run_command(
        command(dir).args(["--as", ADA, "user", "create", BOB, "Bob"]).env("CONMAN_USER_PASSWORD", PASSWORD),
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    ok(dir, ADA, &["member", "add", "shop", BOB, "reviewer"]);
    app_id
}

#[test]
fn the_changeset_flow_from_ws_put_to_the_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let app_id = installation_with_a_reviewer(dir);
    // App listings carry the caller's role, as the API's do.
    assert_eq!(json(dir, BOB, &["app", "ls"])[0]["role"], "reviewer");
    assert_eq!(json(dir, ADA, &["app", "ls"])[0]["role"], "app_admin");
    block_on(commit_baseline(dir, app_id));
    // The default workspace came with the app, before that commit: reset it
    // to the baseline.
    ok(dir, ADA, &["ws", "reset", "--app", "shop"]);

    // Edit in the default workspace, open a changeset on it.
    ok(dir, ADA, &["ws", "put", "--app", "shop", "config/app.yaml", "--content", EDITED]);
    let cs = json(dir, ADA, &["cs", "new", "--app", "shop", "--title", "Move to port 9090"]);
    assert_eq!(cs["state"], "draft", "{cs:#}");
    assert_eq!(cs["revision"], 0);
    let id = cs["id"].as_str().unwrap().to_owned();
    let cs_id: ChangesetId = id.parse().unwrap();
    let one_open = fails(dir, ADA, &["cs", "new", "--app", "shop", "--title", "Second"]);
    assert_eq!(one_open.0, 5, "one open changeset per workspace: {}", one_open.1);

    // Before submit the diff shows the live workspace.
    let live = json(dir, ADA, &["cs", "diff", "--app", "shop", &id, "--mode", "semantic"]);
    assert_eq!(live["revision"], Value::Null, "{live:#}");

    // Submit and follow the gate run by a worker process.
    let worker = Worker(
        command(dir).args(["worker", "--workers", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    );
    let submitted = ok(dir, ADA, &["cs", "submit", "--app", "shop", &id, "--follow"]);
    assert!(submitted.contains(&format!("submitted changeset {id} as revision 1")), "{submitted}");
    assert!(submitted.contains("submit gate job"), "the job id is printed: {submitted}");
    assert!(submitted.lines().any(|l| l == "gate says ok"), "the gate's log is followed: {submitted}");
    assert!(submitted.contains(&format!("gate passed: changeset {id} is in_review")), "{submitted}");

    // A bad vote is refused by the parser, with the choices.
    let (code, stderr) = fails(dir, BOB, &["cs", "review", "--app", "shop", &id, "lgtm"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("'lgtm'") && stderr.contains("approve, request-changes, reject"), "{stderr}");
    // The author may not approve their own changeset.
    let (code, stderr) = fails(dir, ADA, &["cs", "review", "--app", "shop", &id, "approve"]);
    assert_eq!(code, 3, "{stderr}");
    // Only the latest revision is reviewed.
    let (code, stderr) = fails(dir, BOB, &["cs", "review", "--app", "shop", &id, "approve", "--revision", "7"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("latest revision (1)"), "{stderr}");

    let review = json(dir, BOB, &["cs", "review", "--app", "shop", &id, "approve", "--comment", "looks right"]);
    assert_eq!(review["changeset"]["state"], "approved", "{review:#}");
    assert_eq!(review["review"]["action"], "approve");
    assert_eq!(review["approval"]["approved"], true);
    assert_eq!(review["approval"]["approvals"], 1);

    let queued = json(dir, ADA, &["cs", "queue", "--app", "shop", &id]);
    assert_eq!(queued["state"], "queued", "{queued:#}");

    // Show: JSON is the API's data; the readable layout names the voter.
    let shown = json(dir, ADA, &["cs", "show", "--app", "shop", &id]);
    assert_eq!(shown["state"], "queued", "{shown:#}");
    assert_eq!(shown["revisions"].as_array().unwrap().len(), 1);
    assert_eq!(shown["revisions"][0]["files"], serde_json::json!(["config/app.yaml"]));
    assert_eq!(shown["reviews"][0]["comment"], "looks right");
    assert_eq!(shown["approval"]["approved"], true);
    assert_eq!(shown, block_on(api_detail(dir, app_id, cs_id)), "the CLI's JSON is the API's data");
    let human = ok(dir, ADA, &["cs", "show", "--app", "shop", &id]);
    for needle in ["Move to port 9090", "queued", "approve", BOB, "1/1 approvals on revision 1 (approved)"] {
        assert!(human.contains(needle), "{needle:?} missing from:\n{human}");
    }

    // Listing and its filters.
    let all = json(dir, ADA, &["cs", "ls", "--app", "shop"]);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all:#}");
    let queued_by_ada = json(dir, ADA, &["cs", "ls", "--app", "shop", "--state", "queued", "--author", ADA]);
    assert_eq!(queued_by_ada[0]["id"], id.as_str());
    let by_bob = json(dir, ADA, &["cs", "ls", "--app", "shop", "--author", BOB]);
    assert_eq!(by_bob, serde_json::json!([]));
    let (code, stderr) = fails(dir, ADA, &["cs", "ls", "--app", "shop", "--state", "merged"]);
    assert_eq!(code, 2, "{stderr}");

    // Diffs: the semantic one lists the modified key; the raw one off a
    // terminal is plain.
    let semantic = json(dir, ADA, &["cs", "diff", "--app", "shop", &id, "--mode", "semantic"]);
    assert_eq!(semantic["mode"], "semantic", "{semantic:#}");
    assert_eq!(semantic["revision"], 1);
    let file = &semantic["files"][0];
    assert_eq!(file["path"], "config/app.yaml");
    assert_eq!(file["changes"].as_array().unwrap().len(), 1, "{semantic:#}");
    let change = &file["changes"][0];
    assert_eq!((&change["op"], &change["key"]), (&"modified".into(), &"server.port".into()), "{change:#}");
    assert_eq!((&change["old_value"], &change["new_value"]), (&8080.into(), &9090.into()));
    assert_eq!(semantic["summary"]["by_op"]["modified"], 1);
    let readable = ok(dir, ADA, &["cs", "diff", "--app", "shop", &id, "--mode", "semantic"]);
    assert!(readable.contains("~ config/app.yaml  server.port: 8080 → 9090"), "{readable}");
    assert!(readable.contains("1 key modified (1 file changed)"), "{readable}");

    let raw = run(dir, &["--as", ADA, "cs", "diff", "--app", "shop", &id]);
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    let patch = String::from_utf8(raw.stdout).unwrap();
    assert!(!patch.contains('\x1b'), "no ANSI escapes off a terminal:\n{patch:?}");
    assert!(patch.starts_with("diff --git a/config/app.yaml b/config/app.yaml"), "{patch}");
    assert!(patch.lines().any(|l| l == "-  port: 8080") && patch.lines().any(|l| l == "+  port: 9090"), "{patch}");
    assert!(String::from_utf8_lossy(&raw.stderr).contains("1 file changed, 1 insertion(+), 1 deletion(-)"));
    let raw_json = json(dir, ADA, &["cs", "diff", "--app", "shop", &id, "--mode", "raw"]);
    assert_eq!(raw_json["stats"], serde_json::json!({ "files": 1, "additions": 1, "deletions": 1 }));
    assert_eq!(raw_json["files"][0]["patch"].as_str().unwrap().trim_end(), patch.trim_end());
    if let Some(tty) = on_terminal(dir, &["--as", ADA, "cs", "diff", "--app", "shop", &id], &[]) {
        assert!(tty.contains("\x1b[32m+  port: 9090\x1b[0m"), "coloured on a terminal: {tty:?}");
        assert!(tty.contains("\x1b[36m@@"), "{tty:?}");
        let plain = on_terminal(dir, &["--as", ADA, "cs", "diff", "--app", "shop", &id], &[("NO_COLOR", "1")]);
        assert!(!plain.unwrap().contains("\x1b[3"), "NO_COLOR wins");
        let flag = on_terminal(dir, &["--as", ADA, "cs", "diff", "--app", "shop", &id, "--no-color"], &[]);
        assert!(!flag.unwrap().contains("\x1b[3"), "--no-color wins");
    }

    // Comments: anchored to the latest revision by default; edits keep the
    // earlier body.
    let comment = json(
        dir,
        BOB,
        &["cs", "comment", "--app", "shop", &id, "add", "Why 9090?", "--path", "config/app.yaml", "--line", "2"],
    );
    assert_eq!(comment["anchor"], serde_json::json!({ "path": "config/app.yaml", "line": 2, "revision": 1 }));
    let comment_id = comment["id"].as_str().unwrap().to_owned();
    let edited = json(dir, BOB, &["cs", "comment", "--app", "shop", &id, "edit", &comment_id, "Why port 9090?"]);
    assert_eq!(edited["body"], "Why port 9090?");
    assert_eq!(edited["edits"][0]["body"], "Why 9090?");
    let (code, stderr) = fails(dir, ADA, &["cs", "comment", "--app", "shop", &id, "edit", &comment_id, "mine now"]);
    assert_eq!(code, 3, "only its author edits a comment: {stderr}");
    json(dir, ADA, &["cs", "comment", "--app", "shop", &id, "add", "The load balancer expects it."]);
    let comments = json(dir, ADA, &["cs", "comment", "--app", "shop", &id, "ls"]);
    assert_eq!(comments.as_array().unwrap().len(), 2, "{comments:#}");
    let listed = ok(dir, ADA, &["cs", "comment", "--app", "shop", &id, "ls"]);
    assert!(listed.contains("on config/app.yaml:2 (revision 1)  (edited 1×)"), "{listed}");
    assert!(listed.contains("    The load balancer expects it."), "{listed}");

    // Withdraw from the queue, edit, submit again, resubmit: approvals reset.
    let (code, stderr) = fails(dir, ADA, &["cs", "edit", "--app", "shop", &id, "--title", "Too late"]);
    assert_eq!(code, 5, "a queued changeset is not edited: {stderr}");
    assert_eq!(json(dir, ADA, &["cs", "draft", "--app", "shop", &id])["state"], "draft");
    let (code, stderr) = fails(dir, ADA, &["cs", "edit", "--app", "shop", &id]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing to change"), "{stderr}");
    let retitled = json(dir, ADA, &["cs", "edit", "--app", "shop", &id, "--title", "Port 9090", "--no-depends-on"]);
    assert_eq!(retitled["title"], "Port 9090");
    let (code, stderr) = fails(dir, ADA, &["cs", "resubmit", "--app", "shop", &id]);
    assert_eq!(code, 5, "a draft is submitted, not resubmitted: {stderr}");
    assert!(stderr.contains("invalid_transition"), "{stderr}");
    let second = json(dir, ADA, &["cs", "submit", "--app", "shop", &id]);
    assert_eq!(second["revision"]["number"], 2, "{second:#}");
    assert_eq!(second["changeset"]["state"], "submitted");
    assert_eq!(second["job"]["type"], "gate_submit");
    // Let revision 2's gate settle first: a resubmit racing the worker's
    // verdict is refused as stale (409), as any concurrent change is.
    let job = second["job"]["id"].as_str().unwrap();
    let log = ok(dir, ADA, &["jobs", "logs", "--app", "shop", job, "--follow"]);
    assert!(log.lines().any(|l| l == "gate says ok"), "{log}");
    let third = json(dir, ADA, &["cs", "resubmit", "--app", "shop", &id, "--follow"]);
    assert_eq!(third["revision"]["number"], 3, "{third:#}");
    let after = json(dir, ADA, &["cs", "show", "--app", "shop", &id]);
    assert_eq!(after["state"], "in_review", "the followed gate passed: {after:#}");
    assert_eq!(after["approval"]["approvals"], 0, "a new revision resets approvals");
    assert_eq!(after["approval"]["revision"], 3);
    drop(worker);

    // Ids are full UUIDs.
    let (code, stderr) = fails(dir, ADA, &["cs", "show", "--app", "shop", "not-a-uuid"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("changeset"), "{stderr}");
}

/// Runs `conman ARGS` under a pseudo-terminal made by `script` (util-linux)
/// and answers what it printed; `None` when `script` is not available.
fn on_terminal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Option<String> {
    let available = Command::new("script").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !available.is_ok_and(|s| s.success()) {
        eprintln!("skipped the terminal colour checks: no `script`");
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line = std::iter::once(env!("CARGO_BIN_EXE_conman").to_owned())
        .chain(["--data-dir".to_owned(), dir.to_str().unwrap().to_owned()])
        .chain(args.iter().map(|a| (*a).to_owned()))
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    in_clean_env(&mut script, dir);
    for (key, value) in env {
        script.env(key, value);
    }
    let out = run_command(&mut script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `conman release` and `conman queue` end to end: a queued changeset is
/// listed by `queue`, selected with `release add`, assembled (the job and
/// the release gate run by a background worker, `release assemble` waits),
/// published as `rYYYY.MM.DD.1`; `release ls` and `release show` report
/// it; bad input exits non-zero with a clear message.
#[test]
fn a_queued_changeset_ships_in_a_release_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app_id = installation_with_a_reviewer(dir);
    block_on(commit_baseline(dir, app_id));
    ok(dir, ADA, &["ws", "reset", "--app", "shop"]);
    ok(dir, ADA, &["ws", "put", "--app", "shop", "config/app.yaml", "--content", EDITED]);
    let id = json(dir, ADA, &["cs", "new", "--app", "shop", "--title", "Port 9090"])["id"].as_str().unwrap().to_owned();
    let worker = Worker(
        command(dir).args(["worker", "--workers", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    );
    ok(dir, ADA, &["cs", "submit", "--app", "shop", &id, "--follow"]);
    json(dir, BOB, &["cs", "review", "--app", "shop", &id, "approve"]);
    json(dir, ADA, &["cs", "queue", "--app", "shop", &id]);

    let queue = json(dir, ADA, &["queue", "--app", "shop"]);
    assert_eq!(queue.as_array().unwrap().len(), 1, "{queue:#}");
    assert_eq!(queue[0]["id"], id.as_str());

    let release = json(dir, ADA, &["release", "new", "--app", "shop", "--title", "Weekly"]);
    assert_eq!(release["state"], "draft", "{release:#}");
    let rel = release["id"].as_str().unwrap().to_owned();
    let selected = json(dir, ADA, &["release", "add", "--app", "shop", &rel, &id]);
    assert_eq!(selected["changesets"][0]["changeset_id"], id.as_str(), "{selected:#}");
    let (code, stderr) = fails(dir, BOB, &["release", "assemble", "--app", "shop", &rel]);
    assert_eq!(code, 3, "a reviewer may not assemble: {stderr}");
    let (code, stderr) = fails(dir, ADA, &["release", "publish", "--app", "shop", &rel]);
    assert_eq!(code, 5, "publish before assembly: {stderr}");
    assert!(stderr.contains("invalid_transition"), "{stderr}");

    let assembled = json(dir, ADA, &["release", "assemble", "--app", "shop", &rel]);
    assert_eq!(assembled["state"], "validated", "{assembled:#}");
    assert_eq!(assembled["changesets"][0]["outcome"], "composed");
    let published = json(dir, ADA, &["release", "publish", "--app", "shop", &rel]);
    let tag = published["tag"].as_str().unwrap_or_default().to_owned();
    let day = published["published_at"].as_str().unwrap_or_default().get(..10).unwrap_or_default().replace('-', ".");
    assert_eq!(tag, format!("r{day}.1"), "the first release of its UTC day: {published:#}");
    drop(worker);

    assert_eq!(json(dir, ADA, &["cs", "show", "--app", "shop", &id])["state"], "released");
    let listed = json(dir, BOB, &["release", "ls", "--app", "shop", "--state", "published"]);
    assert_eq!(listed[0]["id"], rel.as_str(), "{listed:#}");
    let human = ok(dir, BOB, &["release", "show", "--app", "shop", &rel]);
    for needle in [tag.as_str(), "published", "1. ", "composed", "passed"] {
        assert!(human.contains(needle), "{needle:?} missing from:\n{human}");
    }
    assert_eq!(json(dir, ADA, &["queue", "--app", "shop"]), serde_json::json!([]));
    let (code, stderr) = fails(dir, ADA, &["release", "ls", "--app", "shop", "--state", "shipped"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unknown release state"), "{stderr}");
}
