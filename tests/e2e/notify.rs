//! Notification mails through a real SMTP server (aiosmtpd, STARTTLS): address
//! confirmation links, the relay down and then up again, every notice exactly
//! once, none carrying patient data; and a notice that can never be sent shown
//! as failed to the person and the operator.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, Db, HOSPITAL, Network, Server, answer, no_files, wait_until};
use crate::smtp::{Mail, SmtpSink};

const HOSPITAL_NAME: &str = "さぬき中央病院";
const CLINIC_NAME: &str = "ことひら内科クリニック";

/// What the items carry and no mail may: the patient, the subject, the content.
const MARKERS: [&str; 7] = [
    "丸亀 次郎",
    "MRG-0815-2026",
    "胸部CT 読影依頼",
    "右上葉結節の良悪性の評価",
    "ご高診をお願いします",
    "右上葉に8mmの充実性結節",
    "経過観察（3か月後CT）を推奨",
];

struct Person {
    id: String,
    client: reqwest::Client,
}

struct World {
    net: Network,
    server: Server,
    people: HashMap<&'static str, Person>,
}

impl World {
    async fn new(smtp: &SmtpSink, notify: &str, roster: &[(&'static str, &str, &str)]) -> Self {
        let net = Network::new().await;
        // HOSPITAL_NAME and CLINIC_NAME.
        net.add_hospital_and_clinic();
        let mut issued = Vec::new();
        for (key, role, code) in roster {
            let (id, pw) = net.add_user(role, code, &format!("{key} 様"));
            issued.push((*key, id, pw));
        }
        let letter = net.admin(&["user", "add", "--role", "operator", "--name", "運営"]);
        issued.push(("operator", crate::harness::parse_letter(&letter).0, {
            crate::harness::parse_letter(&letter).1
        }));
        let config = net.data_dir().join("renkei.toml");
        std::fs::write(&config, format!("{}\n[notify]\n{notify}\n", smtp.config())).unwrap();
        let config = config.display().to_string();
        let server = net.serve(&["--config", &config]);
        let mut people = HashMap::new();
        for (key, id, pw) in issued {
            let client = net.ready_client(&server, &id, &pw).await;
            people.insert(key, Person { id, client });
        }
        Self {
            net,
            server,
            people,
        }
    }

    fn p(&self, who: &str) -> &Person {
        &self.people[who]
    }

    async fn send(
        &self,
        who: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let r = self
            .p(who)
            .client
            .request(method, self.server.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    async fn get(&self, who: &str, path: &str) -> (StatusCode, Value) {
        self.server.get_answer(&self.p(who).client, path).await
    }

    /// Asks for the address to be used; the link comes by mail.
    async fn enter_address(&self, who: &str) -> String {
        let address = format!("{who}@renkei-test.example");
        let (s, body) = self
            .send(
                who,
                reqwest::Method::PUT,
                "/api/v1/me/email",
                json!({ "address": address }),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        address
    }

    async fn open_thread(&self, who: &str, spec: Value) -> String {
        self.server
            .opened_thread(&self.p(who).client, &spec, no_files())
            .await
    }

    async fn step(&self, who: &str, thread: &str, spec: Value) {
        let (s, body) = self
            .server
            .take_step(&self.p(who).client, thread, &spec, no_files())
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }

    /// Waits until the thread has left `sent` for whoever can list it.
    async fn delivered(&self, who: &str, thread: &str) {
        self.server
            .threads_delivered(&self.p(who).client, &[thread])
            .await;
    }
}

fn reading_request(to: Value) -> Value {
    json!({
        "kind": "reading_request",
        "to": to,
        "subject": MARKERS[2],
        "patient_id": MARKERS[1],
        "patient_name": MARKERS[0],
        "body": format!("{}。", MARKERS[4]),
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "urgency": "urgent",
        "wanted_by": "2026-12-01",
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": MARKERS[3] },
    })
}

/// The confirmation token in a confirmation mail.
fn token_in(mail: &Mail) -> String {
    let at = mail.body.find("token=").expect("a confirmation link") + "token=".len();
    mail.body[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

fn assert_no_patient_data(mails: &[Mail]) {
    for m in mails {
        for marker in MARKERS {
            assert!(
                !m.subject.contains(marker) && !m.body.contains(marker) && !m.raw.contains(marker),
                "a notice to {} carries {marker:?}:\n{}\n{}",
                m.to,
                m.subject,
                m.body
            );
        }
    }
}

#[tokio::test]
async fn notices_arrive_once_through_a_relay_that_was_down_and_carry_no_patient_data() {
    let mut smtp = SmtpSink::new();
    smtp.start();
    let roster: [(&'static str, &str, &str); 7] = [
        ("rad", "doctor", HOSPITAL),
        ("col", "doctor", HOSPITAL),
        ("liaison_h", "liaison", HOSPITAL),
        ("clerk_h", "clerk", HOSPITAL),
        ("digest_dr", "doctor", HOSPITAL),
        ("unconfirmed", "doctor", HOSPITAL),
        ("gp", "doctor", CLINIC),
    ];
    let w = World::new(
        &smtp,
        "base_backoff_secs = 1\nmax_backoff_secs = 2",
        &roster,
    )
    .await;

    // Addresses: each gets a link; only an opened link makes the address usable.
    let mut addresses = HashMap::new();
    for (who, _, _) in roster {
        addresses.insert(who, w.enter_address(who).await);
    }
    let (_, settings) = w.get("rad", "/api/v1/me/notifications").await;
    assert_eq!(settings["email_verified"], false, "{settings}");
    assert_eq!(settings["pending_email"], addresses["rad"].as_str());
    let confirmations = smtp.wait_for(roster.len(), Duration::from_secs(30)).await;
    assert_eq!(confirmations.len(), roster.len(), "one link per address");
    for (who, _, _) in roster {
        let mail = confirmations
            .iter()
            .find(|m| m.to == addresses[who])
            .unwrap_or_else(|| panic!("no link for {who}"));
        assert!(
            mail.subject.contains("メールアドレスの確認"),
            "{}",
            mail.subject
        );
        if who == "unconfirmed" {
            continue;
        }
        let token = token_in(mail);
        if who == "rad" {
            // The link's page only asks; its button confirms.
            let page = w
                .p(who)
                .client
                .get(w.server.url(&format!("/email/confirm?token={token}")))
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), StatusCode::OK);
            assert!(page.text().await.unwrap().contains("確定する"));
            let (_, s) = w.get(who, "/api/v1/me/notifications").await;
            assert_eq!(
                s["email_verified"], false,
                "opening the page confirms nothing"
            );
            let done = w
                .p(who)
                .client
                .post(w.server.url("/email/confirm"))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(done.status(), StatusCode::OK);
            assert!(
                done.text()
                    .await
                    .unwrap()
                    .contains("メールアドレスを確認しました")
            );
        } else {
            let (s, body) = w
                .send(
                    who,
                    reqwest::Method::POST,
                    "/api/v1/email/confirm",
                    json!({ "token": token }),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
        }
        let (_, s) = w.get(who, "/api/v1/me/notifications").await;
        assert_eq!(s["email"], addresses[who].as_str(), "{who}: {s}");
        assert_eq!(s["email_verified"], true);
    }
    // A used or made-up token is refused with a reason.
    let (s, body) = w
        .send(
            "gp",
            reqwest::Method::POST,
            "/api/v1/email/confirm",
            json!({ "token": "00ff" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["message_ja"].as_str().unwrap().contains("確認リンク"),
        "{body}"
    );
    let (s, _) = w
        .send(
            "digest_dr",
            reqwest::Method::PUT,
            "/api/v1/me/notifications",
            json!({ "mode": "digest" }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = w
        .send(
            "col",
            reqwest::Method::PUT,
            "/api/v1/me/notifications",
            json!({ "mode": "sometimes" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // The relay goes down; work goes on.
    smtp.stop();
    let before = smtp.mails().len();
    let mut to_rad = Vec::new();
    for _ in 0..5 {
        to_rad.push(
            w.open_thread("gp", reading_request(json!({ "account": w.p("rad").id })))
                .await,
        );
    }
    let shared = w
        .open_thread("gp", reading_request(json!({ "liaison": HOSPITAL })))
        .await;
    let to_digest = w
        .open_thread(
            "gp",
            reading_request(json!({ "account": w.p("digest_dr").id })),
        )
        .await;
    let to_unconfirmed = w
        .open_thread(
            "gp",
            reading_request(json!({ "account": w.p("unconfirmed").id })),
        )
        .await;
    for t in to_rad.iter().chain([&shared, &to_digest, &to_unconfirmed]) {
        w.delivered("gp", t).await;
    }
    // The liaison office hands the shared one to a colleague.
    let (s, _) = w
        .send(
            "liaison_h",
            reqwest::Method::POST,
            &format!("/api/v1/threads/{shared}/claim"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = w
        .send(
            "liaison_h",
            reqwest::Method::POST,
            &format!("/api/v1/threads/{shared}/assign"),
            json!({ "doctor": w.p("col").id }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    // A report back: the requester is told; an acceptance tells nobody.
    w.step("rad", &to_rad[0], json!({ "step": "accept" })).await;
    w.step(
        "rad",
        &to_rad[0],
        json!({ "step": "report", "fields": { "findings": MARKERS[5], "impression": MARKERS[6] } }),
    )
    .await;
    w.delivered("gp", &to_rad[0]).await;
    // The assigned doctor declines the shared one: the requester is told, the
    // reading facility's own liaison office is not (its own outgoing step).
    w.step(
        "col",
        &shared,
        json!({ "step": "decline", "fields": { "reason": MARKERS[4] } }),
    )
    .await;
    // The requester withdraws another: the doctor it was sent to is told.
    w.step("gp", &to_rad[1], json!({ "step": "withdraw" }))
        .await;
    w.delivered("gp", &shared).await;
    w.delivered("gp", &to_rad[1]).await;
    // A booking of the hospital's CT: the hospital's office proposes another
    // time, the clinic confirms it and later calls it off. Each side is told
    // of the other's step, never of its own.
    let (s, resource) = w
        .send(
            "liaison_h",
            reqwest::Method::POST,
            "/api/v1/resources",
            json!({ "name": "CT（64列）", "opening_hours": "平日 9:00-16:00" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{resource}");
    let booking = w
        .open_thread(
            "gp",
            json!({
                "kind": "booking",
                "resource_id": resource["id"],
                "patient_id": MARKERS[1],
                "patient_name": MARKERS[0],
                "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
                "fields": { "preferred_times": "12/3 午前" },
            }),
        )
        .await;
    w.delivered("gp", &booking).await;
    w.step(
        "liaison_h",
        &booking,
        json!({ "step": "propose", "fields": { "slot": "2026-12-05 10:00" } }),
    )
    .await;
    w.delivered("liaison_h", &booking).await;
    w.step("gp", &booking, json!({ "step": "confirm" })).await;
    w.delivered("gp", &booking).await;
    w.step(
        "gp",
        &booking,
        json!({ "step": "cancel", "body": "都合により" }),
    )
    .await;
    w.delivered("gp", &booking).await;
    // (who, about which thread, what the subject says, which facility the text names)
    let expected: Vec<(&str, String, &str, &str)> = to_rad
        .iter()
        .map(|t| ("rad", t.clone(), "読影依頼が届きました", CLINIC_NAME))
        .chain([
            (
                "liaison_h",
                shared.clone(),
                "読影依頼が届きました",
                CLINIC_NAME,
            ),
            ("col", shared.clone(), "担当になりました", "地域連携室"),
            (
                "gp",
                to_rad[0].clone(),
                "読影レポートが届きました",
                HOSPITAL_NAME,
            ),
            ("gp", shared.clone(), "辞退されました", HOSPITAL_NAME),
            ("rad", to_rad[1].clone(), "取り下げられました", CLINIC_NAME),
            (
                "liaison_h",
                booking.clone(),
                "予約受付が届きました",
                CLINIC_NAME,
            ),
            (
                "gp",
                booking.clone(),
                "予約日時の変更が提案されました",
                HOSPITAL_NAME,
            ),
            (
                "liaison_h",
                booking.clone(),
                "予約が確定しました",
                CLINIC_NAME,
            ),
            (
                "liaison_h",
                booking.clone(),
                "予約が取り消されました",
                CLINIC_NAME,
            ),
        ])
        .collect();

    // Several failed attempts while the relay is down; nothing given up yet.
    let db = Db::open(&w.net).await;
    let failed_twice = "SELECT COUNT(*) FROM notifications \
        WHERE digest = false AND state = 'pending' AND attempts >= 2";
    wait_until(
        "every notice due to have failed twice",
        Duration::from_secs(30),
        || async { (db.count(failed_twice).await >= expected.len() as i64).then_some(()) },
    )
    .await;
    assert_eq!(smtp.mails().len(), before);
    let (s, failed) = w
        .get("operator", "/api/v1/admin/notifications/failed")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(failed, json!([]), "retrying, not failed");

    // The relay comes back: everything queued arrives, once.
    smtp.start();
    smtp.wait_for(before + expected.len(), Duration::from_secs(60))
        .await;
    // Anything extra (a duplicate, a mail to someone not due one) would have
    // been sent by the time no immediate notice is left in the queue.
    wait_until(
        "the queue of immediate notices to drain",
        Duration::from_secs(30),
        || async {
            let left = db
                .count(
                    "SELECT COUNT(*) FROM notifications WHERE digest = false AND state = 'pending'",
                )
                .await;
            (left == 0).then_some(())
        },
    )
    .await;
    let mails: Vec<Mail> = smtp
        .mails()
        .into_iter()
        .filter(|m| !m.subject.contains("メールアドレスの確認"))
        .collect();
    assert_eq!(
        mails.len(),
        expected.len(),
        "exactly the expected notices: {:#?}",
        mails
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
    for (who, thread, says, names) in &expected {
        let link = format!("/threads/{thread}");
        let hits: Vec<&Mail> = mails
            .iter()
            .filter(|m| {
                m.to == addresses[who] && m.body.contains(&link) && m.subject.contains(says)
            })
            .collect();
        assert_eq!(hits.len(), 1, "{who} about {thread}: {says}");
        let hit = hits[0];
        assert!(hit.body.contains(names), "{names} is named: {}", hit.body);
        assert!(hit.body.contains("患者情報を含めていません"));
        // Every reading request here was sent urgent with a wanted-by date:
        // both are told (neither is patient data). The booking is routine.
        if *thread == booking {
            assert!(!hit.subject.contains("至急"), "{}", hit.subject);
            continue;
        }
        assert!(hit.subject.contains("【至急】"), "{}", hit.subject);
        assert!(
            hit.body.contains("至急") && hit.body.contains("希望期日: 2026-12-01"),
            "{}",
            hit.body
        );
    }
    // Every mail carries what large providers require of it.
    for m in smtp.mails() {
        let raw = m.raw.replace("\r\n", "\n");
        let headers =
            format!("\n{}", raw.split("\n\n").next().unwrap_or_default()).to_ascii_lowercase();
        assert!(
            headers.contains("\nmessage-id: <"),
            "no Message-ID:\n{headers}"
        );
        assert!(
            headers.contains("\nmime-version: 1.0"),
            "no MIME-Version:\n{headers}"
        );
    }
    for quiet in ["digest_dr", "unconfirmed", "clerk_h"] {
        assert!(
            !mails.iter().any(|m| m.to == addresses[quiet]),
            "{quiet} gets no immediate mail"
        );
    }
    assert_no_patient_data(&smtp.mails());
    drop(w.net);
}

#[tokio::test]
async fn a_notice_that_cannot_be_sent_is_shown_as_failed_to_the_person_and_the_operator() {
    let mut smtp = SmtpSink::new();
    smtp.start();
    let roster: [(&'static str, &str, &str); 2] =
        [("rad", "doctor", HOSPITAL), ("gp", "doctor", CLINIC)];
    let w = World::new(
        &smtp,
        "give_up_secs = 3\nbase_backoff_secs = 1\nmax_backoff_secs = 1",
        &roster,
    )
    .await;
    let address = w.enter_address("rad").await;
    let mails = smtp.wait_for(1, Duration::from_secs(30)).await;
    let token = token_in(mails.iter().find(|m| m.to == address).unwrap());
    let (s, _) = w
        .send(
            "rad",
            reqwest::Method::POST,
            "/api/v1/email/confirm",
            json!({ "token": token }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // The relay is gone for good.
    smtp.stop();
    let t = w
        .open_thread("gp", reading_request(json!({ "account": w.p("rad").id })))
        .await;
    w.delivered("gp", &t).await;
    let failed = wait_until(
        "a failed notice for the person",
        Duration::from_secs(20),
        || async {
            let (_, v) = w.get("rad", "/api/v1/me/notifications/failed").await;
            v.as_array().filter(|a| !a.is_empty()).cloned()
        },
    )
    .await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["thread_id"], t.as_str());
    assert_eq!(failed[0]["kind_ja"], "読影依頼");
    assert!(failed[0]["attempts"].as_i64().unwrap() >= 2, "{failed:?}");
    assert!(
        !failed[0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    let (s, all) = w
        .get("operator", "/api/v1/admin/notifications/failed")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["account"], w.p("rad").id.replace('-', ""));
    let (s, _) = w.get("gp", "/api/v1/admin/notifications/failed").await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "only the operator sees everyone's"
    );
    let out = w.net.admin(&["notifications", "failed"]);
    assert!(out.starts_with("1 failed notification(s)"), "{out}");
    for marker in MARKERS {
        assert!(!all.to_string().contains(marker));
        assert!(!out.contains(marker));
    }
}
