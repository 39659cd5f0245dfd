//! [`JobLog`]: the [`LogSink`] of one job attempt. Lines are buffered and
//! written to the store in batches through `Conman::append_job_log`, so a
//! command printing 10 MiB costs a few hundred store commits, not one per
//! line, while a follower still sees output within about 100 ms.
//!
//! Invariants:
//! - lines reach the store in the order they were received: batches are
//!   taken from one queue and appended one at a time under a lock;
//! - memory is bounded: a producer whose line fills the buffer waits for
//!   the flush (back-pressure on the command's pipe);
//! - [`JobLog::finish`] writes everything still buffered; a store failure
//!   loses those lines (logged), never the job. [`JobLog::into_tail`] hands
//!   them to the caller instead, who writes them with the job's end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use conman_core::domain::job::{LogStream, NewLogLine};
use conman_core::ids::JobId;
use conman_core::ports::runner::LogSink;
use conman_core::services::Conman;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Buffered lines that trigger a flush.
const FLUSH_LINES: usize = 256;
/// Buffered bytes that trigger a flush.
const FLUSH_BYTES: usize = 64 * 1024;
/// Longest time a line waits in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The batching log of one job attempt. Create with [`JobLog::start`], end
/// with [`JobLog::finish`].
pub struct JobLog {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    ticker: Option<JoinHandle<()>>,
}

struct Shared {
    conman: Arc<Conman>,
    job: JobId,
    pending: Mutex<Pending>,
    /// Held while one batch is taken and appended (keeps batches in order).
    turn: tokio::sync::Mutex<()>,
    appends: AtomicU64,
}

#[derive(Default)]
struct Pending {
    lines: Vec<NewLogLine>,
    bytes: usize,
}

impl JobLog {
    /// A log for `job`, flushed in the background every ~100 ms (the first
    /// time ~100 ms after the start).
    pub fn start(conman: Arc<Conman>, job: JobId) -> JobLog {
        let shared = Arc::new(Shared {
            conman,
            job,
            pending: Mutex::new(Pending::default()),
            turn: tokio::sync::Mutex::new(()),
            appends: AtomicU64::new(0),
        });
        let (stop, mut stopped) = watch::channel(false);
        let ticking = Arc::clone(&shared);
        let ticker = tokio::spawn(async move {
            // The first flush comes one period in: the attempt's opening
            // line is already stored (the claim wrote it), and a job that
            // ends sooner writes its lines with its end, in one commit.
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + FLUSH_EVERY, FLUSH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => ticking.flush().await,
                    () = super::stop_requested(&mut stopped) => return,
                }
            }
        });
        JobLog { shared, stop, ticker: Some(ticker) }
    }

    /// Stops the background flushing and writes what is still buffered.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.await;
        }
        self.shared.flush().await;
    }

    /// Stops the background flushing and answers the lines still buffered
    /// (after any append in flight), for the caller to write with the job's
    /// end in one unit (`Conman::complete_job_with_log`).
    pub async fn into_tail(mut self) -> Vec<NewLogLine> {
        let _ = self.stop.send(true);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.await;
        }
        let _turn = self.shared.turn.lock().await;
        std::mem::take(&mut *lock(&self.shared.pending)).lines
    }

    /// How many store appends this log has made so far.
    pub fn appends(&self) -> u64 {
        self.shared.appends.load(Ordering::Relaxed)
    }
}

impl Drop for JobLog {
    fn drop(&mut self) {
        // Dropped without `finish` (its task was cancelled): stop the ticker.
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}

#[async_trait]
impl LogSink for JobLog {
    async fn line(&self, stream: LogStream, text: String) {
        let at = self.shared.conman.ports().clock.now();
        let full = {
            let mut pending = lock(&self.shared.pending);
            pending.bytes += text.len();
            pending.lines.push(NewLogLine { at, stream, text });
            pending.lines.len() >= FLUSH_LINES || pending.bytes >= FLUSH_BYTES
        };
        if full {
            self.shared.flush().await;
        }
    }
}

impl Shared {
    /// Appends everything buffered as one batch.
    async fn flush(&self) {
        let _turn = self.turn.lock().await;
        let lines = std::mem::take(&mut *lock(&self.pending)).lines;
        if lines.is_empty() {
            return;
        }
        let count = lines.len();
        self.appends.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.conman.append_job_log(self.job, lines).await {
            tracing::warn!(job = %self.job, lines = count, error = ?e, "could not store job log lines");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
