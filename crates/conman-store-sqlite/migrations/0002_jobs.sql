-- Conman metadata store, schema 2: jobs, their leases and their logs
-- (SPEC §4, §6.2). Conventions as in 0001.

-- One row per job. `log_seq` is the last log line number handed out,
-- `log_bytes` the UTF-8 size of the stored lines (kept here so trimming the
-- log never sums it), `log_truncated` whether older lines were dropped.
CREATE TABLE jobs (
    id               TEXT    NOT NULL PRIMARY KEY,
    app_id           TEXT    NOT NULL REFERENCES apps (id),
    job_type         TEXT    NOT NULL,
    state            TEXT    NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    entity_type      TEXT,
    entity_id        TEXT,
    payload          TEXT    NOT NULL,
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL,
    run_after        TEXT    NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    timeout_secs     INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL CHECK (cancel_requested IN (0, 1)),
    result           TEXT,
    error            TEXT,
    created_by       TEXT    REFERENCES users (id),
    created_at       TEXT    NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    log_seq          INTEGER NOT NULL DEFAULT 0,
    log_bytes        INTEGER NOT NULL DEFAULT 0,
    log_truncated    INTEGER NOT NULL DEFAULT 0 CHECK (log_truncated IN (0, 1))
) STRICT;
-- The claim: `state = 'queued' AND run_after <= now` (and the few running
-- jobs, for expired leases) in `run_after, id` order — a seek, however many
-- finished jobs the table holds.
CREATE INDEX jobs_runnable ON jobs (state, run_after, id);
CREATE INDEX jobs_by_app ON jobs (app_id, created_at, id);

-- Log lines; `seq` counts from 1 per job and is never reused, so a client
-- follows with "after seq". `bytes` is the UTF-8 size of `text`.
CREATE TABLE job_logs (
    job_id TEXT    NOT NULL REFERENCES jobs (id),
    seq    INTEGER NOT NULL,
    at     TEXT    NOT NULL,
    stream TEXT    NOT NULL,
    bytes  INTEGER NOT NULL,
    text   TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) STRICT;
