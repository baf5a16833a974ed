//! Issue 5's story through the pages in headless Chromium, on the real binary:
//! clinic doctor → hospital liaison office → radiologist → clinic doctor, with
//! the clinic's clerk following along read-only.

use std::process::Command;

use serde_json::json;

use crate::harness::{CLINIC, HOSPITAL, Network, run_browser};

#[tokio::test]
async fn a_reading_request_from_compose_to_acknowledged_report_in_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let (clerk, clerk_pw) = net.add_user("clerk", CLINIC, "琴平 事務");
    let (liaison, liaison_pw) = net.add_user("liaison", HOSPITAL, "地域連携室 坂出");
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&[]);
    for (id, pw) in [
        (&gp, &gp_pw),
        (&clerk, &clerk_pw),
        (&liaison, &liaison_pw),
        (&rad, &rad_pw),
    ] {
        let _ = net.ready_client(&server, id, pw).await;
    }
    // One CT slice of the patient the request names (pydicom, as the DICOM tests make them).
    let dir = tempfile::tempdir().unwrap();
    let python = std::env::var("RENKEI_PYTHON").unwrap_or_else(|_| "python3".into());
    let made = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/imaging/tests/py/oracle.py"
        ))
        .args([
            "study",
            &dir.path().to_string_lossy(),
            "1",
            "64",
            "KTH-0042",
        ])
        .arg("Kagawa^Taro=香川^太郎=カガワ^タロウ")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let slice = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "dcm"))
        .expect("a generated slice");
    let pw = |issued: &str| format!("{issued}-Mine-2026");
    let v = run_browser(
        "story.cjs",
        &[
            &server.url(""),
            HOSPITAL,
            &gp,
            &pw(&gp_pw),
            &liaison,
            &pw(&liaison_pw),
            &rad,
            &pw(&rad_pw),
            &clerk,
            &pw(&clerk_pw),
            &slice.to_string_lossy(),
        ],
    );
    assert_eq!(v["sent_attachments"], 1, "{v}");
    assert_eq!(v["liaison_sees"], 1, "{v}");
    assert!(
        v["liaison_row"]
            .as_str()
            .is_some_and(|r| r.contains("讃岐 一郎")),
        "the holder shows: {v}"
    );
    assert_eq!(v["rad_inbox"], 1, "{v}");
    assert_eq!(v["rad_signatures"]["broken"], 0, "{v}");
    assert!(v["rad_signatures"]["valid"].as_u64() >= Some(1), "{v}");
    assert_ne!(v["rad_accepted"], v["sent_state"], "{v}");
    assert_eq!(v["gp_sees_report"], true, "{v}");
    assert_eq!(v["gp_signatures"]["broken"], 0, "{v}");
    assert!(v["gp_signatures"]["valid"].as_u64() >= Some(3), "{v}");
    // The clerk sees the item and its state, with nothing to press.
    assert_eq!(
        v["clerk_lists_item"].as_u64().map(|n| n >= 1),
        Some(true),
        "{v}"
    );
    assert_eq!(v["clerk_state"], v["gp_acknowledged"], "{v}");
    assert_eq!(v["clerk_action_forms"], 0, "{v}");
    assert_eq!(v["clerk_forged_post"], 403, "{v}");
    assert_eq!(v["clerk_state_after"], v["gp_acknowledged"], "{v}");
    assert_eq!(v["errors"], json!([]), "{v}");
}
