//! The app baseline (SPEC §2.1 `baseline_mode`): where new workspaces start
//! and what `reset` and `sync-integration` return to.
//!
//! `canonical_env_release` falls back to the integration head while no
//! release has been deployed to the canonical environment — which is always
//! the case until deployments exist, so both modes resolve to the
//! integration head for now. This function is the one place to extend.

use super::Conman;
use crate::domain::app::App;
use crate::error::Error;
use crate::ports::git::Sha;

impl Conman {
    /// The commit workspaces of `app` are based on.
    pub(super) async fn baseline(&self, app: &App) -> Result<Sha, Error> {
        self.git()
            .resolve_ref(app.id, &app.integration_ref())
            .await?
            .ok_or_else(|| Error::internal(format!("integration branch of app {} is missing", app.id)))
    }

    /// Where `head` meets the app's integration branch: what a changeset of
    /// `head` is compared with (the integration head itself for unrelated
    /// histories).
    pub(super) async fn integration_merge_base(&self, app: &App, head: &Sha) -> Result<Sha, Error> {
        let integration = self.baseline(app).await?;
        Ok(self.git().merge_base(app.id, head, &integration).await?.unwrap_or(integration))
    }
}
