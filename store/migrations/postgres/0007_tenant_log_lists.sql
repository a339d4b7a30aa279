-- Evidence that cannot be quietly rewritten (issue 16, item 4).
--
-- The signed list of every tenant log: a note, signed with the ledger key by the same 1 s tick
-- that signs checkpoints, naming each tenant with its newest checkpoint's size and root. A
-- tenant log that is deleted, or cut back together with its checkpoints, is still named by
-- the newest list, and `meshos audit verify` fails on it. `seq` repeats the note's sequence
-- number (the note is what counts); a new list is written only when a log grew or appeared.
CREATE TABLE tenant_log_lists (
    seq BIGINT PRIMARY KEY,
    note TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- Checkpoints and lists are append-only: the application never updates or deletes them, and
-- these triggers refuse it from anyone else who goes through the database. They are not the
-- protection (whoever can drop a trigger can drop rows): the audit is. They make the
-- invariant explicit and stop a cleanup script from destroying evidence by accident.
CREATE FUNCTION meshos_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only evidence', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION meshos_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION meshos_append_only();
CREATE TRIGGER tenant_log_lists_append_only BEFORE UPDATE OR DELETE ON tenant_log_lists
    FOR EACH ROW EXECUTE FUNCTION meshos_append_only();
CREATE TRIGGER tenant_log_lists_no_truncate BEFORE TRUNCATE ON tenant_log_lists
    FOR EACH STATEMENT EXECUTE FUNCTION meshos_append_only();
