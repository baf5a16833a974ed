-- Facilities, accounts and sign-in sessions. Times are Unix seconds (UTC),
-- except in sessions, where they are Unix milliseconds.
CREATE TABLE facilities (
    code            TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    address         TEXT NOT NULL,
    phone           TEXT NOT NULL,
    departments     TEXT NOT NULL,            -- JSON array of strings
    publish_details BOOLEAN NOT NULL,
    active_from     TEXT NOT NULL,            -- YYYY-MM-DD
    active_until    TEXT,
    approval_ref    TEXT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY NOT NULL,
    role                 TEXT NOT NULL CHECK (role IN ('doctor', 'clerk', 'liaison', 'operator')),
    facility_code        TEXT REFERENCES facilities (code),
    name                 TEXT NOT NULL,
    email                TEXT,
    email_verified       BOOLEAN NOT NULL,
    password_hash        TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    locked               BOOLEAN NOT NULL,
    failed_attempts      BIGINT NOT NULL,
    has_second_factor    BOOLEAN NOT NULL,
    created_at           BIGINT NOT NULL,
    CHECK ((role = 'operator') = (facility_code IS NULL))
);
CREATE INDEX accounts_by_facility ON accounts (facility_code);

CREATE TABLE sessions (
    token_hash  BLOB PRIMARY KEY NOT NULL,    -- SHA-256 of the cookie value
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    remote_addr TEXT
);
CREATE INDEX sessions_by_account ON sessions (account_id);
