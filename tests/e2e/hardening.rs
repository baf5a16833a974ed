//! What a tester probes from outside before signing in: configuration errors
//! (exit 78, naming the setting), an IP address as `[http] public_url` (the
//! pages work; security keys need a host name and the server says so), the
//! self-signed certificate (at most 397 days), and downloads (a file a sender
//! declared `text/html` is never served as HTML; every download is an
//! attachment in a sandbox).

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{CLINIC, HOSPITAL, Network, header};

#[tokio::test]
async fn a_configuration_error_exits_78_and_names_the_setting() {
    let net = Network::new().await;
    let config = net.data_dir().join("renkei.toml");
    for (text, setting) in [
        (
            "[http]\npublic_url = \"http://renkei.example\"\n",
            "http.public_url",
        ),
        ("[http]\npublic_url = \"https://\"\n", "http.public_url"),
        ("[records]\nretention_days = 0\n", "records.retention_days"),
        ("[imaging]\nmax_renders = 0\n", "imaging.max_renders"),
        ("[http]\nno_such_setting = 1\n", "no_such_setting"),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = net.run(&["--config", config.to_str().unwrap(), "serve"]);
        assert_eq!(out.code, Some(78), "{text}: {}", out.stderr);
        assert!(out.stderr.contains(setting), "{text}: {}", out.stderr);
        assert!(!out.stderr.contains("try again later"), "{}", out.stderr);
    }
}

#[tokio::test]
async fn an_ip_address_as_public_url_serves_the_pages_and_says_security_keys_need_a_host_name() {
    let net = Network::new().await;
    let config = net.data_dir().join("renkei.toml");
    std::fs::write(&config, "[http]\npublic_url = \"https://127.0.0.1\"\n").unwrap();
    net.add_hospital();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let server = net.serve(&["--config", config.to_str().unwrap()]);
    let log = std::fs::read_to_string(net.data_dir().join("server.log")).unwrap();
    assert!(
        log.contains("security keys (WebAuthn) need a host name"),
        "{log}"
    );

    // The pages at the IP address itself (the certificate names it).
    let by_ip = server
        .client_builder()
        .build()
        .unwrap()
        .get(format!("https://127.0.0.1:{}/login", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_ip.status(), StatusCode::OK);
    assert!(by_ip.text().await.unwrap().contains("ログイン"));

    // Signed in, registering a security key is refused with the reason.
    let client = net.ready_client(&server, &id, &issued).await;
    let r = client
        .post(server.url("/api/v1/me/webauthn/register"))
        .json(&json!({ "name": "USB キー" }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(status.is_client_error(), "{status} {body}");
    assert!(body.to_string().contains("host name"), "{body}");
}

#[tokio::test]
async fn the_self_signed_certificate_lasts_at_most_397_days() {
    let net = Network::new().await;
    let _server = net.serve(&[]);
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-startdate", "-enddate", "-in"])
        .arg(net.data_dir().join("tls-cert.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let date = |prefix: &str| {
        let line = text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap();
        let out = std::process::Command::new("date")
            .args(["-u", "+%s", "-d", line.trim()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    let (start, end) = (date("notBefore="), date("notAfter="));
    assert!(end - start <= 397 * 86_400, "{text}");
    assert!(
        end > chrono::Utc::now().timestamp() + 390 * 86_400,
        "{text}"
    );
}

#[tokio::test]
async fn a_file_declared_as_html_is_downloaded_as_bytes_in_a_sandbox() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, _) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&[]);
    let gp_c = net.ready_client(&server, &gp, &gp_issued).await;
    let pdf = b"%PDF-1.7\n% a referral letter\n%%EOF\n".to_vec();
    let spec = json!({
        "kind": "reading_request",
        "to": [{ "account": rad }],
        "subject": "紹介状",
        "patient_id": "KGW-4471-2026",
        "patient_name": "香川 太郎",
        "body": "よろしくお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": [{ "name": "letter.html", "media_type": "text/html" }],
    });
    let form = crate::harness::upload_form("envelope", &spec, vec![("letter.html", pdf.clone())]);
    let r = gp_c
        .post(server.url("/api/v1/envelopes"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        format!("/api/v1/envelopes/{id}/attachments/0"),
        format!("/items/{id}/attachments/0"),
    ] {
        let r = gp_c.get(server.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let media = header(&r, "content-type").to_string();
        assert!(!media.contains("html"), "{path}: {media}");
        assert!(
            media == "application/pdf" || media == "application/octet-stream",
            "{path}: {media}"
        );
        assert!(
            header(&r, "content-disposition").starts_with("attachment"),
            "{path}"
        );
        assert!(
            header(&r, "content-security-policy").starts_with("sandbox"),
            "{path}"
        );
        assert_eq!(r.bytes().await.unwrap()[..], pdf[..], "{path}");
    }
}
