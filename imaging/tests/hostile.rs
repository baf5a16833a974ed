//! The hostile corpus (`tests/hostile/*.dcm`, written by `tests/hostile/make.py`):
//! every file is refused with its reason or handled, in a child process whose
//! address space is capped well below what the files ask for — a length that
//! claims 4 GiB, frames that would need a terabyte — so an allocation by a
//! declared length would abort the child, and its peak resident size is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use imaging::{Checked, Preset, WindowChoice};

/// Address space for the child: test harness, two rayon threads, glibc arenas.
const ADDRESS_SPACE_KIB: u64 = 768 * 1024;
/// Peak resident memory allowed for checking and rendering the whole corpus.
const PEAK_RSS_KIB: u64 = 96 * 1024;
const CHILD: &str = "RENKEI_HOSTILE_CHILD";

/// What must happen to each file: the intake code, or `accepted` plus the
/// render outcome (`png` or the render error code).
const EXPECTED: &[(&str, &str, &str)] = &[
    ("baseline-valid.dcm", "accepted", "png"),
    ("length-far-past-end.dcm", "dicom_truncated", ""),
    ("text-length-far-past-end.dcm", "dicom_truncated", ""),
    ("meta-length-past-end.dcm", "dicom_truncated", ""),
    ("implicit-vr-length-past-end.dcm", "dicom_truncated", ""),
    ("fragment-past-end.dcm", "dicom_truncated", ""),
    ("unterminated-fragments.dcm", "dicom_truncated", ""),
    ("unclosed-sequence.dcm", "dicom_truncated", ""),
    ("deeply-nested-sequences.dcm", "dicom_nesting_too_deep", ""),
    (
        "deeply-nested-defined-sequences.dcm",
        "dicom_nesting_too_deep",
        "",
    ),
    ("implicit-deep-sequences.dcm", "dicom_nesting_too_deep", ""),
    ("nested-within-limit.dcm", "accepted", "png"),
    (
        "item-longer-than-sequence.dcm",
        "dicom_length_past_container",
        "",
    ),
    ("undefined-length-text.dcm", "dicom_malformed", ""),
    ("stray-sequence-end.dcm", "dicom_malformed", ""),
    ("bad-value-representation.dcm", "dicom_malformed", ""),
    // Out of tag order: the streamed render and a whole-file reader would differ.
    ("element-after-pixel-data.dcm", "dicom_malformed", ""),
    ("duplicate-element.dcm", "dicom_malformed", ""),
    // Found by the fuzzer: VR "LI", which dicom-rs reads as UN with a 4-byte length.
    (
        "fuzz-unknown-vr-read-as-long-length.dcm",
        "dicom_malformed",
        "",
    ),
    // Found by the fuzzer: an FL of 2 bytes, after which dicom-rs read a length from text.
    ("fuzz-float-of-two-bytes.dcm", "dicom_malformed", ""),
    ("preamble-only.dcm", "dicom_malformed", ""),
    (
        "pixel-geometry-larger-than-data.dcm",
        "dicom_pixel_geometry",
        "",
    ),
    ("frame-count-absurd.dcm", "dicom_pixel_geometry", ""),
    ("zero-rows.dcm", "dicom_pixel_geometry", ""),
    ("script-in-patient-name.dcm", "accepted", "png"),
    ("shift-jis-under-iso-ir-13.dcm", "accepted", "png"),
    ("shift-jis-undeclared.dcm", "accepted", "png"),
    ("utf8-declared-but-latin1.dcm", "accepted", "png"),
    ("unknown-charset.dcm", "accepted", "png"),
    ("iso2022-broken-escapes.dcm", "accepted", "png"),
    (
        "missing-sop-instance-uid.dcm",
        "dicom_missing_sop_instance_uid",
        "",
    ),
    ("missing-modality.dcm", "dicom_missing_modality", ""),
    ("meta-only.dcm", "dicom_missing_sop_instance_uid", ""),
    ("empty.dcm", "empty_file", ""),
    ("jpeg-garbage.dcm", "accepted", "dicom_undecodable"),
    ("jpeg2000-garbage.dcm", "accepted", "dicom_undecodable"),
    ("rle-bogus-segments.dcm", "accepted", "dicom_undecodable"),
    (
        "rle-segment-count-huge.dcm",
        "accepted",
        "dicom_undecodable",
    ),
    ("rle-short-segment.dcm", "accepted", "dicom_undecodable"),
    ("rle-huge-dimensions.dcm", "accepted", "dicom_too_large"),
    // Found by the fuzzer: Bits Stored outside 1..=Bits Allocated (an assertion
    // in dicom-pixeldata). As found it also has a tag out of order, so intake
    // refuses it; its `ordered-` copy reaches the render-time check.
    ("fuzz-bits-stored-out-of-range.dcm", "dicom_malformed", ""),
    (
        "ordered-fuzz-bits-stored-out-of-range.dcm",
        "accepted",
        "dicom_undecodable",
    ),
    // Found by the fuzzer: a JPEG 2000 codestream larger than Rows × Columns.
    (
        "fuzz-jpeg2000-larger-than-its-geometry.dcm",
        "dicom_malformed",
        "",
    ),
    (
        "ordered-fuzz-jpeg2000-larger-than-its-geometry.dcm",
        "accepted",
        "dicom_undecodable",
    ),
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Runs in the memory-capped child: judges every file, streamed in small
/// chunks (as an upload arrives) and whole, then renders the accepted ones,
/// from the bytes in memory and from a stream.
fn judge_corpus() {
    // A decoder panic is caught and shown as an undecodable slice, but every
    // one known is prevented by a check first: any panic here is a finding.
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        eprintln!(
            "panic: {}: {}",
            info.location().map(|l| l.to_string()).unwrap_or_default(),
            info.payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or_default()
        );
    }));
    let mut names: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".dcm"))
        .collect();
    names.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(n, _, _)| *n).collect();
    for n in &names {
        assert!(listed.contains(&n.as_str()), "{n} has no expectation");
    }
    assert_eq!(names.len(), EXPECTED.len(), "every expected file exists");
    for (name, intake, render) in EXPECTED {
        let bytes = std::fs::read(corpus().join(name)).unwrap();
        let whole = imaging::check_bytes(name, "", &bytes);
        let mut streamed = imaging::Intake::new(name, "");
        let streamed = bytes
            .chunks(13)
            .try_for_each(|c| streamed.feed(c))
            .and_then(|()| streamed.finish());
        let outcome = |r: &Result<Checked, imaging::IntakeError>| match r {
            Ok(Checked::Dicom(_)) => "accepted".to_string(),
            Ok(other) => format!("{other:?}"),
            Err(e) => e.code().to_string(),
        };
        assert_eq!(outcome(&whole), *intake, "{name}: {whole:?}");
        assert_eq!(outcome(&streamed), *intake, "{name} streamed: {streamed:?}");
        if let Err(e) = &whole {
            assert!(!e.message_ja().is_empty() && !e.message_en().is_empty());
            continue;
        }
        let rendered = imaging::render_png(&bytes, 0, WindowChoice::Preset(Preset::Lung));
        let got = match &rendered {
            Ok(_) => "png",
            Err(e) => e.code(),
        };
        assert_eq!(got, *render, "{name}: {:?}", rendered.err());
        // The same frame rendered from a stream (as a rendered slice is).
        let mut capture = imaging::FrameCapture::new(0, Some(bytes.len() as u64));
        let streamed = bytes
            .chunks(13)
            .try_for_each(|c| capture.feed(c))
            .and_then(|()| capture.render(WindowChoice::Preset(Preset::Lung)));
        let got = match &streamed {
            Ok(_) => "png",
            Err(e) => e.code(),
        };
        assert_eq!(got, *render, "{name} streamed: {:?}", streamed.err());
    }
    // Names are kept as written (escaping is the page's job) and decoded.
    let meta = |name: &str| match imaging::check_file(&corpus().join(name)).unwrap() {
        Ok(Checked::Dicom(m)) => m,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(
        meta("script-in-patient-name.dcm").patient_name,
        "<script>alert(1)</script>^<img src=x onerror=alert(2)>"
    );
    assert_eq!(
        meta("shift-jis-under-iso-ir-13.dcm").patient_name,
        "山田^太郎"
    );
    assert_eq!(meta("shift-jis-undeclared.dcm").patient_name, "山田^太郎");
    assert!(
        meta("utf8-declared-but-latin1.dcm")
            .patient_name
            .contains('\u{FFFD}')
    );
    assert_eq!(
        PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a decoder panicked"
    );
    let peak = peak_rss_kib();
    println!("hostile corpus: {} files, peak RSS {peak} KiB", names.len());
    assert!(peak < PEAK_RSS_KIB, "peak RSS {peak} KiB");
}

#[test]
fn hostile_corpus_is_refused_or_handled_under_a_memory_limit() {
    if std::env::var_os(CHILD).is_some() {
        judge_corpus();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(exe)
        .args([
            "--exact",
            "hostile_corpus_is_refused_or_handled_under_a_memory_limit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("hostile corpus:"),
        "child failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    // The cap is real: the same child cannot allocate what a hostile length asks for.
    let probe = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec python3 -c 'bytearray(4 << 30)'"
        ))
        .output()
        .unwrap();
    assert!(
        !probe.status.success(),
        "a 4 GiB allocation must fail under the cap"
    );
}
