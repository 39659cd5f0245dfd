//! Releases: reads and mutations.
//!
//! Invariants every store keeps (pinned by `conformance::releases`):
//! - a release is stored whole and read back equal;
//! - `UpdateRelease` is a compare-and-swap on `version`
//!   ([`ConflictReason::StaleVersion`](super::ConflictReason::StaleVersion));
//! - a tag is unique per app: inserting or updating a release to a tag
//!   another release of the app holds is
//!   [`ConflictReason::Taken`](super::ConflictReason::Taken) (`tag`), and
//!   the whole unit is refused — two publishes never share a tag;
//! - releases are listed newest first (creation time, then id, descending).

use async_trait::async_trait;

use super::{Page, PageRequest};
use crate::domain::release::{Release, ReleaseState};
use crate::error::Error;
use crate::ids::{AppId, ReleaseId};

/// Filter of the release listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleaseFilter {
    /// Only this state.
    pub state: Option<ReleaseState>,
}

/// A change to releases.
#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseMutation {
    /// Insert a release.
    InsertRelease(Release),
    /// Update a release (CAS on version).
    UpdateRelease(Release),
}

/// Releases.
#[async_trait]
pub trait ReleaseStore: Send + Sync {
    /// A release of an app.
    async fn release(&self, app_id: AppId, id: ReleaseId) -> Result<Option<Release>, Error>;
    /// Releases of an app matching `filter`, newest first.
    async fn list_releases(
        &self,
        app_id: AppId,
        filter: ReleaseFilter,
        page: PageRequest,
    ) -> Result<Page<Release>, Error>;
    /// The tags of an app's releases that start with `prefix`, sorted.
    async fn release_tags_with_prefix(&self, app_id: AppId, prefix: &str) -> Result<Vec<String>, Error>;
}
