//! Records: the hash-chained audit trail, retention, patient deletion requests,
//! billing and CSV reports, over the real binary and both databases.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::harness::{Network, Server};

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";

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
    let mut v = vec![0u8; 128];
    v.extend_from_slice(b"DICM");
    v.extend(std::iter::repeat_n(marker, 20_000));
    v
}

fn add_facilities(net: &Network) {
    net.admin(&[
        "facility",
        "add",
        "--code",
        HOSPITAL,
        "--name",
        "さぬき中央病院",
    ]);
    net.admin(&[
        "facility",
        "add",
        "--code",
        CLINIC,
        "--name",
        "ことひら内科クリニック",
    ]);
}

#[tokio::test]
async fn audit_trail_is_chained_scoped_and_names_the_damaged_entry() {
    let net = Network::new().await;
    add_facilities(&net);
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

    let id = send_item(&server, &gp_c, json!([{ "account": rad }]), PATIENT_ID, vec![
        ("ct.dcm", dicom(7)),
    ])
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
    assert!(entries.iter().all(|e| e["facility"] == HOSPITAL), "{entries:?}");
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
        ("prev_hash", "'1' || substr(prev_hash, 2)"),
        ("hash", "'f' || substr(hash, 2)"),
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
            out.stdout
                .contains(&format!("broken at entry {target}:")),
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
