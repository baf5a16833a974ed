//! Single-file downloads resumed with `Range` through the real server: a
//! generated 40 MiB multi-frame DICOM file and a PDF sent as one item. Python's
//! HTTP client breaks the DICOM download off half-way and resumes it with
//! `Range` and `If-Range`: the joined file is the original, byte for byte. A
//! range inside the file, a suffix range and the PDF's first bytes are the
//! original's slices; a stale `If-Range`, several ranges or a garbled header
//! get the whole file; a range past the end 416 with `Content-Range: bytes
//! */LENGTH`; a doctor without a key slot 404, range or not. A range at the
//! start of the file stops the decryption early (the server reads a fraction
//! of the blob), a suffix range decrypts it all. The thread page's download
//! link resumes the same way. After a restart the ETag is
//! the same and the resume still fits. Every answer is audited as a download.
//!
//! The download tests as a whole are described in `dicom_support.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::dicom_support::{PATIENT, Reading, named, oracle, python};
use crate::harness::{content_range, get_range, header, sha256_hex, wait_until};

/// 80 sections of 512² 16-bit pixels: a 40 MiB file.
const FRAMES: &str = "80";
const SIZE: &str = "512";

/// The radiologist's `GET path` with `Range` (and `If-Range`).
async fn ranged(
    reading: &Reading,
    path: &str,
    range: &str,
    if_range: Option<&str>,
) -> reqwest::Response {
    get_range(&reading.rad_c, &reading.server.url(path), range, if_range).await
}

/// Bytes the process has read so far (files, sockets, pipes), from the kernel.
fn bytes_read_by(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_single_file_download_resumes_with_range_and_stays_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let dicom_path = tmp.path().join("MF00001.dcm");
    oracle(&["multiframe", dicom_path.to_str().unwrap(), FRAMES, SIZE]);
    let dicom = named(&dicom_path);
    let _ = std::fs::remove_file(&dicom_path);
    let letter = (
        "紹介状.pdf".to_string(),
        b"%PDF-1.7\n% a referral letter\n%%EOF\n".to_vec(),
    );
    let len = dicom.1.len();
    assert!(len > 40 << 20, "{len}");

    let mut reading = Reading::start().await;
    let outsider = reading.colleague("丸亀 次郎").await;
    let id = reading
        .sent(PATIENT, &[dicom.clone(), letter.clone()], &[])
        .await;
    let item = reading
        .server
        .get_json(&reading.rad_c, &format!("/api/v1/envelopes/{id}"))
        .await;
    let index_of = |name: &str| {
        item["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .and_then(|a| a["index"].as_u64())
            .unwrap_or_else(|| panic!("{name} not in {item}"))
    };
    let path = format!("/api/v1/envelopes/{id}/attachments/{}", index_of(&dicom.0));
    let pdf_path = format!("/api/v1/envelopes/{id}/attachments/{}", index_of(&letter.0));
    let mut downloads = 0;

    // Python's client breaks off half-way, then resumes where it stopped.
    let cfg = json!({
        "port": reading.server.addr.port(),
        "cafile": reading.net.data_dir().join("tls-cert.pem"),
        "id": reading.rad,
        "password": reading.rad_pw,
        "path": path,
        "cut": len / 2,
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/e2e/clients/resume_download.py"
    );
    let resumed: serde_json::Value =
        serde_json::from_str(&python(&[script, &cfg.to_string()])).unwrap();
    downloads += 2;
    let etag = resumed["first"]["etag"].as_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.len() > 20,
        "a strong ETag: {etag}"
    );
    assert_eq!(resumed["first"]["status"], 200);
    assert_eq!(resumed["first"]["length"], len);
    assert_eq!(resumed["first"]["accept_ranges"], "bytes");
    assert_eq!(resumed["first"]["received"], len / 2);
    assert_eq!(resumed["resume"]["status"], 206);
    assert_eq!(resumed["resume"]["length"], len - len / 2);
    assert_eq!(
        resumed["resume"]["content_range"],
        format!("bytes {}-{}/{len}", len / 2, len - 1)
    );
    assert_eq!(resumed["resume"]["etag"], etag);
    assert_eq!(resumed["bytes"], len);
    assert_eq!(resumed["sha256"], sha256_hex(&dicom.1), "not the original");

    // A range inside the file, and the last bytes alone: the original's slices.
    for (range, want) in [
        (
            format!("bytes={}-{}", len / 3, len / 3 + 300_000),
            len / 3..len / 3 + 300_001,
        ),
        ("bytes=-1000".to_string(), len - 1000..len),
    ] {
        let r = ranged(&reading, &path, &range, None).await;
        downloads += 1;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&r, "content-type"), resumed["first"]["content_type"]);
        assert_eq!(header(&r, "etag"), etag);
        assert_eq!(header(&r, "accept-ranges"), "bytes");
        assert_eq!(header(&r, "content-disposition"), "attachment");
        assert_eq!(header(&r, "x-renkei-sha256"), sha256_hex(&dicom.1));
        assert_eq!(
            header(&r, "content-length"),
            (want.end - want.start).to_string()
        );
        assert_eq!(content_range(&r), (want.clone(), len), "{range}");
        let part = r.bytes().await.unwrap();
        assert!(part[..] == dicom.1[want], "{range} differs");
    }

    // The whole file: for an If-Range naming something else, several
    // ranges, or a header that is no byte range.
    for (range, if_range) in [
        ("bytes=1000-", Some("\"not-this-file\"")),
        ("bytes=1000-", Some(&*format!("W/{etag}"))),
        ("bytes=0-9,100-199", None),
        ("bytes=ten-twenty", None),
    ] {
        let r = ranged(&reading, &path, range, if_range).await;
        downloads += 1;
        assert_eq!(r.status(), StatusCode::OK, "{range} {if_range:?}");
        assert!(r.headers().get("content-range").is_none());
        assert_eq!(header(&r, "content-length"), len.to_string());
        let whole = r.bytes().await.unwrap();
        assert_eq!(sha256_hex(&whole), sha256_hex(&dicom.1));
    }

    // Past the end: 416 and the length to ask within.
    let r = ranged(&reading, &path, &format!("bytes={len}-"), None).await;
    downloads += 1;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), format!("bytes */{len}"));

    // The PDF, whole and its first bytes.
    let r = reading
        .rad_c
        .get(reading.server.url(&pdf_path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pdf_etag = header(&r, "etag").to_string();
    assert_ne!(pdf_etag, etag);
    assert!(r.bytes().await.unwrap()[..] == letter.1[..]);
    let r = ranged(&reading, &pdf_path, "bytes=0-7", Some(&pdf_etag)).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        content_range(&r),
        (0..8, letter.1.len()),
        "the PDF's own length"
    );
    assert_eq!(&r.bytes().await.unwrap()[..], b"%PDF-1.7");

    // A range near the start stops the decryption: the server reads a
    // fraction of the sealed blob (the decryption's read-ahead: a few 1 MiB
    // chunks). A suffix range decrypts from the start, so reads it all —
    // which shows the counter sees the blob.
    let pid = reading.server.pid();
    let mut read_for = Vec::new();
    for range in ["bytes=0-65535", "bytes=-65536"] {
        let before = bytes_read_by(pid);
        let r = ranged(&reading, &path, range, None).await;
        downloads += 1;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        let part = r.bytes().await.unwrap();
        assert_eq!(part.len(), 65536);
        // Whatever was still in flight settles: the count stops growing.
        // (unchanged over two polls, 100 ms).
        let mut seen: Vec<u64> = Vec::new();
        let settled = wait_until(
            "the server's reads to settle",
            Duration::from_secs(10),
            || {
                seen.push(bytes_read_by(pid));
                let n = seen.len();
                let still = n >= 3 && seen[n - 3] == seen[n - 1];
                std::future::ready(still.then_some(seen[n - 1]))
            },
        )
        .await;
        read_for.push(settled - before);
    }
    println!(
        "file_range: server read {} MiB for the first 64 KiB, {} MiB for the last (file {} MiB)",
        read_for[0] >> 20,
        read_for[1] >> 20,
        len >> 20
    );
    assert!(read_for[0] < 16 << 20, "{read_for:?}");
    assert!(read_for[1] >= len as u64, "{read_for:?}");

    // The thread page's link (the browser's download, the file's own name)
    // resumes the same way: the same file, the same ETag.
    let page_path = format!("/items/{id}/attachments/{}", index_of(&dicom.0));
    let from = len - len / 4;
    let r = ranged(&reading, &page_path, &format!("bytes={from}-"), Some(&etag)).await;
    downloads += 1;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "etag"), etag);
    assert!(header(&r, "content-disposition").contains("MF00001.dcm"));
    assert_eq!(content_range(&r), (from..len, len));
    assert!(r.bytes().await.unwrap()[..] == dicom.1[from..]);

    // No key slot: nothing, with or without a range.
    let url = reading.server.url(&path);
    let r = outsider.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for range in ["bytes=0-99", "bytes=-100"] {
        let r = get_range(&outsider, &url, range, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{range}");
    }

    // After a restart: the same ETag, and the resume still fits.
    reading.restart().await;
    let from = len / 2;
    let r = ranged(&reading, &path, &format!("bytes={from}-"), Some(&etag)).await;
    downloads += 1;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "etag"), etag);
    assert!(r.bytes().await.unwrap()[..] == dicom.1[from..]);

    // Each answer on the DICOM file is a download in the audit trail, the
    // ranges, the 416 and Python's broken first attempt included.
    let audit = reading.net.audit_export();
    let detail = format!("attachment={}", index_of(&dicom.0));
    let logged = audit
        .lines()
        .filter(|l| l.contains("download") && l.contains(&id) && l.contains(&detail))
        .count();
    assert_eq!(logged, downloads, "{audit}");
}
