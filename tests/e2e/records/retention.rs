//! Retention and patient deletion requests: what goes leaves no trace in any
//! table or the blob folder, and nothing else goes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    FINDINGS, PATIENT_ID, PATIENT_NAME, dicom, report, reported_thread, request, send_item,
    wait_delivered,
};
use crate::harness::{CLINIC, Db, HOSPITAL, Network, wait_until};

/// Every table that refers to an item, and how many rows name it.
async fn traces(db: &Db, id: &str) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for (table, column) in [
        ("envelopes", "id"),
        ("envelope_slots", "envelope_id"),
        ("attachments", "envelope_id"),
        ("delivery_queue", "envelope_id"),
        ("mailbox_entries", "envelope_id"),
        ("imap_uids", "envelope_id"),
        ("notifications", "envelope_id"),
        ("threads", "opener_id"),
    ] {
        let n = db
            .count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {column} = '{id}'"
            ))
            .await;
        out.push((table, n));
    }
    out
}

async fn blob_keys(db: &Db, id: &str) -> Vec<String> {
    db.strings(&format!(
        "SELECT blob_key FROM attachments WHERE envelope_id = '{id}'"
    ))
    .await
    .into_iter()
    .flatten()
    .collect()
}

#[tokio::test]
async fn retention_deletes_what_is_older_than_the_limit_with_its_blobs() {
    let net = Network::new().await;
    // The network, its people and their first items come from 400 days ago:
    // every process runs with its clock moved back, so what it seals signs
    // the time it was sealed. `old` and the opening of a thread that is
    // reported on today are sent then, `later` 40 days ago.
    net.set_clock(Some("-400d"));
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    let to = json!([{ "account": rad }]);
    let db = Db::open(&net).await;
    let mut past = net.serve(&[]);
    let _ = net.ready_client(&past, &rad, &rad_pw).await;
    let gp_c = net.ready_client(&past, &gp, &gp_pw).await;
    let (rad_pw, gp_pw) = (format!("{rad_pw}-Mine-2026"), format!("{gp_pw}-Mine-2026"));
    let old = send_item(&past, &gp_c, to.clone(), "P-1", vec![("a.dcm", dicom(1))]).await;
    let (thread, opener) = request(&past, &gp_c, &rad, "P-4").await;
    wait_delivered(&db, &[&old, &opener]).await;
    past.stop();
    net.set_clock(Some("-40d"));
    let mut past = net.serve(&[]);
    let gp_c = past
        .sign_in(&gp, &gp_pw)
        .await
        .expect("sign-in 40 days ago");
    let later = send_item(&past, &gp_c, to.clone(), "P-3", vec![("c.dcm", dicom(3))]).await;
    wait_delivered(&db, &[&later]).await;
    past.stop();
    net.set_clock(None);
    // Today's server keeps everything (its retention job runs at start-up);
    // the command below applies the default limit of 365 days.
    let server = net.serve(&["--retention-days", "3650"]);
    let gp_c = server.sign_in(&gp, &gp_pw).await.expect("sign-in");
    let rad_c = server.sign_in(&rad, &rad_pw).await.expect("sign-in");
    let young = send_item(&server, &gp_c, to.clone(), "P-2", vec![("b.dcm", dicom(2))]).await;
    // A thread whose opening is old but whose report is recent stays whole.
    let (s, v) = server
        .get_answer(&rad_c, &format!("/api/v1/threads/{thread}"))
        .await;
    assert_eq!(s, StatusCode::OK, "opened today: {v}");
    report(&server, &rad_c, &thread).await;
    wait_delivered(&db, &[&old, &young, &later]).await;
    let old_blobs = blob_keys(&db, &old).await;
    assert_eq!(
        old_blobs.len(),
        2,
        "the attachment and the sealed intake record"
    );
    let blob_dir = net.data_dir().join("blobs");
    assert!(blob_dir.join(&old_blobs[0]).exists());
    // Each item is stored with the time it was sealed.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let weeks_ago = now.saturating_sub(5 * 7 * 86_400);
    let age = |id: &str| {
        format!("SELECT COUNT(*) FROM envelopes WHERE id = '{id}' AND created_at < {weeks_ago}")
    };
    assert_eq!(db.count(&age(&old)).await, 1, "sealed in the past");
    assert_eq!(db.count(&age(&later)).await, 1, "sealed in the past");
    assert_eq!(db.count(&age(&young)).await, 0);

    let out = net.admin(&["retention", "run", "--dry-run"]);
    assert!(out.contains("would delete 1 item(s)"), "{out}");
    assert!(out.contains(&old), "{out}");
    assert!(traces(&db, &old).await.iter().any(|(_, n)| *n > 0));

    let record = net.data_dir().join("retention.csv");
    let out = net.admin(&[
        "retention",
        "run",
        "--apply",
        "--record",
        record.to_str().unwrap(),
    ]);
    assert!(out.contains("deleted 1 item(s)"), "{out}");
    for (table, n) in traces(&db, &old).await {
        assert_eq!(n, 0, "{table} still names {old}");
    }
    assert!(!blob_dir.join(&old_blobs[0]).exists(), "blob left behind");
    let csv = std::fs::read_to_string(&record).unwrap();
    assert!(csv.contains(&old) && !csv.contains(&young), "{csv}");
    assert!(!csv.contains("P-1") && !csv.contains(PATIENT_NAME));
    let logged = db
        .count(&format!(
            "SELECT COUNT(*) FROM deletion_log WHERE envelope_id = '{old}' AND reason = 'retention'"
        ))
        .await;
    assert_eq!(logged, 1);
    // Younger items stay and still open; the thread is whole.
    for id in [&young, &later] {
        let r = rad_c
            .get(server.url(&format!("/api/v1/envelopes/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{id}");
        assert!(!blob_keys(&db, id).await.is_empty());
    }
    let r = gp_c
        .get(server.url(&format!("/api/v1/threads/{thread}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(server);

    // The scheduled job inside `serve`, with a 30-day period: `later` goes.
    let later_blobs = blob_keys(&db, &later).await;
    let server = net.serve(&["--retention-days", "30"]);
    let still_there = format!("SELECT COUNT(*) FROM envelopes WHERE id = '{later}'");
    wait_until(
        &format!("the scheduled retention job to delete {later}"),
        Duration::from_secs(20),
        || async { (db.count(&still_there).await == 0).then_some(()) },
    )
    .await;
    assert!(!blob_dir.join(&later_blobs[0]).exists());
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM envelopes WHERE id = '{young}'"
        ))
        .await,
        1
    );
    drop(server);
    let out = net.admin(&["audit", "verify"]);
    assert!(out.contains("intact"), "{out}");
    let csv = net.admin(&[
        "audit",
        "export",
        "--from",
        "2020-01-01",
        "--to",
        "2099-12-31",
    ]);
    assert!(csv.contains(",retention_delete,"), "{csv}");
}

#[tokio::test]
async fn patient_deletion_request_leaves_no_trace_and_spares_other_patients() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    let (op, op_pw) = crate::harness::parse_letter(&net.admin(&[
        "user",
        "add",
        "--role",
        "operator",
        "--name",
        "運用 太郎",
    ]));
    let server = net.serve(&[]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let op_c = net.ready_client(&server, &op, &op_pw).await;
    let to = json!([{ "account": rad }]);
    // The patient's items: two plain ones with attachments and a whole thread.
    let a1 = send_item(
        &server,
        &gp_c,
        to.clone(),
        PATIENT_ID,
        vec![("a.dcm", dicom(1))],
    )
    .await;
    let a2 = send_item(
        &server,
        &gp_c,
        to.clone(),
        " mrg-5520-2026 ",
        vec![("b.dcm", dicom(2))],
    )
    .await;
    let thread = reported_thread(&server, &gp_c, &rad_c, &rad, PATIENT_ID).await;
    // Another patient; and the same ID at another facility (another patient).
    let other = send_item(
        &server,
        &gp_c,
        to.clone(),
        "MRG-9999-2026",
        vec![("c.dcm", dicom(3))],
    )
    .await;
    let elsewhere = send_item(
        &server,
        &rad_c,
        json!([{ "account": gp }]),
        PATIENT_ID,
        vec![("d.dcm", dicom(4))],
    )
    .await;
    let db = Db::open(&net).await;
    wait_delivered(&db, &[&a1, &a2, &other, &elsewhere]).await;
    let steps = db
        .strings(&format!(
            "SELECT id FROM envelopes WHERE thread_id = '{thread}' ORDER BY thread_seq"
        ))
        .await
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    assert_eq!(steps.len(), 3, "request, accept, report");
    let mut doomed: Vec<String> = vec![a1.clone(), a2.clone()];
    doomed.extend(steps.iter().cloned());
    let mut doomed_blobs = Vec::new();
    for id in &doomed {
        doomed_blobs.extend(blob_keys(&db, id).await);
    }
    assert_eq!(doomed_blobs.len(), 4, "two attachments, two intake records");
    let blob_dir = net.data_dir().join("blobs");

    // Only the operator may look, and sees metadata only.
    let form = json!({ "facility": CLINIC, "patient_id": PATIENT_ID });
    let r = gp_c
        .post(server.url("/api/v1/admin/deletion-requests/search"))
        .json(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = op_c
        .post(server.url("/api/v1/admin/deletion-requests/search"))
        .json(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let found: Vec<Value> = serde_json::from_str(&text).unwrap();
    let mut found_ids: Vec<String> = found
        .iter()
        .map(|m| m["item"].as_str().unwrap().to_string())
        .collect();
    found_ids.sort();
    let mut want = doomed.clone();
    want.sort();
    assert_eq!(found_ids, want);
    assert!(!text.contains(PATIENT_NAME) && !text.contains(FINDINGS));
    // The CLI sees the same (patient ID on standard input).
    let out = std::process::Command::new(crate::harness::bin())
        .args(net.args())
        .envs(net.operator().map(|id| ("RENKEI_ADMIN_OPERATOR", id)))
        .args(["admin", "deletion-request", "find", "--facility", CLINIC])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{PATIENT_ID}\n").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("5 matching item(s)"), "{listing}");

    // A stale confirmation deletes nothing.
    let r = op_c
        .post(server.url("/api/v1/admin/deletion-requests"))
        .json(&json!({ "facility": CLINIC, "patient_id": PATIENT_ID, "confirm": 4 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) FROM envelopes WHERE id = '{a1}'"))
            .await,
        1
    );
    let r = op_c
        .post(server.url("/api/v1/admin/deletion-requests"))
        .json(
            &json!({ "facility": CLINIC, "patient_id": PATIENT_ID, "confirm": 5, "format": "csv" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let receipt = r.text().await.unwrap();
    for id in &doomed {
        assert!(receipt.contains(id.as_str()), "{id} not on the receipt");
    }
    assert!(receipt.contains("total 5 items"), "{receipt}");
    assert!(!receipt.contains(PATIENT_ID) && !receipt.contains(PATIENT_NAME));

    // No trace in the database or the blob folder.
    for id in &doomed {
        for (table, n) in traces(&db, id).await {
            assert_eq!(n, 0, "{table} still names {id}");
        }
    }
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM threads WHERE id = '{thread}'"
        ))
        .await,
        0
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM notifications WHERE thread_id = '{thread}'"
        ))
        .await,
        0
    );
    for key in &doomed_blobs {
        assert!(!blob_dir.join(key).exists(), "blob {key} left behind");
    }
    // Everyone else's items are untouched and still open.
    for (id, reader) in [(&other, &rad_c), (&elsewhere, &gp_c)] {
        let r = reader
            .get(server.url(&format!("/api/v1/envelopes/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{id}");
        let keys = blob_keys(&db, id).await;
        assert_eq!(keys.len(), 2, "the attachment and the sealed intake record");
        assert!(keys.iter().all(|k| blob_dir.join(k).exists()));
    }
    // Searching again finds nothing; the CLI path deletes by the same rules.
    let out = net.run(&[
        "admin",
        "deletion-request",
        "apply",
        "--facility",
        HOSPITAL,
        "--patient",
        PATIENT_ID,
        "--confirm",
        "1",
        "--receipt",
        net.data_dir().join("receipt.csv").to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for (table, n) in traces(&db, &elsewhere).await {
        assert_eq!(n, 0, "{table} still names {elsewhere}");
    }
    let out = net.admin(&["audit", "verify"]);
    assert!(out.contains("intact"), "{out}");
}
