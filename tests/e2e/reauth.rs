//! Re-authentication before the actions that take much out at once: a
//! whole-item ZIP, a PDF export, a forward and a deletion request are refused
//! with `reauthentication_required` once the sign-in is older than the window
//! (`[auth] reauth_secs`, 4 s here instead of five minutes); the password (a
//! wrong one counts as a failed sign-in) opens them again. On the pages, the
//! ZIP link goes to `/reauth`, which asks for the password and returns to the
//! link.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, Server, csrf_of, header};

const WINDOW: Duration = Duration::from_secs(4);

async fn code(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// (status, error code) of the four actions for `client` on item `id`.
async fn actions(
    server: &Server,
    client: &reqwest::Client,
    id: &str,
    to: &str,
) -> Vec<(StatusCode, String)> {
    let mut out = Vec::new();
    for path in [
        format!("/api/v1/envelopes/{id}/zip"),
        format!("/api/v1/envelopes/{id}/pdf"),
    ] {
        out.push(code(client.get(server.url(&path)).send().await.unwrap()).await);
    }
    let r = client
        .post(server.url(&format!("/api/v1/envelopes/{id}/forward")))
        .json(&json!({ "to": to }))
        .send()
        .await
        .unwrap();
    out.push(code(r).await);
    out
}

#[tokio::test]
async fn exports_forwards_and_deletions_ask_for_the_password_after_the_window() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, _) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (colleague, _) = net.add_user("doctor", CLINIC, "丸亀 次郎");
    let (op, op_issued) = crate::harness::parse_letter(
        &net.admin(&["user", "add", "--role", "operator", "--name", "運営"]),
    );
    let config = net.data_dir().join("renkei.toml");
    std::fs::write(
        &config,
        format!("[auth]\nreauth_secs = {}\n", WINDOW.as_secs()),
    )
    .unwrap();
    let server = net.serve(&["--config", config.to_str().unwrap()]);
    let gp_c = net.ready_client(&server, &gp, &gp_issued).await;
    let op_c = net.ready_client(&server, &op, &op_issued).await;
    let gp_pw = format!("{gp_issued}-Mine-2026");
    let spec = json!({
        "kind": "reading_request",
        "to": [{ "account": rad }],
        "subject": "紹介状",
        "patient_id": "KGW-4471-2026",
        "patient_name": "香川 太郎",
        "body": "よろしくお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": [{ "name": "letter.pdf", "media_type": "application/pdf" }],
    });
    let pdf = b"%PDF-1.7\n% a referral letter\n%%EOF\n".to_vec();
    let id = server
        .sent_envelope(&gp_c, &spec, vec![("letter.pdf", pdf)])
        .await;
    let thread = server
        .opened_thread(
            &gp_c,
            &json!({
                "kind": "reading_request",
                "to": { "account": rad },
                "subject": "胸部CT",
                "patient_id": "KGW-5190-2026",
                "patient_name": "香川 太郎",
                "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
                "urgency": "routine",
                "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節" },
            }),
            crate::harness::no_files(),
        )
        .await;

    tokio::time::sleep(WINDOW + Duration::from_secs(1)).await;
    let refused = actions(&server, &gp_c, &id, &colleague).await;
    for (status, code) in &refused {
        assert_eq!(*status, StatusCode::FORBIDDEN, "{refused:?}");
        assert_eq!(code, "reauthentication_required", "{refused:?}");
    }
    let r = op_c
        .post(server.url("/api/v1/admin/deletion-requests"))
        .json(&json!({ "facility": CLINIC, "patient_id": "KGW-4471-2026", "confirm": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::FORBIDDEN, "reauthentication_required".into())
    );

    // A browser following the ZIP link is sent to confirm, then back.
    let zip = format!("/api/v1/envelopes/{id}/zip");
    let r = gp_c
        .get(server.url(&zip))
        .header("accept", "text/html,application/xhtml+xml")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = header(&r, "location").to_string();
    assert!(to.starts_with("/reauth?next="), "{to}");
    let page = gp_c
        .get(server.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("本人確認") && page.contains("name=\"password\""),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let wrong = gp_c
        .post(server.url("/reauth"))
        .header("origin", server.url(""))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", zip.as_str()),
            ("password", "not-my-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("role=\"alert\""));
    let r = gp_c
        .post(server.url("/reauth"))
        .header("origin", server.url(""))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", zip.as_str()),
            ("password", gp_pw.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&r, "location"), zip);
    let done = actions(&server, &gp_c, &id, &colleague).await;
    assert_eq!(done[0].0, StatusCode::OK, "{done:?}");
    assert_eq!(done[1].0, StatusCode::OK, "{done:?}");
    assert_eq!(done[2].0, StatusCode::NO_CONTENT, "{done:?}");

    // The API's own way: a wrong password is refused, the right one opens.
    tokio::time::sleep(WINDOW + Duration::from_secs(1)).await;
    // The thread page's forward form, too, goes to confirm and then back to
    // the thread.
    let page = gp_c
        .get(server.url(&format!("/threads/{thread}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = gp_c
        .post(server.url(&format!("/threads/{thread}/forward")))
        .header("origin", server.url(""))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("to", colleague.replace('-', "").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&r, "location"),
        format!("/reauth?next=%2Fthreads%2F{thread}")
    );
    let (status, _) = code(gp_c.get(server.url(&zip)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let reauth = async |password: &str| {
        gp_c.post(server.url("/api/v1/session/reauth"))
            .json(&json!({ "password": password }))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(reauth("not-my-password").await, StatusCode::UNAUTHORIZED);
    assert_eq!(reauth(&gp_pw).await, StatusCode::NO_CONTENT);
    assert_eq!(
        gp_c.get(server.url(&zip)).send().await.unwrap().status(),
        StatusCode::OK
    );
    let op_pw = format!("{op_issued}-Mine-2026");
    let r = op_c
        .post(server.url("/api/v1/session/reauth"))
        .json(&json!({ "password": op_pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = op_c
        .post(server.url("/api/v1/admin/deletion-requests"))
        .json(&json!({ "facility": CLINIC, "patient_id": "KGW-4471-2026", "confirm": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
