//! Stored `Idempotency-Key` answers: the row a submission writes in its own
//! transaction, so a retry with the same key (per account) is answered again
//! instead of stored twice. Kept for [`KEEP_MILLIS`]; older rows are ignored
//! and swept.

/// How long a key is remembered: 24 hours.
pub const KEEP_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// One remembered answer. Only what answering again needs: no request body,
/// no patient data (the response holds IDs).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub account_id: String,
    /// SHA-256 of the key.
    pub key_hash: Vec<u8>,
    /// SHA-256 of the operation and the request body.
    pub request_hash: Vec<u8>,
    pub status: i64,
    /// The response body (JSON).
    pub response: Vec<u8>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Inserts the row; a row of the same key replaces it only once expired
/// (`$7`: the oldest time still kept), so no row is changed while the key
/// is live and the submission is refused as a conflict.
pub(super) const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency_keys \
    (account_id, key_hash, request_hash, status, response, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (account_id, key_hash) DO UPDATE SET request_hash = excluded.request_hash, \
    status = excluded.status, response = excluded.response, created_at = excluded.created_at \
    WHERE idempotency_keys.created_at < $7";
pub(super) const IDEMPOTENCY_ANSWER: &str = "SELECT account_id, key_hash, request_hash, status, \
    response, created_at FROM idempotency_keys WHERE account_id = $1 AND key_hash = $2 AND created_at >= $3";
pub(super) const PURGE_IDEMPOTENCY: &str = "DELETE FROM idempotency_keys WHERE created_at < $1";
