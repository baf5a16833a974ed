//! The page frame every area shares: the idle-timeout warning and expiry in a
//! real browser, CSRF refusals.

use crate::harness::{HOSPITAL, Network, run_browser};

#[tokio::test]
async fn the_idle_timeout_warns_then_signs_the_person_out_in_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&["--idle-timeout-secs", "8"]);
    let _ = net.ready_client(&server, &id, &issued).await;
    let password = format!("{issued}-Mine-2026");
    let v = run_browser("idle_timeout.cjs", &[&server.url(""), &id, &password]);
    assert_eq!(v["landed"], "/", "{v}");
    assert_eq!(v["warning_at_first"], false, "{v}");
    // Warned shortly before the 8 s timeout, not at once and not after it.
    let warned = v["warning_after_ms"].as_u64().unwrap_or(0);
    assert!((4_000..8_000).contains(&warned), "{v}");
    assert_eq!(v["me_after_stay"], 200, "{v}");
    assert!(
        v["expired_page"]
            .as_str()
            .is_some_and(|p| p.contains("セッションの有効期限が切れました")),
        "{v}"
    );
    assert_eq!(v["me_after_expiry"], 401, "{v}");
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
}
