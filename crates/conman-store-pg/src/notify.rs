//! Job wake-ups across processes with `LISTEN/NOTIFY`: a unit of work that
//! makes a job runnable notifies the store's job channel (empty payload),
//! a unit that requests a running job's cancel notifies it with
//! `cancel:<job id>`, and a [`JobListener`] calls back with the
//! [`JobNotice`] in every process listening on it, so idle workers anywhere
//! claim at once instead of at their next poll, and the worker running a
//! canceled job kills it at once instead of at its next cancel poll.
//!
//! Invariant: the notification is sent inside the unit's own transaction
//! (`pg_notify`), so Postgres delivers it exactly when the unit commits and
//! never for a unit that rolled back; a worker woken by it therefore always
//! finds the job committed. Notifications are only a hint — a listener that
//! is not connected misses them, which is why workers keep polling and why
//! the listener calls back once after every (re)connection.
//!
//! Channels: `conman_jobs` for the default schema, `conman_jobs_<schema>`
//! for a store pinned to a schema (a hash of the schema when that would
//! exceed Postgres's 63-byte identifiers), so installations sharing one
//! database — and parallel tests — never wake each other.

use std::sync::Arc;
use std::time::Duration;

use conman_core::ids::JobId;
use conman_core::Error;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Executor as _, PgPool};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{literal, PgStore};

/// The job channel of the default schema, and the prefix of the others.
const CHANNEL: &str = "conman_jobs";
/// Postgres truncates identifiers (channel names included) past 63 bytes.
const MAX_IDENTIFIER: usize = 63;
/// First wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a quiet listener checks its connection is still alive.
const PING_EVERY: Duration = Duration::from_secs(30);
/// How long that check may take before the connection counts as lost.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The job channel of a store on `schema`.
pub(crate) fn job_channel(schema: Option<&str>) -> String {
    match schema {
        None => CHANNEL.to_owned(),
        Some(schema) if CHANNEL.len() + 1 + schema.len() <= MAX_IDENTIFIER => format!("{CHANNEL}_{schema}"),
        Some(schema) => format!("{CHANNEL}_{:016x}", fnv1a(schema.as_bytes())),
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `std`'s hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The payload of "a job became runnable".
pub(crate) const RUNNABLE: &str = "";
/// The payload prefix of "a cancel of this running job was requested".
const CANCEL_PREFIX: &str = "cancel:";

/// The payload telling the worker running `job` to stop it.
pub(crate) fn cancel_payload(job: JobId) -> String {
    format!("{CANCEL_PREFIX}{}", job.0.hyphenated())
}

/// What a notification on the job channel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobNotice {
    /// A job became runnable — or notifications may have been missed (sent
    /// after every (re)connection): idle workers should claim.
    Runnable,
    /// A cancel of this running job was committed: its worker stops it.
    CancelRequested(JobId),
}

impl JobNotice {
    /// The notice a payload carries; one this build does not know is read
    /// as [`JobNotice::Runnable`] (a spurious claim costs nothing).
    fn parse(payload: &str) -> JobNotice {
        match payload.strip_prefix(CANCEL_PREFIX).map(uuid::Uuid::parse_str) {
            Some(Ok(id)) => JobNotice::CancelRequested(JobId(id)),
            _ => JobNotice::Runnable,
        }
    }
}

/// Appends to `out` the statement that queues a notification with
/// `payload` on `channel`, delivered when the transaction it runs in
/// commits (it goes in a unit's last message, before the `COMMIT`).
pub(crate) fn notify_sql(out: &mut String, channel: &str, payload: &str) -> Result<(), Error> {
    out.push_str("SELECT pg_notify(");
    literal::text(out, channel)?;
    out.push_str(", ");
    literal::text(out, payload)?;
    out.push_str("); ");
    Ok(())
}

/// Listens for job notifications on a connection of its own, in a task of
/// the Tokio runtime it was started on. Dropping it stops listening.
///
/// Its connection shows in `pg_stat_activity` as `conman-listener` (or
/// `conman/<schema>/listener`); if it drops, the listener logs it and
/// reconnects with backoff (100 ms doubling to 30 s) while workers poll.
#[derive(Debug)]
pub struct JobListener {
    task: JoinHandle<()>,
}

impl Drop for JobListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PgStore {
    /// The channel this store's job notifications use.
    pub fn job_channel(&self) -> &str {
        &self.job_channel
    }

    /// Starts a [`JobListener`] calling `on_job` whenever a unit of work
    /// that made a job runnable commits — in this process or any other on
    /// the same database and schema — and once after every (re)connection,
    /// for what may have been missed meanwhile. `on_job` runs on the
    /// listener's task, so it should only signal (e.g. wake the workers).
    /// Must be called within a Tokio runtime; it does not wait for the
    /// connection.
    pub fn listen_for_jobs(&self, on_job: impl Fn() + Send + Sync + 'static) -> JobListener {
        self.listen_for_job_notices(move |notice| {
            if notice == JobNotice::Runnable {
                on_job();
            }
        })
    }

    /// Like [`PgStore::listen_for_jobs`], calling `on_notice` with every
    /// [`JobNotice`]: [`JobNotice::Runnable`] where `listen_for_jobs` calls
    /// back, and [`JobNotice::CancelRequested`] whenever a unit requesting
    /// a running job's cancel commits, in any process.
    pub fn listen_for_job_notices(&self, on_notice: impl Fn(JobNotice) + Send + Sync + 'static) -> JobListener {
        let name = match &self.schema {
            Some(schema) => format!("conman/{schema}/listener"),
            None => "conman-listener".to_owned(),
        };
        let options = (*self.pool.connect_options()).clone().application_name(&name);
        // A pool of one: `PgListener` takes its connection from a pool.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(PING_TIMEOUT)
            .connect_lazy_with(options);
        let channel: Arc<str> = self.job_channel.clone();
        JobListener { task: tokio::spawn(listen(pool, channel, on_notice)) }
    }
}

/// Connects, listens and calls back until aborted; reconnects with backoff.
async fn listen(pool: PgPool, channel: Arc<str>, on_notice: impl Fn(JobNotice)) {
    let mut backoff = FIRST_BACKOFF;
    let mut reconnecting = false;
    loop {
        match subscribe(&pool, &channel).await {
            Ok(mut listener) => {
                if reconnecting {
                    tracing::info!(%channel, "listening for job notifications again");
                } else {
                    tracing::info!(%channel, "listening for job notifications");
                }
                let connected = Instant::now();
                on_notice(JobNotice::Runnable);
                let lost = receive(&mut listener, &on_notice).await;
                drop(listener);
                // A connection that held a while earns a quick reconnect.
                if connected.elapsed() > MAX_BACKOFF {
                    backoff = FIRST_BACKOFF;
                }
                tracing::warn!(
                    %channel, reason = %lost, retry_in_ms = backoff.as_millis() as u64,
                    "lost the job notification connection; reconnecting (workers poll meanwhile)"
                );
            }
            Err(e) => tracing::warn!(
                %channel, error = %e, retry_in_ms = backoff.as_millis() as u64,
                "cannot listen for job notifications; retrying (workers poll meanwhile)"
            ),
        }
        reconnecting = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A listener connected and subscribed to `channel`.
async fn subscribe(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection ends `receive`; reconnecting is ours, with backoff.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

/// Calls back per notification until the connection is lost; says why.
async fn receive(listener: &mut PgListener, on_notice: &impl Fn(JobNotice)) -> String {
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => on_notice(JobNotice::parse(notification.payload())),
                Ok(None) => return "the connection closed".to_owned(),
                Err(e) => return e.to_string(),
            },
            // `try_recv` is cancel-safe: a quiet connection is pinged, so one
            // that died silently is noticed within a minute.
            () = tokio::time::sleep(PING_EVERY) => {
                match tokio::time::timeout(PING_TIMEOUT, listener.execute("SELECT 1")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return format!("no answer to a ping within {} s", PING_TIMEOUT.as_secs()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_per_schema_and_valid_identifiers() {
        assert_eq!(job_channel(None), "conman_jobs");
        assert_eq!(job_channel(Some("tenant_a")), "conman_jobs_tenant_a");
        let long = "s".repeat(63);
        let hashed = job_channel(Some(&long));
        assert!(hashed.len() <= MAX_IDENTIFIER, "{hashed}");
        assert_ne!(hashed, job_channel(Some(&"s".repeat(62))));
        assert_eq!(hashed, job_channel(Some(&long)), "stable");
    }

    #[test]
    fn a_cancel_payload_reads_back_as_its_notice() {
        let job = JobId(uuid::Uuid::now_v7());
        assert_eq!(JobNotice::parse(&cancel_payload(job)), JobNotice::CancelRequested(job));
        assert_eq!(JobNotice::parse(RUNNABLE), JobNotice::Runnable);
        assert_eq!(JobNotice::parse("cancel:not-a-uuid"), JobNotice::Runnable);
    }
}
