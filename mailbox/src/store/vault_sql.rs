//! Statements of [`VaultStore`] and its implementation for [`SqlStore`].

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::{Dialect, Query, SqlStore, expect_one};
use super::idempotency::{IDEMPOTENCY_ANSWER, IdempotencyRow, PURGE_IDEMPOTENCY};
use super::queue::MailboxEntryRow;
use super::records::AuditRow;
use super::thread::ThreadChange;
use super::vault::{
    AccountKeyRow, AttachmentIntegrity, AttachmentRow, EnvelopeMeta, EnvelopeRow, FacilityKeyRow,
    GrantRow, IntegrityRow, SlotRow, VaultStore,
};
use super::{StoreResult, list, list_from};
use crate::account::AccountId;
use crate::clock;
use crate::facility::FacilityCode;

pub(super) const RECOVERY_CERT: &str = "SELECT cert FROM recovery_certificate WHERE id = 1";
pub(super) const INSERT_RECOVERY_CERT: &str =
    "INSERT INTO recovery_certificate (id, cert, created_at) VALUES (1, $1, $2)";

pub(super) const INSERT_ACCOUNT_KEY: &str = "INSERT INTO account_keys \
    (account_id, fingerprint, cert, locked_key, recovery_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const ACCOUNT_KEY: &str = "SELECT account_id, fingerprint, cert, locked_key, recovery_sealed, \
    created_at FROM account_keys WHERE account_id = $1";
pub(super) const CERT_BY_FINGERPRINT: &str = "SELECT account_id, cert FROM account_keys WHERE fingerprint = $1 \
    UNION ALL SELECT account_id, cert FROM retired_account_keys WHERE fingerprint = $1";
pub(super) const RETIRE_ACCOUNT_KEY: &str = "INSERT INTO retired_account_keys (fingerprint, account_id, cert, retired_at) \
    SELECT fingerprint, account_id, cert, $2 FROM account_keys WHERE account_id = $1";
pub(super) const REPLACE_ACCOUNT_KEY: &str = "UPDATE account_keys SET fingerprint = $2, cert = $3, locked_key = $4, \
    recovery_sealed = $5, created_at = $6 WHERE account_id = $1";
pub(super) const SET_LOCKED_KEY: &str =
    "UPDATE account_keys SET locked_key = $2 WHERE account_id = $1";
pub(super) const SET_ACCOUNT_RECOVERY: &str =
    "UPDATE account_keys SET recovery_sealed = $2 WHERE account_id = $1";

pub(super) const INSERT_FACILITY_KEY: &str = "INSERT INTO facility_keys \
    (facility_code, role, fingerprint, cert, recovery_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const FACILITY_KEY: &str = "SELECT facility_code, role, fingerprint, cert, recovery_sealed, created_at \
    FROM facility_keys WHERE facility_code = $1 AND role = $2";
pub(super) const SET_FACILITY_RECOVERY: &str =
    "UPDATE facility_keys SET recovery_sealed = $3 WHERE facility_code = $1 AND role = $2";

pub(super) const INSERT_GRANT: &str = "INSERT INTO key_grants \
    (facility_code, role, account_id, sealed_key, created_at, granted_at) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (facility_code, role, account_id) DO NOTHING";
const GRANT_COLUMNS: &str = "facility_code, role, account_id, sealed_key, created_at, granted_at";
pub(super) fn grants_of() -> String {
    format!(
        "SELECT {GRANT_COLUMNS} FROM key_grants WHERE account_id = $1 ORDER BY facility_code, role"
    )
}
pub(super) fn pending_grants() -> String {
    format!(
        "SELECT {GRANT_COLUMNS} FROM key_grants WHERE sealed_key IS NULL ORDER BY facility_code, role, account_id"
    )
}
pub(super) fn pending_grants_of() -> String {
    format!(
        "SELECT {GRANT_COLUMNS} FROM key_grants WHERE sealed_key IS NULL AND facility_code = $1 \
         ORDER BY role, account_id"
    )
}
pub(super) const COMPLETE_GRANT: &str = "UPDATE key_grants SET sealed_key = $4, granted_at = $5 \
    WHERE facility_code = $1 AND role = $2 AND account_id = $3";
pub(super) const DELETE_GRANTS_OF: &str = "DELETE FROM key_grants WHERE account_id = $1";
pub(super) const SET_REMOVED: &str =
    "UPDATE accounts SET removed = TRUE, locked = TRUE WHERE id = $1";

pub(super) const INSERT_ENVELOPE: &str = "INSERT INTO envelopes \
    (id, kind, sender_id, sender_facility, created_at, body, body_size, blind_index, \
     consent_obtained_on, consent_method, consent_obtained_by, thread_id, step, thread_seq, \
     consent_given_by, consent_relation) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
pub(super) const INSERT_SLOT: &str = "INSERT INTO envelope_slots (envelope_id, principal, added_by, added_at) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (envelope_id, principal) DO NOTHING";
pub(super) const INSERT_ATTACHMENT: &str =
    "INSERT INTO attachments (envelope_id, idx, blob_key, sealed_size) VALUES ($1, $2, $3, $4)";
pub(super) const ENVELOPE: &str = "SELECT id, kind, sender_id, sender_facility, created_at, body, body_size, \
    blind_index, consent_obtained_on, consent_method, consent_obtained_by, thread_id, step, thread_seq, \
    consent_given_by, consent_relation FROM envelopes WHERE id = $1";
/// The clear metadata only: delivery never needs the sealed body.
pub(super) const ENVELOPE_HEAD: &str = "SELECT id, kind, sender_id, sender_facility, created_at, \
    substr(body, 1, 0) AS body, body_size, blind_index, consent_obtained_on, consent_method, \
    consent_obtained_by, thread_id, step, thread_seq, consent_given_by, consent_relation \
    FROM envelopes WHERE id = $1";
pub(super) const SLOTS: &str = "SELECT envelope_id, principal, added_by, added_at FROM envelope_slots \
    WHERE envelope_id = $1 ORDER BY added_at, principal";
pub(super) const ATTACHMENTS: &str = "SELECT envelope_id, idx, blob_key, sealed_size FROM attachments \
    WHERE envelope_id = $1 ORDER BY idx";
pub(super) const ATTACHMENT: &str = "SELECT envelope_id, idx, blob_key, sealed_size FROM attachments \
    WHERE envelope_id = $1 AND idx = $2";
pub(super) const INTEGRITY: &str = "SELECT idx, integrity, integrity_at FROM attachments \
    WHERE envelope_id = $1 ORDER BY idx";
pub(super) const INTEGRITY_OF: &str = "SELECT idx, integrity, integrity_at FROM attachments \
    WHERE envelope_id = $1 AND idx = $2";
/// Damaged is sticky, and set once.
pub(super) const MARK_DAMAGED: &str = "UPDATE attachments SET integrity = 'damaged', \
    integrity_at = $3 WHERE envelope_id = $1 AND idx = $2 AND integrity <> 'damaged'";
pub(super) const MARK_VERIFIED: &str = "UPDATE attachments SET integrity = 'verified', \
    integrity_at = $3 WHERE envelope_id = $1 AND idx = $2 AND integrity = 'unknown'";
pub(super) const ENVELOPE_EXISTS: &str = "SELECT COUNT(*) FROM envelopes WHERE id = $1";
pub(super) const SET_BODY: &str = "UPDATE envelopes SET body = $2, body_size = $3 WHERE id = $1";
pub(super) const ENVELOPES_FOR: &str = "SELECT e.id, e.kind, e.sender_id, e.sender_facility, e.created_at, \
    e.body_size FROM envelopes e JOIN envelope_slots s ON s.envelope_id = e.id WHERE s.principal = $1 \
    ORDER BY e.created_at DESC, e.id";

/// The key's columns in the order `INSERT_ACCOUNT_KEY` and
/// `REPLACE_ACCOUNT_KEY` both name them.
fn bind_account_key<'q, DB: Dialect>(q: Query<'q, DB>, r: &'q AccountKeyRow) -> Query<'q, DB>
where
    for<'r> String: Encode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Encode<'r, DB> + Type<DB>,
    for<'r> i64: Encode<'r, DB> + Type<DB>,
    for<'r> Option<Vec<u8>>: Encode<'r, DB>,
{
    q.bind(&r.account_id)
        .bind(&r.fingerprint)
        .bind(&r.cert)
        .bind(&r.locked_key)
        .bind(&r.recovery_sealed)
        .bind(r.created_at)
}

#[async_trait::async_trait]
impl<DB: Dialect> VaultStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'r> String: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> i64: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> bool: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<bool>: Encode<'q, DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn recovery_cert(&self) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar::<_, Vec<u8>>(RECOVERY_CERT)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn insert_recovery_cert(&self, cert: &[u8]) -> StoreResult<()> {
        sqlx::query(INSERT_RECOVERY_CERT)
            .bind(cert)
            .bind(clock::now_secs())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn insert_account_key(&self, r: &AccountKeyRow) -> StoreResult<()> {
        bind_account_key(sqlx::query(INSERT_ACCOUNT_KEY), r)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn account_key(&self, id: &AccountId) -> StoreResult<Option<AccountKeyRow>> {
        Ok(sqlx::query_as::<_, AccountKeyRow>(ACCOUNT_KEY)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn slot_certs(
        &self,
        accounts: &[&str],
        facilities: &[&str],
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        // Principal texts as `keyring::Principal` spells them; a facility
        // key's role is its principal prefix (`liaison`, `oversight`).
        // An empty side keeps a never-true list so the statement stays one.
        let (a, f) = (accounts.len().max(1), facilities.len().max(1));
        let sql = format!(
            "SELECT 'account:' || account_id, cert FROM account_keys \
             WHERE account_id IN ({}) UNION ALL \
             SELECT role || ':' || facility_code, cert FROM facility_keys \
             WHERE facility_code IN ({})",
            list(a),
            list_from(a + 1, f)
        );
        let mut q = sqlx::query_as::<_, (String, Vec<u8>)>(&sql);
        for id in accounts {
            q = q.bind(*id);
        }
        if accounts.is_empty() {
            q = q.bind("");
        }
        for code in facilities {
            q = q.bind(*code);
        }
        if facilities.is_empty() {
            q = q.bind("");
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    async fn cert_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        Ok(sqlx::query_as::<_, (String, Vec<u8>)>(CERT_BY_FINGERPRINT)
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn replace_account_key(&self, r: &AccountKeyRow) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(RETIRE_ACCOUNT_KEY)
            .bind(&r.account_id)
            .bind(clock::now_secs())
            .execute(&mut *tx)
            .await?;
        let done = bind_account_key(sqlx::query(REPLACE_ACCOUNT_KEY), r)
            .execute(&mut *tx)
            .await?;
        expect_one(DB::rows_affected(&done))?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_locked_key(&self, id: &AccountId, locked_key: &[u8]) -> StoreResult<()> {
        let done = sqlx::query(SET_LOCKED_KEY)
            .bind(id.as_str())
            .bind(locked_key)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn set_password_and_key(
        &self,
        id: &AccountId,
        digest: &crate::account::PasswordDigest,
        must_change: bool,
        locked_key: &[u8],
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(super::sql::SET_PASSWORD)
            .bind(id.as_str())
            .bind(&digest.0)
            .bind(must_change)
            .execute(&mut *tx)
            .await?;
        expect_one(DB::rows_affected(&done))?;
        let done = sqlx::query(SET_LOCKED_KEY)
            .bind(id.as_str())
            .bind(locked_key)
            .execute(&mut *tx)
            .await?;
        expect_one(DB::rows_affected(&done))?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_account_recovery_sealed(&self, id: &AccountId, sealed: &[u8]) -> StoreResult<()> {
        let done = sqlx::query(SET_ACCOUNT_RECOVERY)
            .bind(id.as_str())
            .bind(sealed)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn insert_facility_key(&self, r: &FacilityKeyRow) -> StoreResult<()> {
        sqlx::query(INSERT_FACILITY_KEY)
            .bind(&r.facility_code)
            .bind(&r.role)
            .bind(&r.fingerprint)
            .bind(&r.cert)
            .bind(&r.recovery_sealed)
            .bind(r.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn facility_key(
        &self,
        code: &FacilityCode,
        role: &str,
    ) -> StoreResult<Option<FacilityKeyRow>> {
        Ok(sqlx::query_as::<_, FacilityKeyRow>(FACILITY_KEY)
            .bind(code.as_str())
            .bind(role)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_facility_recovery_sealed(
        &self,
        code: &FacilityCode,
        role: &str,
        sealed: &[u8],
    ) -> StoreResult<()> {
        let done = sqlx::query(SET_FACILITY_RECOVERY)
            .bind(code.as_str())
            .bind(role)
            .bind(sealed)
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn insert_grant(&self, r: &GrantRow) -> StoreResult<()> {
        sqlx::query(INSERT_GRANT)
            .bind(&r.facility_code)
            .bind(&r.role)
            .bind(&r.account_id)
            .bind(&r.sealed_key)
            .bind(r.created_at)
            .bind(r.granted_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn grants_of(&self, id: &AccountId) -> StoreResult<Vec<GrantRow>> {
        Ok(sqlx::query_as::<_, GrantRow>(&grants_of())
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn pending_grants(&self, facility: Option<&FacilityCode>) -> StoreResult<Vec<GrantRow>> {
        Ok(match facility {
            Some(code) => {
                sqlx::query_as::<_, GrantRow>(&pending_grants_of())
                    .bind(code.as_str())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as::<_, GrantRow>(&pending_grants())
                    .fetch_all(&self.pool)
                    .await?
            }
        })
    }

    async fn complete_grant(
        &self,
        code: &str,
        role: &str,
        account: &str,
        sealed: &[u8],
        at: i64,
    ) -> StoreResult<()> {
        sqlx::query(COMPLETE_GRANT)
            .bind(code)
            .bind(role)
            .bind(account)
            .bind(sealed)
            .bind(at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn delete_grants_of(&self, id: &AccountId) -> StoreResult<u64> {
        let done = sqlx::query(DELETE_GRANTS_OF)
            .bind(id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn set_removed(&self, id: &AccountId) -> StoreResult<()> {
        let done = sqlx::query(SET_REMOVED)
            .bind(id.as_str())
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }

    async fn insert_envelope(
        &self,
        e: &EnvelopeRow,
        slots: &[SlotRow],
        attachments: &[AttachmentRow],
        thread: Option<&ThreadChange>,
        audit: &super::records::AuditRow,
        idempotency: Option<&IdempotencyRow>,
    ) -> StoreResult<()> {
        self.submit(e, slots, attachments, thread, audit, idempotency)
            .await
    }

    async fn idempotency_answer(
        &self,
        account_id: &str,
        key_hash: &[u8],
        since: i64,
    ) -> StoreResult<Option<IdempotencyRow>> {
        Ok(sqlx::query_as::<_, IdempotencyRow>(IDEMPOTENCY_ANSWER)
            .bind(account_id)
            .bind(key_hash)
            .bind(since)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn purge_idempotency_keys(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query(PURGE_IDEMPOTENCY)
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn envelope_head(&self, id: &str) -> StoreResult<Option<EnvelopeRow>> {
        Ok(sqlx::query_as::<_, EnvelopeRow>(ENVELOPE_HEAD)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn envelope(&self, id: &str) -> StoreResult<Option<EnvelopeRow>> {
        Ok(sqlx::query_as::<_, EnvelopeRow>(ENVELOPE)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn envelope_slots(&self, id: &str) -> StoreResult<Vec<SlotRow>> {
        Ok(sqlx::query_as::<_, SlotRow>(SLOTS)
            .bind(id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn envelopes_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<EnvelopeRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id, kind, sender_id, sender_facility, created_at, body, body_size, \
                 blind_index, consent_obtained_on, consent_method, consent_obtained_by, \
                 thread_id, step, thread_seq, consent_given_by, consent_relation \
                 FROM envelopes WHERE id IN ({})",
                list(chunk.len())
            );
            let mut q = sqlx::query_as::<_, EnvelopeRow>(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    async fn slots_of(&self, ids: &[&str]) -> StoreResult<Vec<SlotRow>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT envelope_id, principal, added_by, added_at FROM envelope_slots \
                 WHERE envelope_id IN ({})",
                list(chunk.len())
            );
            let mut q = sqlx::query_as::<_, SlotRow>(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    async fn attachments(&self, id: &str) -> StoreResult<Vec<AttachmentRow>> {
        Ok(sqlx::query_as::<_, AttachmentRow>(ATTACHMENTS)
            .bind(id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn attachment(&self, id: &str, idx: i64) -> StoreResult<Option<AttachmentRow>> {
        Ok(sqlx::query_as::<_, AttachmentRow>(ATTACHMENT)
            .bind(id)
            .bind(idx)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn attachment_integrity(&self, id: &str) -> StoreResult<Vec<IntegrityRow>> {
        Ok(sqlx::query_as::<_, IntegrityRow>(INTEGRITY)
            .bind(id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn attachment_integrity_of(
        &self,
        id: &str,
        idx: i64,
    ) -> StoreResult<Option<IntegrityRow>> {
        Ok(sqlx::query_as::<_, IntegrityRow>(INTEGRITY_OF)
            .bind(id)
            .bind(idx)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_attachment_integrity(
        &self,
        id: &str,
        idx: i64,
        state: AttachmentIntegrity,
        at: i64,
    ) -> StoreResult<bool> {
        let sql = match state {
            AttachmentIntegrity::Damaged => MARK_DAMAGED,
            AttachmentIntegrity::Verified => MARK_VERIFIED,
            AttachmentIntegrity::Unknown => return Ok(false),
        };
        let done = sqlx::query(sql)
            .bind(id)
            .bind(idx)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn add_slot(&self, id: &str, body: &[u8], slot: &SlotRow) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        Self::add_slot_in(&mut tx, id, body, slot).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn forward_envelope(
        &self,
        id: &str,
        body: &[u8],
        slot: &SlotRow,
        entry: &MailboxEntryRow,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        Self::add_slot_in(&mut tx, id, body, slot).await?;
        Self::insert_entries(&mut tx, [entry]).await?;
        Self::append_audit_in(&mut tx, vec![audit.clone()], AuditRow::chain_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn envelopes_for(&self, principal: &str) -> StoreResult<Vec<EnvelopeMeta>> {
        Ok(sqlx::query_as::<_, EnvelopeMeta>(ENVELOPES_FOR)
            .bind(principal)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn envelope_exists(&self, id: &str) -> StoreResult<bool> {
        Ok(sqlx::query_scalar::<_, i64>(ENVELOPE_EXISTS)
            .bind(id)
            .fetch_one(&self.pool)
            .await?
            > 0)
    }

    async fn overwrite_body(&self, id: &str, body: &[u8]) -> StoreResult<()> {
        let done = sqlx::query(SET_BODY)
            .bind(id)
            .bind(body)
            .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .execute(&self.writer)
            .await?;
        expect_one(DB::rows_affected(&done))
    }
}
