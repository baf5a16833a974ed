-- The audit log is append-only: no UPDATE, and DELETE only by the audit
-- retention job, which opens the one-row door below inside its own
-- transaction and closes it before committing. Whoever can write the database
-- can open the same door (or drop these triggers); the signed checkpoints
-- outside the database and the signed cut below are what expose that.

CREATE TABLE audit_retention_door (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    open INTEGER NOT NULL DEFAULT 0
);
INSERT INTO audit_retention_door (id, open) VALUES (1, 0);

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

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN (SELECT open FROM audit_retention_door WHERE id = 1) IS NOT 1
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: only the audit retention job removes entries');
END;
