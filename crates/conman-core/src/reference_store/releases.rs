//! Releases (mirrors the SQL stores' `releases`).

use async_trait::async_trait;

use super::{cas, page, reference, unique, ReferenceStore, State};
use crate::domain::release::Release;
use crate::error::Error;
use crate::ids::{AppId, ReleaseId};
use crate::ports::store::{Page, PageRequest, Record, ReleaseFilter, ReleaseMutation, ReleaseStore};

/// The releases slice's collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Releases {
    pub(crate) releases: Vec<Release>,
}

#[async_trait]
impl ReleaseStore for ReferenceStore {
    async fn release(&self, app_id: AppId, id: ReleaseId) -> Result<Option<Release>, Error> {
        Ok(self.lock().releases.releases.iter().find(|r| r.id == id && r.app_id == app_id).cloned())
    }

    async fn list_releases(
        &self,
        app_id: AppId,
        filter: ReleaseFilter,
        request: PageRequest,
    ) -> Result<Page<Release>, Error> {
        let mut found: Vec<Release> = self
            .lock()
            .releases
            .releases
            .iter()
            .filter(|r| r.app_id == app_id && filter.state.is_none_or(|s| r.state == s))
            .cloned()
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        Ok(page(found, request))
    }

    async fn release_tags_with_prefix(&self, app_id: AppId, prefix: &str) -> Result<Vec<String>, Error> {
        let mut tags: Vec<String> = self
            .lock()
            .releases
            .releases
            .iter()
            .filter(|r| r.app_id == app_id)
            .filter_map(|r| r.tag.clone())
            .filter(|t| t.starts_with(prefix))
            .collect();
        tags.sort();
        Ok(tags)
    }
}

fn tag_taken(all: &[Release], r: &Release) -> bool {
    r.tag.is_some() && all.iter().any(|x| x.id != r.id && x.app_id == r.app_id && x.tag == r.tag)
}

fn insert_release(state: &mut State, r: &Release) -> Result<(), Error> {
    let all = &state.releases.releases;
    unique(all.iter().any(|x| x.id == r.id), Record::Release, "id")?;
    unique(tag_taken(all, r), Record::Release, "tag")?;
    reference(state.apps.exists(r.app_id) && state.users.exists(r.created_by))?;
    state.releases.releases.push(r.clone());
    Ok(())
}

fn update_release(state: &mut State, r: &Release) -> Result<(), Error> {
    let all = &mut state.releases.releases;
    let found = all.iter_mut().find(|x| x.id == r.id && x.app_id == r.app_id);
    cas(found, |x| x.version, r.version, ReleaseId::KIND)?;
    unique(tag_taken(all, r), Record::Release, "tag")?;
    if let Some(row) = all.iter_mut().find(|x| x.id == r.id) {
        *row = r.clone();
    }
    Ok(())
}

/// Applies one release mutation.
pub(crate) fn apply(state: &mut State, mutation: &ReleaseMutation) -> Result<(), Error> {
    match mutation {
        ReleaseMutation::InsertRelease(r) => insert_release(state, r),
        ReleaseMutation::UpdateRelease(r) => update_release(state, r),
    }
}
