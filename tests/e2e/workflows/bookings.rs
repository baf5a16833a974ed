//! Bookings and a three-facility care pathway, end to end.

use reqwest::StatusCode;
use serde_json::json;

use super::{PATIENT_ID, PATIENT_NAME, REHAB, World, consent, field, steps_of};
use crate::harness::{CLINIC, HOSPITAL};

#[tokio::test]
async fn bookings_and_a_care_pathway_across_three_facilities() {
    let w = World::new().await;

    // The hospital's liaison office lists its CT scanner.
    let (s, ct) = w
        .post(
            "liaison_h",
            "/api/v1/resources",
            json!({ "name": "CT（64列）", "opening_hours": "平日 9:00-16:00" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ct}");
    let (s, _) = w
        .post(
            "rad",
            "/api/v1/resources",
            json!({ "name": "MRI", "opening_hours": "平日" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "doctors do not manage resources");
    let (_, listed) = w
        .get("gp", &format!("/api/v1/facilities/{HOSPITAL}/resources"))
        .await;
    assert_eq!(listed[0]["name"], "CT（64列）");
    let resource = listed[0]["id"].as_str().unwrap().to_string();

    // A booking: requested → the hospital's clerk proposes another time → the
    // clinic confirms → the clinic's clerk cancels.
    let b = w
        .open(
            "gp",
            json!({
                "kind": "booking",
                "resource_id": resource,
                "patient_id": PATIENT_ID,
                "patient_name": PATIENT_NAME,
                "consent": consent(),
                "fields": { "preferred_times": "12/3 午前、12/4 午後" },
            }),
            vec![],
        )
        .await;
    w.delivered("gp", &b).await;
    assert_eq!(
        w.thread("clerk_h", &b).await["thread"]["state"],
        "requested"
    );
    let (s, _) = w.step("clerk_h", &b, json!({ "step": "propose" })).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a proposal names a time");
    let (s, body) = w
        .step(
            "clerk_h",
            &b,
            json!({ "step": "propose", "fields": { "slot": "2026-12-05 10:00" } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _) = w
        .step(
            "clerk_h",
            &b,
            json!({ "step": "confirm", "fields": { "slot": "2026-12-05 10:00" } }),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "the requester answers a proposal"
    );
    let (s, _) = w.step("gp", &b, json!({ "step": "confirm" })).await;
    assert_eq!(s, StatusCode::CREATED);
    let v = w.thread("gp", &b).await;
    assert_eq!(v["thread"]["state"], "confirmed");
    assert_eq!(v["thread"]["booked_slot"], "2026-12-05 10:00");
    assert_eq!(steps_of(&v), ["open", "propose", "confirm"]);
    let (s, _) = w
        .step(
            "clerk_c",
            &b,
            json!({ "step": "cancel", "body": "患者都合" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        w.thread("liaison_h", &b).await["thread"]["state"],
        "cancelled"
    );

    // A stroke pathway: the hospital fills the acute stage and hands over to the
    // rehabilitation hospital, which hands over to the clinic, which completes it.
    let (_, templates) = w.get("gp", "/api/v1/pathways").await;
    assert!(
        templates
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "stroke")
    );
    assert!(
        templates
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "hip_fracture")
    );
    let acute = json!({
        "onset_date": "2026-11-01", "stroke_type": "脳梗塞（アテローム血栓性）",
        "nihss_admission": "8", "mrs_discharge": "3", "transfer_date": "2026-11-20",
    });
    let mut spec = json!({
        "kind": "pathway",
        "template": "stroke",
        "to": { "liaison": REHAB },
        "patient_id": PATIENT_ID,
        "patient_name": PATIENT_NAME,
        "consent": consent(),
        "fields": { "onset_date": "2026-11-01" },
    });
    let (s, body) = w
        .multipart("rad", "/api/v1/threads", "thread", spec.clone(), vec![])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "required stage fields: {body}");
    assert!(
        body["message_ja"].as_str().unwrap().contains("病型"),
        "{body}"
    );
    spec["fields"] = acute;
    let p = w.open("rad", spec, vec![]).await;
    w.delivered("rad", &p).await;
    // The rehabilitation hospital's office reads it and gives it to its doctor.
    let v = w.thread("rehab_l", &p).await;
    assert_eq!(field(&v["steps"][0], "nihss_admission"), "8");
    let (s, _) = w
        .post(
            "rehab_l",
            &format!("/api/v1/threads/{p}/assign"),
            json!({ "doctor": w.p("rehab_dr").id }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = w.get("liaison_c", &format!("/api/v1/threads/{p}")).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "the clinic sees nothing before the hand-over"
    );
    let rehab = json!({
        "fields": {
            "fim_admission": "62", "fim_discharge": "98", "rehab_days": "85",
            "discharge_destination": "自宅", "discharge_date": "2027-02-15",
        },
    });
    let mut stage = rehab.clone();
    stage["step"] = json!("stage");
    let (s, body) = w.step("rehab_dr", &p, stage.clone()).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "the next facility is needed: {body}"
    );
    stage["next_facility"] = json!(CLINIC);
    let (s, body) = w.step("rehab_dr", &p, stage).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // The clinic now holds key slots for the whole history.
    let v = w.thread("liaison_c", &p).await;
    assert_eq!(v["thread"]["target_facility"], CLINIC);
    assert_eq!(v["thread"]["stage"], 2);
    assert_eq!(steps_of(&v), ["open", "stage"]);
    assert_eq!(
        field(&v["steps"][0], "stroke_type"),
        "脳梗塞（アテローム血栓性）"
    );
    assert_eq!(field(&v["steps"][1], "fim_discharge"), "98");
    let (s, _) = w
        .step("rehab_dr", &p, json!({ "step": "stage", "fields": {} }))
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the stage has moved on to the clinic"
    );
    let (s, _) = w
        .post(
            "liaison_c",
            &format!("/api/v1/threads/{p}/assign"),
            json!({ "doctor": w.p("gp").id }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = w
        .step(
            "gp",
            &p,
            json!({ "step": "stage", "fields": {
                "follow_up_date": "2027-03-01", "mrs_follow_up": "1", "recurrence": "なし",
            } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    for who in ["rad", "rehab_dr", "gp", "clerk_h", "rehab_clerk", "clerk_c"] {
        let v = w.thread(who, &p).await;
        assert_eq!(v["thread"]["state"], "completed", "{who}");
        assert_eq!(steps_of(&v), ["open", "stage", "stage"], "{who}");
        for step in v["steps"].as_array().unwrap() {
            assert_eq!(step["signature"]["status"], "valid");
        }
    }
}
