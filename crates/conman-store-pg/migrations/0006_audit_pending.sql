-- Conman metadata store on Postgres, schema 6: audit records are staged in
-- the unit's transaction and chained by the unit's last message, so the
-- audit advisory lock is held only inside the server, from the chaining
-- statement to the end of the commit, never across a client round trip.
--
-- A unit of work inserts its entries (with the content the core hashes)
-- into `audit_pending` as it applies its mutations, taking no lock. Its
-- final message is one simple query, `SELECT audit_chain_pending(...);
-- COMMIT`: the function takes `pg_advisory_xact_lock(lock_class, <oid of
-- this schema's audit table>)`, moves the transaction's own pending rows
-- into `audit` chained after the last record, and the COMMIT in the same
-- message releases the lock. Before, the lock was held from the appending
-- statement's answer until the client's separate COMMIT arrived: a round
-- trip and a client wake-up per unit, which on a busy host bounded every
-- process's writes together.
--
-- `audit_pending` is UNLOGGED and never holds a committed row: a unit
-- deletes what it staged in the same transaction that staged it, so a
-- crash (which empties unlogged tables) loses nothing. Rows carry their
-- transaction id, so a unit only ever chains its own entries.
--
-- `audit_tail_locked` (schema 4) is kept: a process of the previous version
-- still running during a rolling upgrade appends through it, under the
-- same lock, and the chain stays one.
CREATE UNLOGGED TABLE audit_pending (
    xact         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    n            bigint      NOT NULL,
    id           uuid        NOT NULL,
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
    content      text        NOT NULL,
    PRIMARY KEY (xact, n)
);

-- Chains the calling transaction's pending entries (in `n` order) after the
-- last audit record: `seq` = last + 1, `prev_hash` = the last record's hash
-- (`genesis` for the first record ever), `hash` = hex SHA-256 of
-- `prev_hash`, a newline and the entry's content — the core's
-- `chain_hash`. Raises (aborting the unit) unless exactly `expected`
-- records were chained. VOLATILE PL/pgSQL, so in READ COMMITTED each
-- statement after the lock runs on a snapshot taken once the lock is
-- granted and sees the record the previous holder committed. A loop of
-- plain statements (whose plans PL/pgSQL keeps) rather than one recursive
-- query: a unit stages one to a few entries, and the lock is held while
-- this runs.
CREATE FUNCTION audit_chain_pending(lock_class integer, genesis text, expected bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    last_seq  bigint;
    last_hash text;
    entry     audit_pending;
    chained   bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, 'audit'::regclass::oid::int4);
    SELECT a.seq, a.hash INTO last_seq, last_hash FROM audit a ORDER BY a.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        last_seq := 0;
        last_hash := genesis;
    END IF;
    FOR entry IN SELECT * FROM audit_pending p WHERE p.xact = pg_current_xact_id() ORDER BY p.n LOOP
        INSERT INTO audit (seq, id, occurred_at, actor_id, app_id, entity_type, entity_id, action, before_state,
                           after_state, git_sha, request, prev_hash, hash)
        VALUES (last_seq + 1, entry.id, entry.occurred_at, entry.actor_id, entry.app_id, entry.entity_type,
                entry.entity_id, entry.action, entry.before_state, entry.after_state, entry.git_sha, entry.request,
                last_hash, encode(sha256(convert_to(last_hash || chr(10) || entry.content, 'UTF8')), 'hex'))
        RETURNING audit.seq, audit.hash INTO last_seq, last_hash;
        chained := chained + 1;
    END LOOP;
    DELETE FROM audit_pending p WHERE p.xact = pg_current_xact_id();
    IF chained <> expected THEN
        RAISE EXCEPTION 'audit_chain_pending chained % records where the unit staged %', chained, expected;
    END IF;
    RETURN chained;
END;
$$;
