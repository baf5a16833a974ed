//! Statements of [`FolderStore`] and its implementation for [`SqlStore`].

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::{Dialect, SqlStore};
use super::folder::{FolderRow, FolderStore};
use super::{StoreError, StoreResult};

/// The items a folder holds, as `(envelope_id, arrived)`; `$1` is the principal.
fn source(folder: &str) -> Option<&'static str> {
    Some(match folder {
        "inbox" | "shared" => {
            "SELECT envelope_id, delivered_at AS arrived FROM mailbox_entries \
             WHERE principal = $1 AND folder = 'inbox' AND NOT archived"
        }
        "sent" => {
            "SELECT envelope_id, delivered_at AS arrived FROM mailbox_entries \
             WHERE principal = $1 AND folder = 'sent' AND NOT archived"
        }
        "archive" => {
            "SELECT envelope_id, delivered_at AS arrived FROM mailbox_entries \
             WHERE principal = $1 AND archived"
        }
        "facility" => {
            "SELECT envelope_id, added_at AS arrived FROM envelope_slots WHERE principal = $1"
        }
        _ => return None,
    })
}

pub(super) fn prune(folder: &str) -> Option<String> {
    Some(format!(
        "DELETE FROM imap_uids WHERE principal = $1 AND folder = $2 \
         AND envelope_id NOT IN (SELECT envelope_id FROM ({}) s)",
        source(folder)?
    ))
}

pub(super) fn number(folder: &str) -> Option<String> {
    Some(format!(
        "INSERT INTO imap_uids (principal, folder, envelope_id) \
         SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), s.envelope_id FROM ({}) s \
         WHERE NOT EXISTS (SELECT 1 FROM imap_uids u WHERE u.principal = $1 AND u.folder = $2 \
         AND u.envelope_id = s.envelope_id) \
         ORDER BY s.arrived, s.envelope_id \
         ON CONFLICT (principal, folder, envelope_id) DO NOTHING",
        source(folder)?
    ))
}

/// A folder row's flag state now (`seen` + 2 × `flagged`), for `imap_uids`.
const FLAG_STATE: &str = "COALESCE((SELECT (CASE WHEN m.seen THEN 1 ELSE 0 END) \
    + (CASE WHEN m.flagged THEN 2 ELSE 0 END) FROM mailbox_entries m \
    WHERE m.envelope_id = imap_uids.envelope_id AND m.principal = imap_uids.principal), 0)";

/// Locks the folder's mod-sequence row (created at 1) and reads it.
pub(super) const LOCK_MODSEQ: &str = "INSERT INTO imap_modseq (principal, folder, highest) \
    VALUES ($1, $2, 1) ON CONFLICT (principal, folder) \
    DO UPDATE SET highest = imap_modseq.highest RETURNING highest";
pub(super) const SET_MODSEQ: &str =
    "UPDATE imap_modseq SET highest = $3 WHERE principal = $1 AND folder = $2";
pub(super) const HIGHEST_MODSEQ: &str =
    "SELECT COALESCE(MAX(highest), 1) FROM imap_modseq WHERE principal = $1 AND folder = $2";
pub(super) const VANISHED: &str = "SELECT uid FROM imap_vanished \
    WHERE principal = $1 AND folder = $2 AND modseq > $3 ORDER BY uid";

/// Rows whose flags changed since they were last given a mod-sequence (and
/// new rows, at -1) get `$3`.
fn touch() -> String {
    format!(
        "UPDATE imap_uids SET modseq = CAST($3 AS BIGINT), flag_state = {FLAG_STATE} \
         WHERE principal = $1 AND folder = $2 AND flag_state <> {FLAG_STATE}"
    )
}

/// The rows about to be pruned, remembered for VANISHED at `$3`.
pub(super) fn vanish(folder: &str) -> Option<String> {
    Some(format!(
        "INSERT INTO imap_vanished (principal, folder, uid, modseq) \
         SELECT principal, folder, uid, CAST($3 AS BIGINT) FROM imap_uids WHERE principal = $1 AND folder = $2 \
         AND envelope_id NOT IN (SELECT envelope_id FROM ({}) s) \
         ON CONFLICT (principal, folder, uid) DO NOTHING",
        source(folder)?
    ))
}

pub(super) const ROWS: &str = "SELECT u.uid, u.envelope_id, \
    COALESCE(m.seen, FALSE) AS seen, COALESCE(m.flagged, FALSE) AS flagged, e.created_at, e.kind, \
    e.sender_id, e.sender_facility, e.thread_id, e.step, u.modseq, m.folder AS entry_folder \
    FROM imap_uids u JOIN envelopes e ON e.id = u.envelope_id \
    LEFT JOIN mailbox_entries m ON m.envelope_id = u.envelope_id AND m.principal = u.principal \
    WHERE u.principal = $1 AND u.folder = $2 ORDER BY u.uid";
/// Count, newest arrival, and flag sums weighted by arrival (so two flags
/// swapping places between looks still change it); `$1` is the principal.
pub(super) fn version(folder: &str) -> Option<&'static str> {
    Some(match folder {
        "inbox" | "shared" | "sent" | "archive" => {
            "SELECT COUNT(*), CAST(COALESCE(MAX(delivered_at), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN seen THEN 1 + delivered_at % 1000003 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN flagged THEN 1 + delivered_at % 1000033 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN archived THEN 1 + delivered_at % 1000037 ELSE 0 END), 0) AS BIGINT) \
             FROM mailbox_entries WHERE principal = $1"
        }
        "facility" => {
            "SELECT COUNT(*), CAST(COALESCE(MAX(added_at), 0) AS BIGINT), CAST(0 AS BIGINT), \
             CAST(0 AS BIGINT), CAST(0 AS BIGINT) FROM envelope_slots WHERE principal = $1"
        }
        _ => return None,
    })
}

pub(super) const MAX_UID: &str = "SELECT COALESCE(MAX(uid), 0) FROM imap_uids";

#[async_trait::async_trait]
impl<DB: Dialect> FolderStore for SqlStore<DB>
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
    async fn sync_folder(&self, principal: &str, folder: &str) -> StoreResult<i64> {
        let (Some(vanish), Some(prune), Some(number)) =
            (vanish(folder), prune(folder), number(folder))
        else {
            return Err(StoreError::NotFound);
        };
        let mut tx = self.writer.begin().await?;
        // The folder's row is held to the end: numberings of one folder queue
        // on it, so mod-sequences follow commit order.
        let highest = sqlx::query_scalar::<_, i64>(LOCK_MODSEQ)
            .bind(principal)
            .bind(folder)
            .fetch_one(&mut *tx)
            .await?;
        let next = highest.saturating_add(1);
        let mut changed = 0;
        for (sql, with_next) in [
            (vanish, true),
            (prune, false),
            (number, false),
            (touch(), true),
        ] {
            let mut q = sqlx::query(&sql).bind(principal).bind(folder);
            if with_next {
                q = q.bind(next);
            }
            let done = q.execute(&mut *tx).await?;
            if with_next {
                changed += DB::rows_affected(&done);
            }
        }
        let highest = if changed > 0 {
            sqlx::query(SET_MODSEQ)
                .bind(principal)
                .bind(folder)
                .bind(next)
                .execute(&mut *tx)
                .await?;
            next
        } else {
            highest
        };
        tx.commit().await?;
        Ok(highest)
    }

    async fn vanished_since(
        &self,
        principal: &str,
        folder: &str,
        modseq: i64,
    ) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar::<_, i64>(VANISHED)
            .bind(principal)
            .bind(folder)
            .bind(modseq)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn highest_modseq(&self, principal: &str, folder: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(HIGHEST_MODSEQ)
            .bind(principal)
            .bind(folder)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn folder_rows(&self, principal: &str, folder: &str) -> StoreResult<Vec<FolderRow>> {
        Ok(sqlx::query_as::<_, FolderRow>(ROWS)
            .bind(principal)
            .bind(folder)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn folder_version(&self, principal: &str, folder: &str) -> StoreResult<Vec<i64>> {
        let Some(sql) = version(folder) else {
            return Err(StoreError::NotFound);
        };
        let (a, b, c, d, e) = sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(sql)
            .bind(principal)
            .fetch_one(&self.pool)
            .await?;
        Ok(vec![a, b, c, d, e])
    }

    async fn max_uid(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(MAX_UID)
            .fetch_one(&self.pool)
            .await?)
    }
}
