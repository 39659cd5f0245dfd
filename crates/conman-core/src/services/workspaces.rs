//! Workspaces and their files (SPEC §2.2).
//!
//! Writes land on the workspace's private WIP ref as one commit per request
//! (a batch is one commit); a checkpoint (`manual_checkpoint`) or submit
//! (`submit_commit`) squashes them into one commit on the branch. Every ref
//! move goes through an intent (decision 0008, `intents.rs`): the commit is
//! built first, the audit entry carrying its sha is committed with the
//! intent, then the ref moves; a crash in between is rolled forward at
//! start by [`Conman::reconcile_intents`].
//!
//! File writes never update the workspace row (so concurrent writes never
//! fight over its version); the audit trail is the edit history.

use futures_util::future::join;
use serde::Serialize;

use super::apps::signature_of;
use super::intents::is_retryable;
use super::{Actor, AppScope, AuditWhat, Conman};
use crate::domain::app::{App, CommitMode};
use crate::domain::user::User;
use crate::domain::workspace::Workspace;
use crate::error::Error;
use crate::ids::{AppId, WorkspaceId};
use crate::ports::git::{FileOp, Node, RefMove, Sha, SquashRequest, SyncPlan, SyncRequest, SyncStrategy, WriteRequest};
use crate::ports::store::{Page, PageRequest, UnitOfWork, WorkspaceMutation};
use crate::rbac::Capability;
use crate::validation::{validate_title, BlockedPaths, Handle, RepoPath, Slug, MAX_BATCH_OPS};

/// One operation of a batch. Content is the file's bytes: the wire's
/// base64 is decoded by the caller (`conman_api::dto::ChangeOpDto`).
#[derive(Debug, Clone)]
pub enum ChangeOp {
    /// Create or replace a file.
    Put {
        /// Path.
        path: String,
        /// Content.
        content: Vec<u8>,
    },
    /// Delete a file.
    Delete {
        /// Path.
        path: String,
    },
    /// Move a file.
    Move {
        /// From.
        from: String,
        /// To.
        to: String,
    },
}

/// What a write produced.
#[derive(Debug, Clone, Serialize)]
pub struct WriteOutcome {
    /// The workspace head after the write.
    pub head: Sha,
    /// Paths touched.
    pub paths: Vec<String>,
}

/// What a checkpoint produced.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointOutcome {
    /// The new branch commit, or `None` when there was nothing to commit.
    pub commit: Option<Sha>,
}

impl Conman {
    /// Workspaces of an app. A read: it never creates anything (each
    /// member's default workspace is created when the membership is granted:
    /// app creation, member added, invite accepted).
    pub async fn list_workspaces(
        &self,
        actor: &Actor,
        app_id: AppId,
        page: PageRequest,
    ) -> Result<Page<Workspace>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().list_workspaces(app_id, None, page).await
    }

    /// The caller's default workspace of the app, if they have one (a read).
    pub async fn my_default_workspace(&self, actor: &Actor, app_id: AppId) -> Result<Option<Workspace>, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::Read, None)?;
        self.store().default_workspace(app_id, actor.user.id).await
    }

    /// Creates a workspace for the caller from the app baseline. Without a
    /// title, the caller's default workspace is created if it does not exist
    /// (the first write of a member whose default workspace is missing,
    /// e.g. because its creation at grant time failed).
    pub async fn create_workspace(
        &self,
        actor: &Actor,
        app_id: AppId,
        title: Option<String>,
    ) -> Result<Workspace, Error> {
        let scope = self.app_scope(actor, app_id).await?;
        scope.require(Capability::EditWorkspace, None)?;
        if let Some(t) = &title {
            validate_title(t)?;
        }
        let owner = &actor.user;
        match title {
            None => match self.store().default_workspace(app_id, owner.id).await? {
                Some(_) => self.insert_workspace(actor, &scope.app, owner, Some("workspace".into()), false).await,
                None => self.default_workspace(actor, &scope.app, owner).await,
            },
            Some(t) => self.insert_workspace(actor, &scope.app, owner, Some(t.trim().to_owned()), false).await,
        }
    }

    /// Creates `member`'s default workspace in `app` if it has none, right
    /// after `granted_by` made them a member (app creation, member added,
    /// invite accepted). The membership is already committed, so a failure
    /// here does not undo it: it is logged, and the member's first
    /// `create_workspace` without a title creates the workspace instead.
    pub(super) async fn grant_default_workspace(&self, granted_by: &Actor, app: &App, member: &User) {
        if let Err(e) = self.default_workspace(granted_by, app, member).await {
            tracing::warn!(app = %app.id, user = %member.id, error = %e, "could not create the default workspace of a new member");
        }
    }

    /// `owner`'s default workspace, created when missing. Concurrent
    /// creations converge on one workspace: its branch name is
    /// deterministic, an existing ref without a row restarts at the
    /// baseline, and the store keeps branch names unique, so exactly one
    /// insert wins and the others read it.
    async fn default_workspace(&self, by: &Actor, app: &App, owner: &User) -> Result<Workspace, Error> {
        if let Some(ws) = self.store().default_workspace(app.id, owner.id).await? {
            return Ok(ws);
        }
        match self.insert_workspace(by, app, owner, None, true).await {
            Err(Error::Conflict { .. }) => self
                .store()
                .default_workspace(app.id, owner.id)
                .await?
                .ok_or_else(|| Error::conflict("the default workspace is being created by another request; retry")),
            other => other,
        }
    }
    /// A branch name `ws/<handle>/<slug>[-N]` free in both the store and git.
    async fn free_branch(&self, app_id: AppId, handle: &Handle, slug: &Slug) -> Result<String, Error> {
        let mut candidate = slug.clone();
        let mut n = 1;
        loop {
            let branch = Workspace::branch_name(handle, &candidate);
            let taken_in_store = self.store().workspace_by_branch(app_id, &branch).await?.is_some();
            let taken_in_git = self.git().resolve_ref(app_id, &format!("refs/heads/{branch}")).await?.is_some();
            if !taken_in_store && !taken_in_git {
                return Ok(branch);
            }
            n += 1;
            candidate = slug.with_suffix(n);
        }
    }

    /// Creates a workspace of `owner` at the baseline, audited as done by
    /// `by` (the owner, or the admin whose grant created a default one).
    async fn insert_workspace(
        &self,
        by: &Actor,
        app: &App,
        owner: &User,
        title: Option<String>,
        is_default: bool,
    ) -> Result<Workspace, Error> {
        let base = self.baseline(app).await?;
        let handle = &owner.handle;
        let branch = if is_default {
            Workspace::branch_name(handle, &Slug::default_workspace())
        } else {
            self.free_branch(app.id, handle, &Slug::from_title(title.as_deref().unwrap_or("ws"))).await?
        };
        let now = self.now();
        let ws = Workspace {
            id: self.new_id(),
            app_id: app.id,
            owner_id: owner.id,
            branch,
            title,
            is_default,
            base_sha: base.to_string(),
            commit_mode: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let _turn = self.intent_turn(app.id).await;
        let existing = self.git().resolve_ref(app.id, &ws.branch_ref()).await?;
        if existing.is_some() {
            if !is_default {
                return Err(Error::conflict("the workspace branch was taken meanwhile; retry"));
            }
            // The default branch exists without a row: a concurrent first
            // use between its ref and its row, a crash at that point, or a
            // branch that came with an imported repository. None of these
            // can hold acknowledged edits (a workspace's row exists before
            // any write to it), so the branch restarts at the baseline;
            // the store's unique branch then lets one insert win.
            if self.store().default_workspace(app.id, owner.id).await?.is_some() {
                return Err(Error::conflict("the default workspace already exists"));
            }
        }
        let audit = self.audit_entry(
            Some(by),
            Some(app.id),
            AuditWhat::new("workspace", ws.id, "workspace.created").after(&ws).sha(&base),
        );
        let moves = vec![RefMove { name: ws.branch_ref(), from: existing, to: Some(base.clone()) }];
        let intent = self.intent(app.id, "workspace.created", ("workspace", ws.id), moves);
        let unit = UnitOfWork::new().record(WorkspaceMutation::InsertWorkspace(ws.clone()), audit);
        self.commit_with_intent(unit, intent).await?;
        Ok(ws)
    }

    /// Loads a workspace of the app, checking `capability` against its owner.
    async fn workspace_in_scope(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        capability: Capability,
    ) -> Result<(AppScope, Workspace), Error> {
        // The workspace is read alongside the scope; the scope is judged
        // first, so a non-member learns nothing about the workspace.
        let (scope, ws) = join(self.app_scope(actor, app_id), self.store().workspace(app_id, ws_id)).await;
        let scope = scope?;
        let ws = ws?.ok_or(Error::NotFound(WorkspaceId::KIND))?;
        scope.require(capability, Some(ws.owner_id))?;
        Ok((scope, ws))
    }

    /// One workspace with its current head.
    pub async fn get_workspace(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
    ) -> Result<(Workspace, Sha), Error> {
        let (_, ws) = self.workspace_in_scope(actor, app_id, ws_id, Capability::Read).await?;
        let head = self.workspace_head(&ws).await?;
        Ok((ws, head))
    }

    /// Renames a workspace or sets the owner's commit mode for it.
    pub async fn update_workspace(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        title: Option<String>,
        commit_mode: Option<CommitMode>,
    ) -> Result<Workspace, Error> {
        let (scope, ws) = self.workspace_in_scope(actor, app_id, ws_id, Capability::EditWorkspace).await?;
        if let Some(t) = &title {
            validate_title(t)?;
        }
        let updated = Workspace {
            title: title.map(|t| t.trim().to_owned()).or(ws.title.clone()),
            commit_mode: commit_mode.or(ws.commit_mode),
            updated_at: self.now(),
            version: ws.version + 1,
            ..ws.clone()
        };
        if updated.title == ws.title && updated.commit_mode == ws.commit_mode {
            return Ok(ws);
        }
        let audit = self.audit_entry(
            Some(&scope.actor),
            Some(app_id),
            AuditWhat::new("workspace", ws.id, "workspace.updated").before(&ws).after(&updated),
        );
        self.store()
            .commit(UnitOfWork::new().record(WorkspaceMutation::UpdateWorkspace(updated.clone()), audit))
            .await?;
        Ok(updated)
    }

    /// The workspace head: the WIP ref when there are saved edits, else the branch.
    pub(super) async fn workspace_head(&self, ws: &Workspace) -> Result<Sha, Error> {
        if let Some(sha) = self.git().resolve_ref(ws.app_id, &ws.wip_ref()).await? {
            return Ok(sha);
        }
        self.branch_head(ws).await
    }

    /// The head of the workspace branch (committed edits only).
    pub(super) async fn branch_head(&self, ws: &Workspace) -> Result<Sha, Error> {
        self.git()
            .resolve_ref(ws.app_id, &ws.branch_ref())
            .await?
            .ok_or_else(|| Error::internal(format!("branch of workspace {} is missing", ws.id)))
    }

    /// Reads a file or lists a directory (`path` `None` = root) at the
    /// workspace head.
    pub async fn read_workspace_path(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        path: Option<&str>,
    ) -> Result<(Sha, Node), Error> {
        let path = path.filter(|p| !p.is_empty()).map(RepoPath::parse).transpose()?;
        let (_, ws) = self.workspace_in_scope(actor, app_id, ws_id, Capability::Read).await?;
        let head = self.workspace_head(&ws).await?;
        let node = self.git().read(app_id, &head, path.as_ref()).await?.ok_or(Error::NotFound("file"))?;
        Ok((head, node))
    }

    /// Writes one file (content as bytes).
    pub async fn write_file(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        path: &str,
        content: Vec<u8>,
        message: Option<String>,
    ) -> Result<WriteOutcome, Error> {
        let path = RepoPath::parse(path)?;
        self.apply_ops(actor, app_id, ws_id, vec![FileOp::Put { path, content }], message).await
    }

    /// Deletes one file.
    pub async fn delete_file(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        path: &str,
        message: Option<String>,
    ) -> Result<WriteOutcome, Error> {
        let path = RepoPath::parse(path)?;
        self.apply_ops(actor, app_id, ws_id, vec![FileOp::Delete { path }], message).await
    }

    /// Applies a batch of operations atomically as one change.
    pub async fn apply_changes(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        ops: Vec<ChangeOp>,
        message: Option<String>,
    ) -> Result<WriteOutcome, Error> {
        if ops.is_empty() || ops.len() > MAX_BATCH_OPS {
            return Err(Error::invalid("ops", "out_of_range", "a batch holds 1 to 1000 operations"));
        }
        let mut file_ops = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            let at = |e: Error| batch_op_error(e, i);
            file_ops.push(match op {
                ChangeOp::Put { path, content } => FileOp::Put { path: RepoPath::parse(&path).map_err(at)?, content },
                ChangeOp::Delete { path } => FileOp::Delete { path: RepoPath::parse(&path).map_err(at)? },
                ChangeOp::Move { from, to } => {
                    FileOp::Move { from: RepoPath::parse(&from).map_err(at)?, to: RepoPath::parse(&to).map_err(at)? }
                }
            });
        }
        self.apply_ops(actor, app_id, ws_id, file_ops, message).await
    }

    async fn apply_ops(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        ops: Vec<FileOp>,
        message: Option<String>,
    ) -> Result<WriteOutcome, Error> {
        let message = check_message(message)?;
        let (scope, ws) = self.workspace_in_scope(actor, app_id, ws_id, Capability::EditWorkspace).await?;
        let settings = &scope.app.settings;
        let blocked = BlockedPaths::new(&settings.blocked_paths)?;
        let mut summary = Vec::with_capacity(ops.len());
        for op in &ops {
            match op {
                FileOp::Put { path, content } => {
                    blocked.check(path)?;
                    if content.len() as u64 > settings.file_size_limit_bytes {
                        return Err(Error::PayloadTooLarge { limit: settings.file_size_limit_bytes });
                    }
                    if is_lfs_pointer(content) {
                        return Err(Error::invalid("content", "lfs_pointer", "Git LFS pointers are not supported"));
                    }
                    summary.push(serde_json::json!({ "op": "put", "path": path, "size": content.len() }));
                }
                FileOp::Delete { path } => {
                    blocked.check(path)?;
                    summary.push(serde_json::json!({ "op": "delete", "path": path }));
                }
                FileOp::Move { from, to } => {
                    blocked.check(from)?;
                    blocked.check(to)?;
                    summary.push(serde_json::json!({ "op": "move", "from": from, "to": to }));
                }
            }
        }
        let paths = ops
            .iter()
            .flat_map(|op| match op {
                FileOp::Put { path, .. } | FileOp::Delete { path } => vec![path.to_string()],
                FileOp::Move { from, to } => vec![from.to_string(), to.to_string()],
            })
            .collect();
        let request = WriteRequest {
            target_ref: ws.wip_ref(),
            base_ref: ws.branch_ref(),
            ops,
            message: message.unwrap_or_else(|| "Edit files".into()),
            author: signature_of(actor),
        };
        let mut attempt = 0;
        let head = loop {
            let turn = self.intent_turn(app_id).await;
            let plan = self.git().plan_write(app_id, request.clone()).await?;
            let audit = self.audit_entry(
                Some(actor),
                Some(app_id),
                AuditWhat::new("workspace", ws.id, "workspace.files_changed")
                    .after(serde_json::json!({ "ops": summary }))
                    .sha(&plan.head),
            );
            let intent = self.intent(app_id, "workspace.files_changed", ("workspace", ws.id), plan.moves);
            let committed = self.commit_with_intent(UnitOfWork::new().audit_only(audit), intent).await;
            drop(turn);
            match committed {
                Ok(()) => break plan.head,
                Err(e) if is_retryable(&e) && attempt < MAX_REPLANS => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        Ok(WriteOutcome { head, paths })
    }

    /// Turns the saved edits into one commit on the branch
    /// (`manual_checkpoint` mode only; `submit_commit` commits at submit).
    pub async fn checkpoint(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        message: &str,
    ) -> Result<CheckpointOutcome, Error> {
        let (scope, ws) = self.workspace_in_scope(actor, app_id, ws_id, Capability::EditWorkspace).await?;
        let message = check_message(Some(message.to_owned()))?
            .ok_or_else(|| Error::invalid("message", "empty", "a checkpoint needs a message"))?;
        if ws.effective_commit_mode(scope.app.settings.commit_mode_default) != CommitMode::ManualCheckpoint {
            return Err(Error::invalid(
                "commit_mode",
                "submit_commit_mode",
                "this workspace commits at submit (submit_commit mode); switch it to manual_checkpoint to checkpoint",
            ));
        }
        let commit = self.squash_edits(actor, &ws, message, "workspace.checkpointed").await?;
        Ok(CheckpointOutcome { commit })
    }

    /// Squashes the WIP edits into one branch commit and audits it.
    pub(super) async fn squash_edits(
        &self,
        actor: &Actor,
        ws: &Workspace,
        message: String,
        action: &str,
    ) -> Result<Option<Sha>, Error> {
        let request = SquashRequest {
            source_ref: ws.wip_ref(),
            branch_ref: ws.branch_ref(),
            message: message.clone(),
            author: signature_of(actor),
        };
        let _turn = self.intent_turn(ws.app_id).await;
        let Some(plan) = self.git().plan_squash(ws.app_id, request).await? else { return Ok(None) };
        let commit = plan.moves.first().filter(|branch| branch.from != branch.to).map(|_| plan.head.clone());
        let intent = self.intent(ws.app_id, action, ("workspace", ws.id), plan.moves);
        let unit = match &commit {
            Some(sha) => UnitOfWork::new().audit_only(self.audit_entry(
                Some(actor),
                Some(ws.app_id),
                AuditWhat::new("workspace", ws.id, action).after(serde_json::json!({ "message": message })).sha(sha),
            )),
            // Same tree: only the WIP ref goes away, as before (no entry).
            None => UnitOfWork::new(),
        };
        self.commit_with_intent(unit, intent).await?;
        Ok(commit)
    }

    /// Returns the workspace to the current baseline, discarding edits.
    pub async fn reset_workspace(&self, actor: &Actor, app_id: AppId, ws_id: WorkspaceId) -> Result<Workspace, Error> {
        let (scope, ws) = self.workspace_in_scope(actor, app_id, ws_id, Capability::EditWorkspace).await?;
        let base = self.baseline(&scope.app).await?;
        let _turn = self.intent_turn(app_id).await;
        let before_head = self.workspace_head(&ws).await?;
        let branch_head = self.git().resolve_ref(app_id, &ws.branch_ref()).await?;
        let mut moves = vec![RefMove { name: ws.branch_ref(), from: branch_head, to: Some(base.clone()) }];
        if let Some(wip) = self.git().resolve_ref(app_id, &ws.wip_ref()).await? {
            moves.push(RefMove { name: ws.wip_ref(), from: Some(wip), to: None });
        }
        let updated =
            Workspace { base_sha: base.to_string(), updated_at: self.now(), version: ws.version + 1, ..ws.clone() };
        let audit = self.audit_entry(
            Some(actor),
            Some(app_id),
            AuditWhat::new("workspace", ws.id, "workspace.reset")
                .before(serde_json::json!({ "head": before_head, "base_sha": ws.base_sha }))
                .after(serde_json::json!({ "head": base, "base_sha": base }))
                .sha(&base),
        );
        let intent = self.intent(app_id, "workspace.reset", ("workspace", ws.id), moves);
        let unit = UnitOfWork::new().record(WorkspaceMutation::UpdateWorkspace(updated.clone()), audit);
        self.commit_with_intent(unit, intent).await?;
        Ok(updated)
    }

    /// Brings the baseline's new commits into the workspace. A conflict
    /// changes nothing and answers `conflict` with the paths.
    pub async fn sync_integration(
        &self,
        actor: &Actor,
        app_id: AppId,
        ws_id: WorkspaceId,
        strategy: Option<SyncStrategy>,
    ) -> Result<(Workspace, Sha), Error> {
        let (scope, ws) = self.workspace_in_scope(actor, app_id, ws_id, Capability::EditWorkspace).await?;
        let upstream = self.baseline(&scope.app).await?;
        let strategy = strategy.unwrap_or(SyncStrategy::Merge);
        let request = SyncRequest {
            branch_ref: ws.branch_ref(),
            wip_ref: ws.wip_ref(),
            upstream: upstream.clone(),
            strategy,
            message: format!("Sync with {}", scope.app.settings.integration_branch),
            author: signature_of(actor),
        };
        let _turn = self.intent_turn(app_id).await;
        match self.git().plan_sync(app_id, request).await? {
            SyncPlan::UpToDate { head } => Ok((ws, head)),
            SyncPlan::Conflicts { paths } => Err(Error::Conflict {
                message: format!("sync conflicts in {} file(s); the workspace is unchanged", paths.len()),
                details: Some(serde_json::json!({ "paths": paths })),
            }),
            SyncPlan::Update(plan) => {
                let head = plan.head;
                let updated = Workspace {
                    base_sha: upstream.to_string(),
                    updated_at: self.now(),
                    version: ws.version + 1,
                    ..ws.clone()
                };
                let audit = self.audit_entry(
                    Some(actor),
                    Some(app_id),
                    AuditWhat::new("workspace", ws.id, "workspace.synced")
                        .before(serde_json::json!({ "base_sha": ws.base_sha }))
                        .after(serde_json::json!({ "base_sha": upstream, "strategy": strategy, "head": head }))
                        .sha(&head),
                );
                let intent = self.intent(app_id, "workspace.synced", ("workspace", ws.id), plan.moves);
                let unit = UnitOfWork::new().record(WorkspaceMutation::UpdateWorkspace(updated.clone()), audit);
                self.commit_with_intent(unit, intent).await?;
                Ok((updated, head))
            }
        }
    }
}

/// How many times a write is planned again after its ref moved or was
/// claimed meanwhile, before answering `conflict`. Each refusal is cheap
/// (the store refuses before anything is written), and under two busy
/// processes a writer can lose several rounds in a row (`pg_two_servers`
/// saw more than 8), so the bound is generous.
const MAX_REPLANS: u32 = 64;

fn check_message(message: Option<String>) -> Result<Option<String>, Error> {
    match message.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()) {
        Some(m) if m.len() > 10_000 || m.contains('\0') => {
            Err(Error::invalid("message", "invalid_format", "message must be at most 10000 bytes without NUL"))
        }
        other => Ok(other),
    }
}

/// An error of the operation at `index` of a batch: the message is
/// prefixed `ops[index]: ` and the details carry `op_index`. Callers that
/// refuse an operation before the core sees it (its base64 content) use
/// this too, so every refusal of a batch reads the same.
pub fn batch_op_error(e: Error, index: usize) -> Error {
    match e {
        Error::Validation { message, details } => {
            let mut d = details.unwrap_or_else(|| serde_json::json!({}));
            d["op_index"] = serde_json::json!(index);
            Error::Validation { message: format!("ops[{index}]: {message}"), details: Some(d) }
        }
        other => other,
    }
}

fn is_lfs_pointer(content: &[u8]) -> bool {
    content.starts_with(b"version https://git-lfs.github.com/spec/")
}
