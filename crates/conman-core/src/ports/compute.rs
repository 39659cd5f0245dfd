//! The compute port: where the core runs CPU-heavy work (parsing and
//! diffing user content) so that it never holds an async worker thread.
//!
//! Invariants: [`offload`] runs the closure exactly once, on the pool, and
//! hands back its result; a panic inside it becomes `Error::Internal`, never
//! a crashed request task. The default, [`InlineCompute`], runs the closure
//! on the calling thread — right for embedders without an async runtime and
//! for unit tests; the server plugs in a pool of blocking threads.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::Error;

/// A piece of CPU-bound work, boxed so the port stays object-safe.
pub type ComputeJob = Box<dyn FnOnce() + Send + 'static>;

/// Runs CPU-bound work away from the async threads.
#[async_trait]
pub trait Compute: Send + Sync {
    /// Runs `job` to completion; `Err` only when it could not run or panicked.
    async fn run(&self, job: ComputeJob) -> Result<(), Error>;
}

/// Runs every job on the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct InlineCompute;

#[async_trait]
impl Compute for InlineCompute {
    async fn run(&self, job: ComputeJob) -> Result<(), Error> {
        job();
        Ok(())
    }
}

/// Runs `work` on `compute` and returns what it returned.
pub async fn offload<T, F>(compute: &dyn Compute, work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let filled = Arc::clone(&slot);
    compute
        .run(Box::new(move || {
            let value = work();
            *filled.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
        }))
        .await?;
    let value = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    value.ok_or_else(|| Error::internal("the compute pool returned without running the work"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool that says it ran the job but did not.
    struct Liar;

    #[async_trait]
    impl Compute for Liar {
        async fn run(&self, _job: ComputeJob) -> Result<(), Error> {
            Ok(())
        }
    }

    #[test]
    fn offload_hands_back_the_result_and_notices_a_job_that_never_ran() {
        let answer = futures_util::FutureExt::now_or_never(offload(&InlineCompute, || 6 * 7)).unwrap();
        assert_eq!(answer, Ok(42));
        let lied = futures_util::FutureExt::now_or_never(offload(&Liar, || 1)).unwrap();
        assert!(matches!(lied, Err(Error::Internal(_))), "{lied:?}");
    }
}
