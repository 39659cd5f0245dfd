-- Conman metadata store, schema 5: ref intents (decision 0008).
-- Conventions as in 0001: ids and timestamps are text.
--
-- An intent is the promise, recorded with an audited change, that some git
-- refs move from their old to their new values; `moves` is its JSON list of
-- {name, from, to}. It is pending while `completed_at` is NULL. Completed
-- intents stay as history.
--
-- `intent_claims` holds one row per (app, ref) any intent named: the pending
-- intent claiming it (`intent_id`, NULL when free) and the value the last
-- applied intent left it at (`last_value`: a sha, '' when the ref was
-- deleted, NULL when unknown — never applied, or the last intent was
-- abandoned). Recording an intent refuses a claimed ref and a move whose
-- `from` differs from a known `last_value`; completing frees the claim and
-- sets `last_value` (applied: the move's `to`; abandoned: NULL). Rows are
-- never deleted.

CREATE TABLE intents (
    id           TEXT NOT NULL PRIMARY KEY,
    app_id       TEXT NOT NULL REFERENCES apps (id),
    operation    TEXT NOT NULL,
    owner_type   TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    moves        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    completed_at TEXT,
    outcome      TEXT CHECK (outcome IN ('applied', 'abandoned')),
    CHECK ((completed_at IS NULL) = (outcome IS NULL))
) STRICT;

CREATE INDEX intents_pending ON intents (created_at, id) WHERE completed_at IS NULL;

CREATE TABLE intent_claims (
    app_id     TEXT NOT NULL,
    ref_name   TEXT NOT NULL,
    intent_id  TEXT REFERENCES intents (id),
    last_value TEXT,
    PRIMARY KEY (app_id, ref_name)
) STRICT;

CREATE INDEX intent_claims_by_intent ON intent_claims (intent_id);
