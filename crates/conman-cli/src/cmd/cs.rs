//! `conman cs`: the changeset flow (SPEC §2.3, §4) — create, list, show,
//! edit, submit and resubmit (optionally following the submit gate's log),
//! review, queue, move to draft, raw and semantic diffs, comments.
//!
//! `--json` prints the HTTP API's `data` for the same operation (the
//! `conman_api::dto` types); the human layouts are for reading. The raw
//! diff on stdout is a plain unified diff (pipe it to `git apply`), coloured
//! only when stdout is a terminal and neither `--no-color` nor `NO_COLOR`
//! says otherwise; its totals go to stderr.

use std::collections::HashMap;

use clap::{Subcommand, ValueEnum};
use conman_api::dto::{
    ApprovalDto, ChangesetDetailDto, ChangesetDiffDto, ChangesetDto, CommentDto, JobLogDto, KeyChangeDto, RawDiffDto,
    ReviewResultDto, SemanticDiffDto, SubmitDto,
};
use conman_core::domain::changeset::ChangesetState;
use conman_core::domain::comment::CommentAnchor;
use conman_core::domain::job::JobState;
use conman_core::domain::Timestamp;
use conman_core::ids::{AppId, ChangesetId, CommentId, WorkspaceId};
use conman_core::ports::store::{ChangesetFilter, PageRequest};
use conman_core::services::{ChangesetPatch, DiffMode, NewChangeset, NewComment, ReviewInput, SubmitOutcome};
use conman_core::Error;

use super::apps::resolve_user;
use super::jobs::follow_job;
use super::profiles::SecretResult as _;
use super::resolve_app;
use super::ws::default_workspace;
use crate::output::{colors_on_stdout, CoreError, CoreResult, Output};
use crate::session::Session;

/// `conman cs ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CsCmd {
    /// Open a draft changeset on one of your workspaces.
    New {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Workspace id (default: your default workspace).
        #[arg(long, visible_alias = "ws")]
        workspace: Option<String>,
        /// Title.
        #[arg(long)]
        title: String,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// A changeset released together with or before this one (repeatable).
        #[arg(long = "depends-on", value_name = "CHANGESET_ID")]
        depends_on: Vec<String>,
    },
    /// List changesets, newest first.
    Ls {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Only this state (draft, submitted, in_review, approved, queued, ...).
        #[arg(long)]
        state: Option<String>,
        /// Only this author (email or user id).
        #[arg(long)]
        author: Option<String>,
        /// Page, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Page size (1-100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show a changeset with its revisions, votes and approval status.
    Show {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
    },
    /// Change title, description or dependencies (before approval).
    Edit {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// The new dependency list (repeatable; replaces the old list).
        #[arg(long = "depends-on", value_name = "CHANGESET_ID")]
        depends_on: Vec<String>,
        /// Clear the dependency list.
        #[arg(long, conflicts_with = "depends_on")]
        no_depends_on: bool,
    },
    /// Freeze revision 1 and start the submit gate; prints the gate job.
    Submit {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
        /// Follow the gate job's log until it ends; exits non-zero if the gate failed.
        #[arg(long, short)]
        follow: bool,
        /// JSON list of profile overrides replacing the draft's before they
        /// are frozen with the revision (`-` reads stdin).
        #[arg(long, value_name = "PATH")]
        overrides_file: Option<std::path::PathBuf>,
    },
    /// Freeze a new revision (approvals reset) and re-run the submit gate.
    Resubmit {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
        /// Follow the gate job's log until it ends; exits non-zero if the gate failed.
        #[arg(long, short)]
        follow: bool,
    },
    /// Vote on the latest revision (reviewers).
    Review {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
        /// The vote.
        #[arg(value_enum)]
        action: ReviewVote,
        /// A comment with the vote.
        #[arg(long)]
        comment: Option<String>,
        /// The revision you reviewed; refused unless it is the latest.
        #[arg(long)]
        revision: Option<u32>,
    },
    /// Put an approved changeset into the release queue.
    Queue {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
    },
    /// Move a changeset back to draft (withdraw it from the queue, or after
    /// changes were requested, a conflict or a needed revalidation).
    Draft {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
    },
    /// Show the diff of the latest revision (or --revision; a draft never
    /// submitted shows its live workspace).
    Diff {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
        /// raw: unified diff; semantic: key-level changes of YAML, JSON and TOML.
        #[arg(long, value_enum, default_value_t = Mode::Raw)]
        mode: Mode,
        /// Revision number.
        #[arg(long)]
        revision: Option<u32>,
        /// No colours even on a terminal (as does NO_COLOR).
        #[arg(long)]
        no_color: bool,
    },
    /// Show the changeset's profile overrides, or replace them (the author,
    /// draft only) with the JSON list in --file (`-` reads stdin).
    Overrides {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
        /// JSON list of overrides ({target, env_vars, secrets}) replacing the current ones.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
    },
    /// Comments of a changeset: add, ls, edit.
    Comment {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Changeset id.
        id: String,
        #[command(subcommand)]
        action: CommentCmd,
    },
}

/// `conman cs comment --app A ID ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CommentCmd {
    /// Add a comment, optionally anchored to a path (and line) of a revision.
    Add {
        /// Text.
        body: String,
        /// Anchor: repository path.
        #[arg(long)]
        path: Option<String>,
        /// Anchor: line, from 1.
        #[arg(long, requires = "path")]
        line: Option<u32>,
        /// Anchor: revision (default: the latest).
        #[arg(long, requires = "path")]
        revision: Option<u32>,
    },
    /// List comments, oldest first.
    Ls {
        /// Page, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Page size (1-100).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Replace the body of one of your comments (the old one is kept).
    Edit {
        /// Comment id.
        comment: String,
        /// New text.
        body: String,
    },
}

/// A review vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReviewVote {
    /// Counts toward approval.
    Approve,
    /// Sends the changeset back to its author.
    #[value(alias = "request_changes")]
    RequestChanges,
    /// Refuses it for good.
    Reject,
}

impl ReviewVote {
    fn wire(self) -> &'static str {
        match self {
            ReviewVote::Approve => "approve",
            ReviewVote::RequestChanges => "request_changes",
            ReviewVote::Reject => "reject",
        }
    }
}

/// A diff mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// Unified diff and line counts.
    Raw,
    /// Key-level changes.
    Semantic,
}

fn changeset_id(id: &str) -> anyhow::Result<ChangesetId> {
    id.trim().parse::<ChangesetId>().core()
}

fn bad_input(field: &str, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CoreError(Error::invalid(field, "invalid", message.into())))
}

fn dependencies(ids: &[String]) -> anyhow::Result<Vec<ChangesetId>> {
    ids.iter().map(|id| changeset_id(id)).collect()
}

fn cs_line(c: &ChangesetDto) -> String {
    let rev = if c.revision == 0 { "-".to_owned() } else { format!("r{}", c.revision) };
    format!("{}  {:<18} {:<4} {}", c.id, c.state, rev, c.title)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

fn when(t: &Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl CsCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let (c, a) = (&s.conman, &s.actor);
        match self {
            CsCmd::New { app, workspace, title, description, depends_on } => {
                let app_id = resolve_app(s, &app).await?;
                let depends_on = dependencies(&depends_on)?;
                let workspace_id = match workspace {
                    Some(ws) => ws.trim().parse::<WorkspaceId>().core()?,
                    None => default_workspace(s, app_id, "--workspace").await?,
                };
                let input = NewChangeset { workspace_id, title, description, depends_on };
                let cs = c.create_changeset(a, app_id, input).await.core()?;
                out.show(&ChangesetDto::from(&cs), |c| {
                    format!("created changeset {} (draft) on workspace {}", c.id, c.workspace_id)
                });
            }
            CsCmd::Ls { app, state, author, page, limit } => {
                let app_id = resolve_app(s, &app).await?;
                let filter = ChangesetFilter {
                    state: state.as_deref().map(ChangesetState::parse).transpose().core()?,
                    author_id: match author {
                        Some(author) => Some(resolve_user(s, author.trim()).await?),
                        None => None,
                    },
                    ..Default::default()
                };
                let request = PageRequest::new(Some(page), Some(limit)).core()?;
                let list = c.list_changesets(a, app_id, filter, request).await.core()?;
                let dtos: Vec<ChangesetDto> = list.items.iter().map(ChangesetDto::from).collect();
                let total = list.total;
                out.show(&dtos, |l| {
                    let mut lines: Vec<String> = l.iter().map(cs_line).collect();
                    let shown = u64::from(page - 1) * u64::from(limit) + l.len() as u64;
                    if l.is_empty() && total == 0 {
                        lines.push("no changesets".into());
                    } else if shown < total || page > 1 {
                        lines.push(format!("(page {page}: {} of {total}; more with --page)", l.len()));
                    }
                    lines.join("\n")
                });
            }
            CsCmd::Show { app, id } => {
                let app_id = resolve_app(s, &app).await?;
                let view = c.get_changeset(a, app_id, changeset_id(&id)?).await.core()?;
                let dto = ChangesetDetailDto::from(&view);
                let names = if out.json { HashMap::new() } else { user_names(s, app_id).await };
                out.show(&dto, |d| show_detail(d, &names));
            }
            CsCmd::Edit { app, id, title, description, depends_on, no_depends_on } => {
                let app_id = resolve_app(s, &app).await?;
                let depends_on = match (no_depends_on, depends_on.is_empty()) {
                    (true, _) => Some(Vec::new()),
                    (false, false) => Some(dependencies(&depends_on)?),
                    (false, true) => None,
                };
                if title.is_none() && description.is_none() && depends_on.is_none() {
                    return Err(bad_input(
                        "patch",
                        "nothing to change: pass --title, --description, --depends-on or --no-depends-on",
                    ));
                }
                let patch = ChangesetPatch { title, description, depends_on };
                let cs = c.update_changeset(a, app_id, changeset_id(&id)?, patch).await.core()?;
                out.show(&ChangesetDto::from(&cs), |c| format!("updated changeset {}: {}", c.id, c.title));
            }
            CsCmd::Submit { app, id, follow, overrides_file } => {
                let app_id = resolve_app(s, &app).await?;
                let outcome = match overrides_file {
                    Some(path) => {
                        let input = super::profiles::read_override_list(&path)?;
                        super::profiles::check_master_key(s).await?;
                        c.submit_changeset_with_overrides(a, app_id, changeset_id(&id)?, input).await.secret()?
                    }
                    None => c.submit_changeset(a, app_id, changeset_id(&id)?).await.core()?,
                };
                submitted(s, out, app_id, &outcome, "submitted", follow).await?;
            }
            CsCmd::Resubmit { app, id, follow } => {
                let app_id = resolve_app(s, &app).await?;
                let outcome = c.resubmit_changeset(a, app_id, changeset_id(&id)?).await.core()?;
                submitted(s, out, app_id, &outcome, "resubmitted", follow).await?;
            }
            CsCmd::Review { app, id, action, comment, revision } => {
                let app_id = resolve_app(s, &app).await?;
                let input = ReviewInput { action: action.wire().to_owned(), comment, revision };
                let outcome = c.review_changeset(a, app_id, changeset_id(&id)?, input).await.core()?;
                out.show(&ReviewResultDto::from(&outcome), |r| {
                    format!(
                        "{} recorded on revision {} of {}; {}; changeset is {}",
                        r.review.action,
                        r.review.revision,
                        r.changeset.id,
                        approval_line(&r.approval),
                        r.changeset.state
                    )
                });
            }
            CsCmd::Queue { app, id } => {
                let app_id = resolve_app(s, &app).await?;
                let cs = c.queue_changeset(a, app_id, changeset_id(&id)?).await.core()?;
                out.show(&ChangesetDto::from(&cs), |c| format!("changeset {} is queued for a release", c.id));
            }
            CsCmd::Draft { app, id } => {
                let app_id = resolve_app(s, &app).await?;
                let cs = c.move_changeset_to_draft(a, app_id, changeset_id(&id)?).await.core()?;
                out.show(&ChangesetDto::from(&cs), |c| format!("changeset {} is back in draft", c.id));
            }
            CsCmd::Diff { app, id, mode, revision, no_color } => {
                let app_id = resolve_app(s, &app).await?;
                let mode = match mode {
                    Mode::Raw => DiffMode::Raw,
                    Mode::Semantic => DiffMode::Semantic,
                };
                let diff = c.changeset_diff(a, app_id, changeset_id(&id)?, mode, revision).await.core()?;
                let dto = ChangesetDiffDto::from(&diff);
                let paint = Paint { on: !out.json && colors_on_stdout(no_color) };
                match &dto {
                    ChangesetDiffDto::Raw(raw) => {
                        out.show(&dto, |_| render_raw(raw, paint));
                        if !out.json {
                            eprintln!("{}", raw_totals(raw));
                        }
                    }
                    ChangesetDiffDto::Semantic(sem) => out.show(&dto, |_| render_semantic(sem, paint)),
                }
            }
            CsCmd::Overrides { app, id, file } => {
                let app_id = resolve_app(s, &app).await?;
                super::profiles::changeset_overrides(s, out, app_id, changeset_id(&id)?, file.as_deref()).await?;
            }
            CsCmd::Comment { app, id, action } => {
                let app_id = resolve_app(s, &app).await?;
                let cs_id = changeset_id(&id)?;
                comment(s, out, app_id, cs_id, action).await?;
            }
        }
        Ok(())
    }
}

/// Prints a submit or resubmit answer; with `follow`, follows the gate
/// job's log (on stdout, or on stderr under `--json`, whose stdout holds
/// only the answer) and reports how the gate settled the changeset.
async fn submitted(
    s: &Session,
    out: &Output,
    app_id: AppId,
    outcome: &SubmitOutcome,
    verb: &str,
    follow: bool,
) -> anyhow::Result<()> {
    let dto = SubmitDto::from(outcome);
    out.show(&dto, |d| {
        format!(
            "{verb} changeset {} as revision {} ({}); submit gate job {}",
            d.changeset.id,
            d.revision.number,
            short(&d.revision.head_sha),
            d.job.id
        )
    });
    if !follow {
        return Ok(());
    }
    let json = out.json;
    let job = follow_job(s, app_id, outcome.job.id, |page: &JobLogDto, first| {
        if page.truncated && first {
            eprintln!("[older lines were dropped: the log keeps its last 1 MiB]");
        }
        for line in &page.lines {
            if json {
                eprintln!("{}", line.text);
            } else {
                say(&line.text);
            }
        }
    })
    .await?;
    let view = s.conman.get_changeset(&s.actor, app_id, outcome.changeset.id).await.core()?;
    let cs = &view.changeset;
    if job.state == JobState::Succeeded && cs.state != ChangesetState::Draft {
        if !json {
            say(&format!("gate passed: changeset {} is {}", cs.id, cs.state.as_str()));
        }
        return Ok(());
    }
    let why = cs.gate_failure.clone().or(job.error.clone()).unwrap_or_else(|| job.state.as_str().to_owned());
    anyhow::bail!(
        "submit gate job {} ended {}: changeset {} is {} ({why})",
        job.id,
        job.state.as_str(),
        cs.id,
        cs.state.as_str()
    )
}

/// One line on stdout; a closed pipe (`conman ... | head`) is not an error.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `conman cs comment ...`.
async fn comment(
    s: &Session,
    out: &Output,
    app_id: AppId,
    cs_id: ChangesetId,
    action: CommentCmd,
) -> anyhow::Result<()> {
    let (c, a) = (&s.conman, &s.actor);
    match action {
        CommentCmd::Add { body, path, line, revision } => {
            let anchor = match path {
                Some(path) => {
                    // Default: the latest revision (the core refuses an
                    // anchor on a changeset that has none).
                    let revision = match revision {
                        Some(r) => r,
                        None => c.get_changeset(a, app_id, cs_id).await.core()?.changeset.revision,
                    };
                    Some(CommentAnchor { path, line, revision })
                }
                None => None,
            };
            let comment = c.add_comment(a, app_id, cs_id, NewComment { body, anchor }).await.core()?;
            out.show(&CommentDto::from(&comment), |c| format!("added comment {}", c.id));
        }
        CommentCmd::Ls { page, limit } => {
            let request = PageRequest::new(Some(page), Some(limit)).core()?;
            let list = c.list_comments(a, app_id, cs_id, request).await.core()?;
            let dtos: Vec<CommentDto> = list.items.iter().map(CommentDto::from).collect();
            let names = if out.json { HashMap::new() } else { user_names(s, app_id).await };
            out.show(&dtos, |l| {
                if l.is_empty() {
                    return "no comments".into();
                }
                l.iter().map(|c| comment_block(c, &names)).collect::<Vec<_>>().join("\n")
            });
        }
        CommentCmd::Edit { comment, body } => {
            let comment_id = comment.trim().parse::<CommentId>().core()?;
            let comment = c.edit_comment(a, app_id, cs_id, comment_id, &body).await.core()?;
            out.show(&CommentDto::from(&comment), |c| {
                format!("edited comment {} ({} earlier version(s) kept)", c.id, c.edits.len())
            });
        }
    }
    Ok(())
}

/// Emails of the app's members by user id, for readable layouts (empty if
/// they cannot be read: ids are shown instead).
async fn user_names(s: &Session, app_id: AppId) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let mut page = PageRequest { page: 1, limit: PageRequest::MAX_LIMIT };
    while let Ok(members) = s.conman.list_members(&s.actor, app_id, page).await {
        for m in &members.items {
            names.insert(m.user.id.to_string(), m.user.email.to_string());
        }
        if members.items.is_empty() || u64::from(page.page) * u64::from(page.limit) >= members.total {
            break;
        }
        page.page += 1;
    }
    names
}

fn name(names: &HashMap<String, String>, id: &impl ToString) -> String {
    let id = id.to_string();
    names.get(&id).cloned().unwrap_or(id)
}

fn approval_line(a: &ApprovalDto) -> String {
    let verdict = if a.approved { "approved" } else { "not yet approved" };
    format!("{}/{} approvals on revision {} ({verdict})", a.approvals, a.required, a.revision)
}

/// The readable layout of `cs show`.
fn show_detail(d: &ChangesetDetailDto, names: &HashMap<String, String>) -> String {
    let c = &d.changeset;
    let mut lines = vec![
        format!("Changeset {}  {}", c.id, c.title),
        format!("  state        {}", c.state),
        format!(
            "  revision     {}",
            if c.revision == 0 { "none (never submitted)".to_owned() } else { c.revision.to_string() }
        ),
        format!("  author       {}", name(names, &c.author_id)),
        format!("  workspace    {}", c.workspace_id),
    ];
    if !c.depends_on.is_empty() {
        let deps: Vec<String> = c.depends_on.iter().map(ToString::to_string).collect();
        lines.push(format!("  depends on   {}", deps.join(", ")));
    }
    if let Some(job) = c.gate_job_id {
        lines.push(format!("  gate job     {job}"));
    }
    if let Some(failure) = &c.gate_failure {
        lines.push(format!("  gate failure {failure}"));
    }
    lines.push(format!("  created      {}", when(&c.created_at)));
    lines.push(format!("  updated      {}", when(&c.updated_at)));
    if !c.description.is_empty() {
        lines.push(String::new());
        lines.extend(c.description.lines().map(|l| format!("  {l}")));
    }
    if !d.revisions.is_empty() {
        lines.push(String::new());
        lines.push("Revisions".into());
        for r in &d.revisions {
            let gate = r.gate_job_id.map(|j| format!("  gate {j}")).unwrap_or_default();
            lines.push(format!(
                "  #{:<3} {} on {}  {} file(s)  by {} at {}{gate}",
                r.number,
                short(&r.head_sha),
                short(&r.base_sha),
                r.files.len(),
                name(names, &r.created_by),
                when(&r.created_at)
            ));
            lines.extend(r.files.iter().map(|f| format!("         {f}")));
        }
    }
    if !d.reviews.is_empty() {
        lines.push(String::new());
        lines.push("Votes".into());
        for v in &d.reviews {
            let comment = v.comment.as_deref().map(|c| format!("  \"{c}\"")).unwrap_or_default();
            lines.push(format!(
                "  #{:<3} {:<16} {}  {}{comment}",
                v.revision,
                v.action,
                name(names, &v.reviewer_id),
                when(&v.created_at)
            ));
        }
    }
    if let Some(a) = &d.approval {
        lines.push(String::new());
        lines.push(format!("Approval: {}", approval_line(a)));
        if !a.approved_by.is_empty() {
            let by: Vec<String> = a.approved_by.iter().map(|u| name(names, u)).collect();
            lines.push(format!("  approved by  {}", by.join(", ")));
        }
        for rule in &a.path_rules {
            let mark = if rule.satisfied { "satisfied" } else { "needs an approval from its set" };
            lines.push(format!("  path rule {}: {mark} ({})", rule.glob, rule.matched_paths.join(", ")));
        }
    }
    lines.join("\n")
}

fn comment_block(c: &CommentDto, names: &HashMap<String, String>) -> String {
    let anchor = c
        .anchor
        .as_ref()
        .map(|a| match a.line {
            Some(line) => format!("  on {}:{line} (revision {})", a.path, a.revision),
            None => format!("  on {} (revision {})", a.path, a.revision),
        })
        .unwrap_or_default();
    let edited = if c.edits.is_empty() { String::new() } else { format!("  (edited {}×)", c.edits.len()) };
    let mut block = format!("{}  {}  {}{anchor}{edited}", c.id, name(names, &c.author_id), when(&c.created_at));
    for line in c.body.lines() {
        block.push_str("\n    ");
        block.push_str(line);
    }
    block
}

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
struct Paint {
    on: bool,
}

impl Paint {
    const BOLD: &'static str = "\x1b[1m";
    const RED: &'static str = "\x1b[31m";
    const GREEN: &'static str = "\x1b[32m";
    const YELLOW: &'static str = "\x1b[33m";
    const CYAN: &'static str = "\x1b[36m";
    const RESET: &'static str = "\x1b[0m";

    fn paint(self, style: &str, text: &str) -> String {
        if self.on && !text.is_empty() {
            format!("{style}{text}{}", Self::RESET)
        } else {
            text.to_owned()
        }
    }
}

/// The unified diff of every file, headers bold, hunks cyan, additions
/// green and deletions red when painting.
fn render_raw(d: &RawDiffDto, paint: Paint) -> String {
    let mut lines = Vec::new();
    for f in &d.files {
        if f.patch.is_empty() {
            let what = if f.binary { "Binary file" } else { "File" };
            lines.push(paint.paint(Paint::BOLD, &format!("{what} {} {}", f.path, f.status)));
            continue;
        }
        let mut in_header = true;
        for line in f.patch.lines() {
            let style = if line.starts_with("diff --git ") {
                in_header = true;
                Some(Paint::BOLD)
            } else if line.starts_with("@@") {
                in_header = false;
                Some(Paint::CYAN)
            } else if in_header {
                Some(Paint::BOLD)
            } else if line.starts_with('+') {
                Some(Paint::GREEN)
            } else if line.starts_with('-') {
                Some(Paint::RED)
            } else {
                None
            };
            lines.push(style.map_or_else(|| line.to_owned(), |style| paint.paint(style, line)));
        }
        if f.patch_truncated {
            lines.push(format!("[the patch of {} was cut at 1 MiB]", f.path));
        }
    }
    lines.join("\n")
}

/// `N files changed, A insertions(+), D deletions(-)`, as git says it.
fn raw_totals(d: &RawDiffDto) -> String {
    let s = &d.stats;
    if s.files == 0 {
        return "no changes".into();
    }
    let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} changed, {}, {}",
        plural(s.files, "file", "files"),
        plural(s.additions, "insertion(+)", "insertions(+)"),
        plural(s.deletions, "deletion(-)", "deletions(-)")
    )
}

/// A value shown on one line: scalars as JSON (strings quoted), long
/// values cut.
fn value(v: Option<&serde_json::Value>) -> String {
    let text = match v {
        None => return "∅".into(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    };
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text
    }
}

fn key_line(path: &str, k: &KeyChangeDto, paint: Paint) -> String {
    let (mark, style, what) = match k.op.as_str() {
        "added" => ("+", Paint::GREEN, format!("{}: {}", k.key, value(k.new_value.as_ref()))),
        "removed" => ("-", Paint::RED, format!("{}: {}", k.key, value(k.old_value.as_ref()))),
        "moved" => (
            ">",
            Paint::CYAN,
            format!("{} → {}: {}", k.from_key.as_deref().unwrap_or("?"), k.key, value(k.new_value.as_ref())),
        ),
        _ => (
            "~",
            Paint::YELLOW,
            format!("{}: {} → {}", k.key, value(k.old_value.as_ref()), value(k.new_value.as_ref())),
        ),
    };
    let at = k.line.map(|l| format!("  (line {l})")).unwrap_or_default();
    format!("{} {path}  {what}{at}", paint.paint(style, mark))
}

/// One line per key change (`~ path  key: old → new`), file-level entries
/// with their note, then a summary.
fn render_semantic(d: &SemanticDiffDto, paint: Paint) -> String {
    let mut lines = Vec::new();
    for f in &d.files {
        if f.level == "key" {
            lines.extend(f.changes.iter().map(|k| key_line(&f.path, k, paint)));
            if f.changes.is_empty() {
                let note = f.note.as_deref().unwrap_or("formatting or comments only");
                lines.push(format!("= {}  no key changes ({note})", f.path));
            }
        } else {
            let (mark, style) = match f.status.as_str() {
                "added" => ("A", Paint::GREEN),
                "deleted" => ("D", Paint::RED),
                "renamed" => ("R", Paint::CYAN),
                _ => ("M", Paint::YELLOW),
            };
            let from = f.old_path.as_deref().map(|o| format!("{o} → ")).unwrap_or_default();
            let note = f.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
            lines.push(format!("{} {from}{}  (file {}{note})", paint.paint(style, mark), f.path, f.status));
        }
    }
    lines.push(paint.paint(Paint::BOLD, &semantic_summary(d)));
    lines.join("\n")
}

/// E.g. `1 key modified, 2 keys added, 1 file removed (3 files changed)`.
fn semantic_summary(d: &SemanticDiffDto) -> String {
    if d.files.is_empty() {
        return "no changes".into();
    }
    let count = |k: &str| d.summary.by_op.get(k).copied().unwrap_or(0);
    let plural = |n: u32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut parts: Vec<String> = ["added", "modified", "removed", "moved"]
        .iter()
        .filter(|op| count(op) > 0)
        .map(|op| format!("{} {op}", plural(count(op), "key")))
        .collect();
    parts.extend(
        ["added", "modified", "removed", "renamed"]
            .iter()
            .filter(|op| count(&format!("file_{op}")) > 0)
            .map(|op| format!("{} {op}", plural(count(&format!("file_{op}")), "file"))),
    );
    let files = u32::try_from(d.files.len()).unwrap_or(u32::MAX);
    if parts.is_empty() {
        parts.push("no key changes".into());
    }
    format!("{} ({} changed)", parts.join(", "), plural(files, "file"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conman_api::dto::{DiffStatsDto, RawFileDiffDto, SemanticFileDto, SemanticSummaryDto};

    fn raw() -> RawDiffDto {
        RawDiffDto {
            mode: "raw".into(),
            revision: Some(1),
            base_sha: "a".repeat(40),
            head_sha: "b".repeat(40),
            files: vec![RawFileDiffDto {
                path: "app.yaml".into(),
                old_path: None,
                status: "modified".into(),
                binary: false,
                additions: 1,
                deletions: 1,
                patch: "diff --git a/app.yaml b/app.yaml\nindex 1..2 100644\n--- a/app.yaml\n+++ b/app.yaml\n\
                        @@ -1,2 +1,2 @@\n server:\n-  port: 8080\n+  port: 9090\n"
                    .into(),
                patch_truncated: false,
            }],
            stats: DiffStatsDto { files: 1, additions: 1, deletions: 1 },
        }
    }

    #[test]
    fn raw_diff_is_plain_without_paint_and_coloured_with_it() {
        let plain = render_raw(&raw(), Paint { on: false });
        assert!(!plain.contains('\x1b'));
        assert_eq!(plain, raw().files[0].patch.trim_end());
        let coloured = render_raw(&raw(), Paint { on: true });
        assert!(coloured.contains("\x1b[1m--- a/app.yaml\x1b[0m"), "headers are bold, not red: {coloured}");
        assert!(coloured.contains("\x1b[36m@@ -1,2 +1,2 @@\x1b[0m"));
        assert!(coloured.contains("\x1b[31m-  port: 8080\x1b[0m"));
        assert!(coloured.contains("\x1b[32m+  port: 9090\x1b[0m"));
        assert!(coloured.contains("\n server:\n"), "context stays plain");
        assert_eq!(raw_totals(&raw()), "1 file changed, 1 insertion(+), 1 deletion(-)");
    }

    #[test]
    fn semantic_lines_name_file_key_and_values() {
        let change = |op: &str, key: &str, old: Option<serde_json::Value>, new: Option<serde_json::Value>| {
            KeyChangeDto { op: op.into(), key: key.into(), from_key: None, old_value: old, new_value: new, line: None }
        };
        let d = SemanticDiffDto {
            mode: "semantic".into(),
            revision: Some(1),
            base_sha: "a".repeat(40),
            head_sha: "b".repeat(40),
            files: vec![
                SemanticFileDto {
                    path: "config/app.yaml".into(),
                    old_path: None,
                    status: "modified".into(),
                    format: "yaml".into(),
                    level: "key".into(),
                    changes: vec![
                        change("added", "server.host", None, Some(serde_json::json!("example.org"))),
                        change("modified", "server.port", Some(8080.into()), Some(9090.into())),
                    ],
                    note: None,
                    reason: None,
                },
                SemanticFileDto {
                    path: "README.md".into(),
                    old_path: None,
                    status: "added".into(),
                    format: "other".into(),
                    level: "file".into(),
                    changes: vec![],
                    note: None,
                    reason: Some("not_structured".into()),
                },
            ],
            summary: SemanticSummaryDto {
                by_op: [("added", 1), ("modified", 1), ("file_added", 1)]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                by_file: Default::default(),
            },
        };
        let text = render_semantic(&d, Paint { on: false });
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "+ config/app.yaml  server.host: \"example.org\"",
                "~ config/app.yaml  server.port: 8080 → 9090",
                "A README.md  (file added)",
                "1 key added, 1 key modified, 1 file added (2 files changed)",
            ]
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = serde_json::Value::String("x".repeat(100));
        let shown = value(Some(&long));
        assert_eq!(shown.chars().count(), 61);
        assert!(shown.ends_with('…'));
        assert_eq!(value(None), "∅");
    }
}
