//! The facility-office pages in headless Chromium: the hospital's liaison
//! inbox (claim, assign, unassign), the clerk's progress page (overdue items,
//! usage, monthly reading statistics; nothing to change, forged posts
//! refused) and bookings (requested, another time proposed by the hospital's
//! clerk, accepted, cancelled).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, Server, no_files, run_browser};

struct Member {
    id: String,
    password: String,
    client: reqwest::Client,
}

impl Member {
    /// The stored form of the ID (no hyphen), as the API returns it.
    fn sid(&self) -> String {
        self.id.replace('-', "")
    }
}

async fn member(net: &Network, server: &Server, role: &str, code: &str, name: &str) -> Member {
    let (id, issued) = net.add_user(role, code, name);
    let client = net.ready_client(server, &id, &issued).await;
    Member {
        password: format!("{issued}-Mine-2026"),
        id,
        client,
    }
}

fn consent() -> Value {
    json!({ "obtained_on": mailbox::clock::today_jst().to_string(), "method": "written", "obtained_by": "琴平 看護師" })
}

fn reading_request(to: Value, wanted_by: chrono::NaiveDate, urgency: &str) -> Value {
    json!({
        "kind": "reading_request",
        "to": to,
        "subject": "胸部CT 読影依頼",
        "patient_id": "KTH-0042",
        "patient_name": "金刀比羅 太郎",
        "consent": consent(),
        "urgency": urgency,
        "wanted_by": wanted_by.to_string(),
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
    })
}

async fn post_multipart(
    server: &Server,
    who: &Member,
    path: &str,
    part: &str,
    spec: Value,
) -> (StatusCode, Value) {
    server
        .upload(&who.client, path, part, &spec, no_files())
        .await
}

/// Opens a thread through the JSON API; returns its ID.
async fn open(server: &Server, who: &Member, spec: Value) -> String {
    let (s, body) = post_multipart(server, who, "/api/v1/threads", "thread", spec).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["thread_id"].as_str().unwrap().to_string()
}

async fn step(server: &Server, who: &Member, thread: &str, spec: Value) {
    let (s, body) = post_multipart(
        server,
        who,
        &format!("/api/v1/threads/{thread}/steps"),
        "step",
        spec,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

async fn get(server: &Server, who: &Member, path: &str) -> (StatusCode, Value) {
    server.get_answer(&who.client, path).await
}

async fn thread(server: &Server, who: &Member, id: &str) -> Value {
    let (s, v) = get(server, who, &format!("/api/v1/threads/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["thread"].clone()
}

/// Waits until the delivery worker has delivered every listed thread.
async fn delivered(server: &Server, who: &Member, ids: &[&str]) {
    server.threads_delivered(&who.client, ids).await;
}

#[tokio::test]
async fn liaison_inbox_clerk_progress_and_bookings_in_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let server = net.serve(&[]);
    let gp = member(&net, &server, "doctor", CLINIC, "琴平 健").await;
    let clerk_c = member(&net, &server, "clerk", CLINIC, "琴平 事務").await;
    let liaison = member(&net, &server, "liaison", HOSPITAL, "中央 地域連携室").await;
    let rad = member(&net, &server, "doctor", HOSPITAL, "讃岐 一郎").await;
    let _col = member(&net, &server, "doctor", HOSPITAL, "高松 花子").await;
    let clerk_h = member(&net, &server, "clerk", HOSPITAL, "坂出 明美").await;

    // The clinic's doctor sends two reading requests to the hospital's liaison
    // inbox (one already past its due date) and two straight to the
    // radiologist, who reports one and declines the other.
    let today = mailbox::clock::today_jst();
    let to_inbox = json!({ "liaison": HOSPITAL });
    let fresh = open(
        &server,
        &gp,
        reading_request(
            to_inbox.clone(),
            today + chrono::Duration::days(7),
            "urgent",
        ),
    )
    .await;
    let late = open(
        &server,
        &gp,
        reading_request(to_inbox, today - chrono::Duration::days(3), "routine"),
    )
    .await;
    let to_rad = json!({ "account": rad.id });
    let reported = open(
        &server,
        &gp,
        reading_request(to_rad.clone(), today + chrono::Duration::days(5), "routine"),
    )
    .await;
    let declined = open(
        &server,
        &gp,
        reading_request(to_rad, today + chrono::Duration::days(5), "routine"),
    )
    .await;
    delivered(&server, &gp, &[&fresh, &late, &reported, &declined]).await;
    step(&server, &rad, &reported, json!({ "step": "accept" })).await;
    step(
        &server,
        &rad,
        &reported,
        json!({ "step": "report", "fields": { "findings": "右上葉に8mm結節", "impression": "経過観察" } }),
    )
    .await;
    step(
        &server,
        &rad,
        &declined,
        json!({ "step": "decline", "fields": { "reason": "専門外のため" } }),
    )
    .await;

    let v = run_browser(
        "pages_office.cjs",
        &[
            &server.url(""),
            &json!({
                "liaison": [liaison.id, liaison.password],
                "clerk_c": [clerk_c.id, clerk_c.password],
                "clerk_h": [clerk_h.id, clerk_h.password],
                "gp": [gp.id, gp.password],
                "fresh": fresh,
                "late": late,
                "rad": rad.id,
                "hospital": HOSPITAL,
                "month": today.format("%Y-%m").to_string(),
            })
            .to_string(),
        ],
    );
    assert_eq!(v["errors"], json!([]), "{v}");

    // The liaison inbox: both requests with what the office needs to triage.
    let l = &v["liaison"];
    assert_eq!(l["rows"], 2, "only the two inbox items: {v}");
    assert_eq!(l["fresh"]["kind"], "読影依頼", "{v}");
    assert_eq!(l["fresh"]["counterpart"], "ことひら内科クリニック", "{v}");
    assert_eq!(l["fresh"]["state"], "受信", "{v}");
    assert_eq!(
        l["fresh"]["due"],
        (today + chrono::Duration::days(7)).to_string(),
        "{v}"
    );
    assert_eq!(l["fresh"]["urgency"], "至急", "{v}");
    assert_eq!(l["fresh"]["overdue"], false, "{v}");
    assert_eq!(l["late"]["overdue"], true, "{v}");
    assert_eq!(l["link"], format!("/threads/{fresh}"), "{v}");
    assert!(
        l["doctors"]
            .as_array()
            .is_some_and(|d| d.len() == 2 && d.iter().any(|n| n.as_str() == Some(&rad.id))),
        "the facility's two doctors to choose from: {v}"
    );
    assert!(
        l["handing"]
            .as_str()
            .is_some_and(|h| h.contains("割り当て") && h.contains("転送")),
        "the page says how a request is handed to a doctor: {v}"
    );
    assert_eq!(l["after_claim"]["claimed_by"], "中央 地域連携室", "{v}");
    assert_eq!(l["after_claim"]["assignee"], "未割り当て", "{v}");
    assert_eq!(l["after_claim"]["state"], "受付済み", "{v}");
    assert_eq!(l["after_claim"]["claim_offered"], false, "{v}");
    assert_eq!(l["after_assign"]["assignee"], "讃岐 一郎", "{v}");
    assert_eq!(l["after_assign"]["state"], "割当済み", "{v}");
    assert_eq!(l["after_assign"]["claimed_by"], "中央 地域連携室", "{v}");
    assert_eq!(l["after_assign"]["claim_offered"], false, "{v}");
    assert_eq!(l["after_assign"]["release_offered"], false, "{v}");
    assert!(
        l["after_assign"]["notice"]
            .as_str()
            .is_some_and(|n| n.contains("割り当てました")),
        "{v}"
    );
    assert_eq!(l["after_unassign"]["assignee"], "未割り当て", "{v}");
    assert_eq!(l["after_reassign"]["assignee"], "讃岐 一郎", "{v}");
    // The thread page of a shared-inbox item: the office assigns it there
    // (one way to hand it to a doctor, explained), and goes back to its inbox.
    let before = &l["thread_before"];
    assert_eq!(before["assign"], 1, "{v}");
    assert_eq!(before["forward"], 0, "assigning is the office's way: {v}");
    assert_eq!(before["doctors"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(before["first_option"], "医師を選んでください", "{v}");
    assert_eq!(before["back"], "/liaison", "{v}");
    assert_eq!(before["doctor"], "未割り当て", "{v}");
    assert_eq!(before["claimed"], Value::Null, "{v}");
    assert!(
        before["target"]
            .as_str()
            .is_some_and(|t| t.contains("さぬき中央病院") && t.contains("地域連携室")),
        "{v}"
    );
    assert!(
        before["hint"].as_str().is_some_and(|h| h.contains("転送")),
        "{v}"
    );
    let after = &l["thread_after"];
    assert!(
        after["doctor"]
            .as_str()
            .is_some_and(|d| d.contains("讃岐 一郎")),
        "{v}"
    );
    assert!(
        after["target"]
            .as_str()
            .is_some_and(|t| t.contains("さぬき中央病院") && t.contains("讃岐 一郎")),
        "依頼先 names the assigned doctor: {v}"
    );
    assert!(
        after["claimed"]
            .as_str()
            .is_some_and(|c| c.contains("中央 地域連携室")),
        "assigning took it in: {v}"
    );
    let late = &l["late_after_assign"];
    assert_eq!(late["state"], "割当済み", "{v}");
    assert_eq!(late["claimed_by"], "中央 地域連携室", "{v}");
    assert_eq!(late["assignee"], "讃岐 一郎", "{v}");
    assert_eq!(late["claim_offered"], false, "{v}");
    for (what, layout) in [
        ("liaison inbox", &l["layout"]),
        ("liaison thread", &l["thread_layout"]),
        ("clerk progress", &v["clerk"]["layout"]),
        ("clerk thread", &v["clerk"]["thread_layout"]),
        ("hospital clerk", &v["clerk_h"]["layout"]),
    ] {
        for at in ["1280-ja", "1280-en", "390-ja", "390-en"] {
            assert_eq!(
                layout[at]["side_scroll"], false,
                "{what} at {at} scrolls sideways: {v}"
            );
        }
    }
    // At 390 px the shared inbox's words stay whole (no こ/と/ひ/ら…).
    for at in ["390-ja", "390-en", "1280-ja"] {
        for key in ["counterpart_lines", "kind_lines"] {
            for line in l["layout"][at][key].as_array().unwrap() {
                assert_eq!(line[1], 1, "{key} at {at}: {line}: {v}");
            }
        }
    }
    // The page went through the service: the thread is claimed and assigned,
    // and the radiologist can now open it.
    let t = thread(&server, &liaison, &fresh).await;
    assert_eq!(t["claimed_by"], liaison.sid(), "{t}");
    assert_eq!(t["assignee"], rad.sid(), "{t}");
    assert_eq!(thread(&server, &rad, &fresh).await["id"], fresh.as_str());

    // The liaison's facility view: this month the radiologist has one report
    // (the declined request does not count), last month none.
    let lc = &v["liaison_clerk"];
    assert_eq!(lc["readings"], json!([["讃岐 一郎", "1"]]), "{v}");
    assert_eq!(lc["total"], "1", "{v}");
    assert_eq!(lc["previous_month_empty"], true, "{v}");
    assert_eq!(
        lc["usage_section"], false,
        "usage figures are the clerks': {v}"
    );

    // The clinic's clerk: the progress of every item, the overdue one marked.
    let c = &v["clerk"];
    assert_eq!(c["rows"], 4, "{v}");
    assert_eq!(
        c["fresh"]["state"], "受信",
        "delivered, not yet opened: {v}"
    );
    assert_eq!(c["fresh"]["direction"], "送信", "{v}");
    assert_eq!(c["fresh"]["counterpart"], "さぬき中央病院", "{v}");
    assert_eq!(c["fresh"]["overdue"], false, "{v}");
    assert_eq!(
        c["fresh"]["milestones"],
        json!(["送信", "受信", "開封", "受付", "割当", "完了"]),
        "{v}"
    );
    assert_eq!(
        c["fresh"]["milestones_reached"],
        json!(["送信", "受信", "受付", "割当"]),
        "taken in and assigned by the office, not yet opened by a doctor: {v}"
    );
    // 開く stays whole at a desk and on a phone.
    for at in ["1280-ja", "390-ja", "1280-en", "390-en"] {
        let lines = c["layout"][at]["open_lines"].as_array().unwrap();
        assert_eq!(lines.len(), 4, "{v}");
        for line in lines {
            assert_eq!(line[1], 1, "{at}: {line}: {v}");
        }
        for line in c["layout"][at]["counterpart_lines"].as_array().unwrap() {
            assert_eq!(line[1], 1, "{at}: {line}: {v}");
        }
    }
    assert_eq!(c["thread_back"], "/clerk", "{v}");
    assert_eq!(c["thread_back_status"], 200, "{v}");
    // The hospital's shared inbox received what was sent to the office: the
    // two reading requests and the booking request (the liaison office's own
    // line shows none of them).
    assert_eq!(v["clerk_h"]["name"], "地域連携室（共有受信箱）", "{v}");
    assert_eq!(v["clerk_h"]["received"], "3", "{v}");
    assert!(
        c["fresh"]["holder"]
            .as_str()
            .is_some_and(|h| h.contains(&rad.id)),
        "{v}"
    );
    assert_eq!(c["late"]["overdue"], true, "{v}");
    assert!(
        c["late"]["due"]
            .as_str()
            .is_some_and(|d| d.contains("期限超過")),
        "{v}"
    );
    assert_eq!(c["overdue_count"], "期限超過の件数: 1", "{v}");
    assert_eq!(c["reported"]["state"], "レポート済み", "{v}");
    // Sent, delivered, accepted, closed (the radiologist answered through
    // the API without opening it in a view, so "opened" stays empty).
    assert_eq!(
        c["reported"]["milestones"],
        json!(["送信", "受信", "開封", "受付", "完了"]),
        "{v}"
    );
    assert_eq!(
        c["reported"]["milestones_reached"],
        json!(["送信", "受信", "受付", "完了"]),
        "{v}"
    );
    // Usage as the API counted it at the same moment, and by hand: the doctor
    // sent four requests and has three answers (accept, report, decline).
    let usage = &c["usage_api"];
    let shown = &c["usage"];
    for line in usage.as_array().unwrap() {
        let id = line["account"].as_str().unwrap();
        let grouped = if id.starts_with("liaison:") {
            id.to_string()
        } else {
            format!("{}-{}", &id[..4], &id[4..])
        };
        for k in ["sent", "received", "unopened", "overdue"] {
            assert_eq!(
                shown[&grouped][k].as_str(),
                Some(line[k].to_string().as_str()),
                "{k} of {grouped}: {v}"
            );
        }
    }
    assert_eq!(shown[&gp.id]["sent"], "4", "{v}");
    assert_eq!(shown[&gp.id]["received"], "3", "{v}");
    assert_eq!(shown[&clerk_c.id]["sent"], "0", "{v}");
    assert_eq!(
        shown.as_object().map(|o| o.len()),
        Some(usage.as_array().unwrap().len())
    );
    // Read-only: no form that posts except signing out, no action buttons.
    assert_eq!(c["post_forms"], json!(["/logout"]), "{v}");
    assert_eq!(c["action_buttons"], json!([]), "{v}");
    assert_eq!(
        c["csv_links"],
        json!([
            "/api/v1/stats/usage.csv",
            format!("/api/v1/stats/readings.csv?month={}", today.format("%Y-%m"))
        ]),
        "{v}"
    );
    // Forged posts with a valid CSRF token reach the handlers and are refused.
    for forged in ["claim", "assign", "release", "unassign"] {
        let f = &c["forged"][forged];
        assert_eq!(f["status"], 403, "{forged}: {v}");
        assert!(
            f["text"]
                .as_str()
                .is_some_and(|t| t.contains("地域連携室の担当者のみ")),
            "refused by the page, not the CSRF check: {forged}: {v}"
        );
    }
    assert_eq!(c["liaison_page"], 403, "{v}");
    let t = thread(&server, &liaison, &fresh).await;
    assert_eq!(t["claimed_by"], liaison.sid(), "nothing changed: {t}");
    assert_eq!(t["assignee"], rad.sid(), "nothing changed: {t}");

    // A booking confirmed at another time than the one first asked for.
    let b = &v["booking"];
    assert!(b["free_before"].as_u64().unwrap_or(0) > 2, "{v}");
    let first = b["first_choice"].as_str().unwrap();
    let other = b["other_time"].as_str().unwrap();
    assert_ne!(first, other);
    assert_eq!(b["requested"]["state"], "予約依頼中", "{v}");
    assert_eq!(b["requested"]["time"], first, "{v}");
    assert_eq!(
        b["first_held"], true,
        "the asked-for time is no longer free: {v}"
    );
    assert_eq!(b["proposed"]["state"], "別日時を提案中", "{v}");
    assert_eq!(b["proposed"]["time"], other, "{v}");
    assert_eq!(b["confirmed"]["state"], "予約確定", "{v}");
    assert_eq!(b["confirmed"]["time"], other, "{v}");
    assert_eq!(b["cancelled"]["state"], "取消", "{v}");
    assert_eq!(
        b["freed_again"], true,
        "a cancelled booking frees its time: {v}"
    );
    let id = b["id"].as_str().unwrap();
    let (_, view) = get(&server, &gp, &format!("/api/v1/threads/{id}")).await;
    let steps: Vec<&str> = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(steps, ["open", "propose", "confirm", "cancel"], "{view}");
    assert_eq!(view["thread"]["booked_slot"], other, "{view}");
    assert_eq!(view["thread"]["state"], "cancelled", "{view}");

    // Two requests cannot hold the same time.
    let (_, resources) = get(
        &server,
        &gp,
        &format!("/api/v1/facilities/{HOSPITAL}/resources"),
    )
    .await;
    let resource = resources[0]["id"].as_str().unwrap();
    let booking = |slot: &str| {
        json!({
            "kind": "booking",
            "resource_id": resource,
            "fields": { "preferred_times": slot, "slot": slot },
        })
    };
    open(&server, &gp, booking(first)).await;
    let (s, body) = post_multipart(&server, &gp, "/api/v1/threads", "thread", booking(first)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.to_string().contains("すでに予約されています"),
        "{body}"
    );

    for name in ["liaison", "clerk", "booking"] {
        assert_eq!(v["tablet"][name], true, "{name} fits a tablet: {v}");
        assert!(
            v["screenshots"][name]
                .as_array()
                .is_some_and(|s| s.len() == 2),
            "{name}: {v}"
        );
    }
}
