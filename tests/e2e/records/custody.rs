//! Key custody: the recovery key is never written in clear (a passphrase file,
//! or three custodians' shares of which one alone opens nothing); a backup
//! holds none of the key bytes (blind-index key, second-factor key, recovery
//! secret: raw or hex); a restore with two shares brings back TOTP sign-in
//! and the deletion-request search; the data folder and the backup are
//! 0600/0700, and a folder left wider is tightened at start.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::json;

use super::{PATIENT_ID, dicom, send_item};
use crate::harness::{CLINIC, CommandOutput, HOSPITAL, Network, bin};
use crate::twofactor::pyotp;

/// `renkei <args…>` as the harness runs it, plus `env`.
pub fn run_env(net: &Network, args: &[&str], env: &[(&str, &str)]) -> CommandOutput {
    let out = std::process::Command::new(bin())
        .args(net.args())
        .args(args)
        .envs(net.operator().map(|id| ("RENKEI_ADMIN_OPERATOR", id)))
        .envs(env.iter().copied())
        .env("RENKEI_SECOND_FACTOR", "optional")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    CommandOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file below `root` (folders too, when `dirs`).
fn walk(root: &Path, dirs: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if dirs {
                out.push(p.clone());
            }
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else {
            out.push(p);
        }
    }
    out
}

/// Files wider than 0600 and folders wider than 0700 below `root`.
pub fn too_open(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    walk(root, true)
        .into_iter()
        .filter_map(|p| {
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o777;
            let want = if meta.is_dir() { 0o700 } else { 0o600 };
            (mode != want).then(|| format!("{} {mode:o}", p.display()))
        })
        .collect()
}

/// The needles a scan looks for: each secret raw, and in lower and upper hex.
pub fn needles(what: &str, secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    vec![
        (format!("{what} (raw)"), secret.to_vec()),
        (format!("{what} (hex)"), hex(secret).into_bytes()),
        (
            format!("{what} (HEX)"),
            hex(secret).to_uppercase().into_bytes(),
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_bytes(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The recovery key opened from share files, as a custodian pair would.
fn open_shares(paths: &[&Path]) -> renkei_crypto::Result<renkei_crypto::SecretKey> {
    let files: Vec<renkei_crypto::RecoveryFile> = paths
        .iter()
        .map(|p| renkei_crypto::RecoveryFile::parse(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    renkei_crypto::open_recovery(&files, None)
}

/// Which needles occur in which files below `root`.
pub fn scan(root: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut hits = Vec::new();
    for file in walk(root, false) {
        let bytes = std::fs::read(&file).unwrap();
        for (what, needle) in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                hits.push(format!("{what} in {}", file.display()));
            }
        }
    }
    hits
}

#[tokio::test]
async fn backup_holds_no_key_and_a_restore_with_two_shares_brings_back_totp_and_search() {
    let net = Network::new().await;
    let offline = tempfile::tempdir().unwrap();
    net.add_hospital_and_clinic();
    // No recovery key yet: a backup is refused (its keys would have nowhere to be sealed).
    let early = offline.path().join("early");
    let out = net.run(&["admin", "backup", early.to_str().unwrap()]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("recovery init"), "{}", out.stderr);
    assert!(!early.exists() || walk(&early, false).is_empty());
    // Shares inside the data folder are refused; outside, three are written.
    let inside = net.data_dir().join("shares");
    let out = net.run(&[
        "admin",
        "recovery",
        "init",
        "--custodians",
        "医師会 事務局長,病院長,ヘルプデスク",
        "--out",
        inside.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    let shares_dir = offline.path().join("shares");
    let out = net.admin(&[
        "recovery",
        "init",
        "--custodians",
        "医師会 事務局長,病院長,ヘルプデスク",
        "--out",
        shares_dir.to_str().unwrap(),
    ]);
    assert!(out.contains("share for 病院長"), "{out}");
    let shares: Vec<PathBuf> = (1..=3)
        .map(|n| shares_dir.join(format!("recovery-share-{n}.txt")))
        .collect();
    // Any two open the key; one alone does not, here or at the command line.
    let recovery = open_shares(&[&shares[0], &shares[2]]).unwrap();
    assert_eq!(
        open_shares(&[&shares[1], &shares[2]])
            .unwrap()
            .fingerprint(),
        recovery.fingerprint()
    );
    assert!(open_shares(&[&shares[1]]).is_err());
    let mut secrets = Vec::new();
    for (n, s) in recovery.secret_material_for_tests().iter().enumerate() {
        secrets.extend(needles(&format!("recovery secret {n}"), s));
    }
    assert_eq!(secrets.len(), 6, "two secrets, three spellings each");
    let in_shares = scan(&shares_dir, &secrets);
    assert!(in_shares.is_empty(), "{in_shares:?}");

    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    // A data folder left open by an older version is tightened at start.
    {
        use std::os::unix::fs::PermissionsExt;
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(net.data_dir(), open).unwrap();
        if net.database_url.is_none() {
            let db = net.data_dir().join("renkei.db");
            std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let server = net.serve(&[]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let rad_password = format!("{rad_pw}-Mine-2026");
    let (status, v) = server
        .post_json(&rad_c, "/api/v1/me/totp", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let totp = v["secret"].as_str().unwrap().to_string();
    let (status, v) = server
        .post_json(
            &rad_c,
            "/api/v1/me/totp/confirm",
            &json!({ "code": pyotp(&totp, 0) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let files = vec![("a.dcm", dicom(7))];
    let item = send_item(
        &server,
        &gp_c,
        json!([{ "account": rad }]),
        PATIENT_ID,
        files,
    )
    .await;
    let found = net.admin(&[
        "deletion-request",
        "find",
        "--facility",
        CLINIC,
        "--patient",
        PATIENT_ID,
    ]);
    assert!(
        found.contains("1 matching item") && found.contains(&item),
        "{found}"
    );
    let loose = too_open(net.data_dir());
    assert!(loose.is_empty(), "wider than 0600/0700: {loose:?}");

    let target = offline.path().join("backup");
    net.admin(&["backup", target.to_str().unwrap()]);
    drop(server);
    let mut keys = secrets.clone();
    keys.extend(needles(
        "blind-index key",
        &key_bytes(&net.data_dir().join("blind-index.key")),
    ));
    keys.extend(needles(
        "second-factor key",
        &key_bytes(&net.data_dir().join("second-factor.key")),
    ));
    let hits = scan(&target, &keys);
    assert!(hits.is_empty(), "key bytes in the backup: {hits:?}");
    assert!(target.join("keys.sealed").exists());
    let loose = too_open(&target);
    assert!(loose.is_empty(), "backup wider than 0600/0700: {loose:?}");

    // A restore with one share is refused and leaves nothing; with two it works.
    let restored = Network::new().await;
    let out = restored.run(&[
        "admin",
        "restore",
        target.to_str().unwrap(),
        "--recovery-key",
        shares[1].to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    assert!(out.stderr.contains("one share alone"), "{}", out.stderr);
    assert!(!restored.data_dir().join("blind-index.key").exists());
    let out = restored.run(&[
        "admin",
        "restore",
        target.to_str().unwrap(),
        "--recovery-key",
        shares[1].to_str().unwrap(),
        "--recovery-key",
        shares[2].to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let server = restored.serve(&[]);
    // TOTP sign-in: the password, then a code from the same secret.
    let client = server.client();
    let r = client
        .post(server.url("/api/v1/session"))
        .json(&json!({ "id": rad, "password": rad_password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let pending: serde_json::Value = r.json().await.unwrap();
    let (status, v) = server
        .post_json(
            &client,
            "/api/v1/session/second-factor",
            &json!({ "pending": pending["pending"], "code": pyotp(&totp, 30) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let r = client
        .get(server.url(&format!("/api/v1/envelopes/{item}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The deletion request finds the patient's item with the restored key.
    let found = restored.admin(&[
        "deletion-request",
        "find",
        "--facility",
        CLINIC,
        "--patient",
        PATIENT_ID,
    ]);
    assert!(
        found.contains("1 matching item") && found.contains(&item),
        "{found}"
    );
    let loose = too_open(restored.data_dir());
    assert!(
        loose.is_empty(),
        "restored folder wider than 0600/0700: {loose:?}"
    );
}

#[tokio::test]
async fn serve_and_the_console_warn_while_there_is_no_recovery_key() {
    let net = Network::new().await;
    let (op, op_pw) = crate::harness::parse_letter(&net.admin(&[
        "user",
        "add",
        "--role",
        "operator",
        "--name",
        "運営 花子",
    ]));
    let server = net.serve(&[]);
    let op_c = net.ready_client(&server, &op, &op_pw).await;
    let page = |c: reqwest::Client, path: &'static str| {
        let url = server.url(path);
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    for path in ["/operator", "/operator/accounts", "/operator/notifications"] {
        let html = page(op_c.clone(), path).await;
        assert!(
            html.contains("id=\"recovery-warning\"") && html.contains("復旧鍵がまだありません"),
            "{path}: {html}"
        );
    }
    let log = std::fs::read_to_string(net.data_dir().join("server.log")).unwrap();
    assert!(log.contains("the network has no recovery key"), "{log}");
    // Once it exists (while serving), the banner goes.
    let offline = tempfile::tempdir().unwrap();
    let out = run_env(
        &net,
        &[
            "admin",
            "recovery",
            "init",
            "--out",
            offline.path().join("r.txt").to_str().unwrap(),
        ],
        &[("RENKEI_RECOVERY_PASSPHRASE", "a long demo passphrase 2026")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let html = page(op_c.clone(), "/operator").await;
    assert!(html.contains("tab-accounts"), "{html}");
    assert!(!html.contains("recovery-warning"), "{html}");
}

#[tokio::test]
async fn a_reset_with_the_recovery_key_tells_the_person_by_mail() {
    let mut smtp = crate::smtp::SmtpSink::new();
    smtp.start();
    let net = Network::new().await;
    net.add_hospital();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (op1, op1_pw) = crate::harness::parse_letter(&net.admin(&[
        "user",
        "add",
        "--role",
        "operator",
        "--name",
        "運営 一郎",
    ]));
    let (op2, op2_pw) = crate::harness::parse_letter(&net.admin(&[
        "user",
        "add",
        "--role",
        "operator",
        "--name",
        "運営 二郎",
    ]));
    let config = net.data_dir().join("renkei.toml");
    std::fs::write(&config, smtp.config()).unwrap();
    let config = config.display().to_string();
    let offline = tempfile::tempdir().unwrap();
    let shares = offline.path().join("shares");
    net.admin(&[
        "recovery",
        "init",
        "--custodians",
        "A,B,C",
        "--out",
        shares.to_str().unwrap(),
    ]);
    let server = net.serve(&["--config", &config]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let r = rad_c
        .put(server.url("/api/v1/me/email"))
        .json(&json!({ "address": "rad@renkei-test.example" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let link = smtp.wait_for(1, std::time::Duration::from_secs(30)).await;
    let body = &link[0].body;
    let at = body.find("token=").unwrap() + "token=".len();
    let token: String = body[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let (status, v) = server
        .post_json(&rad_c, "/api/v1/email/confirm", &json!({ "token": token }))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let share = |n: usize| {
        shares
            .join(format!("recovery-share-{n}.txt"))
            .display()
            .to_string()
    };
    let (s1, s3) = (share(1), share(3));
    let out = run_env(
        &net,
        &[
            "--config",
            &config,
            "--operator",
            &op1,
            "--second-operator",
            &op2,
            "admin",
            "user",
            "reset-password",
            &rad,
            "--recovery-key",
            &s1,
            "--recovery-key",
            &s3,
        ],
        &[
            ("RENKEI_OPERATOR_PASSWORD", &op1_pw),
            ("RENKEI_SECOND_OPERATOR_PASSWORD", &op2_pw),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("every earlier item stays readable"),
        "{}",
        out.stdout
    );
    let mails = smtp.wait_for(2, std::time::Duration::from_secs(60)).await;
    let notice = mails
        .iter()
        .find(|m| m.subject.contains("Your password was reset"))
        .unwrap_or_else(|| {
            panic!(
                "no notice among {:?}",
                mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
            )
        });
    assert!(
        notice.to.contains("rad@renkei-test.example"),
        "{}",
        notice.to
    );
    assert!(
        notice.body.contains("recovery key") && notice.body.contains("two operators"),
        "{}",
        notice.body
    );
    assert!(!notice.body.contains(PATIENT_ID));
    smtp.stop();
}
