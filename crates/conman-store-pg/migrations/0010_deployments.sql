-- Conman metadata store on Postgres, schema 10: deployments, deploy freeze
-- windows, environment validations (drift baselines) and migration
-- execution records (SPEC §2.5, issue 14, decision 0017), the same tables
-- as the SQLite store's schema 7.
--
-- Each row is stored whole in `body` (its JSON document); the columns
-- beside it are what lookups, listings, references and uniqueness need,
-- written from the same value in the same statement.
--
-- One active deployment per environment: the partial unique index below,
-- not a read before the write — a second transaction inserting an active
-- deployment of the same environment waits for the first and then fails.
-- It is named `<table>_<field>_key` so a violation names `environment`.
-- Every table refers to its environment, so an environment with history
-- cannot be removed.

CREATE TABLE deployments (
    id             uuid        NOT NULL PRIMARY KEY,
    app_id         uuid        NOT NULL REFERENCES apps (id),
    environment_id uuid        NOT NULL REFERENCES environments (id),
    release_id     uuid        NOT NULL REFERENCES releases (id),
    group_id       uuid,
    state          text        NOT NULL,
    active         boolean     NOT NULL,
    requested_by   uuid        NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    version        bigint      NOT NULL,
    body           json        NOT NULL
);

CREATE UNIQUE INDEX deployments_environment_key ON deployments (environment_id) WHERE active;
CREATE INDEX deployments_by_app ON deployments (app_id, created_at DESC, id DESC);
CREATE INDEX deployments_by_environment ON deployments (environment_id, created_at DESC, id DESC);
CREATE INDEX deployments_succeeded ON deployments (environment_id, finished_at DESC NULLS LAST, id DESC)
    WHERE state = 'succeeded';

CREATE TABLE freeze_windows (
    id             uuid        NOT NULL PRIMARY KEY,
    app_id         uuid        NOT NULL REFERENCES apps (id),
    environment_id uuid        NOT NULL REFERENCES environments (id),
    created_by     uuid        NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL,
    body           json        NOT NULL
);

CREATE INDEX freeze_windows_by_environment ON freeze_windows (environment_id, created_at, id);

-- Append-only: the store has no statement that updates or deletes them.
CREATE TABLE environment_validations (
    id             uuid        NOT NULL PRIMARY KEY,
    app_id         uuid        NOT NULL REFERENCES apps (id),
    environment_id uuid        NOT NULL REFERENCES environments (id),
    at             timestamptz NOT NULL,
    body           json        NOT NULL
);

CREATE INDEX environment_validations_newest ON environment_validations (environment_id, at DESC, id DESC);

CREATE TABLE migration_executions (
    id             uuid        NOT NULL PRIMARY KEY,
    app_id         uuid        NOT NULL REFERENCES apps (id),
    environment_id uuid        NOT NULL REFERENCES environments (id),
    release_id     uuid        NOT NULL REFERENCES releases (id),
    deployment_id  uuid        NOT NULL REFERENCES deployments (id),
    recorded_at    timestamptz NOT NULL,
    body           json        NOT NULL
);

CREATE INDEX migration_executions_newest ON migration_executions (environment_id, recorded_at DESC, id DESC);
