//! [`BlockingCompute`]: the core's compute port on tokio's blocking pool,
//! so parsing and diffing user content never holds an async worker thread
//! (a request per core for a large diff would otherwise stall every other
//! request, `/api/health` included).
//!
//! Invariant: a panic in the work is answered as `Error::Internal` to the
//! one request that asked for it; the server goes on.

use async_trait::async_trait;
use conman_core::ports::compute::{Compute, ComputeJob};
use conman_core::Error;

/// Runs the core's CPU-bound work with `tokio::task::spawn_blocking`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockingCompute;

#[async_trait]
impl Compute for BlockingCompute {
    async fn run(&self, job: ComputeJob) -> Result<(), Error> {
        tokio::task::spawn_blocking(job).await.map_err(|e| Error::internal(format!("compute job failed: {e}")))
    }
}
