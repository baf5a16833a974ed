//! The documents: item prints (reports, letters, any text item), credential
//! letters, billing statements and deletion receipts, each from plain data.

use crate::Result;
use crate::sheet::{BODY, Sheet};

/// Japanese labels of the structured fields the forms use; others print as named.
fn field_label(name: &str) -> String {
    let ja = match name {
        "findings" => "所見",
        "impression" => "診断",
        "modality" => "検査種別",
        "body_part" => "検査部位",
        "clinical_question" => "臨床上の疑問",
        "purpose" => "紹介目的",
        "diagnosis" => "傷病名",
        "history" => "既往歴・経過",
        "medication" => "処方",
        "reply" => "返書",
        "reason" => "理由",
        _ => return name.to_string(),
    };
    format!("{ja} ({name})")
}

/// Everything printed on an item's PDF.
pub struct ItemPrint {
    pub item_id: String,
    pub kind: String,
    pub step: Option<String>,
    pub thread_id: Option<String>,
    pub sender_facility_name: String,
    pub sender_facility_code: String,
    pub signer_name: String,
    pub signer_id: String,
    /// `valid`, `unknown_signer`, `bad_signature`, `signer_mismatch`.
    pub signature_status: String,
    pub signer_fingerprint: Option<String>,
    pub signed_sha256: String,
    /// When it was sealed, formatted (JST).
    pub sealed_at: String,
    pub patient_id: String,
    pub patient_name: String,
    pub subject: String,
    pub body: String,
    pub fields: Vec<(String, String)>,
    /// (name, size, sha256)
    pub attachments: Vec<(String, u64, String)>,
    pub exported_by: String,
}

/// The document's title by kind and step, Japanese and English.
pub fn item_title(kind: &str, step: Option<&str>) -> (&'static str, &'static str) {
    match (kind, step) {
        (_, Some("report")) => ("読影報告書", "Reading report"),
        (_, Some("reply")) => ("返書", "Reply letter"),
        ("referral", _) => ("診療情報提供書", "Referral letter"),
        ("reading_request", _) => ("読影依頼書", "Reading request"),
        ("booking", _) => ("予約依頼", "Booking request"),
        ("pathway", _) => ("地域連携パス", "Care pathway"),
        _ => ("文書", "Document"),
    }
}

fn signature_label(status: &str) -> &'static str {
    match status {
        "valid" => "有効（署名を検証しました） / valid",
        "unknown_signer" => "署名者不明 / unknown signer",
        "bad_signature" => "無効（改ざんの可能性があります） / BAD SIGNATURE",
        "signer_mismatch" => "送信者と署名者が一致しません / signer mismatch",
        _ => "不明 / unknown",
    }
}

pub fn item(p: &ItemPrint) -> Result<Vec<u8>> {
    let (ja, en) = item_title(&p.kind, p.step.as_deref());
    let mut s = Sheet::new();
    s.title(ja, en);
    s.pair(
        "発信施設 / Facility",
        &format!("{}（{}）", p.sender_facility_name, p.sender_facility_code),
    );
    s.pair(
        "署名者 / Signer",
        &format!("{}（{}）", p.signer_name, p.signer_id),
    );
    s.pair("署名 / Signature", signature_label(&p.signature_status));
    s.pair(
        "署名鍵指紋 / Fingerprint",
        p.signer_fingerprint.as_deref().unwrap_or("—"),
    );
    s.pair("署名対象のSHA-256", &p.signed_sha256);
    s.pair("作成日時 / Sealed", &p.sealed_at);
    s.pair("文書ID / Item", &p.item_id);
    if let Some(t) = &p.thread_id {
        s.pair("依頼ID / Thread", t);
    }
    s.heading("患者 / Patient");
    s.pair("患者ID / Patient ID", &p.patient_id);
    s.pair("氏名 / Name", &p.patient_name);
    s.heading("件名 / Subject");
    s.text(&p.subject, BODY);
    for (name, value) in &p.fields {
        s.heading(&field_label(name));
        s.text(value, BODY);
    }
    if !p.body.trim().is_empty() {
        s.heading("本文 / Text");
        s.text(&p.body, BODY);
    }
    if !p.attachments.is_empty() {
        s.heading("添付 / Attachments");
        for (name, size, sha) in &p.attachments {
            s.text(&format!("{name}（{size} bytes） SHA-256 {sha}"), 9.0);
        }
    }
    s.gap(12.0);
    s.text(
        &format!(
            "出力者：{}。この PDF の分離署名（.asc）は出力者本人の鍵によるものです。 \
             Exported by the person named; the detached signature (.asc) is theirs.",
            p.exported_by
        ),
        8.0,
    );
    s.render(ja)
}

/// What a credential letter prints.
pub struct CredentialLetter<'a> {
    pub account_id: &'a str,
    pub name: &'a str,
    pub role_ja: &'a str,
    pub facility: Option<&'a str>,
    pub password: &'a str,
    pub issued_on: &'a str,
    pub reset: bool,
}

pub fn credential_letter(c: &CredentialLetter<'_>) -> Result<Vec<u8>> {
    let mut s = Sheet::new();
    if c.reset {
        s.title("パスワード再発行通知書", "Password reset letter");
    } else {
        s.title("利用者ID通知書", "Credential letter");
    }
    s.pair("施設 / Facility", c.facility.unwrap_or("—"));
    s.pair("氏名 / Name", c.name);
    s.pair("役割 / Role", c.role_ja);
    s.pair("ユーザーID / ID", c.account_id);
    s.pair("初期パスワード / Initial password", c.password);
    s.pair("発行日 / Issued", c.issued_on);
    s.gap(10.0);
    s.text(
        "初回ログイン時にパスワードの変更が必要です。この通知書は本人に直接手渡し、\
         パスワード変更後は施錠して保管するか裁断してください。",
        BODY,
    );
    s.text(
        "You must change the password at the first sign-in. Hand this letter to the \
         person in person; afterwards keep it locked away or shred it.",
        9.0,
    );
    s.render("credential letter")
}

/// One facility's line on a statement.
pub struct StatementLine {
    pub code: String,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub active_from: String,
    /// `YYYY-MM-DD`, or empty while active.
    pub active_until: String,
    pub amount_jpy: i64,
}

/// What a monthly statement prints.
pub struct StatementPrint {
    /// `YYYY-MM`.
    pub month: String,
    /// `YYYY-MM-DD`.
    pub first_day: String,
    /// `YYYY-MM-DD`.
    pub last_day: String,
    pub monthly_fee_jpy: i64,
    pub lines: Vec<StatementLine>,
    pub total_jpy: i64,
}

pub fn billing_statement(st: &StatementPrint) -> Result<Vec<u8>> {
    let mut s = Sheet::new();
    s.title(
        &format!("ご利用料金明細書 {}", st.month),
        "Monthly statement",
    );
    s.pair(
        "対象期間 / Period",
        &format!("{} 〜 {}", st.first_day, st.last_day),
    );
    s.pair(
        "料金 / Fee",
        &format!(
            "1施設あたり月額 {} 円（日割りなし） / {} JPY per facility per month, no proration",
            st.monthly_fee_jpy, st.monthly_fee_jpy
        ),
    );
    s.heading("施設別 / Per facility");
    for l in &st.lines {
        s.text(
            &format!(
                "{}  {}  利用 {}〜{}  {} 円",
                l.code, l.name, l.active_from, l.active_until, l.amount_jpy
            ),
            BODY,
        );
    }
    s.gap(6.0);
    s.text(
        &format!(
            "合計 / Total：{} 円（{} 施設）",
            st.total_jpy,
            st.lines.len()
        ),
        13.0,
    );
    s.render(&format!("statement {}", st.month))
}

/// One deleted item on a receipt (no patient data).
pub struct DeletedItem {
    pub envelope_id: String,
    pub kind: String,
    /// The sender's facility code, or `-`.
    pub sender_facility: String,
    /// `YYYY-MM-DD`.
    pub sealed_on: String,
    pub bytes: i64,
    pub attachments: i64,
}

/// What a deletion receipt prints.
pub struct DeletionReceipt {
    /// A patient's request (様式2), else the retention period's end.
    pub patient_request: bool,
    pub run_id: String,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub deleted_at: String,
    pub total_bytes: i64,
    pub blobs_removed: u64,
    pub items: Vec<DeletedItem>,
}

pub fn deletion_receipt(r: &DeletionReceipt) -> Result<Vec<u8>> {
    let mut s = Sheet::new();
    if r.patient_request {
        s.title(
            "データ削除完了通知（様式2）",
            "Deletion receipt (patient request)",
        );
    } else {
        s.title("保存期間満了による削除記録", "Retention deletion record");
    }
    s.pair("処理番号 / Run", &r.run_id);
    s.pair("削除日時 / Deleted at", &r.deleted_at);
    s.pair("件数 / Items", &r.items.len().to_string());
    s.pair("容量 / Bytes", &r.total_bytes.to_string());
    s.pair(
        "削除した添付ファイル / Blob files",
        &r.blobs_removed.to_string(),
    );
    s.heading("削除した文書 / Deleted items");
    for i in &r.items {
        s.text(
            &format!(
                "{}  {}  {}  {}  {} bytes  添付 {}",
                i.envelope_id, i.kind, i.sender_facility, i.sealed_on, i.bytes, i.attachments
            ),
            9.0,
        );
    }
    s.gap(8.0);
    s.text(
        "本通知には患者さんを特定する情報は記載していません。ダウンロード済みの複製は\
         各施設の責任において削除してください。",
        BODY,
    );
    s.render("deletion receipt")
}
