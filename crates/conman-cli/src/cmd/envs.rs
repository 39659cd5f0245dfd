//! `conman env`: an app's environments (SPEC §2.5) — list them, or replace
//! the whole ordered list (app admins) from a JSON file of
//! `{name, position, is_canonical, runtime_profile_id}` (a bare list or the
//! API's `{"environments": [...]}`). As a convenience `runtime_profile_id`
//! may hold a profile's name instead of its id. `--json` prints the HTTP
//! API's `data` (`EnvironmentDto`).

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Subcommand;
use conman_api::dto::{EnvironmentDto, ReplaceEnvironmentsRequest};
use conman_core::domain::environment::Environment;
use conman_core::ids::{AppId, RuntimeProfileId};
use conman_core::ports::store::PageRequest;
use serde_json::Value;

use super::body::{object, read_bytes, request};
use super::profiles::{resolve_profile, SecretResult};
use super::resolve_app;
use crate::output::{CoreResult, Output};
use crate::session::Session;

/// `conman env ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EnvCmd {
    /// List the app's environments in order.
    Ls {
        /// App id or name.
        #[arg(long)]
        app: String,
    },
    /// Replace the app's environment list (app admins); ids are kept by name.
    Set {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// JSON list of {name, position, is_canonical, runtime_profile_id (id or name)}; `-` reads stdin.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
    },
}

/// Profile names by id, for the readable layout (empty when unreadable).
async fn profile_names(s: &Session, app_id: AppId) -> HashMap<RuntimeProfileId, String> {
    let page = PageRequest { page: 1, limit: PageRequest::MAX_LIMIT };
    match s.conman.list_runtime_profiles(&s.actor, app_id, page).await {
        Ok(list) => list.items.into_iter().map(|v| (v.profile.id, v.profile.name)).collect(),
        Err(_) => HashMap::new(),
    }
}

fn env_lines(envs: &[Environment], names: &HashMap<RuntimeProfileId, String>) -> String {
    if envs.is_empty() {
        return "no environments".into();
    }
    envs.iter()
        .map(|e| {
            let profile = match e.runtime_profile_id {
                Some(id) => names.get(&id).map_or_else(|| id.to_string(), |n| format!("{n} ({id})")),
                None => "-".into(),
            };
            let canonical = if e.is_canonical { "  [canonical]" } else { "" };
            format!("{:>3}  {:<16} {}  profile {profile}{canonical}", e.position, e.name, e.id)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl EnvCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let (c, a) = (&s.conman, &s.actor);
        match self {
            EnvCmd::Ls { app } => {
                let app_id = resolve_app(s, &app).await?;
                let envs = c.list_environments(a, app_id).await.core()?;
                let names = if out.json { HashMap::new() } else { profile_names(s, app_id).await };
                let dtos: Vec<EnvironmentDto> = envs.iter().map(EnvironmentDto::from).collect();
                out.show(&dtos, |_| env_lines(&envs, &names));
            }
            EnvCmd::Set { app, file } => {
                let app_id = resolve_app(s, &app).await?;
                let mut body = object(&read_bytes(&file)?, Some("environments"))?;
                // Profile names in place of ids.
                if let Some(Value::Array(items)) = body.get_mut("environments") {
                    for item in items.iter_mut() {
                        if let Some(Value::String(profile)) = item.get_mut("runtime_profile_id") {
                            if profile.parse::<RuntimeProfileId>().is_err() {
                                *profile = resolve_profile(s, app_id, profile).await?.to_string();
                            }
                        }
                    }
                }
                let input = request::<ReplaceEnvironmentsRequest>(body)?.into_input();
                let envs = c.replace_environments(a, app_id, input).await.secret()?;
                let names = if out.json { HashMap::new() } else { profile_names(s, app_id).await };
                let dtos: Vec<EnvironmentDto> = envs.iter().map(EnvironmentDto::from).collect();
                out.show(&dtos, |_| env_lines(&envs, &names));
            }
        }
        Ok(())
    }
}
