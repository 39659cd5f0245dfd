-- Conman metadata store on Postgres, schema 7: the secrets' primary key is
-- named after the last column of the key, as every other key is, so a
-- duplicate secret is `taken` on `revision` on every store (the field name
-- comes from the constraint name; see codec.rs `unique_conflict`).
ALTER TABLE secrets RENAME CONSTRAINT secrets_name_key TO secrets_revision_key;
