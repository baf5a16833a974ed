//! Attachments neutralised at intake (issue 26), through the real server:
//! files from imaging's neutralisation corpus (`imaging/tests/neutral`) — a
//! Windows program in a DICOM preamble, PDFs with JavaScript (plain, in an
//! object stream, with `#xx`-escaped names), a launch action, an embedded
//! file, an XFA form, a PDF with JavaScript inside an Encapsulated PDF DICOM
//! instance, a JPEG with a ZIP appended, a PNG with data after IEND, a macro
//! document renamed `.pdf` — each sent with a clean file over
//! `POST /api/v1/envelopes` is refused (400) with its code and a reason naming
//! the file, in English and Japanese, and nothing is stored: no blob, no item.
//! The compose page refuses one the same way and shows the Japanese reason.
//! The corpus' clean files (PDFs, JPEG, PNG, a TIFF preamble, a clean
//! Encapsulated PDF) are accepted together.

use std::path::Path;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use crate::dicom_support::{PATIENT, Reading};

fn corpus(name: &str) -> (String, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("imaging/tests/neutral")
        .join(name);
    (name.to_string(), std::fs::read(path).unwrap())
}

/// Files under the blob folder (a refused item must leave none).
fn blob_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    1 + blob_files(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

#[tokio::test]
async fn files_with_hidden_content_are_refused_with_their_reason_and_nothing_is_stored() {
    let reading = Reading::start().await;
    let (server, gp_c) = (&reading.server, &reading.gp_c);
    let blobs = reading.net.data_dir().join("blobs");
    let clean = corpus("clean-text.pdf");
    let count = |v: serde_json::Value| v.as_array().map_or(0, Vec::len);
    let sent_before = count(server.get_json(gp_c, "/api/v1/envelopes").await);
    let blobs_before = blob_files(&blobs);
    for (name, code, says) in [
        (
            "preamble-windows-program.dcm",
            "dicom_preamble",
            "プリアンブル",
        ),
        ("javascript.pdf", "pdf_active_content", "JavaScript"),
        (
            "javascript-in-object-stream.pdf",
            "pdf_active_content",
            "JavaScript",
        ),
        (
            "javascript-escaped-names.pdf",
            "pdf_active_content",
            "JavaScript",
        ),
        ("launch.pdf", "pdf_active_content", "/Launch"),
        (
            "embedded-file.pdf",
            "pdf_active_content",
            "埋め込みファイル",
        ),
        ("xfa-form.pdf", "pdf_active_content", "XFA"),
        (
            "encapsulated-pdf-javascript.dcm",
            "pdf_active_content",
            "DICOMファイル内のPDF",
        ),
        (
            "jpeg-with-appended-zip.jpg",
            "data_after_image_end",
            "JPEG画像の終わり",
        ),
        (
            "png-with-data-after-iend.png",
            "data_after_image_end",
            "PNG画像の終わり",
        ),
    ] {
        let bad = corpus(name);
        let (status, body) = reading.send(PATIENT, &[clean.clone(), bad], &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["error"], code, "{name}: {body}");
        let ja = body["message_ja"].as_str().unwrap();
        let en = body["message"].as_str().unwrap();
        assert!(ja.contains(name) && ja.contains(says), "{name}: {ja}");
        assert!(en.contains(name), "{name}: {en}");
    }
    // A Word document with macros named .pdf: refused by what it is.
    let (status, body) = reading
        .send(PATIENT, &[corpus("renamed-macro-document.pdf")], &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let ja = body["message_ja"].as_str().unwrap();
    assert!(
        ja.contains("renamed-macro-document.pdf") && ja.contains("マクロ"),
        "{ja}"
    );

    assert_eq!(
        blob_files(&blobs),
        blobs_before,
        "a refused item leaves no blob"
    );
    assert_eq!(
        count(server.get_json(gp_c, "/api/v1/envelopes").await),
        sent_before,
        "nothing was sent"
    );

    // The compose page: the same refusal, in Japanese, and no thread.
    let csrf = crate::harness::csrf_from(gp_c, &server.url("/compose?kind=reading_request")).await;
    let (name, bytes) = corpus("javascript-in-object-stream.pdf");
    let mut form = Form::new().text("csrf", csrf);
    for (k, v) in [
        ("kind", "reading_request".to_string()),
        ("to", format!("account:{}", reading.rad)),
        ("subject", "胸部CT 読影依頼".into()),
        ("patient_id", PATIENT.0.into()),
        ("patient_name", PATIENT.1.into()),
        ("consent_on", "2026-11-20".into()),
        ("consent_method", "written".into()),
        ("consent_by", "坂出 明美".into()),
        ("body", "ご高診をお願いします。".into()),
        ("modality", "CT".into()),
        ("body_part", "胸部".into()),
        ("clinical_question", "結節の精査".into()),
    ] {
        form = form.text(k, v);
    }
    let part = Part::bytes(bytes)
        .file_name(name.clone())
        .mime_str("application/pdf")
        .unwrap();
    let r = gp_c
        .post(server.url("/compose"))
        .multipart(form.part("attachments", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(&format!("ファイル「{name}」は送信できません"))
            && page.contains("JavaScriptが含まれているため受け付けません"),
        "{page}"
    );
    assert_eq!(blob_files(&blobs), blobs_before, "the page stored nothing");
    assert_eq!(
        count(server.get_json(gp_c, "/api/v1/envelopes").await),
        sent_before,
        "the page sent nothing"
    );

    // The clean files of the corpus go through together.
    let clean_files: Vec<(String, Vec<u8>)> = [
        "clean-text.pdf",
        "clean-object-stream.pdf",
        "clean.jpg",
        "clean.png",
        "preamble-tiff.dcm",
        "encapsulated-pdf-clean.dcm",
    ]
    .iter()
    .map(|n| corpus(n))
    .collect();
    // (The TIFF-preamble CT is another test patient's: confirmed as such.)
    let (status, body) = reading
        .send(
            ("N0001", "Neutral^Test"),
            &clean_files,
            &["preamble-tiff.dcm"],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
