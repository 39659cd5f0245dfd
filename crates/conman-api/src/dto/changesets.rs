//! Wire types of changesets (SPEC §2.3, §4, §7): the changeset record, its
//! frozen revisions, review votes and approval status, comments with their
//! edit history, the raw and semantic diffs, and the request bodies and
//! query strings of `/api/apps/:appId/changesets/...`.
//!
//! Every answer type converts from the core's type with `From`, so the HTTP
//! API and the CLI's `--json` print the same shape. Request bodies refuse
//! unknown fields (`validation_error`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use conman_core::diff::{KeyChange, SemanticDiff, SemanticFile, SemanticSummary};
use conman_core::domain::changeset::{Changeset, ChangesetRevision};
use conman_core::domain::comment::{Comment, CommentAnchor, CommentEdit};
use conman_core::domain::review::{ApprovalStatus, PathRuleStatus, Review};
use conman_core::ids::{ChangesetId, WorkspaceId};
use conman_core::services::{
    ChangesetDiff, ChangesetPatch, ChangesetView, DiffRange, DiffStats, NewChangeset, NewComment, RawFileDiff,
    ReviewInput, ReviewOutcome, SubmitOutcome,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{JobDto, ProfileOverrideDto, ProfileOverrideInputDto};

/// The snake_case wire name of a core enum that serializes as a string.
fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A changeset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangesetDto {
    /// Id.
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// Source workspace.
    pub workspace_id: Uuid,
    /// Author.
    pub author_id: Uuid,
    /// Title.
    pub title: String,
    /// Description (may be empty).
    pub description: String,
    /// `draft`, `submitted`, `in_review`, `approved`, `changes_requested`,
    /// `rejected`, `queued`, `released`, `conflicted` or `needs_revalidation`.
    pub state: String,
    /// Latest frozen revision (0 before the first submit).
    pub revision: u32,
    /// Commit of the latest revision (null before the first submit).
    pub head_sha: Option<String>,
    /// Changesets released together with or before this one.
    pub depends_on: Vec<Uuid>,
    /// Submit gate job of the latest revision.
    pub gate_job_id: Option<Uuid>,
    /// Why the latest submit gate failed (cleared by the next submit).
    pub gate_failure: Option<String>,
    /// When it last entered the release queue (the queue view's order).
    pub queued_at: Option<DateTime<Utc>>,
    /// The last check of it against a new integration head.
    pub last_revalidation: Option<RevalidationDto>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One check of a queued changeset against a new integration head.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevalidationDto {
    /// When.
    pub at: DateTime<Utc>,
    /// The integration head it was checked against.
    pub head: String,
    /// `clean` (still queued), `conflicted`, `gate_running` (still queued,
    /// its submit gate runs again on the merged tree) or `gate_failed`
    /// (moved to `needs_revalidation`).
    #[schema(schema_with = crate::dto::schemas::revalidation_outcome)]
    pub outcome: String,
    /// The submit gate job re-running on the merged tree, while
    /// `gate_running`.
    pub gate_job_id: Option<Uuid>,
}

impl From<&Changeset> for ChangesetDto {
    fn from(c: &Changeset) -> Self {
        ChangesetDto {
            id: c.id.0,
            app_id: c.app_id.0,
            workspace_id: c.workspace_id.0,
            author_id: c.author_id.0,
            title: c.title.clone(),
            description: c.description.clone(),
            state: c.state.as_str().to_owned(),
            revision: c.revision,
            head_sha: c.head_sha.clone(),
            depends_on: c.depends_on.iter().map(|d| d.0).collect(),
            gate_job_id: c.gate_job_id.map(|j| j.0),
            gate_failure: c.gate_failure.clone(),
            queued_at: c.queued_at,
            last_revalidation: c.last_revalidation.as_ref().map(|r| RevalidationDto {
                at: r.at,
                head: r.head.clone(),
                outcome: r.outcome.as_str().to_owned(),
                gate_job_id: r.gate_job_id.map(|j| j.0),
            }),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A frozen revision of a changeset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevisionDto {
    /// 1, 2, ...
    pub number: u32,
    /// The frozen commit.
    pub head_sha: String,
    /// Its merge base with the integration branch at freeze time.
    pub base_sha: String,
    /// Paths changed against `base_sha`, sorted (both sides of a rename).
    pub files: Vec<String>,
    /// The submit gate job started for it.
    pub gate_job_id: Option<Uuid>,
    /// Who froze it.
    pub created_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<&ChangesetRevision> for RevisionDto {
    fn from(r: &ChangesetRevision) -> Self {
        RevisionDto {
            number: r.number,
            head_sha: r.head_sha.clone(),
            base_sha: r.base_sha.clone(),
            files: r.files.clone(),
            gate_job_id: r.gate_job_id.map(|j| j.0),
            created_by: r.created_by.0,
            created_at: r.created_at,
        }
    }
}

/// One reviewer's vote on one revision (a later vote of the same reviewer
/// on the same revision replaces it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewDto {
    /// Id.
    pub id: Uuid,
    /// The changeset.
    pub changeset_id: Uuid,
    /// The revision voted on.
    pub revision: u32,
    /// Who voted.
    pub reviewer_id: Uuid,
    /// `approve`, `request_changes` or `reject`.
    pub action: String,
    /// Optional comment.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<&Review> for ReviewDto {
    fn from(r: &Review) -> Self {
        ReviewDto {
            id: r.id.0,
            changeset_id: r.changeset_id.0,
            revision: r.revision,
            reviewer_id: r.reviewer_id.0,
            action: r.action.as_str().to_owned(),
            comment: r.comment.clone(),
            created_at: r.created_at,
        }
    }
}

/// How one `path_rules` entry of the app stands on the latest revision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PathRuleStatusDto {
    /// The rule's glob.
    pub glob: String,
    /// Changed paths it matches.
    pub matched_paths: Vec<String>,
    /// An eligible approver from the rule's set approved.
    pub satisfied: bool,
}

impl From<&PathRuleStatus> for PathRuleStatusDto {
    fn from(p: &PathRuleStatus) -> Self {
        PathRuleStatusDto { glob: p.glob.clone(), matched_paths: p.matched_paths.clone(), satisfied: p.satisfied }
    }
}

/// The latest revision against the approval policy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalDto {
    /// The revision counted (the latest).
    pub revision: u32,
    /// Distinct eligible approvers of that revision.
    pub approvals: u32,
    /// Approvals needed.
    pub required: u32,
    /// Who approved (eligible approvers only), sorted.
    pub approved_by: Vec<Uuid>,
    /// The path rules that apply (a changed path matches their glob).
    pub path_rules: Vec<PathRuleStatusDto>,
    /// Enough approvals and every applicable path rule satisfied.
    pub approved: bool,
}

impl From<&ApprovalStatus> for ApprovalDto {
    fn from(a: &ApprovalStatus) -> Self {
        ApprovalDto {
            revision: a.revision,
            approvals: a.approvals,
            required: a.required,
            approved_by: a.approved_by.iter().map(|u| u.0).collect(),
            path_rules: a.path_rules.iter().map(PathRuleStatusDto::from).collect(),
            approved: a.approved,
        }
    }
}

/// `GET .../changesets/:csId`: the changeset with its revisions, votes and
/// approval status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangesetDetailDto {
    /// The record (its fields appear at the top level).
    #[serde(flatten)]
    pub changeset: ChangesetDto,
    /// Frozen revisions, oldest first.
    pub revisions: Vec<RevisionDto>,
    /// Votes on every revision, by revision then time.
    pub reviews: Vec<ReviewDto>,
    /// Approval status of the latest revision (null before the first submit).
    pub approval: Option<ApprovalDto>,
}

impl From<&ChangesetView> for ChangesetDetailDto {
    fn from(v: &ChangesetView) -> Self {
        ChangesetDetailDto {
            changeset: ChangesetDto::from(&v.changeset),
            revisions: v.revisions.iter().map(RevisionDto::from).collect(),
            reviews: v.reviews.iter().map(ReviewDto::from).collect(),
            approval: v.approval.as_ref().map(ApprovalDto::from),
        }
    }
}

/// Answer of submit and resubmit: the changeset (now `submitted`), the
/// frozen revision and the submit gate job to poll.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubmitDto {
    /// The changeset.
    pub changeset: ChangesetDto,
    /// The revision just frozen.
    pub revision: RevisionDto,
    /// The submit gate job (poll `/api/apps/:appId/jobs/:jobId`).
    pub job: JobDto,
    /// The changeset's profile overrides included with the revision (as
    /// `GET .../profile-overrides` shows them: secret names only).
    pub included_profile_overrides: Vec<ProfileOverrideDto>,
}

impl From<&SubmitOutcome> for SubmitDto {
    fn from(s: &SubmitOutcome) -> Self {
        SubmitDto {
            changeset: ChangesetDto::from(&s.changeset),
            revision: RevisionDto::from(&s.revision),
            job: JobDto::from(&s.job),
            included_profile_overrides: s.included_profile_overrides.iter().map(ProfileOverrideDto::from).collect(),
        }
    }
}

/// Answer of a review vote.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewResultDto {
    /// The changeset after the vote (`approved` once the policy is met,
    /// `changes_requested`, `rejected`, or still `in_review`).
    pub changeset: ChangesetDto,
    /// The recorded vote.
    pub review: ReviewDto,
    /// Approval status of the latest revision after the vote.
    pub approval: ApprovalDto,
}

impl From<&ReviewOutcome> for ReviewResultDto {
    fn from(r: &ReviewOutcome) -> Self {
        ReviewResultDto {
            changeset: ChangesetDto::from(&r.changeset),
            review: ReviewDto::from(&r.review),
            approval: ApprovalDto::from(&r.approval),
        }
    }
}

/// Where a comment points: a path, optionally a line, of a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentAnchorDto {
    /// Repository path.
    pub path: String,
    /// Line (from 1) of the file in that revision.
    #[serde(default)]
    pub line: Option<u32>,
    /// Revision (from 1, at most the latest).
    pub revision: u32,
}

impl From<&CommentAnchor> for CommentAnchorDto {
    fn from(a: &CommentAnchor) -> Self {
        CommentAnchorDto { path: a.path.clone(), line: a.line, revision: a.revision }
    }
}

impl From<CommentAnchorDto> for CommentAnchor {
    fn from(a: CommentAnchorDto) -> Self {
        CommentAnchor { path: a.path, line: a.line, revision: a.revision }
    }
}

/// An earlier body of an edited comment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommentEditDto {
    /// The body before the edit.
    pub body: String,
    /// When it was replaced.
    pub replaced_at: DateTime<Utc>,
}

impl From<&CommentEdit> for CommentEditDto {
    fn from(e: &CommentEdit) -> Self {
        CommentEditDto { body: e.body.clone(), replaced_at: e.replaced_at }
    }
}

/// A comment on a changeset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommentDto {
    /// Id.
    pub id: Uuid,
    /// The changeset.
    pub changeset_id: Uuid,
    /// Author.
    pub author_id: Uuid,
    /// Current body.
    pub body: String,
    /// Anchor, if any.
    pub anchor: Option<CommentAnchorDto>,
    /// Earlier bodies, oldest first (editing keeps them).
    pub edits: Vec<CommentEditDto>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last edit (or creation).
    pub updated_at: DateTime<Utc>,
}

impl From<&Comment> for CommentDto {
    fn from(c: &Comment) -> Self {
        CommentDto {
            id: c.id.0,
            changeset_id: c.changeset_id.0,
            author_id: c.author_id.0,
            body: c.body.clone(),
            anchor: c.anchor.as_ref().map(CommentAnchorDto::from),
            edits: c.edits.iter().map(CommentEditDto::from).collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// One file of a raw diff.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RawFileDiffDto {
    /// Path (the new side; the old path for deletions).
    pub path: String,
    /// Old path of a rename.
    pub old_path: Option<String>,
    /// `added`, `modified`, `deleted` or `renamed`.
    pub status: String,
    /// Binary on either side (no patch text then).
    pub binary: bool,
    /// Lines added.
    pub additions: u32,
    /// Lines removed.
    pub deletions: u32,
    /// Unified diff text.
    pub patch: String,
    /// The patch was cut at its size bound (1 MiB).
    pub patch_truncated: bool,
}

impl From<&RawFileDiff> for RawFileDiffDto {
    fn from(f: &RawFileDiff) -> Self {
        RawFileDiffDto {
            path: f.path.clone(),
            old_path: f.old_path.clone(),
            status: wire_name(&f.status),
            binary: f.binary,
            additions: f.additions,
            deletions: f.deletions,
            patch: f.patch.clone(),
            patch_truncated: f.patch_truncated,
        }
    }
}

/// Totals of a raw diff.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiffStatsDto {
    /// Files changed.
    pub files: u32,
    /// Lines added.
    pub additions: u32,
    /// Lines removed.
    pub deletions: u32,
}

impl From<&DiffStats> for DiffStatsDto {
    fn from(s: &DiffStats) -> Self {
        DiffStatsDto { files: s.files, additions: s.additions, deletions: s.deletions }
    }
}

/// `mode=raw`: the unified diff of each file and line counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RawDiffDto {
    /// Always `raw`.
    pub mode: String,
    /// The revision shown (null: the live workspace of a changeset never submitted).
    pub revision: Option<u32>,
    /// Merge base with the integration branch.
    pub base_sha: String,
    /// The proposed commit.
    pub head_sha: String,
    /// Files, by path.
    pub files: Vec<RawFileDiffDto>,
    /// Totals.
    pub stats: DiffStatsDto,
}

/// One key-level change of a YAML, JSON or TOML file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyChangeDto {
    /// `added`, `modified`, `removed` or `moved`.
    pub op: String,
    /// Dotted key path (`a.b[0].c`; the new path for `moved`).
    pub key: String,
    /// The old path (`moved` only).
    pub from_key: Option<String>,
    /// Value before (`modified`, `removed`, `moved`); absent when there is
    /// none, `null` when the value was null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_value: Option<serde_json::Value>,
    /// Value after (`added`, `modified`, `moved`); absent when there is
    /// none, `null` when the value is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_value: Option<serde_json::Value>,
    /// 1-based line in the new file (the old file for `removed`), where known.
    pub line: Option<u32>,
}

impl From<&KeyChange> for KeyChangeDto {
    fn from(k: &KeyChange) -> Self {
        KeyChangeDto {
            op: wire_name(&k.op),
            key: k.key.clone(),
            from_key: k.from_key.clone(),
            old_value: k.old_value.clone(),
            new_value: k.new_value.clone(),
            line: k.line,
        }
    }
}

/// The semantic diff of one file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SemanticFileDto {
    /// Path (the new side; the old path for deletions).
    pub path: String,
    /// Old path of a rename.
    pub old_path: Option<String>,
    /// `added`, `modified`, `deleted` or `renamed`.
    pub status: String,
    /// `yaml`, `json`, `toml` or `other` (by extension).
    pub format: String,
    /// `key` (changes listed) or `file` (file-level only; see `note`).
    pub level: String,
    /// Key-level changes, by key then op (empty at file level).
    pub changes: Vec<KeyChangeDto>,
    /// Why the file is reported at file level, or a remark.
    pub note: Option<String>,
    /// Why the file is at file level, as a code: `binary`, `not_structured`,
    /// `renamed`, `contents_unavailable`, `unparseable` or `too_complex`
    /// (over a parse limit: size, depth or values); absent at key level.
    pub reason: Option<String>,
}

impl From<&SemanticFile> for SemanticFileDto {
    fn from(f: &SemanticFile) -> Self {
        SemanticFileDto {
            path: f.path.clone(),
            old_path: f.old_path.clone(),
            status: wire_name(&f.status),
            format: wire_name(&f.format),
            level: wire_name(&f.level),
            changes: f.changes.iter().map(KeyChangeDto::from).collect(),
            note: f.note.clone(),
            reason: f.reason.as_ref().map(wire_name),
        }
    }
}

/// Counts of a semantic diff.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SemanticSummaryDto {
    /// Key changes by op (`added`, `modified`, `removed`, `moved`) and
    /// file-level entries (`file_added`, `file_modified`, `file_removed`,
    /// `file_renamed`).
    pub by_op: BTreeMap<String, u32>,
    /// Path → number of key changes (1 for a file-level entry).
    pub by_file: BTreeMap<String, u32>,
}

impl From<&SemanticSummary> for SemanticSummaryDto {
    fn from(s: &SemanticSummary) -> Self {
        SemanticSummaryDto { by_op: s.by_op.clone(), by_file: s.by_file.clone() }
    }
}

/// `mode=semantic`: key-level changes of YAML, JSON and TOML files, other
/// files at file level.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SemanticDiffDto {
    /// Always `semantic`.
    pub mode: String,
    /// The revision shown (null: the live workspace of a changeset never submitted).
    pub revision: Option<u32>,
    /// Merge base with the integration branch.
    pub base_sha: String,
    /// The proposed commit.
    pub head_sha: String,
    /// One entry per changed file.
    pub files: Vec<SemanticFileDto>,
    /// Counts.
    pub summary: SemanticSummaryDto,
}

impl SemanticDiffDto {
    /// Converts a semantic diff of `range`.
    pub fn new(range: &DiffRange, diff: &SemanticDiff) -> Self {
        SemanticDiffDto {
            mode: "semantic".into(),
            revision: range.revision,
            base_sha: range.base.to_string(),
            head_sha: range.head.to_string(),
            files: diff.files.iter().map(SemanticFileDto::from).collect(),
            summary: SemanticSummaryDto::from(&diff.summary),
        }
    }
}

/// `GET .../diff`: a raw or a semantic diff, told apart by `mode`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ChangesetDiffDto {
    /// `mode=raw`.
    Raw(RawDiffDto),
    /// `mode=semantic`.
    Semantic(SemanticDiffDto),
}

impl From<&ChangesetDiff> for ChangesetDiffDto {
    fn from(d: &ChangesetDiff) -> Self {
        match d {
            ChangesetDiff::Raw { range, files, stats } => ChangesetDiffDto::Raw(RawDiffDto {
                mode: "raw".into(),
                revision: range.revision,
                base_sha: range.base.to_string(),
                head_sha: range.head.to_string(),
                files: files.iter().map(RawFileDiffDto::from).collect(),
                stats: DiffStatsDto::from(stats),
            }),
            ChangesetDiff::Semantic { range, diff } => ChangesetDiffDto::Semantic(SemanticDiffDto::new(range, diff)),
        }
    }
}

/// `POST /api/apps/:appId/changesets`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChangesetRequest {
    /// The caller's workspace (at most one open changeset each).
    pub workspace_id: Uuid,
    /// Title.
    #[schema(schema_with = crate::dto::schemas::title)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Changesets of the same app to release together with or before this one.
    #[serde(default)]
    pub depends_on: Option<Vec<Uuid>>,
}

impl From<CreateChangesetRequest> for NewChangeset {
    fn from(r: CreateChangesetRequest) -> Self {
        NewChangeset {
            workspace_id: WorkspaceId(r.workspace_id),
            title: r.title,
            description: r.description,
            depends_on: r.depends_on.unwrap_or_default().into_iter().map(ChangesetId).collect(),
        }
    }
}

/// `PATCH /api/apps/:appId/changesets/:csId`; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChangesetRequest {
    /// New title.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::title_opt)]
    pub title: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New dependency list (replaces the old one).
    #[serde(default)]
    pub depends_on: Option<Vec<Uuid>>,
}

impl From<UpdateChangesetRequest> for ChangesetPatch {
    fn from(r: UpdateChangesetRequest) -> Self {
        ChangesetPatch {
            title: r.title,
            description: r.description,
            depends_on: r.depends_on.map(|d| d.into_iter().map(ChangesetId).collect()),
        }
    }
}

/// `POST .../submit`: an optional body. Without `profile_overrides` the
/// overrides the draft carries (set with `PUT .../profile-overrides`) are
/// included; with it, they are first replaced by this list (the same rules
/// as the `PUT`: at most 20, one per target; `[]` removes them all) in the
/// same transaction as the submit — the revision is frozen with exactly
/// these, or nothing changes.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// Replaces the draft's profile overrides before they are frozen.
    #[serde(default)]
    pub profile_overrides: Option<Vec<ProfileOverrideInputDto>>,
}

/// `POST .../resubmit`: an optional empty body. A submitted changeset's
/// overrides are frozen, so none are taken here (any field is refused).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResubmitRequest {}

/// `POST .../review`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `approve`, `request_changes` or `reject`.
    #[schema(schema_with = crate::dto::schemas::review_action)]
    pub action: String,
    /// Optional comment.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::comment_body_opt)]
    pub comment: Option<String>,
    /// The revision the reviewer looked at; 409 unless it is the latest.
    #[serde(default)]
    pub revision: Option<u32>,
}

impl From<ReviewRequest> for ReviewInput {
    fn from(r: ReviewRequest) -> Self {
        ReviewInput { action: r.action, comment: r.comment, revision: r.revision }
    }
}

/// `POST .../comments`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCommentRequest {
    /// Text (1 byte to 64 KiB after trimming).
    #[schema(schema_with = crate::dto::schemas::comment_body)]
    pub body: String,
    /// Optional anchor.
    #[serde(default)]
    pub anchor: Option<CommentAnchorDto>,
}

impl From<CreateCommentRequest> for NewComment {
    fn from(r: CreateCommentRequest) -> Self {
        NewComment { body: r.body, anchor: r.anchor.map(CommentAnchor::from) }
    }
}

/// `PATCH .../comments/:commentId` (its author only; the old body is kept
/// in `edits`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditCommentRequest {
    /// The new text.
    #[schema(schema_with = crate::dto::schemas::comment_body)]
    pub body: String,
}

/// `?state=&author=` plus paging of changeset listings.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesetQuery {
    /// Only this state (`draft`, `in_review`, ...).
    #[param(schema_with = crate::dto::schemas::changeset_state)]
    pub state: Option<String>,
    /// Only this author (a user id).
    #[param(value_type = Option<Uuid>)]
    pub author: Option<String>,
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1-100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// `?mode=&revision=` of diffs.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// `raw` (default) or `semantic`.
    #[param(schema_with = crate::dto::schemas::diff_mode)]
    pub mode: Option<String>,
    /// Revision to show (default: the latest; the live workspace before
    /// the first submit).
    #[param(minimum = 1)]
    pub revision: Option<u32>,
}
