//! The audit trail as evidence, with the real server: it signs checkpoints of
//! the chain's head into a write-once file (and mails them to the operator); a
//! database writer who rewrites an entry and recomputes the whole chain and the
//! head is named by `renkei admin audit verify`; UPDATE and DELETE on the log
//! fail from a direct connection; an edited checkpoint line fails its
//! signature; the audit retention job cuts old entries and verify still passes.

use std::time::Duration;

use mailbox::records::audit::entry_hash;
use mailbox::store::records::AuditRow;

use crate::harness::{Db, Network, wait_until};
use crate::smtp::SmtpSink;

fn checkpoint_lines(net: &Network) -> Vec<serde_json::Value> {
    std::fs::read_to_string(net.data_dir().join("audit-checkpoints.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn rows(db: &Db, after: i64) -> Vec<AuditRow> {
    let sql = format!(
        "SELECT seq, at, actor, role, facility, action, item, detail, remote_addr, prev_hash, \
         hash, channel FROM audit_log WHERE seq > {after} ORDER BY seq"
    );
    match db {
        Db::Pg(p) => sqlx::query_as(&sql).fetch_all(p).await.unwrap(),
        Db::Lite(p) => sqlx::query_as(&sql).fetch_all(p).await.unwrap(),
    }
}

async fn try_exec(db: &Db, sql: &str) -> Result<u64, sqlx::Error> {
    match db {
        Db::Pg(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
        Db::Lite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
    }
}

fn seqs(net: &Network) -> Vec<i64> {
    checkpoint_lines(net)
        .iter()
        .filter_map(|c| c["seq"].as_i64())
        .collect()
}

/// Waits for a checkpoint at (or past) the current head; returns its seq.
async fn checkpoint_at_head(net: &Network, db: &Db) -> i64 {
    let head = db.count("SELECT seq FROM audit_head WHERE id = 1").await;
    wait_until(
        &format!("a checkpoint at seq {head}"),
        Duration::from_secs(20),
        || async { seqs(net).into_iter().filter(|s| *s >= head).min() },
    )
    .await
}

#[tokio::test]
async fn a_recomputed_chain_is_named_by_verify_against_the_signed_checkpoints() {
    let net = Network::new().await;
    net.add_hospital();
    let mut smtp = SmtpSink::new();
    smtp.start();
    let config = net.data_dir().join("renkei.toml");
    std::fs::write(
        &config,
        format!(
            "{}operator_address = \"ops@renkei.example\"\n[audit]\ncheckpoint_secs = 1\n",
            smtp.config()
        ),
    )
    .unwrap();
    let server = net.serve(&["--config", config.to_str().unwrap()]);
    let db = Db::open(&net).await;

    // Entries between checkpoints (each admin command is one).
    let mut marks = Vec::new();
    for _ in 0..3 {
        for _ in 0..3 {
            net.admin(&["facility", "list"]);
        }
        marks.push(checkpoint_at_head(&net, &db).await);
    }
    drop(server);
    let key = net.data_dir().join("audit.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let public =
        std::fs::read_to_string(net.data_dir().join("audit-checkpoints.jsonl.pub")).unwrap();
    assert_eq!(public.trim().len(), 64);
    let lines = checkpoint_lines(&net);
    // Each line carries the clock-sync state: `unknown` until the first time
    // check, then what it found (the harness's clock is synchronised).
    assert!(lines.iter().all(|c| c["node"].is_string()
        && (c["clock"] == "unknown" || c["clock"] == "synchronised")
        && c["sig"].as_str().is_some_and(|s| s.len() == 128)));
    assert_eq!(
        lines.last().map(|c| c["clock"].clone()),
        Some(serde_json::json!("synchronised")),
        "{lines:?}"
    );
    // The operator got them by mail, without anything but the line.
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert!(mails.len() >= 2, "{} mails", mails.len());
    assert!(mails.iter().all(|m| m.to == "ops@renkei.example"));
    let mailed = &mails[0].body;
    assert!(
        mailed.contains("\"sig\":") && mailed.contains("\"hash\":"),
        "{mailed}"
    );

    let out = net.run(&["admin", "audit", "verify"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.contains("audit chain intact"), "{}", out.stdout);

    // A direct connection cannot change or remove an entry.
    for sql in [
        "UPDATE audit_log SET detail = 'x' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
    ] {
        let e = try_exec(&db, sql).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }

    // A writer with DDL rights drops the guard, rewrites one entry between the
    // first two checkpoints and recomputes every later hash and the head.
    match db {
        Db::Pg(_) => {
            db.exec("DROP TRIGGER audit_log_append_only ON audit_log")
                .await
        }
        Db::Lite(_) => db.exec("DROP TRIGGER audit_log_no_update").await,
    };
    let target = marks[0] + 1;
    // The first checkpoint after the rewritten entry.
    let next = seqs(&net)
        .into_iter()
        .filter(|s| *s > marks[0])
        .min()
        .unwrap();
    let mut prev = rows(&db, target - 1).await[0].prev_hash.clone();
    for mut row in rows(&db, target - 1).await {
        if row.seq == target {
            row.detail = Some("facility list: failed".into());
        }
        row.prev_hash = prev;
        row.hash = entry_hash(&row);
        db.exec(&format!(
            "UPDATE audit_log SET detail = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {}",
            row.detail.clone().unwrap_or_default(),
            row.prev_hash,
            row.hash,
            row.seq
        ))
        .await;
        prev = row.hash;
    }
    db.exec(&format!(
        "UPDATE audit_head SET hash = '{prev}' WHERE id = 1"
    ))
    .await;
    let out = net.run(&["admin", "audit", "verify"]);
    assert_eq!(out.code, Some(65), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "audit chain rewritten between checkpoint at seq {} (intact) and checkpoint at seq {} (differs)",
            marks[0], next
        )),
        "{}",
        out.stdout
    );

    // Editing the checkpoint file to fit breaks its signature.
    let path = net.data_dir().join("audit-checkpoints.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = rows(&db, next - 1).await[0].hash.clone();
    let mut n = 0;
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut c: serde_json::Value = serde_json::from_str(l).unwrap();
            if c["seq"] == next && n == 0 {
                n = i + 1;
                c["hash"] = at.clone().into();
            }
            c.to_string()
        })
        .collect();
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    let out = net.run(&["admin", "audit", "verify"]);
    assert_eq!(out.code, Some(65), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "audit checkpoint line {n} is not valid: bad_signature"
        )),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn the_audit_retention_job_cuts_old_entries_and_verify_still_passes() {
    let net = Network::new().await;
    // Entries written three days ago…
    net.set_clock(Some("-3d"));
    net.add_hospital();
    net.admin(&["facility", "list"]);
    net.set_clock(None);
    let db = Db::open(&net).await;
    let old = db.count("SELECT MAX(seq) FROM audit_log").await;
    // …and today.
    net.admin(&["facility", "list"]);
    let config = net.data_dir().join("renkei.toml");
    std::fs::write(&config, "[audit]\nretain_days = 1\n").unwrap();
    let server = net.serve(&["--config", config.to_str().unwrap()]);
    let cut = wait_until("the audit cut", Duration::from_secs(20), || async {
        let seq = db.count("SELECT seq FROM audit_cut WHERE id = 1").await;
        (seq > 0).then_some(seq)
    })
    .await;
    drop(server);
    assert_eq!(cut, old);
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE seq <= {old}"
        ))
        .await,
        0
    );
    let lines = checkpoint_lines(&net);
    assert!(lines.iter().any(|c| c["kind"] == "cut" && c["seq"] == old));
    let out = net.run(&["admin", "audit", "verify"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("retained from seq {}", old + 1)),
        "{}",
        out.stdout
    );
    // Still append-only outside the job.
    let e = try_exec(
        &db,
        &format!("DELETE FROM audit_log WHERE seq = {}", old + 1),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
}
