//! Statements of [`RecordsStore`] and its implementation for [`SqlStore`].

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::StoreResult;
use super::backend::{Dialect, SqlStore};
use super::records::{
    AuditCut, AuditRow, BlobRef, CutSigner, DeletionCandidate, DeletionLogRow, RecordsStore,
};

const AUDIT_COLUMNS: &str =
    "seq, at, actor, role, facility, action, item, detail, remote_addr, prev_hash, hash, channel";

/// Taking the head first locks it (the row on PostgreSQL, the database on
/// SQLite) until commit: the next appender waits and then sees this entry.
pub(super) const BUMP_HEAD: &str =
    "UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash";
pub(super) const SET_HEAD: &str = "UPDATE audit_head SET hash = $1 WHERE id = 1";
pub(super) const HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
/// `rows` audit entries in one statement (a group of views is one round trip).
pub(super) fn insert_audit(rows: usize) -> String {
    format!(
        "INSERT INTO audit_log \
         (seq, at, actor, role, facility, action, item, detail, remote_addr, prev_hash, hash, \
          channel) VALUES {}",
        super::placeholders(rows, 12)
    )
}
pub(super) const CUT: &str = "SELECT seq, hash, at, sig FROM audit_cut WHERE id = 1";
/// The last entry of the prefix written before `$1`: the entry before the first
/// younger one, or the newest when none is younger.
pub(super) const CUT_END: &str = "SELECT seq, hash FROM audit_log WHERE seq < \
    COALESCE((SELECT MIN(seq) FROM audit_log WHERE at >= $1), \
             (SELECT MAX(seq) FROM audit_log) + 1) \
    ORDER BY seq DESC LIMIT 1";
pub(super) const CUT_DELETE: &str = "DELETE FROM audit_log WHERE seq <= $1";
pub(super) const SET_CUT: &str =
    "UPDATE audit_cut SET seq = $1, hash = $2, at = $3, sig = $4 WHERE id = 1";
pub(super) fn audit_between() -> String {
    format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE at >= $1 AND at < $2 ORDER BY seq")
}
pub(super) fn audit_between_of() -> String {
    format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE at >= $1 AND at < $2 AND facility = $3 \
         ORDER BY seq"
    )
}
pub(super) fn audit_of_items(n: usize) -> String {
    format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE item IN ({}) ORDER BY seq",
        super::list(n)
    )
}
pub(super) fn audit_after() -> String {
    format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
}

const CANDIDATE_COLUMNS: &str = "e.id AS envelope_id, e.kind, e.sender_facility, e.created_at, \
    e.body_size, e.thread_id";
pub(super) fn expired() -> String {
    format!(
        "SELECT {CANDIDATE_COLUMNS} FROM envelopes e WHERE e.created_at < $1 \
         AND (e.thread_id IS NULL OR NOT EXISTS (SELECT 1 FROM envelopes o \
              WHERE o.thread_id = e.thread_id AND o.created_at >= $1)) \
         ORDER BY e.created_at, e.id"
    )
}
pub(super) fn patient() -> String {
    format!(
        "SELECT {CANDIDATE_COLUMNS} FROM envelopes e WHERE e.blind_index = $1 \
         OR (e.thread_id IS NOT NULL AND e.thread_id IN (SELECT p.thread_id FROM envelopes p \
             WHERE p.blind_index = $1 AND p.thread_id IS NOT NULL)) \
         ORDER BY e.created_at, e.id"
    )
}
pub(super) fn blobs_of(n: usize) -> String {
    format!(
        "SELECT envelope_id, blob_key, sealed_size FROM attachments WHERE envelope_id IN ({}) \
         ORDER BY envelope_id, idx",
        super::list(n)
    )
}
pub(super) fn delete_notifications(n: usize) -> String {
    let l = super::list(n);
    format!(
        "DELETE FROM notifications WHERE envelope_id IN ({l}) OR thread_id IN \
         (SELECT thread_id FROM envelopes WHERE id IN ({l}) AND thread_id IS NOT NULL)"
    )
}
pub(super) fn delete_threads(n: usize) -> String {
    let l = super::list(n);
    format!(
        "DELETE FROM threads WHERE opener_id IN ({l}) OR id IN \
         (SELECT thread_id FROM envelopes WHERE id IN ({l}) AND thread_id IS NOT NULL)"
    )
}
/// Folders that hold any of the items step their mod-sequence (so a QRESYNC
/// client sees HIGHESTMODSEQ move)…
pub(super) fn bump_imap_modseq(n: usize) -> String {
    format!(
        "UPDATE imap_modseq SET highest = highest + 1 WHERE EXISTS (SELECT 1 FROM imap_uids u \
         WHERE u.principal = imap_modseq.principal AND u.folder = imap_modseq.folder \
         AND u.envelope_id IN ({}))",
        super::list(n)
    )
}
/// …and remember the items' UIDs there for VANISHED (EARLIER), before the
/// numbers go with the items.
pub(super) fn vanish_imap_uids(n: usize) -> String {
    format!(
        "INSERT INTO imap_vanished (principal, folder, uid, modseq) \
         SELECT u.principal, u.folder, u.uid, COALESCE((SELECT m.highest FROM imap_modseq m \
         WHERE m.principal = u.principal AND m.folder = u.folder), 1) \
         FROM imap_uids u WHERE u.envelope_id IN ({}) \
         ON CONFLICT (principal, folder, uid) DO NOTHING",
        super::list(n)
    )
}
/// Key slots, attachments, queue rows, mailbox entries and IMAP numbers go by
/// `ON DELETE CASCADE`.
pub(super) fn delete_envelopes(n: usize) -> String {
    format!("DELETE FROM envelopes WHERE id IN ({})", super::list(n))
}
pub(super) const INSERT_DELETION: &str = "INSERT INTO deletion_log \
    (run_id, reason, envelope_id, kind, sender_facility, created_at, body_size, attachments, \
     attachment_bytes, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub(super) const DELETION_LOG: &str = "SELECT run_id, reason, envelope_id, kind, sender_facility, \
    created_at, body_size, attachments, attachment_bytes, deleted_at FROM deletion_log \
    WHERE run_id = $1 ORDER BY created_at, envelope_id";

/// IDs per `IN (…)` list, well below both backends' parameter limits.
pub(super) const CHUNK: usize = 400;

pub(super) const ALL_BLOB_KEYS: &str = "SELECT blob_key FROM attachments ORDER BY blob_key";

#[async_trait::async_trait]
impl<DB: Dialect> RecordsStore for SqlStore<DB>
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
    async fn append_audit(
        &self,
        entries: Vec<AuditRow>,
        hash: for<'r> fn(&'r AuditRow) -> String,
    ) -> StoreResult<Vec<AuditRow>> {
        if entries.is_empty() {
            return Ok(entries);
        }
        let mut tx = self.writer.begin().await?;
        let out = Self::append_audit_in(&mut *tx, entries, hash).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn audit_entries(
        &self,
        from_ms: i64,
        to_ms: i64,
        facility: Option<&str>,
    ) -> StoreResult<Vec<AuditRow>> {
        Ok(match facility {
            Some(f) => {
                sqlx::query_as(&audit_between_of())
                    .bind(from_ms)
                    .bind(to_ms)
                    .bind(f)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as(&audit_between())
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(&self.pool)
                    .await?
            }
        })
    }

    async fn audit_after(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        Ok(sqlx::query_as(&audit_after())
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn audit_head(&self) -> StoreResult<(i64, String)> {
        Ok(sqlx::query_as(HEAD).fetch_one(&self.pool).await?)
    }

    async fn audit_of_items(&self, items: &[String]) -> StoreResult<Vec<AuditRow>> {
        let mut out = Vec::new();
        for chunk in items.chunks(CHUNK) {
            let sql = audit_of_items(chunk.len());
            let mut q = sqlx::query_as::<_, AuditRow>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }

    async fn audit_cut(&self) -> StoreResult<AuditCut> {
        Ok(sqlx::query_as(CUT).fetch_one(&self.pool).await?)
    }

    async fn cut_audit(
        &self,
        before_ms: i64,
        now_ms: i64,
        sign: CutSigner<'_>,
    ) -> StoreResult<Option<AuditCut>> {
        let mut tx = self.writer.begin().await?;
        let old: AuditCut = sqlx::query_as(CUT).fetch_one(&mut *tx).await?;
        let end: Option<(i64, String)> = sqlx::query_as(CUT_END)
            .bind(before_ms)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((seq, hash)) = end.filter(|(seq, _)| *seq > old.seq) else {
            return Ok(None);
        };
        let mut cut = AuditCut {
            seq,
            hash,
            at: now_ms,
            sig: String::new(),
        };
        cut.sig = sign(&cut);
        let (open, close) = DB::AUDIT_DOOR;
        sqlx::query(open).execute(&mut *tx).await?;
        sqlx::query(CUT_DELETE)
            .bind(cut.seq)
            .execute(&mut *tx)
            .await?;
        if let Some(close) = close {
            sqlx::query(close).execute(&mut *tx).await?;
        }
        sqlx::query(SET_CUT)
            .bind(cut.seq)
            .bind(&cut.hash)
            .bind(cut.at)
            .bind(&cut.sig)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(cut))
    }

    async fn expired_items(&self, cutoff: i64) -> StoreResult<Vec<DeletionCandidate>> {
        Ok(sqlx::query_as(&expired())
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn patient_items(&self, blind_index: &[u8]) -> StoreResult<Vec<DeletionCandidate>> {
        Ok(sqlx::query_as(&patient())
            .bind(blind_index)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn blobs_of(&self, envelope_ids: &[String]) -> StoreResult<Vec<BlobRef>> {
        let mut out = Vec::new();
        for chunk in envelope_ids.chunks(CHUNK) {
            let sql = blobs_of(chunk.len());
            let mut q = sqlx::query_as::<_, BlobRef>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    async fn delete_items(
        &self,
        envelope_ids: &[String],
        log: &[DeletionLogRow],
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let mut deleted = 0;
        for chunk in envelope_ids.chunks(CHUNK) {
            for sql in [
                bump_imap_modseq(chunk.len()),
                vanish_imap_uids(chunk.len()),
                delete_notifications(chunk.len()),
                delete_threads(chunk.len()),
            ] {
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(id);
                }
                q.execute(&mut *tx).await?;
            }
            let sql = delete_envelopes(chunk.len());
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            deleted += DB::rows_affected(&q.execute(&mut *tx).await?);
        }
        for r in log {
            sqlx::query(INSERT_DELETION)
                .bind(&r.run_id)
                .bind(&r.reason)
                .bind(&r.envelope_id)
                .bind(&r.kind)
                .bind(&r.sender_facility)
                .bind(r.created_at)
                .bind(r.body_size)
                .bind(r.attachments)
                .bind(r.attachment_bytes)
                .bind(r.deleted_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn deletion_log(&self, run_id: &str) -> StoreResult<Vec<DeletionLogRow>> {
        Ok(sqlx::query_as(DELETION_LOG)
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn snapshot_into(&self, path: &str) -> StoreResult<bool> {
        match DB::SNAPSHOT {
            Some(sql) => {
                sqlx::query(sql).bind(path).execute(&self.pool).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn all_blob_keys(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(ALL_BLOB_KEYS)
            .fetch_all(&self.pool)
            .await?)
    }
}
