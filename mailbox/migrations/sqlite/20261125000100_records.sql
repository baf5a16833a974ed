-- Records: the hash-chained audit log, and what retention and patient deletion
-- requests removed. Neither holds patient data: IDs, roles, actions, sizes.

CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY NOT NULL,   -- 1, 2, 3 … without gaps
    at          BIGINT NOT NULL,               -- Unix milliseconds
    actor       TEXT,                          -- account ID, 'cli' or 'system'
    role        TEXT,
    facility    TEXT,
    action      TEXT NOT NULL,
    item        TEXT,                          -- envelope, thread or account ID
    detail      TEXT,                          -- fixed words and counts only
    remote_addr TEXT,
    prev_hash   TEXT NOT NULL,                 -- hex SHA-256 of the entry before
    hash        TEXT NOT NULL                  -- hex SHA-256 over prev_hash and the fields
);
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE INDEX audit_log_by_facility ON audit_log (facility, at);

-- The chain's head: appenders update this row first, which serializes them.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- One row per deleted item: IDs and sizes only.
CREATE TABLE deletion_log (
    run_id           TEXT NOT NULL,
    reason           TEXT NOT NULL CHECK (reason IN ('retention', 'patient_request')),
    envelope_id      TEXT NOT NULL,
    kind             TEXT NOT NULL,
    sender_facility  TEXT,
    created_at       BIGINT NOT NULL,
    body_size        BIGINT NOT NULL,
    attachments      BIGINT NOT NULL,
    attachment_bytes BIGINT NOT NULL,
    deleted_at       BIGINT NOT NULL,
    PRIMARY KEY (run_id, envelope_id)
);
