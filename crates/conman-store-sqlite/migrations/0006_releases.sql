-- Conman metadata store, schema 6: releases and the queue order (SPEC §2.4,
-- decision 0016).
-- Conventions as in 0001: ids and timestamps are text.
--
-- A release is stored whole in `body` (its JSON document: selection,
-- composition outcomes, gates); the columns beside it are what lookups,
-- listings and uniqueness need, written from the same value in the same
-- statement. A tag is unique per app (two publishes never share one).

CREATE TABLE releases (
    id         TEXT    NOT NULL PRIMARY KEY,
    app_id     TEXT    NOT NULL REFERENCES apps (id),
    state      TEXT    NOT NULL,
    tag        TEXT,
    created_by TEXT    NOT NULL REFERENCES users (id),
    created_at TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL
) STRICT;

CREATE UNIQUE INDEX releases_tag_per_app ON releases (app_id, tag);
CREATE INDEX releases_by_app ON releases (app_id, created_at DESC, id DESC);

-- The release queue (SPEC §2.4): when a changeset last entered it, and the
-- last check of it against a new integration head (JSON: at, head,
-- outcome). The queue view lists queued changesets by `queued_at`.
ALTER TABLE changesets ADD COLUMN queued_at TEXT;
ALTER TABLE changesets ADD COLUMN last_revalidation TEXT;
CREATE INDEX changesets_queue ON changesets (app_id, state, queued_at, id);
