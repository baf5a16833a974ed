//! Every request workflow end to end through the JSON API of the real server:
//! reading request (to a doctor and through a liaison office), referral,
//! information share, booking and a three-facility care pathway; statistics; and
//! the role table, row by row.
//!
//! The stories are in `requests.rs` (reading requests, referrals, shares),
//! `bookings.rs` (bookings and a care pathway) and `roles.rs` (the role table);
//! this file holds their world: three facilities, ten people and an operator.

mod bookings;
mod requests;
mod roles;

use std::collections::HashMap;

use reqwest::StatusCode;
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
        self.server.get_answer(&self.p(who).client, path).await
    }

    async fn post(&self, who: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.server
            .post_json(&self.p(who).client, path, &body)
            .await
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
        self.server
            .upload(&self.p(who).client, path, part, &spec, files)
            .await
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
        self.server
            .threads_delivered(&self.p(who).client, &[thread])
            .await;
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
    mailbox::clock::today_jst().format("%Y-%m").to_string()
}
