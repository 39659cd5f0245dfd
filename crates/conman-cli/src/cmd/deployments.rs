//! `conman deploy | promote | rollback | approve | deployments`: moving
//! published releases through an app's environments (SPEC §2.5), the same
//! core calls as the HTTP API's deployment routes. Environments are named
//! by name or id. `--follow` waits for the deployment to end — through its
//! approvals when it is an exception, then its job's log — with a spinner
//! on a terminal, and exits non-zero unless it succeeded. `--json` prints
//! the API's `data` (`DeploymentStartedDto` for a start, `DeploymentDto`
//! otherwise).

use std::time::Duration;

use clap::Subcommand;
use conman_api::dto::{DeploymentDto, DeploymentStartedDto};
use conman_core::domain::deployment::{Deployment, DeploymentState, EXCEPTION_APPROVALS};
use conman_core::domain::environment::Environment;
use conman_core::ids::{AppId, DeploymentId, ReleaseId};
use conman_core::ports::store::{DeploymentFilter, PageRequest};
use conman_core::services::{DeployRequest, DeploymentStarted};

use super::jobs::follow_job;
use super::resolve_app;
use crate::output::{CoreResult, Output, Spinner};
use crate::session::Session;

/// How long `--follow` waits between reads of a deployment.
const POLL: Duration = Duration::from_millis(300);

/// `conman deploy`: a published release to one environment, or to several
/// at once (a concurrent batch: two approvals).
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    /// App id or name.
    #[arg(long)]
    app: String,
    /// The published release (id).
    #[arg(long)]
    release: String,
    /// Environment names or ids; more than one needs --concurrent-batch.
    #[arg(required = true)]
    environments: Vec<String>,
    /// Acknowledge that this deploy skips a stage (it waits for two approvals).
    #[arg(long)]
    skip_stage: bool,
    /// Acknowledge that several environments are deployed at once (two approvals).
    #[arg(long)]
    concurrent_batch: bool,
    /// An app admin's reason for deploying inside a freeze window (audited).
    #[arg(long, value_name = "REASON")]
    freeze_override: Option<String>,
    /// Wait until the deployment ends, following its log.
    #[arg(long)]
    follow: bool,
}

/// `conman promote`: the release on the previous stage to this one.
#[derive(Debug, clap::Args)]
pub(crate) struct PromoteArgs {
    /// App id or name.
    #[arg(long)]
    app: String,
    /// The environment promoted to (name or id); the release comes from the stage before it.
    environment: String,
    /// Insist on this release (it must be the one on the stage before).
    #[arg(long)]
    release: Option<String>,
    /// An app admin's reason for deploying inside a freeze window (audited).
    #[arg(long, value_name = "REASON")]
    freeze_override: Option<String>,
    /// Wait until the deployment ends, following its log.
    #[arg(long)]
    follow: bool,
}

/// `conman rollback`: redeploy an earlier published release
/// (`redeploy_prior`), or with `--revert` revert the running release on the
/// integration branch, publish the revert and deploy it (`revert_and_release`).
#[derive(Debug, clap::Args)]
pub(crate) struct RollbackArgs {
    /// App id or name.
    #[arg(long)]
    app: String,
    /// The environment rolled back (name or id).
    environment: String,
    /// The earlier release to put back (default: the one it ran before);
    /// with --revert, the release reverted (it must be the one running).
    #[arg(long)]
    release: Option<String>,
    /// Revert the running release and deploy the revert as a new release.
    #[arg(long)]
    revert: bool,
    /// An app admin's reason for deploying inside a freeze window (audited).
    #[arg(long, value_name = "REASON")]
    freeze_override: Option<String>,
    /// Wait until the deployment ends, following its log.
    #[arg(long)]
    follow: bool,
}

/// `conman approve`: approve a pending exception as yourself; prints its
/// batch (started when this was the last approval needed).
#[derive(Debug, clap::Args)]
pub(crate) struct ApproveArgs {
    /// App id or name.
    #[arg(long)]
    app: String,
    /// The pending deployment (id).
    deployment: String,
    /// Wait until the deployment ends (when this approval starts it).
    #[arg(long)]
    follow: bool,
}

/// `conman deployments ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DeploymentsCmd {
    /// List deployments, newest first.
    Ls {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Only this environment (name or id).
        #[arg(long = "env")]
        environment: Option<String>,
        /// Only this state (pending, running, succeeded, failed, canceled).
        #[arg(long)]
        state: Option<String>,
        /// Only this release (id).
        #[arg(long)]
        release: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one deployment; `--follow` waits for it to end.
    Show {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Deployment id.
        deployment: String,
        /// Wait until it ends, following its log.
        #[arg(long)]
        follow: bool,
    },
    /// Reject a pending exception (it and its batch are canceled).
    Reject {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Deployment id.
        deployment: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Cancel a deployment that waits for approvals.
    Cancel {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Deployment id.
        deployment: String,
    },
}

/// Resolves an environment given by name or id among the app's.
pub(crate) async fn resolve_environment(s: &Session, app_id: AppId, env: &str) -> anyhow::Result<Environment> {
    let envs = s.conman.list_environments(&s.actor, app_id).await.core()?;
    envs.into_iter()
        .find(|e| e.name == env || e.id.to_string() == env)
        .ok_or_else(|| anyhow::anyhow!("no environment named {env} in this app"))
}

fn deployment_line(d: &DeploymentDto) -> String {
    let exception = d.exception.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
    let failure = d.failure.as_deref().map(|f| format!("  {f}")).unwrap_or_default();
    format!(
        "{}  {:<9} {:<14} env {}  release {}{exception}{failure}",
        d.id, d.state, d.kind, d.environment_id, d.release_id
    )
}

fn deployment_detail(d: &DeploymentDto) -> String {
    let mut lines = vec![deployment_line(d), format!("commit    {}", d.commit)];
    if let Some(previous) = &d.previous_commit {
        lines.push(format!("previous  {previous}"));
    }
    if let Some(rolled_back) = d.rolled_back_release_id {
        lines.push(format!("rolls back release {rolled_back}"));
    }
    if d.exception.is_some() {
        lines.push(format!("approvals {}/{EXCEPTION_APPROVALS}", d.approvals.len()));
        for a in &d.approvals {
            lines.push(format!("  {} ({}) at {}", a.user_id, a.role, a.at));
        }
    }
    if let Some(r) = &d.rejection {
        lines.push(format!("rejected by {}: {}", r.user_id, r.reason.as_deref().unwrap_or("no reason given")));
    }
    if let Some(job) = d.job_id {
        lines.push(format!("job       {job}"));
    }
    lines.join("\n")
}

fn started_lines(started: &[DeploymentStartedDto]) -> String {
    started
        .iter()
        .map(|s| {
            let d = &s.deployment;
            match (&s.job, d.exception.as_deref()) {
                (Some(job), _) => format!("deployment {} to {} started (job {})", d.id, d.environment_id, job.id),
                (None, Some(e)) => format!(
                    "deployment {} to {} waits for approvals ({}/{EXCEPTION_APPROVALS}, {e}): conman approve {}",
                    d.id,
                    d.environment_id,
                    d.approvals.len(),
                    d.id
                ),
                (None, None) => format!("deployment {} to {}: {}", d.id, d.environment_id, d.state),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ended(state: DeploymentState) -> bool {
    matches!(state, DeploymentState::Succeeded | DeploymentState::Failed | DeploymentState::Canceled)
}

/// Waits for a deployment to end: through its approvals while it is a
/// pending exception, then following its job's log (lines to stderr).
/// Answers the ended deployment.
async fn follow_deployment(s: &Session, out: &Output, app_id: AppId, id: DeploymentId) -> anyhow::Result<Deployment> {
    let mut spinner = Spinner::on_terminal();
    let mut followed = false;
    loop {
        let d = s.conman.get_deployment(&s.actor, app_id, id).await.core()?;
        if ended(d.state) {
            spinner.clear();
            return Ok(d);
        }
        match d.job_id {
            Some(job) if !followed => {
                spinner.clear();
                follow_job(s, app_id, job, |page, _| {
                    if !out.json {
                        for line in &page.lines {
                            eprintln!("{}", line.text);
                        }
                    }
                })
                .await?;
                followed = true;
            }
            Some(_) => spinner.tick("finishing"),
            None => spinner.tick(&format!(
                "waiting for approvals ({}/{EXCEPTION_APPROVALS})",
                d.approvals.len().min(EXCEPTION_APPROVALS)
            )),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How a command prints: one object (promote, rollback) or a list (deploy
/// and approve, which may start a batch), as the HTTP API answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    One,
    List,
}

/// Prints what started; with `follow`, waits for each deployment to end,
/// prints the ended deployments instead and fails unless all succeeded.
async fn report_started(
    s: &Session,
    out: &Output,
    app_id: AppId,
    started: &[DeploymentStarted],
    shape: Shape,
    follow: bool,
) -> anyhow::Result<()> {
    let dtos: Vec<DeploymentStartedDto> = started.iter().map(DeploymentStartedDto::from).collect();
    if !follow {
        match (shape, dtos.first()) {
            (Shape::One, Some(one)) => out.show(one, |d| started_lines(std::slice::from_ref(d))),
            _ => out.show(&dtos, |l| started_lines(l)),
        }
        return Ok(());
    }
    if !out.json {
        eprintln!("{}", started_lines(&dtos));
    }
    let mut finished = Vec::with_capacity(started.len());
    for st in started {
        finished.push(follow_deployment(s, out, app_id, st.deployment.id).await?);
    }
    let dtos: Vec<DeploymentDto> = finished.iter().map(DeploymentDto::from).collect();
    match (shape, dtos.first()) {
        (Shape::One, Some(one)) => out.show(one, deployment_detail),
        _ => out.show(&dtos, |l| l.iter().map(deployment_line).collect::<Vec<_>>().join("\n")),
    }
    match finished.iter().find(|d| d.state != DeploymentState::Succeeded) {
        Some(d) => anyhow::bail!(
            "deployment {} ended {}: {}",
            d.id,
            d.state.as_str(),
            d.failure.as_deref().unwrap_or("see its job log")
        ),
        None => Ok(()),
    }
}

fn release_id(raw: Option<&str>) -> anyhow::Result<Option<ReleaseId>> {
    raw.map(|r| r.parse::<ReleaseId>().core()).transpose()
}

impl DeployArgs {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let app_id = resolve_app(s, &self.app).await?;
        let mut environment_ids = Vec::with_capacity(self.environments.len());
        for env in &self.environments {
            environment_ids.push(resolve_environment(s, app_id, env).await?.id);
        }
        let request = DeployRequest {
            release_id: self.release.parse().core()?,
            environment_ids,
            is_skip_stage: self.skip_stage,
            is_concurrent_batch: self.concurrent_batch,
            freeze_override: self.freeze_override,
        };
        let started = s.conman.deploy_release(&s.actor, app_id, request).await.core()?;
        report_started(s, out, app_id, &started, Shape::List, self.follow).await
    }
}

impl PromoteArgs {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let app_id = resolve_app(s, &self.app).await?;
        let target = resolve_environment(s, app_id, &self.environment).await?.id;
        let release = release_id(self.release.as_deref())?;
        let started = s
            .conman
            .promote_release(&s.actor, app_id, target, release, self.freeze_override.as_deref())
            .await
            .core()?;
        report_started(s, out, app_id, &[started], Shape::One, self.follow).await
    }
}

impl RollbackArgs {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let app_id = resolve_app(s, &self.app).await?;
        let env = resolve_environment(s, app_id, &self.environment).await?.id;
        let release = release_id(self.release.as_deref())?;
        let reason = self.freeze_override.as_deref();
        let started = if self.revert {
            s.conman.revert_and_release(&s.actor, app_id, env, release, reason).await.core()?
        } else {
            s.conman.redeploy_prior(&s.actor, app_id, env, release, reason).await.core()?
        };
        report_started(s, out, app_id, &[started], Shape::One, self.follow).await
    }
}

impl ApproveArgs {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let app_id = resolve_app(s, &self.app).await?;
        let id: DeploymentId = self.deployment.parse().core()?;
        let started = s.conman.approve_deployment(&s.actor, app_id, id).await.core()?;
        report_started(s, out, app_id, &started, Shape::List, self.follow).await
    }
}

impl DeploymentsCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let (c, a) = (&s.conman, &s.actor);
        match self {
            DeploymentsCmd::Ls { app, environment, state, release, limit } => {
                let app_id = resolve_app(s, &app).await?;
                let environment_id = match environment {
                    Some(env) => Some(resolve_environment(s, app_id, &env).await?.id),
                    None => None,
                };
                let filter = DeploymentFilter {
                    environment_id,
                    state: state.as_deref().map(DeploymentState::parse).transpose().core()?,
                    release_id: release_id(release.as_deref())?,
                    group_id: None,
                };
                let page = PageRequest::new(Some(1), Some(limit)).core()?;
                let list = c.list_deployments(a, app_id, filter, page).await.core()?;
                let dtos: Vec<DeploymentDto> = list.items.iter().map(DeploymentDto::from).collect();
                out.show(&dtos, |l| {
                    if l.is_empty() {
                        "no deployments".to_owned()
                    } else {
                        l.iter().map(deployment_line).collect::<Vec<_>>().join("\n")
                    }
                });
            }
            DeploymentsCmd::Show { app, deployment, follow } => {
                let app_id = resolve_app(s, &app).await?;
                let id: DeploymentId = deployment.parse().core()?;
                let d = if follow {
                    follow_deployment(s, out, app_id, id).await?
                } else {
                    c.get_deployment(a, app_id, id).await.core()?
                };
                out.show(&DeploymentDto::from(&d), deployment_detail);
                if follow && d.state != DeploymentState::Succeeded {
                    anyhow::bail!("deployment {id} ended {}", d.state.as_str());
                }
            }
            DeploymentsCmd::Reject { app, deployment, reason } => {
                let app_id = resolve_app(s, &app).await?;
                let ended =
                    c.reject_deployment(a, app_id, deployment.parse().core()?, reason.as_deref()).await.core()?;
                let dtos: Vec<DeploymentDto> = ended.iter().map(DeploymentDto::from).collect();
                out.show(&dtos, |l| {
                    l.iter().map(|d| format!("rejected deployment {}", d.id)).collect::<Vec<_>>().join("\n")
                });
            }
            DeploymentsCmd::Cancel { app, deployment } => {
                let app_id = resolve_app(s, &app).await?;
                let ended = c.cancel_deployment(a, app_id, deployment.parse().core()?).await.core()?;
                let dtos: Vec<DeploymentDto> = ended.iter().map(DeploymentDto::from).collect();
                out.show(&dtos, |l| {
                    l.iter().map(|d| format!("canceled deployment {}", d.id)).collect::<Vec<_>>().join("\n")
                });
            }
        }
        Ok(())
    }
}
