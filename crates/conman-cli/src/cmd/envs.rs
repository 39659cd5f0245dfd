//! `conman env`: an app's environments (SPEC §2.5) — list them, show one's
//! status (release, drift, freeze, deployments), start a drift check,
//! manage its freeze windows (`conman env freeze`), or replace
//! the whole ordered list (app admins) from a JSON file of
//! `{name, position, is_canonical, runtime_profile_id}` (a bare list or the
//! API's `{"environments": [...]}`). As a convenience `runtime_profile_id`
//! may hold a profile's name instead of its id. `--json` prints the HTTP
//! API's `data` (`EnvironmentDto`).

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Subcommand;
use conman_api::dto::{
    ChangesetDto, EnvironmentDto, EnvironmentStatusDto, JobEnvelope, MigrationExecutionDto, ReplaceEnvironmentsRequest,
};
use conman_core::domain::environment::Environment;
use conman_core::domain::job::JobState;
use conman_core::ids::{AppId, RuntimeProfileId};
use conman_core::ports::store::PageRequest;
use serde_json::Value;

use super::body::{object, read_bytes, request};
use super::deployments::resolve_environment;
use super::freezes::FreezeCmd;
use super::jobs::follow_job;
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
    /// What an environment runs: its release and commit, drift, freeze, deployments.
    Status {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Environment name or id.
        environment: String,
    },
    /// Run the deploy gate against a drifted environment's current profile;
    /// when it passes the environment takes deploys again.
    DriftCheck {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Environment name or id.
        environment: String,
        /// Wait for the check, following its log.
        #[arg(long)]
        follow: bool,
    },
    /// Open a drift-fix changeset recording a drifted environment's current
    /// profile as intended (reviewed, released and deployed like any other).
    DriftFix {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Environment name or id.
        environment: String,
    },
    /// The migration execution records of an environment, newest first.
    Migrations {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Environment name or id.
        environment: String,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Deploy freeze windows: ls, add, rm.
    #[command(subcommand)]
    Freeze(FreezeCmd),
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

fn status_lines(st: &EnvironmentStatusDto) -> String {
    let e = &st.environment;
    let mut lines = vec![format!("{} ({})  position {}", e.name, e.id, e.position)];
    lines.push(match (&st.current_release_id, &st.current_commit) {
        (Some(release), Some(commit)) => format!("release   {release} at {commit}"),
        (Some(release), None) => format!("release   {release}"),
        _ => "release   none deployed".to_owned(),
    });
    lines.push(match &st.drift {
        None => "drift     none".to_owned(),
        Some(d) if d.keys.is_empty() => "drift     DRIFTED (migration records changed): deploys refused".to_owned(),
        Some(d) => format!("drift     DRIFTED on {}: deploys refused until a drift check passes", d.keys.join(", ")),
    });
    lines.push(match &st.freeze {
        None => "freeze    none in force".to_owned(),
        Some(w) => format!("freeze    FROZEN ({}): {}", w.id, w.reason),
    });
    if let Some(d) = &st.active_deployment {
        lines.push(format!("active    deployment {} ({}, {})", d.id, d.kind, d.state));
    }
    if let Some(d) = &st.last_deployment {
        let failure = d.failure.as_deref().map(|f| format!(": {f}")).unwrap_or_default();
        lines.push(format!("last      deployment {} ({}, {}){failure}", d.id, d.kind, d.state));
        if let Some(rolled_back) = d.rolled_back_release_id {
            lines.push(format!("          rolled back release {rolled_back}"));
        }
    }
    lines.join("\n")
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
            EnvCmd::Status { app, environment } => {
                let app_id = resolve_app(s, &app).await?;
                let env = resolve_environment(s, app_id, &environment).await?;
                let status = c.environment_status(a, app_id, env.id).await.core()?;
                out.show(&EnvironmentStatusDto::from(&status), status_lines);
            }
            EnvCmd::DriftCheck { app, environment, follow } => {
                let app_id = resolve_app(s, &app).await?;
                let env = resolve_environment(s, app_id, &environment).await?;
                let job = c.start_drift_check(a, app_id, env.id).await.core()?;
                if !follow {
                    let started = JobEnvelope { job: (&job).into() };
                    out.show(&started, |j| format!("drift check of {} started (job {})", env.name, j.job.id));
                    return Ok(());
                }
                let job = follow_job(s, app_id, job.id, |page, _| {
                    if !out.json {
                        for line in &page.lines {
                            eprintln!("{}", line.text);
                        }
                    }
                })
                .await?;
                let status = c.environment_status(a, app_id, env.id).await.core()?;
                out.show(&EnvironmentStatusDto::from(&status), status_lines);
                if job.state != JobState::Succeeded {
                    anyhow::bail!(
                        "the drift check of {} ended {}: the environment stays drifted",
                        env.name,
                        job.state.as_str()
                    );
                }
            }
            EnvCmd::DriftFix { app, environment } => {
                let app_id = resolve_app(s, &app).await?;
                let env = resolve_environment(s, app_id, &environment).await?;
                let cs = c.create_drift_fix_changeset(a, app_id, env.id).await.core()?;
                out.show(&ChangesetDto::from(&cs), |d| {
                    format!("drift-fix changeset {} ({}) on workspace {}", d.id, d.title, d.workspace_id)
                });
            }
            EnvCmd::Migrations { app, environment, limit } => {
                let app_id = resolve_app(s, &app).await?;
                let env = resolve_environment(s, app_id, &environment).await?;
                let page = PageRequest::new(Some(1), Some(limit)).core()?;
                let found = c.list_migration_executions(a, app_id, env.id, page).await.core()?;
                let dtos: Vec<MigrationExecutionDto> = found.items.iter().map(MigrationExecutionDto::from).collect();
                out.show(&dtos, |l| {
                    if l.is_empty() {
                        return format!("no migration records on {}", env.name);
                    }
                    l.iter()
                        .map(|m| {
                            format!(
                                "{}  release {}  profile revision {}  {}",
                                m.recorded_at,
                                m.release_id,
                                m.profile_revision,
                                m.paths.join(", ")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                });
            }
            EnvCmd::Freeze(cmd) => return cmd.run(s, out).await,
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
