-- Conman metadata store, schema 4: runtime profiles and their append-only
-- revisions, sealed secret values, installation metadata (the secrets key
-- id), environments, and changesets' profile overrides (SPEC §2.5, §2.6).
-- Conventions as in 0001: ids and timestamps are text, flags 0/1.
--
-- A profile and a revision are stored as their whole serde JSON document;
-- the columns beside it (`app_id`, `name`, `version`, `number`) exist for
-- keys, lookups and compare-and-set only and always equal the document's.
-- Sealed secrets are keyed by (owner kind, owner id, name, revision); the
-- owner is a profile or a changeset, so it carries no foreign key. Sealed
-- fields are columns (bytes as BLOBs) so a rewrap updates them in place.

CREATE TABLE runtime_profiles (
    id         TEXT    NOT NULL PRIMARY KEY,
    app_id     TEXT    NOT NULL REFERENCES apps (id),
    name       TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    -- Names unique per app; also the listing's index (by name).
    UNIQUE (app_id, name)
) STRICT;

CREATE TABLE profile_revisions (
    profile_id TEXT    NOT NULL REFERENCES runtime_profiles (id),
    number     INTEGER NOT NULL CHECK (number >= 1),
    document   TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (profile_id, number)
) STRICT, WITHOUT ROWID;

CREATE TABLE secrets (
    owner_kind     TEXT    NOT NULL CHECK (owner_kind IN ('changeset', 'profile')),
    owner_id       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    revision       INTEGER NOT NULL CHECK (revision >= 0),
    app_id         TEXT    NOT NULL REFERENCES apps (id),
    format_version INTEGER NOT NULL,
    key_id         TEXT    NOT NULL,
    wrap_nonce     BLOB    NOT NULL,
    wrapped_key    BLOB    NOT NULL,
    value_nonce    BLOB    NOT NULL,
    ciphertext     BLOB    NOT NULL,
    created_at     TEXT    NOT NULL,
    -- Also the keyset order of `all_secrets`.
    PRIMARY KEY (owner_kind, owner_id, name, revision)
) STRICT, WITHOUT ROWID;

-- Installation-wide key/value facts (`secrets_key_id`).
CREATE TABLE installation_meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE environments (
    id                 TEXT    NOT NULL PRIMARY KEY,
    app_id             TEXT    NOT NULL REFERENCES apps (id),
    name               TEXT    NOT NULL,
    position           INTEGER NOT NULL CHECK (position >= 0),
    is_canonical       INTEGER NOT NULL CHECK (is_canonical IN (0, 1)),
    runtime_profile_id TEXT    REFERENCES runtime_profiles (id),
    UNIQUE (app_id, name)
) STRICT;
CREATE INDEX environments_by_position ON environments (app_id, position);

CREATE TABLE changeset_overrides (
    changeset_id TEXT    NOT NULL REFERENCES changesets (id),
    position     INTEGER NOT NULL CHECK (position >= 0),
    document     TEXT    NOT NULL,
    PRIMARY KEY (changeset_id, position)
) STRICT, WITHOUT ROWID;
