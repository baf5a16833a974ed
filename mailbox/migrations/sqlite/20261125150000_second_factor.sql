-- Two-factor sign-in (issue 9). Times are Unix seconds.

-- TOTP (RFC 6238). Secrets are sealed (AES-256-GCM) under the server's
-- second-factor key, which lives outside the database like the blind-index
-- key: a stolen database alone does not give the codes. `pending_secret` is an
-- enrolment not yet confirmed by a first code; `last_step` is the highest
-- 30-second step accepted, so each code is used once.
CREATE TABLE totp_secrets (
    account_id     TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    sealed_secret  BLOB,
    pending_secret BLOB,
    last_step      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- One-time recovery codes: SHA-256 of 80-bit random codes; used ones keep
-- their row with `used_at` set.
CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

-- App passwords for mail clients: generated, shown once, stored as SHA-256
-- (they carry about 100 random bits). `locked_key` is the person's OpenPGP
-- key locked under this app password (Argon2 S2K), so a mail client's
-- session can open items; operators have none. Revoking deletes the row.
CREATE TABLE app_passwords (
    id             TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    secret_hash    BLOB NOT NULL UNIQUE,
    locked_key     BLOB,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT,
    last_used_from TEXT
);
CREATE INDEX app_passwords_by_account ON app_passwords (account_id);

-- Per-facility override of the network-wide second-factor requirement.
CREATE TABLE facility_second_factor (
    facility_code TEXT PRIMARY KEY NOT NULL REFERENCES facilities (code),
    required      BOOLEAN NOT NULL
);

-- Security keys and passkeys (WebAuthn). `passkey` is webauthn-rs's Passkey
-- as JSON: the credential ID, its public key and signature counter; nothing
-- secret.
CREATE TABLE webauthn_credentials (
    id           TEXT PRIMARY KEY NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    passkey      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_by_account ON webauthn_credentials (account_id);
