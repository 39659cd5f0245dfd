//! Wire types of workspaces and their files. File content is base64 in
//! JSON; paths travel in query strings or bodies, never in URL paths.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use conman_core::domain::app::CommitMode;
use conman_core::domain::workspace::Workspace;
use conman_core::ports::git::{DirEntry, Node, Sha, SyncStrategy};
use conman_core::services::{batch_op_error, ChangeOp, WriteOutcome};
use conman_core::Error;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A workspace.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkspaceDto {
    /// Id.
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// Owner.
    pub owner_id: Uuid,
    /// Branch (`ws/<handle>/<slug>`).
    pub branch: String,
    /// Title.
    pub title: Option<String>,
    /// The owner's default workspace.
    pub is_default: bool,
    /// Commit the workspace is based on.
    pub base_sha: String,
    /// Owner's commit mode (`submit_commit` / `manual_checkpoint`); null follows the app.
    pub commit_mode: Option<String>,
    /// Current head (saved edits included), when loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of the record.
    pub updated_at: DateTime<Utc>,
}

impl WorkspaceDto {
    /// Converts, with the head when known.
    pub fn new(ws: &Workspace, head: Option<&Sha>) -> Self {
        WorkspaceDto {
            id: ws.id.0,
            app_id: ws.app_id.0,
            owner_id: ws.owner_id.0,
            branch: ws.branch.clone(),
            title: ws.title.clone(),
            is_default: ws.is_default,
            base_sha: ws.base_sha.clone(),
            commit_mode: ws.commit_mode.map(|m| match m {
                CommitMode::SubmitCommit => "submit_commit".to_owned(),
                CommitMode::ManualCheckpoint => "manual_checkpoint".to_owned(),
            }),
            head_sha: head.map(|h| h.to_string()),
            created_at: ws.created_at,
            updated_at: ws.updated_at,
        }
    }
}

/// `POST /api/apps/:appId/workspaces`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspaceRequest {
    /// Title; without one, the caller's default workspace is created.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::title_opt)]
    pub title: Option<String>,
}

/// `PATCH /api/apps/:appId/workspaces/:wsId`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspaceRequest {
    /// New title.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::title_opt)]
    pub title: Option<String>,
    /// `submit_commit` or `manual_checkpoint`, for this workspace.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::commit_mode_opt)]
    pub commit_mode: Option<CommitMode>,
}

/// `?path=` of file reads.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// File or directory path; the root when absent.
    #[param(schema_with = crate::dto::schemas::repo_path_or_root)]
    pub path: Option<String>,
}

/// A directory entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirEntryDto {
    /// Name.
    pub name: String,
    /// Full path.
    pub path: String,
    /// `file`, `dir`, `symlink` or `submodule`.
    pub kind: String,
    /// Size of files, bytes.
    pub size: Option<u64>,
}

impl From<DirEntry> for DirEntryDto {
    fn from(e: DirEntry) -> Self {
        let kind = serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        DirEntryDto { name: e.name, path: e.path, kind, size: e.size }
    }
}

/// A file (content in base64) or a directory listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileDto {
    /// `file` or `dir`.
    pub kind: String,
    /// The path asked for (empty for the root).
    pub path: String,
    /// Commit read.
    pub head_sha: String,
    /// File content, base64 (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// File size, bytes (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Entries (directories only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<DirEntryDto>>,
}

impl FileDto {
    /// Converts a git node read at `head`.
    pub fn new(path: String, head: &Sha, node: Node) -> Self {
        match node {
            Node::File(bytes) => FileDto {
                kind: "file".into(),
                path,
                head_sha: head.to_string(),
                size: Some(bytes.len() as u64),
                content: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                entries: None,
            },
            Node::Dir(entries) => FileDto {
                kind: "dir".into(),
                path,
                head_sha: head.to_string(),
                content: None,
                size: None,
                entries: Some(entries.into_iter().map(DirEntryDto::from).collect()),
            },
        }
    }
}

/// `PUT .../files`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutFileRequest {
    /// Path.
    #[schema(schema_with = crate::dto::schemas::repo_path)]
    pub path: String,
    /// Content, base64.
    #[schema(schema_with = crate::dto::schemas::base64)]
    pub content: String,
    /// Commit message.
    #[serde(default)]
    pub message: Option<String>,
}

/// `DELETE .../files`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteFileRequest {
    /// Path.
    #[schema(schema_with = crate::dto::schemas::repo_path)]
    pub path: String,
    /// Commit message.
    #[serde(default)]
    pub message: Option<String>,
}

/// One operation of a batch.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeOpDto {
    /// Create or replace a file.
    Put {
        /// Path.
        #[schema(schema_with = crate::dto::schemas::repo_path)]
        path: String,
        /// Content, base64.
        #[schema(schema_with = crate::dto::schemas::base64)]
        content: String,
    },
    /// Delete a file.
    Delete {
        /// Path.
        #[schema(schema_with = crate::dto::schemas::repo_path)]
        path: String,
    },
    /// Move a file.
    Move {
        /// From.
        #[schema(schema_with = crate::dto::schemas::repo_path)]
        from: String,
        /// To.
        #[schema(schema_with = crate::dto::schemas::repo_path)]
        to: String,
    },
}

/// Decodes standard base64 (padding required), refusing anything else
/// (`content`, `invalid_base64`).
pub fn decode_base64(content: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(content)
        .map_err(|_| Error::invalid("content", "invalid_base64", "content is not valid base64"))
}

impl PutFileRequest {
    /// The file's bytes (the body carries them in base64).
    pub fn content_bytes(&self) -> Result<Vec<u8>, Error> {
        decode_base64(&self.content)
    }
}

impl ChangeOpDto {
    /// The core's operation, its content decoded; a refusal names the
    /// operation's `index` in the batch as the core's own refusals do.
    pub fn into_domain(self, index: usize) -> Result<ChangeOp, Error> {
        Ok(match self {
            ChangeOpDto::Put { path, content } => {
                ChangeOp::Put { path, content: decode_base64(&content).map_err(|e| batch_op_error(e, index))? }
            }
            ChangeOpDto::Delete { path } => ChangeOp::Delete { path },
            ChangeOpDto::Move { from, to } => ChangeOp::Move { from, to },
        })
    }
}

/// `POST .../changes`: an atomic batch.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangesRequest {
    /// Commit message.
    #[serde(default)]
    pub message: Option<String>,
    /// 1-1000 operations, applied in order, all or nothing.
    #[schema(min_items = 1, max_items = 1000)]
    pub ops: Vec<ChangeOpDto>,
}

impl ChangesRequest {
    /// The core's operations, in order, each content decoded.
    pub fn into_ops(self) -> Result<Vec<ChangeOp>, Error> {
        self.ops.into_iter().enumerate().map(|(i, op)| op.into_domain(i)).collect()
    }
}

/// Result of a write.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WriteResultDto {
    /// Workspace head after the write.
    pub head_sha: String,
    /// Paths touched.
    pub paths: Vec<String>,
}

impl From<WriteOutcome> for WriteResultDto {
    fn from(w: WriteOutcome) -> Self {
        WriteResultDto { head_sha: w.head.to_string(), paths: w.paths }
    }
}

/// `POST .../checkpoints`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRequest {
    /// Commit message.
    #[schema(schema_with = crate::dto::schemas::checkpoint_message)]
    pub message: String,
}

/// Result of a checkpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckpointDto {
    /// The new branch commit; null when there was nothing to commit.
    pub commit_sha: Option<String>,
}

/// `POST .../sync-integration`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncIntegrationRequest {
    /// `merge` (default) or `rebase`.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::sync_strategy_opt)]
    pub strategy: Option<SyncStrategy>,
}
