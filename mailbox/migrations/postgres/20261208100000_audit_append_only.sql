-- The audit log is append-only: no UPDATE or TRUNCATE, and DELETE only by the
-- audit retention job, which sets the transaction-local `renkei.audit_retention`
-- before deleting. Whoever can write the database can set it too (or drop the
-- trigger); the signed checkpoints outside the database and the signed cut
-- below are what expose that.

-- Where the retained chain starts: entries up to `seq` were removed by the
-- audit retention job; `hash` is the last removed entry's hash (the first
-- remaining entry's previous hash); `sig` is the audit key's signature.
CREATE TABLE audit_cut (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at   BIGINT NOT NULL,
    sig  TEXT NOT NULL
);
INSERT INTO audit_cut (id, seq, hash, at, sig)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '');

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('renkei.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
