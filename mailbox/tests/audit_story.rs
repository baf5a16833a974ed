//! The audit trail as evidence, on SQLite (default) and PostgreSQL
//! (`RENKEI_TEST_BACKEND=postgres` with `RENKEI_TEST_PG_URL`): the log refuses
//! UPDATE and DELETE from a direct connection, a writer who rewrites an entry
//! and recomputes the whole chain is caught by the signed checkpoints, an
//! edited checkpoint line fails its signature, and the audit retention job
//! removes old entries without `verify` calling the cut a break.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{TestStore, fresh_store};
use mailbox::records::audit::{Audit, AuditEvent, Rewritten, action, entry_hash};
use mailbox::records::checkpoint::{CheckpointFiles, Checkpointer};
use mailbox::store::StoreTarget;
use renkei_crypto::AuditKey;

/// A direct connection to the test's database, as a rogue DBA would have.
enum Rogue {
    Lite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl Rogue {
    async fn open(t: &TestStore) -> Self {
        match &t.target {
            StoreTarget::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .busy_timeout(std::time::Duration::from_secs(10));
                Self::Lite(sqlx::SqlitePool::connect_with(options).await.unwrap())
            }
            StoreTarget::Postgres(url) => Self::Pg(sqlx::PgPool::connect(url).await.unwrap()),
        }
    }

    fn is_pg(&self) -> bool {
        matches!(self, Self::Pg(_))
    }

    /// Runs `statements` in one transaction.
    async fn exec(&self, statements: &[&str]) -> Result<u64, sqlx::Error> {
        let mut n = 0;
        match self {
            Self::Lite(p) => {
                let mut tx = p.begin().await?;
                for s in statements {
                    n += sqlx::query(s).execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
            }
            Self::Pg(p) => {
                let mut tx = p.begin().await?;
                for s in statements {
                    n += sqlx::query(s).execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
            }
        }
        Ok(n)
    }

    /// What a writer with DDL rights does first.
    async fn drop_guards(&self) {
        let sql = if self.is_pg() {
            "DROP TRIGGER audit_log_append_only ON audit_log"
        } else {
            "DROP TRIGGER audit_log_no_update"
        };
        self.exec(&[sql]).await.unwrap();
    }

    /// Rewrites entry `seq`'s detail and recomputes every later hash and the
    /// head with the same hash function, as a careful forger would.
    async fn rewrite(&self, t: &TestStore, seq: i64, detail: &str) {
        let rows = t.store.audit_after(seq - 1, 10_000).await.unwrap();
        let mut prev = rows[0].prev_hash.clone();
        let mut statements = Vec::new();
        for mut row in rows {
            if row.seq == seq {
                row.detail = Some(detail.into());
            }
            row.prev_hash = prev;
            row.hash = entry_hash(&row);
            statements.push(format!(
                "UPDATE audit_log SET detail = {}, prev_hash = '{}', hash = '{}' WHERE seq = {}",
                row.detail
                    .as_ref()
                    .map_or("NULL".into(), |d| format!("'{d}'")),
                row.prev_hash,
                row.hash,
                row.seq
            ));
            prev = row.hash;
        }
        statements.push(format!(
            "UPDATE audit_head SET hash = '{prev}' WHERE id = 1"
        ));
        let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
        self.exec(&refs).await.unwrap();
    }
}

struct Trail {
    t: TestStore,
    audit: Audit,
    checkpoints: Checkpointer,
    files: CheckpointFiles,
}

async fn trail() -> Trail {
    let t = fresh_store().await;
    let files = CheckpointFiles::at(t.dir.path().join("audit-checkpoints.jsonl"));
    let audit = Audit::new(t.store.clone()).with_checkpoints(files.clone());
    let key = Arc::new(AuditKey::generate().unwrap());
    let checkpoints =
        Checkpointer::new(t.store.clone(), key, files.clone(), "node-a".into()).unwrap();
    Trail {
        t,
        audit,
        checkpoints,
        files,
    }
}

impl Trail {
    async fn entries(&self, n: usize) {
        for i in 0..n {
            self.audit
                .record(AuditEvent::system(action::VIEW).item(format!("item{i}")))
                .await
                .unwrap();
        }
    }

    async fn checkpoint(&self) -> i64 {
        self.checkpoints
            .write(Some("synchronised"))
            .await
            .unwrap()
            .seq
    }
}

#[tokio::test]
async fn the_log_refuses_update_and_delete_from_a_direct_connection() {
    let tr = trail().await;
    tr.entries(3).await;
    let rogue = Rogue::open(&tr.t).await;
    for sql in [
        "UPDATE audit_log SET detail = 'x' WHERE seq = 2",
        "UPDATE audit_log SET at = at + 1",
        "DELETE FROM audit_log WHERE seq = 3",
        "DELETE FROM audit_log",
    ] {
        let e = rogue.exec(&[sql]).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    if rogue.is_pg() {
        let e = rogue.exec(&["TRUNCATE audit_log"]).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    let v = tr.audit.verify().await.unwrap();
    assert!(v.intact(), "{v:?}");
    assert_eq!(v.entries, 3);
}

#[tokio::test]
async fn a_recomputed_chain_is_caught_by_the_signed_checkpoints() {
    let tr = trail().await;
    tr.entries(5).await;
    assert_eq!(tr.checkpoint().await, 5);
    tr.entries(1).await;
    assert_eq!(tr.checkpoint().await, 6);
    tr.entries(1).await;
    assert_eq!(tr.checkpoint().await, 7);
    tr.entries(3).await;
    assert_eq!(tr.checkpoint().await, 10);
    tr.entries(2).await;
    let v = tr.audit.verify().await.unwrap();
    assert!(v.intact(), "{v:?}");
    assert_eq!((v.entries, v.checkpoints), (12, 4));

    let rogue = Rogue::open(&tr.t).await;
    rogue.drop_guards().await;
    // Entry 9 rewritten, 9..12 and the head recomputed: the walk alone passes,
    // the checkpoint at 10 does not.
    rogue.rewrite(&tr.t, 9, "rewritten").await;
    let v = tr.audit.verify().await.unwrap();
    assert_eq!(v.first_broken, None, "{v:?}");
    assert_eq!(
        v.rewritten,
        Some(Rewritten {
            intact: Some(7),
            differs: 10,
            first_differing: None
        })
    );
    assert!(!v.intact());
    // Entry 7, right after the checkpoint at 6: the entry itself is named.
    rogue.rewrite(&tr.t, 7, "rewritten too").await;
    let v = tr.audit.verify().await.unwrap();
    assert_eq!(
        v.rewritten,
        Some(Rewritten {
            intact: Some(6),
            differs: 7,
            first_differing: Some(7)
        })
    );

    // The forger edits the checkpoint file to fit: the line fails its signature.
    let rows = tr.t.store.audit_after(9, 1).await.unwrap();
    let text = std::fs::read_to_string(&tr.files.log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    let mut line: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(line["seq"], 10);
    line["hash"] = rows[0].hash.clone().into();
    let forged = format!("{}\n{}\n{}\n{}\n", lines[0], lines[1], lines[2], line);
    std::fs::write(&tr.files.log, forged).unwrap();
    let v = tr.audit.verify().await.unwrap();
    assert_eq!(v.bad_checkpoint, Some((4, "bad_signature")), "{v:?}");
    assert!(!v.intact());
    // Signed with a key of the forger's own, it fails too.
    let forger = AuditKey::generate().unwrap();
    let own = Checkpointer::new(
        tr.t.store.clone(),
        Arc::new(forger),
        CheckpointFiles::at(tr.t.dir.path().join("forged.jsonl")),
        "node-a".into(),
    )
    .unwrap();
    let c = own.write(None).await.unwrap();
    let mut text = std::fs::read_to_string(&tr.files.log).unwrap();
    text.push_str(&format!("{}\n", c.to_line()));
    std::fs::write(&tr.files.log, text).unwrap();
    let v = tr.audit.verify().await.unwrap();
    assert_eq!(v.bad_checkpoint, Some((4, "bad_signature")), "{v:?}");
}

#[tokio::test]
async fn a_head_behind_the_newest_checkpoint_is_a_break() {
    let tr = trail().await;
    tr.entries(4).await;
    tr.checkpoint().await;
    let rogue = Rogue::open(&tr.t).await;
    if rogue.is_pg() {
        rogue
            .exec(&["DROP TRIGGER audit_log_append_only ON audit_log"])
            .await
            .unwrap();
    } else {
        rogue
            .exec(&["DROP TRIGGER audit_log_no_delete"])
            .await
            .unwrap();
    }
    let rows = tr.t.store.audit_after(2, 1).await.unwrap();
    rogue
        .exec(&[
            "DELETE FROM audit_log WHERE seq > 3",
            &format!(
                "UPDATE audit_head SET seq = 3, hash = '{}' WHERE id = 1",
                rows[0].hash
            ),
        ])
        .await
        .unwrap();
    let v = tr.audit.verify().await.unwrap();
    assert_eq!(v.first_broken, Some((4, "head_behind_checkpoint")), "{v:?}");
}

#[tokio::test]
async fn the_audit_retention_job_cuts_old_entries_and_verify_still_passes() {
    let tr = trail().await;
    tr.entries(4).await;
    assert_eq!(tr.checkpoint().await, 4);
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let cutoff = mailbox::clock::now_millis();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    tr.entries(2).await;
    assert_eq!(tr.checkpoint().await, 6);

    let cut = tr
        .checkpoints
        .retain(&tr.audit, cutoff, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cut.seq, 4);
    let left = tr.t.store.audit_after(0, 100).await.unwrap();
    let seqs: Vec<i64> = left.iter().map(|r| r.seq).collect();
    // The run itself is on the trail (7).
    assert_eq!(seqs, [5, 6, 7]);
    assert_eq!(left[2].action, action::RETENTION_DELETE);
    assert_eq!(left[2].detail.as_deref(), Some("audit entries up to seq=4"));
    let v = tr.audit.verify().await.unwrap();
    assert!(v.intact(), "{v:?}");
    assert_eq!((v.entries, v.starts_after, v.checkpoints), (3, 4, 1));
    // A second run with the same cutoff removes nothing.
    assert!(
        tr.checkpoints
            .retain(&tr.audit, cutoff, None)
            .await
            .unwrap()
            .is_none()
    );
    // Still append-only outside the job.
    let rogue = Rogue::open(&tr.t).await;
    assert!(
        rogue
            .exec(&["DELETE FROM audit_log WHERE seq = 5"])
            .await
            .is_err()
    );

    // A rogue writer opens the same door: the removed entry is a break, and a
    // cut moved to fit carries no valid signature.
    let door = if rogue.is_pg() {
        "SELECT set_config('renkei.audit_retention', 'on', true)"
    } else {
        "UPDATE audit_retention_door SET open = 1 WHERE id = 1"
    };
    rogue
        .exec(&[door, "DELETE FROM audit_log WHERE seq = 5"])
        .await
        .unwrap();
    let v = tr.audit.verify().await.unwrap();
    assert_eq!(v.first_broken, Some((6, "missing_entry_before")), "{v:?}");
    let five = left[0].hash.clone();
    rogue
        .exec(&[&format!(
            "UPDATE audit_cut SET seq = 5, hash = '{five}' WHERE id = 1"
        )])
        .await
        .unwrap();
    let v = tr.audit.verify().await.unwrap();
    assert_eq!(v.first_broken, Some((6, "cut_not_signed")), "{v:?}");
}
