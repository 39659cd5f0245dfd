//! The unit of work: mutations paired with the audit entries that describe
//! them, applied by [`Store::commit`](super::Store::commit) atomically.
//!
//! Invariant: every mutation in a unit is either *recorded* — added together
//! with the audit entry that describes it ([`UnitOfWork::record`],
//! [`UnitOfWork::record_all`]) — or added through
//! [`UnitOfWork::unaudited`] with a named [`Unaudited`] reason. There is no
//! other way to put a mutation in a unit, so a mutation without its audit
//! entry is a visible decision, not an accident.
//!
//! Invariant: whether a unit makes a job runnable (so workers in every
//! process should wake when it commits) is decided here, from the core's
//! vocabulary — [`UnitOfWork::wakes_workers`] — not by a store; so is
//! which running jobs it asks to stop ([`UnitOfWork::cancels_requested`]).

use super::{JobMutation, Mutation};
use crate::domain::audit::AuditEntry;
use crate::domain::job::JobState;
use crate::ids::JobId;

/// Why a mutation is committed without an audit entry of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unaudited {
    /// Lines appended to a job's log: the log is itself the record, and the
    /// attempt's start and end are audited.
    LogAppend,
    /// Copying rows from one store into another: the source's audit chain is
    /// copied record by record after them.
    StoreCopy,
    /// A notification about an event audited in the same unit: the event's
    /// entry is the record, the message only tells people about it.
    Notification,
    /// A guard that changes nothing (`AppMutation::RequireAppAdmin`): the
    /// change it guards is audited in the same unit.
    Guard,
    /// Recording or completing a ref intent (decision 0008): the change
    /// that promises the move is audited in the unit that records it, and
    /// every repair of an intent by reconciliation is audited.
    RefIntent,
    /// Rows a store test or the conformance suite sets up directly (only
    /// with the `conformance` feature, never in a service).
    #[cfg(any(test, feature = "conformance"))]
    Fixture,
}

/// Mutations and their audit entries, applied atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitOfWork {
    mutations: Vec<Mutation>,
    audit: Vec<AuditEntry>,
    unaudited: Vec<Unaudited>,
}

impl UnitOfWork {
    /// An empty unit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a mutation and the audit entry that describes it.
    pub fn record(mut self, mutation: impl Into<Mutation>, entry: AuditEntry) -> Self {
        self.mutations.push(mutation.into());
        self.audit.push(entry);
        self
    }

    /// Adds several mutations described by one audit entry (e.g. an invite
    /// and the message that carries it).
    pub fn record_all<M: Into<Mutation>>(mut self, mutations: impl IntoIterator<Item = M>, entry: AuditEntry) -> Self {
        self.mutations.extend(mutations.into_iter().map(Into::into));
        self.audit.push(entry);
        self
    }

    /// Adds an audit entry for an event whose effect lives outside the store
    /// (a git write, a login failure), or that changes nothing.
    pub fn audit_only(mut self, entry: AuditEntry) -> Self {
        self.audit.push(entry);
        self
    }

    /// Adds a mutation that deliberately has no audit entry, for `reason`.
    pub fn unaudited(mut self, mutation: impl Into<Mutation>, reason: Unaudited) -> Self {
        self.mutations.push(mutation.into());
        self.unaudited.push(reason);
        self
    }

    /// Appends `other`'s mutations and audit entries after this unit's.
    pub fn append(mut self, other: UnitOfWork) -> Self {
        self.mutations.extend(other.mutations);
        self.audit.extend(other.audit);
        self.unaudited.extend(other.unaudited);
        self
    }

    /// The reasons of the unit's unaudited mutations, in order.
    pub fn unaudited_reasons(&self) -> &[Unaudited] {
        &self.unaudited
    }

    /// The mutations, in the order they apply.
    pub fn mutations(&self) -> &[Mutation] {
        &self.mutations
    }

    /// The audit entries, in the order they join the chain.
    pub fn audit_entries(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// True when the unit has neither mutations nor audit entries.
    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty() && self.audit.is_empty()
    }

    /// The running jobs whose cancel the unit requests, in order: the
    /// workers running them should stop them once it commits.
    pub fn cancels_requested(&self) -> impl Iterator<Item = JobId> + '_ {
        self.mutations.iter().filter_map(|m| match m {
            Mutation::Jobs(JobMutation::RequestJobCancel { id }) => Some(*id),
            _ => None,
        })
    }

    /// True when committing the unit makes a job runnable: it enqueues one,
    /// gives one back to the queue, or schedules a retry.
    pub fn wakes_workers(&self) -> bool {
        self.mutations.iter().any(|m| match m {
            Mutation::Jobs(JobMutation::InsertJob(_) | JobMutation::ReleaseJob { .. }) => true,
            Mutation::Jobs(JobMutation::FinishJob(finish)) => finish.state == JobState::Queued,
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::RequestContext;
    use crate::ids::{AuditEventId, OutboxMessageId};
    use crate::ports::store::{JobFinish, OutboxMutation};

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            id: AuditEventId(uuid::Uuid::now_v7()),
            occurred_at: chrono::Utc::now(),
            actor_id: None,
            app_id: None,
            entity_type: "test".into(),
            entity_id: "1".into(),
            action: action.into(),
            before: None,
            after: None,
            git_sha: None,
            request: RequestContext::default(),
        }
    }

    fn finish(state: JobState) -> Mutation {
        let id = JobId(uuid::Uuid::now_v7());
        let end =
            JobFinish { id, worker: "w".into(), state, result: None, error: None, run_after: None, finished_at: None };
        JobMutation::FinishJob(end).into()
    }

    fn delivered() -> Mutation {
        OutboxMutation::MarkOutboxDelivered { id: OutboxMessageId(uuid::Uuid::now_v7()), at: chrono::Utc::now() }.into()
    }

    #[test]
    fn every_mutation_enters_with_its_entry_or_a_named_reason() {
        let first = entry("a");
        let unit = UnitOfWork::new()
            .record(finish(JobState::Succeeded), first.clone())
            .record_all([delivered(), delivered()], entry("b"))
            .audit_only(entry("c"))
            .unaudited(delivered(), Unaudited::Notification);
        assert_eq!(unit.mutations().len(), 4);
        assert_eq!(unit.audit_entries().len(), 3);
        assert_eq!(unit.audit_entries()[0], first);
        assert_eq!(unit.unaudited_reasons(), [Unaudited::Notification]);

        let joined = UnitOfWork::new().unaudited(delivered(), Unaudited::LogAppend).append(unit);
        assert_eq!((joined.mutations().len(), joined.audit_entries().len()), (5, 3));
        assert_eq!(joined.unaudited_reasons(), [Unaudited::LogAppend, Unaudited::Notification]);
        assert!(UnitOfWork::new().is_empty() && !UnitOfWork::new().audit_only(entry("d")).is_empty());
    }

    #[test]
    fn a_unit_wakes_workers_exactly_when_it_makes_a_job_runnable() {
        let id = JobId(uuid::Uuid::now_v7());
        let wakes = |m: Mutation| UnitOfWork::new().record(m, entry("x")).wakes_workers();
        assert!(wakes(JobMutation::ReleaseJob { id, worker: "w".into() }.into()));
        assert!(wakes(finish(JobState::Queued)), "a retry puts the job back in the queue");
        for end in [JobState::Succeeded, JobState::Failed, JobState::Canceled] {
            assert!(!wakes(finish(end)), "{end:?}");
        }
        assert!(!wakes(JobMutation::RequestJobCancel { id }.into()));
        let cancel = UnitOfWork::new()
            .record(JobMutation::RequestJobCancel { id }, entry("c"))
            .record(finish(JobState::Queued), entry("q"));
        assert_eq!(cancel.cancels_requested().collect::<Vec<_>>(), [id]);
        assert_eq!(UnitOfWork::new().record(finish(JobState::Queued), entry("q")).cancels_requested().count(), 0);
        assert!(!wakes(delivered()));
        assert!(!UnitOfWork::new().audit_only(entry("y")).wakes_workers());
    }
}
