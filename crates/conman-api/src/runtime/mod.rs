//! The job runtime: what executes the jobs the core decides about.
//!
//! The core (`conman_core::services::jobs`, `gates`) owns every decision —
//! what to claim, retries, backoff, what a gate's exit code means. This
//! module owns only time, processes and concurrency:
//!
//! - [`command`]: [`ProcessRunner`], the `CommandRunner` port on real
//!   processes (exported tree, clean environment, own process group, timeout
//!   and cancellation kill the whole group);
//! - [`sandbox`]: [`GateSandbox`], how gate commands are isolated from the
//!   installation (`CONMAN_GATE_SANDBOX`, resolved once at start);
//! - [`log_sink`]: [`JobLog`], a `LogSink` that batches lines into few store
//!   commits;
//! - [`wakeup`]: [`NotifyWakeup`], the in-process `JobWakeup` (wakes idle
//!   slots on enqueue, stops a running attempt whose cancel was requested);
//! - [`worker`]: [`run_workers`], the worker slots (claim, lease renewal,
//!   timeout, cancel, graceful shutdown) and the process's cancel poll;
//! - [`metrics`]: the process-wide Prometheus registry and its text rendering.
//!
//! Started by `conman-server` next to the HTTP server and by `conman worker`.
//! Unix only: process groups and signals.

pub mod command;
pub mod log_sink;
pub mod metrics;
pub mod sandbox;
pub mod wakeup;
pub mod worker;

pub use command::ProcessRunner;
pub use log_sink::JobLog;
pub use sandbox::{GateSandbox, SandboxMode};
pub use wakeup::NotifyWakeup;
pub use worker::{run_workers, WorkerOptions};

/// Resolves once `stop` holds `true` (or its sender is gone). Holds no
/// watch guard across an await, so it can live in spawned tasks.
async fn stop_requested(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
