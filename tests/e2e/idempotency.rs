//! Idempotent submits against the real binary, on the backend under test
//! (`RENKEI_TEST_BACKEND`): `Idempotency-Key` on `POST /api/v1/envelopes`,
//! `/threads` and `/threads/{id}/steps`, and the pages' per-render form token.
//!
//! A retry with the same key answers the first answer (same status and body,
//! marked `Idempotent-Replayed: true`) and stores nothing; the same key with
//! another body answers 422 `idempotency_key_reused`; a malformed key 400
//! `idempotency_key_invalid`; another account's same key is its own. The
//! remembered row holds IDs only. Two POSTs of the same compose form (a double
//! click) make one thread and both lead to it. Submits whose server is
//! SIGKILLed mid-flight, retried after restart with the same keys, make
//! exactly one item each, and the answered ones keep their first ID.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::dicom_support::{PATIENT, Reading};
use crate::harness::{CLINIC, Db, HOSPITAL, Network, Server, answer, csrf_of, upload_form};
use crate::pages_doctor::PDF;

/// A patient name no stored row may hold in clear.
const MARKER_NAME: &str = "冪等 確認太郎";

/// A real one-page PDF, `padding` in a comment line after its header (so
/// two files can differ).
fn pdf(padding: &[u8]) -> Vec<u8> {
    let (header, rest) = PDF.split_at(PDF.find('\n').unwrap() + 1);
    let mut pdf = header.as_bytes().to_vec();
    pdf.push(b'%');
    pdf.extend(
        padding
            .iter()
            .map(|b| if b.is_ascii_alphanumeric() { *b } else { b'0' }),
    );
    pdf.push(b'\n');
    pdf.extend_from_slice(rest.as_bytes());
    pdf
}

fn envelope_to(rad: &str, body: &str) -> Value {
    json!({
        "kind": "reading_request", "to": [{ "account": rad }], "subject": "紹介状",
        "patient_id": PATIENT.0, "patient_name": MARKER_NAME, "body": body,
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": [{ "name": "a.pdf", "media_type": "application/pdf" }],
    })
}

/// `POST path` (multipart) with `key` as the Idempotency-Key: status, JSON, replayed?
async fn post_keyed(
    server: &Server,
    client: &reqwest::Client,
    path: &str,
    key: &str,
    form: Form,
) -> (StatusCode, Value, bool) {
    let r = client
        .post(server.url(path))
        .header("Idempotency-Key", key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let (status, body) = answer(r).await;
    (status, body, replayed)
}

async fn send_keyed(
    r: &Reading,
    key: &str,
    spec: &Value,
    file: &[u8],
) -> (StatusCode, Value, bool) {
    let form = upload_form("envelope", spec, vec![("a.pdf", pdf(file))]);
    post_keyed(&r.server, &r.gp_c, "/api/v1/envelopes", key, form).await
}

#[tokio::test]
async fn a_retried_send_with_the_same_key_stores_once_and_answers_the_same_id() {
    let r = Reading::start().await;
    let db = Db::open(&r.net).await;
    let spec = envelope_to(&r.rad, "ご高診をお願いします。");
    let key = "8b0c6c1e-5f7a-4d0e-9c43-2f1d0a7b9e11";

    let (s1, first, replayed) = send_keyed(&r, key, &spec, b"one").await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert!(!replayed);
    let id = first["id"].as_str().unwrap().to_string();

    // The retry: the first answer, byte for byte the same JSON, nothing stored.
    let (s2, second, replayed) = send_keyed(&r, key, &spec, b"one").await;
    assert_eq!(s2, StatusCode::CREATED, "{second}");
    assert!(replayed, "a replayed answer says so");
    assert_eq!(second, first);
    assert_eq!(db.count("SELECT COUNT(*) FROM envelopes").await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM delivery_queue").await, 1);

    // The same key with another body (text or file) is refused; nothing stored.
    let other = envelope_to(&r.rad, "別の本文です。");
    for (spec, file) in [(&other, &b"one"[..]), (&spec, &b"two"[..])] {
        let (s, body, _) = send_keyed(&r, key, spec, file).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"], "idempotency_key_reused", "{body}");
        assert!(body["message_ja"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM envelopes").await, 1);

    // Malformed keys: 400 with the JSON error, nothing stored.
    for bad in [
        "short",
        "has space in it",
        &"x".repeat(129),
        "日本語のキーです12345",
    ] {
        let (s, body, _) = send_keyed(&r, bad, &spec, b"one").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "idempotency_key_invalid", "{body}");
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM envelopes").await, 1);

    // The key is per account: the radiologist's same key sends its own item.
    let back = envelope_to(&r.gp, "返書です。");
    let form = upload_form("envelope", &back, vec![("a.pdf", pdf(b"one"))]);
    let (s, theirs, replayed) =
        post_keyed(&r.server, &r.rad_c, "/api/v1/envelopes", key, form).await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    assert!(!replayed);
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(db.count("SELECT COUNT(*) FROM envelopes").await, 2);

    // Without a key, nothing changes: every send stores.
    let (s, _) = r
        .server
        .send_envelope(&r.gp_c, &spec, vec![("a.pdf", pdf(b"one"))])
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(db.count("SELECT COUNT(*) FROM envelopes").await, 3);

    // What is remembered: the answer with the ID, nothing of the patient.
    assert_eq!(db.count("SELECT COUNT(*) FROM idempotency_keys").await, 2);
    // The first row is the GP's (the radiologist's came later).
    let remembered = db
        .bytes("SELECT response FROM idempotency_keys ORDER BY created_at LIMIT 1")
        .await;
    let remembered: Value = serde_json::from_slice(&remembered).unwrap();
    assert_eq!(remembered, json!({ "id": id }));
    let stored = db
        .bytes("SELECT key_hash FROM idempotency_keys LIMIT 1")
        .await;
    assert_eq!(stored.len(), 32, "the key is stored as its SHA-256");
    assert!(!String::from_utf8_lossy(&stored).contains(key));
    if r.net.database_url.is_none() {
        let file = std::fs::read(r.net.data_dir().join("renkei.db")).unwrap();
        let hay = String::from_utf8_lossy(&file);
        assert!(
            !hay.contains(MARKER_NAME),
            "the patient in clear in the store"
        );
        assert!(!hay.contains(key), "the key in clear in the store");
    }
}

#[tokio::test]
async fn a_retried_thread_and_step_with_the_same_key_answer_the_first_ids() {
    let r = Reading::start().await;
    let db = Db::open(&r.net).await;
    let spec = json!({
        "kind": "reading_request", "to": { "account": r.rad }, "subject": "胸部CT",
        "patient_id": PATIENT.0, "patient_name": MARKER_NAME, "body": "ご高診をお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "urgency": "routine",
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
    });
    let open = || upload_form("thread", &spec, Vec::<(&str, Vec<u8>)>::new());
    let key = "open-thread:0001";
    let (s, first, _) = post_keyed(&r.server, &r.gp_c, "/api/v1/threads", key, open()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, again, replayed) = post_keyed(&r.server, &r.gp_c, "/api/v1/threads", key, open()).await;
    assert_eq!((s, replayed), (StatusCode::CREATED, true), "{again}");
    assert_eq!(again, first);
    assert_eq!(db.count("SELECT COUNT(*) FROM threads").await, 1);
    let thread = first["thread_id"].as_str().unwrap();
    r.server.threads_delivered(&r.rad_c, &[thread]).await;

    // A step: without the key a second accept would be refused (the thread
    // moved on); with it, the retry answers the first envelope.
    let path = format!("/api/v1/threads/{thread}/steps");
    let step = || {
        upload_form(
            "step",
            &json!({ "step": "accept" }),
            Vec::<(&str, Vec<u8>)>::new(),
        )
    };
    let key = "accept.0001";
    let (s, first, _) = post_keyed(&r.server, &r.rad_c, &path, key, step()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, again, replayed) = post_keyed(&r.server, &r.rad_c, &path, key, step()).await;
    assert_eq!((s, replayed), (StatusCode::CREATED, true), "{again}");
    assert_eq!(again, first);
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM envelopes WHERE thread_id = '{thread}'"
        ))
        .await,
        2,
        "the opening and one accept"
    );
    // The same key on another thread's steps is another request: refused.
    let (s, body, _) = post_keyed(
        &r.server,
        &r.rad_c,
        "/api/v1/threads/0123456789abcdef0123456789abcdef/steps",
        key,
        step(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "idempotency_key_reused");
}

/// The compose form's fields as a browser posts them, its token included.
fn compose_form(page: &str, rad: &str) -> Form {
    let token_marker = "name=\"submit_token\" value=\"";
    let start = page.find(token_marker).expect("the form carries a token") + token_marker.len();
    let token = page[start..].split('"').next().unwrap().to_string();
    let mut form = Form::new()
        .text("csrf", csrf_of(page))
        .text("submit_token", token);
    for (k, v) in [
        ("kind", "reading_request"),
        ("to", &format!("account:{rad}")[..]),
        ("subject", "胸部CT"),
        ("patient_id", PATIENT.0),
        ("patient_name", MARKER_NAME),
        ("consent_on", "2026-11-20"),
        ("consent_method", "written"),
        ("consent_by", "坂出 明美"),
        ("body", "ご高診をお願いします。"),
        ("urgency", "routine"),
        ("modality", "CT"),
        ("body_part", "胸部"),
        ("clinical_question", "結節の評価"),
    ] {
        form = form.text(k.to_string(), v.to_string());
    }
    form.part(
        "attachments",
        Part::bytes(pdf(b"scan"))
            .file_name("a.pdf")
            .mime_str("application/pdf")
            .unwrap(),
    )
}

#[tokio::test]
async fn a_double_submitted_compose_form_makes_one_thread() {
    let r = Reading::start().await;
    let db = Db::open(&r.net).await;
    let page = r
        .gp_c
        .get(r.server.url("/compose?kind=reading_request"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Two POSTs of the same rendered form, at once (a double click).
    let post = || {
        r.gp_c
            .post(r.server.url("/compose"))
            .multipart(compose_form(&page, &r.rad))
            .send()
    };
    let (a, b) = tokio::join!(post(), post());
    let (a, b) = (a.unwrap(), b.unwrap());
    let location = |r: &reqwest::Response| {
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{r:?}");
        r.headers()["location"].to_str().unwrap().to_string()
    };
    assert_eq!(location(&a), location(&b), "both lead to the same thread");
    assert!(location(&a).starts_with("/threads/"));
    assert_eq!(db.count("SELECT COUNT(*) FROM threads").await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM envelopes").await, 1);

    // A third POST of the same form later still leads there; a fresh
    // rendering sends a new thread.
    let c = post().await.unwrap();
    assert_eq!(location(&c), location(&a));
    let fresh = r
        .gp_c
        .get(r.server.url("/compose?kind=reading_request"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let d = r
        .gp_c
        .post(r.server.url("/compose"))
        .multipart(compose_form(&fresh, &r.rad))
        .send()
        .await
        .unwrap();
    assert_ne!(location(&d), location(&a));
    assert_eq!(db.count("SELECT COUNT(*) FROM threads").await, 2);
}

const ROUNDS: usize = 4;
const CLIENTS: usize = 4;

/// Sends one keyed item after another until the server is gone, noting each
/// key before it is sent and the ID of each answer that arrived.
async fn keep_sending(
    server: &Server,
    client: &reqwest::Client,
    spec: &Value,
    name: &str,
    first: &Mutex<HashMap<String, Option<String>>>,
) {
    for n in 0.. {
        let key = format!("crash-{name}-{n:04}");
        first.lock().unwrap().insert(key.clone(), None);
        let form = upload_form("envelope", spec, vec![("a.pdf", pdf(&[b'x'; 16 * 1024]))]);
        let sent = client
            .post(server.url("/api/v1/envelopes"))
            .header("Idempotency-Key", &key)
            .multipart(form)
            .send()
            .await;
        let Ok(r) = sent else { return };
        if r.status() != StatusCode::CREATED {
            return;
        }
        let Ok(body) = r.json::<Value>().await else {
            return;
        };
        let id = body["id"].as_str().map(str::to_owned);
        first.lock().unwrap().insert(key, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_cut_off_by_sigkill_and_retried_with_their_keys_are_stored_once() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    {
        let server = net.serve(&[]);
        net.ready_client(&server, &rad, &rad_pw).await;
        net.ready_client(&server, &gp, &gp_pw).await;
    }
    let gp_pw = format!("{gp_pw}-Mine-2026");
    let spec = envelope_to(&rad, "ご高診をお願いします。");
    // key → the ID of the answer that reached its client, if one did.
    let first: Arc<Mutex<HashMap<String, Option<String>>>> = Arc::default();
    for round in 0..ROUNDS {
        let server = Arc::new(net.serve(&[]));
        let client = server.sign_in(&gp, &gp_pw).await.unwrap();
        let mut sends = Vec::new();
        for c in 0..CLIENTS {
            let (server, client, spec, first) =
                (server.clone(), client.clone(), spec.clone(), first.clone());
            sends.push(tokio::spawn(async move {
                let name = format!("{round}-{c}");
                keep_sending(&server, &client, &spec, &name, &first).await;
            }));
        }
        let wait = rand::thread_rng().gen_range(300..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill(); // SIGKILL: answers in flight are lost, submits cut off.
        for s in sends {
            s.await.unwrap();
        }
    }
    let first = first.lock().unwrap().clone();
    let answered = first.values().filter(|id| id.is_some()).count();
    let db = Db::open(&net).await;
    let committed = db.count("SELECT COUNT(*) FROM envelopes").await;
    eprintln!(
        "{} keyed submits, {answered} answered, {committed} committed before the retries",
        first.len()
    );
    assert!(answered > 0, "some submits were answered before the kills");

    // After a restart every key is retried: one item per key, the first ID
    // kept; exactly the committed ones are answered again.
    let server = net.serve(&[]);
    let client = server.sign_in(&gp, &gp_pw).await.unwrap();
    let mut ids = HashSet::new();
    let mut replays = 0;
    for (key, answered) in &first {
        let form = upload_form("envelope", &spec, vec![("a.pdf", pdf(&[b'x'; 16 * 1024]))]);
        let (s, body, replayed) =
            post_keyed(&server, &client, "/api/v1/envelopes", key, form).await;
        assert_eq!(s, StatusCode::CREATED, "{key}: {body}");
        let id = body["id"].as_str().unwrap().to_string();
        if let Some(answered) = answered {
            assert!(replayed, "{key}: an answered submit is answered again");
            assert_eq!(&id, answered, "{key}: the retry answers the first ID");
        }
        replays += usize::from(replayed);
        assert!(ids.insert(id), "{key}: a new ID for each key");
    }
    assert_eq!(
        i64::try_from(replays).unwrap(),
        committed,
        "every committed submit, answered or not, is answered again"
    );
    let keys = i64::try_from(first.len()).unwrap();
    assert_eq!(
        db.count("SELECT COUNT(*) FROM envelopes").await,
        keys,
        "exactly one item per key"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM idempotency_keys").await,
        keys
    );
}
