//! `conman jobs`: list, show, follow logs, cancel, and start gate runs.

use std::time::Duration;

use clap::Subcommand;
use conman_api::dto::{JobDto, JobLogDto};
use conman_core::domain::job::{Job, JobState, JobType};
use conman_core::ids::JobId;
use conman_core::ports::store::{JobFilter, PageRequest};
use conman_core::services::GateKind;

use super::resolve_app;
use crate::output::{CoreResult, Output, Spinner};
use crate::session::Session;

/// `conman jobs ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum JobsCmd {
    /// List jobs, newest first.
    Ls {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Only this type (gate_submit, ...).
        #[arg(long = "type")]
        job_type: Option<String>,
        /// Only this state (queued, running, succeeded, failed, canceled).
        #[arg(long)]
        state: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one job.
    Show {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Job id.
        job: String,
    },
    /// Print a job's log; with --follow, keep printing until it finishes.
    Logs {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Job id.
        job: String,
        /// Follow the log while the job runs.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a queued or running job.
    Cancel {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Job id.
        job: String,
    },
    /// Start a gate run on a commit (default: the app's baseline).
    Run {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// submit, release or deploy.
        #[arg(long, default_value = "submit")]
        gate: String,
        /// Full commit sha.
        #[arg(long)]
        commit: Option<String>,
        /// Follow its log until it finishes.
        #[arg(long, short)]
        follow: bool,
    },
}

fn job_line(j: &JobDto) -> String {
    let error = j.error.as_deref().map(|e| format!("  ({e})")).unwrap_or_default();
    format!("{}  {:<14} {:<10} attempts {}/{}{error}", j.id, j.job_type, j.state, j.attempts, j.max_attempts)
}

impl JobsCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let (c, a) = (&s.conman, &s.actor);
        match self {
            JobsCmd::Ls { app, job_type, state, limit } => {
                let app_id = resolve_app(s, &app).await?;
                let filter = JobFilter {
                    job_type: job_type.as_deref().map(JobType::parse).transpose().core()?,
                    state: state.as_deref().map(JobState::parse).transpose().core()?,
                };
                let page = PageRequest::new(Some(1), Some(limit)).core()?;
                let jobs = c.list_jobs(a, app_id, filter, page).await.core()?;
                let dtos: Vec<JobDto> = jobs.items.iter().map(JobDto::from).collect();
                out.show(&dtos, |l| l.iter().map(job_line).collect::<Vec<_>>().join("\n"));
            }
            JobsCmd::Show { app, job } => {
                let app_id = resolve_app(s, &app).await?;
                let job = c.get_job(a, app_id, job.parse::<JobId>().core()?).await.core()?;
                out.show(&JobDto::from(&job), |j| serde_json::to_string_pretty(j).unwrap_or_default());
            }
            JobsCmd::Logs { app, job, follow } => {
                let app_id = resolve_app(s, &app).await?;
                follow_log(s, out, app_id, job.parse::<JobId>().core()?, follow).await?;
            }
            JobsCmd::Cancel { app, job } => {
                let app_id = resolve_app(s, &app).await?;
                let job = c.cancel_job(a, app_id, job.parse::<JobId>().core()?).await.core()?;
                out.show(&JobDto::from(&job), job_line);
            }
            JobsCmd::Run { app, gate, commit, follow } => {
                let gate = match gate.as_str() {
                    "submit" => GateKind::Submit,
                    "release" => GateKind::Release,
                    "deploy" => GateKind::Deploy,
                    other => anyhow::bail!("unknown gate {other}: use submit, release or deploy"),
                };
                let app_id = resolve_app(s, &app).await?;
                let job = c.start_gate_run(a, app_id, gate, commit.as_deref()).await.core()?;
                if follow && !out.json {
                    eprintln!("started {}", job.id);
                    follow_log(s, out, app_id, job.id, true).await?;
                } else {
                    out.show(&JobDto::from(&job), job_line);
                }
            }
        }
        Ok(())
    }
}

/// Prints the log from the start; when following, polls until the job is
/// finished and no line is left. Exits non-zero when a followed job failed.
async fn follow_log(
    s: &Session,
    out: &Output,
    app_id: conman_core::ids::AppId,
    job_id: JobId,
    follow: bool,
) -> anyhow::Result<()> {
    let show = |d: &JobLogDto, first: bool| {
        if d.truncated && first && !out.json {
            eprintln!("[older lines were dropped: the log keeps its last 1 MiB]");
        }
        out.show(d, |d| d.lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>().join("\n"));
    };
    if !follow {
        let read = s.conman.read_job_log(&s.actor, app_id, job_id, 0, 1000).await.core()?;
        show(&JobLogDto::new(read, 0), true);
        return Ok(());
    }
    let job = follow_job(s, app_id, job_id, show).await?;
    if job.state != JobState::Succeeded {
        anyhow::bail!("job {job_id} ended {}", job.state.as_str());
    }
    Ok(())
}

/// Follows a job's log from the start until a page says `complete` (the
/// job had finished before its lines were read and no line is left), handing `on_page` every page that has lines, the first
/// page and the last (both even when empty; `true` marks the first), and
/// answers the finished job. While nothing arrives, a spinner on a
/// terminal's stderr says whether the job waits for a worker or runs.
pub(crate) async fn follow_job(
    s: &Session,
    app_id: conman_core::ids::AppId,
    job_id: JobId,
    mut on_page: impl FnMut(&JobLogDto, bool),
) -> anyhow::Result<Job> {
    let mut spinner = Spinner::on_terminal();
    let (mut after, mut first) = (0, true);
    loop {
        // `complete`: the job had finished before these lines were read,
        // and they are the rest of its log.
        let read = s.conman.read_job_log(&s.actor, app_id, job_id, after, 1000).await.core()?;
        let (got, state, last) = (read.page.lines.len(), read.state, read.complete);
        let dto = JobLogDto::new(read, after);
        if got > 0 || first || last {
            spinner.clear();
            on_page(&dto, first);
            first = false;
        }
        if last {
            return s.conman.get_job(&s.actor, app_id, job_id).await.core();
        }
        after = dto.next_after;
        if got == 0 {
            spinner.tick(match state {
                JobState::Queued => "queued, waiting for a worker",
                _ => "running",
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
