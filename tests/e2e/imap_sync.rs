//! Mail clients that keep a copy: mbsync (Debian's isync) syncing INBOX, Sent
//! and Archive to a Maildir and back, a QRESYNC resync that sees exactly what
//! changed on the web, and IDLE told of a flag set on the web.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, Server, wait_until};
use crate::imap::imap_port;

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/clients/imap_sync.py"
);

/// A letter from `client` to `to`: its item ID.
async fn letter(server: &Server, client: &reqwest::Client, to: &str, subject: &str) -> String {
    let spec =
        json!({ "kind": "letter", "to": [{ "account": to }], "subject": subject, "body": "本文" });
    server
        .sent_envelope(client, &spec, Vec::<(&str, Vec<u8>)>::new())
        .await
}

async fn folder(server: &Server, client: &reqwest::Client, name: &str) -> Vec<Value> {
    let v = server
        .get_json(client, &format!("/api/v1/mailbox/{name}"))
        .await;
    v.as_array().cloned().unwrap_or_default()
}

async fn entry(server: &Server, client: &reqwest::Client, name: &str, id: &str) -> Value {
    folder(server, client, name)
        .await
        .into_iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {name}"))
}

async fn set_flags(server: &Server, client: &reqwest::Client, id: &str, flags: Value) {
    let (status, body) = server
        .post_json(client, &format!("/api/v1/envelopes/{id}/flags"), &flags)
        .await;
    assert!(status.is_success(), "flags {flags}: {status} {body}");
}

async fn delivered(server: &Server, client: &reqwest::Client, n: usize) {
    wait_until(
        &format!("{n} items in the Inbox"),
        Duration::from_secs(20),
        || async { (folder(server, client, "inbox").await.len() >= n).then_some(()) },
    )
    .await;
}

fn script(net: &Network, port: u16, user: &str, password: &str, args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(CLIENT)
        .arg(port.to_string())
        .arg(net.data_dir().join("tls-cert.pem"))
        .args([user, password])
        .args(args);
    c
}

fn run_script(net: &Network, port: u16, user: &str, password: &str, args: &[&str]) -> Value {
    let out = script(net, port, user, password, args)
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

/// The Maildir's messages: (folder, file name) with the text of each.
fn maildir(root: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in ["INBOX", "Sent", "Archive"] {
        for sub in ["cur", "new"] {
            let Ok(dir) = std::fs::read_dir(root.join(f).join(sub)) else {
                continue;
            };
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                out.push((f.to_string(), name, text));
            }
        }
    }
    out.sort();
    out
}

/// The Maildir file of the message with `subject`: (folder, path).
fn file_of(root: &Path, subject: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (f, name, text) in maildir(root) {
        if text.contains(&format!("Subject: {subject}\r\n"))
            || text.contains(&format!("Subject: {subject}\n"))
        {
            for sub in ["cur", "new"] {
                let p = root.join(&f).join(sub).join(&name);
                if p.exists() {
                    out.push((f.clone(), p));
                }
            }
        }
    }
    out
}

/// Maildir flags of a file name (`…:2,FS`).
fn maildir_flags(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once(":2,"))
        .map(|(_, f)| f.to_string())
        .unwrap_or_default()
}

struct Mbsync {
    config: PathBuf,
    root: PathBuf,
}

impl Mbsync {
    fn new(net: &Network, port: u16, user: &str, password: &str) -> Self {
        let dir = net.data_dir().join("mbsync");
        let root = dir.join("mail");
        std::fs::create_dir_all(&root).unwrap();
        let config = dir.join("mbsyncrc");
        let cert = net.data_dir().join("tls-cert.pem");
        std::fs::write(
            &config,
            format!(
                "IMAPAccount renkei\nHost localhost\nPort {port}\nUser {user}\nPass {password}\n\
                 SSLType IMAPS\nCertificateFile {cert}\nAuthMechs LOGIN\n\n\
                 IMAPStore far\nAccount renkei\n\n\
                 MaildirStore near\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n\
                 Channel renkei\nFar :far:\nNear :near:\nPatterns INBOX Sent Archive\n\
                 Create Near\nExpunge Both\nSyncState *\nSync All\n",
                cert = cert.display(),
                root = root.display(),
            ),
        )
        .unwrap();
        Self { config, root }
    }

    /// One `mbsync -a` that must succeed without an error: its output.
    fn run(&self) -> String {
        let out = Command::new("mbsync")
            .arg("-c")
            .arg(&self.config)
            .args(["-V", "-a"])
            .stdin(Stdio::null())
            .output()
            .expect("mbsync (Debian's isync) is installed");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "mbsync failed:\n{text}");
        assert!(
            !text.contains("Error") && !text.contains("Warning"),
            "mbsync:\n{text}"
        );
        text
    }
}

/// Web-side state of the reader's three folders: (folder, id, seen, flagged).
async fn web_state(server: &Server, client: &reqwest::Client) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    for f in ["inbox", "sent", "archive"] {
        for e in folder(server, client, f).await {
            out.push((
                f.to_string(),
                e["id"].as_str().unwrap_or_default().to_string(),
                e["seen"] == true,
                e["flagged"] == true,
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn mbsync_syncs_inbox_sent_and_archive_both_ways() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let password = format!("{rad_pw}-Mine-2026");
    let mut ids = Vec::new();
    for s in ["sync-a", "sync-b", "sync-c", "sync-d"] {
        ids.push(letter(&server, &gp_c, &rad, s).await);
    }
    letter(&server, &rad_c, &gp, "sync-sent").await;
    delivered(&server, &rad_c, 4).await;
    // One archived on the web before the first sync.
    set_flags(&server, &rad_c, &ids[3], json!({ "archived": true })).await;

    let sync = Mbsync::new(&net, port, &rad, &password);
    sync.run();
    let count = |f: &str| {
        maildir(&sync.root)
            .iter()
            .filter(|(folder, _, _)| folder == f)
            .count()
    };
    assert_eq!(
        (count("INBOX"), count("Sent"), count("Archive")),
        (3, 1, 1),
        "{:?}",
        maildir(&sync.root)
    );
    assert!(file_of(&sync.root, "sync-sent")[0].0 == "Sent");
    assert!(file_of(&sync.root, "sync-d")[0].0 == "Archive");
    // Nothing changed: the second run changes nothing on either side.
    let (files, web) = (maildir(&sync.root), web_state(&server, &rad_c).await);
    sync.run();
    assert_eq!(
        maildir(&sync.root),
        files,
        "the second run changed the Maildir"
    );
    assert_eq!(
        web_state(&server, &rad_c).await,
        web,
        "the second run changed Renkei"
    );

    // Flags near → far: sync-a read and flagged in the Maildir.
    let (_, a) = file_of(&sync.root, "sync-a").remove(0);
    let base = a.file_name().unwrap().to_str().unwrap();
    let base = base.split(":2,").next().unwrap();
    let inbox_cur = sync.root.join("INBOX").join("cur");
    std::fs::rename(&a, inbox_cur.join(format!("{base}:2,FS"))).unwrap();
    // Flags far → near: sync-b flagged on the web.
    set_flags(&server, &rad_c, &ids[1], json!({ "flagged": true })).await;
    sync.run();
    let a = entry(&server, &rad_c, "inbox", &ids[0]).await;
    assert_eq!(
        (a["seen"].clone(), a["flagged"].clone()),
        (json!(true), json!(true)),
        "{a}"
    );
    let (_, b) = file_of(&sync.root, "sync-b").remove(0);
    assert!(maildir_flags(&b).contains('F'), "{}", b.display());
    assert!(!maildir_flags(&b).contains('S'), "{}", b.display());

    // Archiving by MOVE (a client's Archive button): mbsync follows it.
    let moved = run_script(
        &net,
        port,
        &rad,
        &password,
        &["move", "INBOX", "sync-c", "Archive"],
    );
    let answer = moved["move"].as_array().unwrap();
    assert!(
        answer
            .iter()
            .any(|l| l.as_str().unwrap().contains("[COPYUID 1 ")),
        "{moved}"
    );
    assert!(
        answer.last().unwrap().as_str().unwrap().contains(" OK "),
        "{moved}"
    );
    assert!(
        answer
            .iter()
            .any(|l| l.as_str().unwrap().ends_with(" EXPUNGE")),
        "{moved}"
    );
    entry(&server, &rad_c, "archive", &ids[2]).await;
    sync.run();
    let c = file_of(&sync.root, "sync-c");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "Archive", "{c:?}");
    let (files, web) = (maildir(&sync.root), web_state(&server, &rad_c).await);
    sync.run();
    assert_eq!(
        maildir(&sync.root),
        files,
        "the second run changed the Maildir"
    );
    assert_eq!(
        web_state(&server, &rad_c).await,
        web,
        "the second run changed Renkei"
    );

    // Renkei's meaning of MOVE: INBOX to Sent is refused, saying why; back
    // from Archive to INBOX unarchives (and mbsync follows).
    let last_line = |r: &Value| {
        r["move"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let refused = run_script(
        &net,
        port,
        &rad,
        &password,
        &["move", "INBOX", "sync-a", "Sent"],
    );
    let last = last_line(&refused);
    assert!(
        last.contains(" NO ") && last.contains("archive them instead"),
        "{refused}"
    );
    entry(&server, &rad_c, "inbox", &ids[0]).await;
    let back = run_script(
        &net,
        port,
        &rad,
        &password,
        &["move", "Archive", "sync-c", "INBOX"],
    );
    assert!(last_line(&back).contains(" OK "), "{back}");
    entry(&server, &rad_c, "inbox", &ids[2]).await;
    sync.run();
    let c = file_of(&sync.root, "sync-c");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "INBOX", "{c:?}");

    // What else a client meets: special uses in LIST, LIST's reference, no
    // Trash to create (it is Archive), UNCHANGEDSINCE, COPY to Trash archives.
    let r = run_script(
        &net,
        port,
        &rad,
        &password,
        &["extras", "sync-b", "sync-a", "sync-c"],
    );
    let lines = |k: &str| -> Vec<String> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let all = lines("list_all");
    assert!(
        all.iter()
            .any(|l| l.contains("\\Sent") && l.ends_with("Sent")),
        "{r}"
    );
    assert!(
        all.iter()
            .any(|l| l.contains("\\Archive") && l.ends_with("Archive")),
        "{r}"
    );
    let by_ref = lines("list_inbox_ref");
    assert_eq!(by_ref.len(), 2, "only INBOX under the reference INBOX: {r}");
    assert!(by_ref[0].ends_with("INBOX"), "{r}");
    assert!(
        lines("create_trash")[0].contains("NO [ALREADYEXISTS]"),
        "{r}"
    );
    assert_eq!(lines("enable")[0], "* ENABLED CONDSTORE", "{r}");
    let numbers = |line: &str, head: &str| -> Vec<u32> {
        line.strip_prefix(head)
            .unwrap_or_else(|| panic!("{line}"))
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let by_subject: Vec<u32> = serde_json::from_value(r["uids"].clone()).unwrap();
    assert_eq!(by_subject.len(), 3, "{r}");
    let caps = r["capabilities"].to_string();
    assert!(
        caps.contains("\"ESEARCH\"") && caps.contains("\"SORT\""),
        "{r}"
    );
    // ESEARCH: one line naming the command's tag, the UIDs as min, max, count and set.
    let esearch = lines("esearch");
    let (lo, hi) = (
        by_subject.iter().min().unwrap(),
        by_subject.iter().max().unwrap(),
    );
    assert!(
        esearch[0].starts_with("* ESEARCH (TAG \"s")
            && esearch[0].contains(&format!(" UID MIN {lo} MAX {hi} COUNT 3 ALL ")),
        "{r}"
    );
    assert!(esearch[1].contains(" OK "), "{r}");
    let none = lines("esearch_none");
    assert!(
        none[0].starts_with("* ESEARCH (TAG ") && none[0].ends_with(") COUNT 0"),
        "nothing found: only COUNT 0: {r}"
    );
    assert!(
        lines("esearch_default")[0].ends_with(") ALL 1:3"),
        "RETURN () means ALL, message numbers: {r}"
    );
    assert_eq!(
        numbers(&lines("sort")[0], "* SORT"),
        by_subject,
        "REVERSE SUBJECT: {r}"
    );
    let expunge = lines("uid_expunge");
    assert_eq!(
        expunge.iter().filter(|l| l.ends_with(" EXPUNGE")).count(),
        1,
        "only the named one: {r}"
    );
    assert!(
        lines("store_stale")
            .last()
            .unwrap()
            .contains("OK [MODIFIED "),
        "{r}"
    );
    let fresh = lines("store_fresh");
    let modseq = r["modseq"].as_u64().unwrap();
    let new_modseq: u64 = fresh[0]
        .split("MODSEQ (")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{r}"));
    assert!(new_modseq > modseq, "{r}");
    assert!(fresh.last().unwrap().contains(" OK "), "{r}");
    let copy = lines("copy_trash");
    assert!(copy.last().unwrap().contains("OK [COPYUID 1 "), "{r}");
    assert!(
        lines("noop_after_copy")
            .iter()
            .any(|l| l.ends_with(" EXPUNGE")),
        "the copy left INBOX (archived): {r}"
    );
    entry(&server, &rad_c, "archive", &ids[1]).await;
    entry(&server, &rad_c, "archive", &ids[0]).await;
    entry(&server, &rad_c, "inbox", &ids[2]).await;
}

#[tokio::test]
async fn qresync_sees_exactly_the_changes_made_on_the_web() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let password = format!("{rad_pw}-Mine-2026");
    let subjects = ["q-1", "q-2", "q-3", "q-4"];
    let mut ids = Vec::new();
    for s in subjects {
        ids.push(letter(&server, &gp_c, &rad, s).await);
    }
    delivered(&server, &rad_c, 4).await;

    let mut args = vec!["know"];
    args.extend(subjects);
    let known = run_script(&net, port, &rad, &password, &args);
    assert!(
        known["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("QRESYNC")),
        "{known}"
    );
    let uids: Vec<String> = known["uids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert_eq!(uids.len(), 4, "{known}");
    let modseq = known["highestmodseq"].as_u64().unwrap();

    // On the web: q-2 flagged, q-3 read, q-4 archived; q-1 untouched.
    set_flags(&server, &rad_c, &ids[1], json!({ "flagged": true })).await;
    set_flags(&server, &rad_c, &ids[2], json!({ "seen": true })).await;
    set_flags(&server, &rad_c, &ids[3], json!({ "archived": true })).await;

    let r = run_script(
        &net,
        port,
        &rad,
        &password,
        &["resync", &modseq.to_string(), &uids.join(",")],
    );
    let want = json!({ uids[1].clone(): ["\\Flagged"], uids[2].clone(): ["\\Seen"] });
    let gone = json!([format!("* VANISHED (EARLIER) {}", uids[3])]);
    assert_eq!(r["select_fetches"], want, "{r}");
    assert_eq!(r["select_vanished"], gone, "{r}");
    assert_eq!(r["fetch_fetches"], want, "{r}");
    assert_eq!(r["fetch_vanished"], gone, "{r}");
    assert!(r["highestmodseq"].as_u64().unwrap() > modseq, "{r}");
    assert_eq!(r["nothing_since"], json!({}), "{r}");
}

#[tokio::test]
async fn idle_is_told_of_a_flag_set_on_the_web_within_a_second() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_pw) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_pw) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let gp_c = net.ready_client(&server, &gp, &gp_pw).await;
    let rad_c = net.ready_client(&server, &rad, &rad_pw).await;
    let password = format!("{rad_pw}-Mine-2026");
    let id = letter(&server, &gp_c, &rad, "idle-1").await;
    delivered(&server, &rad_c, 1).await;

    let mut child = script(&net, port, &rad, &password, &["idle"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap() == "IDLING" {
            break;
        }
    }
    set_flags(&server, &rad_c, &id, json!({ "flagged": true })).await;
    let acked_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    let r: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    let news = r["idle_news"].as_array().unwrap();
    let fetch = news.last().unwrap().as_str().unwrap();
    assert!(
        fetch.starts_with("* 1 FETCH") && fetch.contains("\\Flagged"),
        "{r}"
    );
    let waited = r["fetch_at"].as_f64().unwrap() - acked_at;
    assert!(
        waited < 1.0,
        "IDLE heard of the flag {waited:.2} s after it was set"
    );
    assert!(r["idle_done"].as_str().unwrap().contains(" OK"), "{r}");
}
