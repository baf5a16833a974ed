//! Every request workflow end to end through the JSON API of the real server:
//! reading request (to a doctor and through a liaison office), referral,
//! information share, booking and a three-facility care pathway; statistics; and
//! the role table, row by row.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, Server};

const REHAB: &str = "3710500004";

const PATIENT_NAME: &str = "丸亀 次郎";
const PATIENT_ID: &str = "MRG-0815-2026";

fn consent() -> Value {
    json!({ "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" })
}

/// A small DICOM file, accepted by intake and the attachment policy.
fn dicom_bytes() -> Vec<u8> {
    let payload: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
    imaging::sample::with_payload(&payload)
}

struct Person {
    id: String,
    client: reqwest::Client,
}

impl Person {
    /// The stored form of the ID (no hyphen).
    fn sid(&self) -> String {
        self.id.replace('-', "")
    }
}

struct World {
    _net: Network,
    server: Server,
    people: HashMap<&'static str, Person>,
}

impl World {
    async fn new() -> Self {
        let net = Network::new().await;
        for (code, name) in [
            (HOSPITAL, "さぬき中央病院"),
            (CLINIC, "ことひら内科クリニック"),
            (REHAB, "瀬戸リハビリテーション病院"),
        ] {
            net.admin(&["facility", "add", "--code", code, "--name", name]);
        }
        let roster: [(&str, &str, &str, &str); 10] = [
            ("rad", "doctor", HOSPITAL, "讃岐 一郎"),
            ("col", "doctor", HOSPITAL, "高松 花子"),
            ("clerk_h", "clerk", HOSPITAL, "坂出 明美"),
            ("liaison_h", "liaison", HOSPITAL, "中央 地域連携室"),
            ("gp", "doctor", CLINIC, "琴平 健"),
            ("clerk_c", "clerk", CLINIC, "琴平 事務"),
            ("liaison_c", "liaison", CLINIC, "ことひら 連携室"),
            ("rehab_dr", "doctor", REHAB, "瀬戸 三郎"),
            ("rehab_l", "liaison", REHAB, "瀬戸 連携室"),
            ("rehab_clerk", "clerk", REHAB, "瀬戸 事務"),
        ];
        let mut issued = Vec::new();
        for (key, role, code, name) in roster {
            let (id, pw) = net.add_user(role, code, name);
            issued.push((key, id, pw));
        }
        let (op, op_pw) = {
            let letter = net.admin(&[
                "user",
                "add",
                "--role",
                "operator",
                "--name",
                "ヘルプデスク",
            ]);
            crate::harness::parse_letter(&letter)
        };
        let server = net.serve(&[]);
        let mut people = HashMap::new();
        for (key, id, pw) in issued {
            let client = net.ready_client(&server, &id, &pw).await;
            people.insert(key, Person { id, client });
        }
        let client = net.ready_client(&server, &op, &op_pw).await;
        people.insert("operator", Person { id: op, client });
        Self {
            _net: net,
            server,
            people,
        }
    }

    fn p(&self, who: &str) -> &Person {
        &self.people[who]
    }

    async fn get(&self, who: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .p(who)
            .client
            .get(self.server.url(path))
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, who: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .p(who)
            .client
            .post(self.server.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn multipart(
        &self,
        who: &str,
        path: &str,
        part: &str,
        spec: Value,
        files: Vec<(&str, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let mut spec = spec;
        spec["attachments"] = files
            .iter()
            .map(|(n, _)| json!({ "name": n, "media_type": "application/dicom" }))
            .collect();
        let mut form = Form::new().part(
            part.to_string(),
            Part::text(spec.to_string())
                .mime_str("application/json")
                .unwrap(),
        );
        for (name, bytes) in files {
            form = form.part("file", Part::bytes(bytes).file_name(name.to_string()));
        }
        let r = self
            .p(who)
            .client
            .post(self.server.url(path))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Opens a thread; returns its ID (asserting success).
    async fn open(&self, who: &str, spec: Value, files: Vec<(&str, Vec<u8>)>) -> String {
        let (s, body) = self
            .multipart(who, "/api/v1/threads", "thread", spec, files)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body["thread_id"].as_str().unwrap().to_string()
    }

    async fn step(&self, who: &str, thread: &str, spec: Value) -> (StatusCode, Value) {
        self.multipart(
            who,
            &format!("/api/v1/threads/{thread}/steps"),
            "step",
            spec,
            vec![],
        )
        .await
    }

    async fn thread(&self, who: &str, thread: &str) -> Value {
        let (s, v) = self.get(who, &format!("/api/v1/threads/{thread}")).await;
        assert_eq!(s, StatusCode::OK, "{who} reads {thread}: {v}");
        v
    }

    /// Waits until the delivery worker has delivered the thread's opening step.
    async fn delivered(&self, who: &str, thread: &str) {
        for _ in 0..100 {
            let (_, list) = self.get(who, "/api/v1/threads").await;
            let state = list
                .as_array()
                .and_then(|a| a.iter().find(|t| t["id"] == thread))
                .map(|t| t["state"].as_str().unwrap_or_default().to_string());
            if state.is_some_and(|s| s != "sent") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("thread {thread} was not delivered");
    }

    fn reading_request(&self, to: Value) -> Value {
        json!({
            "kind": "reading_request",
            "to": to,
            "subject": "胸部CT 読影依頼",
            "patient_id": PATIENT_ID,
            "patient_name": PATIENT_NAME,
            "body": "ご高診をお願いします。",
            "consent": consent(),
            "urgency": "urgent",
            "wanted_by": "2026-12-01",
            "fields": {
                "modality": "CT",
                "body_part": "胸部",
                "clinical_question": "右上葉結節の良悪性の評価",
            },
        })
    }
}

fn steps_of(view: &Value) -> Vec<String> {
    view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn field<'a>(step: &'a Value, name: &str) -> &'a str {
    step["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
        .unwrap_or_default()
}

fn this_month() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y-%m")
        .to_string()
}

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

/// What each role may do to an item, by how it stands to the item — the design's
/// table, row by row. Every action runs on a fresh thread so rows do not interfere.
#[tokio::test]
async fn the_role_table_holds_for_every_role_relation_and_action() {
    let w = World::new().await;

    #[derive(Clone, Copy, Debug)]
    enum To {
        /// Clinic doctor → hospital radiologist.
        Doctor,
        /// Clinic doctor → hospital liaison office.
        SharedInbox,
    }
    let table: &[(&str, To, &str, StatusCode)] = {
        use StatusCode as S;
        &[
            // Doctor, own items: sent by me.
            ("gp", To::Doctor, "read", S::OK),
            ("gp", To::Doctor, "withdraw", S::CREATED),
            ("gp", To::Doctor, "accept", S::FORBIDDEN),
            ("gp", To::Doctor, "report", S::FORBIDDEN),
            ("gp", To::Doctor, "claim", S::FORBIDDEN),
            // Doctor, own items: addressed to me.
            ("rad", To::Doctor, "read", S::OK),
            ("rad", To::Doctor, "accept", S::CREATED),
            ("rad", To::Doctor, "report", S::CREATED),
            ("rad", To::Doctor, "decline", S::CREATED),
            ("rad", To::Doctor, "withdraw", S::FORBIDDEN),
            ("rad", To::Doctor, "claim", S::FORBIDDEN),
            // Doctor, a colleague's item and the shared inbox: as if it did not exist.
            ("col", To::Doctor, "read", S::NOT_FOUND),
            ("col", To::Doctor, "accept", S::NOT_FOUND),
            ("col", To::SharedInbox, "read", S::NOT_FOUND),
            ("col", To::SharedInbox, "claim", S::NOT_FOUND),
            // Doctor, another facility.
            ("rehab_dr", To::Doctor, "read", S::NOT_FOUND),
            ("rehab_dr", To::Doctor, "decline", S::NOT_FOUND),
            // Clerk: reads the facility's items and shared inbox, changes nothing.
            ("clerk_h", To::Doctor, "read", S::OK),
            ("clerk_h", To::Doctor, "accept", S::FORBIDDEN),
            ("clerk_h", To::Doctor, "decline", S::FORBIDDEN),
            ("clerk_h", To::SharedInbox, "read", S::OK),
            ("clerk_h", To::SharedInbox, "accept", S::FORBIDDEN),
            ("clerk_h", To::SharedInbox, "claim", S::FORBIDDEN),
            ("clerk_h", To::SharedInbox, "assign", S::FORBIDDEN),
            ("clerk_c", To::Doctor, "read", S::OK),
            ("clerk_c", To::Doctor, "withdraw", S::FORBIDDEN),
            ("rehab_clerk", To::Doctor, "read", S::NOT_FOUND),
            // Liaison: colleagues' items read-only; the shared inbox worked.
            ("liaison_h", To::Doctor, "read", S::OK),
            ("liaison_h", To::Doctor, "accept", S::FORBIDDEN),
            ("liaison_h", To::Doctor, "claim", S::FORBIDDEN),
            ("liaison_h", To::SharedInbox, "read", S::OK),
            ("liaison_h", To::SharedInbox, "claim", S::NO_CONTENT),
            ("liaison_h", To::SharedInbox, "assign", S::NO_CONTENT),
            ("liaison_h", To::SharedInbox, "accept", S::CREATED),
            ("liaison_h", To::SharedInbox, "decline", S::CREATED),
            ("liaison_h", To::SharedInbox, "report", S::FORBIDDEN),
            ("liaison_h", To::SharedInbox, "withdraw", S::FORBIDDEN),
            ("rehab_l", To::SharedInbox, "read", S::NOT_FOUND),
            ("rehab_l", To::SharedInbox, "claim", S::NOT_FOUND),
            // Operator: no content at all.
            ("operator", To::Doctor, "read", S::FORBIDDEN),
            ("operator", To::SharedInbox, "claim", S::FORBIDDEN),
        ]
    };
    for &(who, to, action, expected) in table {
        let target = match to {
            To::Doctor => json!({ "account": w.p("rad").id }),
            To::SharedInbox => json!({ "liaison": HOSPITAL }),
        };
        let t = w.open("gp", w.reading_request(target), vec![]).await;
        w.delivered("gp", &t).await;
        let (status, body) = match action {
            "read" => w.get(who, &format!("/api/v1/threads/{t}")).await,
            "claim" => {
                w.post(who, &format!("/api/v1/threads/{t}/claim"), json!({}))
                    .await
            }
            "assign" => {
                w.post(
                    who,
                    &format!("/api/v1/threads/{t}/assign"),
                    json!({ "doctor": w.p("rad").id }),
                )
                .await
            }
            "report" => {
                // A report follows acceptance by whoever may accept.
                let acceptor = match to {
                    To::Doctor => "rad",
                    To::SharedInbox => "liaison_h",
                };
                let (s, _) = w.step(acceptor, &t, json!({ "step": "accept" })).await;
                assert_eq!(s, StatusCode::CREATED);
                w.step(
                    who,
                    &t,
                    json!({ "step": "report", "fields": { "findings": "f", "impression": "i" } }),
                )
                .await
            }
            "decline" => {
                w.step(
                    who,
                    &t,
                    json!({ "step": "decline", "fields": { "reason": "r" } }),
                )
                .await
            }
            step => w.step(who, &t, json!({ "step": step })).await,
        };
        assert_eq!(
            status, expected,
            "{who} {action} on a request to {to:?}: {body}"
        );
        // A refusal never says whether the item exists, and never changes it.
        if status == StatusCode::NOT_FOUND {
            assert_eq!(body["error"], "not_found", "{body}");
        }
        if !status.is_success() {
            let v = w.thread("gp", &t).await;
            assert_eq!(
                steps_of(&v).len(),
                1 + usize::from(action == "report"),
                "{who} {action}"
            );
        }
    }
}
