//! The app baseline (SPEC §2.1 `baseline_mode`): where new workspaces start
//! and what `reset` and `sync-integration` return to.
//!
//! Invariants:
//! - `integration_head` mode: the baseline is the integration branch's head;
//! - `canonical_env_release` mode: the baseline is the commit on the
//!   canonical environment's ref (`refs/heads/env/<name>`, moved only by
//!   deployments, so it is the release deployed there), falling back to the
//!   integration head while nothing is deployed there or the app has no
//!   environments;
//! - releases, gate runs on "the head" and changeset merge bases always use
//!   the integration head ([`Conman::integration_head`]): the baseline only
//!   says where people start editing.

use super::Conman;
use crate::domain::app::{App, BaselineMode};
use crate::error::Error;
use crate::ports::git::Sha;

impl Conman {
    /// The commit workspaces of `app` start from.
    pub(super) async fn baseline(&self, app: &App) -> Result<Sha, Error> {
        if app.settings.baseline_mode == BaselineMode::CanonicalEnvRelease {
            let environments = self.store().environments(app.id).await?;
            if let Some(canonical) = environments.iter().find(|e| e.is_canonical) {
                if let Some(deployed) = self.git().resolve_ref(app.id, &canonical.git_ref()).await? {
                    return Ok(deployed);
                }
            }
        }
        self.integration_head(app).await
    }

    /// The head of `app`'s integration branch.
    pub(super) async fn integration_head(&self, app: &App) -> Result<Sha, Error> {
        self.git()
            .resolve_ref(app.id, &app.integration_ref())
            .await?
            .ok_or_else(|| Error::internal(format!("integration branch of app {} is missing", app.id)))
    }

    /// Where `head` meets the app's integration branch: what a changeset of
    /// `head` is compared with (the integration head itself for unrelated
    /// histories).
    pub(super) async fn integration_merge_base(&self, app: &App, head: &Sha) -> Result<Sha, Error> {
        let integration = self.integration_head(app).await?;
        Ok(self.git().merge_base(app.id, head, &integration).await?.unwrap_or(integration))
    }
}
