-- Conman metadata store on Postgres, schema 9: releases (SPEC §2.4,
-- decision 0016), the same table as the SQLite store's schema 6.
--
-- A release is stored whole in `body` (its JSON document: selection,
-- composition outcomes, gates); the columns beside it are what lookups,
-- listings and uniqueness need, written from the same value in the same
-- statement. A tag is unique per app (two publishes never share one); the
-- constraint is named `<table>_<field>_key` so a violation names `tag`.

CREATE TABLE releases (
    id         uuid        NOT NULL PRIMARY KEY,
    app_id     uuid        NOT NULL REFERENCES apps (id),
    state      text        NOT NULL,
    tag        text,
    created_by uuid        NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    body       json        NOT NULL,
    CONSTRAINT releases_tag_key UNIQUE (app_id, tag)
);

CREATE INDEX releases_by_app ON releases (app_id, created_at DESC, id DESC);
CREATE INDEX releases_by_state ON releases (app_id, state, created_at DESC, id DESC);

-- The release queue (SPEC §2.4): when a changeset last entered it, and the
-- last check of it against a new integration head (JSON: at, head,
-- outcome). The queue view lists queued changesets by `queued_at`.
ALTER TABLE changesets ADD COLUMN queued_at timestamptz;
ALTER TABLE changesets ADD COLUMN last_revalidation json;
CREATE INDEX changesets_queue ON changesets (app_id, state, queued_at NULLS FIRST, id);
