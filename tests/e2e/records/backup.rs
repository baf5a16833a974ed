//! A backup taken while items are being sent, restored into a fresh folder
//! (and database) where every item opens.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{FINDINGS, PATIENT_NAME, dicom};
use crate::harness::{CLINIC, Db, HOSPITAL, Network, upload_form, wait_until};

/// The recovery file's passphrase, as `recovery init` and `restore` read it.
const PASSPHRASE: (&str, &str) = ("RENKEI_RECOVERY_PASSPHRASE", "瀬戸内の朝焼け 2026 保管庫");

/// How long the sender may take for the items the backup waits for.
const WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_into_a_fresh_folder_where_every_item_opens() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 次郎");
    // A backup seals its keys to the recovery key: made first, kept offline.
    let backup_dir = tempfile::tempdir().unwrap();
    let recovery = backup_dir.path().join("recovery.txt");
    let out = super::custody::run_env(
        &net,
        &[
            "admin",
            "recovery",
            "init",
            "--out",
            recovery.to_str().unwrap(),
        ],
        &[(PASSPHRASE.0, PASSPHRASE.1)],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let server = net.serve(&[]);
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let to = json!([{ "account": rad }]);
    // Items keep arriving while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sender = {
        let (stop, client, url) = (stop.clone(), gp_c.clone(), server.url(""));
        let acknowledged = acknowledged.clone();
        let to = to.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut n = 0u8;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n = n.wrapping_add(1);
                let envelope = json!({
                    "kind": "reading_request", "to": to, "subject": "負荷", "patient_id": format!("LOAD-{n}"),
                    "patient_name": PATIENT_NAME, "body": FINDINGS,
                    "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
                    "attachments": [{ "name": "x.dcm", "media_type": "application/dicom" }],
                });
                let form = upload_form("envelope", &envelope, vec![("x.dcm", dicom(n))]);
                let r = client
                    .post(format!("{url}/api/v1/envelopes"))
                    .multipart(form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let v: Value = r.json().await.unwrap();
                sent.push(v["id"].as_str().unwrap().to_string());
                acknowledged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            sent
        })
    };
    let acknowledged_now = || acknowledged.load(std::sync::atomic::Ordering::Relaxed);
    // The backup starts once items are stored, and while more are coming.
    wait_until("items sent before the backup", WITHIN, || async {
        (acknowledged_now() >= 2).then_some(())
    })
    .await;
    let target = backup_dir.path().join("b1");
    let out = tokio::task::spawn_blocking({
        let args = net.args();
        let operator = net.operator();
        let target = target.clone();
        move || {
            std::process::Command::new(crate::harness::bin())
                .args(args)
                .envs(operator.map(|id| ("RENKEI_ADMIN_OPERATOR", id)))
                .args(["admin", "backup"])
                .arg(&target)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And items keep coming after it.
    let at_backup_end = acknowledged_now();
    wait_until("an item sent after the backup", WITHIN, || async {
        (acknowledged_now() > at_backup_end).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.await.unwrap();
    assert!(sent.len() >= 3, "only {} items sent", sent.len());
    drop(server);

    // A fresh folder (and database) brought back from the backup.
    let restored = Network::new().await;
    let restore = [
        "admin",
        "restore",
        target.to_str().unwrap(),
        "--recovery-key",
        recovery.to_str().unwrap(),
    ];
    // The recovery file opens the backup's keys only with its passphrase.
    let out = super::custody::run_env(&restored, &restore, &[(PASSPHRASE.0, "not the passphrase")]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    let out = super::custody::run_env(&restored, &restore, &[PASSPHRASE]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let db = Db::open(&restored).await;
    let ids: Vec<String> = db
        .strings("SELECT id FROM envelopes ORDER BY created_at")
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        !ids.is_empty() && ids.len() <= sent.len(),
        "{} of {}",
        ids.len(),
        sent.len()
    );
    assert!(ids.iter().all(|id| sent.contains(id)));
    // Restoring over an existing database is refused.
    let out = super::custody::run_env(&restored, &restore, &[PASSPHRASE]);
    assert_ne!(out.code, Some(0));

    let server = restored.serve(&[]);
    let rad_c2 = server
        .sign_in(&rad, &format!("{rad_pw}-Mine-2026"))
        .await
        .unwrap();
    drop(rad_c);
    for id in &ids {
        let r = rad_c2
            .get(server.url(&format!("/api/v1/envelopes/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{id}");
        let item: Value = r.json().await.unwrap();
        assert_eq!(item["signature"]["status"], "valid", "{id}");
        let r = rad_c2
            .get(server.url(&format!("/api/v1/envelopes/{id}/attachments/0")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{id}");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(&bytes[128..132], b"DICM");
    }
    drop(server);
    let out = restored.admin(&["audit", "verify"]);
    assert!(out.contains("intact"), "{out}");
}
