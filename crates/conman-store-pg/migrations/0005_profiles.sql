-- Conman metadata store on Postgres, schema 5: runtime profiles, their
-- append-only revisions, sealed secret values, the installation's secrets
-- key id, environments and changesets' profile overrides (SPEC §2.5, §2.6).
-- Conventions as in 0001: documents are `json` holding the exact text the
-- store wrote; names compared or ordered by the store are `COLLATE "C"`, so
-- ordering is by bytes, as on SQLite and in Rust.
--
-- Foreign keys are those of the SQLite store's schema 4, no more, so both
-- stores accept the same units: a profile, a secret and an environment
-- belong to an existing app, a revision to an existing profile, an
-- environment's profile exists, an override's changeset exists. A secret's
-- owner (a profile or a changeset) carries none.

-- One row per runtime profile: the whole entity as a JSON document, plus
-- the columns the store looks up, keys on or compares (kept equal to the
-- document's fields by every write). Names are unique per app; the key is
-- named `<table>_<field>_key` so a violation names the field.
CREATE TABLE runtime_profiles (
    id       uuid   NOT NULL PRIMARY KEY,
    app_id   uuid   NOT NULL REFERENCES apps (id),
    name     text   COLLATE "C" NOT NULL,
    document json   NOT NULL,
    version  bigint NOT NULL,
    CONSTRAINT runtime_profiles_name_key UNIQUE (app_id, name)
);

-- Append-only revisions of a profile, numbered from 1, never changed.
CREATE TABLE profile_revisions (
    profile_id uuid        NOT NULL REFERENCES runtime_profiles (id),
    number     bigint      NOT NULL CHECK (number >= 1),
    document   json        NOT NULL,
    author     uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    reason     json        NOT NULL,
    CONSTRAINT profile_revisions_number_key PRIMARY KEY (profile_id, number)
);

-- Sealed secret values, one per (owner, name, revision); never deleted
-- except a changeset's, whose overrides are replaced whole. The key's
-- column order is the documented order of `all_secrets` (owner kind as
-- text, owner id, name, revision), so the key rotation's keyset paging is
-- one index walk. Rows are rewrapped in place by a master-key rotation.
CREATE TABLE secrets (
    owner_kind     text        COLLATE "C" NOT NULL CHECK (owner_kind IN ('profile', 'changeset')),
    owner_id       uuid        NOT NULL,
    name           text        COLLATE "C" NOT NULL,
    revision       bigint      NOT NULL CHECK (revision >= 0),
    app_id         uuid        NOT NULL REFERENCES apps (id),
    format_version smallint    NOT NULL CHECK (format_version BETWEEN 0 AND 255),
    key_id         text        COLLATE "C" NOT NULL,
    wrap_nonce     bytea       NOT NULL,
    wrapped_key    bytea       NOT NULL,
    value_nonce    bytea       NOT NULL,
    ciphertext     bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    CONSTRAINT secrets_name_key PRIMARY KEY (owner_kind, owner_id, name, revision)
);

-- Installation-wide settings the store keeps: `secrets_key_id`, the key id
-- of the master key every secret is wrapped with.
CREATE TABLE installation_meta (
    key   text COLLATE "C" NOT NULL PRIMARY KEY,
    value text NOT NULL
);

-- An app's environments, in `position` order. Names are unique per app;
-- the key is checked at the end of each statement (DEFERRABLE INITIALLY
-- IMMEDIATE), so one statement replacing the list may swap two names.
CREATE TABLE environments (
    id                 uuid    NOT NULL PRIMARY KEY,
    app_id             uuid    NOT NULL REFERENCES apps (id),
    name               text    COLLATE "C" NOT NULL,
    position           bigint  NOT NULL CHECK (position >= 0),
    is_canonical       boolean NOT NULL,
    runtime_profile_id uuid    REFERENCES runtime_profiles (id),
    CONSTRAINT environments_name_key UNIQUE (app_id, name) DEFERRABLE INITIALLY IMMEDIATE
);
-- An app's list, by position.
CREATE INDEX environments_by_position ON environments (app_id, position);

-- A changeset's profile overrides, in order (replaced whole).
CREATE TABLE changeset_overrides (
    changeset_id uuid   NOT NULL REFERENCES changesets (id),
    position     bigint NOT NULL CHECK (position >= 0),
    document     json   NOT NULL,
    CONSTRAINT changeset_overrides_position_key PRIMARY KEY (changeset_id, position)
);
