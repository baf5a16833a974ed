//! `renkei demo`: the demo network writes its accounts file, and every account
//! listed there signs in.
use reqwest::StatusCode;

use crate::harness::{Network, Server};

#[tokio::test]
async fn demo_writes_its_accounts_and_every_one_signs_in() {
    let net = Network::new().await;
    let server = Server::start(&net, "demo", &[]);
    assert!(
        server
            .stdout_head
            .contains("TLS certificate SHA-256 fingerprint"),
        "{}",
        server.stdout_head
    );
    let tsv = std::fs::read_to_string(net.data_dir().join("demo-accounts.tsv")).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next(),
        Some("id\tpassword\trole\tfacility_code\tfacility_name")
    );
    let accounts: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert!(accounts.iter().all(|a| a.len() == 5));
    // A hospital, a clinic and a dental clinic, each with a doctor, a clerk and a
    // liaison account, plus an operator.
    let facilities: std::collections::BTreeSet<&str> = accounts
        .iter()
        .filter(|a| a[2] != "operator")
        .map(|a| a[3])
        .collect();
    assert_eq!(facilities.len(), 3);
    assert!(
        facilities.iter().any(|c| c.as_bytes()[2] == b'3'),
        "a dental clinic"
    );
    for code in &facilities {
        for role in ["doctor", "clerk", "liaison"] {
            assert!(
                accounts.iter().any(|a| a[3] == *code && a[2] == role),
                "{code} {role}"
            );
        }
    }
    assert_eq!(accounts.iter().filter(|a| a[2] == "operator").count(), 1);
    // The demo's recovery key: three shares in the data folder, said plainly.
    for n in 1..=3 {
        let share = net
            .data_dir()
            .join(format!("demo-recovery/recovery-share-{n}.txt"));
        let text = std::fs::read_to_string(&share).unwrap();
        assert!(text.contains("kind: share") && !text.contains("PRIVATE KEY"));
    }
    assert!(
        server.stdout_head.contains("demo-recovery/")
            && server
                .stdout_head
                .contains("a real network never keeps them on the server"),
        "{}",
        server.stdout_head
    );
    // The printed list names every account too.
    for a in &accounts {
        assert!(server.stdout_head.contains(a[0]), "{} not printed", a[0]);
    }

    for a in &accounts {
        let client = server.client();
        let (status, body) = server.post_session(&client, a[0], a[1]).await;
        assert_eq!(status, StatusCode::OK, "{} cannot sign in", a[0]);
        assert_eq!(
            body["must_change_password"], false,
            "demo accounts are ready to use"
        );
        let (_, me) = server.get_answer(&client, "/api/v1/me").await;
        assert_eq!(me["role"], a[2]);
        // Every facility lists equipment to book, so 機器予約 is never empty.
        if a[2] != "operator" {
            let (status, listed) = server
                .get_answer(&client, &format!("/api/v1/facilities/{}/resources", a[3]))
                .await;
            assert_eq!(status, StatusCode::OK, "{listed}");
            let names: Vec<&str> = listed
                .as_array()
                .map(|r| r.iter().filter_map(|x| x["name"].as_str()).collect())
                .unwrap_or_default();
            assert!(!names.is_empty(), "{} lists no equipment: {listed}", a[3]);
        }
    }

    // A second start on the same folder reuses the network and its list.
    drop(server);
    let again = Server::start(&net, "demo", &[]);
    assert_eq!(
        std::fs::read_to_string(net.data_dir().join("demo-accounts.tsv")).unwrap(),
        tsv
    );
    assert!(again.stdout_head.contains(accounts[0][0]));
}
