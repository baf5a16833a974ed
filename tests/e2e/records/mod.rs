//! Records: the hash-chained audit trail, retention, patient deletion requests,
//! billing and CSV reports, over the real binary and both databases.
//!
//! On both backends. The audit chain (here): every kind of event exported, no
//! patient data in it, concurrent views do not fork it, a clerk sees only the
//! facility's entries, changing any one field of one stored entry — or
//! deleting it — makes `verify` exit 65 naming exactly that entry.
//! Retention (`retention.rs`) with the clock moved for chosen items: older go
//! with their blobs, younger and a thread with a recent step stay; the
//! scheduled job in `serve` with `--retention-days 30`. A deletion request
//! (`retention.rs`): two items and a reported thread of the patient go from
//! every table and the blob folder, another patient's and the same ID at
//! another facility stay. A reading report's PDF (`exports.rs`) read back with
//! `pdftotext`: Japanese findings, facility, signer, fingerprint and
//! signed-content hash matching the API and the stored key, date; its detached
//! signature verified and refused after one flipped byte; a credential letter
//! PDF; billing for joining on the 31st, leaving on the 1st and inactive
//! months. A backup (`backup.rs`) taken while items are being sent, restored
//! into a fresh folder (and database) where every item opens with a valid
//! signature and its attachment. Key custody (`custody.rs`): the recovery
//! key's shares, a backup scanned for every key's bytes, a restore with two
//! shares bringing back TOTP sign-in and the deletion-request search, and
//! 0600/0700 file modes.
//!
//! This file holds the audit chain's test and what the others share: the
//! patient, [`send_item`] and [`reported_thread`].

mod backup;
pub mod custody;
mod evidence;
mod exports;
mod retention;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, Db, HOSPITAL, Network, Server, no_files, wait_until};

pub const PATIENT_NAME: &str = "丸亀 花子";
pub const PATIENT_ID: &str = "MRG-5520-2026";
pub const FINDINGS: &str = "左下葉にすりガラス影を認めます";

pub async fn send_item(
    server: &Server,
    client: &reqwest::Client,
    to: Value,
    patient_id: &str,
    files: Vec<(&str, Vec<u8>)>,
) -> String {
    let envelope = json!({
        "kind": "reading_request",
        "to": to,
        "subject": "胸部CT 読影依頼",
        "patient_id": patient_id,
        "patient_name": PATIENT_NAME,
        "body": format!("臨床所見：{FINDINGS}。"),
        "consent": { "obtained_on": "2025-06-01", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": files.iter().map(|(n, _)| json!({"name": n, "media_type": "application/dicom"})).collect::<Vec<_>>(),
    });
    server.sent_envelope(client, &envelope, files).await
}

pub fn dicom(marker: u8) -> Vec<u8> {
    imaging::sample::with_payload(&[marker; 20_000])
}

#[tokio::test]
async fn audit_trail_is_chained_scoped_and_names_the_damaged_entry() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    let (clerk, clerk_pw) = net.add_user("clerk", HOSPITAL, "高松 三枝");
    let server = net.serve(&[]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let clerk_c = net.ready_client(&server, &clerk, &clerk_pw).await;
    // A failed sign-in, with a known and an unknown ID.
    assert!(server.sign_in(&rad, "wrong-password-123!").await.is_none());
    assert!(server.sign_in(PATIENT_ID, "whatever").await.is_none());

    let id = send_item(
        &server,
        &gp_c,
        json!([{ "account": rad }]),
        PATIENT_ID,
        vec![("ct.dcm", dicom(7))],
    )
    .await;
    // Concurrent views must not fork the chain.
    let mut views = Vec::new();
    for _ in 0..12 {
        let c = rad_c.clone();
        let url = server.url(&format!("/api/v1/envelopes/{id}"));
        views.push(tokio::spawn(async move {
            c.get(url).send().await.unwrap().status()
        }));
    }
    for v in views {
        assert_eq!(v.await.unwrap(), StatusCode::OK);
    }
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{id}/attachments/0")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.bytes().await.unwrap();

    let out = net.admin(&["audit", "verify"]);
    assert!(out.contains("audit chain intact"), "{out}");

    // Export: every kind of event, and nothing of the patient.
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Days::new(1)).to_string();
    let to = (today + chrono::Days::new(1)).to_string();
    let csv = net.admin(&["audit", "export", "--from", &from, "--to", &to]);
    for action in [
        ",sign_in,",
        ",sign_in_failed,",
        ",password_change,",
        ",send,",
        ",view,",
        ",download,",
        ",admin,",
    ] {
        assert!(csv.contains(action), "{action} missing:\n{csv}");
    }
    assert!(csv.contains("127.0.0.1"), "addresses are recorded");
    for secret in [PATIENT_ID, PATIENT_NAME, FINDINGS, "讃岐", "ct.dcm"] {
        assert!(!csv.contains(secret), "{secret} leaked into the audit log");
    }

    // A clerk sees the own facility's entries only; a doctor none.
    let r = clerk_c
        .get(server.url(&format!("/api/v1/audit?from={from}&to={to}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let entries: Vec<Value> = r.json().await.unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e["facility"] == HOSPITAL),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "view" && e["item"] == id.as_str())
    );
    let r = gp_c
        .get(server.url(&format!("/api/v1/audit?from={from}&to={to}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = clerk_c
        .get(server.url(&format!("/api/v1/audit?from={from}&to={to}&format=csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(",view,"));

    // Changing any field of one stored entry breaks the chain at exactly that
    // entry. The log refuses UPDATE and DELETE, so the writer here has dropped
    // the guards first (see audit_evidence.rs for the guards themselves).
    let db = Db::open(&net).await;
    match db {
        Db::Pg(_) => {
            db.exec("DROP TRIGGER audit_log_append_only ON audit_log")
                .await
        }
        Db::Lite(_) => {
            db.exec("DROP TRIGGER audit_log_no_update").await;
            db.exec("DROP TRIGGER audit_log_no_delete").await
        }
    };
    let target: i64 = db
        .count(&format!(
            "SELECT MIN(seq) FROM audit_log WHERE action = 'view' AND item = '{id}'"
        ))
        .await;
    assert!(target > 1);
    let changes = [
        ("at", "at + 1"),
        ("actor", "'ZZZZ2222'"),
        ("role", "'operator'"),
        ("facility", "'3710300017'"),
        ("action", "'vie'"),
        ("item", "'0'"),
        ("detail", "'x'"),
        ("remote_addr", "'10.0.0.1'"),
        (
            "prev_hash",
            "CASE WHEN substr(prev_hash, 1, 1) = '0' THEN '1' ELSE '0' END || substr(prev_hash, 2)",
        ),
        (
            "hash",
            "CASE WHEN substr(hash, 1, 1) = '0' THEN '1' ELSE '0' END || substr(hash, 2)",
        ),
    ];
    for (column, value) in changes {
        let saved = db
            .strings(&format!(
                "SELECT CAST({column} AS TEXT) FROM audit_log WHERE seq = {target}"
            ))
            .await;
        db.exec(&format!(
            "UPDATE audit_log SET {column} = {value} WHERE seq = {target}"
        ))
        .await;
        let out = net.run(&["admin", "audit", "verify"]);
        assert_eq!(out.code, Some(65), "{column}: {}", out.stdout);
        assert!(
            out.stdout.contains(&format!("broken at entry {target}:")),
            "{column}: {}",
            out.stdout
        );
        // Put it back exactly.
        let restore = match saved.first() {
            Some(Some(v)) if column == "at" => format!("{column} = {v}"),
            Some(Some(v)) => format!("{column} = '{v}'"),
            _ => format!("{column} = NULL"),
        };
        db.exec(&format!(
            "UPDATE audit_log SET {restore} WHERE seq = {target}"
        ))
        .await;
        let out = net.run(&["admin", "audit", "verify"]);
        assert_eq!(out.code, Some(0), "{column} restored: {}", out.stdout);
    }
    // A removed entry is named too.
    db.exec(&format!("DELETE FROM audit_log WHERE seq = {target}"))
        .await;
    let out = net.run(&["admin", "audit", "verify"]);
    assert_eq!(out.code, Some(65));
    assert!(
        out.stdout
            .contains(&format!("broken at entry {}:", target + 1)),
        "{}",
        out.stdout
    );
}

async fn multipart(
    server: &Server,
    client: &reqwest::Client,
    path: &str,
    part: &str,
    spec: Value,
) -> Value {
    let mut spec = spec;
    spec["attachments"] = json!([]);
    let (s, body) = server.upload(client, path, part, &spec, no_files()).await;
    assert_eq!(s, StatusCode::CREATED, "{path}: {body}");
    body
}

/// A reading request from `gp` to `rad` for `patient_id`, read, accepted and
/// reported; returns the thread ID.
pub async fn reported_thread(
    server: &Server,
    gp: &reqwest::Client,
    rad: &reqwest::Client,
    rad_id: &str,
    patient_id: &str,
) -> String {
    let (thread, _) = request(server, gp, rad_id, patient_id).await;
    // Wait for delivery, then open (the receipt), accept and report.
    wait_until(
        &format!("thread {thread} to be delivered"),
        Duration::from_secs(10),
        || async {
            let r = rad
                .get(server.url(&format!("/api/v1/threads/{thread}")))
                .send()
                .await
                .unwrap();
            if r.status() != StatusCode::OK {
                return None;
            }
            let v: Value = r.json().await.unwrap();
            (v["state"] != "sent").then_some(())
        },
    )
    .await;
    report(server, rad, &thread).await;
    thread
}

/// A reading request from `gp` to `rad_id`: the thread's and its opening
/// item's IDs.
pub async fn request(
    server: &Server,
    gp: &reqwest::Client,
    rad_id: &str,
    patient_id: &str,
) -> (String, String) {
    let spec = json!({
        "kind": "reading_request",
        "to": { "account": rad_id },
        "subject": "胸部CT 読影依頼",
        "patient_id": patient_id,
        "patient_name": PATIENT_NAME,
        "body": "ご高診をお願いします。",
        "consent": { "obtained_on": "2025-06-01", "method": "written", "obtained_by": "坂出 明美" },
        "urgency": "routine",
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
    });
    let body = multipart(server, gp, "/api/v1/threads", "thread", spec).await;
    let id = |k: &str| body[k].as_str().unwrap().to_string();
    (id("thread_id"), id("envelope_id"))
}

/// The reader accepts a delivered, opened request and reports on it.
pub async fn report(server: &Server, rad: &reqwest::Client, thread: &str) {
    let path = format!("/api/v1/threads/{thread}/steps");
    multipart(server, rad, &path, "step", json!({ "step": "accept" })).await;
    multipart(
        server,
        rad,
        &path,
        "step",
        json!({ "step": "report", "fields": { "findings": FINDINGS, "impression": "炎症性変化を疑います" } }),
    )
    .await;
}

/// Waits until the delivery worker has delivered every one of `ids`.
async fn wait_delivered(db: &Db, ids: &[&str]) {
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let pending = format!(
        "SELECT COUNT(*) FROM delivery_queue WHERE state <> 'done' AND envelope_id IN ({list})"
    );
    wait_until("items to be delivered", Duration::from_secs(20), || async {
        (db.count(&pending).await == 0).then_some(())
    })
    .await;
}
