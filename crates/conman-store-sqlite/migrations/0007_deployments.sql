-- Conman metadata store, schema 7: deployments, deploy freeze windows,
-- environment validations (drift baselines) and migration execution
-- records (SPEC §2.5, issue 14, decision 0017).
-- Conventions as in 0001: ids and timestamps are text.
--
-- Each row is stored whole in `body` (its JSON document); the columns
-- beside it are what lookups, listings, references and uniqueness need,
-- written from the same value in the same statement.
--
-- One active deployment per environment: the partial unique index below,
-- not a read before the write, so of two deploys racing for an environment
-- exactly one commits. Every table refers to its environment, so an
-- environment with history cannot be removed.

CREATE TABLE deployments (
    id             TEXT    NOT NULL PRIMARY KEY,
    app_id         TEXT    NOT NULL REFERENCES apps (id),
    environment_id TEXT    NOT NULL REFERENCES environments (id),
    release_id     TEXT    NOT NULL REFERENCES releases (id),
    group_id       TEXT,
    state          TEXT    NOT NULL,
    active         INTEGER NOT NULL CHECK (active IN (0, 1)),
    requested_by   TEXT    NOT NULL REFERENCES users (id),
    created_at     TEXT    NOT NULL,
    finished_at    TEXT,
    version        INTEGER NOT NULL,
    body           TEXT    NOT NULL
) STRICT;

CREATE UNIQUE INDEX deployments_one_active_per_environment ON deployments (environment_id) WHERE active = 1;
CREATE INDEX deployments_by_app ON deployments (app_id, created_at DESC, id DESC);
CREATE INDEX deployments_by_environment ON deployments (environment_id, created_at DESC, id DESC);
CREATE INDEX deployments_succeeded ON deployments (environment_id, finished_at DESC, id DESC)
    WHERE state = 'succeeded';

CREATE TABLE freeze_windows (
    id             TEXT NOT NULL PRIMARY KEY,
    app_id         TEXT NOT NULL REFERENCES apps (id),
    environment_id TEXT NOT NULL REFERENCES environments (id),
    created_by     TEXT NOT NULL REFERENCES users (id),
    created_at     TEXT NOT NULL,
    body           TEXT NOT NULL
) STRICT;

CREATE INDEX freeze_windows_by_environment ON freeze_windows (environment_id, created_at, id);

-- Append-only: the store has no statement that updates or deletes them.
CREATE TABLE environment_validations (
    id             TEXT NOT NULL PRIMARY KEY,
    app_id         TEXT NOT NULL REFERENCES apps (id),
    environment_id TEXT NOT NULL REFERENCES environments (id),
    at             TEXT NOT NULL,
    body           TEXT NOT NULL
) STRICT;

CREATE INDEX environment_validations_newest ON environment_validations (environment_id, at DESC, id DESC);

CREATE TABLE migration_executions (
    id             TEXT NOT NULL PRIMARY KEY,
    app_id         TEXT NOT NULL REFERENCES apps (id),
    environment_id TEXT NOT NULL REFERENCES environments (id),
    release_id     TEXT NOT NULL REFERENCES releases (id),
    deployment_id  TEXT NOT NULL REFERENCES deployments (id),
    recorded_at    TEXT NOT NULL,
    body           TEXT NOT NULL
) STRICT;

CREATE INDEX migration_executions_newest ON migration_executions (environment_id, recorded_at DESC, id DESC);
