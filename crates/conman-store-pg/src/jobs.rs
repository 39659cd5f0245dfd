//! Jobs: the `JobStore` reads, the claim and lease renewal, the bounded job
//! logs, and the job mutations of a unit of work.
//!
//! Invariant: a job changes hands only through the claim's single
//! `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)`, so two claimers —
//! in this process or another — never get the same job and never wait for
//! each other; every change to a running job is a compare-and-set on its
//! state and lease owner, so a worker that lost its lease changes nothing
//! (and the unit carrying the change rolls back whole). A job's stored log
//! never exceeds the bound it was last appended with: `log_bytes` on the job
//! row tracks the stored UTF-8 size, the oldest lines go first, and appends
//! to one job are serialised by a lock on its row. An append that fits is
//! one statement (lock, numbering, insert and counters together); only one
//! that must drop older lines takes the multi-statement transaction.

use async_trait::async_trait;
use conman_core::domain::job::{Job, JobLogLine, JobState, JobType, LogAppend};
use conman_core::domain::Timestamp;
use conman_core::ids::{AppId, JobId};
use conman_core::ports::store::{
    ConflictReason, JobClaim, JobFilter, JobFinish, JobLogPage, JobMutation, JobStore, Page, PageRequest,
};
use conman_core::Error;
use sqlx::{query, PgConnection};

use crate::codec::{self, all, exists, json, one, opt_ts, ts, Cols, Db as _};
use crate::PgStore;

macro_rules! job_columns {
    () => {
        "id, app_id, job_type, state, entity_type, entity_id, payload::text, attempts, max_attempts, run_after,
         lease_owner, lease_expires_at, timeout_secs, cancel_requested, result::text, error, created_by,
         created_at, started_at, finished_at"
    };
}

/// The claim, with `$types` the filter on job types. `$1` is now, `$2` the
/// worker, `$3` the lease expiry, `$4` the allowed types (unused without a
/// filter). The best queued job and the best job whose lease expired are each
/// found by a seek on `jobs_runnable` and locked (skipping rows another
/// claimer holds), then the older of the two is taken — by a scalar subquery
/// on the primary key, which Postgres plans once and reuses (an `UPDATE ...
/// FROM` the candidates was planned afresh on every call). The log is left
/// alone: the core opens the attempt's log itself.
macro_rules! claim {
    ($types:literal) => {
        concat!(
            "WITH queued AS (
        SELECT id, run_after FROM jobs
         WHERE state = 'queued' AND run_after <= $1",
            $types,
            "
         ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED
     ), expired AS (
        SELECT id, run_after FROM jobs
         WHERE state = 'running' AND lease_expires_at < $1",
            $types,
            "
         ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED
     )
     UPDATE jobs SET state = 'running', lease_owner = $2, lease_expires_at = $3, attempts = attempts + 1,
            started_at = COALESCE(started_at, $1)
      WHERE jobs.id = (SELECT c.id FROM (SELECT * FROM queued UNION ALL SELECT * FROM expired) c
                        ORDER BY c.run_after, c.id LIMIT 1)
      RETURNING ",
            job_columns!()
        )
    };
}

/// [`claim!`] of any job type.
const CLAIM_ANY: &str = claim!("");

/// [`claim!`] of the job types in `$4`. A separate statement rather than a
/// `$4 IS NULL OR ...` filter: that filter made the planner expect a single
/// row and pick a bitmap scan and a sort of every queued job over the
/// ordered index scan that stops at the first one.
const CLAIM_OF_TYPES: &str = claim!(" AND job_type = ANY ($4)");

fn job(c: &Cols<'_>) -> Result<Job, Error> {
    Ok(Job {
        id: c.id(0)?,
        app_id: c.id(1)?,
        job_type: JobType::parse(&c.text(2)?).map_err(|e| Error::internal(format!("column job_type: {e}")))?,
        state: JobState::parse(&c.text(3)?).map_err(|e| Error::internal(format!("column state: {e}")))?,
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

fn log_line(c: &Cols<'_>) -> Result<JobLogLine, Error> {
    Ok(JobLogLine { seq: c.int(0)?, at: c.ts(1)?, stream: c.named(2)?, text: c.text(3)? })
}

/// A `bigint` of an unsigned count.
fn int(n: u64) -> Result<i64, Error> {
    i64::try_from(n).map_err(|_| Error::internal(format!("{n} does not fit a bigint")))
}

#[async_trait]
impl JobStore for PgStore {
    async fn job(&self, app_id: AppId, job_id: JobId) -> Result<Option<Job>, Error> {
        let sql = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1 AND app_id = $2");
        one(&self.pool, query(sql).bind(job_id.0).bind(app_id.0), job).await
    }

    async fn list_jobs(&self, app_id: AppId, filter: &JobFilter, page: PageRequest) -> Result<Page<Job>, Error> {
        // NULL filters match everything, so one statement serves every filter.
        let clause = " WHERE app_id = $1 AND ($2::text IS NULL OR job_type = $2) AND ($3::text IS NULL OR state = $3)";
        let count = format!("SELECT COUNT(*) FROM jobs{clause}");
        let list = format!(
            concat!("SELECT ", job_columns!(), " FROM jobs{} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"),
            clause
        );
        let job_type = filter.job_type.map(JobType::as_str);
        let state = filter.state.map(JobState::as_str);
        codec::page(
            &self.pool,
            query(&count).bind(app_id.0).bind(job_type).bind(state),
            query(&list).bind(app_id.0).bind(job_type).bind(state),
            page,
            job,
        )
        .await
    }

    async fn claim_job(&self, claim: &JobClaim) -> Result<Option<Job>, Error> {
        let types: Option<Vec<String>> =
            claim.types.as_ref().map(|types| types.iter().map(|t| t.as_str().to_owned()).collect());
        let sql = if types.is_some() { CLAIM_OF_TYPES } else { CLAIM_ANY };
        let claim_query = query(sql).bind(ts(&claim.now)).bind(&claim.worker).bind(ts(&claim.lease_until)).bind(types);
        one(&self.pool, claim_query, job).await
    }

    async fn renew_job_lease(&self, job_id: JobId, worker: &str, until: Timestamp) -> Result<Option<bool>, Error> {
        let sql = "UPDATE jobs SET lease_expires_at = $3 WHERE id = $1 AND state = 'running' AND lease_owner = $2
                   RETURNING cancel_requested";
        one(&self.pool, query(sql).bind(job_id.0).bind(worker).bind(ts(&until)), |c| c.flag(0)).await
    }

    async fn jobs_to_cancel(&self, ids: &[JobId]) -> Result<Vec<JobId>, Error> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|j| j.0).collect();
        let sql = "SELECT id FROM jobs WHERE id = ANY($1) AND state = 'running' AND cancel_requested";
        all(&self.pool, query(sql).bind(ids), |c| c.id(0)).await
    }

    async fn append_job_log(&self, job_id: JobId, append: &LogAppend) -> Result<(), Error> {
        let limit = i64::try_from(append.limit_bytes()).unwrap_or(i64::MAX);
        let batch = Batch::new(append)?;
        // Usually the log has room: one statement, its own transaction.
        if append_fitting(&self.pool, job_id, &batch, limit).await? {
            return Ok(());
        }
        // Older lines must go: the general path, in a transaction.
        let mut tx = self.pool.begin().await.db()?;
        match append_trimming(&mut tx, job_id, &batch, limit).await {
            Ok(()) => tx.commit().await.db(),
            Err(err) => {
                let _ = tx.rollback().await;
                Err(err)
            }
        }
    }

    async fn job_log(&self, job_id: JobId, after: i64, limit: u32) -> Result<JobLogPage, Error> {
        let mut snapshot = self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.db()?;
        let truncated =
            one(&mut *snapshot, query("SELECT log_truncated FROM jobs WHERE id = $1").bind(job_id.0), |c| c.flag(0))
                .await?
                .ok_or(Error::NotFound(JobId::KIND))?;
        let lines = all(
            &mut *snapshot,
            query("SELECT seq, at, stream, text FROM job_logs WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
                .bind(job_id.0)
                .bind(after)
                .bind(i64::from(limit)),
            log_line,
        )
        .await?;
        snapshot.commit().await.db()?;
        Ok(JobLogPage { lines, truncated })
    }

    async fn job_counts(&self) -> Result<Vec<(JobType, JobState, u64)>, Error> {
        let sql = "SELECT job_type, state, COUNT(*) FROM jobs GROUP BY job_type, state ORDER BY job_type, state";
        all(&self.pool, query(sql), |c| {
            let job_type = JobType::parse(&c.text(0)?).map_err(|e| Error::internal(format!("job_type: {e}")))?;
            let state = JobState::parse(&c.text(1)?).map_err(|e| Error::internal(format!("state: {e}")))?;
            Ok((job_type, state, c.count(2)?))
        })
        .await
    }
}

/// An append whose batch fits beside the stored log, in one statement (so
/// in one round trip and its own transaction). `$1` is the job, `$2` the
/// number of lines in the batch (all of them use up a number), `$3` the size
/// of the lines kept, `$4` whether the batch's own oldest lines were left
/// out, `$5` the bound; `$6..$10` are the kept lines (number relative to the
/// job's last line, time, stream, size, text). The `UPDATE` locks the job
/// row and hands out the numbers — re-checked on the newest row version
/// when a concurrent append got there first — and applies only while the
/// log stays within the bound. Answers the job's previous last line number
/// (NULL when nothing was written) and whether the job exists.
const APPEND_FITTING: &str = "WITH head AS (
        UPDATE jobs SET log_seq = log_seq + $2, log_bytes = log_bytes + $3, log_truncated = log_truncated OR $4
         WHERE id = $1 AND log_bytes + $3 <= $5
         RETURNING log_seq - $2 AS last_seq
     ), appended AS (
        INSERT INTO job_logs (job_id, seq, at, stream, bytes, text)
        SELECT $1, head.last_seq + line.n, line.at, line.stream, line.bytes, line.text
          FROM head, UNNEST($6::bigint[], $7::timestamptz[], $8::text[], $9::bigint[], $10::text[])
               AS line (n, at, stream, bytes, text)
     )
     SELECT (SELECT last_seq FROM head), EXISTS (SELECT 1 FROM jobs WHERE id = $1)";

/// A [`LogAppend`] as the columns of an `UNNEST`.
struct Batch<'a> {
    /// Lines in the batch, kept or skipped (all use up a number).
    count: i64,
    /// Whether some of the batch's own lines were skipped.
    skipped: bool,
    /// UTF-8 size of the kept lines.
    bytes: i64,
    /// Each kept line's number after the job's last line (1 = the next).
    offsets: Vec<i64>,
    ats: Vec<Timestamp>,
    streams: Vec<&'a str>,
    sizes: Vec<i64>,
    texts: Vec<&'a str>,
}

impl<'a> Batch<'a> {
    fn new(append: &'a LogAppend) -> Result<Self, Error> {
        let mut batch = Batch {
            count: int(append.count() as u64)?,
            skipped: append.skipped() > 0,
            bytes: int(append.bytes())?,
            offsets: vec![],
            ats: vec![],
            streams: vec![],
            sizes: vec![],
            texts: vec![],
        };
        let first = int(append.skipped() as u64)? + 1;
        for (i, line) in append.lines().iter().enumerate() {
            batch.offsets.push(first + int(i as u64)?);
            batch.ats.push(ts(&line.at));
            batch.streams.push(line.stream.as_str());
            batch.sizes.push(int(line.text.len() as u64)?);
            batch.texts.push(line.text.as_str());
        }
        Ok(batch)
    }
}

/// `AppendJobLog` inside a unit: as [`JobStore::append_job_log`], on the
/// unit's transaction.
pub(crate) async fn append_job_log_in(conn: &mut PgConnection, job_id: JobId, append: &LogAppend) -> Result<(), Error> {
    let limit = i64::try_from(append.limit_bytes()).unwrap_or(i64::MAX);
    let batch = Batch::new(append)?;
    if append_fitting(&mut *conn, job_id, &batch, limit).await? {
        return Ok(());
    }
    append_trimming(conn, job_id, &batch, limit).await
}

/// [`APPEND_FITTING`]: answers whether the batch went in (the log had room;
/// otherwise older lines must go first). An unknown job is `not_found`.
async fn append_fitting<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    job_id: JobId,
    batch: &Batch<'_>,
    limit: i64,
) -> Result<bool, Error> {
    let (appended, exists) = one(
        ex,
        query(APPEND_FITTING)
            .bind(job_id.0)
            .bind(batch.count)
            .bind(batch.bytes)
            .bind(batch.skipped)
            .bind(limit)
            .bind(&batch.offsets)
            .bind(&batch.ats)
            .bind(&batch.streams)
            .bind(&batch.sizes)
            .bind(&batch.texts),
        |c| Ok((c.opt_int(0)?.is_some(), c.flag(1)?)),
    )
    .await?
    .ok_or_else(|| Error::internal("the log append answered no row"))?;
    if !appended && !exists {
        return Err(Error::NotFound(JobId::KIND));
    }
    Ok(appended)
}

/// Appends `batch` after the job's last line number, then drops the oldest
/// lines while the stored log exceeds `limit`: the general path, for an
/// append that [`APPEND_FITTING`] refused. One append costs in proportion to
/// its batch, not to the log.
async fn append_trimming(conn: &mut PgConnection, job_id: JobId, batch: &Batch<'_>, limit: i64) -> Result<(), Error> {
    let (last_seq, stored, truncated) = one(
        &mut *conn,
        query("SELECT log_seq, log_bytes, log_truncated FROM jobs WHERE id = $1 FOR UPDATE").bind(job_id.0),
        |c| Ok((c.int(0)?, c.int(1)?, c.flag(2)?)),
    )
    .await?
    .ok_or(Error::NotFound(JobId::KIND))?;
    if !batch.offsets.is_empty() {
        query(
            "INSERT INTO job_logs (job_id, seq, at, stream, bytes, text)
             SELECT $1, $2 + line.n, line.at, line.stream, line.bytes, line.text
               FROM UNNEST($3::bigint[], $4::timestamptz[], $5::text[], $6::bigint[], $7::text[])
                    AS line (n, at, stream, bytes, text)",
        )
        .bind(job_id.0)
        .bind(last_seq)
        .bind(&batch.offsets)
        .bind(&batch.ats)
        .bind(&batch.streams)
        .bind(&batch.sizes)
        .bind(&batch.texts)
        .execute(&mut *conn)
        .await
        .db()?;
    }

    // Then the stored lines, oldest first, until the log fits: the shortest
    // prefix whose size covers the excess, or else every line (the last
    // prefix).
    let mut total = stored + batch.bytes;
    let mut dropped_any = batch.skipped;
    if total > limit {
        let cut = one(
            &mut *conn,
            query(
                "SELECT seq, running FROM (
                    SELECT seq, SUM(bytes) OVER (ORDER BY seq)::bigint AS running FROM job_logs WHERE job_id = $1
                 ) prefix
                 ORDER BY running >= $2 DESC, CASE WHEN running >= $2 THEN seq ELSE -seq END
                 LIMIT 1",
            )
            .bind(job_id.0)
            .bind(total - limit),
            |c| Ok((c.int(0)?, c.int(1)?)),
        )
        .await?;
        if let Some((seq, running)) = cut {
            query("DELETE FROM job_logs WHERE job_id = $1 AND seq <= $2")
                .bind(job_id.0)
                .bind(seq)
                .execute(&mut *conn)
                .await
                .db()?;
            total -= running;
            dropped_any = true;
        }
    }
    query("UPDATE jobs SET log_seq = $2, log_bytes = $3, log_truncated = $4 WHERE id = $1")
        .bind(job_id.0)
        .bind(last_seq + batch.count)
        .bind(total)
        .bind(truncated || dropped_any)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `InsertJob`.
pub(crate) async fn insert_job(conn: &mut PgConnection, j: &Job) -> Result<(), Error> {
    let sql = "INSERT INTO jobs (id, app_id, job_type, state, entity_type, entity_id, payload, attempts, max_attempts,
                   run_after, lease_owner, lease_expires_at, timeout_secs, cancel_requested, result, error, created_by,
                   created_at, started_at, finished_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11, $12, $13, $14, $15::json, $16, $17, $18,
                   $19, $20)";
    query(sql)
        .bind(j.id.0)
        .bind(j.app_id.0)
        .bind(j.job_type.as_str())
        .bind(j.state.as_str())
        .bind(&j.entity_type)
        .bind(&j.entity_id)
        .bind(json(&j.payload)?)
        .bind(i64::from(j.attempts))
        .bind(i64::from(j.max_attempts))
        .bind(ts(&j.run_after))
        .bind(&j.lease_owner)
        .bind(opt_ts(&j.lease_expires_at))
        .bind(int(j.timeout_secs)?)
        .bind(j.cancel_requested)
        .bind(j.result.as_ref().map(json).transpose()?)
        .bind(&j.error)
        .bind(j.created_by.map(|u| u.0))
        .bind(ts(&j.created_at))
        .bind(opt_ts(&j.started_at))
        .bind(opt_ts(&j.finished_at))
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// `FinishJob`: compare-and-set on `running` and the lease owner; clears the
/// lease. A retry (`queued`) moves `run_after` and stays unfinished.
pub(crate) async fn finish_job(conn: &mut PgConnection, f: &JobFinish) -> Result<(), Error> {
    if f.state == JobState::Running {
        return Err(Error::internal("FinishJob cannot leave a job running"));
    }
    let finished_at = if f.state == JobState::Queued { None } else { opt_ts(&f.finished_at) };
    let changed = query(
        "UPDATE jobs SET state = $3, result = $4::json, error = $5, finished_at = $6,
            run_after = COALESCE($7, run_after), lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND (NOT cancel_requested OR $3 = 'canceled')",
    )
    .bind(f.id.0)
    .bind(&f.worker)
    .bind(f.state.as_str())
    .bind(f.result.as_ref().map(json).transpose()?)
    .bind(&f.error)
    .bind(finished_at)
    .bind(opt_ts(&f.run_after))
    .execute(&mut *conn)
    .await
    .db()?
    .rows_affected();
    if changed == 0 {
        // Still this worker's, so the cancel flag is what refused it.
        let held =
            query("SELECT 1 FROM jobs WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND cancel_requested")
                .bind(f.id.0)
                .bind(&f.worker);
        if exists(&mut *conn, held).await? {
            return Err(ConflictReason::CancelRequested.into());
        }
    }
    expect_job_cas(conn, changed, f.id, ConflictReason::LeaseLost).await
}

/// `CancelQueuedJob`: compare-and-set `queued` → `canceled`.
pub(crate) async fn cancel_queued_job(conn: &mut PgConnection, job_id: JobId, at: &Timestamp) -> Result<(), Error> {
    let changed = query("UPDATE jobs SET state = 'canceled', finished_at = $2 WHERE id = $1 AND state = 'queued'")
        .bind(job_id.0)
        .bind(ts(at))
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    expect_job_cas(conn, changed, job_id, ConflictReason::NotQueued).await
}

/// `RequestJobCancel`: sets the cancel flag of a running job.
pub(crate) async fn request_job_cancel(conn: &mut PgConnection, job_id: JobId) -> Result<(), Error> {
    let changed = query("UPDATE jobs SET cancel_requested = true WHERE id = $1 AND state = 'running'")
        .bind(job_id.0)
        .execute(&mut *conn)
        .await
        .db()?
        .rows_affected();
    expect_job_cas(conn, changed, job_id, ConflictReason::NotRunning).await
}

/// `ReleaseJob`: back to the queue, the lease cleared and the attempt not
/// counted; only by the lease owner.
pub(crate) async fn release_job(conn: &mut PgConnection, job_id: JobId, worker: &str) -> Result<(), Error> {
    let changed = query(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL,
            attempts = GREATEST(attempts - 1, 0)
         WHERE id = $1 AND state = 'running' AND lease_owner = $2",
    )
    .bind(job_id.0)
    .bind(worker)
    .execute(&mut *conn)
    .await
    .db()?
    .rows_affected();
    expect_job_cas(conn, changed, job_id, ConflictReason::LeaseLost).await
}

/// One changed row is success; none is `conflict` (with `reason`) when the
/// job exists and `not_found` otherwise.
async fn expect_job_cas(
    conn: &mut PgConnection,
    changed: u64,
    job_id: JobId,
    reason: ConflictReason,
) -> Result<(), Error> {
    match changed {
        1 => Ok(()),
        0 if exists(conn, query("SELECT 1 FROM jobs WHERE id = $1").bind(job_id.0)).await? => Err(reason.into()),
        0 => Err(Error::NotFound(JobId::KIND)),
        n => Err(Error::internal(format!("a compare-and-set update of one job changed {n} rows"))),
    }
}

/// Applies one job mutation inside the unit's transaction.
pub(crate) async fn apply(conn: &mut PgConnection, mutation: &JobMutation) -> Result<(), Error> {
    match mutation {
        JobMutation::InsertJob(j) => insert_job(conn, j).await,
        JobMutation::FinishJob(f) => finish_job(conn, f).await,
        JobMutation::AppendJobLog { id, append } => append_job_log_in(conn, *id, append).await,
        JobMutation::CancelQueuedJob { id, at } => cancel_queued_job(conn, *id, at).await,
        JobMutation::RequestJobCancel { id } => request_job_cancel(conn, *id).await,
        JobMutation::ReleaseJob { id, worker } => release_job(conn, *id, worker).await,
    }
}
