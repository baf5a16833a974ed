-- Keys, grants and sealed envelopes. Nothing here is readable without a user's
-- password (or the offline recovery key): secret keys are locked or sealed, and
-- envelope bodies and attachment blobs are OpenPGP messages.

-- Removed members keep their row (envelopes refer to them) but lose every grant.
ALTER TABLE accounts ADD COLUMN removed BOOLEAN NOT NULL DEFAULT FALSE;

-- The public half of the network's offline recovery key.
CREATE TABLE recovery_certificate (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    cert       BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE account_keys (
    account_id      TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id),
    fingerprint     TEXT NOT NULL UNIQUE,
    cert            BYTEA NOT NULL,
    locked_key      BYTEA NOT NULL,      -- secret key under an Argon2id-derived key
    recovery_sealed BYTEA,               -- secret key sealed to the recovery certificate
    created_at      BIGINT NOT NULL
);

-- Certificates replaced by a reset without the recovery key: old signatures still verify.
CREATE TABLE retired_account_keys (
    fingerprint TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    cert        BYTEA NOT NULL,
    retired_at  BIGINT NOT NULL
);

CREATE TABLE facility_keys (
    facility_code   TEXT NOT NULL REFERENCES facilities (code),
    role            TEXT NOT NULL CHECK (role IN ('liaison', 'oversight')),
    fingerprint     TEXT NOT NULL UNIQUE,
    cert            BYTEA NOT NULL,
    recovery_sealed BYTEA,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (facility_code, role)
);

-- A member's copy of a facility key, sealed to the member's certificate.
-- sealed_key IS NULL: pending until another holder signs in or the operator
-- completes it with the recovery key.
CREATE TABLE key_grants (
    facility_code TEXT NOT NULL,
    role          TEXT NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    sealed_key    BYTEA,
    created_at    BIGINT NOT NULL,
    granted_at    BIGINT,
    PRIMARY KEY (facility_code, role, account_id)
);
CREATE INDEX key_grants_by_account ON key_grants (account_id);

CREATE TABLE envelopes (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    sender_id       TEXT NOT NULL REFERENCES accounts (id),
    sender_facility TEXT,
    created_at      BIGINT NOT NULL,
    body            BYTEA NOT NULL,     -- key slots + SEIPDv2 body
    body_size       BIGINT NOT NULL,
    blind_index     BYTEA               -- HMAC(facility code + patient ID); key kept outside the database
);
CREATE INDEX envelopes_by_blind_index ON envelopes (blind_index);

-- Who holds a key slot: 'account:ID', 'liaison:CODE' or 'oversight:CODE'.
CREATE TABLE envelope_slots (
    envelope_id TEXT NOT NULL REFERENCES envelopes (id) ON DELETE CASCADE,
    principal   TEXT NOT NULL,
    added_by    TEXT,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (envelope_id, principal)
);
CREATE INDEX envelope_slots_by_principal ON envelope_slots (principal);

CREATE TABLE attachments (
    envelope_id TEXT NOT NULL REFERENCES envelopes (id) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    blob_key    TEXT NOT NULL,
    sealed_size BIGINT NOT NULL,
    PRIMARY KEY (envelope_id, idx)
);
