-- Conman metadata store on Postgres, schema 4: the audit chain's tail, read
-- under the audit advisory lock by the very statement that appends, so a
-- writer holds the lock across that statement's answer and its commit
-- rather than across a lock statement, a tail read, an insert and the
-- commit. No table changes.
--
-- `audit_tail_locked(lock_class)` takes `pg_advisory_xact_lock(lock_class,
-- <oid of this schema's audit table>)` — the lock described in the crate
-- docs — and then answers the last record's `seq` and `hash` (no row while
-- the chain is empty). It is VOLATILE PL/pgSQL, so in READ COMMITTED the
-- query after the lock runs on a snapshot taken once the lock is granted:
-- it sees the record the previous holder committed, although the calling
-- statement's own snapshot is older. Names resolve through the caller's
-- `search_path`, as every other object of the store.
CREATE FUNCTION audit_tail_locked(lock_class integer) RETURNS TABLE (seq bigint, hash text)
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, 'audit'::regclass::oid::int4);
    RETURN QUERY SELECT a.seq, a.hash FROM audit a ORDER BY a.seq DESC LIMIT 1;
END;
$$;
