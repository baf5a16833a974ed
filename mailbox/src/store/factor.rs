//! Storage of second factors: TOTP secrets (sealed), recovery codes and app
//! passwords (hashed), and the per-facility requirement.

use async_trait::async_trait;

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TotpRow {
    pub sealed_secret: Option<Vec<u8>>,
    pub pending_secret: Option<Vec<u8>>,
    pub last_step: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppPasswordRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub locked_key: Option<Vec<u8>>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebauthnRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// webauthn-rs's `Passkey` as JSON.
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What the operator sees per account: which factors it has, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FactorSummaryRow {
    pub account_id: String,
    pub totp: bool,
    pub recovery_codes_left: i64,
    pub app_passwords: i64,
    pub security_keys: i64,
}

#[async_trait]
pub trait FactorStore: Send + Sync {
    async fn totp(&self, account: &str) -> StoreResult<Option<TotpRow>>;
    /// Starts (or restarts) an enrolment; a confirmed secret stays until confirmed over.
    async fn set_totp_pending(&self, account: &str, sealed: &[u8], now: i64) -> StoreResult<()>;
    /// Makes the pending secret the confirmed one, with `step` already used.
    async fn confirm_totp(&self, account: &str, step: i64) -> StoreResult<()>;
    /// Accepts `step` once: false if it (or a later one) was already used.
    async fn use_totp_step(&self, account: &str, step: i64) -> StoreResult<bool>;
    async fn delete_totp(&self, account: &str) -> StoreResult<()>;

    /// Replaces every recovery code of the account.
    async fn replace_recovery_codes(&self, account: &str, hashes: &[Vec<u8>]) -> StoreResult<()>;
    /// Marks an unused code used; false if there is none such.
    async fn use_recovery_code(&self, account: &str, hash: &[u8], now: i64) -> StoreResult<bool>;
    async fn recovery_codes_left(&self, account: &str) -> StoreResult<i64>;
    async fn delete_recovery_codes(&self, account: &str) -> StoreResult<()>;

    async fn set_has_second_factor(&self, account: &str, has: bool) -> StoreResult<()>;

    async fn insert_app_password(&self, row: &AppPasswordRow) -> StoreResult<()>;
    async fn app_passwords(&self, account: &str) -> StoreResult<Vec<AppPasswordRow>>;
    async fn app_password_by_hash(
        &self,
        account: &str,
        hash: &[u8],
    ) -> StoreResult<Option<AppPasswordRow>>;
    async fn touch_app_password(&self, id: &str, now: i64, from: Option<&str>) -> StoreResult<()>;
    /// Revokes one; false if the account has no such app password.
    async fn delete_app_password(&self, account: &str, id: &str) -> StoreResult<bool>;
    async fn delete_app_passwords_of(&self, account: &str) -> StoreResult<u64>;
    /// Re-locks each app password's copy of the key (after a key replacement: none).
    async fn set_app_password_key(&self, id: &str, locked_key: Option<&[u8]>) -> StoreResult<()>;

    /// The facility's override of the network-wide requirement, if any.
    async fn facility_second_factor(&self, facility: &str) -> StoreResult<Option<bool>>;
    async fn set_facility_second_factor(
        &self,
        facility: &str,
        required: Option<bool>,
    ) -> StoreResult<()>;

    async fn factor_summaries(&self) -> StoreResult<Vec<FactorSummaryRow>>;

    async fn insert_webauthn(&self, row: &WebauthnRow) -> StoreResult<()>;
    async fn webauthn_credentials(&self, account: &str) -> StoreResult<Vec<WebauthnRow>>;
    /// After a sign-in: the new counter (inside `passkey`) and the time.
    async fn update_webauthn(&self, id: &str, passkey: &str, used_at: i64) -> StoreResult<()>;
    async fn rename_webauthn(&self, account: &str, id: &str, name: &str) -> StoreResult<bool>;
    async fn delete_webauthn(&self, account: &str, id: &str) -> StoreResult<bool>;
    async fn delete_webauthn_of(&self, account: &str) -> StoreResult<u64>;
}
