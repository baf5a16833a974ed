//! Trusted time (MHLW ch. 17) on the real binary: a server whose time source
//! says the clock is not synchronised warns on the operator console (Japanese,
//! English with `?lang=en`), in its log and once on the audit trail, and says
//! so again when the clock is back; a synchronised server says nothing; and on
//! PostgreSQL, two nodes whose clocks differ by five seconds (libfaketime moves
//! one) both report the disagreement.

use std::time::Duration;

use crate::harness::{Db, Network, Server, parse_letter, wait_until};

/// Signs the network's operator in (a fresh account) on `server`.
async fn operator(net: &Network, server: &Server) -> reqwest::Client {
    let (op, op_pw) =
        parse_letter(&net.admin(&["user", "add", "--role", "operator", "--name", "運用 太郎"]));
    net.ready_client(server, &op, &op_pw).await
}

async fn console(server: &Server, client: &reqwest::Client, query: &str) -> String {
    let r = client
        .get(server.url(&format!("/operator{query}")))
        .send()
        .await
        .expect("console");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "GET /operator{query}");
    r.text().await.expect("page")
}

fn log(net: &Network) -> String {
    std::fs::read_to_string(net.data_dir().join("server.log")).unwrap_or_default()
}

/// The audit trail's clock entries: `(item, detail)` of each `time_sync` line.
fn clock_entries(net: &Network) -> Vec<String> {
    net.audit_export()
        .lines()
        .filter(|l| l.contains(",time_sync,"))
        .map(str::to_string)
        .collect()
}

/// Waits until the node's clock row has been written again `checks` times
/// after now (one check a second): the server looked at its clock meanwhile.
async fn checks_pass(db: &Db, checks: i64) {
    let seen = "SELECT COALESCE(MAX(seen_at), 0) FROM node_clocks";
    let start = wait_until("a first clock check", Duration::from_secs(30), || async {
        let at = db.count(seen).await;
        (at > 0).then_some(at)
    })
    .await;
    wait_until("further clock checks", Duration::from_secs(30), || async {
        (db.count(seen).await >= start + checks * 1000 - 500).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsynchronised_clock_is_reported_once_and_its_return_too() {
    let net = Network::new().await;
    net.set_time_synchronised(false);
    let server = net.serve(&["--time-check-secs", "1"]);
    let op = operator(&net, &server).await;
    let db = Db::open(&net).await;

    let page = wait_until(
        "the console's clock warning",
        Duration::from_secs(30),
        || async {
            let page = console(&server, &op, "").await;
            page.contains("id=\"clock-warning\"").then_some(page)
        },
    )
    .await;
    assert!(
        page.contains("このサーバーの時刻が同期されていません"),
        "{page}"
    );
    let en = console(&server, &op, "?lang=en").await;
    assert!(
        en.contains("This server&#39;s clock is not synchronised")
            || en.contains("This server's clock is not synchronised"),
        "{en}"
    );
    let text = log(&net);
    assert!(
        text.contains("the system clock cannot be trusted") && text.contains("unsynchronised"),
        "{text}"
    );

    // Three more checks find the same state: still one entry, one warning.
    checks_pass(&db, 3).await;
    let entries = clock_entries(&net);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].contains(",system,"), "{}", entries[0]);
    assert!(entries[0].contains(",unsynchronised,"), "{}", entries[0]);
    assert_eq!(
        log(&net)
            .matches("the system clock cannot be trusted")
            .count(),
        1
    );

    // The clock is synchronised again: the warning goes, the trail says so.
    net.set_time_synchronised(true);
    wait_until("the warning to go", Duration::from_secs(30), || async {
        (!console(&server, &op, "").await.contains("clock-warning")).then_some(())
    })
    .await;
    let entries = clock_entries(&net);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[1].contains(",synchronised,"), "{}", entries[1]);
    assert!(log(&net).contains("the system clock is trusted again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronised_clock_is_quiet() {
    let net = Network::new().await;
    let server = net.serve(&["--time-check-secs", "1"]);
    let op = operator(&net, &server).await;
    let db = Db::open(&net).await;
    checks_pass(&db, 3).await;
    let page = console(&server, &op, "").await;
    assert!(!page.contains("clock-warning"), "{page}");
    assert!(clock_entries(&net).is_empty());
    assert!(!log(&net).contains("system clock"), "{}", log(&net));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_five_seconds_apart_both_report_it() {
    let a = Network::new().await;
    if a.database_url.is_none() {
        eprintln!("nodes share a database only on PostgreSQL; this run uses SQLite");
        return;
    }
    let b = a.second_node();
    b.set_clock(Some("+5"));
    let node_a = a.serve(&["--time-check-secs", "1"]);
    let op = operator(&a, &node_a).await;
    let _node_b = b.serve(&["--time-check-secs", "1"]);

    let page = wait_until(
        "node A's clock warning",
        Duration::from_secs(30),
        || async {
            let page = console(&node_a, &op, "").await;
            page.contains("id=\"clock-warning\"").then_some(page)
        },
    )
    .await;
    assert!(page.contains("サーバー間の時刻が"), "{page}");
    let en = console(&node_a, &op, "?lang=en").await;
    assert!(
        en.contains("The servers&#39; clocks differ by")
            || en.contains("The servers' clocks differ by"),
        "{en}"
    );

    // Each node recorded the disagreement once, as it measured it (about 5 s).
    let entries = wait_until("both nodes' entries", Duration::from_secs(30), || async {
        let entries = clock_entries(&a);
        (entries.len() >= 2).then_some(entries)
    })
    .await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    for e in &entries {
        assert!(
            e.contains(",nodes_disagree:4.") || e.contains(",nodes_disagree:5."),
            "{e}"
        );
    }
    for net in [&a, &b] {
        let text = log(net);
        assert!(
            text.contains("the system clock cannot be trusted") && text.contains("nodes_disagree"),
            "{text}"
        );
    }
}
