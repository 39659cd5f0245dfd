-- Conman metadata store, schema 1.
--
-- Conventions: ids are hyphenated UUID text; timestamps are RFC 3339 UTC
-- text with exactly six fractional digits (`format_timestamp`), so text
-- order is time order; JSON values are text; booleans are 0/1.
-- Every table is STRICT so a wrong type is refused, not coerced.

CREATE TABLE users (
    id                  TEXT    NOT NULL PRIMARY KEY,
    email               TEXT    NOT NULL UNIQUE,
    name                TEXT    NOT NULL,
    handle              TEXT    NOT NULL UNIQUE,
    password_hash       TEXT    NOT NULL,
    is_operator         INTEGER NOT NULL CHECK (is_operator IN (0, 1)),
    email_notifications INTEGER NOT NULL CHECK (email_notifications IN (0, 1)),
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    version             INTEGER NOT NULL
) STRICT;

CREATE TABLE credentials (
    id          TEXT NOT NULL PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
) STRICT;
CREATE INDEX credentials_by_user ON credentials (user_id, created_at);

CREATE TABLE password_resets (
    id          TEXT NOT NULL PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;
CREATE INDEX password_resets_by_user ON password_resets (user_id);

CREATE TABLE apps (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    settings    TEXT    NOT NULL,
    created_by  TEXT    NOT NULL REFERENCES users (id),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    version     INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    app_id      TEXT NOT NULL REFERENCES apps (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id)
) STRICT;
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE invites (
    id          TEXT    NOT NULL PRIMARY KEY,
    app_id      TEXT    NOT NULL REFERENCES apps (id),
    email       TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    state       TEXT    NOT NULL,
    invited_by  TEXT    NOT NULL REFERENCES users (id),
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    accepted_by TEXT    REFERENCES users (id),
    version     INTEGER NOT NULL
) STRICT;
CREATE INDEX invites_by_app ON invites (app_id, created_at);

CREATE TABLE workspaces (
    id          TEXT    NOT NULL PRIMARY KEY,
    app_id      TEXT    NOT NULL REFERENCES apps (id),
    owner_id    TEXT    NOT NULL REFERENCES users (id),
    branch      TEXT    NOT NULL,
    title       TEXT,
    is_default  INTEGER NOT NULL CHECK (is_default IN (0, 1)),
    base_sha    TEXT    NOT NULL,
    commit_mode TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    UNIQUE (app_id, branch)
) STRICT;
CREATE INDEX workspaces_by_app ON workspaces (app_id, created_at);
CREATE INDEX workspaces_by_owner ON workspaces (app_id, owner_id, created_at);

CREATE TABLE outbox (
    id           TEXT NOT NULL PRIMARY KEY,
    recipient    TEXT NOT NULL,
    app_id       TEXT,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    delivered_at TEXT
) STRICT;
CREATE INDEX outbox_by_time ON outbox (created_at);

-- The audit log: `seq` is the position in the one global hash chain.
-- Rows are only ever appended; the triggers refuse any change.
CREATE TABLE audit (
    seq          INTEGER NOT NULL PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    occurred_at  TEXT    NOT NULL,
    actor_id     TEXT,
    app_id       TEXT,
    entity_type  TEXT    NOT NULL,
    entity_id    TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    before_state TEXT,
    after_state  TEXT,
    git_sha      TEXT,
    request      TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_by_app ON audit (app_id, seq);
CREATE INDEX audit_by_entity ON audit (entity_type, entity_id, seq);
CREATE INDEX audit_by_entity_id ON audit (entity_id, seq);
CREATE INDEX audit_by_actor ON audit (actor_id, seq);
CREATE INDEX audit_by_time ON audit (occurred_at);
CREATE INDEX audit_by_sha ON audit (app_id, git_sha) WHERE git_sha IS NOT NULL;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: records cannot be updated');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: records cannot be deleted');
END;
