//! `conman profile`, `conman env`, `conman cs overrides` and `conman keys
//! rotate` end to end through the real binary on SQLite installations:
//! a profile created from stdin JSON with a secret; `show` masks it and the
//! plaintext appears in no output; `reveal` prints it for the app admin and
//! is forbidden (exit 3) for a reviewer; edit with `--set`/`--unset`, a
//! secret set from stdin, revisions, revert; environments with one
//! canonical (profile names accepted for ids); a changeset's overrides;
//! master-key rotation (the key file replaced, the old kept `0600`, the new
//! key reveals, the old key refused by secret commands, `conman serve` and
//! `conman worker`); a tampered ciphertext gives a clear error, no panic and
//! no garbage.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const PASSWORD: &str = "correct horse battery staple";
const SECRET: &str = "s3cr3t-Pa55word-xyz";
const OTHER_SECRET: &str = "rotated-Value-0451";
const PROFILE: &str = r#"{
  "base_url": "https://shop.example.com",
  "env_vars": {"REPLICAS": {"type": "number", "value": 2}, "MODE": {"type": "string", "value": "live"}},
  "secrets": {"DB_PASSWORD": "s3cr3t-Pa55word-xyz"}
}"#;

/// `conman --data-dir DIR` without the CONMAN_ variables of the caller, in
/// `dir` (so no stray `conman.toml` or `.env` is read).
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conman"));
    cmd.arg("--data-dir").arg(dir);
    for var in [
        "CONMAN_DATABASE_URL",
        "CONMAN_CONFIG",
        "CONMAN_TOKEN",
        "CONMAN_AS",
        "CONMAN_SECRETS_MASTER_KEY",
        "CONMAN_LISTEN",
        "CONMAN_WORKERS",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to the end (at most 120 s), feeding it `stdin`.
fn run_command(cmd: &mut Command, stdin: Option<&str>) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
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

fn as_user<'a>(user: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    [&["--as", user], args].concat()
}

/// `conman --as USER ARGS` (stdin from `input`), which must succeed; answers stdout.
fn ok_in(dir: &Path, user: &str, args: &[&str], input: Option<&str>) -> String {
    let out = run_command(command(dir).args(as_user(user, args)), input);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "conman {args:?} failed ({}):\n{stderr}", out.status);
    assert!(!stderr.contains(SECRET) && !stderr.contains(OTHER_SECRET), "a secret on stderr: {stderr}");
    stdout.into_owned()
}

fn ok(dir: &Path, user: &str, args: &[&str]) -> String {
    ok_in(dir, user, args, None)
}

/// `conman --as USER --json ARGS`, parsed; no secret value in it.
fn json_in(dir: &Path, user: &str, args: &[&str], input: Option<&str>) -> Value {
    let text = ok_in(dir, user, &[&["--json"], args].concat(), input);
    assert!(!text.contains(SECRET) && !text.contains(OTHER_SECRET), "a secret in {args:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{text}"))
}

fn json_out(dir: &Path, user: &str, args: &[&str]) -> Value {
    json_in(dir, user, args, None)
}

/// `conman ARGS` with extra environment, which must fail; answers (exit code, stdout, stderr).
fn fails_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = command(dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_command(&mut cmd, None);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "conman {args:?} should have failed:\n{stdout}");
    assert!(!stderr.contains("panicked"), "conman {args:?} panicked:\n{stderr}");
    (out.status.code().unwrap_or(-1), stdout.into_owned(), stderr.into_owned())
}

/// Arguments (before the file), a document, and the check of the CLI's stderr.
type Refusal = (&'static [&'static str], &'static [u8], fn(&str, &[u8]));

/// The CLI's stderr carries the API's refusal of `body` as a `T`, word for
/// word (code, message and details).
fn assert_same_refusal<T: serde::de::DeserializeOwned>(stderr: &str, body: &[u8]) {
    let Err(api) = conman_api::dto::parse_body::<T>(body) else { panic!("the API accepts {body:?}") };
    assert_refusal(stderr, &api);
}

fn assert_refusal(stderr: &str, api: &conman_core::Error) {
    let expected = format!("validation_error: {api} {}", api.details().expect("details"));
    assert!(stderr.contains(&expected), "the CLI said:\n{stderr}\nthe API says:\n{expected}");
}

fn fails(dir: &Path, user: &str, args: &[&str]) -> (i32, String) {
    let (code, _, stderr) = fails_with(dir, &as_user(user, args), &[]);
    (code, stderr)
}

/// An operator (ADA), an app `shop`, a reviewer (BOB) and the profile `web`
/// created from stdin JSON holding a secret.
fn installation(dir: &Path) -> Value {
    let boot = run_command(
        command(dir).args(["bootstrap-admin", ADA, "Ada Admin"]).env("CONMAN_BOOTSTRAP_PASSWORD", PASSWORD),
        None,
    );
    assert!(boot.status.success(), "{}", String::from_utf8_lossy(&boot.stderr));
    json_out(dir, ADA, &["app", "create", "shop"]);
    let created = run_command(
        command(dir).args(["--as", ADA, "user", "create", BOB, "Bob"]).env("CONMAN_USER_PASSWORD", PASSWORD),
        None,
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    ok(dir, ADA, &["member", "add", "shop", BOB, "reviewer"]);
    json_in(dir, ADA, &["profile", "new", "--app", "shop", "web", "--file", "-"], Some(PROFILE))
}

#[test]
fn profiles_environments_and_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let created = installation(dir);
    assert_eq!(created["name"], "web", "{created:#}");
    assert_eq!(created["kind"], "persistent_env");
    assert_eq!(created["revision"], 1);
    assert_eq!(created["env_vars"]["REPLICAS"], json!({ "type": "number", "value": 2 }));
    let mask = created["masked_secrets"]["DB_PASSWORD"]["mask"].as_str().unwrap().to_owned();
    assert!(mask.starts_with("s3cr") && mask.ends_with("-xyz") && mask != SECRET, "{mask}");
    let id = created["id"].as_str().unwrap().to_owned();

    // Show: masked, by name or id, for every member; readable layout too.
    let shown = json_out(dir, BOB, &["profile", "show", "--app", "shop", "web"]);
    assert_eq!(shown["masked_secrets"]["DB_PASSWORD"]["mask"], mask.as_str(), "{shown:#}");
    assert_eq!(json_out(dir, ADA, &["profile", "show", "--app", "shop", &id])["id"], id.as_str());
    let human = ok(dir, ADA, &["profile", "show", "--app", "shop", "web"]);
    assert!(!human.contains(SECRET), "{human}");
    for needle in ["web (persistent_env), revision 1", "REPLICAS = 2 (number)", &format!("DB_PASSWORD = {mask}")] {
        assert!(human.contains(needle), "{needle:?} missing from:\n{human}");
    }
    let listed = json_out(dir, BOB, &["profile", "ls", "--app", "shop"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    let (code, stderr) = fails(dir, ADA, &["profile", "show", "--app", "shop", "nope"]);
    assert_eq!(code, 4, "{stderr}");

    // Reveal: the value only, for the app admin; forbidden for a reviewer.
    assert_eq!(ok(dir, ADA, &["profile", "reveal", "--app", "shop", "web", "DB_PASSWORD"]), format!("{SECRET}\n"));
    let (code, stderr) = fails(dir, BOB, &["profile", "reveal", "--app", "shop", "web", "DB_PASSWORD"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("forbidden"), "{stderr}");
    let (code, stderr) = fails(dir, BOB, &["profile", "edit", "--app", "shop", "web", "--set", "A=string:x"]);
    assert_eq!(code, 3, "only app admins edit: {stderr}");

    // Edit with --set / --unset, and bad input.
    let edited = json_out(dir, ADA, &["profile", "edit", "--app", "shop", "web", "--set", "REPLICAS=number:3"]);
    assert_eq!(edited["revision"], 2, "{edited:#}");
    assert_eq!(edited["env_vars"]["REPLICAS"], json!({ "type": "number", "value": 3 }));
    let (code, stderr) = fails(dir, ADA, &["profile", "edit", "--app", "shop", "web", "--set", "REPLICAS=string:3"]);
    assert_eq!(code, 2, "a type never changes silently: {stderr}");
    assert!(stderr.contains("REPLICAS"), "{stderr}");
    let (code, stderr) = fails(dir, ADA, &["profile", "edit", "--app", "shop", "web", "--set", "REPLICAS"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("KEY=TYPE:VALUE"), "{stderr}");
    let (code, stderr) = fails(dir, ADA, &["profile", "edit", "--app", "shop", "web"]);
    assert_eq!(code, 2, "{stderr}");
    let unset = json_out(dir, ADA, &["profile", "edit", "--app", "shop", "web", "--unset", "MODE"]);
    assert_eq!(unset["revision"], 3);
    assert!(unset["env_vars"].get("MODE").is_none(), "{unset:#}");
    let patch = dir.join("patch.json");
    std::fs::write(&patch, r#"{"base_url": null, "bogus": 1}"#).unwrap();
    let (code, stderr) =
        fails(dir, ADA, &["profile", "edit", "--app", "shop", "web", "--file", patch.to_str().unwrap()]);
    assert_eq!(code, 2, "unknown fields are refused: {stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    assert_same_refusal::<conman_api::dto::PatchProfileRequest>(&stderr, br#"{"base_url": null, "bogus": 1}"#);
    // The same reader for every body the CLI takes: overrides, environments,
    // a batch of changes (also its base64), settings.
    let body = dir.join("body.json");
    let refused: [Refusal; 5] = [
        (
            &["cs", "overrides", "--app", "shop", "00000000-0000-7000-8000-000000000000", "--file"],
            br#"{"profile_overrides": [{"target": {"environment": "prod"}, "env_vars": {}, "unset": []}]}"#,
            assert_same_refusal::<conman_api::dto::PutProfileOverridesRequest>,
        ),
        (
            &["env", "set", "--app", "shop", "--file"],
            br#"{"environments": [{"name": "prod", "position": 0, "is_canonical": true, "colour": "red"}]}"#,
            assert_same_refusal::<conman_api::dto::ReplaceEnvironmentsRequest>,
        ),
        (
            &["ws", "apply", "--app", "shop"],
            br#"{"ops": [{"op": "put", "path": "a.txt", "content": "YQ==", "mode": "0644"}]}"#,
            assert_same_refusal::<conman_api::dto::ChangesRequest>,
        ),
        (
            &["ws", "apply", "--app", "shop"],
            br#"{"ops": [{"op": "put", "path": "a.txt", "content": "YQ"}]}"#,
            |e, b| {
                let api =
                    conman_api::dto::parse_body::<conman_api::dto::ChangesRequest>(b).unwrap().into_ops().unwrap_err();
                assert_refusal(e, &api);
            },
        ),
        (
            &["profile", "new", "--app", "shop", "api", "--file"],
            br#"{"database": {"engine": "postgres", "password": "x"}}"#,
            assert_same_refusal::<conman_api::dto::CreateProfileRequest>,
        ),
    ];
    for (args, document, check) in refused {
        std::fs::write(&body, document).unwrap();
        let args = [args, &[body.to_str().unwrap()]].concat();
        let (code, stderr) = fails(dir, ADA, &args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        let wrapped = if args[0] == "profile" {
            // `profile new NAME` adds the name and kind before reading.
            let mut doc: Value = serde_json::from_slice(document).unwrap();
            doc["name"] = json!("api");
            doc["kind"] = json!("persistent_env");
            serde_json::to_vec(&doc).unwrap()
        } else {
            document.to_vec()
        };
        check(&stderr, &wrapped);
    }
    let (code, stderr) = fails(dir, ADA, &["app", "settings", "shop", r#"{"required_approvals": 2, "nope": 1}"#]);
    assert_eq!(code, 2, "{stderr}");
    assert_same_refusal::<conman_api::dto::SettingsPatchDto>(&stderr, br#"{"required_approvals": 2, "nope": 1}"#);

    // A secret from stdin.
    let set = json_in(
        dir,
        ADA,
        &["profile", "secret", "set", "--app", "shop", "web", "API_TOKEN"],
        Some(&format!("{OTHER_SECRET}\n")),
    );
    assert_eq!(set["revision"], 4, "{set:#}");
    assert!(set["masked_secrets"]["API_TOKEN"].is_object(), "{set:#}");
    assert_eq!(ok(dir, ADA, &["profile", "reveal", "--app", "shop", "web", "API_TOKEN"]), format!("{OTHER_SECRET}\n"));

    // Revisions and revert.
    let revisions = json_out(dir, BOB, &["profile", "revisions", "--app", "shop", "web"]);
    let numbers: Vec<u64> = revisions.as_array().unwrap().iter().map(|r| r["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, vec![4, 3, 2, 1], "{revisions:#}");
    assert_eq!(revisions[3]["reason"]["type"], "create", "{revisions:#}");
    let reverted = json_out(dir, ADA, &["profile", "revert", "--app", "shop", "web", "1"]);
    assert_eq!(reverted["revision"], 5, "{reverted:#}");
    assert_eq!(reverted["env_vars"]["REPLICAS"]["value"], 2);
    assert_eq!(reverted["env_vars"]["MODE"]["value"], "live");
    assert!(reverted["masked_secrets"].get("API_TOKEN").is_none(), "{reverted:#}");
    assert_eq!(ok(dir, ADA, &["profile", "reveal", "--app", "shop", "web", "DB_PASSWORD"]), format!("{SECRET}\n"));

    // Environments: one canonical; profile names in place of ids.
    let envs = dir.join("envs.json");
    std::fs::write(
        &envs,
        r#"[{"name": "staging", "position": 0, "is_canonical": false, "runtime_profile_id": "web"},
            {"name": "prod", "position": 1, "is_canonical": true, "runtime_profile_id": "web"}]"#,
    )
    .unwrap();
    let set = json_out(dir, ADA, &["env", "set", "--app", "shop", "--file", envs.to_str().unwrap()]);
    assert_eq!(set.as_array().unwrap().len(), 2, "{set:#}");
    assert_eq!((&set[1]["name"], &set[1]["is_canonical"]), (&json!("prod"), &json!(true)));
    assert_eq!(set[0]["runtime_profile_id"], id.as_str());
    let listed = json_out(dir, BOB, &["env", "ls", "--app", "shop"]);
    assert_eq!(listed, set);
    let human = ok(dir, BOB, &["env", "ls", "--app", "shop"]);
    assert!(human.contains("prod") && human.contains("[canonical]") && human.contains("profile web"), "{human}");
    std::fs::write(
        &envs,
        r#"[{"name": "staging", "position": 0, "is_canonical": true},
            {"name": "prod", "position": 1, "is_canonical": true}]"#,
    )
    .unwrap();
    let (code, stderr) = fails(dir, ADA, &["env", "set", "--app", "shop", "--file", envs.to_str().unwrap()]);
    assert_eq!(code, 2, "exactly one canonical: {stderr}");
    assert_eq!(json_out(dir, BOB, &["env", "ls", "--app", "shop"]), set, "a refused list changes nothing");

    // A changeset's overrides: replaced from stdin, shown with names only.
    ok(dir, ADA, &["ws", "put", "--app", "shop", "config/app.yaml", "--content", "a: 1\n"]);
    let cs = json_out(dir, ADA, &["cs", "new", "--app", "shop", "--title", "More replicas"]);
    let cs_id = cs["id"].as_str().unwrap().to_owned();
    let none = json_out(dir, BOB, &["cs", "overrides", "--app", "shop", &cs_id]);
    assert_eq!(none, json!({ "profile_overrides": [] }));
    let overrides = format!(
        r#"[{{"target": {{"environment": "prod"}}, "env_vars": {{"REPLICAS": {{"type": "number", "value": 5}}}},
             "secrets": {{"DB_PASSWORD": "{OTHER_SECRET}"}}}}]"#
    );
    let put = json_in(dir, ADA, &["cs", "overrides", "--app", "shop", &cs_id, "--file", "-"], Some(&overrides));
    let expected = json!({ "profile_overrides": [{
        "target": { "environment": "prod" },
        "env_vars": { "REPLICAS": { "type": "number", "value": 5 } },
        "secrets": ["DB_PASSWORD"],
    }]});
    assert_eq!(put, expected);
    assert_eq!(json_out(dir, BOB, &["cs", "overrides", "--app", "shop", &cs_id]), expected);
    let human = ok(dir, ADA, &["cs", "overrides", "--app", "shop", &cs_id]);
    assert!(human.contains("REPLICAS = 5 (number)") && human.contains("DB_PASSWORD = [secret]"), "{human}");
    let wrong_type =
        r#"[{"target": {"environment": "prod"}, "env_vars": {"REPLICAS": {"type": "string", "value": "5"}}}]"#;
    let out = run_command(
        command(dir).args(as_user(ADA, &["cs", "overrides", "--app", "shop", &cs_id, "--file", "-"])),
        Some(wrong_type),
    );
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));

    // Submit with overrides (SPEC §7 submit {profile_overrides}): refused
    // ones refuse the submit; accepted ones replace the draft's and are
    // frozen with revision 1.
    let submit = ["cs", "submit", "--app", "shop", cs_id.as_str(), "--overrides-file", "-"];
    let out = run_command(command(dir).args(as_user(ADA, &submit)), Some(wrong_type));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_out(dir, BOB, &["cs", "show", "--app", "shop", &cs_id])["state"], "draft");
    assert_eq!(json_out(dir, BOB, &["cs", "overrides", "--app", "shop", &cs_id]), expected);
    let staging_only = r#"{"profile_overrides": [{"target": {"environment": "staging"}, "env_vars": {"REPLICAS": {"type": "number", "value": 2}}}]}"#;
    let submitted = json_in(dir, ADA, &submit, Some(staging_only));
    let frozen = json!([{
        "target": { "environment": "staging" },
        "env_vars": { "REPLICAS": { "type": "number", "value": 2 } },
        "secrets": [],
    }]);
    assert_eq!(submitted["included_profile_overrides"], frozen, "{submitted:#}");
    assert_eq!(submitted["changeset"]["state"], "submitted");
    assert_eq!(
        json_out(dir, BOB, &["cs", "overrides", "--app", "shop", &cs_id]),
        json!({ "profile_overrides": frozen })
    );
}

fn key_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap().trim().to_owned()
}

#[test]
fn rotating_the_master_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    installation(dir);
    let old_key = key_of(dir, "master.key");
    let new_key = "5a".repeat(32);
    let key_file = dir.join("new.key");
    std::fs::write(&key_file, format!("{new_key}\n")).unwrap();
    let key_path = key_file.to_str().unwrap();

    // Operators only; a malformed key is refused before anything changes.
    let (code, stderr) = fails(dir, BOB, &["keys", "rotate", "--new-key-file", key_path]);
    assert_eq!(code, 3, "{stderr}");
    let bad = dir.join("bad.key");
    std::fs::write(&bad, "not hex").unwrap();
    let (code, stderr) = fails(dir, ADA, &["keys", "rotate", "--new-key-file", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("64 hex characters"), "{stderr}");
    let (code, stderr) =
        fails(dir, ADA, &["keys", "rotate", "--new-key-file", dir.join("master.key").to_str().unwrap()]);
    assert_eq!(code, 2, "the current key is no new key: {stderr}");
    assert_eq!(key_of(dir, "master.key"), old_key);

    let out = run_command(command(dir).args(["--as", ADA, "keys", "rotate", "--new-key-file", key_path]), None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("re-wrapped 1 secret value(s)"), "{stdout}");
    assert!(stdout.contains("restart every server and worker"), "{stdout}");
    assert!(!stdout.contains(&new_key) && !stdout.contains(&old_key), "no key on stdout: {stdout}");
    assert_eq!(key_of(dir, "master.key"), new_key, "the key file holds the new key");
    assert_eq!(key_of(dir, "master.key.old"), old_key, "the old key is kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for name in ["master.key", "master.key.old"] {
            let mode = std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }

    // The new key (from the file, or the environment) opens the secret.
    let reveal = ["--as", ADA, "profile", "reveal", "--app", "shop", "web", "DB_PASSWORD"];
    assert_eq!(ok(dir, ADA, &reveal[2..]), format!("{SECRET}\n"));
    let with_new = run_command(command(dir).args(reveal).env("CONMAN_SECRETS_MASTER_KEY", &new_key), None);
    assert!(with_new.status.success(), "{}", String::from_utf8_lossy(&with_new.stderr));
    assert_eq!(String::from_utf8_lossy(&with_new.stdout), format!("{SECRET}\n"));

    // The old key is refused with a clear message: by secret commands, by
    // the server and by workers at start.
    let old = [("CONMAN_SECRETS_MASTER_KEY", old_key.as_str())];
    let (code, stdout, stderr) = fails_with(dir, &reveal, &old);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("refusing to use this master key") && stderr.contains("not the key that sealed"),
        "{stderr}"
    );
    assert!(!stdout.contains(SECRET));
    let (_, _, stderr) = fails_with(dir, &["serve", "--listen", "127.0.0.1:0"], &old);
    assert!(stderr.contains("refusing to start") && stderr.contains("not the key that sealed"), "{stderr}");
    let (_, _, stderr) = fails_with(dir, &["worker", "--workers", "1"], &old);
    assert!(stderr.contains("refusing to start") && stderr.contains("not the key that sealed"), "{stderr}");
    let (_, _, stderr) = fails_with(dir, &["--as", ADA, "keys", "rotate", "--new-key-file", key_path], &old);
    assert!(stderr.contains("not the key that sealed"), "{stderr}");

    // Rotating again, the new key from stdin (JSON report).
    let third = "c3".repeat(32);
    let report = json_in(dir, ADA, &["keys", "rotate", "--new-key-file", "-"], Some(&third));
    assert_eq!(report["rewrapped"], 1, "{report:#}");
    assert_ne!(report["from_key_id"], report["to_key_id"]);
    assert_eq!(key_of(dir, "master.key"), third);
    assert_eq!(key_of(dir, "master.key.old"), new_key);
    assert_eq!(ok(dir, ADA, &reveal[2..]), format!("{SECRET}\n"));
}

#[test]
fn a_tampered_ciphertext_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    installation(dir);
    // Tamper with the stored ciphertext directly in the SQLite file.
    let db = rusqlite::Connection::open(dir.join("conman.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE secrets SET ciphertext = randomblob(length(ciphertext)) \
             WHERE owner_kind = 'profile' AND name = 'DB_PASSWORD'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1, "one sealed value tampered with");
    drop(db);

    for args in [
        &["--as", ADA, "profile", "reveal", "--app", "shop", "web", "DB_PASSWORD"][..],
        &["--as", ADA, "profile", "show", "--app", "shop", "web"][..],
        &["--as", ADA, "--json", "profile", "ls", "--app", "shop"][..],
    ] {
        let (code, stdout, stderr) = fails_with(dir, args, &[]);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed something: {stdout:?}");
        assert!(
            stderr.contains("\"DB_PASSWORD\" could not be decrypted: wrong master key or tampered ciphertext"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains(SECRET), "{stderr}");
    }
}
