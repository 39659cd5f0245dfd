//! The store port, cut by aggregate: each slice (`users`, `apps`,
//! `workspaces`, `changesets`, `profiles`, `jobs`, `audit`, `outbox`,
//! `intents`, `releases`, `deployments`, `freezes`, `drift`) holds
//! its read trait, its mutation sub-enum and the value types they speak;
//! this module holds what they share and the one atomic write path.
//!
//! Writes go through [`Store::commit`] as a [`UnitOfWork`]: mutations paired
//! with the audit entries describing them (see [`mod@unit`]). A store applies a
//! unit in one transaction: all mutations and all audit records, or none.
//! Audit records are appended to one global hash chain (see
//! [`crate::domain::audit::chain_hash`]) in the same transaction.
//!
//! A store refuses with `conflict` by *choosing* a [`ConflictReason`]; the
//! core renders it ([`mod@conflict`]), so every store answers the same full
//! error value for the same refusal.
//!
//! Optimistic concurrency: `Update*` mutations carry the new value whose
//! `version` is the stored version + 1; the store refuses with
//! [`ConflictReason::StaleVersion`] when the stored version is not
//! `version - 1`. Unique-key violations (email, handle, app name, branch)
//! are [`ConflictReason::Taken`]. Lookups of app-owned entities always take
//! the app id: an id from another app is simply not found.
//!
//! Further rules every store keeps (pinned by the conformance suite):
//! updating, revoking or marking delivered an id that does not exist is
//! `not_found`; revoking a credential or delivering a message twice keeps
//! the first time; `PutMembership` replaces the whole row; "newest first"
//! for audit means descending chain position; `until` is exclusive; a unit
//! holding only audit entries is valid; at most one open (neither released
//! nor rejected) changeset per workspace — inserting or updating into a
//! second is [`ConflictReason::OpenChangesetExists`]; `PutReview` replaces
//! the vote of the same (changeset, revision, reviewer); runtime profile
//! names are unique per app and environment names per app (`conflict`);
//! an environment that deployments, freeze windows, validations or
//! migration records refer to cannot be removed (`missing_reference`);
//! sealed secrets are never deleted — `RewrapSecrets` replaces a row's
//! sealed value only while it is still wrapped by the expected master key.

pub mod apps;
pub mod audit;
pub mod changesets;
pub mod conflict;
pub mod deployments;
pub mod drift;
pub mod freezes;
pub mod intents;
pub mod jobs;
pub mod outbox;
pub mod profiles;
pub mod releases;
pub mod unit;
pub mod users;
pub mod workspaces;

use std::future::Future;

pub use apps::{AppMutation, AppStore, MemberRecord};
pub use audit::{AuditFilter, AuditStore};
pub use changesets::{ChangesetFilter, ChangesetMutation, ChangesetOrder, ChangesetStore};
pub use conflict::{ConflictReason, Record};
pub use deployments::{DeploymentCount, DeploymentFilter, DeploymentMutation, DeploymentStore};
pub use drift::{DriftMutation, DriftStore};
pub use freezes::{FreezeMutation, FreezeStore};
pub use intents::{Intent, IntentMutation, IntentOutcome, IntentStore};
pub use jobs::{JobClaim, JobFilter, JobFinish, JobLogPage, JobMutation, JobStore};
pub use outbox::{OutboxMutation, OutboxStore};
pub use profiles::{ProfileMutation, ProfileStore, SecretOwner, StoredSecret};
pub use releases::{ReleaseFilter, ReleaseMutation, ReleaseStore};
pub use unit::{Unaudited, UnitOfWork};
pub use users::{UserMutation, UserStore};
pub use workspaces::{WorkspaceMutation, WorkspaceStore};

use async_trait::async_trait;

use crate::error::Error;

/// A page request: `page` from 1, `limit` 1..=100 (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Page number, from 1.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
}

impl PageRequest {
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 100;

    /// Validates caller input; absent values take the defaults (1, 20).
    pub fn new(page: Option<u32>, limit: Option<u32>) -> Result<Self, Error> {
        let page = page.unwrap_or(1);
        let limit = limit.unwrap_or(20);
        if page == 0 || page > 1_000_000 {
            return Err(Error::invalid("page", "out_of_range", "page must be 1 or more"));
        }
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(Error::invalid("limit", "out_of_range", "limit must be 1-100"));
        }
        Ok(PageRequest { page, limit })
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.limit)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { page: 1, limit: 20 }
    }
}

/// One page of results and the total count.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Items of this page.
    pub items: Vec<T>,
    /// Total number of items across pages.
    pub total: u64,
}

impl<T> Page<T> {
    /// Maps the items, keeping the total.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), total: self.total }
    }
}

/// One change to the store: one aggregate's mutation.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// Users, credentials, password resets.
    Users(UserMutation),
    /// Apps, memberships, invites.
    Apps(AppMutation),
    /// Workspaces.
    Workspaces(WorkspaceMutation),
    /// Changesets, revisions, reviews, comments.
    Changesets(ChangesetMutation),
    /// Runtime profiles, secrets, environments, overrides.
    Profiles(ProfileMutation),
    /// Jobs.
    Jobs(JobMutation),
    /// The outbox.
    Outbox(OutboxMutation),
    /// Ref intents.
    Intents(IntentMutation),
    /// Releases.
    Releases(ReleaseMutation),
    /// Deployments.
    Deployments(DeploymentMutation),
    /// Deploy freeze windows.
    Freezes(FreezeMutation),
    /// Drift baselines and migration records.
    Drift(DriftMutation),
}

macro_rules! mutation_from {
    ($($slice:ident => $variant:ident),* $(,)?) => {$(
        impl From<$slice> for Mutation {
            fn from(m: $slice) -> Self {
                Mutation::$variant(m)
            }
        }
    )*};
}

mutation_from! {
    UserMutation => Users,
    AppMutation => Apps,
    WorkspaceMutation => Workspaces,
    ChangesetMutation => Changesets,
    ProfileMutation => Profiles,
    JobMutation => Jobs,
    OutboxMutation => Outbox,
    IntentMutation => Intents,
    ReleaseMutation => Releases,
    DeploymentMutation => Deployments,
    FreezeMutation => Freezes,
    DriftMutation => Drift,
}

/// Reads every page of a listing, in order: `fetch` is called with pages 1,
/// 2, ... of [`PageRequest::MAX_LIMIT`] items until the total is reached or a
/// page comes back empty.
pub async fn collect_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, Error>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, Error>>,
{
    let mut all = Vec::new();
    let mut page = PageRequest { page: 1, limit: PageRequest::MAX_LIMIT };
    loop {
        let got = fetch(page).await?;
        let empty = got.items.is_empty();
        all.extend(got.items);
        if empty || all.len() as u64 >= got.total {
            return Ok(all);
        }
        page.page += 1;
    }
}

/// The whole store: every aggregate's reads plus the atomic write path.
#[async_trait]
pub trait Store:
    UserStore
    + AppStore
    + WorkspaceStore
    + ChangesetStore
    + ProfileStore
    + JobStore
    + AuditStore
    + OutboxStore
    + IntentStore
    + ReleaseStore
    + DeploymentStore
    + FreezeStore
    + DriftStore
{
    /// Applies `unit` atomically (see the module docs).
    async fn commit(&self, unit: UnitOfWork) -> Result<(), Error>;
}
