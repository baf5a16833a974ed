//! A study too large to list file by file on its thread: the thread shows its
//! DICOM files as one summary line (count and size) beside the viewer link and
//! the other attachments, and links to the paged files page, where every file
//! is listed with its SHA-256 and downloads byte for byte.

use serde_json::json;

use crate::dicom_support::{PATIENT, Reading, generated_study, named};
use crate::harness::{run_browser, sha256_hex};

/// More than a page of the files list (200 rows), small slices.
const SLICES: usize = 210;

#[tokio::test]
async fn a_large_study_is_summarised_on_its_thread_and_listed_page_by_page() {
    let tmp = tempfile::tempdir().unwrap();
    let mut items: Vec<(String, Vec<u8>)> = generated_study(&tmp.path().join("study"), SLICES, 32)
        .iter()
        .map(|p| named(p))
        .collect();
    items.push((
        "紹介状.pdf".into(),
        b"%PDF-1.7\n% a referral letter\n%%EOF\n".to_vec(),
    ));
    let reading = Reading::start().await;
    let item = reading.sent(PATIENT, &items, &[]).await;

    let cfg = json!({
        "base": reading.server.url(""),
        "id": reading.rad,
        "password": reading.rad_pw,
        "item": item,
    });
    let out = run_browser("files_page.cjs", &[&cfg.to_string()]);
    assert_eq!(out["errors"], json!([]), "{out}");

    // The thread: one summary line for the DICOM files, the PDF as a link.
    let thread = &out["thread"];
    assert!(
        thread["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("DICOM {SLICES} ファイル（")),
        "{thread}"
    );
    assert_eq!(thread["links"], json!(["紹介状.pdf"]), "{thread}");
    assert_eq!(thread["viewer"], 1, "{thread}");
    // The study and its series, from inside the sealed record: date, modality,
    // study description ("e+1", from pydicom's CT_small.dcm the generator
    // starts from), and per series its number, modality, body part,
    // description and image count.
    assert_eq!(
        thread["studies"],
        json!([
            format!("2026-11-20 CT e+1 （{SLICES}枚）"),
            format!("#2 CT CHEST Chest 1.0mm （{SLICES}枚）")
        ]),
        "{thread}"
    );
    assert_eq!(thread["files_href"], format!("/items/{item}/files"));
    assert!(
        out["thread_en"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{SLICES} DICOM files (")),
        "{out}"
    );

    // The files page: 200 rows, then the rest, in the order they were sent.
    let total = SLICES + 1;
    let first = out["first"]["rows"].as_array().unwrap();
    let second = out["second"]["rows"].as_array().unwrap();
    assert_eq!(first.len(), 200);
    assert_eq!(second.len(), total - 200);
    assert_eq!(out["first"]["range"], format!("1–200 / {total}"));
    assert_eq!(out["second"]["range"], format!("201–{total} / {total}"));
    assert_eq!(out["first"]["previous"], 0);
    assert_eq!(out["second"]["next"], 0);
    assert_eq!(out["second"]["previous"], 1);
    let listed: Vec<&str> = first
        .iter()
        .chain(second)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let sent: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(listed, sent);
    for (row, (_, data)) in first.iter().chain(second).zip(&items) {
        assert_eq!(row["sha256"], sha256_hex(data), "{row}");
    }

    // The last file downloads as sent.
    let download = &out["download"];
    assert_eq!(download["status"], 200, "{download}");
    assert_eq!(download["sha256"], sha256_hex(&items[total - 1].1));
    assert!(
        download["disposition"]
            .as_str()
            .unwrap()
            .starts_with("attachment"),
        "{download}"
    );
}
