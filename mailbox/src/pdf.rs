//! PDF exports: reading reports, referral and reply letters and any other text
//! item, credential letters, billing statements and deletion receipts.
//!
//! Text files and prints leave Renkei only as PDF (FAQ: 文字情報は全てPDF形式).
//! Japanese text is set in IPAex Gothic, compiled into the binary
//! (`mailbox/fonts/`), and each PDF embeds only the subset of glyphs it uses
//! (krilla subsets and writes a ToUnicode map, so the text can be searched and
//! extracted). A4 portrait, simple flowing layout with page numbers.

use std::sync::LazyLock;

use krilla::Document;
use krilla::geom::Point;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};

use crate::error::{Error, Result};

static FONT_BYTES: &[u8] = include_bytes!("../fonts/ipaexg.ttf");

static FONT: LazyLock<Option<Font>> =
    LazyLock::new(|| Font::new(krilla::Data::from(FONT_BYTES.to_vec()), 0));

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const BODY: f32 = 10.5;

/// One line of text placed on a page.
struct Run {
    x: f32,
    y: f32,
    size: f32,
    text: String,
}

/// Lines laid out onto A4 pages; rendered at the end.
struct Sheet {
    pages: Vec<Vec<Run>>,
    y: f32,
}

/// A rough advance: full-width glyphs are one em, Latin about 0.6 em in IPAex
/// Gothic. Used only to break lines, so erring wide is harmless.
fn advance(c: char, size: f32) -> f32 {
    if c.is_ascii() { size * 0.6 } else { size }
}

fn width(s: &str, size: f32) -> f32 {
    s.chars().map(|c| advance(c, size)).sum()
}

/// Where values start beside their labels.
const VALUE_INDENT: f32 = 150.0;

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect()
}

impl Sheet {
    fn new() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn ensure(&mut self, height: f32) {
        if self.y + height > HEIGHT - MARGIN {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn place(&mut self, x: f32, size: f32, text: String) {
        self.ensure(size * 1.6);
        self.y += size * 1.25;
        let y = self.y;
        if let Some(page) = self.pages.last_mut() {
            page.push(Run { x, y, size, text });
        }
        self.y += size * 0.35;
    }

    /// Flowing text at `indent`, broken at the right margin and at newlines.
    fn text_at(&mut self, indent: f32, text: &str, size: f32) {
        let max = WIDTH - MARGIN - (MARGIN + indent);
        for para in text.split('\n') {
            let para = clean(para);
            if para.is_empty() {
                self.y += size * 0.8;
                continue;
            }
            let mut line = String::new();
            let mut w = 0.0;
            for c in para.chars() {
                let a = advance(c, size);
                if w + a > max && !line.is_empty() {
                    // Latin words are not split: carry the word to the next line.
                    let carry = match line.rfind(' ') {
                        Some(p)
                            if c.is_ascii_graphic()
                                && line[p + 1..].chars().all(|x| x.is_ascii_graphic()) =>
                        {
                            let tail = line[p + 1..].to_string();
                            line.truncate(p);
                            tail
                        }
                        _ => String::new(),
                    };
                    self.place(MARGIN + indent, size, std::mem::take(&mut line));
                    w = width(&carry, size);
                    line = carry;
                }
                line.push(c);
                w += a;
            }
            if !line.is_empty() {
                self.place(MARGIN + indent, size, line);
            }
        }
    }

    fn text(&mut self, text: &str, size: f32) {
        self.text_at(0.0, text, size);
    }

    fn title(&mut self, ja: &str, en: &str) {
        self.text(ja, 18.0);
        self.text(en, 9.0);
        self.gap(8.0);
    }

    fn heading(&mut self, text: &str) {
        self.gap(6.0);
        self.text(text, 12.0);
    }

    /// `label`: `value`, the value indented under a long label.
    fn pair(&mut self, label: &str, value: &str) {
        let label = format!("{label}：");
        self.text(&label, BODY);
        // The value beside a label that fits, else on the next line.
        if width(&label, BODY) < VALUE_INDENT - 6.0 {
            self.y -= BODY * 1.6;
        }
        self.text_at(
            VALUE_INDENT,
            if value.is_empty() { "—" } else { value },
            BODY,
        );
    }

    fn gap(&mut self, pts: f32) {
        self.y += pts;
    }

    fn render(self, title: &str) -> Result<Vec<u8>> {
        let font = FONT
            .clone()
            .ok_or_else(|| Error::Internal("the built-in PDF font cannot be read".into()))?;
        let mut document = Document::new();
        document.set_metadata(
            krilla::metadata::Metadata::new()
                .title(title.to_string())
                .producer("Renkei".to_string()),
        );
        let total = self.pages.len();
        let settings = PageSettings::from_wh(WIDTH, HEIGHT)
            .ok_or_else(|| Error::Internal("page size".into()))?;
        for (n, runs) in self.pages.into_iter().enumerate() {
            let mut page = document.start_page_with(settings.clone());
            let mut surface = page.surface();
            for r in runs {
                surface.draw_text(
                    Point::from_xy(r.x, r.y),
                    font.clone(),
                    r.size,
                    &r.text,
                    false,
                    TextDirection::Auto,
                );
            }
            surface.draw_text(
                Point::from_xy(MARGIN, HEIGHT - MARGIN / 2.0),
                font.clone(),
                8.0,
                &format!("Renkei — {title} — {} / {total}", n + 1),
                false,
                TextDirection::Auto,
            );
            surface.finish();
            page.finish();
        }
        document
            .finish()
            .map_err(|e| Error::Internal(format!("writing the PDF: {e:?}")))
    }
}

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

pub fn billing_statement(st: &crate::records::billing::Statement) -> Result<Vec<u8>> {
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
            crate::records::billing::MONTHLY_FEE_JPY,
            crate::records::billing::MONTHLY_FEE_JPY
        ),
    );
    s.heading("施設別 / Per facility");
    for l in &st.lines {
        let until = l.active_until.map(|d| d.to_string()).unwrap_or_default();
        s.text(
            &format!(
                "{}  {}  利用 {}〜{}  {} 円",
                l.code, l.name, l.active_from, until, l.amount_jpy
            ),
            BODY,
        );
    }
    s.gap(6.0);
    s.text(
        &format!(
            "合計 / Total：{} 円（{} 施設）",
            st.total_jpy(),
            st.lines.len()
        ),
        13.0,
    );
    s.render(&format!("statement {}", st.month))
}

pub fn deletion_receipt(r: &crate::records::DeletionReport) -> Result<Vec<u8>> {
    let mut s = Sheet::new();
    if r.reason == "patient_request" {
        s.title(
            "データ削除完了通知（様式2）",
            "Deletion receipt (patient request)",
        );
    } else {
        s.title("保存期間満了による削除記録", "Retention deletion record");
    }
    s.pair("処理番号 / Run", &r.run_id);
    let when = chrono::DateTime::from_timestamp(r.at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    s.pair("削除日時 / Deleted at", &when);
    s.pair("件数 / Items", &r.items.len().to_string());
    s.pair("容量 / Bytes", &r.total_bytes().to_string());
    s.pair(
        "削除した添付ファイル / Blob files",
        &r.blobs_removed.to_string(),
    );
    s.heading("削除した文書 / Deleted items");
    for i in &r.items {
        let sealed = chrono::DateTime::from_timestamp(i.created_at, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        s.text(
            &format!(
                "{}  {}  {}  {}  {} bytes  添付 {}",
                i.envelope_id,
                i.kind,
                i.sender_facility.as_deref().unwrap_or("-"),
                sealed,
                i.body_size + i.attachment_bytes,
                i.attachments
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn long_text_flows_onto_more_pages() {
        let mut s = Sheet::new();
        s.text(&"所見".repeat(5000), BODY);
        assert!(s.pages.len() > 2);
        let pdf = s.render("test").unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // Subset, not the whole 6 MB font.
        assert!(pdf.len() < 400_000, "{}", pdf.len());
    }
}
