//! Study, series and whole-item downloads as ZIP through the real server: a
//! generated CT study of two series (plus a second study and a letter) sent
//! as one item; the study ZIP cut off half-way and resumed with `Range` and
//! `If-Range`, and Python's zipfile finds every member byte-identical to the
//! file that was sent, in study and series folders; arbitrary ranges match
//! the same bytes; a changed `If-Range` gets the whole archive, a range past
//! the end 416; a reader without a key slot gets 404; each download is in
//! the audit trail.
//!
//! The download tests as a whole are described in `dicom_support.rs`.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dicom_support::{Reading, generated_study, named, python};
use crate::harness::{content_range, get_range, header};

/// Splits a generated series in two: the second half becomes series 3,
/// "Lung/Med 5.0mm" (a `/` a folder name must not take as a folder).
const SPLIT: &str = r#"
import sys, pydicom
from pydicom.uid import generate_uid
paths = sorted(sys.argv[1:])
uid = generate_uid()
for p in paths[len(paths) // 2:]:
    ds = pydicom.dcmread(p)
    ds.SeriesInstanceUID = uid
    ds.SeriesNumber = 3
    ds.SeriesDescription = "Lung/Med 5.0mm"
    ds.save_as(p)
"#;

/// Checks an archive with Python's zipfile: `testzip`, then each member
/// against the expected `{name: path of the original}`; prints the names.
const CHECK: &str = r#"
import sys, json, zipfile
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip()
assert bad is None, f"CRC mismatch in {bad}"
want = json.load(open(sys.argv[2]))
names = [i.filename for i in z.infolist()]
assert sorted(names) == sorted(want), (sorted(names), sorted(want))
for name, path in want.items():
    assert z.read(name) == open(path, "rb").read(), name
print(json.dumps(names))
"#;

/// The archive's members as Python reads them, each checked against `want`.
fn check_zip(dir: &Path, bytes: &[u8], want: &Value) -> Vec<String> {
    let zip = dir.join("check.zip");
    let manifest = dir.join("check.json");
    std::fs::write(&zip, bytes).unwrap();
    std::fs::write(&manifest, want.to_string()).unwrap();
    let out = python(&[
        "-c",
        CHECK,
        zip.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&zip);
    serde_json::from_str(out.trim()).unwrap()
}

#[tokio::test]
async fn a_study_zip_cut_off_half_way_resumes_and_every_file_is_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let ct_files = generated_study(&tmp.path().join("ct"), 40, 128);
    let mut split = vec!["-c", SPLIT];
    split.extend(ct_files.iter().map(|p| p.to_str().unwrap()));
    python(&split);
    let scout_files = generated_study(&tmp.path().join("scout"), 3, 64);
    let letter = tmp.path().join("紹介状.pdf");
    std::fs::write(&letter, b"%PDF-1.7\n% a referral letter\n%%EOF\n").unwrap();
    let mut sent: Vec<(String, Vec<u8>)> = ct_files.iter().map(|p| named(p)).collect();
    sent.extend(scout_files.iter().map(|p| named(p)));
    sent.push(named(&letter));

    let mut reading = Reading::start().await;
    let other_c = reading.colleague("丸亀 次郎").await;
    let id = reading.sent(("12345", "山田　太郎"), &sent, &[]).await;
    let (server, rad_c) = (&reading.server, &reading.rad_c);

    // Which study is the CT (two series): by its image count.
    let record = reading.studies(&id).await;
    let studies = record["studies"].as_array().unwrap();
    assert_eq!(studies.len(), 2, "{record}");
    let ct_at = studies
        .iter()
        .position(|s| s["series"].as_array().unwrap().len() == 2)
        .unwrap();
    let scout_at = 1 - ct_at;
    let series = studies[ct_at]["series"].as_array().unwrap();
    assert_eq!(series[0]["instances"].as_array().unwrap().len(), 20);
    assert_eq!(series[1]["description"], "Lung/Med 5.0mm");

    // What the study archive must hold: each file of the CT in its series folder.
    // (The oracle's template study is described as "e+1".)
    assert_eq!(studies[ct_at]["description"], "e+1");
    let study_dir = format!("study{}_2026-11-20_e+1", ct_at + 1);
    let mut want = serde_json::Map::new();
    for (k, p) in ct_files.iter().enumerate() {
        let folder = if k < 20 {
            "series2_CT_Chest 1.0mm"
        } else {
            "series3_CT_Lung_Med 5.0mm"
        };
        let name = p.file_name().unwrap().to_str().unwrap();
        want.insert(
            format!("{study_dir}/{folder}/{name}"),
            json!(p.to_str().unwrap()),
        );
    }
    let want = Value::Object(want);

    // The item's page links the study, each series and the whole item.
    for (query, study_label, series_label) in [
        ("", "検査をZIPでダウンロード", "シリーズをZIPでダウンロード"),
        (
            "?lang=en",
            "Download study as ZIP",
            "Download series as ZIP",
        ),
    ] {
        let page = rad_c
            .get(server.url(&format!("/items/{id}{query}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for link in [
            format!(
                "href=\"/api/v1/envelopes/{id}/studies/{ct_at}/zip\" download class=\"zip-study\">{study_label}<"
            ),
            format!(
                "href=\"/api/v1/envelopes/{id}/studies/{ct_at}/series/1/zip\" download class=\"zip-series\">{series_label}<"
            ),
            format!("href=\"/api/v1/envelopes/{id}/zip\" download class=\"zip-all\">"),
        ] {
            assert!(page.contains(&link), "{link} missing from the page");
        }
        assert!(page.contains("Lung/Med 5.0mm"), "series described");
    }

    let url = server.url(&format!("/api/v1/envelopes/{id}/studies/{ct_at}/zip"));
    // The first attempt breaks off half-way: half the body read, then the connection dropped.
    let mut first = rad_c.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "accept-ranges"), "bytes");
    assert_eq!(header(&first, "content-type"), "application/zip");
    let disposition = header(&first, "content-disposition").to_string();
    assert!(
        disposition.contains(&format!("renkei-{id}-study{}.zip", ct_at + 1)),
        "{disposition}"
    );
    let etag = header(&first, "etag").to_string();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    let total: u64 = header(&first, "content-length").parse().unwrap();
    let sizes: u64 = ct_files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total > sizes, "stored, not compressed: {total} vs {sizes}");
    let half = total / 2;
    let mut got: Vec<u8> = Vec::new();
    while (got.len() as u64) < half {
        let chunk = first.chunk().await.unwrap().expect("the body ended early");
        got.extend_from_slice(&chunk);
    }
    drop(first);
    got.truncate(half as usize);

    // Resumed where it broke off, for the same archive.
    let rest = get_range(rad_c, &url, &format!("bytes={half}-"), Some(&etag)).await;
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&rest, "content-range"),
        format!("bytes {half}-{}/{total}", total - 1)
    );
    assert_eq!(header(&rest, "etag"), etag);
    got.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(got.len() as u64, total);
    let names = check_zip(tmp.path(), &got, &want);
    assert_eq!(names.len(), 40);
    assert!(names[0].starts_with(&format!("{study_dir}/series2_CT_Chest 1.0mm/IM")));

    // Any range is the same bytes: one inside a file, one ending in the
    // middle of another, the last bytes alone.
    for range in [
        format!("bytes={}-{}", total / 3, total / 3 + 70_000),
        format!("bytes=100-{}", total / 2),
        "bytes=-200".to_string(),
    ] {
        let r = get_range(rad_c, &url, &range, None).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let (span, _) = content_range(&r);
        let part = r.bytes().await.unwrap();
        assert!(part[..] == got[span], "{range} differs");
    }

    // An If-Range naming another archive gets the whole one; a range past the end, 416.
    let changed = get_range(
        rad_c,
        &url,
        &format!("bytes={half}-"),
        Some("\"not-this-one\""),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert!(changed.bytes().await.unwrap()[..] == got[..]);
    let past = get_range(rad_c, &url, &format!("bytes={total}-"), None).await;
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&past, "content-range"), format!("bytes */{total}"));

    // One series alone.
    let r = rad_c
        .get(server.url(&format!(
            "/api/v1/envelopes/{id}/studies/{ct_at}/series/1/zip"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let series_want: serde_json::Map<String, Value> = want
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains("/series3_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let names = check_zip(
        tmp.path(),
        &r.bytes().await.unwrap(),
        &Value::Object(series_want),
    );
    assert_eq!(names.len(), 20);

    // The whole item: both studies in their folders, the letter at the top.
    let r = reading
        .gp_c
        .get(server.url(&format!("/api/v1/envelopes/{id}/zip")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the sender downloads too");
    let mut item_want = want.as_object().unwrap().clone();
    for p in &scout_files {
        let name = p.file_name().unwrap().to_str().unwrap();
        item_want.insert(
            format!(
                "study{}_2026-11-20_e+1/series2_CT_Chest 1.0mm/{name}",
                scout_at + 1
            ),
            json!(p.to_str().unwrap()),
        );
    }
    item_want.insert("紹介状.pdf".into(), json!(letter.to_str().unwrap()));
    let names = check_zip(
        tmp.path(),
        &r.bytes().await.unwrap(),
        &Value::Object(item_want),
    );
    assert_eq!(names.len(), 44);

    // No key slot, no archive; no such study or series, no archive.
    for (client, path) in [
        (
            &other_c,
            format!("/api/v1/envelopes/{id}/studies/{ct_at}/zip"),
        ),
        (&other_c, format!("/api/v1/envelopes/{id}/zip")),
        (rad_c, format!("/api/v1/envelopes/{id}/studies/2/zip")),
        (
            rad_c,
            format!("/api/v1/envelopes/{id}/studies/{ct_at}/series/2/zip"),
        ),
    ] {
        let r = client.get(server.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // After a restart the resume still fits: the same ETag, the same bytes
    // (the tail's CRCs, no longer in the process, are decrypted again).
    reading.restart().await;
    let url = reading
        .server
        .url(&format!("/api/v1/envelopes/{id}/studies/{ct_at}/zip"));
    let rest = get_range(&reading.rad_c, &url, &format!("bytes={half}-"), Some(&etag)).await;
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    assert!(rest.bytes().await.unwrap()[..] == got[half as usize..]);

    // Every download is in the audit trail: the first attempt, the two
    // resumes, the three ranges, the If-Range, the 416, the series and the item.
    let audit = reading.net.audit_export();
    let study_downloads = audit
        .lines()
        .filter(|l| l.contains(&format!("zip study={ct_at} files=40")))
        .count();
    assert_eq!(study_downloads, 8, "{audit}");
    assert!(audit.contains(&format!("zip study={ct_at} series=1 files=20")));
    assert!(audit.contains("zip item files=44"));
}
