//! Two-factor sign-in end to end: TOTP codes computed by an independent
//! implementation (Python's pyotp), used once; recovery codes used once;
//! re-authentication before changing the address; the operator's overview and
//! reset; app passwords for IMAP (Python's imaplib) with the account password
//! refused; per-facility policy; the sign-in delay and the per-address limit shared by
//! the web and IMAP.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, Server, run_browser};
use crate::imap::{imap_port, inbox_delivered, send_request};

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/clients/twofactor.py"
);

/// Debian's interpreter, where `python3-pyotp` is installed by scripts/test-all.
fn python() -> Command {
    if std::path::Path::new("/usr/bin/python3").exists() {
        Command::new("/usr/bin/python3")
    } else {
        Command::new("python3")
    }
}

/// The code pyotp computes for `secret` at now + `offset` seconds.
pub(crate) fn pyotp(secret: &str, offset: i64) -> String {
    let out = python()
        .args([CLIENT, "totp", secret, &offset.to_string()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyotp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub(crate) fn imap(net: &Network, port: u16, user: &str, password: &str) -> Value {
    let out = python()
        .arg(CLIENT)
        .arg("imap")
        .arg(port.to_string())
        .arg(net.data_dir().join("tls-cert.pem"))
        .args([user, password])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "client output: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    server.post_json(client, path, &body).await
}

async fn get(client: &reqwest::Client, server: &Server, path: &str) -> (StatusCode, Value) {
    server.get_answer(client, path).await
}

/// Signs in with the issued password, changes it, enrols TOTP (confirmed by a
/// pyotp code) and returns the client, the password, the secret and the
/// recovery codes.
async fn enrolled(
    net: &Network,
    server: &Server,
    id: &str,
    issued: &str,
) -> (reqwest::Client, String, String, Vec<String>) {
    let client = net.ready_client(server, id, issued).await;
    let password = format!("{issued}-Mine-2026");
    // Required and missing: everything but enrolling waits.
    let (status, v) = get(&client, server, "/api/v1/me").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"], "second_factor_enrolment_required");
    let (status, v) = post(&client, server, "/api/v1/me/totp", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(
        v["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert!(v["qr_svg"].as_str().unwrap().contains("<svg"));
    let (status, v) = post(
        &client,
        server,
        "/api/v1/me/totp/confirm",
        json!({ "code": "000000x" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    let (status, v) = post(
        &client,
        server,
        "/api/v1/me/totp/confirm",
        json!({ "code": pyotp(&secret, 0) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let codes: Vec<String> = v["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let (status, _) = get(&client, server, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    (client, password, secret, codes)
}

/// Password step through the API: 202 and a pending token, no session.
async fn password_step(server: &Server, id: &str, password: &str) -> (reqwest::Client, String) {
    let client = server.client();
    let r = client
        .post(server.url("/api/v1/session"))
        .json(&json!({ "id": id, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no session cookie yet"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["second_factor_required"], true);
    assert!(v.get("token").is_none());
    let pending = v["pending"].as_str().unwrap().to_string();
    // Nothing is signed in.
    let (status, _) = get(&client, server, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    (client, pending)
}

#[tokio::test]
async fn totp_and_recovery_codes_gate_the_session() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (op, op_issued) = {
        let letter = net.admin(&["user", "add", "--role", "operator", "--name", "運営 太郎"]);
        crate::harness::parse_letter(&letter)
    };
    let server = net.serve(&["--second-factor", "required"]);
    let (_web, password, secret, codes) = enrolled(&net, &server, &id, &issued).await;

    // The password alone gives no session; a wrong code does not either.
    let (client, pending) = password_step(&server, &id, &password).await;
    let (status, v) = post(
        &client,
        &server,
        "/api/v1/session/second-factor",
        json!({ "pending": pending, "code": "123456" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"], "bad_second_factor");
    // pyotp's code (the next 30-second step: the current one was used to confirm).
    let code = pyotp(&secret, 30);
    let (status, v) = post(
        &client,
        &server,
        "/api/v1/session/second-factor",
        json!({ "pending": pending, "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["token"].as_str().is_some());
    let (status, _) = get(&client, &server, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);

    // The same code again is refused.
    let (again, pending) = password_step(&server, &id, &password).await;
    let (status, v) = post(
        &again,
        &server,
        "/api/v1/session/second-factor",
        json!({ "pending": pending, "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    let (status, _) = get(&again, &server, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A recovery code works once.
    let (rc, pending) = password_step(&server, &id, &password).await;
    let (status, v) = post(
        &rc,
        &server,
        "/api/v1/session/second-factor",
        json!({ "pending": pending, "recovery_code": codes[0].to_uppercase() }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (rc2, pending) = password_step(&server, &id, &password).await;
    let (status, _) = post(
        &rc2,
        &server,
        "/api/v1/session/second-factor",
        json!({ "pending": pending, "recovery_code": codes[0] }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, v) = get(&rc, &server, "/api/v1/me/factors").await;
    assert_eq!(v["totp"], true);
    assert_eq!(v["recovery_codes_left"], 9);

    // Changing the address needs a fresh second factor (the enrolling session
    // `web` has one for a few minutes; this later session has none).
    let r = client
        .put(server.url("/api/v1/me/email"))
        .json(&json!({ "address": "sanuki@example.jp" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "reauthentication_required");
    let r = client
        .post(server.url("/api/v1/session/reauth"))
        .json(&json!({ "recovery_code": codes[1] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = client
        .put(server.url("/api/v1/me/email"))
        .json(&json!({ "address": "sanuki@example.jp" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // The operator sees who has what, and resets after an identity check.
    let table = net.admin(&["user", "factors"]);
    let row = table
        .lines()
        .find(|l| l.replace('-', "").starts_with(&id.replace('-', "")))
        .expect("account listed");
    assert!(row.contains("\tyes\t8\t0\t0"), "{row}");
    let opc = net.ready_client(&server, &op, &op_issued).await;
    // The operator too must enrol first where a factor is required.
    let (status, _) = get(&opc, &server, "/api/v1/admin/factors").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    net.admin(&["user", "reset-second-factor", &id]);
    // The old session ended; the password now leads straight to enrolment.
    let (status, _) = get(&client, &server, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fresh = server.client();
    let (status, v) = server.post_session(&fresh, &id, &password).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["second_factor_enrolment_required"], true);
    let (status, v) = get(&fresh, &server, "/api/v1/mailbox/inbox").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
}

#[tokio::test]
async fn pages_ask_for_the_code_after_the_password() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&["--second-factor", "required"]);
    let (_, password, secret, _) = enrolled(&net, &server, &id, &issued).await;

    let browser = server.client();
    let r = browser
        .post(server.url("/login"))
        .form(&[("id", id.as_str()), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("set-cookie").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("確認コード"), "{page}");
    let pending = page
        .split("name=\"pending\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("pending field")
        .to_string();
    let r = browser.get(server.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let r = browser
        .post(server.url("/login/second-factor"))
        .form(&[("pending", pending.as_str()), ("code", &pyotp(&secret, 30))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers().get("set-cookie").is_some());
    let r = browser.get(server.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn mail_clients_use_app_passwords() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    // The clinic keeps the second factor optional; the hospital follows the network.
    net.admin(&["facility", "second-factor", CLINIC, "optional"]);
    let server = net.serve(&[
        "--second-factor",
        "required",
        "--imap-listen",
        "127.0.0.1:0",
    ]);
    let port = imap_port(&server);
    let gp_c = net.ready_client(&server, &gp, &gp_issued).await;
    let (rad_c, rad_pw, _, _) = enrolled(&net, &server, &rad, &rad_issued).await;
    send_request(&server, &gp_c, &rad, 1).await;
    inbox_delivered(&server, &rad_c, 1).await;

    // The account password no longer opens IMAP.
    let v = imap(&net, port, &rad, &rad_pw);
    assert_eq!(v["login"], "NO", "{v}");
    assert!(v["text"].as_str().unwrap().contains("app password"), "{v}");

    // An app password does, and reads the item.
    let (status, made) = post(
        &rad_c,
        &server,
        "/api/v1/me/app-passwords",
        json!({ "name": "Thunderbird 診察室" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let app = made["password"].as_str().unwrap().to_string();
    let app_id = made["id"].as_str().unwrap().to_string();
    let v = imap(&net, port, &rad, &app);
    assert_eq!(v["login"], "OK", "{v}");
    assert_eq!(v["exists"], 1);
    assert!(v["subject"].as_str().unwrap().contains("胸部CT"), "{v}");
    let (_, list) = get(&rad_c, &server, "/api/v1/me/app-passwords").await;
    assert_eq!(list[0]["name"], "Thunderbird 診察室");
    assert!(list[0]["last_used_at"].as_i64().is_some());
    assert_eq!(list[0]["last_used_from"], "127.0.0.1");
    assert!(list[0].get("password").is_none());
    // It ends 90 days after it was made, as the settings page says.
    let created = list[0]["created_at"].as_i64().unwrap();
    assert_eq!(list[0]["expires_at"].as_i64(), Some(created + 90 * 86_400));
    let settings = rad_c.get(server.url("/settings")).send().await.unwrap();
    let settings = settings.text().await.unwrap();
    assert!(
        settings.contains("有効期限（メールソフトのみ）"),
        "{settings}"
    );

    // It opens IMAP only: the web and API sign-in refuse it like any wrong password.
    let (status, v) = server.post_session(&server.client(), &rad, &app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"], "bad_credentials");
    let r = server
        .client()
        .post(server.url("/login"))
        .form(&[("id", rad.as_str()), ("password", app.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // After 90 days it no longer opens mail, and the client is told why.
    let db = crate::harness::Db::open(&net).await;
    db.exec(&format!(
        "UPDATE app_passwords SET created_at = created_at - {} WHERE id = '{app_id}'",
        91 * 86_400
    ))
    .await;
    let v = imap(&net, port, &rad, &app);
    assert_eq!(v["login"], "NO", "{v}");
    assert!(v["text"].as_str().unwrap().contains("expired"), "{v}");
    let settings = rad_c.get(server.url("/settings")).send().await.unwrap();
    assert!(settings.text().await.unwrap().contains("期限切れ"));

    // Revoked: refused for the very next connection.
    let r = rad_c
        .delete(server.url(&format!("/api/v1/me/app-passwords/{app_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let v = imap(&net, port, &rad, &app);
    assert_eq!(v["login"], "NO", "{v}");

    // Where the second factor is optional and none is enrolled, the password still works.
    let v = imap(&net, port, &gp, &format!("{gp_issued}-Mine-2026"));
    assert_eq!(v["login"], "OK", "{v}");
}

#[tokio::test]
async fn delay_and_address_limit_span_web_and_imap_and_spare_known_devices() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (a, a_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (b, b_issued) = net.add_user("doctor", CLINIC, "善通寺 由美");
    let config = net.data_dir().join("renkei.toml");
    std::fs::write(
        &config,
        "[auth]\naddress_failures = 9\naddress_window_secs = 600\n",
    )
    .unwrap();
    let server = net.serve(&[
        "--config",
        config.to_str().unwrap(),
        "--delay-after",
        "3",
        "--imap-listen",
        "127.0.0.1:0",
    ]);
    let port = imap_port(&server);
    // These browsers signed in before: they hold each account's device cookie.
    let a_device = net.ready_client(&server, &a, &a_issued).await;
    let b_device = net.ready_client(&server, &b, &b_issued).await;
    let a_pw = format!("{a_issued}-Mine-2026");
    let b_pw = format!("{b_issued}-Mine-2026");

    // Two wrong passwords on IMAP and one on the web are free; after that
    // each waits a doubling delay (1 s, 2 s, 4 s, then 8 s), on both
    // protocols, even with the right password.
    for _ in 0..2 {
        assert_eq!(imap(&net, port, &a, "wrong-password-1")["login"], "NO");
    }
    let web = server.client();
    let (status, v) = server.post_session(&web, &a, "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    let (status, _) = server.post_session(&web, &a, "wrong").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "inside the first delay"
    );
    for wait in [1, 2, 4] {
        tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 150)).await;
        let (status, v) = server.post_session(&web, &a, "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "after {wait} s: {v}");
    }
    let v = imap(&net, port, &a, &a_pw);
    assert_eq!(v["login"], "NO");
    assert!(v["text"].as_str().unwrap().contains("too many"), "{v}");
    let (status, v) = server.post_session(&web, &a, &a_pw).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"], "too_many_attempts");
    // Nothing locked the account: its own browser still signs in.
    assert!(
        net.admin(&["user", "show", &a])
            .contains("locked:           false")
    );
    let (status, v) = server.post_session(&a_device, &a, &a_pw).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Six failures from 127.0.0.1 so far; three unknown IDs reach the
    // address's cap of nine, after which the address is refused on both
    // protocols to anyone without a device that signed in before.
    for unknown in ["XXXX-XXXX", "YYYY-YYYY"] {
        let (status, _) = server.post_session(&web, unknown, "x").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let v = imap(&net, port, "nobody", "x");
    assert_eq!(v["login"], "NO");
    let (status, v) = server.post_session(&web, &b, &b_pw).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"], "too_many_attempts");
    let v = imap(&net, port, &b, &b_pw);
    assert_eq!(v["login"], "NO");
    assert!(v["text"].as_str().unwrap().contains("too many"), "{v}");
    let (status, v) = server.post_session(&b_device, &b, &b_pw).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a known device passes the address cap: {v}"
    );
    // A device cookie is worth nothing for another account.
    let (status, _) = server.post_session(&b_device, &a, &a_pw).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn security_keys_register_sign_in_and_go_in_headless_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    // The harness's rule is optional: the key is this account's first factor.
    let server = net.serve(&[]);
    let _ = net.ready_client(&server, &id, &issued).await;
    let password = format!("{issued}-Mine-2026");
    let v = run_browser("webauthn.cjs", &[&server.url(""), &id, &password]);
    assert_eq!(v["after_password"], "/", "{v}");
    assert_eq!(v["register_error"], Value::Null, "{v}");
    assert_eq!(v["credentials_in_authenticator"], 1, "{v}");
    assert_eq!(v["recovery_codes"], 10, "{v}");
    assert_eq!(v["keys_listed"], json!(["診察室のキー"]), "{v}");
    // After the password: the key is asked for and no session exists yet.
    assert_eq!(v["second_step_page"], true, "{v}");
    assert_eq!(v["session_cookie_before_key"], false, "{v}");
    assert_eq!(v["after_key"], "/", "{v}");
    assert_eq!(v["me_status"], 200, "{v}");
    assert_eq!(v["after_remove"], "/password", "{v}");
    assert_eq!(v["remove_error"], Value::Null, "{v}");
    let table = net.admin(&["user", "factors"]);
    let row = table
        .lines()
        .find(|l| l.replace('-', "").starts_with(&id.replace('-', "")))
        .expect("account listed");
    assert!(row.ends_with("\t0"), "no key left: {row}");
}

/// The authenticator-app path in headless Chromium: enrolment from the page
/// (QR code and secret, confirmed by a pyotp code, ten recovery codes), then
/// the password alone gives no session, a fresh pyotp code does, the same code
/// again is refused, and a recovery code works once.
#[tokio::test]
async fn authenticator_codes_in_headless_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&[]);
    let _ = net.ready_client(&server, &id, &issued).await;
    let password = format!("{issued}-Mine-2026");
    let v = run_browser("totp_browser.cjs", &[&server.url(""), &id, &password]);
    assert_eq!(v["qr_code_shown"], true, "{v}");
    assert_eq!(v["recovery_codes"], 10, "{v}");
    assert_eq!(v["second_step_page"], true, "{v}");
    assert_eq!(
        v["me_before_code"], 401,
        "no session after the password alone: {v}"
    );
    assert_eq!(v["after_code"], "/", "{v}");
    assert_eq!(v["me_after_code"], 200, "{v}");
    assert_ne!(v["reused_code_path"], "/", "{v}");
    assert_eq!(v["reused_code_error"], true, "{v}");
    assert_eq!(v["me_after_reused"], 401, "{v}");
    assert_eq!(v["after_recovery"], "/", "{v}");
    assert_eq!(v["me_after_recovery"], 200, "{v}");
    assert_ne!(v["recovery_again_path"], "/", "{v}");
    assert_eq!(v["recovery_again_error"], true, "{v}");
    assert_eq!(v["me_after_recovery_again"], 401, "{v}");
}
