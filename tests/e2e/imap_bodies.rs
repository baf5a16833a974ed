//! IMAP bodies for clients that download parts on demand: a file declared
//! with any media type (each top-level type, odd parameters, types that would
//! make the content a MIME structure of its own) is served as what it is (the
//! type intake found, signed into the manifest), in a message that
//! Python's email package and mail-parser read, whose every part is the size
//! BODYSTRUCTURE says and the bytes BODY[] holds there, and whose attachments
//! decode to the very files sent — rendered whole, or streamed (a message
//! over 8 MiB). And a 1 GiB study fetched over IMAP (BODY[] and its part)
//! keeps the server under 200 MiB resident while it is fetched (counted
//! from sign-in on: the Argon2 of the password and the key unlock have their
//! own, fixed, cost whatever the size of the study).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::Digest;

use crate::dicom_support::{PATIENT, Reading};
use crate::imap::{imap_port, inbox_delivered};
use crate::render_memory::{peak_mib, write_file};

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/clients/imap_bodies.py"
);

fn run(r: &Reading, port: u16, args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(CLIENT)
        .arg(port.to_string())
        .arg(r.net.data_dir().join("tls-cert.pem"))
        .args([r.rad.as_str(), r.rad_pw.as_str()])
        .args(args)
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

fn pdf(len: usize, seed: u8) -> Vec<u8> {
    let mut b = format!("%PDF-1.7\n% letter {seed}\n").into_bytes();
    while b.len() + 6 < len {
        b.extend_from_slice(format!("% {:02x} line of text\n", b.len() as u8 ^ seed).as_bytes());
    }
    b.extend_from_slice(b"%%EOF\n");
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn every_declared_type_renders_parts_that_match_bodystructure() {
    let r = Reading::start_with(&["--imap-listen", "127.0.0.1:0"]).await;
    let port = imap_port(&r.server);
    // (declared type, the type served): every file here is a PDF, so a type
    // that says otherwise is corrected in the signed manifest at intake.
    let pdf_type = "application/pdf";
    let types: &[(&str, &str)] = &[
        ("application/pdf", pdf_type),
        (
            "application/pdf; name*=utf-8''%E5%A0%B1%E5%91%8A.pdf",
            pdf_type,
        ),
        ("text/plain", pdf_type),
        (
            "text/plain; charset=utf-8; format=flowed; delsp=yes",
            pdf_type,
        ),
        ("text/html; charset=shift_jis", pdf_type),
        ("image/png; name=\"画像.png\"", pdf_type),
        ("audio/wav", pdf_type),
        ("video/mp4", pdf_type),
        ("font/woff2", pdf_type),
        ("model/stl", pdf_type),
        ("application/octet-stream", pdf_type),
        ("message/rfc822", pdf_type),
        ("multipart/mixed; boundary=\"inner\"", pdf_type),
        ("text/plain; charset=iso-2022-jp", pdf_type),
    ];
    let mut sent = Vec::new();
    for (n, (declared, _)) in types.iter().enumerate() {
        // Sizes around base64's line and padding boundaries; the last one
        // large enough to be streamed.
        let len = if n == types.len() - 1 {
            9 << 20
        } else {
            1000 + 57 * n + n % 3
        };
        let name = format!("紹介状 {n}.pdf");
        let bytes = pdf(len, n as u8);
        let spec = json!({
            "kind": "reading_request",
            "to": { "account": r.rad },
            "subject": format!("種類 {n}"),
            "patient_id": PATIENT.0,
            "patient_name": PATIENT.1,
            "body": "ご高診をお願いします。",
            "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
            "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
            "attachments": [{ "name": name, "media_type": declared }],
        });
        r.server
            .opened_thread(&r.gp_c, &spec, vec![(name.clone(), bytes.clone())])
            .await;
        sent.push((name, hex(&sha2::Sha256::digest(&bytes)), bytes.len()));
    }
    inbox_delivered(&r.server, &r.rad_c, types.len()).await;

    let out = tempfile::tempdir().unwrap();
    let got = run(&r, port, &["check", out.path().to_str().unwrap()]);
    assert_eq!(got["problems"], json!([]), "{got}");
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), types.len());
    for m in messages {
        let got_name = m["files"][0]["name"].as_str().unwrap_or_default();
        let Some(((_, served), (name, sha, len))) = types
            .iter()
            .zip(&sent)
            .find(|(_, (name, _, _))| name == got_name)
        else {
            panic!("an attachment that was not sent: {m}");
        };
        assert_eq!(
            m["files"],
            json!([{ "name": name, "type": served, "size": len, "sha256": sha }]),
            "{m}"
        );
        let uid = m["uid"].as_u64().unwrap();
        let raw = std::fs::read(out.path().join(format!("{uid}.eml"))).unwrap();
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("mail-parser reads it");
        let att = parsed.attachments().next().expect("one attachment");
        assert_eq!(hex(&sha2::Sha256::digest(att.contents())), *sha, "{name}");
    }
}

#[tokio::test]
async fn a_1_gib_study_fetched_over_imap_keeps_the_server_under_200_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let r = Reading::start_with(&["--imap-listen", "127.0.0.1:0"]).await;
    let port = imap_port(&r.server);
    let file = tmp.path().join("multi-frame.dcm");
    write_file(&file);
    let len = std::fs::metadata(&file).unwrap().len();
    let sha = {
        let mut h = sha2::Sha256::new();
        std::io::copy(&mut std::fs::File::open(&file).unwrap(), &mut h).unwrap();
        hex(&h.finalize())
    };
    let name = "multi-frame.dcm";
    let spec = json!({
        "kind": "reading_request",
        "to": [{ "account": r.rad }],
        "subject": "マルチフレーム 読影依頼",
        "patient_id": PATIENT.0,
        "patient_name": PATIENT.1,
        "body": "ご高診をお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": [{ "name": name }],
    });
    let body = reqwest::Body::from(tokio::fs::File::open(&file).await.unwrap());
    let form = Form::new()
        .part(
            "envelope",
            Part::text(spec.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            Part::stream_with_length(body, len).file_name(name.to_string()),
        );
    let answer = r
        .gp_c
        .post(r.server.url("/api/v1/envelopes"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    std::fs::remove_file(&file).unwrap();
    inbox_delivered(&r.server, &r.rad_c, 1).await;
    let after_upload = peak_mib(r.server.pid());

    // The client signs in first (Argon2 and the key unlock take their own,
    // fixed, memory); the peak is counted afresh from there, over the fetch.
    let mut client = Command::new("python3")
        .arg(CLIENT)
        .arg(port.to_string())
        .arg(r.net.data_dir().join("tls-cert.pem"))
        .args([r.rad.as_str(), r.rad_pw.as_str(), "big", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdout = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "SIGNED-IN", "the client signs in first");
    let at_sign_in = peak_mib(r.server.pid());
    std::fs::write(format!("/proc/{}/clear_refs", r.server.pid()), "5").unwrap();
    let started = std::time::Instant::now();
    client.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(client.wait().unwrap().success(), "client: {rest}");
    let got: Value = serde_json::from_str(rest.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("client output: {rest}"));
    let peak = peak_mib(r.server.pid());
    eprintln!(
        "fetched BODY[] and BODY[2] of {len} B in {:.1} s; server peak {peak} MiB while fetching (upload {after_upload} MiB, sign-in {at_sign_in} MiB)",
        started.elapsed().as_secs_f64()
    );
    let size = got["size"].as_u64().unwrap();
    assert!(size > len, "{got}");
    assert_eq!(got["literal"], json!([size]), "BODY[] is RFC822.SIZE long");
    assert_eq!(got["part_sha256"], sha, "part 2 decodes to the study");
    assert!(peak < 200, "server peak resident memory {peak} MiB");
}
