-- Conman metadata store on Postgres, schema 8: ref intents (decision 0008),
-- the same tables as the SQLite store's schema 5.
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
    id           uuid        NOT NULL PRIMARY KEY,
    app_id       uuid        NOT NULL REFERENCES apps (id),
    operation    text        NOT NULL,
    owner_type   text        NOT NULL,
    owner_id     text        NOT NULL,
    moves        json        NOT NULL,
    created_at   timestamptz NOT NULL,
    completed_at timestamptz,
    outcome      text CHECK (outcome IN ('applied', 'abandoned')),
    CHECK ((completed_at IS NULL) = (outcome IS NULL))
);

CREATE INDEX intents_pending ON intents (created_at, id) WHERE completed_at IS NULL;

CREATE TABLE intent_claims (
    app_id     uuid NOT NULL,
    ref_name   text COLLATE "C" NOT NULL,
    intent_id  uuid REFERENCES intents (id),
    last_value text,
    PRIMARY KEY (app_id, ref_name)
);

CREATE INDEX intent_claims_by_intent ON intent_claims (intent_id);
