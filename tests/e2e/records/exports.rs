//! Exports: a reading report's PDF (Japanese text, signer, hash, detached
//! signature), a credential letter's PDF, and the billing statement.

use reqwest::StatusCode;
use serde_json::Value;

use super::{FINDINGS, PATIENT_ID, reported_thread, wait_delivered};
use crate::harness::{CLINIC, Db, HOSPITAL, Network};

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
    let today = mailbox::clock::today_jst().format("%Y-%m-%d").to_string();
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
    let cert_bytes = db
        .bytes(&format!(
            "SELECT cert FROM account_keys WHERE account_id = '{gp_bare}'"
        ))
        .await;
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
