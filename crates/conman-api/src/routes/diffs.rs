//! `/api/apps/:appId/changesets/:csId/diff?mode=raw|semantic&revision=`:
//! the raw (unified, with per-file line counts) or semantic (key-level)
//! diff of a revision against its merge base.

use axum::extract::Path;
use conman_core::services::DiffMode;

use super::changesets::ids;
use super::{St, State};
use crate::dto::*;
use crate::envelope::{ok, Data};
use crate::error::ApiResult;
use crate::extract::{ApiQuery, Authed};

/// The diff of the latest revision (or of `revision`; the live workspace
/// before the first submit). `mode` defaults to `raw`.
#[utoipa::path(get, path = "/api/apps/{app_id}/changesets/{cs_id}/diff", operation_id = "changeset_diff",
    tag = "changesets", security(("bearer" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("cs_id" = Uuid, Path, description = "Changeset id"),
        DiffQuery),
    responses((status = 200, body = Envelope<ChangesetDiffDto>), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub(crate) async fn diff(
    State(c): St,
    Authed(actor): Authed,
    Path((app_id, cs_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> ApiResult<Data<ChangesetDiffDto>> {
    let (app_id, cs_id) = ids(&app_id, &cs_id)?;
    let mode = DiffMode::parse(q.mode.as_deref().unwrap_or("raw"))?;
    let diff = c.changeset_diff(&actor, app_id, cs_id, mode, q.revision).await?;
    Ok(ok(ChangesetDiffDto::from(&diff)))
}
