-- Conman metadata store on Postgres, schema 2: jobs, their leases and their
-- logs (SPEC §4, §6.2), mirroring the SQLite store's schema 2. Conventions
-- as in 0001.

-- One row per job. `log_seq` is the last log line number handed out,
-- `log_bytes` the UTF-8 size of the stored lines (kept here so trimming the
-- log never sums it), `log_truncated` whether older lines were dropped.
-- Counts are `bigint` so every `u32` (and each `u64` the core allows) fits.
CREATE TABLE jobs (
    id               uuid        NOT NULL PRIMARY KEY,
    app_id           uuid        NOT NULL REFERENCES apps (id),
    job_type         text        COLLATE "C" NOT NULL,
    state            text        COLLATE "C" NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    entity_type      text,
    entity_id        text,
    payload          json        NOT NULL,
    attempts         bigint      NOT NULL CHECK (attempts >= 0),
    max_attempts     bigint      NOT NULL,
    run_after        timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    timeout_secs     bigint      NOT NULL,
    cancel_requested boolean     NOT NULL,
    result           json,
    error            text,
    created_by       uuid        REFERENCES users (id),
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    log_seq          bigint      NOT NULL DEFAULT 0,
    log_bytes        bigint      NOT NULL DEFAULT 0,
    log_truncated    boolean     NOT NULL DEFAULT false
);
-- The claim: `state = 'queued' AND run_after <= now` (and the few running
-- jobs, for expired leases) in `run_after, id` order — a seek, however many
-- finished jobs the table holds.
CREATE INDEX jobs_runnable ON jobs (state, run_after, id);
CREATE INDEX jobs_by_app ON jobs (app_id, created_at, id);

-- Log lines; `seq` counts from 1 per job and is never reused, so a client
-- follows with "after seq". `bytes` is the UTF-8 size of `text`.
CREATE TABLE job_logs (
    job_id uuid        NOT NULL REFERENCES jobs (id),
    seq    bigint      NOT NULL,
    at     timestamptz NOT NULL,
    stream text        NOT NULL,
    bytes  bigint      NOT NULL,
    text   text        NOT NULL,
    PRIMARY KEY (job_id, seq)
);
