//! Changeset diffs (SPEC §2.3, §5): `raw` (unified diff plus per-file line
//! counts) and `semantic` (key-level changes of YAML, JSON and TOML).
//!
//! Invariants: a diff compares a revision's frozen commit with its merge
//! base against the integration branch (recorded at freeze time), so it
//! never changes after submit; a changeset not yet submitted shows the
//! workspace's live head (saved edits included) against its current merge
//! base; reading only — nothing is written.

use serde::Serialize;

use super::Actor;
use super::Conman;
use crate::diff::{semantic_diff, SemanticDiff};
use crate::domain::changeset::Changeset;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId};
use crate::ports::compute::offload;
use crate::ports::git::{ChangeStatus, DiffDetail, Sha};
use crate::rbac::Capability;

/// Which diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffMode {
    /// Unified diff and line counts.
    Raw,
    /// Key-level changes.
    Semantic,
}

impl DiffMode {
    /// Parses `raw` or `semantic`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "raw" => Ok(DiffMode::Raw),
            "semantic" => Ok(DiffMode::Semantic),
            other => {
                Err(Error::invalid("mode", "unknown_mode", format!("unknown diff mode {other:?} (raw or semantic)")))
            }
        }
    }
}

/// One file of a raw diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawFileDiff {
    /// Path (new side).
    pub path: String,
    /// Old path of a rename.
    pub old_path: Option<String>,
    /// What happened.
    pub status: ChangeStatus,
    /// Binary on either side.
    pub binary: bool,
    /// Lines added.
    pub additions: u32,
    /// Lines removed.
    pub deletions: u32,
    /// Unified diff text.
    pub patch: String,
    /// The patch was cut at its size bound.
    pub patch_truncated: bool,
}

/// Totals of a raw diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiffStats {
    /// Files changed.
    pub files: u32,
    /// Lines added.
    pub additions: u32,
    /// Lines removed.
    pub deletions: u32,
}

/// The two commits a diff compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffRange {
    /// The revision shown (`None`: the live workspace of a draft).
    pub revision: Option<u32>,
    /// Merge base with the integration branch.
    pub base: Sha,
    /// The proposed commit.
    pub head: Sha,
}

/// A changeset diff.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ChangesetDiff {
    /// `mode=raw`.
    Raw {
        /// Commits compared.
        #[serde(flatten)]
        range: DiffRange,
        /// Files, by path.
        files: Vec<RawFileDiff>,
        /// Totals.
        stats: DiffStats,
    },
    /// `mode=semantic`.
    Semantic {
        /// Commits compared.
        #[serde(flatten)]
        range: DiffRange,
        /// Files and key changes with their summary.
        #[serde(flatten)]
        diff: SemanticDiff,
    },
}

impl Conman {
    /// The diff of a changeset's latest revision (or of `revision`).
    pub async fn changeset_diff(
        &self,
        actor: &Actor,
        app_id: AppId,
        id: ChangesetId,
        mode: DiffMode,
        revision: Option<u32>,
    ) -> Result<ChangesetDiff, Error> {
        let (scope, cs) = self.changeset_in_scope(actor, app_id, id).await?;
        scope.require(Capability::Read, None)?;
        let range = self.diff_range(&cs, revision).await?;
        match mode {
            DiffMode::Raw => {
                let changes = self.git().diff(app_id, &range.base, &range.head, DiffDetail::Patch).await?;
                let mut stats = DiffStats { files: 0, additions: 0, deletions: 0 };
                let files = changes
                    .into_iter()
                    .map(|c| {
                        stats.files += 1;
                        stats.additions += c.additions;
                        stats.deletions += c.deletions;
                        RawFileDiff {
                            path: c.path,
                            old_path: c.old_path,
                            status: c.status,
                            binary: c.binary,
                            additions: c.additions,
                            deletions: c.deletions,
                            patch: c.patch.unwrap_or_default(),
                            patch_truncated: c.patch_truncated,
                        }
                    })
                    .collect();
                Ok(ChangesetDiff::Raw { range, files, stats })
            }
            DiffMode::Semantic => {
                let changes = self.git().diff(app_id, &range.base, &range.head, DiffDetail::Contents).await?;
                // Parsing user content is CPU-bound (bounded by
                // `ParseLimits`, but still up to a second): never on an
                // async thread.
                let diff = offload(self.compute.as_ref(), move || semantic_diff(&changes)).await?;
                Ok(ChangesetDiff::Semantic { range, diff })
            }
        }
    }

    /// The commits a diff of `cs` compares (see the module docs).
    async fn diff_range(&self, cs: &Changeset, revision: Option<u32>) -> Result<DiffRange, Error> {
        let wanted = revision.unwrap_or(cs.revision);
        if wanted > 0 {
            let revisions = self.store().changeset_revisions(cs.id).await?;
            let rev = revisions.into_iter().find(|r| r.number == wanted).ok_or(Error::NotFound("revision"))?;
            return Ok(DiffRange { revision: Some(rev.number), base: Sha(rev.base_sha), head: Sha(rev.head_sha) });
        }
        if revision == Some(0) {
            return Err(Error::invalid("revision", "out_of_range", "revisions are numbered from 1"));
        }
        let ws = self
            .store()
            .workspace(cs.app_id, cs.workspace_id)
            .await?
            .ok_or_else(|| Error::internal(format!("workspace of changeset {} is missing", cs.id)))?;
        let head = self.workspace_head(&ws).await?;
        let app = self.store().app(cs.app_id).await?.ok_or(Error::NotFound(AppId::KIND))?;
        let base = self.integration_merge_base(&app, &head).await?;
        Ok(DiffRange { revision: None, base, head })
    }
}
