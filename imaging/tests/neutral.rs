//! The neutralisation corpus (`tests/neutral/*`, written by
//! `tests/neutral/make.py`), issue 26: a program in a DICOM preamble, PDFs
//! with active content (plain, in an object stream, with `#xx`-escaped names,
//! inside an Encapsulated PDF instance), data after a JPEG's or PNG's end are
//! refused with their reason; clean files pass, and so do real PDFs made by
//! the project's own `pdf` crate. Each file is judged whole, streamed in
//! small chunks (as an upload arrives) and from disk. Renamed macro documents
//! are left by intake to the attachment policy, which refuses them by content
//! (`mailbox::postroom::attachment_policy`, whose test reads the same files).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use imaging::{Checked, Intake, IntakeError};

/// What must happen to each file: `accepted` (DICOM, image, or a PDF with
/// nothing active), `policy` (not judged here), or the refusal's code.
const EXPECTED: &[(&str, &str)] = &[
    ("preamble-windows-program.dcm", "dicom_preamble"),
    ("preamble-text.dcm", "dicom_preamble"),
    ("preamble-tiff.dcm", "accepted"),
    ("preamble-zeros.dcm", "accepted"),
    ("encapsulated-pdf-javascript.dcm", "pdf_active_content"),
    ("encapsulated-pdf-clean.dcm", "accepted"),
    ("javascript.pdf", "pdf_active_content"),
    ("javascript-in-object-stream.pdf", "pdf_active_content"),
    ("javascript-escaped-names.pdf", "pdf_active_content"),
    ("launch.pdf", "pdf_active_content"),
    ("open-action.pdf", "pdf_active_content"),
    ("additional-actions.pdf", "pdf_active_content"),
    ("embedded-file.pdf", "pdf_active_content"),
    ("xfa-form.pdf", "pdf_active_content"),
    ("clean-text.pdf", "accepted"),
    ("clean-object-stream.pdf", "accepted"),
    ("jpeg-with-appended-zip.jpg", "data_after_image_end"),
    ("png-with-data-after-iend.png", "data_after_image_end"),
    ("clean.jpg", "accepted"),
    ("clean.png", "accepted"),
    ("renamed-macro-document.pdf", "policy"),
    ("renamed-ole-document.jpg", "policy"),
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/neutral")
}

fn outcome(name: &str, r: &Result<Checked, IntakeError>) -> String {
    match r {
        Ok(Checked::Dicom(_) | Checked::Image(_)) => "accepted".into(),
        Ok(Checked::Other) if name.starts_with("renamed-") => "policy".into(),
        Ok(Checked::Other) if name.ends_with(".pdf") => "accepted".into(),
        Ok(other) => format!("{other:?}"),
        Err(e) => e.code().into(),
    }
}

fn judge(name: &str, bytes: &[u8]) -> Result<Checked, IntakeError> {
    let whole = imaging::check_bytes(name, "", bytes);
    let mut streamed = Intake::new(name, "");
    let streamed = bytes
        .chunks(7)
        .try_for_each(|c| streamed.feed(c))
        .and_then(|()| streamed.finish());
    assert_eq!(whole, streamed, "{name}: whole and streamed differ");
    whole
}

#[test]
fn the_neutralisation_corpus_is_refused_with_its_reasons_and_clean_files_pass() {
    let mut names: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".py"))
        .collect();
    names.sort();
    for n in &names {
        assert!(
            EXPECTED.iter().any(|(e, _)| e == n),
            "{n} has no expectation"
        );
    }
    assert_eq!(names.len(), EXPECTED.len(), "every expected file exists");
    for (name, expected) in EXPECTED {
        let bytes = std::fs::read(corpus().join(name)).unwrap();
        let verdict = judge(name, &bytes);
        assert_eq!(outcome(name, &verdict), *expected, "{name}: {verdict:?}");
        let from_disk = imaging::check_file(&corpus().join(name)).unwrap();
        assert_eq!(from_disk, verdict, "{name} from disk");
        if let Err(e) = verdict {
            // The sender reads why, in Japanese; the log says it in English.
            assert!(!e.message_ja().is_empty() && !e.message_en().is_empty());
        }
    }
    // The reasons name what was found.
    let reason = |name: &str| {
        let bytes = std::fs::read(corpus().join(name)).unwrap();
        judge(name, &bytes).unwrap_err()
    };
    assert!(
        reason("preamble-windows-program.dcm")
            .message_en()
            .contains("Windows program")
    );
    assert!(
        reason("javascript-in-object-stream.pdf")
            .message_en()
            .contains("JavaScript")
    );
    assert!(
        reason("javascript-escaped-names.pdf")
            .message_ja()
            .contains("JavaScript")
    );
    assert!(reason("launch.pdf").message_en().contains("/Launch"));
    assert!(
        reason("embedded-file.pdf")
            .message_ja()
            .contains("埋め込みファイル")
    );
    assert!(reason("xfa-form.pdf").message_en().contains("XFA"));
    assert!(
        reason("encapsulated-pdf-javascript.dcm")
            .message_en()
            .contains("PDF inside the DICOM file")
    );
}

#[test]
fn pdfs_made_by_the_project_pass_and_stay_passing_when_streamed() {
    let print = renkei_pdf::ItemPrint {
        item_id: "01JNEUTRAL".into(),
        kind: "referral".into(),
        step: None,
        thread_id: None,
        sender_facility_name: "連携病院".into(),
        sender_facility_code: "1310000001".into(),
        signer_name: "山田 花子".into(),
        signer_id: "doctor1".into(),
        signature_status: "valid".into(),
        signer_fingerprint: Some("ABCD".into()),
        signed_sha256: "00".repeat(32),
        sealed_at: "2026-12-07 12:00".into(),
        patient_id: "12345".into(),
        patient_name: "山田 太郎".into(),
        subject: "紹介状".into(),
        body: "JavaScript や /Launch という語を本文に含むが、能動的な内容はない。".repeat(40),
        fields: vec![("reason".into(), "精査依頼".into())],
        attachments: vec![("ct.dcm".into(), 1024, "11".repeat(32))],
        exported_by: "doctor1".into(),
    };
    let bytes = renkei_pdf::item(&print).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    assert_eq!(outcome("item.pdf", &judge("item.pdf", &bytes)), "accepted");
    // Real PDFs a system ships (pdfTeX with hyperref, object streams), when there.
    let shipped: Vec<PathBuf> = ["/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    for path in &shipped {
        let verdict = imaging::check_file(path).unwrap();
        assert_eq!(verdict, Ok(Checked::Other), "{}", path.display());
    }
    println!("{} shipped PDF(s) checked", shipped.len());
}

const CHILD: &str = "RENKEI_NEUTRAL_CHILD";
/// Streamed PDF size, and the peak resident memory allowed while it passes.
const BIG_PDF_MIB: usize = 96;
const PEAK_RSS_KIB: u64 = 32 * 1024;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A large PDF streamed in 64 KiB chunks, never held: objects, a raw image
/// stream and a Flate content stream that inflates to many times its size.
fn stream_a_big_pdf() {
    use std::io::Write;
    let mut intake = Intake::new("big.pdf", "application/pdf");
    intake
        .feed(b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\n")
        .unwrap();
    intake
        .feed(b"2 0 obj<</Subtype/Image/Width 4096/Height 4096>>stream\n")
        .unwrap();
    let chunk: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    for _ in 0..(BIG_PDF_MIB * 16 / 2) {
        intake.feed(&chunk).unwrap();
    }
    intake.feed(b"\nendstream\nendobj\n").unwrap();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let text = b"BT /F1 12 Tf 72 720 Td (text) Tj ET\n".repeat(1024);
    for _ in 0..(BIG_PDF_MIB * 1024 / 40) {
        z.write_all(&text).unwrap();
    }
    let content = z.finish().unwrap();
    intake
        .feed(b"3 0 obj<</Filter/FlateDecode>>stream\n")
        .unwrap();
    for c in content.chunks(64 * 1024) {
        intake.feed(c).unwrap();
    }
    intake.feed(b"\nendstream\nendobj\n%%EOF\n").unwrap();
    assert_eq!(intake.finish(), Ok(Checked::Other));
    let peak = peak_rss_kib();
    println!("big pdf: peak RSS {peak} KiB");
    assert!(peak < PEAK_RSS_KIB, "peak RSS {peak} KiB");
}

#[test]
fn a_large_pdf_is_checked_in_bounded_memory_as_it_streams() {
    if std::env::var_os(CHILD).is_some() {
        stream_a_big_pdf();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_large_pdf_is_checked_in_bounded_memory_as_it_streams",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(at) = stdout.find("big pdf:") {
        println!("{}", stdout[at..].lines().next().unwrap_or_default());
    }
    assert!(
        out.status.success() && stdout.contains("big pdf: peak RSS"),
        "child failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
