//! The domain's errors, classified once so every edge (HTTP, CLI, later IMAP) maps
//! them the same way.

use std::fmt;

use crate::facility::FacilityCodeError;
use crate::store::error::StoreError;

pub use crate::localized::Localized;

/// Protocol-neutral class of an error; edges map it to a status or exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    Unauthenticated,
    PasswordChangeRequired,
    Locked,
    Forbidden,
    NotFound,
    Conflict,
    /// Stored content failed its integrity check.
    Tampered,
    /// Too many failed attempts from one address; try again later.
    RateLimited,
    /// The server is at capacity for this kind of work; try again shortly.
    Busy,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    FacilityCode(#[from] FacilityCodeError),
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: String,
        reason_ja: String,
    },
    #[error("the ID or password is wrong")]
    BadCredentials,
    #[error("the account is locked; the help desk must unlock it")]
    AccountLocked,
    #[error("not signed in")]
    NotSignedIn,
    #[error("the session has expired; sign in again")]
    SessionExpired,
    #[error("the issued password must be changed before anything else")]
    PasswordChangeRequired,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("the new password does not meet the policy: {0}")]
    WeakPassword(PolicyViolations),
    #[error("not allowed for this account")]
    Forbidden,
    /// The role table refuses the action for this role (DESIGN.md, "Who may do what").
    #[error("a {} account may not {}", .role.as_str(), .action.as_str())]
    RoleForbids {
        role: crate::account::Role,
        action: crate::roles::Action,
    },
    /// Also used for things the actor may not see, so IDs do not leak existence.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// What failed: `key_slot`, `body` or `attachment`; or how a row no
    /// longer matches the place its sender signed (`moved`, `step_reordered`,
    /// `relabelled`, `recipients_changed`, `time_changed`, `step_missing`).
    #[error("{}", tampered_en(.0))]
    Tampered(&'static str),
    #[error("the password was right; the second factor must follow")]
    SecondFactorRequired,
    #[error("the code is wrong or was already used")]
    BadSecondFactor,
    #[error("a second factor is required for this account; enrol one first")]
    SecondFactorEnrolmentRequired,
    #[error(
        "confirm it is you first (your password or second factor): POST /api/v1/session/reauth"
    )]
    ReauthRequired,
    #[error(
        "this facility's accounts sign in only from its own networks (the hospital network or its VPN)"
    )]
    NetworkNotAllowed,
    #[error("this account signs in to mail clients with an app password")]
    AppPasswordRequired,
    #[error("the app password has expired (90 days); make a new one on the settings page")]
    AppPasswordExpired,
    #[error("too many failed sign-ins; wait a moment and try again")]
    TooManyAttempts,
    /// Every render slot stayed taken for the whole wait (`[imaging] max_renders`).
    #[error("too many images are being rendered at once; try again in a moment")]
    RendersBusy,
    /// An attachment refused by imaging intake; `code` names the reason.
    #[error("the file {name:?} cannot be sent: {reason}")]
    AttachmentRefused {
        name: String,
        code: &'static str,
        reason: String,
        reason_ja: String,
    },
    /// The patient inside these files differs from the one entered; the
    /// sender must confirm them (by file name) or remove them.
    #[error("{}", patient_mismatch_en(.0))]
    PatientMismatch(Vec<imaging::Mismatch>),
    /// A DICOM slice that cannot be shown (the file can still be downloaded).
    #[error(transparent)]
    Render(#[from] imaging::RenderError),
    #[error("storage failure")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn differing_fields(
    m: &imaging::Mismatch,
    id: &'static str,
    name: &'static str,
    and: &str,
) -> String {
    let mut parts = Vec::new();
    if m.result.id == imaging::Comparison::Differs {
        parts.push(id);
    }
    if m.result.name == imaging::Comparison::Differs {
        parts.push(name);
    }
    parts.join(and)
}

fn patient_mismatch_en(files: &[imaging::Mismatch]) -> String {
    let list: Vec<String> = files
        .iter()
        .map(|m| {
            format!(
                "{:?} ({})",
                m.file,
                differing_fields(m, "ID", "name", " and ")
            )
        })
        .collect();
    format!(
        "the patient in {} file(s) differs from the patient entered: {}; confirm these files or remove them before sending",
        files.len(),
        list.join(", ")
    )
}

impl Error {
    pub fn invalid(
        field: &'static str,
        reason: impl Into<String>,
        reason_ja: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
            reason_ja: reason_ja.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::FacilityCode(_) | Self::Invalid { .. } | Self::WeakPassword(_) => {
                ErrorKind::Invalid
            }
            Self::WrongCurrentPassword => ErrorKind::Invalid,
            Self::BadCredentials
            | Self::NotSignedIn
            | Self::SessionExpired
            | Self::SecondFactorRequired
            | Self::BadSecondFactor
            | Self::AppPasswordRequired
            | Self::AppPasswordExpired => ErrorKind::Unauthenticated,
            Self::SecondFactorEnrolmentRequired
            | Self::ReauthRequired
            | Self::NetworkNotAllowed => ErrorKind::Forbidden,
            Self::TooManyAttempts => ErrorKind::RateLimited,
            Self::RendersBusy => ErrorKind::Busy,
            Self::AccountLocked => ErrorKind::Locked,
            Self::PasswordChangeRequired => ErrorKind::PasswordChangeRequired,
            Self::Forbidden | Self::RoleForbids { .. } => ErrorKind::Forbidden,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Tampered(_) => ErrorKind::Tampered,
            Self::AttachmentRefused { .. } | Self::Render(_) => ErrorKind::Invalid,
            Self::PatientMismatch(_) => ErrorKind::Conflict,
            Self::Store(StoreError::Conflict(_)) => ErrorKind::Conflict,
            Self::Store(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl Localized for Error {
    fn code(&self) -> &'static str {
        match self {
            Self::FacilityCode(e) => e.code(),
            Self::Invalid { .. } => "invalid",
            Self::BadCredentials => "bad_credentials",
            Self::AccountLocked => "account_locked",
            Self::NotSignedIn => "not_signed_in",
            Self::SessionExpired => "session_expired",
            Self::PasswordChangeRequired => "password_change_required",
            Self::WrongCurrentPassword => "wrong_current_password",
            Self::WeakPassword(_) => "weak_password",
            Self::Forbidden => "forbidden",
            Self::RoleForbids { .. } => "role_forbids",
            Self::SecondFactorRequired => "second_factor_required",
            Self::BadSecondFactor => "bad_second_factor",
            Self::SecondFactorEnrolmentRequired => "second_factor_enrolment_required",
            Self::ReauthRequired => "reauthentication_required",
            Self::NetworkNotAllowed => "network_not_allowed",
            Self::AppPasswordRequired => "app_password_required",
            Self::AppPasswordExpired => "app_password_expired",
            Self::TooManyAttempts => "too_many_attempts",
            Self::RendersBusy => "renders_busy",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) | Self::Store(StoreError::Conflict(_)) => "conflict",
            Self::Tampered("key_slot") => "tampered_key_slot",
            Self::Tampered("attachment") => "tampered_attachment",
            Self::Tampered(
                c @ ("moved" | "step_reordered" | "relabelled" | "recipients_changed"
                | "time_changed" | "step_missing"),
            ) => c,
            Self::Tampered(_) => "tampered_body",
            Self::AttachmentRefused { code, .. } => code,
            Self::PatientMismatch(_) => "patient_mismatch",
            Self::Render(e) => e.code(),
            Self::Store(_) | Self::Internal(_) => "internal",
        }
    }

    fn message_ja(&self) -> String {
        match self {
            Self::FacilityCode(e) => e.message_ja(),
            Self::Invalid { reason_ja, .. } => reason_ja.clone(),
            Self::BadCredentials => "IDまたはパスワードが違います。".into(),
            Self::AccountLocked => {
                "このアカウントはロックされています。ヘルプデスクに解除を依頼してください。".into()
            }
            Self::NotSignedIn => "ログインしてください。".into(),
            Self::SessionExpired => {
                "一定時間操作がなかったため、セッションの有効期限が切れました。もう一度ログインしてください。"
                    .into()
            }
            Self::PasswordChangeRequired => {
                "発行されたパスワードのままです。先にパスワードを変更してください。".into()
            }
            Self::WrongCurrentPassword => "現在のパスワードが違います。".into(),
            Self::WeakPassword(v) => v.message_ja(),
            Self::Forbidden => "この操作は許可されていません。".into(),
            Self::RoleForbids { role, action } => crate::roles::refusal_ja(*role, *action),
            Self::SecondFactorRequired => {
                "続けて認証アプリの確認コードを入力してください。".into()
            }
            Self::BadSecondFactor => {
                "確認コードが違うか、すでに使用されています。".into()
            }
            Self::SecondFactorEnrolmentRequired => {
                "このアカウントには二要素認証が必要です。先に認証アプリを登録してください。".into()
            }
            Self::ReauthRequired => {
                "この操作の前に、パスワードまたは確認コードで本人確認を行ってください。".into()
            }
            Self::NetworkNotAllowed => {
                "この施設のアカウントは、施設が許可したネットワーク（院内ネットワークやVPN）からのみログインできます。接続先のネットワークを確認してください。".into()
            }
            Self::AppPasswordRequired => {
                "メールソフトからの接続にはアプリパスワードを使用してください。".into()
            }
            Self::AppPasswordExpired => {
                "このアプリパスワードは有効期限（作成から90日）が切れています。設定画面で新しく作成してください。"
                    .into()
            }
            Self::TooManyAttempts => {
                "ログインの失敗が続いたため、しばらく待ってから再度お試しください。".into()
            }
            Self::RendersBusy => {
                "画像の表示が混み合っています。しばらくしてから再度お試しください。".into()
            }
            Self::NotFound(_) => "見つかりません。".into(),
            Self::Conflict(msg) => format!("競合が発生しました: {msg}"),
            Self::Tampered(what) => tampered_ja(what).into(),
            Self::AttachmentRefused {
                name, reason_ja, ..
            } => format!("ファイル「{name}」は送信できません：{reason_ja}。"),
            Self::PatientMismatch(files) => {
                let list: Vec<String> = files
                    .iter()
                    .map(|m| format!("「{}」（{}）", m.file, differing_fields(m, "患者ID", "氏名", "・")))
                    .collect();
                format!(
                    "{}件のファイルの患者が入力された患者と異なります：{}。確認して送信するか、ファイルを外してください。",
                    files.len(),
                    list.join("、")
                )
            }
            Self::Render(e) => e.message_ja(),
            Self::Store(StoreError::Conflict(msg)) => format!("既に登録されています: {msg}"),
            Self::Store(_) | Self::Internal(_) => {
                "内部エラーが発生しました。時間をおいて再度お試しください。".into()
            }
        }
    }
}
fn tampered_en(what: &str) -> String {
    match what {
        "moved" => "the item was signed for another item, thread or patient than its record says; \
                    its content is withheld"
            .into(),
        "step_reordered" => {
            "the item was signed as another step of its thread; its content is withheld".into()
        }
        "relabelled" => {
            "the record's kind or step differs from what was signed; its content is withheld".into()
        }
        "recipients_changed" => {
            "the record names a recipient the sender did not address; its content is withheld"
                .into()
        }
        "time_changed" => {
            "the record's time differs from the signed time; its content is withheld".into()
        }
        "step_missing" => "a step of this thread is missing from the records".into(),
        other => {
            format!("the stored {other} failed its integrity check; it was damaged or altered")
        }
    }
}

fn tampered_ja(what: &str) -> &'static str {
    match what {
        "attachment" => {
            "添付ファイルが署名された内容と一致しません。改ざんまたは破損の可能性があります。"
        }
        "moved" => {
            "この項目は別の項目・スレッド・患者のものとして署名されています（移動の疑い）。内容は表示しません。"
        }
        "step_reordered" => {
            "この項目は別の手順番号で署名されています（順序の改ざんの疑い）。内容は表示しません。"
        }
        "relabelled" => {
            "記録上の種別・手順が署名された内容と異なります（書き換えの疑い）。内容は表示しません。"
        }
        "recipients_changed" => {
            "記録上の宛先が送信者の指定した宛先と異なります。内容は表示しません。"
        }
        "time_changed" => {
            "記録上の日時が署名された日時と異なります（日時の書き換えの疑い）。内容は表示しません。"
        }
        "step_missing" => "このスレッドの手順が記録から失われています（削除の疑い）。",
        _ => "この項目は改ざんまたは破損しているため表示できません。",
    }
}

/// What a refused password lacks, per MHLW guideline 6.0 (Q&A シQ-54): at least 13
/// characters mixing letters, digits and symbols, or at least 8 with a second factor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyViolations {
    pub too_short: Option<usize>,
    pub no_letter: bool,
    pub no_digit: bool,
    pub no_symbol: bool,
    pub same_as_current: bool,
    pub contains_id: bool,
    /// On the shipped list of common and breached passwords.
    pub common: bool,
    /// zxcvbn finds it guessable (words, dates, keyboard walks, repeats).
    pub guessable: bool,
}

impl PolicyViolations {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn parts_en(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(min) = self.too_short {
            parts.push(format!("at least {min} characters"));
        }
        if self.no_letter {
            parts.push("a letter".into());
        }
        if self.no_digit {
            parts.push("a digit".into());
        }
        if self.no_symbol {
            parts.push("a symbol".into());
        }
        if self.same_as_current {
            parts.push("a value different from the current password".into());
        }
        if self.contains_id {
            parts.push("no copy of the account ID".into());
        }
        if self.common {
            parts.push("not a common or breached password".into());
        }
        if self.guessable {
            parts.push(
                "something harder to guess (not words, dates, keyboard walks or repeats)".into(),
            );
        }
        parts
    }
}

impl fmt::Display for PolicyViolations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needs {}", self.parts_en().join(", "))
    }
}

impl Localized for PolicyViolations {
    fn code(&self) -> &'static str {
        "weak_password"
    }

    fn message_ja(&self) -> String {
        let mut parts = Vec::new();
        if let Some(min) = self.too_short {
            parts.push(format!("{min}文字以上にしてください"));
        }
        if self.no_letter {
            parts.push("英字を含めてください".to_string());
        }
        if self.no_digit {
            parts.push("数字を含めてください".to_string());
        }
        if self.no_symbol {
            parts.push("記号を含めてください".to_string());
        }
        if self.same_as_current {
            parts.push("現在のパスワードと異なるものにしてください".to_string());
        }
        if self.contains_id {
            parts.push("ユーザーIDを含めないでください".to_string());
        }
        if self.common {
            parts.push(
                "よく使われるパスワードや流出したパスワードの一覧に含まれています。別のものにしてください"
                    .to_string(),
            );
        }
        if self.guessable {
            parts.push(
                "推測されやすい並び（単語・日付・キーボードの並び・繰り返し）です。より長く予測しにくいものにしてください"
                    .to_string(),
            );
        }
        format!("パスワードの条件を満たしていません：{}。", parts.join("、"))
    }
}
