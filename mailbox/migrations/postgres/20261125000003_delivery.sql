-- The durable delivery queue and the per-principal mailbox entries it produces.
-- A submission writes its queue row in the same transaction as the envelope;
-- delivery writes all mailbox entries and marks the row done in one transaction,
-- and entries are keyed (envelope, principal), so a redelivery after a crash adds
-- nothing twice. Times are Unix milliseconds.
CREATE TABLE delivery_queue (
    envelope_id     TEXT PRIMARY KEY NOT NULL REFERENCES envelopes (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX delivery_queue_due ON delivery_queue (state, next_attempt_at);

CREATE TABLE mailbox_entries (
    envelope_id  TEXT NOT NULL REFERENCES envelopes (id) ON DELETE CASCADE,
    principal    TEXT NOT NULL,            -- 'account:ID' or 'liaison:CODE'
    folder       TEXT NOT NULL CHECK (folder IN ('inbox', 'sent')),
    seen         BOOLEAN NOT NULL,
    flagged      BOOLEAN NOT NULL,
    archived     BOOLEAN NOT NULL,
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (envelope_id, principal)
);
CREATE INDEX mailbox_entries_by_principal ON mailbox_entries (principal, folder, delivered_at);
