//! The soft large-item warning (`[attachments] warn_above_mib`) against the
//! real binary. The envelope API answers 201 either way, with a `large_item`
//! warning only above the threshold (both answers valid against the served
//! OpenAPI schema), and the server logs the envelope and sizes only. In
//! Chromium the compose page warns before sending when the files picked (or
//! the files inside a ZIP) add up to more than the threshold, the warning goes
//! when they shrink, and a large item is sent all the same; the thread's
//! report form, which takes files, warns the same way.
//!
//! In detail (+ `clients/size_warning.cjs`, headless Chromium),
//! on both backends, with `Reading::start_with` and a 1 MiB threshold: through
//! the API (threshold from a config file) 1.5 MiB of PDFs answer 201 with the
//! `large_item` warning and its exact totals and arrive whole, exactly 1 MiB and
//! 0.5 MiB answer `{id}` alone, all three answers fit the served OpenAPI schema
//! (`openapi::check`), and so does opening a thread through `POST /threads`;
//! the log holds one info line per large item with the envelope and
//! sizes, no names; `--attachments-warn-above-mib 0` stops `serve` with its
//! message. In Chromium (threshold from the flag) two files together over the
//! threshold show the warning (ja and en, screenshots `size-warning`), one of
//! them or a small file hides it, a deflated ZIP far under the threshold shows it
//! for its unpacked files, and the large pair is sent all the same (the thread
//! lists both; one log line); the radiologist, once the request is accepted,
//! picks the same pair in the report form's file field and sees the warning,
//! a small file hides it, and the report sent with the pair is logged too. `src/config.rs` unit tests: the key, the default,
//! the flag over the file, 0 and overflow refused, a misspelt key refused.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;

use crate::dicom_support::{PATIENT, Reading, python};
use crate::harness::{Network, run_browser};
use crate::openapi;
use crate::pages_doctor::PDF;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A real PDF of exactly `size` bytes: the one-page PDF of the page tests,
/// with a comment line of padding after its header.
fn pdf_of_size(size: usize) -> Vec<u8> {
    let (header, rest) = PDF.split_at(PDF.find('\n').unwrap() + 1);
    let mut pdf = Vec::with_capacity(size);
    pdf.extend_from_slice(header.as_bytes());
    pdf.push(b'%');
    pdf.resize(size - rest.len() - 1, b'0');
    pdf.push(b'\n');
    pdf.extend_from_slice(rest.as_bytes());
    assert_eq!(pdf.len(), size);
    pdf
}

fn files(sizes: &[(&str, usize)]) -> Vec<(String, Vec<u8>)> {
    sizes
        .iter()
        .map(|(name, size)| (name.to_string(), pdf_of_size(*size)))
        .collect()
}

/// The server's log lines that report a large item.
fn large_item_lines(r: &Reading) -> Vec<String> {
    std::fs::read_to_string(r.net.data_dir().join("server.log"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("a large item was sent"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_api_warns_of_a_large_item_and_sends_it_all_the_same() {
    // The threshold from a config file: 1 MiB.
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("renkei.toml");
    std::fs::write(&config, "[attachments]\nwarn_above_mib = 1\n").unwrap();
    let r = Reading::start_with(&["--config", config.to_str().unwrap()]).await;

    // 1.5 MiB in two files: sent, with the warning and the exact totals.
    let (status, large) = r
        .send(
            PATIENT,
            &files(&[("紹介状.pdf", MIB), ("検査結果.pdf", MIB / 2)]),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{large}");
    let large_id = large["id"].as_str().unwrap().to_string();
    let warnings = large["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{large}");
    assert_eq!(warnings[0]["code"], "large_item");
    assert_eq!(warnings[0]["total_bytes"], 1_572_864);
    assert_eq!(warnings[0]["warn_above_bytes"], 1_048_576);
    assert_eq!(
        warnings[0]["message"],
        "The attachments total 1.5 MiB (1572864 bytes), more than 1.0 MiB (1048576 bytes). \
         The item was sent, but an item this large takes long to upload and to download."
    );
    // It really went: the radiologist opens both files whole.
    let opened = r
        .server
        .get_json(&r.rad_c, &format!("/api/v1/envelopes/{large_id}"))
        .await;
    let sizes: Vec<u64> = opened["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [MIB as u64, (MIB / 2) as u64]);

    // Exactly at the threshold and under it: no warning, no `warnings` key.
    let mut quiet = Vec::new();
    for set in [
        files(&[("ちょうど.pdf", MIB)]),
        files(&[("紹介状.pdf", MIB / 2)]),
    ] {
        let (status, body) = r.send(PATIENT, &set, &[]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body["id"].is_string(), "{body}");
        assert_eq!(body.as_object().unwrap().len(), 1, "only the id: {body}");
        quiet.push(body);
    }

    // One log line, for the large item: its envelope and sizes, nothing else.
    let lines = large_item_lines(&r);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains(&format!("envelope={large_id}")), "{line}");
    assert!(line.contains("total_bytes=1572864"), "{line}");
    assert!(line.contains("warn_above_bytes=1048576"), "{line}");
    for private in ["紹介状", "検査結果", PATIENT.0, PATIENT.1] {
        assert!(!line.contains(private), "{line}");
    }

    // Both shapes of the answer fit the schema the API documents.
    let doc = r
        .server
        .get_json(&r.server.client(), "/api/v1/openapi.json")
        .await;
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["Created"]["properties"]["warnings"].is_object(),
        "{}",
        schemas["Created"]
    );
    assert_eq!(schemas["Created"]["required"], json!(["id"]));
    let samples = json!([
        ["Created", large],
        ["Created", quiet[0]],
        ["Created", quiet[1]],
    ]);
    let v = openapi::check(&doc, &samples);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["sample_errors"], json!([]), "{v}");
    // A warning without its totals would not fit.
    let broken = json!([["SendWarning", { "code": "large_item", "message": "" }]]);
    let v = openapi::check(&doc, &broken);
    assert_ne!(v["sample_errors"], json!([]), "{v}");

    // A reading request opened as a thread warns the same way.
    let spec = json!({
        "kind": "reading_request",
        "to": { "account": r.rad },
        "subject": "胸部CT 読影依頼",
        "patient_id": PATIENT.0,
        "patient_name": PATIENT.1,
        "body": "ご高診をお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
        "attachments": [{ "name": "紹介状.pdf" }, { "name": "検査結果.pdf" }],
    });
    let mut form = Form::new().part("thread", Part::text(spec.to_string()));
    for (name, bytes) in files(&[("紹介状.pdf", MIB), ("検査結果.pdf", MIB / 2)]) {
        form = form.part("file", Part::bytes(bytes).file_name(name));
    }
    let answer = r
        .gp_c
        .post(r.server.url("/api/v1/threads"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let thread: serde_json::Value = answer.json().await.unwrap();
    assert!(thread["thread_id"].is_string(), "{thread}");
    assert_eq!(thread["warnings"][0]["code"], "large_item", "{thread}");
    assert_eq!(thread["warnings"][0]["total_bytes"], 1_572_864, "{thread}");
    assert_eq!(large_item_lines(&r).len(), 2);
    let v = openapi::check(&doc, &json!([["CreatedThread", thread]]));
    assert_eq!(v["sample_errors"], json!([]), "{v}");
}

#[tokio::test]
async fn a_zero_threshold_stops_the_server_from_starting() {
    let net = Network::new().await;
    let out = net.run(&["--attachments-warn-above-mib", "0", "serve"]);
    // EX_CONFIG, naming the setting.
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("attachments.warn_above_mib: must be at least 1"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_compose_page_warns_before_a_large_item_is_sent_in_chromium() {
    // The threshold from the flag: 1 MiB.
    let r = Reading::start_with(&["--attachments-warn-above-mib", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, size: usize| {
        let path = dir.path().join(name);
        std::fs::write(&path, pdf_of_size(size)).unwrap();
        path.to_str().unwrap().to_string()
    };
    // Each under the threshold, together 1600 KiB (1.6 MB) above it.
    let big1 = write("紹介状.pdf", 900 * KIB);
    let big2 = write("検査結果.pdf", 700 * KIB);
    let small = write("所見.pdf", 200 * KIB);
    // The two large files deflated in a ZIP far smaller than the threshold:
    // what counts is what the page will send, the files inside.
    let zip = dir.path().join("study.zip").to_str().unwrap().to_string();
    python(&[
        "-c",
        "import sys, zipfile, os\n\
         with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
         \x20   for f in sys.argv[2:]: z.write(f, os.path.basename(f))",
        &zip,
        &big1,
        &big2,
    ]);
    assert!(std::fs::metadata(&zip).unwrap().len() < (MIB / 10) as u64);

    let v = run_browser(
        "size_warning.cjs",
        &[
            &r.server.url(""),
            &r.gp,
            &r.gp_pw,
            &r.rad,
            PATIENT.0,
            PATIENT.1,
            &big1,
            &big2,
            &small,
            &zip,
            &r.rad_pw,
        ],
    );
    let ja = "添付ファイルの合計が 1.0 MB を超えています（合計 1.6 MB）。\
              送信はできますが、時間がかかり、受信側のダウンロードにも時間がかかります。";
    let en = "The attachments add up to more than 1.0 MB (total 1.6 MB). You can still send \
              them, but sending takes a while, and so does the download at the receiving end.";
    // Both languages, as the screenshots show them.
    assert_eq!(v["warning_ja"], ja, "{v}");
    assert_eq!(v["warning_en"], en, "{v}");
    assert_eq!(
        v["screenshots"],
        json!(["size-warning-ja.png", "size-warning-en.png"])
    );
    // Picked in Japanese: shown; one file under the threshold, or a small
    // one: gone; the ZIP's files together: shown again.
    assert_eq!(v["large"], json!({ "visible": true, "text": ja }), "{v}");
    assert_eq!(
        v["one_large"],
        json!({ "visible": false, "text": "" }),
        "{v}"
    );
    assert_eq!(v["small"], json!({ "visible": false, "text": "" }), "{v}");
    assert_eq!(v["zip"], json!({ "visible": true, "text": ja }), "{v}");
    // Sent anyway, warning shown: the thread holds both files, and the
    // server logged it.
    assert_eq!(
        v["before_send"],
        json!({ "visible": true, "text": ja }),
        "{v}"
    );
    let thread = v["thread_path"].as_str().unwrap_or_default();
    assert!(thread.starts_with("/threads/"), "{v}");
    assert_eq!(
        v["attachments"],
        json!(["紹介状.pdf", "検査結果.pdf"]),
        "{v}"
    );
    // The radiologist's report form, which takes files, warns the same way.
    assert_eq!(v["file_form_step"], "report", "{v}");
    assert_eq!(
        v["step_large"],
        json!({ "visible": true, "text": ja }),
        "{v}"
    );
    assert_eq!(
        v["step_small"],
        json!({ "visible": false, "text": "" }),
        "{v}"
    );
    // Reported with the large pair all the same, and logged like the send.
    assert_eq!(
        v["report_files"],
        json!(["紹介状.pdf", "検査結果.pdf"]),
        "{v}"
    );
    assert_eq!(v["page_errors"], json!([]), "{v}");
    let lines = large_item_lines(&r);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(line.contains("total_bytes=1638400"), "{lines:?}");
        assert!(line.contains("warn_above_bytes=1048576"), "{lines:?}");
        assert!(!line.contains("紹介状"), "{lines:?}");
    }
}
