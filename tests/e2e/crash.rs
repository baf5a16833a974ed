//! Crash safety: 2,000 submissions from concurrent clients while the server is
//! killed with SIGKILL at random moments and restarted. Every acknowledged item
//! must be delivered exactly once to each mailbox; nothing unacknowledged may be
//! left half-made.
//!
//! The server is killed six times during the run; the blobs of unacknowledged
//! submissions are the sweep's to remove.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{CLINIC, HOSPITAL, Network, Server, upload_form, wait_until};

const TARGET: usize = 2000;

/// One submission; `Some(id)` only when the server acknowledged it.
async fn submit(server: &Server, client: &reqwest::Client, to: &str) -> Option<String> {
    let dicom = imaging::sample::with_payload(&[7u8; 2048]);
    let envelope = json!({
        "kind": "reading_request", "to": [{ "account": to }], "subject": "CT",
        "patient_id": "P-1", "patient_name": "香川 太郎", "body": "所見をお願いします", "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": [{ "name": "a.dcm", "media_type": "application/dicom" }],
    });
    let form = upload_form("envelope", &envelope, vec![("a.dcm", dicom)]);
    let r = client
        .post(server.url("/api/v1/envelopes"))
        .multipart(form)
        .send()
        .await
        .ok()?;
    if r.status() != StatusCode::CREATED {
        return None;
    }
    let body: serde_json::Value = r.json().await.ok()?;
    body["id"].as_str().map(str::to_owned)
}

/// Rows of the store, read directly: (envelope ids, queue states, mailbox entries).
type Rows = (
    Vec<String>,
    HashMap<String, String>,
    Vec<(String, String, String)>,
);

async fn rows(net: &Network) -> Rows {
    macro_rules! read {
        ($pool:expr) => {{
            let pool = $pool;
            let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM envelopes")
                .fetch_all(&pool)
                .await
                .unwrap();
            let queue: Vec<(String, String)> =
                sqlx::query_as("SELECT envelope_id, state FROM delivery_queue")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let entries: Vec<(String, String, String)> =
                sqlx::query_as("SELECT envelope_id, principal, folder FROM mailbox_entries")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            (
                ids.into_iter().map(|r| r.0).collect(),
                queue.into_iter().collect(),
                entries,
            )
        }};
    }
    match &net.database_url {
        Some(url) => read!(sqlx::PgPool::connect(url).await.unwrap()),
        None => read!(
            sqlx::SqlitePool::connect(&format!(
                "sqlite://{}",
                net.data_dir().join("renkei.db").display()
            ))
            .await
            .unwrap()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_submissions_survive_sigkill_exactly_once() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    {
        let server = net.serve(&[]);
        net.ready_client(&server, &rad, &rad_pw).await;
        net.ready_client(&server, &gp, &gp_pw).await;
    }
    let gp_pw = format!("{gp_pw}-Mine-2026");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut kills = 0;
    while acked.lock().unwrap().len() < TARGET {
        let server = Arc::new(net.serve(&[]));
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (server, acked, gp, gp_pw, rad) = (
                server.clone(),
                acked.clone(),
                gp.clone(),
                gp_pw.clone(),
                rad.clone(),
            );
            clients.push(tokio::spawn(async move {
                let Some(client) = server.sign_in(&gp, &gp_pw).await else {
                    return;
                };
                while acked.lock().unwrap().len() < TARGET {
                    match submit(&server, &client, &rad).await {
                        Some(id) => acked.lock().unwrap().push(id),
                        None => return, // the server is gone
                    }
                }
            }));
        }
        if kills < 6 {
            let wait = rand::thread_rng().gen_range(400..1500);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            // SIGKILL: no shutdown path runs.
            server.kill();
            kills += 1;
        }
        for c in clients {
            c.await.unwrap();
        }
    }
    assert!(kills >= 5);
    let acked: Vec<String> = acked.lock().unwrap().clone();
    // Clients racing for the last slots may overshoot by a few.
    assert!(acked.len() >= TARGET);
    assert_eq!(
        acked.iter().collect::<HashSet<_>>().len(),
        acked.len(),
        "IDs are unique"
    );

    // A last start drains the queue, including items claimed by a killed worker.
    {
        let server = net.serve(&[]);
        wait_until(
            "the queue to drain after restart",
            Duration::from_secs(60),
            || async {
                let (_, queue, _) = rows(&net).await;
                queue.values().all(|s| s == "done").then_some(())
            },
        )
        .await;
        drop(server);
    }

    let (ids, queue, entries) = rows(&net).await;
    let ids: HashSet<String> = ids.into_iter().collect();
    let mut per_item: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (id, principal, folder) in &entries {
        per_item
            .entry(id.as_str())
            .or_default()
            .push((principal.as_str(), folder.as_str()));
    }
    let rad_key = format!("account:{}", rad.replace('-', ""));
    let gp_key = format!("account:{}", gp.replace('-', ""));
    for id in &acked {
        assert!(ids.contains(id), "acknowledged {id} is stored");
    }
    // Every stored item, acknowledged or committed just before a kill, is whole:
    // queued, delivered, one Inbox entry for the reader and one Sent for the sender.
    for id in &ids {
        assert_eq!(queue.get(id).map(String::as_str), Some("done"), "{id}");
        let mut got = per_item.remove(id.as_str()).unwrap_or_default();
        got.sort();
        let mut want = vec![(rad_key.as_str(), "inbox"), (gp_key.as_str(), "sent")];
        want.sort();
        assert_eq!(got, want, "{id}");
    }
    assert!(per_item.is_empty(), "no entries without an item");

    // Blobs: every stored item has its sealed attachment; after a sweep, nothing
    // else is left (unacknowledged submissions cut off by a kill).
    let out = net.admin(&["blobs", "sweep", "--min-age-secs", "0"]);
    assert!(out.contains("removed"), "{out}");
    let blob_root = net.data_dir().join("blobs");
    let dirs: HashSet<String> = std::fs::read_dir(&blob_root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs, ids, "blob folders are exactly the stored items");
    for id in &ids {
        let mut files: Vec<String> = std::fs::read_dir(blob_root.join(id))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        // The attachment and the sealed intake record.
        assert_eq!(files, vec!["0".to_string(), "1".to_string()], "{id}");
    }
    eprintln!(
        "{} acknowledged, {} stored, {kills} kills",
        acked.len(),
        ids.len()
    );
}
