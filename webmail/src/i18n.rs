//! Japanese first, English on request (`?lang=en`, remembered in a cookie).

use axum::http::HeaderMap;

use crate::http::session::cookie;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        let from_query = query.and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "lang")
                .map(|(_, v)| v.to_string())
        });
        match from_query
            .as_deref()
            .or_else(|| cookie(headers, crate::http::session::LANG_COOKIE))
        {
            Some("en") => Self::En,
            _ => Self::Ja,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::Ja => Self::En,
            Self::En => Self::Ja,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Self::Ja => &JA,
            Self::En => &EN,
        }
    }
}

/// Every fixed string on the pages, per language.
pub struct Texts {
    pub app_name: &'static str,
    pub switch_label: &'static str,
    pub login_title: &'static str,
    pub account_id: &'static str,
    pub password: &'static str,
    pub login_button: &'static str,
    pub logout_button: &'static str,
    pub expired_notice: &'static str,
    pub signed_out_notice: &'static str,
    pub password_title: &'static str,
    pub password_forced: &'static str,
    pub current_password: &'static str,
    pub new_password: &'static str,
    pub confirm_password: &'static str,
    pub password_rules: &'static str,
    pub change_button: &'static str,
    pub mismatch: &'static str,
    pub password_changed: &'static str,
    pub welcome: &'static str,
    pub role: &'static str,
    pub facility: &'static str,
    pub settings_password: &'static str,
    pub idle_notice: &'static str,
    pub shared_pc_notice: &'static str,
    pub email_confirm_title: &'static str,
    pub email_confirm_lead: &'static str,
    pub email_confirm_button: &'static str,
    pub email_confirmed: &'static str,
    pub second_factor_title: &'static str,
    pub second_factor_lead: &'static str,
    pub totp_code: &'static str,
    pub recovery_code: &'static str,
    pub verify_button: &'static str,
    pub enrol_title: &'static str,
    pub enrol_required: &'static str,
    pub enrol_lead: &'static str,
    pub enrol_key: &'static str,
    pub recovery_codes_title: &'static str,
    pub recovery_codes_lead: &'static str,
    pub continue_link: &'static str,
    pub enrolled_notice: &'static str,
    pub use_security_key: &'static str,
    pub authenticator_app: &'static str,
    pub security_keys_title: &'static str,
    pub security_key_name: &'static str,
    pub add_security_key: &'static str,
    pub remove_button: &'static str,
    pub idle_warning: &'static str,
    pub idle_stay: &'static str,
}

pub static JA: Texts = Texts {
    app_name: "Renkei 地域医療連携",
    switch_label: "English",
    login_title: "ログイン",
    account_id: "ユーザーID",
    password: "パスワード",
    login_button: "ログイン",
    logout_button: "ログアウト",
    expired_notice: "一定時間操作がなかったため、セッションの有効期限が切れました。もう一度ログインしてください。",
    signed_out_notice: "ログアウトしました。",
    password_title: "パスワードの変更",
    password_forced: "発行されたパスワードでログインしました。ご利用の前に、ご自身でパスワードを決めて変更してください。",
    current_password: "現在のパスワード",
    new_password: "新しいパスワード",
    confirm_password: "新しいパスワード（確認）",
    password_rules: "13文字以上で、英字・数字・記号をすべて含めてください。",
    change_button: "変更の実行",
    mismatch: "新しいパスワードと確認用の入力が一致しません。",
    password_changed: "パスワードを変更しました。",
    welcome: "ようこそ",
    role: "役割",
    facility: "所属施設",
    settings_password: "個人設定：パスワードの変更",
    idle_notice: "操作がないまま時間が経つと自動的にログアウトします。",
    shared_pc_notice: "共用のパソコンでは、ご利用後に必ずログアウトしてください。",
    email_confirm_title: "メールアドレスの確認",
    email_confirm_lead: "このアドレスを Renkei の通知先として確定します。よろしければボタンを押してください。",
    email_confirm_button: "確定する",
    email_confirmed: "メールアドレスを確認しました。以後の通知はこのアドレスに届きます。",
    second_factor_title: "二要素認証",
    second_factor_lead: "認証アプリに表示されている6桁の確認コードを入力してください。",
    totp_code: "確認コード",
    recovery_code: "リカバリーコード（認証アプリが使えない場合）",
    verify_button: "確認",
    enrol_title: "認証アプリの登録",
    enrol_required: "このアカウントには二要素認証が必要です。登録が終わるまで他の操作はできません。",
    enrol_lead: "認証アプリでQRコードを読み取るか、次のキーを入力し、表示された確認コードを入力してください。",
    enrol_key: "キー",
    recovery_codes_title: "リカバリーコード",
    recovery_codes_lead: "認証アプリが使えないときに1回ずつ使えます。この画面でしか表示されません。印刷するか安全な場所に保管してください。",
    continue_link: "続ける",
    enrolled_notice: "認証アプリは登録済みです。",
    use_security_key: "セキュリティキーを使う",
    authenticator_app: "認証アプリ",
    security_keys_title: "セキュリティキー・パスキー",
    security_key_name: "キーの名前（例：診察室のキー）",
    add_security_key: "セキュリティキーを登録",
    remove_button: "削除",
    idle_warning: "操作がないため、まもなく自動的にログアウトします。続ける場合はボタンを押してください。",
    idle_stay: "ログインを続ける",
};

pub static EN: Texts = Texts {
    app_name: "Renkei regional medical network",
    switch_label: "日本語",
    login_title: "Sign in",
    account_id: "Account ID",
    password: "Password",
    login_button: "Sign in",
    logout_button: "Sign out",
    expired_notice: "Your session expired after a period of inactivity. Please sign in again.",
    signed_out_notice: "You have signed out.",
    password_title: "Change password",
    password_forced: "You signed in with an issued password. Choose your own password before going on.",
    current_password: "Current password",
    new_password: "New password",
    confirm_password: "New password (again)",
    password_rules: "At least 13 characters, with letters, digits and symbols.",
    change_button: "Change",
    mismatch: "The two new passwords differ.",
    password_changed: "Your password has been changed.",
    welcome: "Welcome",
    role: "Role",
    facility: "Facility",
    settings_password: "Settings: change password",
    idle_notice: "You are signed out automatically after a period of inactivity.",
    shared_pc_notice: "On a shared computer, always sign out when you are done.",
    email_confirm_title: "Confirm your e-mail address",
    email_confirm_lead: "Press the button to make this address the one Renkei notifies.",
    email_confirm_button: "Confirm",
    email_confirmed: "Your address is confirmed. Notifications go to it from now on.",
    second_factor_title: "Two-factor sign-in",
    second_factor_lead: "Enter the six-digit code your authenticator app shows.",
    totp_code: "Code",
    recovery_code: "Recovery code (if you cannot use the app)",
    verify_button: "Verify",
    enrol_title: "Set up your authenticator app",
    enrol_required: "This account needs a second factor. Nothing else is available until you set it up.",
    enrol_lead: "Scan the QR code with your authenticator app, or enter the key below, then enter the code it shows.",
    enrol_key: "Key",
    recovery_codes_title: "Recovery codes",
    recovery_codes_lead: "Each works once when you cannot use the app. They are shown only now: print them or keep them somewhere safe.",
    continue_link: "Continue",
    enrolled_notice: "Your authenticator app is set up.",
    use_security_key: "Use a security key",
    authenticator_app: "Authenticator app",
    security_keys_title: "Security keys and passkeys",
    security_key_name: "Key name (e.g. office key)",
    add_security_key: "Register a security key",
    remove_button: "Remove",
    idle_warning: "You will be signed out soon because of inactivity. Press the button to stay signed in.",
    idle_stay: "Stay signed in",
};
