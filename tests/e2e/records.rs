//! Records: the hash-chained audit trail, retention, patient deletion requests,
//! billing and CSV reports, over the real binary and both databases.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, Server};

pub const PATIENT_NAME: &str = "丸亀 花子";
pub const PATIENT_ID: &str = "MRG-5520-2026";
pub const FINDINGS: &str = "左下葉にすりガラス影を認めます";

/// Direct access to the test's database, for checks and deliberate damage.
pub enum Db {
    Pg(sqlx::PgPool),
    Lite(sqlx::SqlitePool),
}

impl Db {
    pub async fn open(net: &Network) -> Self {
        match &net.database_url {
            Some(url) => Self::Pg(sqlx::PgPool::connect(url).await.unwrap()),
            None => Self::Lite(
                sqlx::SqlitePool::connect(&format!(
                    "sqlite://{}",
                    net.data_dir().join("renkei.db").display()
                ))
                .await
                .unwrap(),
            ),
        }
    }

    pub async fn exec(&self, sql: &str) -> u64 {
        match self {
            Self::Pg(p) => sqlx::query(sql).execute(p).await.unwrap().rows_affected(),
            Self::Lite(p) => sqlx::query(sql).execute(p).await.unwrap().rows_affected(),
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Self::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Self::Lite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    }

    pub async fn strings(&self, sql: &str) -> Vec<Option<String>> {
        match self {
            Self::Pg(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
            Self::Lite(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
        }
    }
}

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
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": files.iter().map(|(n, _)| json!({"name": n, "media_type": "application/dicom"})).collect::<Vec<_>>(),
    });
    let mut form = Form::new().part(
        "envelope",
        Part::text(envelope.to_string())
            .mime_str("application/json")
            .unwrap(),
    );
    for (name, bytes) in files {
        form = form.part("file", Part::bytes(bytes).file_name(name.to_string()));
    }
    let r = client
        .post(server.url("/api/v1/envelopes"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "send");
    let body: Value = r.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
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

    // Changing any field of one stored entry breaks the chain at exactly that entry.
    let db = Db::open(&net).await;
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
    let form = Form::new().part(
        part.to_string(),
        Part::text(spec.to_string())
            .mime_str("application/json")
            .unwrap(),
    );
    let r = client
        .post(server.url(path))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let s = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
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
    let spec = json!({
        "kind": "reading_request",
        "to": { "account": rad_id },
        "subject": "胸部CT 読影依頼",
        "patient_id": patient_id,
        "patient_name": PATIENT_NAME,
        "body": "ご高診をお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "urgency": "routine",
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
    });
    let body = multipart(server, gp, "/api/v1/threads", "thread", spec).await;
    let thread = body["thread_id"].as_str().unwrap().to_string();
    // Wait for delivery, then open (the receipt), accept and report.
    let mut opened = false;
    for _ in 0..100 {
        let r = rad
            .get(server.url(&format!("/api/v1/threads/{thread}")))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            let v: Value = r.json().await.unwrap();
            if v["state"] != "sent" {
                opened = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(opened, "thread {thread} was not delivered");
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
    thread
}

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

async fn wait_delivered(db: &Db, ids: &[&str]) {
    for _ in 0..200 {
        let list = ids
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",");
        let pending = db
            .count(&format!(
                "SELECT COUNT(*) FROM delivery_queue WHERE state <> 'done' AND envelope_id IN ({list})"
            ))
            .await;
        if pending == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("items not delivered");
}

#[tokio::test]
async fn retention_deletes_what_is_older_than_the_limit_with_its_blobs() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    let server = net.serve(&[]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let to = json!([{ "account": rad }]);
    let old = send_item(&server, &gp_c, to.clone(), "P-1", vec![("a.dcm", dicom(1))]).await;
    let young = send_item(&server, &gp_c, to.clone(), "P-2", vec![("b.dcm", dicom(2))]).await;
    let later = send_item(&server, &gp_c, to.clone(), "P-3", vec![("c.dcm", dicom(3))]).await;
    // A thread whose opening is old but whose report is recent stays whole.
    let thread = reported_thread(&server, &gp_c, &rad_c, &rad, "P-4").await;
    let db = Db::open(&net).await;
    wait_delivered(&db, &[&old, &young, &later]).await;
    let old_blobs = blob_keys(&db, &old).await;
    assert_eq!(
        old_blobs.len(),
        2,
        "the attachment and the sealed intake record"
    );
    let blob_dir = net.data_dir().join("blobs");
    assert!(blob_dir.join(&old_blobs[0]).exists());

    // The clock, moved for the items: `old` was sealed 400 days ago, `later`
    // 40 days ago, the thread's opening 400 days ago (its steps are today's).
    let day = 86_400;
    db.exec(&format!(
        "UPDATE envelopes SET created_at = created_at - {} WHERE id = '{old}'",
        400 * day
    ))
    .await;
    db.exec(&format!(
        "UPDATE envelopes SET created_at = created_at - {} WHERE id = '{later}'",
        40 * day
    ))
    .await;
    db.exec(&format!(
        "UPDATE envelopes SET created_at = created_at - {} WHERE id IN \
         (SELECT opener_id FROM threads WHERE id = '{thread}')",
        400 * day
    ))
    .await;

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
    let mut gone = false;
    for _ in 0..100 {
        if db
            .count(&format!(
                "SELECT COUNT(*) FROM envelopes WHERE id = '{later}'"
            ))
            .await
            == 0
        {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the scheduled retention job did not delete {later}");
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

fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) must be installed");
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Without whitespace, so line breaks inside long values do not matter.
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[tokio::test]
async fn reading_report_pdf_carries_the_japanese_text_signer_and_hash() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    let server = net.serve(&[]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let thread = reported_thread(&server, &gp_c, &rad_c, &rad, PATIENT_ID).await;
    let db = Db::open(&net).await;
    let report = db
        .strings(&format!(
            "SELECT id FROM envelopes WHERE thread_id = '{thread}' AND step = 'report'"
        ))
        .await
        .into_iter()
        .flatten()
        .next()
        .unwrap();
    wait_delivered(&db, &[&report]).await;
    // The requester opens the report: signature status, fingerprint and hash.
    let r = gp_c
        .get(server.url(&format!("/api/v1/envelopes/{report}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let item: Value = r.json().await.unwrap();
    assert_eq!(item["signature"]["status"], "valid", "{item}");
    let fingerprint = item["signature"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let sha = item["signature"]["signed_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sha.len(), 64);
    // The fingerprint is the reporting doctor's key as the server holds it.
    let rad_bare = rad.replace('-', "");
    let stored = db
        .strings(&format!(
            "SELECT fingerprint FROM account_keys WHERE account_id = '{rad_bare}'"
        ))
        .await;
    assert_eq!(
        stored.first().cloned().flatten().unwrap().to_lowercase(),
        fingerprint.to_lowercase()
    );

    let r = gp_c
        .get(server.url(&format!("/api/v1/envelopes/{report}/pdf")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().await.unwrap().to_vec();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(
        pdf.len() < 500_000,
        "font subset, not the whole font: {}",
        pdf.len()
    );
    let text = pdftotext(&pdf);
    let flat = squeeze(&text);
    for want in [
        "読影報告書",
        FINDINGS,
        "炎症性変化を疑います",
        "さぬき中央病院",
        "讃岐一郎",
        PATIENT_ID,
        "丸亀花子",
    ] {
        assert!(
            flat.contains(&squeeze(want)),
            "{want} not in PDF text:\n{text}"
        );
    }
    assert!(
        flat.to_lowercase().contains(&fingerprint.to_lowercase()),
        "fingerprint:\n{text}"
    );
    assert!(flat.contains(&sha), "hash:\n{text}");
    assert!(flat.contains("有効"), "signature status:\n{text}");
    let today = (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y-%m-%d")
        .to_string();
    assert!(flat.contains(&today), "date:\n{text}");

    // The detached signature verifies against the exporter's certificate.
    let r = gp_c
        .get(server.url(&format!("/api/v1/envelopes/{report}/pdf.asc")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let asc = r.text().await.unwrap();
    assert!(asc.starts_with("-----BEGIN PGP SIGNATURE-----"), "{asc}");
    let gp_bare = gp.replace('-', "");
    let cert_bytes: Vec<u8> = match &db {
        Db::Pg(p) => sqlx::query_scalar(&format!(
            "SELECT cert FROM account_keys WHERE account_id = '{gp_bare}'"
        ))
        .fetch_one(p)
        .await
        .unwrap(),
        Db::Lite(p) => sqlx::query_scalar(&format!(
            "SELECT cert FROM account_keys WHERE account_id = '{gp_bare}'"
        ))
        .fetch_one(p)
        .await
        .unwrap(),
    };
    let cert = renkei_crypto::Certificate::from_bytes(&cert_bytes).unwrap();
    assert!(renkei_crypto::verify_detached(&cert, &pdf, &asc).unwrap());
    let mut altered = pdf.clone();
    let n = altered.len() / 2;
    altered[n] ^= 1;
    assert!(!renkei_crypto::verify_detached(&cert, &altered, &asc).unwrap());
    // Someone without a key slot gets 404, as for the item itself.
    let (clerk, clerk_pw) = net.add_user("clerk", CLINIC, "事務 花子");
    let clerk_c = net.ready_client(&server, &clerk, &clerk_pw).await;
    let r = clerk_c
        .get(server.url(&format!("/api/v1/envelopes/{report}/pdf")))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::OK);
    // The export is in the audit trail.
    drop(server);
    let csv = net.admin(&[
        "audit",
        "export",
        "--from",
        "2020-01-01",
        "--to",
        "2099-12-31",
    ]);
    assert!(csv.contains(&format!(",render,{report},pdf")), "{csv}");
    assert!(!csv.contains(FINDINGS) && !csv.contains(PATIENT_ID));

    // Credential letters print as PDF too.
    let letter = net.data_dir().join("letter.pdf");
    let out = net.admin(&[
        "user",
        "add",
        "--role",
        "doctor",
        "--facility",
        HOSPITAL,
        "--name",
        "善通寺 四郎",
        "--letter-pdf",
        letter.to_str().unwrap(),
    ]);
    let (id, password) = crate::harness::parse_letter(&out);
    let text = squeeze(&pdftotext(&std::fs::read(&letter).unwrap()));
    for want in [
        "利用者ID通知書",
        "善通寺四郎",
        &id,
        &password,
        "さぬき中央病院",
    ] {
        assert!(
            text.contains(&squeeze(want)),
            "{want} not in the letter: {text}"
        );
    }
}

#[tokio::test]
async fn billing_charges_whole_months_without_proration() {
    let net = Network::new().await;
    // Joined on the 31st; left on the 1st; gone before the month; joined after it.
    net.admin(&[
        "facility",
        "add",
        "--code",
        HOSPITAL,
        "--name",
        "さぬき中央病院",
        "--active-from",
        "2026-10-31",
    ]);
    net.admin(&[
        "facility",
        "add",
        "--code",
        CLINIC,
        "--name",
        "ことひら内科クリニック",
        "--active-from",
        "2025-04-01",
    ]);
    net.admin(&["facility", "deactivate", CLINIC, "--last-day", "2026-10-01"]);
    net.admin(&[
        "facility",
        "add",
        "--code",
        "3710400015",
        "--name",
        "まんのう診療所",
        "--active-from",
        "2025-04-01",
    ]);
    net.admin(&[
        "facility",
        "deactivate",
        "3710400015",
        "--last-day",
        "2026-09-30",
    ]);
    net.admin(&[
        "facility",
        "add",
        "--code",
        "3710500012",
        "--name",
        "たどつ歯科",
        "--active-from",
        "2026-11-01",
    ]);
    let csv_path = net.data_dir().join("statement.csv");
    let pdf_path = net.data_dir().join("statement.pdf");
    let out = net.admin(&[
        "billing",
        "--month",
        "2026-10",
        "--csv",
        csv_path.to_str().unwrap(),
        "--pdf",
        pdf_path.to_str().unwrap(),
    ]);
    assert!(out.contains("2 facilities, total 13000 JPY"), "{out}");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(
        csv.contains(&format!(
            "2026-10,{HOSPITAL},さぬき中央病院,2026-10-31,,6500"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "2026-10,{CLINIC},ことひら内科クリニック,2025-04-01,2026-10-01,6500"
        )),
        "{csv}"
    );
    assert!(
        !csv.contains("3710400015") && !csv.contains("3710500012"),
        "{csv}"
    );
    assert!(csv.trim_end().ends_with(",13000"), "{csv}");
    let text = squeeze(&pdftotext(&std::fs::read(&pdf_path).unwrap()));
    for want in [
        "ご利用料金明細書2026-10",
        "さぬき中央病院",
        "ことひら内科クリニック",
        "13000円",
    ] {
        assert!(text.contains(want), "{want} not in the statement: {text}");
    }
    assert!(!text.contains("まんのう診療所") && !text.contains("たどつ歯科"));
    // November: the dental clinic joins; the clinic that left on Oct 1st pays nothing.
    let out = net.admin(&["billing", "--month", "2026-11"]);
    assert!(out.contains("2 facilities, total 13000 JPY"), "{out}");
    assert!(out.contains("3710500012") && !out.contains(CLINIC), "{out}");
    let out = net.run(&["admin", "billing", "--month", "2026/10"]);
    assert_eq!(out.code, Some(65));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_into_a_fresh_folder_where_every_item_opens() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    let server = net.serve(&[]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let to = json!([{ "account": rad }]);
    // Items keep arriving while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (stop, client, url) = (stop.clone(), gp_c.clone(), server.url(""));
        let to = to.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut n = 0u8;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n = n.wrapping_add(1);
                let envelope = json!({
                    "kind": "reading_request", "to": to, "subject": "負荷", "patient_id": format!("LOAD-{n}"),
                    "patient_name": PATIENT_NAME, "body": FINDINGS,
                    "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
                    "attachments": [{ "name": "x.dcm", "media_type": "application/dicom" }],
                });
                let form = Form::new()
                    .part(
                        "envelope",
                        Part::text(envelope.to_string())
                            .mime_str("application/json")
                            .unwrap(),
                    )
                    .part("file", Part::bytes(dicom(n)).file_name("x.dcm"));
                let r = client
                    .post(format!("{url}/api/v1/envelopes"))
                    .multipart(form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let v: Value = r.json().await.unwrap();
                sent.push(v["id"].as_str().unwrap().to_string());
            }
            sent
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let backup_dir = tempfile::tempdir().unwrap();
    let target = backup_dir.path().join("b1");
    let out = tokio::task::spawn_blocking({
        let args = net.args();
        let target = target.clone();
        move || {
            std::process::Command::new(crate::harness::bin())
                .args(args)
                .args(["admin", "backup"])
                .arg(&target)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.await.unwrap();
    assert!(sent.len() >= 3, "only {} items sent", sent.len());
    drop(server);

    // A fresh folder (and database) brought back from the backup.
    let restored = Network::new().await;
    let out = restored.run(&["admin", "restore", target.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let db = Db::open(&restored).await;
    let ids: Vec<String> = db
        .strings("SELECT id FROM envelopes ORDER BY created_at")
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        !ids.is_empty() && ids.len() <= sent.len(),
        "{} of {}",
        ids.len(),
        sent.len()
    );
    assert!(ids.iter().all(|id| sent.contains(id)));
    // Restoring over an existing database is refused.
    let out = restored.run(&["admin", "restore", target.to_str().unwrap()]);
    assert_ne!(out.code, Some(0));

    let server = restored.serve(&[]);
    let rad_c2 = server
        .sign_in(&rad, &format!("{rad_pw}-Mine-2026"))
        .await
        .unwrap();
    drop(rad_c);
    for id in &ids {
        let r = rad_c2
            .get(server.url(&format!("/api/v1/envelopes/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{id}");
        let item: Value = r.json().await.unwrap();
        assert_eq!(item["signature"]["status"], "valid", "{id}");
        let r = rad_c2
            .get(server.url(&format!("/api/v1/envelopes/{id}/attachments/0")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{id}");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(&bytes[128..132], b"DICM");
    }
    drop(server);
    let out = restored.admin(&["audit", "verify"]);
    assert!(out.contains("intact"), "{out}");
}
