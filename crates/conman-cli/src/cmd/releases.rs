//! `conman release`: create, select, reorder, assemble, publish, list and
//! show releases; `conman queue`: the release queue.

use clap::Subcommand;
use conman_api::dto::{ChangesetDto, ReleaseDto};
use conman_core::domain::changeset::ChangesetState;
use conman_core::domain::job::JobState;
use conman_core::domain::release::ReleaseState;
use conman_core::ids::{AppId, ChangesetId, ReleaseId};
use conman_core::ports::store::{collect_pages, ChangesetFilter, PageRequest, ReleaseFilter};

use super::jobs::follow_job;
use super::resolve_app;
use crate::output::{CoreResult, Output};
use crate::session::Session;

/// `conman release ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ReleaseCmd {
    /// Create a draft release (config managers).
    New {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Title.
        #[arg(long)]
        title: Option<String>,
    },
    /// Set a draft release's selection, in release order.
    Add {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Release id.
        release: String,
        /// Queued changeset ids, dependencies first.
        #[arg(required = true)]
        changesets: Vec<String>,
    },
    /// Reorder a draft release's selection (the same changesets).
    Reorder {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Release id.
        release: String,
        /// The selected changeset ids in their new order.
        #[arg(required = true)]
        changesets: Vec<String>,
    },
    /// Start assembling a release and wait for it (a server's workers run it).
    Assemble {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Release id.
        release: String,
        /// Answer at once instead of waiting for the assembly.
        #[arg(long)]
        no_wait: bool,
    },
    /// Publish a validated release.
    Publish {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Release id.
        release: String,
    },
    /// List releases, newest first.
    Ls {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Only this state (draft, assembling, validated, published, failed, ...).
        #[arg(long)]
        state: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one release: its changesets and their outcomes, gates, tag.
    Show {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Release id.
        release: String,
    },
}

fn release_line(r: &ReleaseDto) -> String {
    let tag = r.tag.as_deref().unwrap_or("-");
    format!("{}  {:<11} {:<16} {} changesets  {}", r.id, r.state, tag, r.changesets.len(), r.title)
}

fn release_detail(r: &ReleaseDto) -> String {
    let mut lines = vec![release_line(r)];
    if let Some(base) = &r.base_sha {
        lines.push(format!("base      {base}"));
    }
    if let Some(composed) = &r.composed_sha {
        lines.push(format!("composed  {composed}"));
    }
    if let Some(failure) = &r.failure {
        lines.push(format!("failure   {failure}"));
    }
    for c in &r.changesets {
        let outcome = c.outcome.as_deref().unwrap_or("not assembled");
        let mut line = format!("  {}. {}  {outcome}", c.position, c.changeset_id);
        if !c.conflicting_paths.is_empty() {
            line.push_str(&format!(" on {}", c.conflicting_paths.join(", ")));
        }
        if !c.conflicting_keys.is_empty() {
            line.push_str(&format!(" on {}", c.conflicting_keys.join(", ")));
        }
        lines.push(line);
    }
    for g in &r.gates {
        let verdict = match g.passed {
            None => "running".to_owned(),
            Some(true) => "passed".to_owned(),
            Some(false) => format!("failed: {}", g.failure.as_deref().unwrap_or("")),
        };
        lines.push(format!("  gate {}  {verdict}", g.environment.as_deref().unwrap_or("(no environment)")));
    }
    lines.join("\n")
}

fn changeset_ids(raw: &[String]) -> anyhow::Result<Vec<ChangesetId>> {
    raw.iter().map(|id| id.parse::<ChangesetId>().core()).collect()
}

impl ReleaseCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let (c, a) = (&s.conman, &s.actor);
        match self {
            ReleaseCmd::New { app, title } => {
                let app_id = resolve_app(s, &app).await?;
                let release = c.create_release(a, app_id, title.as_deref()).await.core()?;
                out.show(&ReleaseDto::from(&release), |r| format!("created release {}", r.id));
            }
            ReleaseCmd::Add { app, release, changesets } => {
                let app_id = resolve_app(s, &app).await?;
                let ids = changeset_ids(&changesets)?;
                let release = c.set_release_changesets(a, app_id, release.parse().core()?, &ids).await.core()?;
                out.show(&ReleaseDto::from(&release), release_detail);
            }
            ReleaseCmd::Reorder { app, release, changesets } => {
                let app_id = resolve_app(s, &app).await?;
                let ids = changeset_ids(&changesets)?;
                let release = c.reorder_release(a, app_id, release.parse().core()?, &ids).await.core()?;
                out.show(&ReleaseDto::from(&release), release_detail);
            }
            ReleaseCmd::Assemble { app, release, no_wait } => {
                let app_id = resolve_app(s, &app).await?;
                let id: ReleaseId = release.parse().core()?;
                let (release, job) = c.assemble_release(a, app_id, id).await.core()?;
                if no_wait {
                    out.show(&ReleaseDto::from(&release), release_detail);
                    return Ok(());
                }
                if !out.json {
                    eprintln!("assembling release {} (job {})", release.id, job.id);
                }
                let job = follow_job(s, app_id, job.id, |page, _| {
                    if !out.json {
                        for line in &page.lines {
                            eprintln!("{}", line.text);
                        }
                    }
                })
                .await?;
                let release = wait_assembled(s, app_id, id).await?;
                out.show(&ReleaseDto::from(&release), release_detail);
                if job.state != JobState::Succeeded || release.state == ReleaseState::Failed {
                    anyhow::bail!(
                        "release {id} did not assemble: {}",
                        release.failure.as_deref().unwrap_or("see its job log")
                    );
                }
            }
            ReleaseCmd::Publish { app, release } => {
                let app_id = resolve_app(s, &app).await?;
                let mut spinner = crate::output::Spinner::on_terminal();
                spinner.tick("publishing: tag, integration branch, queue revalidation");
                let release = c.publish_release(a, app_id, release.parse().core()?).await.core();
                spinner.clear();
                let release = release?;
                out.show(&ReleaseDto::from(&release), |r| {
                    format!("published release {} as {}", r.id, r.tag.as_deref().unwrap_or("?"))
                });
            }
            ReleaseCmd::Ls { app, state, limit } => {
                let app_id = resolve_app(s, &app).await?;
                let filter = ReleaseFilter { state: state.as_deref().map(ReleaseState::parse).transpose().core()? };
                let page = PageRequest::new(Some(1), Some(limit)).core()?;
                let list = c.list_releases(a, app_id, filter, page).await.core()?;
                let dtos: Vec<ReleaseDto> = list.items.iter().map(ReleaseDto::from).collect();
                out.show(&dtos, |l| l.iter().map(release_line).collect::<Vec<_>>().join("\n"));
            }
            ReleaseCmd::Show { app, release } => {
                let app_id = resolve_app(s, &app).await?;
                let release = c.get_release(a, app_id, release.parse().core()?).await.core()?;
                out.show(&ReleaseDto::from(&release), release_detail);
            }
        }
        Ok(())
    }
}

/// The release once its gates have settled (it left `assembling`),
/// with a bar of the environment gates settled so far on a terminal.
async fn wait_assembled(
    s: &Session,
    app_id: AppId,
    id: ReleaseId,
) -> anyhow::Result<conman_core::domain::release::Release> {
    let steps = crate::output::Steps::new(0, "release gates");
    loop {
        let release = s.conman.get_release(&s.actor, app_id, id).await.core()?;
        let settled = release.gates.iter().filter(|g| g.passed.is_some()).count();
        steps.set(settled as u64, release.gates.len() as u64);
        if release.state != ReleaseState::Assembling {
            return Ok(release);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// `conman queue --app A`: the queued changesets.
pub(crate) async fn queue(s: &Session, out: &Output, app: &str) -> anyhow::Result<()> {
    let app_id = resolve_app(s, app).await?;
    let filter = ChangesetFilter { state: Some(ChangesetState::Queued), author_id: None, ..Default::default() };
    let queued = collect_pages(|page| s.conman.list_changesets(&s.actor, app_id, filter.clone(), page)).await.core()?;
    let dtos: Vec<ChangesetDto> = queued.iter().map(ChangesetDto::from).collect();
    out.show(&dtos, |l| {
        l.iter().map(|c| format!("{}  rev {}  {}", c.id, c.revision, c.title)).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}
