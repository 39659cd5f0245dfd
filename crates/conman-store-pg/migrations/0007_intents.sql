-- Conman metadata store on Postgres, schema 7: ref intents (decision 0008),
-- the same tables as the SQLite store's schema 5.
--
-- An intent is the promise, recorded with an audited change, that some git
-- refs move from their old to their new values; `moves` is its JSON list of
-- {name, from, to}. It is pending while `completed_at` is NULL. Each pending
-- intent claims its refs in `intent_claims`, whose key refuses a second
-- claim on the same (app, ref); completing an intent deletes its claims.
-- Completed intents stay as history.

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
    app_id    uuid NOT NULL,
    ref_name  text COLLATE "C" NOT NULL,
    intent_id uuid NOT NULL REFERENCES intents (id),
    PRIMARY KEY (app_id, ref_name)
);

CREATE INDEX intent_claims_by_intent ON intent_claims (intent_id);
