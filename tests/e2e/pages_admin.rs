//! The operator console, the public facility list and personal settings in
//! headless Chromium (`clients/pages_admin.cjs`), on the real binary: facility
//! codes refused rule by rule, the approval reference outside the home
//! prefecture, issued passwords shown once, locks that end sessions, resets,
//! deactivation; no content on any operator page; published details only on
//! the public list; a doctor's notification mode, address change (with the
//! re-authentication asked for on the page) and app passwords, checked over
//! IMAP afterwards. Every operator action is in the audit trail.
//!
//! In detail (+ `clients/pages_admin.cjs`, headless Chromium, both
//! backends): a check-digit typo and an out-of-prefecture code without approval
//! refused with their Japanese rule, accepted with the approval; an account issued
//! (password shown once), locked (its open session ends, sign-in refused),
//! unlocked, reset (old password refused); a facility deactivated leaves the
//! public list; none of the words of an item sent beforehand on any operator
//! page; the public list shows published details only, without sign-in; a doctor
//! with TOTP sets the notification mode, changes the address (the page asks for
//! the code; a recovery code re-authenticates; the pending address shows), makes
//! two app passwords (each shown once) and revokes one — IMAP then accepts the
//! kept one and refuses the revoked one; every operator action is in the audit
//! trail. Screenshots: `operator`, `operator-accounts`, `facilities`, `settings`
//! (`-ja`, `-en`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, parse_letter, run_browser};
use crate::imap::{imap_port, inbox_delivered, send_request};
use crate::twofactor::{imap, pyotp};

/// What the clinic keeps off the public list.
const CLINIC_SECRET: &str = "琴平町非公開1-2-3";

/// Words of the item sent before the console is opened (`send_request`).
const MARKERS: &[&str] = &[
    "胸部CT",
    "香川 太郎",
    "P-0042",
    "読影をお願いします",
    "結節の評価",
    "CT0001.dcm",
];

/// Enrols TOTP through the API (the code from pyotp) and returns the
/// recovery codes.
async fn enrol_totp(server: &crate::harness::Server, client: &reqwest::Client) -> Vec<String> {
    let v: Value = client
        .post(server.url("/api/v1/me/totp"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = v["secret"].as_str().expect("a TOTP secret").to_string();
    let r = client
        .post(server.url("/api/v1/me/totp/confirm"))
        .json(&json!({ "code": pyotp(&secret, 0) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

fn contains(v: &Value, key: &str, needle: &str) -> bool {
    v[key].as_str().is_some_and(|s| s.contains(needle))
}

#[tokio::test]
async fn operator_console_public_list_and_settings_in_chromium() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    // Public details through the command line: the hospital publishes them,
    // the clinic does not.
    net.admin(&[
        "facility",
        "update",
        HOSPITAL,
        "--city",
        "高松市",
        "--departments",
        "放射線科、内科",
        "--address",
        "香川県高松市番町1-1-1",
        "--phone",
        "087-000-0001",
        "--public-note",
        "紹介受付 平日9時〜17時",
        "--publish",
        "true",
    ]);
    net.admin(&[
        "facility",
        "update",
        CLINIC,
        "--city",
        "琴平町",
        "--departments",
        "内科",
        "--address",
        CLINIC_SECRET,
        "--publish",
        "false",
    ]);
    let (op_id, op_issued) = parse_letter(&net.admin(&[
        "user",
        "add",
        "--role",
        "operator",
        "--name",
        "運営 ヘルプデスク",
    ]));
    let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
    let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&["--imap-listen", "127.0.0.1:0"]);
    let port = imap_port(&server);
    let op = net.ready_client(&server, &op_id, &op_issued).await;
    let gp_c = net.ready_client(&server, &gp, &gp_issued).await;
    let rad_c = net.ready_client(&server, &rad, &rad_issued).await;
    // An item the operator must never see anything of.
    send_request(&server, &gp_c, &rad, 1).await;
    inbox_delivered(&server, &rad_c, 1).await;
    let recovery = enrol_totp(&server, &rad_c).await;

    let yesterday = (mailbox::clock::today_jst() - chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    let cfg = json!({
        "base": server.url(""),
        "operator": { "id": op_id, "password": format!("{op_issued}-Mine-2026") },
        "doctor": { "id": rad, "password": format!("{rad_issued}-Mine-2026"), "recovery": recovery },
        "hospital": HOSPITAL,
        "clinic": CLINIC,
        "clinic_secret": CLINIC_SECRET,
        "markers": MARKERS,
        "yesterday": yesterday,
        "new_email": "sanuki.ichiro@example.jp",
    });
    let v = run_browser("pages_admin.cjs", &[&cfg.to_string()]);

    // The console, for the operator only.
    assert_eq!(v["operator_landed"], "/", "{v}");
    assert_eq!(v["doctor_operator_status"], 403, "{v}");
    assert!(
        contains(
            &v,
            "doctor_operator_text",
            "医師のアカウントでは「施設・アカウントの管理」はできません"
        ),
        "{v}"
    );

    // Facility codes: the broken rule, in Japanese; nothing registered.
    assert!(
        contains(&v, "check_digit_error", "検証番号（10桁目）が一致しません"),
        "{v}"
    );
    assert_eq!(v["check_digit_listed"], false, "{v}");
    assert!(
        contains(
            &v,
            "approval_error",
            "県外の医療施設の登録には運営委員会の承認番号が必要です"
        ),
        "{v}"
    );
    assert_eq!(v["approval_kept_name"], "札幌北病院", "{v}");
    assert_eq!(v["approval_listed"], false, "{v}");
    assert_eq!(v["approval_error_after"], Value::Null, "{v}");
    assert!(contains(&v, "added_notice", "札幌北病院"), "{v}");
    assert!(
        contains(&v, "added_row", "運営委員会 2026-11 承認第7号"),
        "{v}"
    );

    // The public list: no sign-in, published details only.
    assert_eq!(v["public_signed_in"], false, "{v}");
    let h = &v["public_hospital"];
    assert!(
        contains(h, "text", "さぬき中央病院") && contains(h, "text", "高松市"),
        "{v}"
    );
    assert!(
        contains(h, "text", "放射線科") && contains(h, "text", "内科"),
        "{v}"
    );
    assert_eq!(h["address"], "香川県高松市番町1-1-1", "{v}");
    assert_eq!(h["phone"], "087-000-0001", "{v}");
    assert_eq!(h["note"], "紹介受付 平日9時〜17時", "{v}");
    let c = &v["public_clinic"];
    assert!(
        contains(c, "text", "ことひら内科クリニック") && contains(c, "text", "琴平町"),
        "{v}"
    );
    assert_eq!(
        (&c["address"], &c["phone"], &c["note"]),
        (&Value::Null, &Value::Null, &Value::Null),
        "{v}"
    );
    assert_eq!(v["public_has_clinic_secret"], false, "{v}");
    assert!(contains(&v["public_sapporo"], "text", "脳神経外科"), "{v}");
    assert_eq!(v["public_sapporo"]["note"], "遠隔読影の受付 24時間", "{v}");
    assert_eq!(v["public_filtered"], json!(["0110113719"]), "{v}");

    // Accounts: issued once, locked (its session ends, sign-in refused),
    // unlocked, reset (the old password refused, the new one works).
    assert_eq!(v["issued_password_length"], 19, "{v}");
    assert_eq!(v["issued_shown_again"], false, "{v}");
    assert!(contains(&v, "new_row", "新規 医師"), "{v}");
    assert_eq!(v["first_sign_in"]["landed"], "/password", "{v}");
    assert!(contains(&v, "lock_notice", "ロックしました"), "{v}");
    assert!(contains(&v, "locked_status", "ロック中"), "{v}");
    assert_eq!(v["locked_session_went_to"], "/login?expired=1", "{v}");
    assert_eq!(v["locked_sign_in"]["landed"], "/login", "{v}");
    assert!(
        v["locked_sign_in"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("ロックされています")),
        "{v}"
    );
    assert!(contains(&v, "unlock_notice", "ロックを解除しました"), "{v}");
    assert_eq!(v["unlocked_sign_in"]["landed"], "/password", "{v}");
    assert_eq!(v["reset_title"], "パスワードを再発行しました", "{v}");
    assert_eq!(v["reset_differs"], true, "{v}");
    assert!(
        v["old_password_sign_in"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("IDまたはパスワードが違います")),
        "{v}"
    );
    assert_eq!(v["reset_sign_in"]["landed"], "/password", "{v}");

    // Deactivated yesterday: off the public list.
    assert!(
        contains(&v, "deactivated_notice", "利用終了日を設定しました"),
        "{v}"
    );
    assert_eq!(v["deactivated_state"], "利用終了", "{v}");
    // By city: 琴平町 (the clinic) before 高松市 (the hospital).
    assert_eq!(
        v["public_after_deactivation"],
        json!([CLINIC, HOSPITAL]),
        "{v}"
    );

    // Nothing of the item on any operator page.
    assert_eq!(v["markers_on_operator_pages"], json!([]), "{v}");

    // Settings.
    assert_eq!(v["doctor_landed"], "/", "{v}");
    assert!(contains(&v, "notify_notice", "保存しました"), "{v}");
    assert_eq!(v["notify_checked"], "digest", "{v}");
    assert_eq!(v["notify_api"], "digest", "{v}");
    assert_eq!(v["email_asks_code"], true, "{v}");
    assert!(contains(&v, "email_without_code", "本人確認"), "{v}");
    assert_eq!(v["email_kept"], "sanuki.ichiro@example.jp", "{v}");
    assert_eq!(v["email_pending_before"], Value::Null, "{v}");
    assert_eq!(v["email_error"], Value::Null, "{v}");
    assert!(
        contains(&v, "email_notice", "確認メールを送信しました"),
        "{v}"
    );
    assert!(
        contains(&v, "email_pending", "sanuki.ichiro@example.jp"),
        "{v}"
    );
    assert!(contains(&v, "email_current", "未登録"), "{v}");
    assert_eq!(v["app_asks_code_after_reauth"], false, "{v}");
    assert_eq!(v["app_shown_again"], false, "{v}");
    assert_eq!(v["app_names"], json!(["古いノートPC", "診察室のPC"]), "{v}");
    assert!(contains(&v, "revoke_notice", "無効にしました"), "{v}");
    assert_eq!(v["app_names_after"], json!(["診察室のPC"]), "{v}");
    assert_eq!(v["errors"], json!([]), "{v}");

    // What the mail client sees: the kept app password reads the item, the
    // revoked one is refused.
    let kept = imap(&net, port, &rad, v["app_keep"].as_str().unwrap());
    assert_eq!(kept["login"], "OK", "{kept}");
    assert_eq!(kept["exists"], 1, "{kept}");
    let revoked = imap(&net, port, &rad, v["app_revoke"].as_str().unwrap());
    assert_eq!(revoked["login"], "NO", "{revoked}");

    // Every operator action is in the audit trail, done or refused.
    let today = mailbox::clock::today_jst().format("%Y-%m-%d").to_string();
    let trail: Value = op
        .get(server.url(&format!("/api/v1/audit?from={yesterday}&to={today}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin: Vec<(String, String)> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "admin" && e["actor"] == op_id.replace('-', ""))
        .map(|e| {
            (
                e["detail"].as_str().unwrap_or_default().to_string(),
                e["item"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let new_id = v["issued_id"].as_str().unwrap().replace('-', "");
    for expected in [
        ("facility add: failed", ""),
        ("facility add: failed", "0110113719"),
        ("facility add: ok", "0110113719"),
        ("user add: ok", new_id.as_str()),
        ("user lock: ok", new_id.as_str()),
        ("lock reason: 端末紛失の届出: ok", new_id.as_str()),
        ("user unlock: ok", new_id.as_str()),
        ("user reset-password: ok", new_id.as_str()),
        ("facility deactivate: ok", "0110113719"),
    ] {
        assert!(
            admin.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {admin:?}"
        );
    }
    // The screenshots of the three areas, in both languages.
    for (key, name) in [
        ("operator_shots", "operator"),
        ("public_shots", "facilities"),
        ("settings_shots", "settings"),
    ] {
        assert_eq!(
            v[key],
            json!([format!("{name}-ja.png"), format!("{name}-en.png")]),
            "{v}"
        );
    }
}
