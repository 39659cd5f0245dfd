-- Conman metadata store on Postgres, schema 3: changesets, their frozen
-- revisions, review votes and comments (SPEC §2.3, §4). Conventions as in
-- 0001: list-valued fields (`depends_on`, `files`, `edits`) are `json`
-- holding the exact text the store wrote.
--
-- Foreign keys are those of the SQLite store's schema 3, no more, so both
-- stores accept the same units: `gate_job_id` columns carry none (the core
-- may write a changeset or revision naming its gate job before the job, in
-- the same unit), nor do a vote's revision or a comment's anchor (the core
-- checks those), nor `depends_on` (ids of changesets of the same app,
-- checked by the core).

-- One row per changeset. At most one changeset per workspace is open
-- (neither released nor rejected): the partial unique index below refuses a
-- second, on insert and on an update that would reopen one. It is named
-- `<table>_<field>_key` so a violation names the field, as elsewhere.
CREATE TABLE changesets (
    id           uuid        NOT NULL PRIMARY KEY,
    app_id       uuid        NOT NULL REFERENCES apps (id),
    workspace_id uuid        NOT NULL REFERENCES workspaces (id),
    author_id    uuid        NOT NULL REFERENCES users (id),
    title        text        NOT NULL,
    description  text        NOT NULL,
    state        text        COLLATE "C" NOT NULL
        CHECK (state IN ('draft', 'submitted', 'in_review', 'approved', 'changes_requested', 'rejected', 'queued',
                         'released', 'conflicted', 'needs_revalidation')),
    revision     bigint      NOT NULL CHECK (revision >= 0),
    head_sha     text,
    depends_on   json        NOT NULL,
    gate_job_id  uuid,
    gate_failure text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint      NOT NULL
);
CREATE UNIQUE INDEX changesets_workspace_id_key ON changesets (workspace_id)
    WHERE state NOT IN ('released', 'rejected');
-- The listings, newest first: every changeset of an app, or those in one
-- state, or those of one author — each a seek plus a walk in index order.
CREATE INDEX changesets_by_app ON changesets (app_id, created_at DESC, id DESC);
CREATE INDEX changesets_by_state ON changesets (app_id, state, created_at DESC, id DESC);
CREATE INDEX changesets_by_author ON changesets (app_id, author_id, created_at DESC, id DESC);

-- Frozen revisions, numbered 1, 2, ... per changeset and never changed.
-- The key is named so a duplicate number names the field `number`.
CREATE TABLE changeset_revisions (
    changeset_id uuid        NOT NULL REFERENCES changesets (id),
    number       bigint      NOT NULL CHECK (number >= 1),
    head_sha     text        NOT NULL,
    base_sha     text        NOT NULL,
    files        json        NOT NULL,
    gate_job_id  uuid,
    created_by   uuid        NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL,
    CONSTRAINT changeset_revisions_number_key PRIMARY KEY (changeset_id, number)
);

-- Review votes: one row per (changeset, revision, reviewer); a later vote
-- replaces the row (`INSERT ... ON CONFLICT ... DO UPDATE`), new id and all.
CREATE TABLE changeset_reviews (
    id           uuid        NOT NULL PRIMARY KEY,
    changeset_id uuid        NOT NULL REFERENCES changesets (id),
    revision     bigint      NOT NULL CHECK (revision >= 1),
    reviewer_id  uuid        NOT NULL REFERENCES users (id),
    action       text        COLLATE "C" NOT NULL CHECK (action IN ('approve', 'request_changes', 'reject')),
    comment      text,
    created_at   timestamptz NOT NULL,
    CONSTRAINT changeset_reviews_reviewer_id_key UNIQUE (changeset_id, revision, reviewer_id)
);
-- "By revision then time" reads the votes of one changeset in this order.
CREATE INDEX changeset_reviews_by_time ON changeset_reviews (changeset_id, revision, created_at, id);

-- Comments; an anchor is a path, an optional line and a revision (all
-- three absent when the comment is not anchored). `edits` holds the earlier
-- bodies, oldest first.
CREATE TABLE changeset_comments (
    id              uuid        NOT NULL PRIMARY KEY,
    changeset_id    uuid        NOT NULL REFERENCES changesets (id),
    author_id       uuid        NOT NULL REFERENCES users (id),
    body            text        NOT NULL,
    anchor_path     text,
    anchor_line     bigint,
    anchor_revision bigint,
    edits           json        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    version         bigint      NOT NULL,
    CHECK ((anchor_path IS NULL) = (anchor_revision IS NULL)),
    CHECK (anchor_line IS NULL OR anchor_path IS NOT NULL)
);
CREATE INDEX changeset_comments_by_time ON changeset_comments (changeset_id, created_at, id);
