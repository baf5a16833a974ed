//! Issue 17, "every item signs its place", as a rogue database administrator
//! would try it: with write access to the database only, a signed report is
//! moved into another patient's thread, one item's sealed body is copied over
//! another's, a decline is relabelled as a report, an item's kind, time and
//! recipients are rewritten and a step row is deleted. Each shows under its own
//! name through the API (422 with the code, no content), on the thread page in
//! Chromium (red, content withheld, the gap in the history shown) and over
//! IMAP (`X-Renkei-Signature`). An item re-sealed the way items were sealed
//! before places were signed still opens, labelled "older format".

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, Db, HOSPITAL, Network, Server, run_browser};
use crate::imap::{imap_port, inbox_delivered};

const FINDINGS_KO: &str = "甲さんの所見：右上葉に8mmの結節";
const BODY_Y: &str = "Yの本文：心電図の所見をお送りします";
const OLD_BODY: &str = "旧形式で封印された連絡";

const IMAP_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/clients/imap_signatures.py"
);

async fn request(server: &Server, gp: &reqwest::Client, to: &str, patient: &str) -> String {
    let spec = json!({
        "kind": "reading_request",
        "to": { "account": to },
        "subject": format!("胸部CT 読影依頼 {patient}"),
        "patient_id": patient,
        "patient_name": format!("患者 {patient}"),
        "body": "CT の読影をお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
    });
    server
        .opened_thread(gp, &spec, Vec::<(&str, Vec<u8>)>::new())
        .await
}

async fn message(
    server: &Server,
    gp: &reqwest::Client,
    to: &str,
    subject: &str,
    body: &str,
) -> String {
    let spec =
        json!({ "kind": "letter", "to": [{ "account": to }], "subject": subject, "body": body });
    server
        .sent_envelope(gp, &spec, Vec::<(&str, Vec<u8>)>::new())
        .await
}

async fn step(server: &Server, rad: &reqwest::Client, thread: &str, spec: Value) -> String {
    let (s, body) = server
        .take_step(rad, thread, &spec, Vec::<(&str, Vec<u8>)>::new())
        .await;
    assert!(s.is_success(), "step {spec}: {body}");
    body["envelope_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the step's envelope ID: {body}"))
        .to_string()
}

/// The IDs of a thread's steps, in order, as the API lists them.
async fn step_ids(server: &Server, c: &reqwest::Client, thread: &str) -> Vec<String> {
    let (s, v) = server
        .get_answer(c, &format!("/api/v1/threads/{thread}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// `GET path` must be refused with 422 and `code`, and carry none of `hidden`.
async fn refused(server: &Server, c: &reqwest::Client, path: &str, code: &str, hidden: &[&str]) {
    let (s, v) = server.get_answer(c, path).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
    assert_eq!(v["error"], code, "{path}: {v}");
    assert!(
        !v["message_ja"].as_str().unwrap_or_default().is_empty(),
        "{v}"
    );
    for h in hidden {
        assert!(!v.to_string().contains(h), "{path} leaks {h}: {v}");
    }
}

/// Re-seals item `id` as items were sealed before places were signed (the
/// same content, signature and key slots, no place), with the sender's own key
/// unlocked from the database by their password.
async fn reseal_without_place(db: &Db, id: &str, sender: &str, password: &str) {
    let locked = db
        .bytes(&format!(
            "SELECT locked_key FROM account_keys WHERE account_id = '{}'",
            sender.replace('-', "")
        ))
        .await;
    let key = renkei_crypto::LockedKey::from_bytes(locked)
        .unlock(password.as_bytes())
        .unwrap();
    let body = db
        .bytes(&format!("SELECT body FROM envelopes WHERE id = '{id}'"))
        .await;
    let opened = renkei_crypto::open(
        &renkei_crypto::SealedEnvelope::from_bytes(body),
        &key,
        |_| Some(key.cert()),
    )
    .unwrap();
    assert!(opened.inner.place.is_some(), "sealed with a place today");
    let mut certs = Vec::new();
    for p in db
        .strings(&format!(
            "SELECT principal FROM envelope_slots WHERE envelope_id = '{id}'"
        ))
        .await
    {
        let account = p.unwrap().strip_prefix("account:").unwrap().to_string();
        let cert = db
            .bytes(&format!(
                "SELECT cert FROM account_keys WHERE account_id = '{account}'"
            ))
            .await;
        certs.push(renkei_crypto::Certificate::from_bytes(&cert).unwrap());
    }
    let draft = renkei_crypto::Draft {
        headers: opened.inner.headers.clone(),
        sender: opened.inner.sender.clone(),
        body: opened.inner.body.clone(),
        fields: opened.inner.fields.clone(),
        place: None,
    };
    let refs: Vec<&renkei_crypto::Certificate> = certs.iter().collect();
    let sealed = renkei_crypto::seal(&key, &refs, &draft, Vec::new()).unwrap();
    db.set_body(id, sealed.envelope.as_bytes()).await;
}

#[tokio::test]
async fn rows_moved_relabelled_redated_readdressed_or_deleted_show_as_tampered() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (col, col_issued) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let gp_c = net.ready_client(&server, &gp, &gp_issued).await;
    let rad_c = net.ready_client(&server, &rad, &rad_issued).await;
    let _ = net.ready_client(&server, &col, &col_issued).await;
    let pw = |issued: &str| format!("{issued}-Mine-2026");

    // Patient 甲's thread gets a report; 乙's and the others stay as sent.
    let ko = request(&server, &gp_c, &rad, "KO-0001").await;
    let otsu = request(&server, &gp_c, &rad, "OTSU-0002").await;
    let declined = request(&server, &gp_c, &rad, "HEI-0003").await;
    let redated = request(&server, &gp_c, &rad, "TEI-0004").await;
    let cut = request(&server, &gp_c, &rad, "BO-0005").await;
    let threads = [&ko, &otsu, &declined, &redated, &cut];
    server
        .threads_delivered(&gp_c, &threads.map(String::as_str))
        .await;
    for t in threads {
        step_ids(&server, &rad_c, t).await; // opened: the receipt a report needs
    }
    step(&server, &rad_c, &ko, json!({ "step": "accept" })).await;
    let report = step(
        &server,
        &rad_c,
        &ko,
        json!({ "step": "report", "fields": { "findings": FINDINGS_KO, "impression": "経過観察" } }),
    )
    .await;
    let decline = step(
        &server,
        &rad_c,
        &declined,
        json!({ "step": "decline", "fields": { "reason": "専門外のため" } }),
    )
    .await;
    let accepted = step(&server, &rad_c, &cut, json!({ "step": "accept" })).await;
    let x = message(&server, &gp_c, &rad, "連絡X", "Xの本文").await;
    let y = message(&server, &gp_c, &rad, "連絡Y", BODY_Y).await;
    let readdressed = message(&server, &gp_c, &rad, "連絡Z", "Zの本文").await;
    let rekinded = message(&server, &gp_c, &rad, "連絡W", "Wの本文").await;
    let old = message(&server, &gp_c, &rad, "旧形式の連絡", OLD_BODY).await;
    let with_file = {
        let spec = json!({ "kind": "letter", "to": [{ "account": rad }], "subject": "画像つき連絡",
            "body": "画像を添付します", "attachments": [{ "name": "図.png", "media_type": "image/png" }] });
        server
            .sent_envelope(
                &gp_c,
                &spec,
                vec![("図.png", crate::pages_doctor::PNG.to_vec())],
            )
            .await
    };
    inbox_delivered(&server, &rad_c, 11).await;
    let redated_opener = step_ids(&server, &rad_c, &redated).await.remove(0);

    // The rogue administrator's changes, each one statement or two.
    let db = Db::open(&net).await;
    db.exec(&format!(
        "UPDATE envelopes SET thread_id = '{otsu}', thread_seq = 2 WHERE id = '{report}'"
    ))
    .await;
    db.exec(&format!(
        "UPDATE threads SET version = 2 WHERE id = '{otsu}'"
    ))
    .await;
    db.exec(&format!(
        "UPDATE envelopes SET body = (SELECT body FROM envelopes WHERE id = '{y}') WHERE id = '{x}'"
    ))
    .await;
    db.exec(&format!(
        "UPDATE envelopes SET step = 'report' WHERE id = '{decline}'"
    ))
    .await;
    db.exec(&format!(
        "UPDATE envelopes SET kind = 'referral' WHERE id = '{rekinded}'"
    ))
    .await;
    db.exec(&format!(
        "UPDATE envelopes SET created_at = created_at - 200 * 86400 WHERE id = '{redated_opener}'"
    ))
    .await;
    let n = db
        .exec(&format!(
            "UPDATE envelope_slots SET principal = 'account:{}' \
             WHERE envelope_id = '{readdressed}' AND principal = 'account:{}'",
            col.replace('-', ""),
            gp.replace('-', "")
        ))
        .await;
    assert_eq!(n, 1);
    db.exec(&format!(
        "DELETE FROM mailbox_entries WHERE envelope_id = '{accepted}'"
    ))
    .await;
    db.exec(&format!(
        "DELETE FROM envelope_slots WHERE envelope_id = '{accepted}'"
    ))
    .await;
    db.exec(&format!("DELETE FROM envelopes WHERE id = '{accepted}'"))
        .await;
    reseal_without_place(&db, &old, &gp, &pw(&gp_issued)).await;
    // And one byte of an attachment's sealed blob flipped on disk.
    let key = db
        .strings(&format!(
            "SELECT blob_key FROM attachments WHERE envelope_id = '{with_file}' AND idx = 0"
        ))
        .await
        .remove(0)
        .unwrap();
    let blob = net.data_dir().join("blobs").join(key);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();

    // The API: 422 with the difference named, and no content.
    let env = |id: &str| format!("/api/v1/envelopes/{id}");
    let thread = |id: &str| format!("/api/v1/threads/{id}");
    refused(&server, &rad_c, &env(&report), "moved", &[FINDINGS_KO]).await;
    refused(&server, &rad_c, &thread(&otsu), "moved", &[FINDINGS_KO]).await;
    refused(&server, &rad_c, &thread(&ko), "step_missing", &[]).await;
    refused(&server, &rad_c, &env(&x), "moved", &[BODY_Y]).await;
    refused(&server, &rad_c, &env(&decline), "relabelled", &["専門外"]).await;
    refused(
        &server,
        &rad_c,
        &thread(&declined),
        "relabelled",
        &["専門外"],
    )
    .await;
    refused(&server, &rad_c, &env(&rekinded), "relabelled", &["Wの本文"]).await;
    refused(&server, &rad_c, &env(&redated_opener), "time_changed", &[]).await;
    refused(
        &server,
        &rad_c,
        &env(&readdressed),
        "recipients_changed",
        &["Zの本文"],
    )
    .await;
    refused(&server, &rad_c, &thread(&cut), "step_missing", &[]).await;
    refused(
        &server,
        &rad_c,
        &format!("{}/pdf", env(&report)),
        "moved",
        &[],
    )
    .await;
    // What was not touched still verifies, its place signed; the older item
    // opens, valid, labelled as not signing its place.
    let (s, v) = server.get_answer(&rad_c, &env(&y)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signature"]["status"], "valid");
    assert_eq!(v["signature"]["place_signed"], true);
    let (s, v) = server.get_answer(&rad_c, &env(&old)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signature"]["status"], "valid", "{v}");
    assert_eq!(v["signature"]["place_signed"], false, "{v}");
    assert_eq!(v["body"], OLD_BODY);

    // The pages, in Chromium.
    let paths = [
        format!("/threads/{otsu}"),
        format!("/threads/{ko}"),
        format!("/threads/{declined}"),
        format!("/threads/{redated}"),
        format!("/threads/{cut}"),
        format!("/items/{x}"),
        format!("/items/{readdressed}"),
        format!("/items/{old}"),
    ];
    let v = run_browser(
        "place_page.cjs",
        &[
            &server.url(""),
            &rad,
            &pw(&rad_issued),
            &json!(paths).to_string(),
            &json!([FINDINGS_KO, BODY_Y, "専門外", "Zの本文", OLD_BODY]).to_string(),
        ],
    );
    assert_eq!(v["errors"], json!([]), "{v}");
    let page = |i: usize| &v["pages"][&paths[i]];
    let statuses = |i: usize| -> Vec<String> {
        page(i)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(statuses(0), ["valid", "moved"], "乙's thread: {v}");
    assert_eq!(page(0)["steps"][1]["red"], true, "{v}");
    assert_eq!(page(0)["steps"][1]["verdict"], "broken", "{v}");
    assert_eq!(
        page(0)["shown"],
        json!([]),
        "甲's findings never on 乙's page: {v}"
    );
    assert_eq!(
        page(0)["forms"],
        0,
        "no step on a thread with a moved step: {v}"
    );
    assert_eq!(
        statuses(1),
        ["valid", "valid", "step_missing"],
        "甲's thread: {v}"
    );
    assert!(!page(1)["alert"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(page(1)["steps"][2]["red"], true, "{v}");
    assert_eq!(statuses(2), ["valid", "relabelled"], "{v}");
    assert_eq!(page(2)["shown"], json!([]), "{v}");
    assert_eq!(statuses(3), ["time_changed"], "{v}");
    assert_eq!(statuses(4), ["valid", "step_missing"], "{v}");
    assert_eq!(statuses(5), ["moved"], "X shows Y's content nowhere: {v}");
    assert_eq!(page(5)["shown"], json!([]), "{v}");
    assert_eq!(statuses(6), ["recipients_changed"], "{v}");
    assert_eq!(statuses(7), ["valid"], "{v}");
    assert_eq!(
        page(7)["steps"][0]["older"],
        1,
        "older format labelled: {v}"
    );
    assert_eq!(page(7)["shown"], json!([OLD_BODY]), "{v}");

    // IMAP: the status in X-Renkei-Signature, the content withheld.
    let out = Command::new("python3")
        .arg(IMAP_CLIENT)
        .arg(imap_port(&server).to_string())
        .arg(net.data_dir().join("tls-cert.pem"))
        .args([&rad, &pw(&rad_issued)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{stdout} {}", String::from_utf8_lossy(&out.stderr)));
    let by_signature = |status: &str| -> Vec<&Value> {
        r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["signature"].as_str().unwrap().split(';').next() == Some(status))
            .collect()
    };
    let moved = by_signature("moved");
    assert_eq!(moved.len(), 1, "X: {r}");
    assert!(!moved[0]["text"].as_str().unwrap().contains(BODY_Y), "{r}");
    assert!(moved[0]["text"].as_str().unwrap().contains("改ざん"), "{r}");
    assert_eq!(by_signature("relabelled").len(), 1, "W: {r}");
    assert_eq!(by_signature("recipients_changed").len(), 1, "Z: {r}");
    assert_eq!(
        by_signature("time_changed").len(),
        1,
        "the redated request: {r}"
    );
    let valid = by_signature("valid");
    let older: Vec<_> = valid
        .iter()
        .filter(|m| m["signature"].as_str().unwrap().contains("place=unsigned"))
        .collect();
    assert_eq!(older.len(), 1, "{r}");
    assert!(older[0]["text"].as_str().unwrap().contains(OLD_BODY), "{r}");
    assert!(
        valid
            .iter()
            .any(|m| m["text"].as_str().unwrap().contains(BODY_Y)),
        "Y untouched: {r}"
    );
}
