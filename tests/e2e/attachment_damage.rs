//! Damaged attachments through the real server, as a rogue database
//! administrator or a doctored backup would leave them: a flipped byte in one
//! small attachment's blob on disk, another blob cut short, a third
//! attachment's `blob_key` re-pointed at a fourth's blob by SQL. Each download
//! of a damaged one is 422 `tampered_attachment` (a JSON error, no byte of the
//! file), on the API and on the page's download link, the first time and
//! every time after; the item's JSON says `damaged` for those three and
//! `verified` for the sound one once it downloaded; one audit entry per
//! damaged attachment; and the thread page in Chromium shows each damaged
//! attachment in red, the sound one as verified, in Japanese and English.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, Db, HOSPITAL, Network, run_browser};

/// A small PDF of its own content (a few tens of KiB, well under 64 MiB).
fn pdf(n: u8) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n% a scanned letter\n".to_vec();
    bytes.extend((0..40_000u32).map(|i| (i as u8).wrapping_mul(n).wrapping_add(n)));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

const NAMES: [&str; 4] = ["反転.pdf", "切断.pdf", "付け替え.pdf", "無傷.pdf"];

/// The one step's attachments as the API shows them: name → (index, integrity).
fn attachments(item: &Value) -> Vec<(String, u64, String)> {
    item["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["index"].as_u64().unwrap(),
                a["integrity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_damaged_attachment_is_refused_before_any_byte_and_shown_damaged() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&[]);
    let gp_c = net.ready_client(&server, &gp, &gp_issued).await;
    let rad_c = net.ready_client(&server, &rad, &rad_issued).await;
    let files: Vec<(String, Vec<u8>)> = NAMES
        .iter()
        .zip(1u8..)
        .map(|(name, n)| (name.to_string(), pdf(n)))
        .collect();
    let spec = json!({
        "kind": "reading_request",
        "to": { "account": rad },
        "subject": "胸部CT 読影依頼",
        "patient_id": "P-0042",
        "patient_name": "香川 太郎",
        "body": "CT の読影をお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
        "attachments": NAMES.iter().map(|n| json!({ "name": n, "media_type": "application/pdf" })).collect::<Vec<_>>(),
    });
    let thread = server.opened_thread(&gp_c, &spec, files.clone()).await;
    server.threads_delivered(&rad_c, &[&thread]).await;
    let detail = server
        .get_json(&rad_c, &format!("/api/v1/threads/{thread}"))
        .await;
    let id = detail["steps"][0]["id"].as_str().unwrap().to_string();
    let item_path = format!("/api/v1/envelopes/{id}");
    let listed = attachments(&server.get_json(&rad_c, &item_path).await);
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().all(|a| a.2 == "unknown"), "{listed:?}");
    let index = |name: &str| listed.iter().find(|a| a.0 == name).unwrap().1;
    let download = |i: u64| format!("/api/v1/envelopes/{id}/attachments/{i}");

    // The sound file downloads whole, and is then known verified.
    let r = rad_c
        .get(server.url(&download(index(NAMES[3]))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap()[..] == files[3].1[..]);

    // The damage, on disk and in the database.
    let db = Db::open(&net).await;
    let key_of = async |i: u64| {
        db.strings(&format!(
            "SELECT blob_key FROM attachments WHERE envelope_id = '{id}' AND idx = {i}"
        ))
        .await[0]
            .clone()
            .unwrap()
    };
    let blob = |key: &str| net.data_dir().join("blobs").join(key);
    let flipped = blob(&key_of(index(NAMES[0])).await);
    let mut bytes = std::fs::read(&flipped).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&flipped, &bytes).unwrap();
    let cut = blob(&key_of(index(NAMES[1])).await);
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 64]).unwrap();
    let sound_key = key_of(index(NAMES[3])).await;
    let repointed = db
        .exec(&format!(
            "UPDATE attachments SET blob_key = '{sound_key}' WHERE envelope_id = '{id}' AND idx = {}",
            index(NAMES[2])
        ))
        .await;
    assert_eq!(repointed, 1);

    let mut refusal = Value::Null;
    // Each damaged file: 422 with the error's JSON and nothing of the file,
    // found now and refused at once from then on, on the API and the page.
    for (name, file) in NAMES[..3].iter().zip(&files) {
        let i = index(name);
        for path in [
            download(i),
            download(i),
            format!("/items/{id}/attachments/{i}"),
        ] {
            let r = rad_c.get(server.url(&path)).send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{name} {path}"
            );
            assert!(r.headers().get("content-disposition").is_none(), "{path}");
            assert!(r.headers().get("x-renkei-sha256").is_none(), "{path}");
            let api = path.starts_with("/api/");
            let media = r.headers()["content-type"].to_str().unwrap().to_string();
            let body = r.bytes().await.unwrap();
            assert!(
                !body.windows(64).any(|w| file.1[1000..1064] == *w),
                "{path}: no byte of the file"
            );
            if api {
                assert!(media.starts_with("application/json"), "{media}");
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["error"], "tampered_attachment", "{path}: {v}");
                refusal = v;
            } else {
                assert!(media.starts_with("text/html"), "{media}");
                let html = String::from_utf8_lossy(&body);
                assert!(
                    html.contains("添付ファイルが署名された内容と一致しません"),
                    "{html}"
                );
            }
        }
    }
    // The sound file still downloads (its blob is the one re-pointed at).
    let r = rad_c
        .get(server.url(&download(index(NAMES[3]))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap()[..] == files[3].1[..]);

    // What the item says of each, on its own and in its thread.
    let states: Vec<(String, String)> = attachments(&server.get_json(&rad_c, &item_path).await)
        .into_iter()
        .map(|a| (a.0, a.2))
        .collect();
    let want: Vec<(String, String)> = NAMES
        .iter()
        .zip(["damaged", "damaged", "damaged", "verified"])
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    assert_eq!(states, want);
    let in_thread = server
        .get_json(&rad_c, &format!("/api/v1/threads/{thread}"))
        .await;
    let states: Vec<(String, String)> = attachments(&in_thread["steps"][0])
        .into_iter()
        .map(|a| (a.0, a.2))
        .collect();
    assert_eq!(states, want);

    // The answers are what the OpenAPI document describes.
    let doc = server
        .get_json(&server.client(), "/api/v1/openapi.json")
        .await;
    assert_eq!(
        doc["components"]["schemas"]["IntegrityView"]["enum"],
        json!(["unknown", "verified", "damaged"])
    );
    let item = server.get_json(&rad_c, &item_path).await;
    let v = crate::openapi::check(
        &doc,
        &json!([
            ["ItemView", item],
            ["ThreadDetail", in_thread],
            ["ErrorBody", refusal]
        ]),
    );
    assert_eq!(v["sample_errors"], json!([]), "{v}");

    // One audit entry per damaged attachment, naming its index only.
    let audit = net.audit_export();
    let mut marked: Vec<String> = audit
        .lines()
        .filter(|l| l.contains("attachment_damaged"))
        .map(|l| {
            assert!(l.contains(&id) && l.contains(&rad.replace('-', "")), "{l}");
            assert!(!l.contains("香川") && !l.contains(".pdf"), "{l}");
            l.to_string()
        })
        .collect();
    assert_eq!(marked.len(), 3, "{audit}");
    marked.sort();
    for name in &NAMES[..3] {
        let detail = format!("attachment={}", index(name));
        assert!(
            marked.iter().any(|l| l.contains(&detail)),
            "{detail}: {marked:?}"
        );
    }

    // The thread page in Chromium: damaged in red, the sound one verified.
    let cfg = json!({
        "base": server.url(""),
        "id": rad,
        "password": format!("{rad_issued}-Mine-2026"),
        "thread": thread,
        "download": format!("/items/{id}/attachments/{}", index(NAMES[0])),
    });
    let out = run_browser("attachment_damage.cjs", &[&cfg.to_string()]);
    assert_eq!(out["errors"], json!([]), "{out}");
    let red = "rgb(163, 0, 0)";
    for (lang, damaged, verified) in [
        ("ja", "✘ 破損（署名と一致しません）", "✔ 検証済み"),
        (
            "en",
            "✘ Damaged (does not match its signature)",
            "✔ Verified",
        ),
    ] {
        let lines = out[lang].as_array().unwrap();
        assert_eq!(lines.len(), 4, "{out}");
        for (line, name) in lines.iter().zip(NAMES) {
            assert_eq!(line["name"], name, "{out}");
            if name == NAMES[3] {
                assert_eq!(line["state"], "verified", "{line}");
                assert_eq!(line["text"], verified, "{line}");
            } else {
                assert_eq!(line["state"], "damaged", "{line}");
                assert_eq!(line["text"], damaged, "{line}");
                assert_eq!(line["color"], red, "{line}");
            }
        }
    }
    assert_eq!(out["download_status"], 422, "{out}");
}
