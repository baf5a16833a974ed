-- Idempotency-Key answers: a retried submission with the same key (per
-- account) gets the first answer and stores nothing new. Written in the very
-- transaction that stores the envelope, so neither stands without the other.
-- Only what answering again needs: the key and the request as SHA-256, the
-- status and the response body (IDs only, never patient data). Kept 24 hours.
CREATE TABLE idempotency_keys (
    account_id   TEXT NOT NULL,
    key_hash     BYTEA NOT NULL,      -- SHA-256 of the key
    request_hash BYTEA NOT NULL,      -- SHA-256 of the operation and request body
    status       BIGINT NOT NULL,
    response     BYTEA NOT NULL,      -- the JSON answered
    created_at   BIGINT NOT NULL,  -- Unix milliseconds
    PRIMARY KEY (account_id, key_hash)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
