//! What the audit trail proves: the channel of every entry (pages, API, mail
//! client, command line), each session's end with its cause and length,
//! changes of credentials, `audit patient` answering "who opened this
//! patient's items" through the blind index, and sends, forwards and claims
//! that cannot stand without their entry (written in the action's own
//! transaction).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{PATIENT_ID, PATIENT_NAME, dicom, send_item};
use crate::harness::{CLINIC, Db, HOSPITAL, Network, bin, wait_until};
use crate::imap::imap_port;

/// The CSV rows of `action` (the last column is the channel).
fn rows<'a>(csv: &'a str, action: &str) -> Vec<&'a str> {
    let needle = format!(",{action},");
    csv.lines().filter(|l| l.contains(&needle)).collect()
}

/// `renkei admin audit patient --facility CODE` with the patient ID on
/// standard input, as the help desk runs it.
fn audit_patient(net: &Network, facility: &str, patient: &str) -> String {
    let mut child = Command::new(bin())
        .args(net.args())
        .envs(net.operator().map(|id| ("RENKEI_ADMIN_OPERATOR", id)))
        .args(["admin", "audit", "patient", "--facility", facility])
        .env("RENKEI_SECOND_FACTOR", "optional")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run renkei");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{patient}").expect("write the patient ID");
    drop(stdin);
    let out = child.wait_with_output().expect("audit patient");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn entries_carry_their_channel_session_ends_and_patient_access() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (col, col_pw) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    // IDs as stored (the letter groups them for reading: ABCD-2345).
    let plain = |id: &str| id.replace('-', "");
    let mut server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let _ = net.ready_client(&server, &col, &col_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;

    let id = send_item(
        &server,
        &gp_c,
        json!([{ "account": rad }]),
        PATIENT_ID,
        vec![("ct.dcm", dicom(3))],
    )
    .await;
    let other = send_item(
        &server,
        &gp_c,
        json!([{ "account": rad }]),
        "OTHER-0001",
        vec![],
    )
    .await;
    let opened = wait_until("the item to open", Duration::from_secs(10), || async {
        let r = rad_c
            .get(server.url(&format!("/api/v1/envelopes/{id}")))
            .send()
            .await
            .unwrap();
        (r.status() == StatusCode::OK).then_some(())
    });
    opened.await;
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{id}/attachments/0")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.bytes().await.unwrap();
    let r = rad_c
        .post(server.url(&format!("/api/v1/envelopes/{id}/forward")))
        .json(&json!({ "to": col }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // A mail client signs in over IMAP (curl), then the reader signs out.
    let listing = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(net.data_dir().join("tls-cert.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-u", &format!("{rad}:{rad_pw}-Mine-2026")])
        .arg(format!("imaps://localhost:{port}/"))
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("INBOX"),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let r = rad_c
        .delete(server.url("/api/v1/session"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "sign-out: {}", r.status());
    server.stop();

    // A session left idle past the timeout ends with that cause on record.
    let server = net.serve(&["--idle-timeout-secs", "1"]);
    let gp_c = server.sign_in(&gp, &format!("{gp_pw}-Mine-2026")).await;
    let gp_c = gp_c.expect("sign-in");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let r = gp_c
        .get(server.url("/api/v1/mailbox/inbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let csv = net.audit_export();
    let channel = |line: &str| line.trim_end().rsplit(',').next().unwrap_or("").to_string();
    let sends = rows(&csv, "send");
    assert_eq!(sends.len(), 2, "{csv}");
    assert!(sends.iter().all(|l| channel(l) == "api"), "{sends:?}");
    assert!(
        rows(&csv, "sign_in").iter().any(|l| channel(l) == "imap"),
        "an IMAP sign-in says so:\n{csv}"
    );
    assert!(
        rows(&csv, "forward")
            .iter()
            .any(|l| l.contains(&id) && l.contains(&format!("to={}", plain(&col)))),
        "{csv}"
    );
    assert!(
        rows(&csv, "admin").iter().all(|l| channel(l) == "cli"),
        "{csv}"
    );
    let sign_out = rows(&csv, "sign_out");
    assert!(
        sign_out
            .iter()
            .any(|l| l.contains(&plain(&rad)) && l.contains("cause=sign_out length_s=")),
        "a sign-out records how long the session lasted: {sign_out:?}"
    );
    let ended = rows(&csv, "session_end");
    assert!(
        ended
            .iter()
            .any(|l| l.contains(&plain(&gp)) && l.contains("cause=idle_timeout length_s=")),
        "an idle session's end is on record: {ended:?}"
    );
    for secret in [PATIENT_ID, PATIENT_NAME, "OTHER-0001"] {
        assert!(
            !csv.contains(secret),
            "{secret} leaked into the audit trail"
        );
    }

    // Who opened this patient's items: the reader's view, download and
    // forward of the one item; nothing of the other patient's item.
    let access = audit_patient(&net, CLINIC, PATIENT_ID);
    for action in ["view", "download", "forward", "send"] {
        assert!(
            access
                .lines()
                .any(|l| l.contains(&format!(",{action},")) && l.contains(&id)),
            "{action} of {id} missing:\n{access}"
        );
    }
    assert!(access.contains(&plain(&rad)), "{access}");
    assert!(!access.contains(&other), "{access}");
    assert!(!access.contains(PATIENT_ID), "{access}");
    let after = net.audit_export();
    assert!(
        rows(&after, "patient_search")
            .iter()
            .any(|l| l.contains("purpose=access_report")),
        "the question itself is on the trail"
    );
    assert!(!after.contains(PATIENT_ID));
    let verify = net.admin(&["audit", "verify"]);
    assert!(verify.contains("audit chain intact"), "{verify}");
}

#[tokio::test]
async fn a_send_or_forward_whose_entry_cannot_be_written_does_not_stand() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (col, col_pw) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    let server = net.serve(&[]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let _ = net.ready_client(&server, &col, &col_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let id = send_item(
        &server,
        &gp_c,
        json!([{ "account": rad }]),
        PATIENT_ID,
        vec![],
    )
    .await;
    let db = Db::open(&net).await;
    let envelopes = db.count("SELECT COUNT(*) FROM envelopes").await;
    let slots = db.count("SELECT COUNT(*) FROM envelope_slots").await;

    // The chain's head goes missing (a failing disk, a careless hand): no
    // entry can be appended, so neither can what it records.
    let head = db.strings("SELECT hash FROM audit_head").await;
    let seq = db.count("SELECT seq FROM audit_head").await;
    db.exec("DELETE FROM audit_head").await;
    let spec = json!({
        "kind": "reading_request",
        "to": [{ "account": rad }],
        "subject": "連絡",
        "patient_id": PATIENT_ID,
        "patient_name": PATIENT_NAME,
        "body": "ご確認ください。",
        "consent": { "obtained_on": "2025-06-01", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": [],
    });
    let (status, body) = server
        .send_envelope(&gp_c, &spec, crate::harness::no_files())
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let r = rad_c
        .post(server.url(&format!("/api/v1/envelopes/{id}/forward")))
        .json(&json!({ "to": col }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(db.count("SELECT COUNT(*) FROM envelopes").await, envelopes);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM envelope_slots").await,
        slots,
        "no key slot without its forward entry"
    );

    // The head back, the same send goes through, with its entry.
    let hash = head[0].clone().unwrap_or_default();
    db.exec(&format!(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, {seq}, '{hash}')"
    ))
    .await;
    let (status, body) = server
        .send_envelope(&gp_c, &spec, crate::harness::no_files())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let csv = net.audit_export();
    assert_eq!(rows(&csv, "send").len(), 2, "{csv}");
    let verify = net.admin(&["audit", "verify"]);
    assert!(verify.contains("audit chain intact"), "{verify}");
}
