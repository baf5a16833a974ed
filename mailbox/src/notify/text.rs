//! What a notice mail says: the kind of item, the facility and a link, never
//! a patient's name or ID, a subject, or any content.

use super::{NotifyReason, PendingNotice};
use crate::workflow::ThreadKind;

/// Japanese and English names of an item's kind; a kind this network does not
/// know is called a message (the free-form kind is the sender's text).
pub fn kind_labels(kind: Option<&str>) -> (&'static str, &'static str) {
    match kind.and_then(|k| ThreadKind::parse(k).ok()) {
        Some(ThreadKind::ReadingRequest) => ("読影依頼", "reading request"),
        Some(ThreadKind::Referral) => ("患者紹介", "referral"),
        Some(ThreadKind::Share) => ("医療情報連携・経過報告", "information share"),
        Some(ThreadKind::Booking) => ("予約受付", "booking"),
        Some(ThreadKind::Pathway) => ("地域連携クリティカルパス", "care pathway"),
        None => ("メッセージ", "message"),
    }
}

/// The text of one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeText {
    pub subject: String,
    pub body: String,
}

const FOOTER: &str = "このメールには患者情報を含めていません。内容は Renkei にサインインしてご確認ください。\n\
This mail carries no patient data. Sign in to Renkei to read the item.\n";

/// Where a notice links: the thread, the item, or nothing.
pub fn link(base_url: &str, row: &PendingNotice) -> String {
    let base = base_url.trim_end_matches('/');
    match (&row.thread_id, &row.envelope_id) {
        (Some(t), _) => format!("{base}/threads/{t}"),
        (None, Some(e)) => format!("{base}/items/{e}"),
        (None, None) => format!("{base}/"),
    }
}

/// What a notice may say besides its reason, looked up when it is sent: the
/// facility's name and the thread's urgency and wanted-by date, none of which
/// is patient data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeFacts {
    /// The name of the facility concerned.
    pub facility: Option<String>,
    /// The thread was sent as urgent (至急).
    pub urgent: bool,
    /// The date the requester wants an answer by (`YYYY-MM-DD`).
    pub wanted_by: Option<String>,
}

impl NoticeFacts {
    /// The lines a notice about a thread carries: urgency and wanted-by date.
    fn lines(&self) -> String {
        let mut out = String::new();
        if self.urgent {
            out.push_str("緊急度: 至急 / Urgency: urgent\n");
        }
        if let Some(d) = &self.wanted_by {
            out.push_str(&format!("希望期日: {d} / Wanted by: {d}\n"));
        }
        out
    }
}

/// The security notice of a password reset with the network recovery key
/// (`Notices::security_notice`'s `what`, kept as the row's kind).
pub const RECOVERY_KEY_RESET: &str = "recovery_key_reset";

/// What a notice says, with what `facts` tells of the facility and thread.
pub fn compose(row: &PendingNotice, facts: &NoticeFacts, base_url: &str) -> NoticeText {
    let (kind_ja, kind_en) = kind_labels(row.kind.as_deref());
    let facility = facts.facility.as_deref();
    let from_ja = facility.map(|f| format!("{f} から")).unwrap_or_default();
    let from_en = facility.map(|f| format!(" from {f}")).unwrap_or_default();
    let link = link(base_url, row);
    let reason = NotifyReason::parse(&row.reason).unwrap_or(NotifyReason::NewItem);
    let (subject, ja, en) = match reason {
        NotifyReason::NewItem => (
            format!("[Renkei] {kind_ja}が届きました / New {kind_en}"),
            format!("{from_ja}{kind_ja}が届きました。"),
            format!("A new {kind_en} has arrived{from_en}."),
        ),
        NotifyReason::Report => (
            "[Renkei] 読影レポートが届きました / Reading report".to_string(),
            format!("{from_ja}読影レポートが届きました。"),
            format!("A reading report has arrived{from_en}."),
        ),
        NotifyReason::Reply => (
            "[Renkei] 返書が届きました / Reply letter".to_string(),
            format!("{from_ja}返書が届きました。"),
            format!("A reply letter has arrived{from_en}."),
        ),
        NotifyReason::ActionNeeded => (
            format!("[Renkei] {kind_ja}の対応をお願いします / Action needed"),
            format!("{from_ja}{kind_ja}について対応をお願いします。"),
            format!("A {kind_en}{from_en} waits for your action."),
        ),
        NotifyReason::Declined => (
            format!("[Renkei] {kind_ja}が辞退されました / {kind_en} declined"),
            format!("{from_ja}{kind_ja}を受けられないとの返事がありました。理由をご確認ください。"),
            format!("The {kind_en} was declined{from_en}. See the reason in Renkei."),
        ),
        NotifyReason::Withdrawn => (
            format!("[Renkei] {kind_ja}が取り下げられました / {kind_en} withdrawn"),
            format!("{from_ja}{kind_ja}が取り下げられました。"),
            format!("The {kind_en} was withdrawn{from_en}."),
        ),
        NotifyReason::BookingConfirmed => (
            "[Renkei] 予約が確定しました / Booking confirmed".to_string(),
            format!("{from_ja}予約が確定しました。日時をご確認ください。"),
            format!("The booking was confirmed{from_en}. See the time in Renkei."),
        ),
        NotifyReason::BookingRescheduled => (
            "[Renkei] 予約日時の変更が提案されました / New time proposed".to_string(),
            format!("{from_ja}予約の別の日時が提案されました。ご確認ください。"),
            format!("Another time was proposed for the booking{from_en}."),
        ),
        NotifyReason::BookingCancelled => (
            "[Renkei] 予約が取り消されました / Booking cancelled".to_string(),
            format!("{from_ja}予約が取り消されました。"),
            format!("The booking was cancelled{from_en}."),
        ),
        NotifyReason::Assigned => (
            format!("[Renkei] {kind_ja}の担当になりました / Assigned to you"),
            format!("地域連携室から{kind_ja}の担当に指定されました。"),
            format!("The liaison office assigned a {kind_en} to you."),
        ),
        NotifyReason::Escalation => (
            format!("[Renkei] 未開封の{kind_ja}があります / Unopened {kind_en}"),
            format!("{from_ja}届いた{kind_ja}が、まだ開封されていません。"),
            format!("A {kind_en}{from_en} has not been opened yet."),
        ),
        NotifyReason::DeliveryFailed => (
            format!("[Renkei] {kind_ja}を届けられませんでした / Not delivered"),
            format!(
                "送信した{kind_ja}を届けられませんでした。送信済みフォルダで理由をご確認ください。"
            ),
            format!("A {kind_en} you sent could not be delivered. The reason is shown in Sent."),
        ),
        NotifyReason::SecurityChange if row.kind.as_deref() == Some(RECOVERY_KEY_RESET) => (
            "[Renkei] パスワードがリセットされました / Your password was reset".to_string(),
            "ヘルプデスクが、ネットワーク復旧鍵を使ってあなたのパスワードをリセットしました（運用者2名で実施）。以前の文書はそのまま読めます。心当たりがない場合は、ヘルプデスクにご連絡ください。"
                .to_string(),
            "The help desk reset your password with the network recovery key (two operators); your earlier items stay readable. If you did not ask for this, contact the help desk."
                .to_string(),
        ),
        NotifyReason::SecurityChange => (
            "[Renkei] ログイン設定が変更されました / Sign-in settings changed".to_string(),
            "ヘルプデスクがあなたの二要素認証をリセットしました。心当たりがない場合は、ヘルプデスクにご連絡ください。"
                .to_string(),
            "The help desk reset your second factor. If you did not ask for this, contact the help desk."
                .to_string(),
        ),
        NotifyReason::KeysRestored => (
            "[Renkei] 以前の項目が開けるようになりました / Earlier items open again".to_string(),
            "所属施設の地域連携室が、パスワード再発行前の鍵の復元を承認しました。次回のサインインから以前の項目も開けます。心当たりがない場合は、ヘルプデスクにご連絡ください。"
                .to_string(),
            "A liaison of your facility approved restoring your keys from before the password reset. Earlier items open from your next sign-in. If you did not ask for this, contact the help desk."
                .to_string(),
        ),
        NotifyReason::ConfirmAddress => {
            let token = row.token.as_deref().unwrap_or_default();
            let base = base_url.trim_end_matches('/');
            let confirm = format!("{base}/email/confirm?token={token}");
            return NoticeText {
                subject: "[Renkei] メールアドレスの確認 / Confirm your address".into(),
                body: format!(
                    "Renkei の通知先としてこのアドレスが登録されました。\n\
                     次のリンクを開いて確認してください（24時間有効）。\n{confirm}\n\n\
                     This address was entered to receive Renkei notifications.\n\
                     Open the link above to confirm it (valid for 24 hours).\n\
                     心当たりがない場合はこのメールを破棄してください。 / \
                     If you did not ask for this, ignore this mail.\n"
                ),
            };
        }
    };
    let subject = if facts.urgent {
        subject.replacen("[Renkei] ", "[Renkei] 【至急】", 1)
    } else {
        subject
    };
    let facts = facts.lines();
    NoticeText {
        subject,
        body: format!("{ja}\n{facts}{link}\n\n{en}\n{link}\n\n{FOOTER}"),
    }
}

/// One daily summary for several rows of one person.
pub fn compose_digest(lines: &[(PendingNotice, NoticeFacts)], base_url: &str) -> NoticeText {
    let mut body = format!(
        "前回のお知らせ以降の Renkei の新着は {} 件です。 / {} update(s) since the last summary.\n\n",
        lines.len(),
        lines.len()
    );
    for (row, facts) in lines {
        let one = compose(row, facts, base_url);
        let title = one.subject.trim_start_matches("[Renkei] ").to_string();
        body.push_str(&format!("・{title}\n  {}\n", link(base_url, row)));
    }
    body.push('\n');
    body.push_str(FOOTER);
    NoticeText {
        subject: format!("[Renkei] 本日のお知らせ {} 件 / Daily summary", lines.len()),
        body,
    }
}
