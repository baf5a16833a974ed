//! IMAP with real clients: Python's imaplib (folders, envelopes, full bodies with
//! byte-identical attachments, search, flags seen on the web, expunge as archive,
//! IDLE woken by a delivery, a clerk's read-only folder, a colleague who sees
//! nothing) and curl.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest;

use crate::harness::{CLINIC, HOSPITAL, Network, Server, wait_until};

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/clients/imap_client.py"
);

fn dicom_bytes() -> Vec<u8> {
    let payload: Vec<u8> = (0..50_000u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    imaging::sample::with_payload(&payload)
}

pub(crate) fn imap_port(server: &Server) -> u16 {
    server
        .stdout_head
        .lines()
        .find_map(|l| l.strip_prefix("renkei imap listening on "))
        .and_then(|a| a.trim().rsplit(':').next()?.parse().ok())
        .expect("the IMAP address is printed")
}

pub(crate) async fn send_request(
    server: &Server,
    client: &reqwest::Client,
    to: &str,
    n: usize,
) -> String {
    let spec = json!({
        "kind": "reading_request",
        "to": { "account": to },
        "subject": format!("胸部CT 読影依頼 {n}"),
        "patient_id": "P-0042",
        "patient_name": "香川 太郎",
        "body": "CT の読影をお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
        "attachments": [{ "name": "CT0001.dcm", "media_type": "application/dicom" }],
    });
    server
        .opened_thread(client, &spec, vec![("CT0001.dcm", dicom_bytes())])
        .await
}

fn python(
    net: &Network,
    port: u16,
    user: &str,
    password: &str,
    scenario: &str,
) -> std::process::Child {
    Command::new("python3")
        .arg(CLIENT)
        .arg(port.to_string())
        .arg(net.data_dir().join("tls-cert.pem"))
        .args([user, password, scenario])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3")
}

fn result(child: std::process::Child) -> Value {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "client output: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub(crate) async fn inbox_delivered(server: &Server, client: &reqwest::Client, n: usize) {
    wait_until(
        &format!("{n} items in the Inbox"),
        Duration::from_secs(20),
        || async {
            let v: Value = client
                .get(server.url("/api/v1/mailbox/inbox"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (v.as_array().map_or(0, Vec::len) >= n).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn mail_clients_read_the_same_mailboxes_over_tls() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (col, col_pw) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let (clerk, clerk_pw) = net.add_user("clerk", HOSPITAL, "坂出 明美");
    let (fresh, fresh_pw) = net.add_user("doctor", HOSPITAL, "新人 医師");
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let _ = net.ready_client(&server, &col, &col_pw).await;
    let _ = net.ready_client(&server, &clerk, &clerk_pw).await;
    let pw = |p: &str| format!("{p}-Mine-2026");
    send_request(&server, &gp_c, &rad, 1).await;
    send_request(&server, &gp_c, &rad, 2).await;
    inbox_delivered(&server, &rad_c, 2).await;

    // The reader's session, with IDLE woken by a third delivery.
    let mut child = python(&net, port, &rad, &pw(&rad_pw), "reader");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut before_idle = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "IDLING" {
            break;
        }
        before_idle.push_str(&line);
    }
    let sent = std::time::Instant::now();
    send_request(&server, &gp_c, &rad, 3).await;
    let acked_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let mut errors = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut errors);
    }
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "client failed: {before_idle} {rest:?}\n{errors}"
    );
    let r: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert!(sent.elapsed() < Duration::from_secs(20));

    assert_eq!(r["login"], "OK", "{r}");
    assert!(
        r["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("IDLE"))
    );
    assert_eq!(
        r["folders"],
        json!(["Archive", "INBOX", "Sent"]),
        "a doctor's folders"
    );
    assert_eq!(r["exists"], 2);
    assert!(
        r["status"].as_str().unwrap().contains("UIDVALIDITY 1"),
        "{r}"
    );
    assert_eq!(r["subject"], "胸部CT 読影依頼 1");
    assert!(r["from"].as_str().unwrap().contains("琴平 健"), "{r}");
    assert!(
        r["signature_header"].as_str().unwrap().starts_with("valid"),
        "{r}"
    );
    let want = hex(&sha2::Sha256::digest(dicom_bytes()));
    assert_eq!(
        r["attachments"],
        json!([{ "name": "CT0001.dcm", "type": "application/dicom", "sha256": want }]),
        "attachments byte-identical"
    );
    assert!(
        r["text"].as_str().unwrap().contains("香川 太郎"),
        "the reader sees the patient"
    );
    assert!(
        !r["listed_sizes"].as_array().unwrap().is_empty(),
        "sizes listed: {r}"
    );
    assert_eq!(
        r["listed_sizes"], r["downloaded_sizes"],
        "RFC822.SIZE is the length of BODY[]"
    );
    assert_eq!(
        r["downloads_identical"], true,
        "a message is the same bytes each time"
    );
    let bs = r["bodystructure"].as_str().unwrap().to_lowercase();
    assert!(bs.contains("\"text\" \"plain\""), "{bs}");
    assert!(bs.contains("\"application\" \"dicom\""), "{bs}");
    assert!(bs.contains("\"mixed\""), "{bs}");
    assert_eq!(r["part2_sha256"], want, "BODY[2] is the attachment");
    assert!(
        r["part2_mime"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("application/dicom"),
        "{r}"
    );
    let fields = r["header_fields"].as_str().unwrap();
    assert!(
        fields.starts_with("From:") || fields.starts_with("Subject:"),
        "{fields}"
    );
    assert!(!fields.contains("Message-ID"), "{fields}");
    assert!(
        !r["flags_after_peek"].as_str().unwrap().contains("Seen"),
        "{r}"
    );
    assert_eq!(r["unseen"], "1 2");
    assert_eq!(r["search_text"], "1 2");
    assert!(r["store"][0].as_str().unwrap().contains("\\Seen"), "{r}");
    assert!(r["expunged"][0].as_str().unwrap().starts_with('2'), "{r}");
    assert_eq!(r["archive_exists"], 1);
    assert_eq!(r["idle_ack"], "+ idling");
    assert!(
        r["idle_news"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().ends_with("EXISTS")),
        "{r}"
    );
    assert!(r["idle_done"].as_str().unwrap().starts_with("I1 OK"), "{r}");
    let waited = r["exists_at"].as_f64().unwrap() - acked_at;
    assert!(
        waited < 1.0,
        "IDLE saw the new item {waited:.2} s after it was acknowledged"
    );
    assert_eq!(r["search_subject_utf8"], "2", "{r}");
    assert_eq!(r["search_dates"], "1 2", "{r}");
    assert_eq!(r["facility_select"], "NO");

    // The web sees what the client did: read and flagged, one archived.
    let inbox: Value = rad_c
        .get(server.url("/api/v1/mailbox/inbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inbox = inbox.as_array().unwrap();
    assert_eq!(inbox.len(), 2, "one archived, one new");
    assert!(
        inbox
            .iter()
            .any(|e| e["seen"] == true && e["flagged"] == true)
    );
    let archive: Value = rad_c
        .get(server.url("/api/v1/mailbox/archive"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(archive.as_array().unwrap().len(), 1);

    // The clerk: the facility's items, read-only.
    let r = result(python(&net, port, &clerk, &pw(&clerk_pw), "clerk"));
    assert_eq!(
        r["folders"],
        json!(["Archive", "Facility", "INBOX", "Sent"]),
        "{r}"
    );
    assert_eq!(r["exists"], 3);
    assert_eq!(r["select_readonly"], true);
    assert!(r["store"].as_str().unwrap().contains("READ-ONLY"), "{r}");
    assert!(r["expunge"].as_str().unwrap().contains("READ-ONLY"), "{r}");
    assert_eq!(r["fetch"], "OK");

    // A colleague sees none of it.
    let r = result(python(&net, port, &col, &pw(&col_pw), "colleague"));
    assert_eq!(r["exists"], 0);
    assert!(r["facility"].as_str().unwrap().starts_with("NO"), "{r}");

    // Refusals: a wrong password, an issued password not yet changed.
    let r = result(python(&net, port, &rad, "wrong-password", "none"));
    assert_eq!(r["login"], "NO");
    let r = result(python(&net, port, &fresh, &fresh_pw, "none"));
    assert_eq!(r["login"], "NO");
    assert!(
        r["login_text"]
            .as_str()
            .unwrap()
            .contains("change the issued password"),
        "{r}"
    );

    // UIDs and UIDVALIDITY survive a restart.
    let before = result(python(&net, port, &rad, &pw(&rad_pw), "uids"));
    drop(server);
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let after = result(python(&net, port, &rad, &pw(&rad_pw), "uids"));
    assert_eq!(before["uids"], after["uids"], "{before} {after}");
    assert_eq!(before["status"], after["status"]);
    assert_eq!(before["uids"].as_str().unwrap().split(' ').count(), 2);

    // curl: the folder list and one message by UID.
    let cert = net.data_dir().join("tls-cert.pem");
    let user = format!("{}:{}", rad, pw(&rad_pw));
    let list = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-u", &user, &format!("imaps://localhost:{port}/")])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains("INBOX") && listing.contains("Archive"),
        "{listing} {}",
        String::from_utf8_lossy(&list.stderr)
    );
    let msg = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args([
            "-u",
            &user,
            &format!("imaps://localhost:{port}/INBOX;MAILINDEX=1"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&msg.stdout);
    assert!(text.contains("X-Renkei-Signature: valid"), "{text}");

    // The imapclient package: list, select, search, fetch envelopes and whole
    // bodies (attachments byte-identical), search a Japanese subject, set a flag.
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/clients/imap_imapclient.py"
        ))
        .arg(port.to_string())
        .arg(&cert)
        .args([rad.as_str(), pw(&rad_pw).as_str()])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(r["folders"], json!(["Archive", "INBOX", "Sent"]), "{r}");
    let msgs = r["messages"].as_array().unwrap();
    assert_eq!(msgs.len() as u64, r["exists"].as_u64().unwrap(), "{r}");
    assert!(!msgs.is_empty(), "{r}");
    for m in msgs {
        assert!(
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("胸部CT 読影依頼"),
            "{m}"
        );
        assert_eq!(m["subject"], m["envelope_subject"], "ENVELOPE subject: {m}");
        assert_eq!(m["size_matches"], true, "{m}");
        assert_eq!(m["attachments"], json!([&want]), "{m}");
    }
    assert_eq!(r["subject_search"].as_u64(), r["exists"].as_u64(), "{r}");
    assert!(
        r["flags_first"]
            .as_array()
            .unwrap()
            .contains(&json!("\\Flagged")),
        "{r}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn broken_imap_input_gets_bad_or_no_and_the_server_keeps_serving() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    // One item in the folder, so huge sets have something to be tested against.
    send_request(&server, &gp_c, &rad, 1).await;
    inbox_delivered(&server, &rad_c, 1).await;
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/clients/imap_corpus.py"
        ))
        .arg(port.to_string())
        .arg(net.data_dir().join("tls-cert.pem"))
        .args([rad.as_str(), &format!("{rad_pw}-Mine-2026")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let last = |name: &str| -> String {
        r[name]
            .as_array()
            .and_then(|a| a.last())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    assert!(r["greeting"].as_str().unwrap().starts_with("* OK"), "{r}");
    assert!(last("empty").starts_with("* BAD"), "{r}");
    assert!(last("noop").starts_with("a1 OK"), "{r}");
    assert!(last("unbalanced").starts_with("a2 BAD"), "{r}");
    assert!(last("fetch_before_login").starts_with("a3 BAD"), "{r}");
    assert!(last("select_before_login").starts_with("a4 BAD"), "{r}");
    let huge = last("huge_literal");
    assert_eq!(huge, "a5 BAD literal too large: refused unread", "{r}");
    assert_eq!(
        r["unknown"],
        json!(["a6 BAD unparsable command"]),
        "one answer per command: {r}"
    );
    assert!(last("unknown").starts_with("a6 BAD"), "{r}");
    assert!(last("long_line").starts_with("a7 BAD"), "{r}");
    assert!(
        last("noop_after").starts_with("a8 OK"),
        "still serving: {r}"
    );
    assert!(last("login").starts_with("b0 OK"), "{r}");
    assert!(last("select").starts_with("b1 OK"), "{r}");
    assert!(last("seq_zero").starts_with("b2 BAD"), "{r}");
    assert!(last("seq_past_end").starts_with("b3 BAD"), "{r}");
    assert_eq!(
        r["uid_fetch_huge"].as_array().unwrap().len(),
        2,
        "one FETCH and the OK: {r}"
    );
    assert!(last("store_unbalanced").starts_with("b4 BAD"), "{r}");
    assert!(last("search_unknown").starts_with("b5 BAD"), "{r}");
    assert!(last("append").starts_with("b6 NO"), "{r}");
    assert!(last("delete_folder").starts_with("b7 NO"), "{r}");
    assert!(last("uid_fetch_huge").starts_with("b9 OK"), "{r}");
    assert!(last("fetch_huge").starts_with("c1 "), "{r}");
    assert!(last("uid_search_huge").starts_with("c2 OK"), "{r}");
    assert!(last("examine").starts_with("c3 OK [READ-ONLY]"), "{r}");
    assert!(
        last("store_examined").starts_with("c4 NO [READ-ONLY]"),
        "{r}"
    );
    assert!(last("still_serving").starts_with("b8 OK"), "{r}");
    let flood = r["flood"].as_array().unwrap();
    assert!(
        flood
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("* BYE"))
            || flood.last() == Some(&json!("<EOF>")),
        "a garbage-only client is dropped: {r}"
    );
    assert!(flood.len() <= 12, "{r}");
    assert!(
        r["new_connection"].as_str().unwrap().starts_with("* OK"),
        "{r}"
    );
}

fn starttls_port(server: &Server) -> u16 {
    server
        .stdout_head
        .lines()
        .find_map(|l| l.strip_prefix("renkei imap starttls listening on "))
        .and_then(|a| a.trim().rsplit(':').next()?.parse().ok())
        .expect("the STARTTLS address is printed")
}

/// The optional STARTTLS port: nothing but CAPABILITY, NOOP, LOGOUT and
/// STARTTLS in clear (no password taken), a full session after it, and a
/// command smuggled behind STARTTLS in the same packet is dropped.
#[tokio::test]
async fn starttls_port_serves_only_after_tls() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&["--imap-starttls-listen", "127.0.0.1:0"]);
    let port = starttls_port(&server);
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    send_request(&server, &gp_c, &rad, 1).await;
    inbox_delivered(&server, &rad_c, 1).await;
    let password = format!("{rad_pw}-Mine-2026");
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/clients/imap_starttls.py"
        ))
        .arg(port.to_string())
        .arg(net.data_dir().join("tls-cert.pem"))
        .args([rad.as_str(), password.as_str()])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let plain: Vec<&str> = r["plain_capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        plain.contains(&"STARTTLS") && plain.contains(&"LOGINDISABLED"),
        "{r}"
    );
    assert!(!plain.contains(&"AUTH=PLAIN"), "{r}");
    assert!(
        r["plain_login"].as_str().unwrap().starts_with("refused"),
        "no password in clear: {r}"
    );
    assert_eq!(r["tls_login"], "OK", "{r}");
    assert!(
        !r["tls_capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("STARTTLS")),
        "{r}"
    );
    assert_eq!(r["exists"], 1, "{r}");
    assert!(
        r["subject_header"]
            .as_str()
            .unwrap()
            .starts_with("Subject:"),
        "{r}"
    );
    assert!(
        r["starttls_answer"].as_str().unwrap().starts_with("s1 OK"),
        "{r}"
    );
    assert_eq!(r["injected_login_answered"], false, "{r}");
    let select = r["select_after_injection"][0].as_str().unwrap_or_default();
    assert!(
        select.starts_with("s3 NO") || select.starts_with("s3 BAD"),
        "the smuggled LOGIN did not sign in: {r}"
    );

    // curl, which insists on TLS with --ssl-reqd, lists the folders.
    let list = Command::new("curl")
        .args(["-s", "--ssl-reqd", "--cacert"])
        .arg(net.data_dir().join("tls-cert.pem"))
        .args(["--user", &format!("{rad}:{password}")])
        .arg(format!("imap://localhost:{port}/"))
        .output()
        .expect("curl");
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(listing.contains("INBOX"), "{listing}");
}
