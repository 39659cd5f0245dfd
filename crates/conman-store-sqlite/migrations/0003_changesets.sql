-- Conman metadata store, schema 3: changesets, their frozen revisions,
-- review votes and comments (SPEC §2.3, §4). Conventions as in 0001;
-- list-typed fields (`depends_on`, `files`, `anchor`, `edits`) are JSON text.
--
-- `gate_job_id` columns carry no foreign key on purpose: the core writes
-- the changeset (or revision) naming its gate job before the job itself in
-- the same unit, and SQLite checks foreign keys per statement.
-- `depends_on` holds ids of changesets of the same app, checked by the core.

CREATE TABLE changesets (
    id           TEXT    NOT NULL PRIMARY KEY,
    app_id       TEXT    NOT NULL REFERENCES apps (id),
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id),
    author_id    TEXT    NOT NULL REFERENCES users (id),
    title        TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    state        TEXT    NOT NULL
        CHECK (state IN ('draft', 'submitted', 'in_review', 'approved', 'changes_requested', 'rejected',
                         'queued', 'released', 'conflicted', 'needs_revalidation')),
    revision     INTEGER NOT NULL CHECK (revision >= 0),
    head_sha     TEXT,
    depends_on   TEXT    NOT NULL,
    gate_job_id  TEXT,
    gate_failure TEXT,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    version      INTEGER NOT NULL
) STRICT;
-- At most one open (neither released nor rejected) changeset per workspace;
-- an insert or update making a second one fails as UNIQUE (→ `conflict`).
-- `open_changeset_of_workspace` repeats this exact WHERE term so the
-- planner can use the index.
CREATE UNIQUE INDEX changesets_one_open_per_workspace ON changesets (workspace_id)
    WHERE state NOT IN ('released', 'rejected');
-- The listing, newest first, unfiltered and by each filter.
CREATE INDEX changesets_by_app ON changesets (app_id, created_at DESC, id DESC);
CREATE INDEX changesets_by_app_state ON changesets (app_id, state, created_at DESC, id DESC);
CREATE INDEX changesets_by_app_author ON changesets (app_id, author_id, created_at DESC, id DESC);

-- Frozen revisions, numbered per changeset (a taken number → `conflict`).
CREATE TABLE changeset_revisions (
    changeset_id TEXT    NOT NULL REFERENCES changesets (id),
    number       INTEGER NOT NULL CHECK (number >= 1),
    head_sha     TEXT    NOT NULL,
    base_sha     TEXT    NOT NULL,
    files        TEXT    NOT NULL,
    gate_job_id  TEXT,
    created_by   TEXT    NOT NULL REFERENCES users (id),
    created_at   TEXT    NOT NULL,
    PRIMARY KEY (changeset_id, number)
) STRICT;

-- Votes: one row per (changeset, revision, reviewer); `PutReview` upserts
-- on that key, replacing the row's id, action, comment and time.
CREATE TABLE changeset_reviews (
    id           TEXT    NOT NULL PRIMARY KEY,
    changeset_id TEXT    NOT NULL REFERENCES changesets (id),
    revision     INTEGER NOT NULL CHECK (revision >= 1),
    reviewer_id  TEXT    NOT NULL REFERENCES users (id),
    action       TEXT    NOT NULL CHECK (action IN ('approve', 'request_changes', 'reject')),
    comment      TEXT,
    created_at   TEXT    NOT NULL
) STRICT;
CREATE UNIQUE INDEX changeset_reviews_one_vote ON changeset_reviews (changeset_id, revision, reviewer_id);

-- Comments; `anchor` is a JSON object or NULL, `edits` a JSON array of the
-- earlier bodies, oldest first.
CREATE TABLE changeset_comments (
    id           TEXT    NOT NULL PRIMARY KEY,
    changeset_id TEXT    NOT NULL REFERENCES changesets (id),
    author_id    TEXT    NOT NULL REFERENCES users (id),
    body         TEXT    NOT NULL,
    anchor       TEXT,
    edits        TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    version      INTEGER NOT NULL
) STRICT;
CREATE INDEX changeset_comments_by_changeset ON changeset_comments (changeset_id, created_at, id);
