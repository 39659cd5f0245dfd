-- Conman metadata store, schema 5: ref intents (decision 0008).
-- Conventions as in 0001: ids and timestamps are text.
--
-- An intent is the promise, recorded with an audited change, that some git
-- refs move from their old to their new values; `moves` is its JSON list of
-- {name, from, to}. It is pending while `completed_at` is NULL. Each pending
-- intent claims its refs in `intent_claims`, whose key refuses a second
-- claim on the same (app, ref); completing an intent deletes its claims.
-- Completed intents stay as history.

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
    app_id    TEXT NOT NULL,
    ref_name  TEXT NOT NULL,
    intent_id TEXT NOT NULL REFERENCES intents (id),
    PRIMARY KEY (app_id, ref_name)
) STRICT;

CREATE INDEX intent_claims_by_intent ON intent_claims (intent_id);
