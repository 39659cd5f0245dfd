//! [`NotifyWakeup`]: the in-process [`JobWakeup`] — enqueueing a job wakes
//! every idle worker slot of this process at once.
//!
//! Invariant: a wake-up is never lost between a slot's empty claim and its
//! wait, because slots arm their [`Notified`] future *before* claiming (see
//! `worker.rs`). Other processes learn of the job at their next poll — or
//! at once on Postgres, where the composition's job listener calls
//! [`JobWakeup::job_enqueued`] here for every job any process enqueues
//! (`LISTEN/NOTIFY`).

use conman_core::ports::runner::JobWakeup;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Wakes this process's idle worker slots when a job is enqueued.
#[derive(Debug, Default)]
pub struct NotifyWakeup {
    notify: Notify,
}

impl NotifyWakeup {
    /// A wake-up nobody listens to yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A future that completes at the next [`JobWakeup::job_enqueued`];
    /// call `enable()` on it (pinned) before checking for work, so a wake-up
    /// arriving in between is kept.
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

impl JobWakeup for NotifyWakeup {
    fn job_enqueued(&self) {
        self.notify.notify_waiters();
    }
}
