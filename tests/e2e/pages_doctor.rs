//! The doctor's pages in headless Chromium against the real binary: compose a
//! reading request with two files, the recipient's inbox and unread count,
//! verified signatures, accept and report, the sender's acknowledgement,
//! archive, search, XSS, CSRF, and a clerk's read-only view with a forged POST.

use crate::harness::{CLINIC, HOSPITAL, Network, no_files, run_browser, sha256_hex};

/// A real 1×1 PNG.
pub(crate) const PNG: [u8; 70] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xfc, 0xcf, 0xc0, 0x50,
    0x0f, 0x00, 0x04, 0x85, 0x01, 0x80, 0x84, 0xa9, 0x8c, 0x21, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A small real PDF (one empty page).
pub(crate) const PDF: &str = "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n\
trailer << /Root 1 0 R >>\n%%EOF\n";

#[tokio::test]
async fn a_doctor_sends_a_reading_request_and_gets_a_verified_report_in_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 一郎");
    let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 放射");
    let (clerk, clerk_issued) = net.add_user("clerk", HOSPITAL, "中央 事務");
    let server = net.serve(&[]);
    // Issued passwords changed; the clerk's first sign-in makes the hospital's
    // oversight key, so items to the hospital carry a slot for it.
    let mut clients = Vec::new();
    for (id, issued) in [
        (&gp, &gp_issued),
        (&rad, &rad_issued),
        (&clerk, &clerk_issued),
    ] {
        clients.push(net.ready_client(&server, id, issued).await);
    }
    // A plain message from the clinic doctor to the radiologist (no thread).
    let (status, sent) = server
        .upload(
            &clients[0],
            "/api/v1/envelopes",
            "envelope",
            &serde_json::json!({ "kind": "message", "to": [{ "account": rad }],
                "subject": "合同カンファレンスのご案内", "body": "来週木曜の合同カンファレンスにご参加ください。" }),
            no_files(),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{sent}");
    let message = sent["id"].as_str().unwrap().to_string();
    let pw = |issued: &str| format!("{issued}-Mine-2026");
    let files = tempfile::tempdir().unwrap();
    let png = files.path().join("胸部CT 画像.png");
    let pdf = files.path().join("紹介状.pdf");
    std::fs::write(&png, PNG).unwrap();
    std::fs::write(&pdf, PDF).unwrap();

    let v = run_browser(
        "pages_doctor.cjs",
        &[
            &server.url(""),
            &gp,
            &pw(&gp_issued),
            &rad,
            &pw(&rad_issued),
            &clerk,
            &pw(&clerk_issued),
            png.to_str().unwrap(),
            pdf.to_str().unwrap(),
            &message,
        ],
    );
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let thread = text("thread_path");
    assert!(thread.starts_with("/threads/"), "{v}");
    assert_eq!(v["progress_bars"], 2, "a progress bar per file: {v}");
    // The sender's own view: one step, verified; the script subject is text.
    assert_eq!(
        v["sender_signatures"],
        serde_json::json!({"valid": 1, "broken": 0, "steps": 1}),
        "{v}"
    );
    assert_eq!(text("subject_text"), "<script>alert(1)</script>", "{v}");
    assert_eq!(v["script_in_dom"], false, "{v}");

    // The recipient: unread count, the sending facility, opened and verified.
    assert_eq!(text("rad_unread"), "2", "the request and the message: {v}");
    assert_eq!(v["rad_inbox_rows"], 2, "{v}");
    assert_eq!(v["rad_inbox_row_bold"], 2, "{v}");
    let row = text("rad_inbox_row");
    assert!(row.contains("読影依頼"), "{row}");
    assert!(row.contains("ことひら内科クリニック"), "{row}");
    assert!(row.contains("受信"), "{row}");
    assert_eq!(
        v["rad_signatures"],
        serde_json::json!({"valid": 1, "broken": 0, "steps": 1}),
        "{v}"
    );
    assert_eq!(text("rad_state_opened"), "開封済み", "{v}");
    assert_eq!(
        v["rad_actions"],
        serde_json::json!(["accept", "decline"]),
        "{v}"
    );
    // The page is headed by the subject, with the kind beside it; it names
    // the doctor in charge; fields in the form's order; sizes people read and
    // short digests with the whole one in the title.
    let t = &v["rad_thread"];
    assert_eq!(t["title"], "<script>alert(1)</script>", "{v}");
    assert_eq!(t["kind"], "読影依頼", "{v}");
    assert!(
        t["doctor"]
            .as_str()
            .is_some_and(|d| d.contains("讃岐 放射")),
        "{v}"
    );
    assert!(
        t["target"]
            .as_str()
            .is_some_and(|d| d.contains("讃岐 放射")),
        "{v}"
    );
    assert_eq!(t["back"], "/mail/inbox", "{v}");
    assert_eq!(
        t["fields"],
        serde_json::json!(["検査種別", "検査部位", "依頼内容・臨床上の疑問"]),
        "{v}"
    );
    assert_eq!(
        t["sizes"],
        serde_json::json!([
            ["70 B", "70"],
            [format!("{} B", PDF.len()), PDF.len().to_string()]
        ]),
        "{v}"
    );
    for (i, digest) in [sha256_hex(&PNG), sha256_hex(PDF.as_bytes())]
        .iter()
        .enumerate()
    {
        assert_eq!(
            t["digests"][i],
            serde_json::json!([
                format!("SHA-256 {}…", &digest[..12]),
                format!("SHA-256: {digest}")
            ]),
            "{v}"
        );
    }
    for at in ["1280-ja", "1280-en", "390-ja", "390-en"] {
        let l = &v["rad_thread_layout"][at];
        assert_eq!(l["side_scroll"], false, "thread at {at}: {v}");
        assert_eq!(l["kind_lines"][0][1], 1, "{at}: {v}");
    }
    assert_eq!(
        v["rad_thread_layout"]["390-en"]["english_labels"],
        serde_json::json!(["Modality", "Body part", "Clinical question"]),
        "{v}"
    );
    // Both files come back byte for byte, as downloads with RFC 6266 names.
    let downloads = v["downloads"].as_array().unwrap();
    assert_eq!(downloads.len(), 2, "{v}");
    for (i, d) in downloads.iter().enumerate() {
        assert_eq!(d["status"], 200, "{v}");
        assert_eq!(d["sha256"], v["sent_sha256"][i], "{v}");
        let disposition = d["disposition"].as_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\""),
            "{disposition}"
        );
        assert!(disposition.contains("filename*=UTF-8''"), "{disposition}");
    }
    assert!(
        downloads[0]["disposition"]
            .as_str()
            .unwrap()
            .ends_with("filename*=UTF-8''%E8%83%B8%E9%83%A8CT%20%E7%94%BB%E5%83%8F.png"),
        "{v}"
    );
    // A forged POST without the token: refused, nothing changed.
    assert_eq!(v["forged_without_token"], 403, "{v}");
    assert_eq!(text("state_after_forgery"), "開封済み", "{v}");
    assert_eq!(text("rad_state_accepted"), "受付済み", "{v}");
    assert_eq!(text("rad_state_reported"), "レポート済み", "{v}");

    // The requester: the report arrived unread, both steps verified, acknowledged.
    assert_eq!(text("gp_unread"), "2", "the acceptance and the report: {v}");
    assert_eq!(
        v["gp_signatures"],
        serde_json::json!({"valid": 3, "broken": 0, "steps": 3}),
        "{v}"
    );
    assert!(
        text("gp_report_text").contains("右上葉に8mmの結節あり。"),
        "{v}"
    );
    assert_eq!(text("gp_state_acknowledged"), "確認済み", "{v}");
    assert_eq!(v["gp_actions_after"], 0, "{v}");

    // Archive moves it; search finds it by a word of the body, by POST.
    assert_eq!(v["inbox_rows_before_archive"], 2, "{v}");
    assert_eq!(v["inbox_rows_after_archive"], 0, "{v}");
    assert_eq!(v["archive_rows"], 2, "{v}");
    assert!(text("search_url").ends_with("/mail/search"), "{v}");
    assert!(v["search_hits"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["search_none"], 1, "{v}");

    // The clerk reads every step, verified, with no form at all, and a forged
    // POST with a valid token is refused by the role table.
    assert_eq!(
        v["clerk_signatures"],
        serde_json::json!({"valid": 4, "broken": 0, "steps": 4}),
        "{v}"
    );
    assert_eq!(v["clerk_forms"], 0, "no form in the page body: {v}");
    assert_eq!(v["clerk_read_only"], 1, "{v}");
    assert_eq!(v["clerk_forged_with_token"], 403, "{v}");
    assert_eq!(text("clerk_state_after"), "確認済み", "{v}");
    assert_eq!(
        text("clerk_back"),
        "/clerk",
        "a clerk goes back to the progress page: {v}"
    );

    // A plain message: reply, forward and archive on its page; the reply
    // reaches the sender; Sent shows the message's facility and state.
    assert_eq!(text("msg_href"), format!("/items/{message}"), "{v}");
    let m = &v["msg"];
    assert_eq!(m["title"], "合同カンファレンスのご案内", "{v}");
    assert_eq!(m["kind"], "メッセージ", "{v}");
    assert_eq!(
        (&m["reply"], &m["forward"], &m["archive"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{v}"
    );
    assert!(
        m["reply_to"]
            .as_str()
            .is_some_and(|r| r.contains("琴平 一郎")),
        "{v}"
    );
    assert_eq!(m["reply_subject"], "Re: 合同カンファレンスのご案内", "{v}");
    assert_eq!(m["back"], "/mail/inbox", "{v}");
    for at in ["1280-ja", "1280-en", "390-ja", "390-en"] {
        assert_eq!(
            v["msg_layout"][at]["side_scroll"], false,
            "message at {at}: {v}"
        );
        assert_eq!(
            v["sent_layout"][at]["side_scroll"], false,
            "Sent at {at}: {v}"
        );
    }
    assert_eq!(text("msg_replied"), "返信を送りました。", "{v}");
    assert_eq!(v["msg_in_inbox_after_archive"], 0, "{v}");
    assert_eq!(v["msg_in_archive"], 1, "{v}");
    let sent = &v["sent"];
    assert!(sent["rows"].as_u64().is_some_and(|n| n >= 2), "{v}");
    assert_eq!(sent["sent_marks"], 0, "no row says (送信) in Sent: {v}");
    assert_eq!(sent["sent_words"], 0, "{v}");
    assert_eq!(
        sent["mark_unread"], 0,
        "one's own items are not unread: {v}"
    );
    assert_eq!(sent["mark_read"], 0, "{v}");
    assert_eq!(sent["message"]["counterpart"], "さぬき中央病院", "{v}");
    assert_eq!(sent["message"]["state"], "受信", "delivered: {v}");
    let r = &v["reply_seen"];
    assert_eq!(r["title"], "Re: 合同カンファレンスのご案内", "{v}");
    assert_eq!(r["reply"], 1, "the sender can answer in turn: {v}");
    assert!(
        v["reply_body"]
            .as_str()
            .is_some_and(|b| b.contains("参加いたします")),
        "{v}"
    );

    assert_eq!(
        v["errors"],
        serde_json::json!([]),
        "no script ran, no dialog: {v}"
    );
    assert_eq!(v["screenshots"].as_array().map(Vec::len), Some(6), "{v}");
}
