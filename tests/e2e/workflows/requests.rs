//! Reading requests (to a doctor and through a liaison office), referrals and
//! information shares, end to end; statistics.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use super::{PATIENT_ID, PATIENT_NAME, World, consent, dicom_bytes, field, steps_of, this_month};
use crate::harness::HOSPITAL;

#[tokio::test]
async fn reading_requests_referrals_and_shares_run_end_to_end() {
    let w = World::new().await;
    let rad = w.p("rad").sid();
    let gp = w.p("gp").sid();

    // Refused before anything is stored: a missing form field, missing consent.
    let mut spec = w.reading_request(json!({ "account": w.p("rad").id }));
    spec["fields"]
        .as_object_mut()
        .unwrap()
        .remove("clinical_question");
    let (s, body) = w
        .multipart("gp", "/api/v1/threads", "thread", spec, vec![])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message_ja"].as_str().unwrap().contains("依頼内容"),
        "{body}"
    );
    let mut spec = w.reading_request(json!({ "account": w.p("rad").id }));
    spec.as_object_mut().unwrap().remove("consent");
    let (s, body) = w
        .multipart("gp", "/api/v1/threads", "thread", spec, vec![])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid");
    assert!(
        body["message_ja"].as_str().unwrap().contains("同意"),
        "{body}"
    );
    let (_, list) = w.get("gp", "/api/v1/threads").await;
    assert_eq!(list, json!([]), "a refused request leaves nothing behind");

    // 1. A reading request through the hospital's liaison office, with a DICOM series.
    let dicom = dicom_bytes();
    let t1 = w
        .open(
            "gp",
            w.reading_request(json!({ "liaison": HOSPITAL })),
            vec![("CT0001.dcm", dicom.clone())],
        )
        .await;
    w.delivered("gp", &t1).await;
    let (_, shared) = w.get("liaison_h", "/api/v1/mailbox/shared").await;
    assert!(
        shared
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["thread_id"] == t1.as_str() && e["thread_state"] == "delivered"),
        "{shared}"
    );
    // The liaison office claims it and hands it to the radiologist.
    let (s, _) = w
        .post(
            "liaison_h",
            &format!("/api/v1/threads/{t1}/claim"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = w
        .post(
            "liaison_h",
            &format!("/api/v1/threads/{t1}/assign"),
            json!({ "doctor": w.p("gp").id }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "only own doctors: {body}");
    let (s, body) = w
        .post(
            "liaison_h",
            &format!("/api/v1/threads/{t1}/assign"),
            json!({ "doctor": w.p("rad").id }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let v = w.thread("liaison_h", &t1).await;
    assert_eq!(v["thread"]["claimed_by"], w.p("liaison_h").sid());
    assert_eq!(v["thread"]["assignee"], rad.as_str());
    // Receipt: the facility's office opened it (the requester sees when and who).
    let v = w.thread("gp", &t1).await;
    assert_eq!(v["thread"]["state"], "opened");
    assert_eq!(v["thread"]["opened_by"], w.p("liaison_h").sid());
    let (_, inbox) = w.get("rad", "/api/v1/mailbox/inbox").await;
    assert!(
        inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["thread_id"] == t1.as_str()),
        "{inbox}"
    );
    let v = w.thread("rad", &t1).await;
    assert_eq!(v["steps"][0]["patient_name"], PATIENT_NAME);
    assert_eq!(field(&v["steps"][0], "modality"), "CT");
    assert_eq!(v["steps"][0]["attachments"][0]["name"], "CT0001.dcm");
    let r = w
        .p("rad")
        .client
        .get(w.server.url(&format!(
            "/api/v1/envelopes/{}/attachments/0",
            v["steps"][0]["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), dicom);
    assert_eq!(
        v["allowed_steps"],
        json!(["accept", "decline"]),
        "a report needs acceptance first"
    );

    let (s, body) = w
        .step(
            "rad",
            &t1,
            json!({ "step": "report", "fields": { "findings": "x", "impression": "y" } }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message_ja"].as_str().unwrap().contains("開封済み"),
        "{body}"
    );
    let (s, body) = w.step("rad", &t1, json!({ "step": "accept" })).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = w
        .step(
            "rad",
            &t1,
            json!({ "step": "report", "fields": { "findings": "右上葉に8mmの結節" } }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "impression missing: {body}");
    assert!(
        body["message_ja"].as_str().unwrap().contains("診断"),
        "{body}"
    );
    let (s, body) = w
        .step(
            "rad",
            &t1,
            json!({
                "step": "report",
                "body": "以上、ご報告いたします。",
                "fields": { "findings": "右上葉に8mmの充実性結節", "impression": "経過観察（3か月後CT）を推奨" },
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    // The requester sees the whole signed history and acknowledges.
    let v = w.thread("gp", &t1).await;
    assert_eq!(v["thread"]["state"], "reported");
    assert_eq!(v["thread"]["reader"], rad.as_str());
    assert_eq!(steps_of(&v), ["open", "accept", "report"]);
    for step in v["steps"].as_array().unwrap() {
        assert_eq!(step["signature"]["status"], "valid", "{step}");
    }
    assert_eq!(v["steps"][0]["sender"], gp.as_str());
    assert_eq!(v["steps"][2]["sender"], rad.as_str());
    assert_eq!(
        field(&v["steps"][2], "impression"),
        "経過観察（3か月後CT）を推奨"
    );
    assert_eq!(v["allowed_steps"], json!(["acknowledge"]));
    let (s, _) = w.step("gp", &t1, json!({ "step": "withdraw" })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no withdrawal after a report");
    let (s, body) = w.step("gp", &t1, json!({ "step": "acknowledge" })).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(
        w.thread("rad", &t1).await["thread"]["state"],
        "acknowledged"
    );

    // 2. Straight to the radiologist, who declines (読影しない): not counted.
    let t2 = w
        .open(
            "gp",
            w.reading_request(json!({ "account": w.p("rad").id })),
            vec![],
        )
        .await;
    w.delivered("gp", &t2).await;
    let (s, _) = w.step("rad", &t2, json!({ "step": "decline" })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a decline needs a reason");
    let (s, _) = w
        .step(
            "rad",
            &t2,
            json!({ "step": "decline", "fields": { "reason": "専門外のため" } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let v = w.thread("gp", &t2).await;
    assert_eq!(v["thread"]["state"], "declined");
    assert_eq!(field(&v["steps"][1], "reason"), "専門外のため");

    // 3. Withdrawn by the requester before any report.
    let t3 = w
        .open(
            "gp",
            w.reading_request(json!({ "account": w.p("rad").id })),
            vec![],
        )
        .await;
    let (s, _) = w.step("gp", &t3, json!({ "step": "withdraw" })).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = w.step("rad", &t3, json!({ "step": "accept" })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(w.thread("rad", &t3).await["thread"]["state"], "withdrawn");

    // Statistics: one report by the radiologist this month; the decline is not counted.
    let month = this_month();
    for who in ["clerk_h", "rad", "operator"] {
        let (s, stats) = w
            .get(who, &format!("/api/v1/stats/readings?month={month}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{who}: {stats}");
        assert_eq!(
            stats,
            json!([{ "reader": rad, "facility": HOSPITAL, "reports": 1 }]),
            "{who}"
        );
    }
    let (_, stats) = w
        .get("clerk_c", &format!("/api/v1/stats/readings?month={month}"))
        .await;
    assert_eq!(
        stats,
        json!([]),
        "another facility's readings are not shown"
    );
    let (s, _) = w
        .get("clerk_h", "/api/v1/stats/readings?month=2026-13")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // 4. A referral and its reply letter.
    let t4 = w
        .open(
            "gp",
            json!({
                "kind": "referral",
                "to": { "account": w.p("rad").id },
                "subject": "紹介状",
                "patient_id": PATIENT_ID,
                "patient_name": PATIENT_NAME,
                "consent": consent(),
                "fields": {
                    "purpose": "精査加療のお願い",
                    "diagnosis": "肺結節",
                    "history": "高血圧",
                    "medication": "アムロジピン 5mg",
                },
            }),
            vec![],
        )
        .await;
    w.delivered("gp", &t4).await;
    let (s, _) = w
        .step("rad", &t4, json!({ "step": "reply", "body": "返書" }))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a reply follows acceptance");
    assert_eq!(
        w.step("rad", &t4, json!({ "step": "accept" })).await.0,
        StatusCode::CREATED
    );
    let (s, _) = w
        .step(
            "rad",
            &t4,
            json!({ "step": "reply", "body": "ご紹介ありがとうございました。" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        w.step("gp", &t4, json!({ "step": "acknowledge" })).await.0,
        StatusCode::CREATED
    );
    let v = w.thread("gp", &t4).await;
    assert_eq!(v["thread"]["state"], "acknowledged");
    assert_eq!(steps_of(&v), ["open", "accept", "reply", "acknowledge"]);
    assert_eq!(v["steps"][2]["body"], "ご紹介ありがとうございました。");
    assert_eq!(field(&v["steps"][0], "medication"), "アムロジピン 5mg");

    // 5. A progress report: no reply; receipt recorded when opened.
    let t5 = w
        .open(
            "gp",
            json!({
                "kind": "share",
                "to": { "account": w.p("col").id },
                "subject": "経過報告",
                "patient_id": PATIENT_ID,
                "patient_name": PATIENT_NAME,
                "consent": consent(),
                "body": "退院後の経過は良好です。",
            }),
            vec![],
        )
        .await;
    w.delivered("gp", &t5).await;
    let v = w.thread("gp", &t5).await;
    assert!(v["thread"]["opened_at"].is_null());
    let v = w.thread("col", &t5).await;
    assert_eq!(v["allowed_steps"], json!([]));
    let v = w.thread("gp", &t5).await;
    assert_eq!(v["thread"]["state"], "opened");
    assert_eq!(v["thread"]["opened_by"], w.p("col").sid());
    assert!(v["thread"]["opened_at"].as_i64().is_some());
    let (s, _) = w.step("col", &t5, json!({ "step": "accept" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The clerk's overview: every thread of the facility with its progress, and
    // per-account usage.
    let (s, overview) = w.get("clerk_h", "/api/v1/facility/threads").await;
    assert_eq!(s, StatusCode::OK);
    let states: HashMap<String, String> = overview
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(states[&t1], "acknowledged");
    assert_eq!(states[&t2], "declined");
    assert_eq!(states[&t3], "withdrawn");
    assert_eq!(states[&t5], "opened");
    let (s, usage) = w.get("clerk_h", "/api/v1/stats/usage").await;
    assert_eq!(s, StatusCode::OK, "{usage}");
    let rad_usage = usage
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["account"] == rad.as_str())
        .unwrap();
    assert_eq!(
        rad_usage["sent"], 5,
        "accept, report, decline, accept, reply: {rad_usage}"
    );
    assert!(rad_usage["received"].as_i64().unwrap() >= 4, "{rad_usage}");
    let (s, _) = w.get("rad", "/api/v1/stats/usage").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "usage figures are for clerks");
}
