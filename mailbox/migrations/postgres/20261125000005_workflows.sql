-- Threads (request workflows), bookable resources, notifications, e-mail
-- confirmation and usage figures. Clear metadata only: what a request asks,
-- reports or proposes lives in its sealed step envelopes. Times are Unix
-- milliseconds.

-- One thread per reading request, referral, information share, booking or care
-- pathway. Every step is an envelope with thread_id set; `version` guards each
-- advance, so two people acting at once cannot both move the same state.
CREATE TABLE threads (
    id                 TEXT PRIMARY KEY NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('reading_request', 'referral', 'share', 'booking', 'pathway')),
    state              TEXT NOT NULL,
    version            BIGINT NOT NULL,
    opener_id          TEXT NOT NULL REFERENCES envelopes (id) ON DELETE CASCADE,
    requester_id       TEXT NOT NULL REFERENCES accounts (id),
    requester_facility TEXT,
    target             TEXT NOT NULL,          -- principal: 'account:ID' or 'liaison:CODE'
    target_facility    TEXT NOT NULL,
    claimed_by         TEXT,                   -- liaison holding a shared-inbox item
    assignee_id        TEXT,                   -- doctor it was handed to
    reader_id          TEXT,                   -- doctor who reported (statistics)
    urgency            TEXT NOT NULL CHECK (urgency IN ('routine', 'urgent')),
    wanted_by          TEXT,                   -- YYYY-MM-DD
    resource_id        TEXT,                   -- booking
    booked_slot        TEXT,                   -- booking: the confirmed or proposed time
    template           TEXT,                   -- pathway
    stage              BIGINT,                 -- pathway: index of the stage to fill next
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    delivered_at       BIGINT,
    opened_at          BIGINT,
    opened_by          TEXT,
    closed_at          BIGINT,                 -- reported, replied, declined, withdrawn, cancelled, completed
    escalated_at       BIGINT
);
CREATE INDEX threads_by_target_facility ON threads (target_facility, state);
CREATE INDEX threads_by_requester_facility ON threads (requester_facility, state);
CREATE INDEX threads_by_reader ON threads (reader_id, closed_at);

ALTER TABLE envelopes ADD COLUMN thread_id TEXT;
ALTER TABLE envelopes ADD COLUMN step TEXT;
ALTER TABLE envelopes ADD COLUMN thread_seq BIGINT;          -- the thread's version after this step
CREATE INDEX envelopes_by_thread ON envelopes (thread_id, thread_seq);

-- Equipment and clinic slots a facility takes bookings for.
CREATE TABLE resources (
    id            TEXT PRIMARY KEY NOT NULL,
    facility_code TEXT NOT NULL REFERENCES facilities (code),
    name          TEXT NOT NULL,
    opening_hours TEXT NOT NULL,
    active        BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX resources_by_facility ON resources (facility_code);

-- Hours an unopened item waits before the facility's liaisons and clerks are told.
ALTER TABLE facilities ADD COLUMN escalation_hours BIGINT NOT NULL DEFAULT 4;

-- Notification preference and a pending address waiting for its confirmation link.
ALTER TABLE accounts ADD COLUMN notify_mode TEXT NOT NULL DEFAULT 'immediate'
    CHECK (notify_mode IN ('immediate', 'digest', 'off'));
ALTER TABLE accounts ADD COLUMN pending_email TEXT;
ALTER TABLE accounts ADD COLUMN email_token_hash BYTEA;
ALTER TABLE accounts ADD COLUMN email_token_expires BIGINT;
ALTER TABLE accounts ADD COLUMN last_sign_in_at BIGINT;

-- Outgoing notification mails. `dedup_key` makes queuing idempotent (a
-- redelivery after a crash queues nothing twice). Never holds patient data: the
-- text is built at send time from the reason, the facility and the link.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY NOT NULL,
    dedup_key       TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    reason          TEXT NOT NULL,
    kind            TEXT,                      -- the item's kind, named in the text
    thread_id       TEXT,
    envelope_id     TEXT,
    facility_code   TEXT,                      -- the sending facility named in the text
    to_address      TEXT,                      -- set only for address confirmations
    secret          TEXT,                      -- confirmation token, cleared once sent
    digest          BOOLEAN NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'dropped')),
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX notifications_due ON notifications (state, digest, next_attempt_at);
CREATE INDEX notifications_by_account ON notifications (account_id, state);
CREATE INDEX threads_unopened ON threads (opened_at, escalated_at, delivered_at);
