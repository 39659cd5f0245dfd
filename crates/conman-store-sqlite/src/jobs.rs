//! Jobs: the `JobStore` reads, the claim and lease renewal, the bounded
//! job logs, and the job mutations of a unit of work.
//!
//! Invariant: a job changes hands only inside a `BEGIN IMMEDIATE`
//! transaction, so two claimers — in
//! this process or another — never get the same job; every change to a
//! running job is a compare-and-set on its state and lease owner, so a
//! worker that lost its lease changes nothing (and the unit carrying the
//! change rolls back whole). A job's stored log never
//! exceeds the bound it was last appended with: `log_bytes` on the job row
//! tracks the stored UTF-8 size, and the oldest lines go first. Which lines of
//! a batch go in is the core's [`LogAppend`] plan; no text is composed here.

use async_trait::async_trait;
use conman_core::domain::job::{Job, JobLogLine, JobState, JobType, LogAppend};
use conman_core::domain::Timestamp;
use conman_core::ids::{AppId, JobId};
use conman_core::ports::store::{
    ConflictReason, JobClaim, JobFilter, JobFinish, JobLogPage, JobMutation, JobStore, Page, PageRequest,
};
use conman_core::Error;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension as _};

use crate::codec::{self, all, exists, flag, id, json, one, opt_id, opt_ts, ts, Cols, Db as _};
use crate::SqliteStore;

macro_rules! job_columns {
    () => {
        "id, app_id, job_type, state, entity_type, entity_id, payload, attempts, max_attempts, run_after,
         lease_owner, lease_expires_at, timeout_secs, cancel_requested, result, error, created_by, created_at,
         started_at, finished_at"
    };
}

/// The oldest runnable job: the best queued one and the best one whose
/// lease expired, each found by a seek on `jobs_runnable`, then the older
/// of the two. `?1` is now, `?4` a JSON array of types or NULL.
macro_rules! runnable_job {
    () => {
        "SELECT id FROM (
            SELECT * FROM (
                SELECT id, run_after FROM jobs
                 WHERE state = 'queued' AND run_after <= ?1
                   AND (?4 IS NULL OR job_type IN (SELECT value FROM json_each(?4)))
                 ORDER BY run_after, id LIMIT 1)
            UNION ALL
            SELECT * FROM (
                SELECT id, run_after FROM jobs
                 WHERE state = 'running' AND lease_expires_at < ?1
                   AND (?4 IS NULL OR job_type IN (SELECT value FROM json_each(?4)))
                 ORDER BY run_after, id LIMIT 1)
         ) ORDER BY run_after, id LIMIT 1"
    };
}

/// Leases the oldest runnable job to `?2` until `?3` and answers it.
macro_rules! claim_job {
    () => {
        concat!(
            "UPDATE jobs SET state = 'running', lease_owner = ?2, lease_expires_at = ?3,
                attempts = attempts + 1, started_at = COALESCE(started_at, ?1)
              WHERE id = (",
            runnable_job!(),
            ") RETURNING ",
            job_columns!()
        )
    };
}

/// A column holding a job type's wire name.
fn job_type(c: &Cols<'_, '_>, i: usize) -> Result<JobType, Error> {
    JobType::parse(&c.text(i)?).map_err(|e| Error::internal(format!("stored job type: {e}")))
}

/// A column holding a job state's wire name.
fn job_state(c: &Cols<'_, '_>, i: usize) -> Result<JobState, Error> {
    JobState::parse(&c.text(i)?).map_err(|e| Error::internal(format!("stored job state: {e}")))
}

fn job(c: &Cols<'_, '_>) -> Result<Job, Error> {
    Ok(Job {
        id: c.id(0)?,
        app_id: c.id(1)?,
        job_type: job_type(c, 2)?,
        state: job_state(c, 3)?,
        entity_type: c.opt_text(4)?,
        entity_id: c.opt_text(5)?,
        payload: c.json(6)?,
        attempts: c.count(7)?,
        max_attempts: c.count(8)?,
        run_after: c.ts(9)?,
        lease_owner: c.opt_text(10)?,
        lease_expires_at: c.opt_ts(11)?,
        timeout_secs: c.count(12)?,
        cancel_requested: c.flag(13)?,
        result: c.opt_json(14)?,
        error: c.opt_text(15)?,
        created_by: c.opt_id(16)?,
        created_at: c.ts(17)?,
        started_at: c.opt_ts(18)?,
        finished_at: c.opt_ts(19)?,
    })
}

fn log_line(c: &Cols<'_, '_>) -> Result<JobLogLine, Error> {
    Ok(JobLogLine { seq: c.int(0)?, at: c.ts(1)?, stream: c.named(2)?, text: c.text(3)? })
}

/// The `WHERE` clause of a job listing and its parameters.
fn jobs_where(app_id: AppId, filter: &JobFilter) -> (String, Vec<Value>) {
    let mut clause = String::from(" WHERE app_id = ?");
    let mut params = vec![Value::Text(id(app_id.0))];
    if let Some(job_type) = filter.job_type {
        clause.push_str(" AND job_type = ?");
        params.push(Value::Text(job_type.as_str().to_owned()));
    }
    if let Some(state) = filter.state {
        clause.push_str(" AND state = ?");
        params.push(Value::Text(state.as_str().to_owned()));
    }
    (clause, params)
}

/// An `i64` column value of an unsigned count.
fn int(n: u64) -> Result<i64, Error> {
    i64::try_from(n).map_err(|_| Error::internal(format!("{n} does not fit a SQLite integer")))
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn job(&self, app_id: AppId, job_id: JobId) -> Result<Option<Job>, Error> {
        self.read(move |conn| {
            one(
                conn,
                concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1 AND app_id = ?2"),
                [id(job_id.0), id(app_id.0)],
                job,
            )
        })
        .await
    }

    async fn list_jobs(&self, app_id: AppId, filter: &JobFilter, page: PageRequest) -> Result<Page<Job>, Error> {
        let (clause, params) = jobs_where(app_id, filter);
        self.read(move |conn| {
            let count = format!("SELECT COUNT(*) FROM jobs{clause}");
            let list = format!(
                concat!("SELECT ", job_columns!(), " FROM jobs{} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"),
                clause
            );
            codec::page(conn, &count, &list, params, page, job)
        })
        .await
    }

    async fn claim_job(&self, claim: &JobClaim) -> Result<Option<Job>, Error> {
        let types = claim
            .types
            .as_ref()
            .map(|types| json(&types.iter().map(|t| t.as_str()).collect::<Vec<_>>()))
            .transpose()?;
        let claim = claim.clone();
        self.transaction(move |tx| {
            let (now, until) = (ts(&claim.now), ts(&claim.lease_until));
            one(tx, claim_job!(), params![now, claim.worker, until, types], job)
        })
        .await
    }

    async fn renew_job_lease(&self, job_id: JobId, worker: &str, until: Timestamp) -> Result<Option<bool>, Error> {
        let worker = worker.to_owned();
        self.transaction(move |tx| {
            tx.prepare_cached(
                "UPDATE jobs SET lease_expires_at = ?3 WHERE id = ?1 AND state = 'running' AND lease_owner = ?2
                 RETURNING cancel_requested",
            )
            .db()?
            .query_row(params![id(job_id.0), worker, ts(&until)], |r| r.get::<_, i64>(0))
            .optional()
            .db()
            .map(|flag| flag.map(|f| f != 0))
        })
        .await
    }

    async fn jobs_to_cancel(&self, ids: &[JobId]) -> Result<Vec<JobId>, Error> {
        let ids = json(&ids.iter().map(|j| id(j.0)).collect::<Vec<_>>())?;
        self.read(move |conn| {
            all(
                conn,
                "SELECT id FROM jobs WHERE state = 'running' AND cancel_requested = 1
                   AND id IN (SELECT value FROM json_each(?1))",
                [ids],
                |c| c.id(0),
            )
        })
        .await
    }

    async fn append_job_log(&self, job_id: JobId, append: &LogAppend) -> Result<(), Error> {
        let append = append.clone();
        self.transaction(move |tx| append_log(tx, job_id, &append)).await
    }

    async fn job_log(&self, job_id: JobId, after: i64, limit: u32) -> Result<JobLogPage, Error> {
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction().db()?;
            let truncated: bool =
                one(&snapshot, "SELECT log_truncated FROM jobs WHERE id = ?1", [id(job_id.0)], |c| c.flag(0))?
                    .ok_or(Error::NotFound(JobId::KIND))?;
            let lines = all(
                &snapshot,
                "SELECT seq, at, stream, text FROM job_logs WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                params![id(job_id.0), after, limit],
                log_line,
            )?;
            snapshot.finish().db()?;
            Ok(JobLogPage { lines, truncated })
        })
        .await
    }

    async fn job_counts(&self) -> Result<Vec<(JobType, JobState, u64)>, Error> {
        self.read(move |conn| {
            all(
                conn,
                "SELECT job_type, state, COUNT(*) FROM jobs GROUP BY job_type, state ORDER BY job_type, state",
                [],
                |c| Ok((job_type(c, 0)?, job_state(c, 1)?, c.count(2)?)),
            )
        })
        .await
    }
}

/// Carries out `append` as [`LogAppend`] says: its lines numbered after the
/// job's last line and its skipped ones, then the oldest stored lines
/// dropped while the log exceeds the bound. One append costs in proportion
/// to its batch, not to the log.
pub(crate) fn append_log(conn: &Connection, job_id: JobId, append: &LogAppend) -> Result<(), Error> {
    let job = id(job_id.0);
    let (last_seq, stored, truncated): (i64, i64, bool) =
        one(conn, "SELECT log_seq, log_bytes, log_truncated FROM jobs WHERE id = ?1", [&job], |c| {
            Ok((c.int(0)?, c.int(1)?, c.flag(2)?))
        })?
        .ok_or(Error::NotFound(JobId::KIND))?;
    let limit = i64::try_from(append.limit_bytes()).unwrap_or(i64::MAX);
    let first = last_seq + int(append.skipped() as u64)? + 1;
    let mut insert = conn
        .prepare_cached("INSERT INTO job_logs (job_id, seq, at, stream, bytes, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .db()?;
    for (i, line) in append.lines().iter().enumerate() {
        let (seq, size) = (first + int(i as u64)?, int(line.text.len() as u64)?);
        insert.execute(params![&job, seq, ts(&line.at), line.stream.as_str(), size, line.text]).db()?;
    }

    // Then the stored lines, oldest first, until the log fits.
    let mut total = stored + int(append.bytes())?;
    let mut dropped_any = append.skipped() > 0;
    if total > limit {
        let mut oldest = conn.prepare_cached("SELECT seq, bytes FROM job_logs WHERE job_id = ?1 ORDER BY seq").db()?;
        let mut rows = oldest.query([&job]).db()?;
        let mut cut = None;
        while total > limit {
            let Some(row) = rows.next().db()? else { break };
            let (seq, size): (i64, i64) = (row.get(0).db()?, row.get(1).db()?);
            total -= size;
            cut = Some(seq);
        }
        drop(rows);
        if let Some(cut) = cut {
            conn.prepare_cached("DELETE FROM job_logs WHERE job_id = ?1 AND seq <= ?2")
                .db()?
                .execute(params![&job, cut])
                .db()?;
            dropped_any = true;
        }
    }
    conn.prepare_cached("UPDATE jobs SET log_seq = ?2, log_bytes = ?3, log_truncated = ?4 WHERE id = ?1")
        .db()?
        .execute(params![&job, last_seq + int(append.count() as u64)?, total, flag(truncated || dropped_any)])
        .db()?;
    Ok(())
}

/// `InsertJob`.
pub(crate) fn insert_job(conn: &Connection, j: &Job) -> Result<(), Error> {
    conn.prepare_cached(concat!(
        "INSERT INTO jobs (",
        job_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
    ))
    .db()?
    .execute(params![
        id(j.id.0),
        id(j.app_id.0),
        j.job_type.as_str(),
        j.state.as_str(),
        j.entity_type,
        j.entity_id,
        json(&j.payload)?,
        j.attempts,
        j.max_attempts,
        ts(&j.run_after),
        j.lease_owner,
        opt_ts(&j.lease_expires_at),
        int(j.timeout_secs)?,
        flag(j.cancel_requested),
        j.result.as_ref().map(json).transpose()?,
        j.error,
        opt_id(j.created_by.map(|u| u.0)),
        ts(&j.created_at),
        opt_ts(&j.started_at),
        opt_ts(&j.finished_at),
    ])
    .db()?;
    Ok(())
}

/// `FinishJob`: compare-and-set on `running` and the lease owner; clears the
/// lease. A retry (`queued`) moves `run_after` and stays unfinished.
pub(crate) fn finish_job(conn: &Connection, f: &JobFinish) -> Result<(), Error> {
    if f.state == JobState::Running {
        return Err(Error::internal("FinishJob cannot leave a job running"));
    }
    let finished_at = if f.state == JobState::Queued { None } else { opt_ts(&f.finished_at) };
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET state = ?3, result = ?4, error = ?5, finished_at = ?6, run_after = COALESCE(?7, run_after),
                lease_owner = NULL, lease_expires_at = NULL
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND (cancel_requested = 0 OR ?3 = 'canceled')",
        )
        .db()?
        .execute(params![
            id(f.id.0),
            f.worker,
            f.state.as_str(),
            f.result.as_ref().map(json).transpose()?,
            f.error,
            finished_at,
            opt_ts(&f.run_after),
        ])
        .db()?;
    if changed == 0 {
        // Still this worker's, so the cancel flag is what refused it.
        let held =
            "SELECT 1 FROM jobs WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND cancel_requested = 1";
        if exists(conn, held, params![id(f.id.0), f.worker])? {
            return Err(ConflictReason::CancelRequested.into());
        }
    }
    expect_job_cas(conn, changed, f.id, ConflictReason::LeaseLost)
}

/// `CancelQueuedJob`: compare-and-set `queued` → `canceled`.
pub(crate) fn cancel_queued_job(conn: &Connection, job_id: JobId, at: &Timestamp) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE jobs SET state = 'canceled', finished_at = ?2 WHERE id = ?1 AND state = 'queued'")
        .db()?
        .execute(params![id(job_id.0), ts(at)])
        .db()?;
    expect_job_cas(conn, changed, job_id, ConflictReason::NotQueued)
}

/// `RequestJobCancel`: sets the cancel flag of a running job.
pub(crate) fn request_job_cancel(conn: &Connection, job_id: JobId) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND state = 'running'")
        .db()?
        .execute([id(job_id.0)])
        .db()?;
    expect_job_cas(conn, changed, job_id, ConflictReason::NotRunning)
}

/// `ReleaseJob`: back to the queue, the lease cleared and the attempt not
/// counted; only by the lease owner.
pub(crate) fn release_job(conn: &Connection, job_id: JobId, worker: &str) -> Result<(), Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                attempts = MAX(attempts - 1, 0)
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
        )
        .db()?
        .execute(params![id(job_id.0), worker])
        .db()?;
    expect_job_cas(conn, changed, job_id, ConflictReason::LeaseLost)
}

/// One changed row is success; none is `conflict` (for `reason`) when the
/// job exists and `not_found` otherwise.
fn expect_job_cas(conn: &Connection, changed: usize, job_id: JobId, reason: ConflictReason) -> Result<(), Error> {
    match changed {
        1 => Ok(()),
        0 if exists(conn, "SELECT 1 FROM jobs WHERE id = ?1", [id(job_id.0)])? => Err(reason.into()),
        0 => Err(Error::NotFound(JobId::KIND)),
        n => Err(Error::internal(format!("a compare-and-set update of one job changed {n} rows"))),
    }
}

/// Applies one job mutation inside the unit's transaction.
pub(crate) fn apply(conn: &Connection, mutation: &JobMutation) -> Result<(), Error> {
    match mutation {
        JobMutation::InsertJob(j) => insert_job(conn, j),
        JobMutation::FinishJob(f) => finish_job(conn, f),
        JobMutation::AppendJobLog { id, append } => append_log(conn, *id, append),
        JobMutation::CancelQueuedJob { id, at } => cancel_queued_job(conn, *id, at),
        JobMutation::RequestJobCancel { id } => request_job_cancel(conn, *id),
        JobMutation::ReleaseJob { id, worker } => release_job(conn, *id, worker),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `sql` on a fresh database, one line per step.
    fn plan(sql: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("conman.db");
        drop(SqliteStore::open(&path).expect("store opens"));
        let conn = Connection::open(&path).expect("raw connection opens");
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("plan prepares");
        let rows = stmt.query_map(params![None::<String>, "w", None::<String>, None::<String>], |r| r.get(3));
        rows.expect("plan runs").collect::<Result<_, _>>().expect("plan reads")
    }

    /// The claim seeks `jobs_runnable` and never scans the table, so it
    /// stays fast however many finished jobs accumulate.
    #[test]
    fn the_claim_never_scans_the_jobs_table() {
        let plan = plan(claim_job!());
        assert!(plan.iter().all(|step| !step.starts_with("SCAN jobs")), "{plan:#?}");
        assert_eq!(plan.iter().filter(|step| step.contains("USING INDEX jobs_runnable")).count(), 2, "{plan:#?}");
    }
}
