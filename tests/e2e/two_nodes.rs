//! Two server processes on one PostgreSQL database work one queue: a 2,000-item
//! burst is delivered with no duplicates and no loss, each item by exactly one node.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::harness::{CLINIC, Db, HOSPITAL, Network, Server, no_files, wait_until};

const BURST: usize = 2000;

async fn submit(server: &Server, client: &reqwest::Client, to: &str) -> String {
    let envelope = json!({
        "kind": "share", "to": [{ "account": to }], "subject": "経過報告",
        "patient_id": "P-2", "patient_name": "讃岐 花子", "body": "経過は良好です", "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
    });
    server.sent_envelope(client, &envelope, no_files()).await
}

fn delivered_lines(net: &Network) -> Vec<String> {
    std::fs::read_to_string(net.data_dir().join("server.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("delivered") && l.contains("envelope="))
        .filter_map(|l| l.split("envelope=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|id| id.trim_matches('"').to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_queue_without_duplicates_or_loss() {
    let a = Network::new().await;
    if a.database_url.is_none() {
        eprintln!("two nodes share a database only on PostgreSQL; this run uses SQLite");
        return;
    }
    let b = a.second_node();
    a.add_hospital_and_clinic();
    let (rad, rad_pw) = a.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (gp, gp_pw) = a.add_user("doctor", CLINIC, "琴平 健");
    let node_a = a.serve(&[]);
    let node_b = b.serve(&[]);
    a.ready_client(&node_a, &rad, &rad_pw).await;
    a.ready_client(&node_a, &gp, &gp_pw).await;
    let gp_pw = format!("{gp_pw}-Mine-2026");

    // Half the burst through each node.
    let mut tasks = Vec::new();
    for (node, share) in [(&node_a, BURST / 2), (&node_b, BURST / 2)] {
        for _ in 0..2 {
            let client = node.sign_in(&gp, &gp_pw).await.expect("sender signs in");
            let (rad, n) = (rad.clone(), share / 2);
            let ids = {
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(submit(node, &client, &rad).await);
                }
                ids
            };
            tasks.push(ids);
        }
    }
    let submitted: Vec<String> = tasks.into_iter().flatten().collect();
    assert_eq!(submitted.len(), BURST);

    // Both workers drain the queue.
    wait_until(
        "both nodes' delivery logs",
        Duration::from_secs(60),
        || async { (delivered_lines(&a).len() + delivered_lines(&b).len() >= BURST).then_some(()) },
    )
    .await;
    // A duplicate delivery would have been made by the time no queue entry
    // is left to deliver.
    let db = Db::open(&a).await;
    wait_until("the queue to drain", Duration::from_secs(60), || async {
        let left = db
            .count("SELECT COUNT(*) FROM delivery_queue WHERE state <> 'done'")
            .await;
        (left == 0).then_some(())
    })
    .await;
    let by_a = delivered_lines(&a);
    let by_b = delivered_lines(&b);
    let mut count: HashMap<String, usize> = HashMap::new();
    for id in by_a.iter().chain(by_b.iter()) {
        *count.entry(id.clone()).or_default() += 1;
    }
    for id in &submitted {
        assert_eq!(
            count.get(id),
            Some(&1),
            "{id} delivered exactly once across both nodes"
        );
    }
    assert_eq!(count.len(), BURST);
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "both nodes worked the queue ({} / {})",
        by_a.len(),
        by_b.len()
    );

    // And the reader's Inbox holds every item once.
    let reader = node_b
        .sign_in(&rad, &format!("{rad_pw}-Mine-2026"))
        .await
        .expect("reader signs in");
    let inbox: Vec<serde_json::Value> = reader
        .get(node_b.url("/api/v1/mailbox/inbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox.len(), BURST);
    eprintln!(
        "node A delivered {}, node B delivered {}",
        by_a.len(),
        by_b.len()
    );
    // Both nodes appended to one audit chain (every send); it did not fork.
    let out = a.admin(&["audit", "verify"]);
    assert!(out.contains("audit chain intact"), "{out}");
}
