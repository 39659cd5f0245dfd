//! [`NotifyWakeup`]: the in-process [`JobWakeup`] — enqueueing a job wakes
//! every idle worker slot of this process at once, and a committed cancel
//! request stops the attempt of this process that runs the job at once.
//!
//! Invariants:
//! - a wake-up is never lost between a slot's empty claim and its wait,
//!   because slots arm their [`Notified`] future *before* claiming (see
//!   `worker.rs`);
//! - a cancel signal is never lost once the attempt is registered
//!   ([`NotifyWakeup::watch_cancel`], before its handler starts): it is
//!   kept as a permit until the attempt looks; one that comes before the
//!   registration is found by the cancel poll (`Conman::jobs_to_stop` over
//!   [`NotifyWakeup::running_jobs`]) at the next poll interval.
//!
//! Other processes learn of a job at their next poll, and of a cancel at
//! their next cancel poll — or at once on Postgres, where the composition's
//! job listener calls [`JobWakeup::job_enqueued`] and
//! [`JobWakeup::cancel_requested`] here for every notice any process sends
//! (`LISTEN/NOTIFY`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use conman_core::ids::JobId;
use conman_core::ports::runner::JobWakeup;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Wakes this process's idle worker slots when a job is enqueued, and
/// stops its running attempt of a job whose cancel was requested.
#[derive(Debug, Default)]
pub struct NotifyWakeup {
    notify: Notify,
    /// The attempts running in this process, by job.
    running: Mutex<HashMap<JobId, Arc<Notify>>>,
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

    /// Registers the attempt of `job` this process runs, until the answer
    /// is dropped: [`JobWakeup::cancel_requested`] for `job` then completes
    /// its [`CancelWatch::requested`].
    pub fn watch_cancel(self: &Arc<Self>, job: JobId) -> CancelWatch {
        let signal = Arc::new(Notify::new());
        lock(&self.running).insert(job, Arc::clone(&signal));
        CancelWatch { wakeup: Arc::clone(self), job, signal }
    }

    /// The jobs whose attempts run in this process now.
    pub fn running_jobs(&self) -> Vec<JobId> {
        lock(&self.running).keys().copied().collect()
    }
}

impl JobWakeup for NotifyWakeup {
    fn job_enqueued(&self) {
        self.notify.notify_waiters();
    }

    fn cancel_requested(&self, job: JobId) {
        if let Some(signal) = lock(&self.running).get(&job) {
            // Kept as a permit if the attempt is not waiting right now.
            signal.notify_one();
        }
    }
}

/// One running attempt's registration for cancel signals; dropping it
/// ends the registration.
#[derive(Debug)]
pub struct CancelWatch {
    wakeup: Arc<NotifyWakeup>,
    job: JobId,
    signal: Arc<Notify>,
}

impl CancelWatch {
    /// Completes once a cancel of the job was signalled (at once if one
    /// came since the registration).
    pub async fn requested(&self) {
        self.signal.notified().await;
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        let mut running = lock(&self.wakeup.running);
        // Only our own registration (a later attempt of the job may have
        // replaced it).
        if running.get(&self.job).is_some_and(|signal| Arc::ptr_eq(signal, &self.signal)) {
            running.remove(&self.job);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_signal_reaches_only_the_registered_attempt_and_is_kept_until_it_looks() {
        let wakeup = Arc::new(NotifyWakeup::new());
        let (a, b) = (JobId(uuid::Uuid::now_v7()), JobId(uuid::Uuid::now_v7()));
        // Before registration: nobody to tell (the cancel poll covers it).
        wakeup.cancel_requested(a);
        let watch_a = wakeup.watch_cancel(a);
        let watch_b = wakeup.watch_cancel(b);
        let mut running = wakeup.running_jobs();
        running.sort();
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(running, expected);

        wakeup.cancel_requested(a);
        // Kept as a permit: completes although nobody waited when it came.
        watch_a.requested().await;
        let b_signalled = tokio::select! {
            biased;
            () = watch_b.requested() => true,
            () = std::future::ready(()) => false,
        };
        assert!(!b_signalled, "b was not asked to stop");
        drop(watch_a);
        assert_eq!(wakeup.running_jobs(), vec![b]);
    }
}
