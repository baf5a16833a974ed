//! Allowed networks per facility: once the operator gives the clinic a range
//! that does not hold the test's address (127.0.0.1), its doctor's sign-ins
//! are refused on the API (`network_not_allowed`), the pages (in Japanese) and
//! IMAP, whatever the password; the hospital, with no range, is not limited.
//! A range that holds the address (set on the operator console) lets the
//! doctor in again; a malformed range is refused; clearing lifts the limit.
//! The ranges are stored (SQLite and PostgreSQL) and every change is audited.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{CLINIC, HOSPITAL, Network, csrf_from};
use crate::imap::imap_port;

/// `imaplib` LOGIN: (typ, text).
fn imap_login(net: &Network, port: u16, user: &str, password: &str) -> (String, String) {
    let script = r#"
import imaplib, json, ssl, sys
port, cafile, user, password = sys.argv[1:5]
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ssl.create_default_context(cafile=cafile), timeout=30)
try:
    typ, data = m.login(user, password)
    print(json.dumps([typ, b" ".join(data).decode()]))
except imaplib.IMAP4.error as e:
    print(json.dumps(["NO", str(e)]))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .arg(net.data_dir().join("tls-cert.pem"))
        .args([user, password])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (v[0].as_str().unwrap().into(), v[1].as_str().unwrap().into())
}

#[tokio::test]
async fn a_facility_limited_to_its_networks_refuses_sign_ins_from_elsewhere() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (op, op_issued) = crate::harness::parse_letter(
        &net.admin(&["user", "add", "--role", "operator", "--name", "運営"]),
    );
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let _ = net.ready_client(&server, &gp, &gp_issued).await;
    let _ = net.ready_client(&server, &rad, &rad_issued).await;
    let op_c = net.ready_client(&server, &op, &op_issued).await;
    let gp_pw = format!("{gp_issued}-Mine-2026");
    let rad_pw = format!("{rad_issued}-Mine-2026");

    let shown = net.admin(&[
        "facility",
        "networks",
        CLINIC,
        "--set",
        "192.0.2.0/24, 10.20.0.0/16",
    ]);
    assert!(
        shown.contains("only from: 10.20.0.0/16, 192.0.2.0/24"),
        "{shown}"
    );
    assert!(
        net.admin(&["facility", "networks", CLINIC])
            .contains("192.0.2.0/24")
    );

    // API: refused with its own code, even with the right password.
    let (status, body) = server.post_session(&server.client(), &gp, &gp_pw).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "network_not_allowed", "{body}");
    // Pages: a Japanese message that says why.
    let r = server
        .client()
        .post(server.url("/login"))
        .form(&[("id", gp.as_str()), ("password", gp_pw.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(page.contains("許可したネットワーク"), "{page}");
    // IMAP.
    let (typ, text) = imap_login(&net, port, &gp, &gp_pw);
    assert_eq!(typ, "NO");
    assert!(text.contains("own networks"), "{text}");
    // The hospital has no range.
    assert_eq!(
        server.post_session(&server.client(), &rad, &rad_pw).await.0,
        StatusCode::OK
    );
    assert_eq!(imap_login(&net, port, &rad, &rad_pw).0, "OK");

    // A malformed range is refused and changes nothing.
    let out = net.run(&[
        "admin",
        "facility",
        "networks",
        CLINIC,
        "--set",
        "10.0.0.0/33",
    ]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(out.stderr.contains("10.0.0.0/33"), "{}", out.stderr);

    // The operator console: a range holding this address lets the doctor in.
    let page_url = server.url(&format!("/operator/facilities/{CLINIC}"));
    let csrf = csrf_from(&op_c, &page_url).await;
    let r = op_c
        .post(server.url(&format!("/operator/facilities/{CLINIC}/networks")))
        .form(&[("csrf", csrf.as_str()), ("networks", "127.0.0.0/8")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("127.0.0.0/8") && page.contains("保存しました"),
        "{page}"
    );
    assert_eq!(
        server.post_session(&server.client(), &gp, &gp_pw).await.0,
        StatusCode::OK
    );
    assert_eq!(imap_login(&net, port, &gp, &gp_pw).0, "OK");

    // Cleared: from anywhere.
    net.admin(&["facility", "networks", CLINIC, "--set", ""]);
    assert!(
        net.admin(&["facility", "networks", CLINIC])
            .contains("any network")
    );
    let csv = net.audit_export();
    let changes = csv
        .lines()
        .filter(|l| l.contains("facility networks"))
        .count();
    assert!(changes >= 3, "{csv}");
}
