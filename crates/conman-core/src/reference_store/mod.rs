//! The in-memory reference store: the store port on plain collections behind
//! one `Mutex`, with no I/O, mirroring the SQLite and Postgres stores slice
//! by slice (`<aggregate>.rs`: the read trait and one `apply`).
//!
//! Invariant: a unit applies all-or-nothing — [`Store::commit`] applies the
//! unit's mutations to a copy of the state and replaces the state only when
//! every mutation and the audit append succeeded.
//!
//! Invariant: it refuses exactly as the SQL stores do — the same
//! [`ConflictReason`]s for unique keys,
//! stale versions and missing references, `not_found` for updates of
//! unknown rows — and chains audit records with the core's
//! [`chain_hash`](crate::domain::audit::chain_hash). It passes the whole
//! conformance suite (the core's `reference_store` tests).
//!
//! Only with the `conformance` feature: a specification to test against, not
//! a store to run an installation on.

mod apps;
mod audit;
mod changesets;
mod deployments;
mod drift;
mod freezes;
mod intents;
mod jobs;
mod outbox;
mod profiles;
mod releases;
mod users;
mod workspaces;

#[cfg(test)]
mod tests;

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::Error;
use crate::ports::store::{ConflictReason, Mutation, Page, PageRequest, Record, Store, UnitOfWork};

/// Every collection of the store. `PartialEq` makes a snapshot comparable:
/// two equal states answer every read the same.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub(crate) users: users::Users,
    pub(crate) apps: apps::Apps,
    pub(crate) workspaces: workspaces::Workspaces,
    pub(crate) changesets: changesets::Changesets,
    pub(crate) profiles: profiles::Profiles,
    pub(crate) jobs: jobs::Jobs,
    pub(crate) audit: audit::Audit,
    pub(crate) outbox: outbox::Outbox,
    pub(crate) intents: intents::Intents,
    pub(crate) releases: releases::Releases,
    pub(crate) deployments: deployments::Deployments,
    pub(crate) freezes: freezes::Freezes,
    pub(crate) drift: drift::Drift,
}

/// The in-memory reference store.
#[derive(Debug, Default)]
pub struct ReferenceStore {
    state: Mutex<State>,
    /// A unit the core's unit tests commit right after the next read of a
    /// job log: a writer interleaved with a reader, deterministically.
    #[cfg(test)]
    after_job_log_read: Mutex<Option<UnitOfWork>>,
}

impl ReferenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every collection and the audit chain, for "nothing changed"
    /// assertions.
    pub fn snapshot(&self) -> State {
        self.lock().clone()
    }

    /// Commits `unit` right after the next [`job_log`] read returns its
    /// page (a job finishing between a follower's reads).
    ///
    /// [`job_log`]: crate::ports::store::JobStore::job_log
    #[cfg(test)]
    pub(crate) fn commit_after_next_job_log_read(&self, unit: UnitOfWork) {
        *self.after_job_log_read.lock().unwrap_or_else(|p| p.into_inner()) = Some(unit);
    }

    /// The unit to commit after this job log read, if one waits.
    #[cfg(test)]
    pub(crate) fn take_after_job_log_read(&self) -> Option<UnitOfWork> {
        self.after_job_log_read.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for ReferenceStore {
    async fn commit(&self, unit: UnitOfWork) -> Result<(), Error> {
        if unit.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        let mut next = state.clone();
        for mutation in unit.mutations() {
            apply(&mut next, mutation)?;
        }
        audit::append(&mut next, unit.audit_entries())?;
        *state = next;
        Ok(())
    }
}

/// Applies one mutation to `state`: each aggregate's module applies its own.
fn apply(state: &mut State, mutation: &Mutation) -> Result<(), Error> {
    match mutation {
        Mutation::Users(m) => users::apply(state, m),
        Mutation::Apps(m) => apps::apply(state, m),
        Mutation::Workspaces(m) => workspaces::apply(state, m),
        Mutation::Changesets(m) => changesets::apply(state, m),
        Mutation::Profiles(m) => profiles::apply(state, m),
        Mutation::Jobs(m) => jobs::apply(state, m),
        Mutation::Outbox(m) => outbox::apply(state, m),
        Mutation::Intents(m) => intents::apply(state, m),
        Mutation::Releases(m) => releases::apply(state, m),
        Mutation::Deployments(m) => deployments::apply(state, m),
        Mutation::Freezes(m) => freezes::apply(state, m),
        Mutation::Drift(m) => drift::apply(state, m),
    }
}

/// One page of `items` (already filtered and ordered).
pub(crate) fn page<T: Clone>(items: Vec<T>, page: PageRequest) -> Page<T> {
    let total = items.len() as u64;
    let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let items = items.into_iter().skip(offset).take(page.limit as usize).collect();
    Page { items, total }
}

/// `conflict` [`ConflictReason::Taken`] when `taken`.
pub(crate) fn unique(taken: bool, record: Record, field: &str) -> Result<(), Error> {
    if taken {
        return Err(ConflictReason::Taken { record, field: field.into() }.into());
    }
    Ok(())
}

/// `conflict` [`ConflictReason::MissingReference`] unless `present` (a
/// foreign key of the SQL schemas).
pub(crate) fn reference(present: bool) -> Result<(), Error> {
    if !present {
        return Err(ConflictReason::MissingReference.into());
    }
    Ok(())
}

/// The outcome of a compare-and-set update: `found` is the row at its key,
/// if any; its stored version must be `version - 1`.
pub(crate) fn cas<'a, T>(
    found: Option<&'a mut T>,
    stored_version: impl Fn(&T) -> i64,
    version: i64,
    kind: &'static str,
) -> Result<&'a mut T, Error> {
    match found {
        Some(row) if stored_version(row) == version - 1 => Ok(row),
        Some(_) => Err(ConflictReason::StaleVersion { entity: kind }.into()),
        None => Err(Error::NotFound(kind)),
    }
}
