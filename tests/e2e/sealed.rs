//! Sealed items over the real HTTPS API, and the stolen-store check: after a
//! realistic flow, no file of the data folder (database, WAL, blobs, logs) and no
//! `pg_dump` holds any patient marker in UTF-8, UTF-16 or Shift_JIS.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, Server, wait_until};

const PATIENT_KANJI: &str = "香川 太郎";
const PATIENT_KANA: &str = "カガワ タロウ";
const PATIENT_ID: &str = "KGW-4471-2026";
const FINDINGS: &str = "右上葉に結節影を認めます";
const PIXEL_MARKER: &[u8] = b"\x7fRENKEI-PIXEL-MARKER\x13\x37\xc0\xde";

/// A DICOM file whose data carries a marker.
fn dicom_bytes() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..4000u32 {
        v.extend_from_slice(&i.to_le_bytes());
        v.extend_from_slice(PIXEL_MARKER);
    }
    imaging::sample::with_payload(&v)
}

async fn send(
    server: &Server,
    client: &reqwest::Client,
    to: Value,
    files: Vec<(&str, Vec<u8>)>,
) -> (StatusCode, Value) {
    let envelope = json!({
        "kind": "reading_request",
        "to": to,
        "subject": format!("胸部CT 読影依頼（{PATIENT_KANA}様）"),
        "patient_id": PATIENT_ID,
        "patient_name": PATIENT_KANJI,
        "body": format!("臨床所見：{FINDINGS}。ご高診をお願いします。"),
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": files.iter().map(|(n, _)| json!({"name": n, "media_type": "application/dicom"})).collect::<Vec<_>>(),
    });
    server.send_envelope(client, &envelope, files).await
}

fn encodings(marker: &str) -> Vec<(String, Vec<u8>)> {
    let utf16le: Vec<u8> = marker
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let utf16be: Vec<u8> = marker
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(marker);
    vec![
        (format!("{marker} UTF-8"), marker.as_bytes().to_vec()),
        (format!("{marker} UTF-16LE"), utf16le),
        (format!("{marker} UTF-16BE"), utf16be),
        (format!("{marker} Shift_JIS"), sjis.into_owned()),
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test]
async fn sealed_items_over_https_and_a_stolen_store_reveals_nothing() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (col, col_pw) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let (clerk, clerk_pw) = net.add_user("clerk", HOSPITAL, "坂出 明美");
    let (liaison, liaison_pw) = net.add_user("liaison", HOSPITAL, "地域連携室");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let server = net.serve(&[]);
    // The clerk signs in first: that completes the liaison's pending oversight grant.
    let clerk_c = net.ready_client(&server, &clerk, &clerk_pw).await;
    let liaison_c = net.ready_client(&server, &liaison, &liaison_pw).await;
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let col_c = net.ready_client(&server, &col, &col_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;

    let dicom = dicom_bytes();
    let (status, body) = send(
        &server,
        &gp_c,
        json!([{ "account": rad }]),
        vec![("CT0001.dcm", dicom.clone())],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();

    // The delivery worker puts it in the radiologist's Inbox within moments.
    let inbox = wait_until("the item in the Inbox", Duration::from_secs(10), || async {
        let (_, inbox) = server.get_answer(&rad_c, "/api/v1/mailbox/inbox").await;
        inbox
            .as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(inbox)
    })
    .await;
    assert_eq!(inbox[0]["id"], id.as_str(), "{inbox}");
    assert_eq!(inbox[0]["seen"], false);
    let delivery: Value = gp_c
        .get(server.url(&format!("/api/v1/envelopes/{id}/delivery")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(delivery["state"], "done", "{delivery}");
    let item: Value = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(item["patient_name"], PATIENT_KANJI);
    assert_eq!(item["patient_id"], PATIENT_ID);
    assert!(item["body"].as_str().unwrap().contains(FINDINGS));
    assert_eq!(item["signature"]["status"], "valid");
    assert_eq!(item["consent"]["method"], "written");
    assert_eq!(item["consent"]["obtained_on"], "2026-11-20");
    // Who consented defaults to the patient when the sender does not say.
    assert_eq!(item["consent"]["given_by"], "patient", "{item}");
    assert_eq!(item["consent"]["relation"], Value::Null);
    assert_eq!(item["sender"], gp.replace('-', ""));
    assert_eq!(item["attachments"][0]["name"], "CT0001.dcm");
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{id}/attachments/0")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-disposition"], "attachment");
    assert_eq!(r.bytes().await.unwrap().to_vec(), dicom);

    // The clerk of the receiving facility reads through the oversight key; the
    // colleague who was not addressed gets the same answer as for a missing item.
    let r = clerk_c
        .get(server.url(&format!("/api/v1/envelopes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["opened_as"],
        format!("oversight:{HOSPITAL}")
    );
    let r = col_c
        .get(server.url(&format!("/api/v1/envelopes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let missing = col_c
        .get(server.url("/api/v1/envelopes/00000000000000000000000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        missing.json::<Value>().await.unwrap()
    );

    // To the liaison inbox, then handed to the radiologist.
    let (status, body) = send(&server, &gp_c, json!([{ "liaison": HOSPITAL }]), vec![]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let inbox_id = body["id"].as_str().unwrap().to_string();
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{inbox_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = liaison_c
        .post(server.url(&format!("/api/v1/envelopes/{inbox_id}/forward")))
        .json(&json!({ "to": rad }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{inbox_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let listed: Value = rad_c
        .get(server.url("/api/v1/envelopes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // No consent, no send — and nothing is stored.
    let before: Value = gp_c
        .get(server.url("/api/v1/envelopes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let no_consent = json!({ "kind": "referral", "to": [{ "account": rad }], "patient_id": PATIENT_ID,
        "patient_name": PATIENT_KANJI, "body": "紹介状" });
    let r = gp_c
        .post(server.url("/api/v1/envelopes"))
        .multipart(Form::new().part("envelope", Part::text(no_consent.to_string())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message_ja"].as_str().unwrap().contains("同意"),
        "{body}"
    );
    // A guardian's consent must say their relation to the patient.
    let no_relation = json!({ "kind": "referral", "to": [{ "account": rad }], "patient_id": PATIENT_ID,
        "patient_name": PATIENT_KANJI, "body": "紹介状",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美",
            "given_by": "guardian" } });
    let r = gp_c
        .post(server.url("/api/v1/envelopes"))
        .multipart(Form::new().part("envelope", Part::text(no_relation.to_string())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("relation"),
        "{body}"
    );
    assert!(
        body["message_ja"].as_str().unwrap().contains("続柄"),
        "{body}"
    );
    let after: Value = gp_c
        .get(server.url("/api/v1/envelopes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    // Refusals say what was wrong: an executable renamed to .dcm, judged by content.
    let (status, body) = send(
        &server,
        &gp_c,
        json!([{ "account": rad }]),
        vec![("scan.dcm", b"\x7fELF\x02\x01\x01 not an image".to_vec())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("scan.dcm"),
        "{body}"
    );
    assert!(
        body["message_ja"].as_str().unwrap().contains("実行形式"),
        "{body}"
    );
    let (status, body) = send(&server, &gp_c, json!([{ "account": "K7M4-QX9R" }]), vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let r = gp_c
        .post(server.url("/api/v1/envelopes"))
        .multipart(Form::new().part("envelope", Part::text("{not json")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    // Stop the server, then search everything it left behind.
    drop(server);
    let mut files = Vec::new();
    files_under(net.data_dir(), &mut files);
    assert!(
        files.iter().any(|f| f.to_string_lossy().contains("blobs")),
        "blobs were written"
    );
    assert!(files.iter().any(|f| f.ends_with("server.log")));
    let mut dumps: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .collect();
    if let Some(url) = &net.database_url {
        let out = std::process::Command::new("pg_dump")
            .arg("--dbname")
            .arg(url)
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            contains(&out.stdout, b"envelopes"),
            "the dump holds the tables"
        );
        dumps.push(("pg_dump".into(), out.stdout));
    } else {
        assert!(files.iter().any(|f| f.ends_with("renkei.db")));
    }
    let mut markers: Vec<(String, Vec<u8>)> = Vec::new();
    for m in [PATIENT_KANJI, PATIENT_KANA, PATIENT_ID, FINDINGS] {
        markers.extend(encodings(m));
    }
    markers.push(("DICOM pixel pattern".into(), PIXEL_MARKER.to_vec()));
    let mut hits = Vec::new();
    for (file, bytes) in &dumps {
        for (what, needle) in &markers {
            if contains(bytes, needle) {
                hits.push(format!("{what} in {file}"));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "patient data readable at rest:\n{}",
        hits.join("\n")
    );
}

#[tokio::test]
async fn password_resets_from_the_cli_with_and_without_the_recovery_file() {
    let net = Network::new().await;
    let offline = tempfile::tempdir().unwrap();
    let recovery_file = offline.path().join("offline-recovery.txt");
    let passphrase = (
        "RENKEI_RECOVERY_PASSPHRASE",
        "讃岐の山並み-2026-保管用の合言葉",
    );
    let init = |out: &std::path::Path, env: &[(&str, &str)]| {
        crate::records::custody::run_env(
            &net,
            &["admin", "recovery", "init", "--out", out.to_str().unwrap()],
            env,
        )
    };
    // No passphrase, or one inside the data folder: refused, nothing made.
    assert_eq!(init(&recovery_file, &[]).code, Some(65));
    let inside = init(&net.data_dir().join("recovery.txt"), &[passphrase]);
    assert_eq!(inside.code, Some(65), "{}", inside.stderr);
    let out = init(&recovery_file, &[passphrase]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("recovery certificate stored"),
        "{}",
        out.stdout
    );
    // Never in clear: the file holds the key locked under the passphrase.
    let text = std::fs::read_to_string(&recovery_file).unwrap();
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let file = renkei_crypto::RecoveryFile::parse(&text).unwrap();
    assert!(renkei_crypto::open_recovery(&[file], Some(b"wrong passphrase")).is_err());
    let file = renkei_crypto::RecoveryFile::parse(&text).unwrap();
    let key = renkei_crypto::open_recovery(&[file], Some(passphrase.1.as_bytes())).unwrap();
    for secret in key.secret_material_for_tests() {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex) && !text.contains(&hex.to_uppercase()));
        assert!(!contains(text.as_bytes(), &secret));
    }
    // Only the certificate is on the server: a second init is refused.
    let again = init(&offline.path().join("x.txt"), &[passphrase]);
    assert_eq!(again.code, Some(73), "{}", again.stderr);

    // Two operators, each with their password.
    let (op1, op1_pw) = crate::harness::parse_letter(&net.admin(&[
        "user",
        "add",
        "--role",
        "operator",
        "--name",
        "運営 一郎",
    ]));
    let (op2, op2_pw) = crate::harness::parse_letter(&net.admin(&[
        "user",
        "add",
        "--role",
        "operator",
        "--name",
        "運営 二郎",
    ]));
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let server = net.serve(&[]);
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let (status, body) = send(&server, &gp_c, json!([{ "account": rad }]), vec![]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // With the recovery file: one operator is refused, the same one twice too.
    let reset = [
        "admin",
        "user",
        "reset-password",
        &rad,
        "--recovery-key",
        recovery_file.to_str().unwrap(),
    ];
    let alone = crate::records::custody::run_env(&net, &reset, &[passphrase]);
    assert_eq!(alone.code, Some(77), "{}", alone.stderr);
    assert!(alone.stderr.contains("two operators"), "{}", alone.stderr);
    let first = ["--operator", op1.as_str()];
    let twice: Vec<&str> = first
        .iter()
        .copied()
        .chain(["--second-operator", op1.as_str()])
        .chain(reset)
        .collect();
    let env = [
        passphrase,
        ("RENKEI_OPERATOR_PASSWORD", op1_pw.as_str()),
        ("RENKEI_SECOND_OPERATOR_PASSWORD", op1_pw.as_str()),
    ];
    let out = crate::records::custody::run_env(&net, &twice, &env);
    assert_eq!(out.code, Some(77), "{}", out.stderr);
    // Two operators: same key, the item still opens, and both are on the trail.
    let both: Vec<&str> = first
        .iter()
        .copied()
        .chain(["--second-operator", op2.as_str()])
        .chain(reset)
        .collect();
    let env = [
        passphrase,
        ("RENKEI_OPERATOR_PASSWORD", op1_pw.as_str()),
        ("RENKEI_SECOND_OPERATOR_PASSWORD", op2_pw.as_str()),
    ];
    let out = crate::records::custody::run_env(&net, &both, &env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let letter = out.stdout;
    // Completing grants with it takes two operators as well.
    let grants = [
        "admin",
        "grants",
        "complete",
        "--recovery-key",
        recovery_file.to_str().unwrap(),
    ];
    let alone = crate::records::custody::run_env(&net, &grants, &[passphrase]);
    assert_eq!(alone.code, Some(77), "{}", alone.stderr);
    let both_grants: Vec<&str> = both[..4].iter().copied().chain(grants).collect();
    let out = crate::records::custody::run_env(&net, &both_grants, &env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("pending grant(s) completed"),
        "{}",
        out.stdout
    );
    let trail = net.audit_export();
    let (s1, s2) = (op1.replace('-', ""), op2.replace('-', ""));
    let used: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("recovery key used: user reset-password"))
        .collect();
    assert_eq!(used.len(), 1, "{trail}");
    assert!(
        used[0].contains(&format!(",{s1},")) && used[0].contains(&format!("second operator {s2}")),
        "{}",
        used[0]
    );
    let refused = trail
        .lines()
        .filter(|l| l.contains("user reset-password: failed"))
        .count();
    assert_eq!(refused, 2, "{trail}");
    assert!(
        trail.lines().any(|l| l.contains("grants complete: failed"))
            && trail.lines().any(|l| l.contains(&format!(
                "recovery key used: grants complete (second operator {s2}): ok"
            ))),
        "{trail}"
    );
    assert!(
        letter.contains("every earlier item stays readable"),
        "{letter}"
    );
    let (_, issued) = crate::harness::parse_letter(&letter);
    // The reset ended the old session.
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let rad_c = net.ready_client(&server, &rad, &issued).await;
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["signature"]["status"],
        "valid"
    );

    // Without it: a new key, and the letter says plainly which item is lost.
    let letter = net.admin(&["user", "reset-password", &rad]);
    assert!(
        letter.contains("can no longer open 1 earlier item"),
        "{letter}"
    );
    assert!(letter.contains(&id), "{letter}");
    let (_, issued) = crate::harness::parse_letter(&letter);
    let rad_c = net.ready_client(&server, &rad, &issued).await;
    let r = rad_c
        .get(server.url(&format!("/api/v1/envelopes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The sender, unaffected, still reads it with a valid signature.
    let r = gp_c
        .get(server.url(&format!("/api/v1/envelopes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["signature"]["status"],
        "valid"
    );
}
