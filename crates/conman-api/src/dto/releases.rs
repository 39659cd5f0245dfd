//! Wire types of releases.

use chrono::{DateTime, Utc};
use conman_core::domain::release::{ItemVerdict, Release, ReleaseGate, ReleaseItem};
use conman_core::ids::ChangesetId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::JobDto;

/// A release (SPEC §2.4): its selection in release order with each
/// changeset's composition outcome, the composed commit, the release gate
/// per environment, the tag once published, and who did what when.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleaseDto {
    /// Id.
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// Title (may be empty).
    pub title: String,
    /// `draft`, `assembling`, `validated`, `published`, `deployed_partial`,
    /// `deployed_full`, `rolled_back` or `failed`.
    #[schema(schema_with = crate::dto::schemas::release_state)]
    pub state: String,
    /// The selection, in release order.
    pub changesets: Vec<ReleaseItemDto>,
    /// The integration head the last assembly started from.
    pub base_sha: Option<String>,
    /// The composed commit of the last assembly.
    pub composed_sha: Option<String>,
    /// The `release_assemble` job of the last assembly.
    pub assemble_job_id: Option<Uuid>,
    /// The release gate of the last assembly, per environment.
    pub gates: Vec<ReleaseGateDto>,
    /// Why the last assembly failed.
    pub failure: Option<String>,
    /// `rYYYY.MM.DD.N`, once published.
    pub tag: Option<String>,
    /// Who created it.
    pub created_by: Uuid,
    /// Who started the last assembly.
    pub assembled_by: Option<Uuid>,
    /// When the last assembly started.
    pub assembled_at: Option<DateTime<Utc>>,
    /// Who published it.
    pub published_by: Option<Uuid>,
    /// When it was published.
    pub published_at: Option<DateTime<Utc>>,
    /// For a release made by `revert_and_release`: the release it reverts.
    pub reverts_release_id: Option<Uuid>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// One selected changeset and what assembly made of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleaseItemDto {
    /// The changeset.
    pub changeset_id: Uuid,
    /// Its place in the release, from 1.
    pub position: u32,
    /// The revision assembly composed (0 until assembled).
    pub revision: u32,
    /// `composed`, `already_contained`, `conflicted` or `override_conflict`
    /// (null until assembled).
    #[schema(schema_with = crate::dto::schemas::compose_outcome_opt)]
    pub outcome: Option<String>,
    /// The merge commit that brought it in (`composed` only).
    pub commit: Option<String>,
    /// Conflicting repository paths (`conflicted` only).
    pub conflicting_paths: Vec<String>,
    /// Conflicting profile keys, `environment <name>:<KEY>` (`override_conflict` only).
    pub conflicting_keys: Vec<String>,
}

impl ReleaseItemDto {
    fn of(position: usize, item: &ReleaseItem) -> Self {
        let mut dto = ReleaseItemDto {
            changeset_id: item.changeset_id.0,
            position: u32::try_from(position + 1).unwrap_or(u32::MAX),
            revision: item.revision,
            outcome: item.outcome.as_ref().map(|o| o.as_str().to_owned()),
            commit: None,
            conflicting_paths: Vec::new(),
            conflicting_keys: Vec::new(),
        };
        match &item.outcome {
            Some(ItemVerdict::Composed { commit }) => dto.commit = Some(commit.clone()),
            Some(ItemVerdict::Conflicted { paths }) => dto.conflicting_paths.clone_from(paths),
            Some(ItemVerdict::OverrideConflict { keys }) => dto.conflicting_keys.clone_from(keys),
            Some(ItemVerdict::AlreadyContained) | None => {}
        }
        dto
    }
}

/// The release gate for one environment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleaseGateDto {
    /// The environment (null: the app has no environments).
    pub environment: Option<String>,
    /// Its runtime profile.
    pub profile_id: Option<Uuid>,
    /// The `gate_release` job.
    pub job_id: Uuid,
    /// Null while it runs.
    pub passed: Option<bool>,
    /// Why it failed.
    pub failure: Option<String>,
}

impl From<&ReleaseGate> for ReleaseGateDto {
    fn from(g: &ReleaseGate) -> Self {
        ReleaseGateDto {
            environment: g.environment.clone(),
            profile_id: g.profile_id.map(|p| p.0),
            job_id: g.job_id.0,
            passed: g.passed,
            failure: g.failure.clone(),
        }
    }
}

impl From<&Release> for ReleaseDto {
    fn from(r: &Release) -> Self {
        ReleaseDto {
            id: r.id.0,
            app_id: r.app_id.0,
            title: r.title.clone(),
            state: r.state.as_str().to_owned(),
            changesets: r.items.iter().enumerate().map(|(i, item)| ReleaseItemDto::of(i, item)).collect(),
            base_sha: r.base_sha.clone(),
            composed_sha: r.composed_sha.clone(),
            assemble_job_id: r.assemble_job_id.map(|j| j.0),
            gates: r.gates.iter().map(ReleaseGateDto::from).collect(),
            failure: r.failure.clone(),
            tag: r.tag.clone(),
            created_by: r.created_by.0,
            assembled_by: r.assembled_by.map(|u| u.0),
            assembled_at: r.assembled_at,
            published_by: r.published_by.map(|u| u.0),
            published_at: r.published_at,
            reverts_release_id: r.reverts_release_id.map(|id| id.0),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

/// `POST /api/apps/:appId/releases` (config managers): a draft release.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReleaseRequest {
    /// Title: up to 200 characters, no control characters (default empty).
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::release_title_opt)]
    pub title: Option<String>,
}

/// `POST .../releases/:relId/changesets` (sets the selection) and
/// `.../reorder` (the same changesets in a new order), in release order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSelectionRequest {
    /// Queued changesets of the app, each once, dependencies first.
    #[schema(schema_with = crate::dto::schemas::changeset_selection)]
    pub changeset_ids: Vec<Uuid>,
}

impl ReleaseSelectionRequest {
    /// The core's input.
    pub fn ids(&self) -> Vec<ChangesetId> {
        self.changeset_ids.iter().copied().map(ChangesetId).collect()
    }
}

/// `{"release": ..., "job": ...}`: a release and the job assembling it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AssembleEnvelope {
    /// The release, now `assembling`.
    pub release: ReleaseDto,
    /// The `release_assemble` job.
    pub job: JobDto,
}

/// `?state=` plus paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReleaseQuery {
    /// Only this state.
    #[param(schema_with = crate::dto::schemas::release_state)]
    pub state: Option<String>,
    /// Page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1-100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}
