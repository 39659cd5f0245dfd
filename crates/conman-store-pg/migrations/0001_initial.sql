-- Conman metadata store on Postgres, schema 1 (mirrors the SQLite store's
-- schema 1 table for table and column for column).
--
-- Conventions: ids are `uuid`; timestamps are `timestamptz` (microsecond
-- precision, the precision the core keeps); booleans are `boolean`.
-- JSON values are `json`, not `jsonb`: `json` keeps the exact text the
-- store wrote, so audit content hashes the same when read back.
-- Text columns that lists are ordered by use the "C" collation, so order is
-- byte order whatever the database's default collation (as on SQLite).
-- Objects are created unqualified: they land in the first schema of the
-- connection's `search_path`, which is how one database holds several
-- isolated installations (and the tests their scratch schemas).

CREATE TABLE users (
    id                  uuid        NOT NULL PRIMARY KEY,
    email               text        COLLATE "C" NOT NULL UNIQUE,
    name                text        NOT NULL,
    handle              text        COLLATE "C" NOT NULL UNIQUE,
    password_hash       text        NOT NULL,
    is_operator         boolean     NOT NULL,
    email_notifications boolean     NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    version             bigint      NOT NULL
);

CREATE TABLE credentials (
    id          uuid        NOT NULL PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id),
    kind        text        NOT NULL,
    name        text        NOT NULL,
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX credentials_by_user ON credentials (user_id, created_at);

CREATE TABLE password_resets (
    id          uuid        NOT NULL PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id),
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);

CREATE TABLE apps (
    id          uuid        NOT NULL PRIMARY KEY,
    name        text        COLLATE "C" NOT NULL UNIQUE,
    settings    json        NOT NULL,
    created_by  uuid        NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint      NOT NULL
);

CREATE TABLE memberships (
    app_id      uuid        NOT NULL REFERENCES apps (id),
    user_id     uuid        NOT NULL REFERENCES users (id),
    role        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE invites (
    id          uuid        NOT NULL PRIMARY KEY,
    app_id      uuid        NOT NULL REFERENCES apps (id),
    email       text        NOT NULL,
    role        text        NOT NULL,
    token_hash  text        NOT NULL UNIQUE,
    state       text        NOT NULL,
    invited_by  uuid        NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    accepted_by uuid        REFERENCES users (id),
    version     bigint      NOT NULL
);
CREATE INDEX invites_by_app ON invites (app_id, created_at);

CREATE TABLE workspaces (
    id          uuid        NOT NULL PRIMARY KEY,
    app_id      uuid        NOT NULL REFERENCES apps (id),
    owner_id    uuid        NOT NULL REFERENCES users (id),
    branch      text        NOT NULL,
    title       text,
    is_default  boolean     NOT NULL,
    base_sha    text        NOT NULL,
    commit_mode text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint      NOT NULL,
    -- Named so a violation names the field (`<table>_<field>_key`, as the
    -- one-column keys are named by default).
    CONSTRAINT workspaces_branch_key UNIQUE (app_id, branch)
);
CREATE INDEX workspaces_by_app ON workspaces (app_id, created_at);
CREATE INDEX workspaces_by_owner ON workspaces (app_id, owner_id, created_at);

CREATE TABLE outbox (
    id           uuid        NOT NULL PRIMARY KEY,
    recipient    text        NOT NULL,
    app_id       uuid,
    kind         text        NOT NULL,
    subject      text        NOT NULL,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL,
    delivered_at timestamptz
);
CREATE INDEX outbox_by_time ON outbox (created_at);

-- The audit log: `seq` is the position in the one global hash chain,
-- assigned by the store under a transaction-scoped advisory lock (never a
-- sequence, which would leave gaps on rollback). Rows are only ever
-- appended; the triggers refuse any change.
CREATE TABLE audit (
    seq          bigint      NOT NULL PRIMARY KEY,
    id           uuid        NOT NULL UNIQUE,
    occurred_at  timestamptz NOT NULL,
    actor_id     uuid,
    app_id       uuid,
    entity_type  text        NOT NULL,
    entity_id    text        NOT NULL,
    action       text        NOT NULL,
    before_state json,
    after_state  json,
    git_sha      text,
    request      json        NOT NULL,
    prev_hash    text        NOT NULL,
    hash         text        NOT NULL
);
CREATE INDEX audit_by_app ON audit (app_id, seq);
CREATE INDEX audit_by_entity ON audit (entity_type, entity_id, seq);
CREATE INDEX audit_by_entity_id ON audit (entity_id, seq);
CREATE INDEX audit_by_actor ON audit (actor_id, seq);
CREATE INDEX audit_by_time ON audit (occurred_at);
CREATE INDEX audit_by_sha ON audit (app_id, git_sha) WHERE git_sha IS NOT NULL;

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'the audit log is append-only: records cannot be updated';
    ELSIF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit log is append-only: records cannot be deleted';
    ELSE
        RAISE EXCEPTION 'the audit log is append-only: records cannot be truncated';
    END IF;
END;
$$;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
