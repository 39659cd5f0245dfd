//! Jobs, leases and bounded logs (mirrors the SQL stores' `jobs`).

use async_trait::async_trait;

use super::{page, reference, unique, ReferenceStore, State};
use crate::domain::job::{Job, JobLogLine, JobState, JobType, LogAppend};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, JobId};
use crate::ports::store::{
    ConflictReason, JobClaim, JobFilter, JobFinish, JobLogPage, JobMutation, JobStore, Page, PageRequest, Record,
};

/// A job and its log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobRow {
    pub(crate) job: Job,
    /// Stored lines with their byte sizes, oldest first.
    pub(crate) log: Vec<JobLogLine>,
    /// The last line number handed out.
    pub(crate) log_seq: i64,
    /// Older lines were dropped.
    pub(crate) log_truncated: bool,
}

/// The jobs slice's collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Jobs {
    pub(crate) jobs: Vec<JobRow>,
}

impl Jobs {
    fn row(&mut self, id: JobId) -> Result<&mut JobRow, Error> {
        self.jobs.iter_mut().find(|r| r.job.id == id).ok_or(Error::NotFound(JobId::KIND))
    }
}

#[async_trait]
impl JobStore for ReferenceStore {
    async fn job(&self, app_id: AppId, id: JobId) -> Result<Option<Job>, Error> {
        Ok(self.lock().jobs.jobs.iter().find(|r| r.job.id == id && r.job.app_id == app_id).map(|r| r.job.clone()))
    }

    async fn list_jobs(&self, app_id: AppId, filter: &JobFilter, request: PageRequest) -> Result<Page<Job>, Error> {
        let mut found: Vec<Job> = self
            .lock()
            .jobs
            .jobs
            .iter()
            .map(|r| &r.job)
            .filter(|j| j.app_id == app_id)
            .filter(|j| filter.job_type.is_none_or(|t| j.job_type == t))
            .filter(|j| filter.state.is_none_or(|s| j.state == s))
            .cloned()
            .collect();
        found.sort_by_key(|x| std::cmp::Reverse((x.created_at, x.id)));
        Ok(page(found, request))
    }

    async fn claim_job(&self, claim: &JobClaim) -> Result<Option<Job>, Error> {
        let mut state = self.lock();
        let runnable = |j: &Job| {
            let due = match j.state {
                JobState::Queued => j.run_after <= claim.now,
                JobState::Running => j.lease_expires_at.is_some_and(|l| l < claim.now),
                _ => false,
            };
            due && claim.types.as_ref().is_none_or(|types| types.contains(&j.job_type))
        };
        let Some(row) = state
            .jobs
            .jobs
            .iter_mut()
            .filter(|r| runnable(&r.job))
            .min_by(|a, b| (a.job.run_after, a.job.id).cmp(&(b.job.run_after, b.job.id)))
        else {
            return Ok(None);
        };
        let job = &mut row.job;
        job.state = JobState::Running;
        job.lease_owner = Some(claim.worker.clone());
        job.lease_expires_at = Some(claim.lease_until);
        job.attempts += 1;
        job.started_at.get_or_insert(claim.now);
        Ok(Some(job.clone()))
    }

    async fn renew_job_lease(&self, id: JobId, worker: &str, until: Timestamp) -> Result<Option<bool>, Error> {
        let mut state = self.lock();
        let held = |r: &&mut JobRow| {
            r.job.id == id && r.job.state == JobState::Running && r.job.lease_owner.as_deref() == Some(worker)
        };
        Ok(state.jobs.jobs.iter_mut().find(held).map(|r| {
            r.job.lease_expires_at = Some(until);
            r.job.cancel_requested
        }))
    }

    async fn jobs_to_cancel(&self, ids: &[JobId]) -> Result<Vec<JobId>, Error> {
        let state = self.lock();
        let flagged = |id: &&JobId| {
            state
                .jobs
                .jobs
                .iter()
                .any(|r| r.job.id == **id && r.job.state == JobState::Running && r.job.cancel_requested)
        };
        Ok(ids.iter().filter(flagged).copied().collect())
    }

    async fn append_job_log(&self, id: JobId, append: &LogAppend) -> Result<(), Error> {
        let mut state = self.lock();
        append_log(state.jobs.row(id)?, append);
        Ok(())
    }

    async fn job_log(&self, id: JobId, after: i64, limit: u32) -> Result<JobLogPage, Error> {
        let page = {
            let mut state = self.lock();
            let row = state.jobs.row(id)?;
            let lines = row.log.iter().filter(|l| l.seq > after).take(limit as usize).cloned().collect();
            JobLogPage { lines, truncated: row.log_truncated }
        };
        #[cfg(test)]
        if let Some(unit) = self.take_after_job_log_read() {
            crate::ports::store::Store::commit(self, unit).await?;
        }
        Ok(page)
    }

    async fn job_counts(&self) -> Result<Vec<(JobType, JobState, u64)>, Error> {
        let state = self.lock();
        let mut counts: Vec<(JobType, JobState, u64)> = Vec::new();
        for j in state.jobs.jobs.iter().map(|r| &r.job) {
            match counts.iter_mut().find(|(t, s, _)| *t == j.job_type && *s == j.state) {
                Some((_, _, n)) => *n += 1,
                None => counts.push((j.job_type, j.state, 1)),
            }
        }
        counts.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
        Ok(counts)
    }
}

/// Carries out `append` as [`LogAppend`] says.
fn append_log(row: &mut JobRow, append: &LogAppend) {
    let first = row.log_seq + append.skipped() as i64 + 1;
    row.log_seq += append.count() as i64;
    for (i, line) in append.lines().iter().enumerate() {
        row.log.push(JobLogLine { seq: first + i as i64, at: line.at, stream: line.stream, text: line.text.clone() });
    }
    row.log_truncated |= append.skipped() > 0;
    let mut total: u64 = row.log.iter().map(|l| l.text.len() as u64).sum();
    while total > append.limit_bytes() && !row.log.is_empty() {
        total -= row.log.remove(0).text.len() as u64;
        row.log_truncated = true;
    }
}

fn insert_job(state: &mut State, j: &Job) -> Result<(), Error> {
    unique(state.jobs.jobs.iter().any(|r| r.job.id == j.id), Record::Job, "id")?;
    reference(state.apps.exists(j.app_id) && j.created_by.is_none_or(|u| state.users.exists(u)))?;
    state.jobs.jobs.push(JobRow { job: j.clone(), log: Vec::new(), log_seq: 0, log_truncated: false });
    Ok(())
}

/// The job if it exists and `holds` (else `conflict` for `reason`).
fn held(state: &mut State, id: JobId, holds: impl Fn(&Job) -> bool, reason: ConflictReason) -> Result<&mut Job, Error> {
    let row = state.jobs.row(id)?;
    if !holds(&row.job) {
        return Err(reason.into());
    }
    Ok(&mut row.job)
}

fn leased_to(worker: &str) -> impl Fn(&Job) -> bool + '_ {
    move |j| j.state == JobState::Running && j.lease_owner.as_deref() == Some(worker)
}

fn finish_job(state: &mut State, f: &JobFinish) -> Result<(), Error> {
    if f.state == JobState::Running {
        return Err(Error::internal("FinishJob cannot leave a job running"));
    }
    let job = held(state, f.id, leased_to(&f.worker), ConflictReason::LeaseLost)?;
    // A requested cancel wins: only `canceled` ends the attempt then.
    if job.cancel_requested && f.state != JobState::Canceled {
        return Err(ConflictReason::CancelRequested.into());
    }
    job.state = f.state;
    job.result = f.result.clone();
    job.error = f.error.clone();
    job.finished_at = if f.state == JobState::Queued { None } else { f.finished_at };
    if let Some(run_after) = f.run_after {
        job.run_after = run_after;
    }
    job.lease_owner = None;
    job.lease_expires_at = None;
    Ok(())
}

/// Applies one job mutation.
pub(crate) fn apply(state: &mut State, mutation: &JobMutation) -> Result<(), Error> {
    match mutation {
        JobMutation::InsertJob(j) => insert_job(state, j),
        JobMutation::FinishJob(f) => finish_job(state, f),
        JobMutation::AppendJobLog { id, append } => {
            append_log(state.jobs.row(*id)?, append);
            Ok(())
        }
        JobMutation::CancelQueuedJob { id, at } => {
            let job = held(state, *id, |j| j.state == JobState::Queued, ConflictReason::NotQueued)?;
            job.state = JobState::Canceled;
            job.finished_at = Some(*at);
            Ok(())
        }
        JobMutation::RequestJobCancel { id } => {
            let job = held(state, *id, |j| j.state == JobState::Running, ConflictReason::NotRunning)?;
            job.cancel_requested = true;
            Ok(())
        }
        JobMutation::ReleaseJob { id, worker } => {
            let job = held(state, *id, leased_to(worker), ConflictReason::LeaseLost)?;
            job.state = JobState::Queued;
            job.lease_owner = None;
            job.lease_expires_at = None;
            job.attempts = job.attempts.saturating_sub(1);
            Ok(())
        }
    }
}
