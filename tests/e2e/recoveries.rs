//! Keys that survive people, end to end in headless Chromium (issue 24): the
//! operator resets a doctor's password on the console; knowing the issued
//! password is not enough to read the doctor's earlier items or to restore
//! them (neither as the operator nor as the person); a liaison of the clinic
//! approves on `/recoveries`, and the doctor's earlier item opens again. Every
//! step is on the audit trail. Screenshots: `recoveries`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, no_files, parse_letter, run_browser};

const MARKER: &str = "右上葉の結節を経過観察中";

#[tokio::test]
async fn a_console_reset_and_a_liaisons_approval_keep_every_item_in_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (op_id, op_issued) = parse_letter(&net.admin(&[
        "user",
        "add",
        "--role",
        "operator",
        "--name",
        "運営 ヘルプデスク",
    ]));
    let (liaison, l_issued) = net.add_user("liaison", CLINIC, "琴平 連携");
    let (doc, doc_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&[]);
    let op_c = net.ready_client(&server, &op_id, &op_issued).await;
    let l_c = net.ready_client(&server, &liaison, &l_issued).await;
    // The doctor's sign-in puts their decryption half in the clinic's custody.
    net.ready_client(&server, &doc, &doc_issued).await;
    let rad_c = net.ready_client(&server, &rad, &rad_issued).await;
    let item = server
        .sent_envelope(
            &rad_c,
            &json!({
                "kind": "reading_request",
                "to": [{ "account": doc.replace('-', "") }],
                "subject": "胸部CT 読影結果",
                "patient_id": "P-0042",
                "patient_name": "香川 太郎",
                "body": format!("所見：{MARKER}。"),
                "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
                "attachments": [],
            }),
            no_files(),
        )
        .await;
    let stored = doc.replace('-', "");
    let chosen = "Kotohira-Chosen-2026!";
    let mut cfg = json!({
        "base": server.url(""),
        "phase": "reset",
        "item": item,
        "marker": MARKER,
        "operator": { "id": op_id, "password": format!("{op_issued}-Mine-2026") },
        "liaison": { "id": liaison, "password": format!("{l_issued}-Mine-2026") },
        "doctor": { "id": doc, "shown": doc, "stored": stored, "chosen": chosen },
    });

    // The reset on the console: a new key, and the console says who can restore.
    let v = run_browser("recoveries.cjs", &[&cfg.to_string()]);
    assert_eq!(v["errors"], json!([]), "{v}");
    assert!(v["key_replaced"].as_str().is_some(), "{v}");
    assert!(
        v["restoration_notice"]
            .as_str()
            .is_some_and(|t| t.contains("地域連携室")),
        "{v}"
    );
    assert_eq!(v["first_landing"], "/password", "{v}");
    assert_eq!(v["item_before"]["status"], 404, "{v}");
    assert_eq!(v["item_before"]["shows_body"], false, "{v}");
    assert_eq!(v["person_recoveries_status"], 403, "{v}");

    // Whoever knows the issued password (the operator, here) cannot restore:
    // not as the operator, not as the person; the item stays shut.
    let approve = format!("/api/v1/recoveries/{stored}/approve");
    let as_person = server
        .sign_in(&doc, chosen)
        .await
        .expect("the chosen password");
    for c in [&op_c, &as_person] {
        let (s, body) = server.post_json(c, &approve, &json!({})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        let (s, _) = server.get_answer(c, "/api/v1/recoveries").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = server
        .get_answer(&as_person, &format!("/api/v1/envelopes/{item}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The liaison's list: the doctor, ready since they chose a password.
    let (s, list) = server.get_answer(&l_c, "/api/v1/recoveries").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["account"], stored.as_str());
    assert_eq!(list[0]["ready"], true);

    // The liaison approves on their page; the doctor's earlier item opens.
    cfg["phase"] = json!("approve");
    let v = run_browser("recoveries.cjs", &[&cfg.to_string()]);
    assert_eq!(v["errors"], json!([]), "{v}");
    assert_eq!(v["nav_link"], "鍵の復元", "{v}");
    assert!(
        v["listed"].as_str().is_some_and(|t| t.contains("琴平 健")),
        "{v}"
    );
    assert!(
        v["done"]
            .as_str()
            .is_some_and(|t| t.contains("承認しました")),
        "{v}"
    );
    assert!(v["after_empty"].as_str().is_some(), "{v}");
    assert_eq!(v["item_after"]["status"], 200, "{v}");
    assert_eq!(v["item_after"]["shows_body"], true, "{v}");
    let doc_c = server.sign_in(&doc, chosen).await.expect("sign-in");
    let (s, opened): (StatusCode, Value) = server
        .get_answer(&doc_c, &format!("/api/v1/envelopes/{item}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{opened}");
    assert!(opened["body"].as_str().is_some_and(|b| b.contains(MARKER)));

    // Each step is on the audit trail, by who took it.
    let trail = net.audit_export();
    let restore_lines: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("key_restore"))
        .collect();
    assert_eq!(restore_lines.len(), 2, "{trail}");
    assert!(restore_lines[0].contains("requested"), "{trail}");
    assert!(
        restore_lines[1].contains("approved")
            && restore_lines[1].contains(&liaison.replace('-', "")),
        "{trail}"
    );
}

/// A clinic with doctors only: items reach its doctor. Its first clerk joins
/// (the oversight key is made now); once the doctor has signed in again, the
/// clerk opens the items sent before they joined, signature and place intact.
#[tokio::test]
async fn a_facilitys_first_clerk_sees_the_items_sent_before_they_joined() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (doc, doc_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&[]);
    net.ready_client(&server, &doc, &doc_issued).await;
    let rad_c = net.ready_client(&server, &rad, &rad_issued).await;
    let item = server
        .sent_envelope(
            &rad_c,
            &json!({
                "kind": "reading_request",
                "to": [{ "account": doc.replace('-', "") }],
                "subject": "胸部CT 読影結果",
                "patient_id": "P-0042",
                "patient_name": "香川 太郎",
                "body": format!("所見：{MARKER}。"),
                "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
                "attachments": [],
            }),
            no_files(),
        )
        .await;
    let path = format!("/api/v1/envelopes/{item}");

    let (clerk, clerk_issued) = net.add_user("clerk", CLINIC, "琴平 事務");
    let clerk_c = net.ready_client(&server, &clerk, &clerk_issued).await;
    let (s, _) = server.get_answer(&clerk_c, &path).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "sealed before the clinic had a clerk"
    );

    server
        .sign_in(&doc, &format!("{doc_issued}-Mine-2026"))
        .await
        .expect("the doctor signs in again");
    let (s, seen) = server.get_answer(&clerk_c, &path).await;
    assert_eq!(s, StatusCode::OK, "{seen}");
    assert!(
        seen["body"].as_str().is_some_and(|b| b.contains(MARKER)),
        "{seen}"
    );
    assert_eq!(seen["signature"]["status"], "valid", "{seen}");
    assert_eq!(seen["signature"]["place_signed"], true, "{seen}");
    assert_eq!(seen["opened_as"], format!("oversight:{CLINIC}"), "{seen}");
}
