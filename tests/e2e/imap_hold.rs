//! Mail-client connections that end when they should, with Python's imaplib:
//! a client that never signs in is dropped at the sign-in deadline counted
//! from the connection however often it sends NOOP; only a few connections
//! per address may wait to sign in, and they free their place as they sign
//! in; an IDLE of an account that is then locked ends with BYE within a
//! minute (here within the configured recheck of one second, plus the lock).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{HOSPITAL, Network};
use crate::imap::imap_port;

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/clients/imap_session_end.py"
);

fn client(net: &Network, port: u16, args: &[&str]) -> std::process::Child {
    Command::new("python3")
        .arg(CLIENT)
        .arg(port.to_string())
        .arg(net.data_dir().join("tls-cert.pem"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3")
}

fn lines(child: &mut std::process::Child) -> impl Iterator<Item = Value> + use<> {
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|_| panic!("not JSON: {l}")))
}

/// A network with the hospital, one doctor whose password is their own, and
/// IMAP with short windows (`login_secs` to sign in, 3 waiting per address, a
/// recheck of an idling session every second).
async fn start(login_secs: u64) -> (Network, crate::harness::Server, String, String) {
    let net = Network::new().await;
    net.add_hospital();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let config = net.data_dir().join("renkei.toml");
    std::fs::write(
        &config,
        format!("[imap]\nlogin_timeout_secs = {login_secs}\nmax_unauthenticated_per_address = 3\nsession_recheck_secs = 1\n"),
    )
    .unwrap();
    let server = net.serve(&[
        "--config",
        config.to_str().unwrap(),
        "--imap-listen",
        "127.0.0.1:0",
    ]);
    let _ = net.ready_client(&server, &id, &issued).await;
    let password = format!("{issued}-Mine-2026");
    (net, server, id, password)
}

#[tokio::test]
async fn noop_does_not_hold_a_connection_that_never_signs_in() {
    let (net, server, _, _) = start(3).await;
    let mut c = client(&net, imap_port(&server), &["noop"]);
    let v = lines(&mut c).last().unwrap();
    let _ = c.wait();
    let after = v["closed_after_s"].as_f64().unwrap();
    assert!((2.5..6.0).contains(&after), "{v}");
    assert!(
        v["noops"].as_u64().unwrap() >= 4,
        "NOOPs were answered meanwhile: {v}"
    );
    assert!(
        v["bye"]
            .as_str()
            .unwrap_or_default()
            .contains("sign-in took too long"),
        "{v}"
    );
}

#[tokio::test]
async fn a_few_connections_wait_to_sign_in_per_address_and_free_their_place_as_they_do() {
    // Time enough for three sign-ins one after the other on a busy machine.
    let (net, server, id, password) = start(30).await;
    let mut c = client(&net, imap_port(&server), &["crowd", &id, &password, "5"]);
    let got: Vec<Value> = lines(&mut c).collect();
    let _ = c.wait();
    assert_eq!(got[0]["greeted"], 3, "{got:?}");
    assert_eq!(
        got[1]["greeted_after"], 3,
        "signed-in ones gave their place back: {got:?}"
    );
}

#[tokio::test]
async fn idle_ends_with_bye_once_the_account_is_locked() {
    let (net, server, id, password) = start(30).await;
    let mut c = client(&net, imap_port(&server), &["idle", &id, &password]);
    let mut out = lines(&mut c);
    assert_eq!(out.next().unwrap()["idling"], true);
    std::thread::sleep(Duration::from_secs(2));
    let locked = Instant::now();
    net.admin(&["user", "lock", &id, "--reason", "端末の紛失"]);
    let v = out.next().unwrap();
    let _ = c.wait();
    let bye = v["bye"].as_str().unwrap_or_default();
    assert!(bye.contains("session has ended"), "{v}");
    assert!(locked.elapsed() < Duration::from_secs(60), "{v}");
    assert!(
        locked.elapsed() < Duration::from_secs(10),
        "within the recheck: {v}"
    );
}
