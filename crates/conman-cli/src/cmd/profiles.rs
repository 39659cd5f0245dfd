//! `conman profile`: runtime profiles (SPEC §2.6) — create, list, show (secrets
//! masked), edit as a new revision, set a secret, revisions, revert, and the
//! audited `app_admin` reveal; and the changeset profile overrides behind
//! `conman cs overrides`.
//!
//! Secret values never come from the command line: a profile or override
//! body is read from `--file PATH` (`-` for stdin), `profile secret set`
//! reads the value from stdin. Profiles are named by name or id. Every
//! command that touches sealed values first runs the server's start-up key
//! check (`ensure_secrets_key`), so a master key other than the one the
//! stored secrets are wrapped with is refused with a clear message rather
//! than failing on the first decrypt. `--json` prints the HTTP API's `data`
//! (the `conman_api::dto` types).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use conman_api::dto::{
    CreateProfileRequest, PatchProfileRequest, ProfileOverridesDto, ProfileRevisionDto, PutProfileOverridesRequest,
    RevealedSecretDto, RuntimeProfileDto,
};
use conman_core::domain::runtime_profile::input::{ProfileInput, ProfilePatch};
use conman_core::domain::runtime_profile::{
    EnvValue, ProfileOverrideInput, ProfileRevision, RevisionReason, SecretPlaintext,
};
use conman_core::ids::{AppId, ChangesetId, RuntimeProfileId};
use conman_core::ports::store::PageRequest;
use conman_core::services::ProfileView;
use conman_core::Error;
use serde_json::{Map, Value};

use super::body::{object, read_bytes, request};
use super::resolve_app;
use crate::output::{CoreError, CoreResult, Output};
use crate::session::Session;

/// `conman profile ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCmd {
    /// Create a runtime profile (app admins). The optional body is the API's
    /// create body (JSON: base_url, env_vars, secrets, database, ...).
    New {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Profile name (slug, unique within the app).
        name: String,
        /// persistent_env, temp_workspace or temp_changeset (default persistent_env).
        #[arg(long)]
        kind: Option<String>,
        /// JSON body; `-` reads stdin (keeps secrets off the command line).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// List the app's profiles, by name.
    Ls {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Page, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Page size (1-100).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show a profile (secrets masked).
    Show {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Profile name or id.
        profile: String,
    },
    /// Change a profile as one new revision (app admins): a JSON patch from
    /// --file and/or --set / --unset.
    Edit {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Profile name or id.
        profile: String,
        /// JSON patch (set_env_vars, unset_env_vars, set_secrets, ...); `-` reads stdin.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Set an env var: KEY=TYPE:VALUE with TYPE string, number, boolean or json (repeatable).
        #[arg(long = "set", value_name = "KEY=TYPE:VALUE")]
        set: Vec<String>,
        /// Remove an env var (or, when no env var has that name, a secret) (repeatable).
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
    },
    /// Secrets of a profile.
    #[command(subcommand)]
    Secret(SecretCmd),
    /// A profile's revisions, newest first.
    Revisions {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Profile name or id.
        profile: String,
        /// Page, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Page size (1-100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Restore an earlier revision as a new one (app admins).
    Revert {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Profile name or id.
        profile: String,
        /// The revision to restore.
        revision: u32,
    },
    /// Print a secret's plaintext (app admins; audited, without the value).
    Reveal {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Profile name or id.
        profile: String,
        /// Secret name.
        key: String,
    },
}

/// `conman profile secret ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SecretCmd {
    /// Set (add or replace) a secret; the value is read from stdin, never the command line.
    Set {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Profile name or id.
        profile: String,
        /// Secret name.
        key: String,
    },
}

pub(crate) fn bad_input(field: &str, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CoreError(Error::invalid(field, "invalid", message.into())))
}

/// Core results of secret operations: an internal error (e.g. a value that
/// does not decrypt: wrong master key or tampered ciphertext) shows its
/// cause, which names the secret but never holds a value — the CLI's
/// stderr is the operator's log.
pub(crate) trait SecretResult<T> {
    fn secret(self) -> anyhow::Result<T>;
}

impl<T> SecretResult<T> for Result<T, Error> {
    fn secret(self) -> anyhow::Result<T> {
        match self {
            Err(Error::Internal(cause)) => Err(anyhow::anyhow!("internal: {cause}")),
            other => other.core(),
        }
    }
}

/// The server's start-up check of the master key: refuses a key other than
/// the one that wrapped the stored secrets (and records the key on an
/// installation that has none yet).
pub(crate) async fn check_master_key(s: &Session) -> anyhow::Result<()> {
    match s.conman.ensure_secrets_key().await {
        Ok(()) => Ok(()),
        Err(Error::Conflict { message, .. }) => {
            Err(anyhow::Error::new(CoreError(Error::conflict(format!("refusing to use this master key: {message}")))))
        }
        Err(e) => Err(e).secret(),
    }
}

/// Resolves a profile given by id or by name.
pub(crate) async fn resolve_profile(s: &Session, app_id: AppId, profile: &str) -> anyhow::Result<RuntimeProfileId> {
    if let Ok(id) = profile.trim().parse::<RuntimeProfileId>() {
        return Ok(id);
    }
    let mut page = PageRequest { page: 1, limit: PageRequest::MAX_LIMIT };
    loop {
        let list = s.conman.list_runtime_profiles(&s.actor, app_id, page).await.secret()?;
        if let Some(v) = list.items.iter().find(|v| v.profile.name == profile) {
            return Ok(v.profile.id);
        }
        if u64::from(page.page) * u64::from(page.limit) >= list.total {
            return Err(anyhow::Error::new(CoreError(Error::NotFound(RuntimeProfileId::KIND)))
                .context(format!("no runtime profile named {profile:?} in this app")));
        }
        page.page += 1;
    }
}

/// `KEY=TYPE:VALUE` → (KEY, `{"type": TYPE, "value": VALUE}`). Values of
/// number, boolean and json are JSON; a string is taken as it is.
fn parse_set(arg: &str) -> anyhow::Result<(String, Value)> {
    let usage = || bad_input("set", format!("--set {arg:?}: expected KEY=TYPE:VALUE, e.g. REPLICAS=number:3"));
    let (key, typed) = arg.split_once('=').ok_or_else(usage)?;
    let (ty, raw) = typed.split_once(':').ok_or_else(usage)?;
    if key.is_empty() {
        return Err(usage());
    }
    let value = match ty {
        "string" => Value::String(raw.to_owned()),
        // A value that is not JSON goes through as text, so the core's type
        // check says precisely what is wrong with it.
        "number" | "boolean" | "json" => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned())),
        other => {
            return Err(bad_input(
                "set",
                format!("--set {key}: unknown type {other:?}; use string, number, boolean or json"),
            ))
        }
    };
    Ok((key.to_owned(), serde_json::json!({ "type": ty, "value": value })))
}

fn env_value(v: &EnvValue) -> String {
    match v {
        EnvValue::String(s) => format!("{s:?}"),
        EnvValue::Number(n) => n.to_string(),
        EnvValue::Boolean(b) => b.to_string(),
        EnvValue::Json(j) => j.to_string(),
    }
}

fn profile_line(v: &ProfileView) -> String {
    let p = &v.profile;
    format!(
        "{}  {:<24} {:<14} r{:<4} {} env vars, {} secrets",
        p.id,
        p.name,
        wire(&p.kind),
        p.revision,
        p.env_vars.len(),
        p.secrets.len()
    )
}

/// The wire name of a serde enum value.
pub(crate) fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn show_profile(v: &ProfileView) -> String {
    let p = &v.profile;
    let mut lines = vec![
        format!("{} ({}), revision {}", p.name, wire(&p.kind), p.revision),
        format!("id:            {}", p.id),
        format!("base url:      {}", p.base_url.as_deref().unwrap_or("-")),
    ];
    lines.push(format!("env vars ({}):", p.env_vars.len()));
    for (k, val) in &p.env_vars {
        lines.push(format!("  {k} = {} ({})", env_value(val), val.env_type().as_str()));
    }
    lines.push(format!("secrets ({}):", v.masked_secrets.len()));
    for (k, m) in &v.masked_secrets {
        lines.push(format!("  {k} = {} (set in revision {})", m.mask, m.revision));
    }
    let db = &p.database;
    lines.push(format!(
        "database:      {} ({}){}{}",
        wire(&db.engine),
        wire(&db.provisioning_mode),
        db.connection_ref.as_deref().map(|r| format!(", connection from secret {r}")).unwrap_or_default(),
        db.base_profile_id.map(|b| format!(", base profile {b}")).unwrap_or_default()
    ));
    let m = &p.migrations;
    lines.push(format!(
        "migrations:    {}{}",
        if m.paths.is_empty() { "-".to_owned() } else { m.paths.join(", ") },
        m.command.as_deref().map(|c| format!(" via {c:?}")).unwrap_or_default()
    ));
    lines.push(format!("data strategy: {}", wire(&p.data_strategy)));
    let l = &p.lifecycle;
    lines.push(format!(
        "lifecycle:     idle TTL {} h, grace {} h, auto cleanup {}",
        l.idle_ttl_hours, l.grace_hours, l.auto_cleanup
    ));
    lines.join("\n")
}

fn revision_line(r: &ProfileRevision) -> String {
    let why = match r.reason {
        RevisionReason::Create => "created".to_owned(),
        RevisionReason::Patch => "edited".to_owned(),
        RevisionReason::Revert { to_revision } => format!("reverted to revision {to_revision}"),
    };
    format!(
        "r{:<4} {}  {:<24} by {}  ({} env vars, {} secrets)",
        r.number,
        r.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        why,
        r.author,
        r.document.env_vars.len(),
        r.document.secrets.len()
    )
}

/// Reads one secret value from stdin: all of it, without one trailing
/// newline (so `echo value |` and `printf value |` agree).
fn secret_from_stdin(key: &str) -> anyhow::Result<SecretPlaintext> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        eprint!("value of {key} (input is visible; end with Ctrl-D): ");
    }
    let mut value = String::new();
    std::io::stdin().read_to_string(&mut value)?;
    let value = value.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&value);
    if value.is_empty() {
        return Err(bad_input("value", format!("no value for secret {key}: pipe it on stdin")));
    }
    Ok(SecretPlaintext::new(value))
}

impl ProfileCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let (c, a) = (&s.conman, &s.actor);
        check_master_key(s).await?;
        match self {
            ProfileCmd::New { app, name, kind, file } => {
                let app_id = resolve_app(s, &app).await?;
                let mut body = match &file {
                    Some(path) => object(&read_bytes(path)?, None)?,
                    None => Map::new(),
                };
                match body.get("name") {
                    Some(Value::String(n)) if *n != name => {
                        return Err(bad_input("name", format!("the file names the profile {n:?}, not {name:?}")))
                    }
                    _ => {
                        body.insert("name".into(), Value::String(name));
                    }
                }
                match (body.get("kind"), kind) {
                    (Some(Value::String(k)), Some(flag)) if *k != flag => {
                        return Err(bad_input("kind", format!("the file says kind {k:?}, --kind says {flag:?}")))
                    }
                    (Some(_), _) => {}
                    (None, flag) => {
                        body.insert("kind".into(), Value::String(flag.unwrap_or_else(|| "persistent_env".into())));
                    }
                }
                let input = ProfileInput::from(request::<CreateProfileRequest>(body)?);
                let view = c.create_runtime_profile(a, app_id, input).await.secret()?;
                out.show(&RuntimeProfileDto::from(&view), |_| {
                    format!("created profile {} ({}) at revision 1", view.profile.name, view.profile.id)
                });
            }
            ProfileCmd::Ls { app, page, limit } => {
                let app_id = resolve_app(s, &app).await?;
                let request = PageRequest::new(Some(page), Some(limit)).core()?;
                let list = c.list_runtime_profiles(a, app_id, request).await.secret()?;
                let dtos: Vec<RuntimeProfileDto> = list.items.iter().map(RuntimeProfileDto::from).collect();
                out.show(&dtos, |_| {
                    let mut lines: Vec<String> = list.items.iter().map(profile_line).collect();
                    if list.total == 0 {
                        lines.push("no runtime profiles".into());
                    } else if u64::from(page - 1) * u64::from(limit) + (list.items.len() as u64) < list.total {
                        lines.push(format!("(page {page}: {} of {}; more with --page)", list.items.len(), list.total));
                    }
                    lines.join("\n")
                });
            }
            ProfileCmd::Show { app, profile } => {
                let app_id = resolve_app(s, &app).await?;
                let id = resolve_profile(s, app_id, &profile).await?;
                let view = c.get_runtime_profile(a, app_id, id).await.secret()?;
                out.show(&RuntimeProfileDto::from(&view), |_| show_profile(&view));
            }
            ProfileCmd::Edit { app, profile, file, set, unset } => {
                let app_id = resolve_app(s, &app).await?;
                let id = resolve_profile(s, app_id, &profile).await?;
                let mut body = match &file {
                    Some(path) => object(&read_bytes(path)?, None)?,
                    None => Map::new(),
                };
                if !unset.is_empty() {
                    let current = c.get_runtime_profile(a, app_id, id).await.secret()?.profile;
                    for key in unset {
                        let field = if current.env_vars.contains_key(&key) || !current.secrets.contains_key(&key) {
                            "unset_env_vars"
                        } else {
                            "unset_secrets"
                        };
                        let list = body.entry(field).or_insert_with(|| Value::Array(Vec::new()));
                        let Value::Array(list) = list else {
                            return Err(bad_input(field, format!("{field} must be a list")));
                        };
                        list.push(Value::String(key));
                    }
                }
                for arg in &set {
                    let (key, value) = parse_set(arg)?;
                    let vars = body.entry("set_env_vars").or_insert_with(|| Value::Object(Map::new()));
                    let Value::Object(vars) = vars else {
                        return Err(bad_input("set_env_vars", "set_env_vars must be an object"));
                    };
                    if vars.insert(key.clone(), value).is_some() {
                        return Err(bad_input("set", format!("{key} is set twice")));
                    }
                }
                if body.is_empty() {
                    return Err(bad_input("patch", "nothing to change: pass --file, --set or --unset"));
                }
                let patch = ProfilePatch::from(request::<PatchProfileRequest>(body)?);
                let view = c.patch_runtime_profile(a, app_id, id, patch).await.secret()?;
                out.show(&RuntimeProfileDto::from(&view), |_| {
                    format!("updated profile {}: revision {}", view.profile.name, view.profile.revision)
                });
            }
            ProfileCmd::Secret(SecretCmd::Set { app, profile, key }) => {
                let app_id = resolve_app(s, &app).await?;
                let id = resolve_profile(s, app_id, &profile).await?;
                let value = secret_from_stdin(&key)?;
                let patch = ProfilePatch { set_secrets: BTreeMap::from([(key.clone(), value)]), ..Default::default() };
                let view = c.patch_runtime_profile(a, app_id, id, patch).await.secret()?;
                out.show(&RuntimeProfileDto::from(&view), |_| {
                    let mask = view.masked_secrets.get(&key).map(|m| m.mask.as_str()).unwrap_or("");
                    format!("set secret {key} ({mask}) on {}: revision {}", view.profile.name, view.profile.revision)
                });
            }
            ProfileCmd::Revisions { app, profile, page, limit } => {
                let app_id = resolve_app(s, &app).await?;
                let id = resolve_profile(s, app_id, &profile).await?;
                let request = PageRequest::new(Some(page), Some(limit)).core()?;
                let list = c.runtime_profile_revisions(a, app_id, id, request).await.secret()?;
                let dtos: Vec<ProfileRevisionDto> = list.items.iter().map(ProfileRevisionDto::from).collect();
                out.show(&dtos, |_| {
                    let mut lines: Vec<String> = list.items.iter().map(revision_line).collect();
                    if u64::from(page - 1) * u64::from(limit) + (list.items.len() as u64) < list.total {
                        lines.push(format!("(page {page}: {} of {}; more with --page)", list.items.len(), list.total));
                    }
                    lines.join("\n")
                });
            }
            ProfileCmd::Revert { app, profile, revision } => {
                let app_id = resolve_app(s, &app).await?;
                let id = resolve_profile(s, app_id, &profile).await?;
                let view = c.revert_runtime_profile(a, app_id, id, revision).await.secret()?;
                out.show(&RuntimeProfileDto::from(&view), |_| {
                    format!(
                        "restored revision {revision} of {} as revision {}",
                        view.profile.name, view.profile.revision
                    )
                });
            }
            ProfileCmd::Reveal { app, profile, key } => {
                let app_id = resolve_app(s, &app).await?;
                let id = resolve_profile(s, app_id, &profile).await?;
                let value = c.reveal_secret(a, app_id, id, &key).await.secret()?;
                let dto = RevealedSecretDto { key, value: value.expose_str().secret()?.to_owned() };
                out.show(&dto, |d| d.value.clone());
            }
        }
        Ok(())
    }
}

/// Reads a list of profile overrides from `path` (`-`: stdin): the API's
/// body `{"profile_overrides": [...]}`, or the bare list.
pub(crate) fn read_override_list(path: &Path) -> anyhow::Result<Vec<ProfileOverrideInput>> {
    let body = object(&read_bytes(path)?, Some("profile_overrides"))?;
    Ok(request::<PutProfileOverridesRequest>(body)?.into_input())
}

/// `conman cs overrides --app A ID [--file F]`: prints a changeset's profile
/// overrides, or replaces them with the list in `file` (see
/// [`read_override_list`]).
pub(crate) async fn changeset_overrides(
    s: &Session,
    out: &Output,
    app_id: AppId,
    cs_id: ChangesetId,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    let (c, a) = (&s.conman, &s.actor);
    let list = match file {
        None => c.changeset_profile_overrides(a, app_id, cs_id).await.secret()?,
        Some(path) => {
            check_master_key(s).await?;
            let input = read_override_list(path)?;
            c.put_changeset_profile_overrides(a, app_id, cs_id, input).await.secret()?
        }
    };
    out.show(&ProfileOverridesDto::new(&list), |d| {
        if d.profile_overrides.is_empty() {
            return format!("changeset {cs_id} has no profile overrides");
        }
        let mut lines = Vec::new();
        for o in &d.profile_overrides {
            lines.push(format!("override for {}", o.target));
            for (k, v) in &o.env_vars {
                lines.push(format!("  {k} = {} ({})", v.value, v.ty));
            }
            for k in &o.secrets {
                lines.push(format!("  {k} = [secret]"));
            }
        }
        lines.join("\n")
    });
    Ok(())
}
