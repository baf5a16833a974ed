//! Issue 5's "a referral with a reply letter" through the pages in headless
//! Chromium, on the real binary: a clinic doctor's referral with a letter
//! file to a hospital surgeon, who accepts, forwards the thread to a
//! colleague and replies with a reply letter and a file; the clinic doctor
//! sees the reply verified and acknowledges. Withdrawal by the requester and a
//! decline with a reason by the liaison office, each from the thread page.

use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, no_files, run_browser, sha256_hex};
use crate::pages_doctor::{PDF, PNG};

#[tokio::test]
async fn a_referral_with_a_reply_letter_forwarded_to_a_colleague_in_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (surgeon, surgeon_issued) = net.add_user("doctor", HOSPITAL, "讃岐 外科");
    let (colleague, colleague_issued) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let (liaison, liaison_issued) = net.add_user("liaison", HOSPITAL, "中央 地域連携室");
    let server = net.serve(&[]);
    // Issued passwords changed; the liaison's first sign-in makes the
    // hospital's facility keys, so every item to the hospital carries its slots.
    let mut clients = Vec::new();
    for (id, issued) in [
        (&liaison, &liaison_issued),
        (&gp, &gp_issued),
        (&surgeon, &surgeon_issued),
        (&colleague, &colleague_issued),
    ] {
        clients.push(net.ready_client(&server, id, issued).await);
    }
    // A referral with history, medication and course, as the API takes it.
    let (status, made) = server
        .upload(
            &clients[1],
            "/api/v1/threads",
            "thread",
            &json!({
                "kind": "referral",
                "to": { "account": surgeon },
                "subject": "胆石症 紹介状",
                "patient_id": "KTH-0900",
                "patient_name": "琴平 次郎",
                "consent": { "obtained_on": mailbox::clock::today_jst().to_string(),
                    "method": "written", "obtained_by": "琴平 看護師" },
                "fields": {
                    "course": "3か月前から食後の右季肋部痛",
                    "medication": "ウルソデオキシコール酸 300mg/日",
                    "history": "高血圧症",
                    "diagnosis": "胆石症",
                    "purpose": "手術適応のご判断",
                },
            }),
            no_files(),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{made}");
    let with_history = made["thread_id"].as_str().unwrap().to_string();
    let pw = |issued: &str| format!("{issued}-Mine-2026");
    let files = tempfile::tempdir().unwrap();
    let letter = files.path().join("紹介状.pdf");
    let reply_file = files.path().join("術前検査結果.png");
    std::fs::write(&letter, PDF).unwrap();
    std::fs::write(&reply_file, PNG).unwrap();

    let v = run_browser(
        "pages_referral.cjs",
        &[
            &server.url(""),
            HOSPITAL,
            &gp,
            &pw(&gp_issued),
            &surgeon,
            &pw(&surgeon_issued),
            &colleague,
            &pw(&colleague_issued),
            &liaison,
            &pw(&liaison_issued),
            letter.to_str().unwrap(),
            reply_file.to_str().unwrap(),
            &with_history,
        ],
    );
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(v["sent_files"], json!(["紹介状.pdf"]), "{v}");

    // The surgeon finds it, verified, with the patient, consent and letter.
    assert_eq!(v["surgeon_inbox"], 1, "{v}");
    assert_eq!(text("surgeon_opened"), "開封済み", "{v}");
    assert_eq!(
        v["surgeon_signatures"],
        json!({"valid": 1, "broken": 0, "steps": 1}),
        "{v}"
    );
    let seen = text("surgeon_sees");
    for expected in [
        "右鼠径ヘルニア 紹介状",
        "KTH-0815 琴平 花子",
        "琴平 看護師",
        "同意者: 代諾者（母）",
        "手術適応のご判断をお願いします",
        "右鼠径ヘルニア",
        "紹介状.pdf",
    ] {
        assert!(seen.contains(expected), "{expected:?} missing: {seen}");
    }
    // Before accepting: accept or decline; the forward form lists the
    // colleague, not the surgeon.
    assert_eq!(
        v["surgeon_offered"]["steps"],
        json!(["accept", "decline"]),
        "{v}"
    );
    assert_eq!(v["surgeon_offered"]["forward"], 1, "{v}");
    assert_eq!(
        v["surgeon_offered"]["first_option"], "医師を選んでください",
        "no blank first choice: {v}"
    );
    assert_eq!(
        v["surgeon_heading"],
        json!(["右鼠径ヘルニア 紹介状", "患者紹介"]),
        "{v}"
    );
    // History, medication and course have labels in both languages, in the
    // form's order.
    assert_eq!(
        v["history_fields"]["ja"],
        json!([
            ["紹介目的", "手術適応のご判断"],
            ["傷病名", "胆石症"],
            ["既往歴", "高血圧症"],
            ["処方", "ウルソデオキシコール酸 300mg/日"],
            ["経過", "3か月前から食後の右季肋部痛"]
        ]),
        "{v}"
    );
    assert_eq!(
        v["history_fields"]["en"],
        json!([
            "Purpose of referral",
            "Diagnosis",
            "Medical history",
            "Medication",
            "Course"
        ]),
        "{v}"
    );
    for at in ["1280-ja", "1280-en", "390-ja", "390-en"] {
        assert_eq!(
            v["history_layout"][at]["side_scroll"], false,
            "referral at {at}: {v}"
        );
    }
    assert_eq!(
        v["surgeon_offered"]["colleagues"],
        json!([colleague]),
        "{v}"
    );
    assert_eq!(text("surgeon_accepted"), "受付済み", "{v}");
    assert_eq!(v["forward_notice"], 1, "{v}");
    assert_eq!(
        v["surgeon_offered_after_accept"],
        json!(["decline", "reply"]),
        "{v}"
    );
    assert_eq!(text("surgeon_replied"), "返書済み", "{v}");

    // The colleague reads the whole thread, the reply letter included, and
    // may take no step (a forged one is refused).
    // Each step is an Inbox row of its own, as for the requester: the referral
    // and the acceptance by the forward, the reply letter by its delivery.
    assert_eq!(v["colleague_inbox"], 3, "{v}");
    assert_eq!(
        v["colleague_signatures"],
        json!({"valid": 3, "broken": 0, "steps": 3}),
        "{v}"
    );
    let colleague_history = v["colleague_history"].as_array().unwrap();
    assert_eq!(colleague_history[2]["label"], "返書", "{v}");
    assert!(
        colleague_history[2]["text"]
            .as_str()
            .is_some_and(|t| t.contains("腹腔鏡下ヘルニア修復術")),
        "{v}"
    );
    assert_eq!(v["colleague_offered"]["steps"], json!([]), "{v}");
    assert_eq!(v["colleague_forged_reply"], 403, "{v}");

    // The liaison office reads the doctor's item through the oversight key
    // and may neither act on it nor forward it; on its shared inbox it may.
    assert_eq!(
        v["liaison_on_doctors_item"],
        json!({"steps": [], "forward": 0, "colleagues": [], "first_option": "",
            "assign": 0, "doctors": []}),
        "{v}"
    );
    assert_eq!(
        v["liaison_on_shared_item"]["steps"],
        json!(["accept", "decline"]),
        "{v}"
    );
    // The office hands its own item to a doctor one way: by assigning it.
    assert_eq!(v["liaison_on_shared_item"]["forward"], 0, "{v}");
    assert_eq!(v["liaison_on_shared_item"]["assign"], 1, "{v}");
    let mut hospital_doctors = v["liaison_on_shared_item"]["doctors"].clone();
    hospital_doctors
        .as_array_mut()
        .unwrap()
        .sort_by_key(|d| d.as_str().unwrap_or_default().to_string());
    let mut expected = [surgeon.clone(), colleague.clone()];
    expected.sort();
    assert_eq!(hospital_doctors, json!(expected), "{v}");
    assert_eq!(text("declined_state"), "お断り", "{v}");

    // The clinic doctor: the reply letter, signed by the surgeon and verified,
    // its file byte for byte, then acknowledged.
    assert_eq!(text("gp_state"), "返書済み", "{v}");
    assert_eq!(
        v["gp_signatures"],
        json!({"valid": 3, "broken": 0, "steps": 3}),
        "{v}"
    );
    let reply = &v["gp_history"][2];
    assert_eq!(reply["label"], "返書", "{v}");
    assert_eq!(reply["signature"], "valid", "{v}");
    assert!(
        reply["signer"]
            .as_str()
            .is_some_and(|s| s.contains("讃岐 外科") && s.contains(&surgeon)),
        "{v}"
    );
    assert_eq!(reply["files"], json!(["術前検査結果.png"]), "{v}");
    assert_eq!(v["reply_download"]["status"], 200, "{v}");
    let png_sha = sha256_hex(&PNG);
    assert_eq!(v["reply_png_sha256"], png_sha, "{v}");
    assert_eq!(v["reply_download"]["sha256"], png_sha, "{v}");
    assert_eq!(v["reply_download"]["header_sha256"], png_sha, "{v}");
    assert_eq!(v["gp_offered"], json!(["acknowledge"]), "{v}");
    assert_eq!(text("gp_acknowledged"), "確認済み", "{v}");
    assert_eq!(
        v["screenshots"],
        json!(["referral-ja.png", "referral-en.png"]),
        "{v}"
    );

    // Withdrawn by the clinic doctor; declined with the reason by the office.
    assert_eq!(text("withdrawn_state"), "取り下げ", "{v}");
    assert_eq!(v["withdrawn_offered"]["steps"], json!([]), "{v}");
    assert_eq!(text("gp_withdrawn_state"), "取り下げ", "{v}");
    assert_eq!(text("gp_declined_state"), "お断り", "{v}");
    let declined = &v["gp_declined_history"][1];
    assert_eq!(declined["label"], "お断り", "{v}");
    assert_eq!(declined["signature"], "valid", "{v}");
    assert!(
        declined["text"]
            .as_str()
            .is_some_and(|t| t.contains("当院では対応できない診療科のため")),
        "{v}"
    );
    assert_eq!(v["errors"], json!([]), "{v}");
}
