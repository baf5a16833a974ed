//! The DICOM viewer in headless Chromium: a generated CT series, a generated
//! monochrome multi-frame file and two of pydicom's bundled files (a
//! two-frame colour image, a JPEG-LS image no pure-Rust decoder reads) sent to a doctor,
//! who opens the thread, then the viewer. The first slice is timed; the lung
//! preset is chosen; the wheel and the keys scroll; the displayed slice's grey
//! levels, read back from the page, match pydicom's decoding with the same
//! window; the multi-frame and colour files scroll through their frames; the
//! undecodable file shows the render route's message and still downloads.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::dicom_support::{PATIENT, Reading, generated_study, named, oracle};
use crate::harness::run_browser;

const SLICES: usize = 20;
const SIZE: usize = 128;
const FRAMES: usize = 12;
const COLOUR: &str = "SC_rgb_rle_2frame.dcm";
const UNDECODABLE: &str = "MR_small_jpeg_ls_lossless.dcm";

/// Mean and largest absolute difference of two grey images.
fn difference(ours: &[u8], theirs: &[u8]) -> (f64, u8) {
    assert_eq!(ours.len(), theirs.len(), "image sizes differ");
    let max = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    let sum: u64 = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    (sum as f64 / ours.len() as f64, max)
}

/// pydicom's grey levels of one frame with the given window.
fn pydicom_gray(
    file: &std::path::Path,
    frame: u32,
    window: &str,
    out: &std::path::Path,
) -> Vec<u8> {
    let (center, width) = window.split_once(' ').unwrap();
    oracle(&[
        "render",
        file.to_str().unwrap(),
        &frame.to_string(),
        center,
        width,
        out.to_str().unwrap(),
    ]);
    std::fs::read(out).unwrap()
}

/// The flat index of the series whose first instance is attachment `index`
/// (the viewer's `series` parameter).
fn series_of(record: &Value, index: usize) -> usize {
    record["studies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["series"].as_array().unwrap())
        .position(|s| s["instances"][0]["attachment"] == index)
        .unwrap_or_else(|| panic!("no series starts with attachment {index}: {record}"))
}

#[tokio::test]
async fn a_doctor_reads_a_ct_series_and_pydicom_files_in_the_browser_viewer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = generated_study(&tmp.path().join("study"), SLICES, SIZE);
    let multiframe_file = tmp.path().join("MF00001.dcm");
    oracle(&[
        "multiframe",
        multiframe_file.to_str().unwrap(),
        &FRAMES.to_string(),
        &SIZE.to_string(),
    ]);
    let paths: Value = serde_json::from_str(&oracle(&["paths"])).unwrap();
    let bundled = std::path::PathBuf::from(paths["test_files"].as_str().unwrap());
    files.push(multiframe_file);
    for name in [COLOUR, UNDECODABLE] {
        files.push(bundled.join(name));
    }
    let items: Vec<(String, Vec<u8>)> = files.iter().map(|p| named(p)).collect();
    let (multiframe, colour, undecodable) = (SLICES, SLICES + 1, SLICES + 2);

    let reading = Reading::start().await;
    let (net, server, rad_c) = (&reading.net, &reading.server, &reading.rad_c);
    // pydicom's files are other patients': confirmed, as a sender would.
    let item = reading.sent(PATIENT, &items, &[COLOUR, UNDECODABLE]).await;
    let record = reading.studies(&item).await;
    // What the render route itself says about the undecodable file.
    let refusal: Value = rad_c
        .get(server.url(&format!(
            "/api/v1/envelopes/{item}/attachments/{undecodable}/render"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        refusal["error"], "dicom_unsupported_transfer_syntax",
        "{refusal}"
    );

    let series = json!({
        "ct": series_of(&record, 0),
        "ct_count": SLICES,
        "ct_page": (SLICES / 10).max(1),
        "compare_at": 7,
        "multiframe": series_of(&record, multiframe),
        "colour": series_of(&record, colour),
        "broken": series_of(&record, undecodable),
    });
    let out_dir = tmp.path().join("browser");
    std::fs::create_dir_all(&out_dir).unwrap();
    let cfg = json!({
        "base": server.url(""),
        "id": reading.rad,
        "password": reading.rad_pw,
        "item": item,
        "series": series,
        "out": out_dir,
    });
    let out = run_browser("viewer.cjs", &[&cfg.to_string()]);
    println!(
        "viewer: first slice {} ms from the click on the thread's link ({} ms after navigation start, in the page); steps {}",
        out["first_slice_ms"], out["first_slice_page_ms"], out["steps"]
    );
    assert_eq!(out["errors"], json!([]), "script errors: {out}");

    // The page: IDs in the URL, no patient in the title, the series listed.
    let url = out["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/items/{item}/viewer")), "{url}");
    let title = out["title"].as_str().unwrap();
    assert!(title.starts_with("画像ビューア"), "{title}");
    for patient in ["山田", "Yamada", "12345"] {
        assert!(
            !title.contains(patient) && !url.contains(patient),
            "{title} {url}"
        );
    }
    let list = out["series_list"].as_array().unwrap();
    assert_eq!(list.len(), 4, "{out}");
    let ct = list[series["ct"].as_u64().unwrap() as usize]["text"]
        .as_str()
        .unwrap();
    for part in ["CT", "CHEST", "Chest 1.0mm", &format!("{SLICES} 画像")] {
        assert!(ct.contains(part), "CT series reads {ct:?}, lacks {part:?}");
    }
    let mf = list[series["multiframe"].as_u64().unwrap() as usize]["text"]
        .as_str()
        .unwrap();
    assert!(
        mf.contains("Multi-frame") && mf.contains(&format!("{FRAMES} フレーム")),
        "{mf:?}"
    );
    assert!(
        out["study_dates"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-11-20")),
        "{out}"
    );
    assert_eq!(
        out["presets"],
        json!([
            ["default", "既定"],
            ["lung", "肺野"],
            ["mediastinum", "縦隔"],
            ["bone", "骨"],
            ["brain", "脳"],
            ["custom", "任意"]
        ])
    );

    // The first slice, then the lung window over the same slice.
    let first = &out["first"];
    assert_eq!(first["state"], "image", "{first}");
    assert_eq!(first["pos"], format!("1 / {SLICES}"));
    assert_eq!(first["instance"], "1");
    assert_eq!(first["naturalWidth"], SIZE);
    assert_eq!(out["after_preset"]["window"], "-600 1500");
    assert_eq!(out["window_inputs"], json!(["-600", "1500"]));
    // The next slices were asked for before any scrolling.
    let prefetched: Vec<&str> = out["prefetched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for next in ["1", "2", "3", "4", "5", "6"] {
        assert!(
            prefetched.contains(&next),
            "not prefetched: {next} in {prefetched:?}"
        );
    }

    // Wheel and keys move through the series in instance order.
    let expected = [
        ("wheel 100", 1),
        ("wheel 100", 2),
        ("wheel 100", 3),
        ("wheel -100", 2),
        ("ArrowDown", 3),
        ("ArrowDown", 4),
        ("ArrowUp", 3),
        ("PageDown", 5),
        ("End", SLICES - 1),
        ("Home", 0),
    ];
    let steps = out["steps"].as_array().unwrap();
    assert_eq!(steps.len(), expected.len(), "{out}");
    for (step, (input, at)) in steps.iter().zip(expected) {
        assert_eq!(step["input"], input);
        assert_eq!(step["shown"], at, "{step}");
        assert_eq!(step["attachment"], at, "{step}");
        assert_eq!(step["instance"], (at + 1).to_string(), "{step}");
        assert_eq!(step["pos"], format!("{} / {SLICES}", at + 1), "{step}");
    }

    // The displayed slice against pydicom, same window. The page's pixels are
    // the PNG the server rendered, decoded by Chromium and read back through
    // a canvas; the server's own render is within 1 grey level of pydicom's
    // (rounding at the window's edges), and the browser must add nothing.
    let compared = &out["compared"];
    let at = compared["attachment"].as_u64().unwrap() as usize;
    assert_eq!(at, 7, "{compared}");
    assert_eq!(out["compared_size"], json!([SIZE, SIZE]));
    assert_eq!(out["compared_not_gray"], 0);
    assert_eq!(out["compared_fetch"]["status"], 200);
    assert_eq!(out["compared_fetch"]["type"], "image/png");
    assert_eq!(out["compared_fetch"]["window"], "-600 1500");
    let ours = std::fs::read(out_dir.join("slice.gray")).unwrap();
    let theirs = pydicom_gray(&files[at], 0, "-600 1500", &tmp.path().join("slice.raw"));
    let (mean, max) = difference(&ours, &theirs);
    println!("viewer: displayed slice {at} vs pydicom: mean {mean:.4}, max {max}");
    assert!(mean <= 0.05 && max <= 1, "mean {mean}, max {max}");

    // The multi-frame file: frame 3 of 15, against pydicom with the window shown.
    let frame = &out["multiframe"];
    assert_eq!(frame["pos"], format!("3 / {FRAMES}"), "{frame}");
    assert_eq!(frame["frame"], 2);
    assert_eq!(frame["attachment"], multiframe);
    let window = frame["window"].as_str().unwrap();
    let ours = std::fs::read(out_dir.join("frame.gray")).unwrap();
    let theirs = pydicom_gray(&files[multiframe], 2, window, &tmp.path().join("frame.raw"));
    let (mean, max) = difference(&ours, &theirs);
    println!("viewer: multi-frame frame 2 vs pydicom ({window}): mean {mean:.4}, max {max}");
    assert!(mean <= 0.05 && max <= 1, "mean {mean}, max {max}");

    // Colour: the first band of the test pattern is red; both frames show.
    assert_eq!(out["colour_first"]["pos"], "1 / 2");
    assert_eq!(out["colour_size"], json!([100, 100]));
    let px: Vec<u64> = out["colour_pixel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(px[0] > 200 && px[1] < 40 && px[2] < 40, "red band: {px:?}");
    assert_eq!(out["colour_last"]["frame"], 1);

    // The undecodable file: the route's message in Japanese (and English),
    // and the download of that very file.
    let broken = &out["broken"];
    assert_eq!(broken["error"], refusal["message_ja"], "{broken}");
    assert_eq!(out["en"]["broken"]["error"], refusal["message"]);
    assert_eq!(broken["attachment"], undecodable);
    assert_eq!(
        broken["download"],
        format!("/items/{item}/attachments/{undecodable}")
    );
    let original = &items[undecodable].1;
    assert_eq!(out["broken_download"]["status"], 200);
    assert_eq!(out["broken_download"]["bytes"], original.len());
    assert_eq!(
        out["broken_download"]["sha256"],
        format!("{:x}", Sha256::digest(original))
    );
    assert!(
        out["broken_download"]["disposition"]
            .as_str()
            .unwrap()
            .contains(UNDECODABLE)
    );

    // English.
    assert!(
        out["en"]["title"]
            .as_str()
            .unwrap()
            .starts_with("Image viewer")
    );
    assert_eq!(out["en"]["heading"], "Image viewer");
    assert_eq!(out["en"]["presets"][1], "Lung");
    assert_eq!(
        out["screenshots"],
        json!(["viewer-ja.png", "viewer-en.png"])
    );

    // Every slice shown is in the audit trail, as is the record read.
    let audit = net.audit_export();
    assert!(audit.contains("intake_record"), "record view not audited");
    assert!(
        audit.contains(&format!("dicom attachment={at} frame=0")),
        "render not audited"
    );
    assert!(
        audit.contains(&format!("dicom attachment={multiframe} frame=2")),
        "frame render not audited"
    );
}
