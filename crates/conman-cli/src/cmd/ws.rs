//! `conman ws`: workspaces and file edits. `--ws` defaults to the caller's
//! default workspace of the app (created with the membership).

use std::path::PathBuf;

use clap::Subcommand;
use conman_api::dto::{ChangesRequest, CheckpointDto, FileDto, WorkspaceDto, WriteResultDto};
use conman_core::ids::{AppId, WorkspaceId};
use conman_core::ports::git::{Node, SyncStrategy};
use conman_core::ports::store::PageRequest;

use super::resolve_app;
use crate::output::{CoreResult, Output};
use crate::session::Session;

/// App and workspace selection.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// App id or name.
    #[arg(long)]
    app: String,
    /// Workspace id (default: your default workspace).
    #[arg(long)]
    ws: Option<String>,
}

/// `conman ws ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum WsCmd {
    /// List the app's workspaces.
    List {
        /// App id or name.
        #[arg(long)]
        app: String,
    },
    /// Create a workspace.
    New {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Title.
        #[arg(long)]
        title: Option<String>,
    },
    /// List a directory (the root by default).
    Ls {
        #[command(flatten)]
        target: Target,
        /// Directory path.
        path: Option<String>,
    },
    /// Print a file.
    Cat {
        #[command(flatten)]
        target: Target,
        /// File path.
        path: String,
    },
    /// Write a file from --file, --content or stdin.
    Put {
        #[command(flatten)]
        target: Target,
        /// Path in the repository.
        path: String,
        /// Local file to upload.
        #[arg(long, conflicts_with = "content")]
        file: Option<PathBuf>,
        /// Literal content.
        #[arg(long)]
        content: Option<String>,
        /// Commit message.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Delete a file.
    Rm {
        #[command(flatten)]
        target: Target,
        /// File path.
        path: String,
        /// Commit message.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Move a file.
    Mv {
        #[command(flatten)]
        target: Target,
        /// From.
        from: String,
        /// To.
        to: String,
        /// Commit message.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Apply a batch from a JSON file: {"message"?, "ops": [{"op": "put", "path", "content" (base64)}, ...]}.
    Apply {
        #[command(flatten)]
        target: Target,
        /// The batch file.
        file: PathBuf,
    },
    /// Commit saved edits to the branch (manual_checkpoint mode).
    Checkpoint {
        #[command(flatten)]
        target: Target,
        /// Commit message.
        #[arg(short, long)]
        message: String,
    },
    /// Discard edits: back to the baseline.
    Reset {
        #[command(flatten)]
        target: Target,
    },
    /// Bring the baseline's new commits in.
    Sync {
        #[command(flatten)]
        target: Target,
        /// merge (default) or rebase.
        #[arg(long)]
        strategy: Option<String>,
    },
}

async fn resolve(s: &Session, t: &Target) -> anyhow::Result<(AppId, WorkspaceId)> {
    let app_id = resolve_app(s, &t.app).await?;
    if let Some(ws) = &t.ws {
        return Ok((app_id, ws.parse::<WorkspaceId>().core()?));
    }
    Ok((app_id, default_workspace(s, app_id, "--ws").await?))
}

/// The caller's default workspace of the app (it comes with the
/// membership); `flag` names the option to pass instead when there is none.
pub(crate) async fn default_workspace(s: &Session, app_id: AppId, flag: &str) -> anyhow::Result<WorkspaceId> {
    let mine = s.conman.my_default_workspace(&s.actor, app_id).await.core()?;
    mine.map(|w| w.id).ok_or_else(|| {
        anyhow::anyhow!("you have no default workspace in this app; create it with `conman ws new` or pass {flag}")
    })
}

fn write_line(r: &WriteResultDto) -> String {
    format!("{} → {}", r.paths.join(", "), r.head_sha)
}

impl WsCmd {
    pub(crate) async fn run(self, s: &Session, out: &Output) -> anyhow::Result<()> {
        let (c, a) = (&s.conman, &s.actor);
        match self {
            WsCmd::List { app } => {
                let app_id = resolve_app(s, &app).await?;
                let list = c.list_workspaces(a, app_id, PageRequest { page: 1, limit: 100 }).await.core()?;
                let dtos: Vec<WorkspaceDto> = list.items.iter().map(|w| WorkspaceDto::new(w, None)).collect();
                out.show(&dtos, |l| l.iter().map(|w| format!("{}  {}", w.id, w.branch)).collect::<Vec<_>>().join("\n"));
            }
            WsCmd::New { app, title } => {
                let ws = c.create_workspace(a, resolve_app(s, &app).await?, title).await.core()?;
                out.show(&WorkspaceDto::new(&ws, None), |w| format!("created workspace {} on {}", w.id, w.branch));
            }
            WsCmd::Ls { target, path } => {
                let (app_id, ws_id) = resolve(s, &target).await?;
                let (head, node) = c.read_workspace_path(a, app_id, ws_id, path.as_deref()).await.core()?;
                let dto = FileDto::new(path.unwrap_or_default(), &head, node);
                out.show(&dto, |f| match &f.entries {
                    Some(entries) => entries
                        .iter()
                        .map(|e| {
                            format!(
                                "{:<4} {:>9}  {}",
                                &e.kind[..e.kind.len().min(4)],
                                e.size.map(|s| s.to_string()).unwrap_or_default(),
                                e.path
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                    None => format!("{} is a file ({} bytes)", f.path, f.size.unwrap_or(0)),
                });
            }
            WsCmd::Cat { target, path } => {
                let (app_id, ws_id) = resolve(s, &target).await?;
                let (head, node) = c.read_workspace_path(a, app_id, ws_id, Some(&path)).await.core()?;
                match (out.json, node) {
                    (false, Node::File(bytes)) => {
                        use std::io::Write as _;
                        std::io::stdout().write_all(&bytes)?;
                    }
                    (false, Node::Dir(_)) => anyhow::bail!("{path} is a directory; use `conman ws ls`"),
                    (true, node) => out.show(&FileDto::new(path, &head, node), |_| String::new()),
                }
            }
            WsCmd::Put { target, path, file, content, message } => {
                let bytes = match (file, content) {
                    (Some(f), _) => std::fs::read(&f)?,
                    (None, Some(text)) => text.into_bytes(),
                    (None, None) => {
                        use std::io::Read as _;
                        let mut buf = Vec::new();
                        std::io::stdin().read_to_end(&mut buf)?;
                        buf
                    }
                };
                let (app_id, ws_id) = resolve(s, &target).await?;
                let r = WriteResultDto::from(c.write_file(a, app_id, ws_id, &path, bytes, message).await.core()?);
                out.show(&r, write_line);
            }
            WsCmd::Rm { target, path, message } => {
                let (app_id, ws_id) = resolve(s, &target).await?;
                let r = WriteResultDto::from(c.delete_file(a, app_id, ws_id, &path, message).await.core()?);
                out.show(&r, write_line);
            }
            WsCmd::Mv { target, from, to, message } => {
                let (app_id, ws_id) = resolve(s, &target).await?;
                let ops = vec![conman_core::services::ChangeOp::Move { from, to }];
                let r = WriteResultDto::from(c.apply_changes(a, app_id, ws_id, ops, message).await.core()?);
                out.show(&r, write_line);
            }
            WsCmd::Apply { target, file } => {
                let req: ChangesRequest = conman_api::dto::parse_body(&super::body::read_bytes(&file)?).core()?;
                let message = req.message.clone();
                let ops = req.into_ops().core()?;
                let (app_id, ws_id) = resolve(s, &target).await?;
                let r = WriteResultDto::from(c.apply_changes(a, app_id, ws_id, ops, message).await.core()?);
                out.show(&r, write_line);
            }
            WsCmd::Checkpoint { target, message } => {
                let (app_id, ws_id) = resolve(s, &target).await?;
                let outcome = c.checkpoint(a, app_id, ws_id, &message).await.core()?;
                let dto = CheckpointDto { commit_sha: outcome.commit.map(|s| s.to_string()) };
                out.show(&dto, |d| {
                    d.commit_sha.clone().map_or("nothing to checkpoint".into(), |s| format!("committed {s}"))
                });
            }
            WsCmd::Reset { target } => {
                let (app_id, ws_id) = resolve(s, &target).await?;
                let ws = c.reset_workspace(a, app_id, ws_id).await.core()?;
                out.show(&WorkspaceDto::new(&ws, None), |w| format!("reset {} to {}", w.branch, w.base_sha));
            }
            WsCmd::Sync { target, strategy } => {
                let strategy = match strategy.as_deref() {
                    None => None,
                    Some("merge") => Some(SyncStrategy::Merge),
                    Some("rebase") => Some(SyncStrategy::Rebase),
                    Some(other) => anyhow::bail!("unknown strategy {other}: use merge or rebase"),
                };
                let (app_id, ws_id) = resolve(s, &target).await?;
                let (ws, head) = c.sync_integration(a, app_id, ws_id, strategy).await.core()?;
                out.show(&WorkspaceDto::new(&ws, Some(&head)), |w| format!("{} is at {head}", w.branch));
            }
        }
        Ok(())
    }
}
