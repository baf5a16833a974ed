//! Issue 27, pages a hospital would accept. On the demo network (with its
//! equipment) holding a CT reading request with a generated DICOM study, a
//! reading request in the hospital's liaison inbox, a referral with a PDF and
//! history, medication and course, and a plain message:
//!
//! - `every_page_walked_as_each_role` (`clients/pages_walk.cjs`): the
//!   hospital's doctor, liaison office and clerk and the operator, each page
//!   reachable from the menu and the first item of each list, at 1280 and
//!   390 px, in Japanese and English: no sideways scroll at 390 px, no console
//!   error, no 4xx, no English word on a Japanese page outside names and
//!   abbreviations. Every failure is listed at once; the screenshots go to
//!   `$CARGO_TARGET_DIR/pages-walk` (printed).
//! - `issue_27_findings_hold_in_chromium` (`clients/pages_findings.cjs`): the
//!   viewer names the patient as people write it, with a banner, a tab title
//!   naming the item, a back link to the thread and the files page; the files
//!   page has no ASCII period; compose has a message kind, required patient
//!   and consent fields, the referral's history, medication and course, the
//!   pathway's fields without a reload, a booking form disabled with its
//!   reason where nothing is bookable and a date-time input; the console
//!   heads names 氏名, asks for a facility, shows last sign-in and second
//!   factor and a styled lock button and no CLI command; the authenticator
//!   key stays the same across visits and a wrong code, in groups of four,
//!   with the factors listed; settings name the IMAP server; the sign-in page
//!   names the help desk and links the facility list.

use serde_json::{Value, json};

use crate::dicom_support::{PATIENT, generated_study, named};
use crate::harness::{Network, Server, run_browser, wait_until};

struct DemoAccount {
    id: String,
    password: String,
    role: String,
    code: String,
}

/// The demo network with something in every list.
struct Demo {
    _net: Network,
    server: Server,
    accounts: Vec<DemoAccount>,
    /// The thread of the CT reading request and its opening item.
    ct_thread: String,
    ct_item: String,
}

const HOSPITAL_PREFIX: &str = "371020001";
const CLINIC_PREFIX: &str = "371030001";

impl Demo {
    fn account(&self, role: &str, prefix: &str) -> &DemoAccount {
        self.accounts
            .iter()
            .find(|a| a.role == role && a.code.starts_with(prefix))
            .unwrap_or_else(|| panic!("no demo {role} at {prefix}"))
    }

    fn login(&self, role: &str, prefix: &str) -> Value {
        let a = self.account(role, prefix);
        json!({ "role": role, "id": a.id, "password": a.password })
    }

    async fn start() -> Self {
        let net = Network::new().await;
        let server = Server::start(
            &net,
            "demo",
            &[
                "--imap-listen",
                "127.0.0.1:0",
                "--imap-starttls-listen",
                "127.0.0.1:0",
            ],
        );
        let tsv = std::fs::read_to_string(net.data_dir().join("demo-accounts.tsv")).unwrap();
        let accounts: Vec<DemoAccount> = tsv
            .lines()
            .skip(1)
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                DemoAccount {
                    id: c[0].into(),
                    password: c[1].into(),
                    role: c[2].into(),
                    code: c[3].into(),
                }
            })
            .collect();
        let mut demo = Self {
            _net: net,
            server,
            accounts,
            ct_thread: String::new(),
            ct_item: String::new(),
        };
        demo.fill().await;
        demo
    }

    /// The clinic's doctor sends the hospital what the issue's walk had.
    async fn fill(&mut self) {
        let gp = self.account("doctor", CLINIC_PREFIX);
        let gp_c = self.server.sign_in(&gp.id, &gp.password).await.unwrap();
        let rad = self.account("doctor", HOSPITAL_PREFIX).id.clone();
        let hospital = self.account("liaison", HOSPITAL_PREFIX).code.clone();
        let consent =
            json!({ "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" });
        let to_liaison = json!({
            "kind": "reading_request",
            "to": { "liaison": hospital },
            "subject": "腹部CT 読影依頼",
            "patient_id": "KTH-0042",
            "patient_name": "金刀比羅 太郎",
            "consent": consent,
            "fields": { "modality": "CT", "body_part": "腹部", "clinical_question": "肝腫瘤の精査" },
        });
        let shared = self
            .server
            .opened_thread(&gp_c, &to_liaison, crate::harness::no_files())
            .await;
        let referral = json!({
            "kind": "referral",
            "to": { "account": rad },
            "subject": "患者紹介（糖尿病）",
            "patient_id": "KTH-0815",
            "patient_name": "善通寺 花子",
            "consent": consent,
            "fields": {
                "purpose": "血糖コントロール目的",
                "diagnosis": "2型糖尿病",
                "history": "高血圧症（2019年〜）",
                "medication": "メトホルミン 500mg 1日2回",
                "course": "半年でHbA1cが7.2%から8.1%に上昇。",
            },
            "attachments": [{ "name": "紹介状.pdf", "media_type": "application/pdf" }],
        });
        let letter = b"%PDF-1.7\n% a referral letter\n%%EOF\n".to_vec();
        let referred = self
            .server
            .opened_thread(&gp_c, &referral, vec![("紹介状.pdf", letter)])
            .await;
        let message = json!({
            "kind": "message",
            "to": [{ "account": rad }],
            "subject": "検査日程のご相談",
            "body": "来週の検査日程についてご相談させてください。",
        });
        let note = self
            .server
            .sent_envelope(&gp_c, &message, crate::harness::no_files())
            .await;
        // The CT request last, so it heads the doctor's Inbox and the walk
        // opens its viewer and files page.
        let dir = tempfile::tempdir().unwrap();
        let study: Vec<(String, Vec<u8>)> = generated_study(dir.path(), 3, 64)
            .iter()
            .map(|p| named(p))
            .collect();
        let ct = json!({
            "kind": "reading_request",
            "to": { "account": rad },
            "subject": "胸部CT 読影依頼",
            "patient_id": PATIENT.0,
            "patient_name": PATIENT.1,
            "consent": consent,
            "body": "前回CTとの比較をお願いします。",
            "fields": { "modality": "CT", "body_part": "胸部", "clinical_question": "結節の評価" },
            "attachments": study.iter().map(|(n, _)| json!({ "name": n })).collect::<Vec<_>>(),
        });
        let (status, made) = self
            .server
            .upload(&gp_c, "/api/v1/threads", "thread", &ct, study)
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{made}");
        self.ct_thread = made["thread_id"].as_str().unwrap().to_string();
        self.ct_item = made["envelope_id"].as_str().unwrap().to_string();
        self.server
            .threads_delivered(&gp_c, &[&self.ct_thread, &shared, &referred])
            .await;
        // The message is in the doctor's Inbox once its link is on the page.
        let doctor = self.account("doctor", HOSPITAL_PREFIX);
        let doc_c = self
            .server
            .sign_in(&doctor.id, &doctor.password)
            .await
            .unwrap();
        let url = self.server.url("/mail/inbox");
        wait_until(
            "the message in the doctor's Inbox",
            std::time::Duration::from_secs(20),
            || async {
                let html = doc_c.get(&url).send().await.ok()?.text().await.ok()?;
                html.contains(&note).then_some(())
            },
        )
        .await;
    }
}

/// Where the walk's screenshots go: a folder under the target folder.
fn shot_dir() -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("pages-walk")
}

#[tokio::test]
async fn every_page_walked_as_each_role() {
    let demo = Demo::start().await;
    let roles = json!([
        demo.login("doctor", HOSPITAL_PREFIX),
        demo.login("liaison", HOSPITAL_PREFIX),
        demo.login("clerk", HOSPITAL_PREFIX),
        demo.login("operator", "-"),
    ]);
    let dir = shot_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let v = run_browser(
        "pages_walk.cjs",
        &[
            &demo.server.url(""),
            dir.to_str().unwrap(),
            &roles.to_string(),
        ],
    );
    println!("screenshots: {} ({} files)", dir.display(), v["shots"]);
    for (role, pages) in v["pages"].as_object().unwrap() {
        println!("{role}: {} pages: {pages}", pages.as_array().unwrap().len());
    }
    let failures = v["failures"].as_array().unwrap();
    let listed: Vec<String> = failures
        .iter()
        .map(|f| {
            format!(
                "{} | {} | {} | {}",
                f["role"].as_str().unwrap_or_default(),
                f["check"].as_str().unwrap_or_default(),
                f["page"].as_str().unwrap_or_default(),
                f["detail"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let report = dir.join("failures.txt");
    std::fs::write(&report, listed.join("\n")).unwrap();
    println!("{} failures (also in {}):", listed.len(), report.display());
    for line in &listed {
        println!("{line}");
    }
    // Each role reached its menu and the first item of its lists.
    let pages = |role: &str| -> Vec<String> {
        v["pages"][role]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    let doctor = pages("doctor");
    for must in [
        "/mail/inbox",
        "/mail/sent",
        "/compose?kind=message",
        "/booking",
        "/settings",
        "/security",
    ] {
        assert!(
            doctor.iter().any(|p| p.starts_with(must)),
            "doctor: {must} not reached: {doctor:?}"
        );
    }
    for must in ["/threads/", "/items/"] {
        assert!(doctor.iter().any(|p| p.starts_with(must)), "{doctor:?}");
    }
    for must in ["/viewer", "/files"] {
        assert!(doctor.iter().any(|p| p.ends_with(must)), "{doctor:?}");
    }
    assert!(pages("liaison").iter().any(|p| p.starts_with("/liaison")));
    assert!(pages("clerk").iter().any(|p| p.starts_with("/clerk")));
    let operator = pages("operator");
    assert!(operator.iter().any(|p| p.starts_with("/operator/accounts")));
    assert!(
        operator
            .iter()
            .any(|p| p.starts_with("/operator/facilities/"))
    );
    assert!(
        listed.is_empty(),
        "{} failures:\n{}",
        listed.len(),
        listed.join("\n")
    );
}

#[tokio::test]
async fn issue_27_findings_hold_in_chromium() {
    let demo = Demo::start().await;
    let new_code = mailbox::FacilityCode::with_check_digit("371040002")
        .unwrap()
        .to_string();
    let doctor = demo.account("doctor", HOSPITAL_PREFIX);
    let accounts = json!({
        "operator": demo.login("operator", "-"),
        "doctor": demo.login("doctor", HOSPITAL_PREFIX),
        "thread": demo.ct_thread,
        "item": demo.ct_item,
        "new_facility": { "code": new_code, "name": "屋島リハビリ診療所" },
    });
    let v = run_browser(
        "pages_findings.cjs",
        &[&demo.server.url(""), &accounts.to_string()],
    );
    assert_eq!(v["errors"], json!([]), "{v}");

    // Sign-in page.
    let login = &v["login"];
    assert!(
        login["help_desk"]
            .as_str()
            .unwrap()
            .contains("ヘルプデスク"),
        "{login}"
    );
    assert_eq!(login["facilities_href"], "/facilities");
    assert_eq!(login["facilities_status"], 200);

    // Operator console.
    let op = &v["operator"];
    let heads: Vec<&str> = op["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(heads[1], "氏名", "{heads:?}");
    assert!(
        heads.contains(&"最終ログイン") && heads.contains(&"二要素認証"),
        "{heads:?}"
    );
    assert!(!heads.contains(&"施設名"), "{heads:?}");
    assert!(
        op["name_label"].as_str().unwrap().starts_with("氏名"),
        "{op}"
    );
    assert_eq!(op["role_chosen"], "医師");
    assert_eq!(op["facility_chosen"], "施設を選んでください");
    assert!(
        !op["facility_options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o.as_str().unwrap().contains("運営者")),
        "{op}"
    );
    assert_eq!(op["facility_shown_for_operator"], false);
    assert!(
        op["doctor_without_facility"]
            .as_str()
            .unwrap()
            .contains("所属施設を選んでください"),
        "{op}"
    );
    // Every demo member signed in once; the list says when.
    let signed: Vec<&str> = op["last_sign_in"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        signed.iter().filter(|s| s.starts_with("20")).count() >= 9,
        "{signed:?}"
    );
    assert!(
        op["second_factor"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s == "未設定" || s == "設定済み")
    );
    assert_eq!(
        op["lock_background"], "rgb(163, 0, 0)",
        "the lock button is styled"
    );
    assert!(
        !op["page_text"].as_str().unwrap().contains("renkei "),
        "no command on the page"
    );
    assert_eq!(op["facility_added"], true);

    // Viewer: the patient as people write names, a banner, a title naming the item.
    let viewer = &v["viewer"];
    assert_eq!(
        viewer["banner_patient"],
        format!("{} {}", PATIENT.0, PATIENT.1)
    );
    assert_eq!(viewer["banner_subject"], "胸部CT 読影依頼");
    let dicom_patient = viewer["dicom_patient"].as_str().unwrap();
    assert!(dicom_patient.contains("山田 太郎"), "{dicom_patient}");
    assert!(!dicom_patient.contains('^'), "{dicom_patient}");
    assert!(
        viewer["title"]
            .as_str()
            .unwrap()
            .starts_with("胸部CT 読影依頼 — 画像ビューア"),
        "{viewer}"
    );
    assert!(
        !viewer["title"].as_str().unwrap().contains("山田"),
        "no patient in the title"
    );
    assert!(
        viewer["descriptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| !d.as_str().unwrap().is_empty()),
        "{viewer}"
    );
    let thread_path = format!("/threads/{}", demo.ct_thread);
    assert_eq!(viewer["back_href"], thread_path.as_str());
    assert_eq!(viewer["back_lands"], thread_path.as_str());
    let files_path = format!("/items/{}/files", demo.ct_item);
    assert_eq!(viewer["files_href"], files_path.as_str());
    assert_eq!(
        viewer["thread_files_href"],
        files_path.as_str(),
        "the thread links the files page"
    );
    let files = &v["files"];
    let range = files["range_line"].as_str().unwrap();
    assert!(
        range.contains("件目を表示しています。") && !range.contains(". "),
        "{range}"
    );
    assert_eq!(files["back_href"], thread_path.as_str());

    // Compose.
    let c = &v["compose"];
    assert!(
        c["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "メッセージ"),
        "{c}"
    );
    for f in [
        "patient_required",
        "patient_name_required",
        "consent_on_required",
        "consent_by_required",
    ] {
        assert_eq!(c[f], true, "{f}: {c}");
    }
    assert!(c["patient_label"].as_str().unwrap().contains('*'), "{c}");
    let referral: Vec<&str> = c["referral_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for label in ["紹介目的", "傷病名", "既往歴", "処方", "経過"] {
        assert!(
            referral.contains(&label),
            "{label} not offered: {referral:?}"
        );
    }
    assert!(!c["pathway_first"].as_array().unwrap().is_empty(), "{c}");
    assert!(
        !c["pathway_after_choice"].as_array().unwrap().is_empty(),
        "{c}"
    );
    assert_ne!(c["pathway_first"], c["pathway_after_choice"], "{c}");
    assert_eq!(
        c["pathway_navigated"], false,
        "no reload to show the fields"
    );
    assert_eq!(c["pathway_show_button_visible"], false);
    assert!(c["booking_default_resources"].as_u64().unwrap() >= 1, "{c}");
    assert_eq!(c["preferred_type"], "datetime-local");
    assert_eq!(c["booking_send_enabled"], true);
    let empty = &c["empty_facility"];
    assert_eq!(empty["send_disabled"], true, "{c}");
    assert_eq!(empty["fields_disabled"], true, "{c}");
    assert!(
        empty["reason"]
            .as_str()
            .unwrap()
            .contains("予約できる機器がありません"),
        "{c}"
    );
    assert_eq!(c["message_patient_required"], false);
    assert!(
        c["message_lands"].as_str().unwrap().starts_with("/items/"),
        "{c}"
    );

    // Security: one key per enrolment, in fours, and what is set up.
    let sec = &v["security"];
    let shown = sec["shown"].as_str().unwrap();
    assert!(
        shown.split(' ').all(|g| (1..=4).contains(&g.len())) && shown.split(' ').count() == 8,
        "{shown}"
    );
    assert_eq!(sec["same_on_second_visit"], true);
    assert_eq!(sec["same_after_wrong_code"], true);
    assert_eq!(sec["new_after_new_key"], true);
    assert!(
        sec["factors"]
            .as_str()
            .unwrap()
            .contains("セキュリティキー"),
        "{sec}"
    );
    assert!(
        sec["totp_state"].as_str().unwrap().contains("登録手続き中"),
        "{sec}"
    );

    // Settings: where mail software connects.
    let set = &v["settings"];
    assert_eq!(set["imap_host"], "localhost");
    let ports = set["imap_ports"].as_str().unwrap();
    assert!(
        ports.contains("SSL/TLS") && ports.contains("STARTTLS"),
        "{ports}"
    );
    assert_eq!(
        set["imap_user"].as_str().unwrap().replace('-', ""),
        doctor.id.replace('-', "")
    );
}
