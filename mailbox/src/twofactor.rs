//! Second factors on the directory: TOTP (RFC 6238) with one-time recovery
//! codes, the two-step sign-in, re-authentication before sensitive actions, app
//! passwords for mail clients, the per-address limit on failed sign-ins, and the
//! operator's reset.
//!
//! Storage choices: the TOTP secret is sealed (AES-256-GCM, the account ID as
//! associated data) under the server's second-factor key, which lives outside
//! the database like the blind-index key. Recovery codes and app passwords are
//! 80- and 100-bit random strings, stored as SHA-256. Each app password also
//! locks a copy of the person's OpenPGP key (the same Argon2 S2K as the password
//! lock), so a mail client's session can open items without the account password.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::account::{Account, AccountId, Role};
use crate::directory::{CurrentSession, Directory, SessionToken};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::password::Password;
use crate::store::factor::{AppPasswordRow, FactorSummaryRow, WebauthnRow};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Uuid, Webauthn,
};

/// RFC 6238 parameters: 30-second steps, six digits, HMAC-SHA-1 (what every
/// authenticator app supports), one step of clock skew either way.
pub const TOTP_STEP_SECS: i64 = 30;
pub const TOTP_DIGITS: u32 = 6;
pub const TOTP_SKEW_STEPS: i64 = 1;
pub const RECOVERY_CODES: usize = 10;
/// How long the second step of a sign-in may take after the password.
pub const PENDING_VALID_FOR: Duration = Duration::from_secs(5 * 60);
/// How long a re-authentication covers sensitive actions.
pub const REAUTH_VALID_FOR: Duration = Duration::from_secs(5 * 60);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn crypto(e: renkei_crypto::CryptoError) -> Error {
    Error::Internal(format!("crypto: {e}"))
}

fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

// --- the server's sealing key --------------------------------------------------

/// The key TOTP secrets are sealed under; kept outside the database.
#[derive(Clone)]
pub struct SecondFactorKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SecondFactorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecondFactorKey([REDACTED])")
    }
}

impl SecondFactorKey {
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(k.as_mut());
        Self(k)
    }

    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            hex::decode(text.trim())
                .map_err(|_| Error::Internal("the second-factor key is not hex".into()))?,
        );
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::Internal("the second-factor key is not 32 bytes".into()))?;
        Ok(Self(Zeroizing::new(arr)))
    }

    fn cipher(&self) -> Result<Aes256Gcm> {
        Aes256Gcm::new_from_slice(self.0.as_ref())
            .map_err(|_| Error::Internal("second-factor key length".into()))
    }

    /// `nonce (12) || ciphertext+tag`, bound to the account.
    fn seal(&self, account: &AccountId, secret: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: account.as_str().as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("sealing a TOTP secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open(&self, account: &AccountId, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < 12 + 16 {
            return Err(Error::Tampered("key_slot"));
        }
        let (nonce, ct) = sealed.split_at(12);
        self.cipher()?
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: account.as_str().as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::Internal(
                    "a TOTP secret does not open with this server's second-factor key".into(),
                )
            })
    }
}

// --- RFC 6238 --------------------------------------------------------------------

/// The code of one 30-second step (RFC 4226 dynamic truncation).
pub fn totp_code(secret: &[u8], step: i64) -> u32 {
    let Ok(mut mac) = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret) else {
        return u32::MAX; // HMAC takes keys of any length; never reached.
    };
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(TOTP_DIGITS)
}

/// The step within the skew window whose code matches, if any.
pub fn totp_match(secret: &[u8], code: &str, unix: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let current = unix.div_euclid(TOTP_STEP_SECS);
    (current - TOTP_SKEW_STEPS..=current + TOTP_SKEW_STEPS).find(|s| {
        subtle::ConstantTimeEq::ct_eq(
            &totp_code(secret, *s).to_be_bytes()[..],
            &wanted.to_be_bytes()[..],
        )
        .into()
    })
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Random text from an alphabet without look-alikes, grouped by four.
fn random_code(chars: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";
    let mut bytes = vec![0u8; chars];
    OsRng.fill_bytes(&mut bytes);
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    out
}

/// Codes are compared without case, spaces or dashes.
fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

// --- what the edges see -----------------------------------------------------------

/// What a person enters as the second step.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    Totp(String),
    RecoveryCode(String),
    /// The browser's answer to the challenge of `webauthn_challenge`.
    WebAuthn(Box<PublicKeyCredential>),
}

/// A sign-in waiting for its second factor: the password was right and the key
/// is unlocked in memory, but no session exists yet.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingToken(String);

impl PendingToken {
    pub fn from_client(value: &str) -> Self {
        Self(value.trim().to_string())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingToken([REDACTED])")
    }
}

/// The outcome of the password step.
#[derive(Debug)]
pub enum SignInStep {
    /// No factor is enrolled: the session exists (it may still have to enrol).
    Done(SessionToken, Box<CurrentSession>),
    /// A factor is enrolled: the second step must follow.
    SecondFactor {
        pending: PendingToken,
        methods: Vec<&'static str>,
    },
}

/// Shown once at the start of a TOTP enrolment.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    /// The QR code of the URI, as an SVG document rendered here.
    pub qr_svg: String,
}

#[derive(Debug, Clone)]
pub struct AppPasswordView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_from: Option<String>,
}

impl From<AppPasswordRow> for AppPasswordView {
    fn from(r: AppPasswordRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            last_used_from: r.last_used_from,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SecurityKeyView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<WebauthnRow> for SecurityKeyView {
    fn from(r: WebauthnRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FactorsView {
    pub security_keys: Vec<SecurityKeyView>,
    pub required: bool,
    pub totp: bool,
    pub totp_pending: bool,
    pub recovery_codes_left: i64,
    pub app_passwords: Vec<AppPasswordView>,
}

// --- memory-only state ------------------------------------------------------------

struct Pending {
    account: AccountId,
    /// The WebAuthn challenge issued for this sign-in, if one was asked for.
    webauthn: Option<PasskeyAuthentication>,
    keyring: Option<Keyring>,
    remote: Option<String>,
    created: Instant,
}

/// Pending sign-ins, recent re-authentications and per-address failures; all in
/// process memory, like the keyrings.
#[derive(Default)]
pub struct FactorState {
    pending: Mutex<HashMap<Vec<u8>, Pending>>,
    reauth: Mutex<HashMap<Vec<u8>, Instant>>,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Session token hash → the app password it was opened with, so revoking
    /// one also ends the mail sessions it opened.
    mail_sessions: Mutex<HashMap<Vec<u8>, String>>,
    /// Session hash → a security-key registration under way (state, name).
    registrations: Mutex<HashMap<Vec<u8>, PendingRegistration>>,
    /// Session hash → the WebAuthn challenge of a re-authentication.
    reauth_challenges: Mutex<HashMap<Vec<u8>, PasskeyAuthentication>>,
}

struct PendingRegistration {
    state: PasskeyRegistration,
    name: String,
    created: Instant,
}

/// Failed sign-ins allowed from one address within a window, on the web and
/// IMAP together, before that address is refused for the rest of the window.
#[derive(Debug, Clone, Copy)]
pub struct AddressLimit {
    pub failures: u32,
    pub window: Duration,
}

impl Default for AddressLimit {
    fn default() -> Self {
        Self {
            failures: 30,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl FactorState {
    pub(crate) fn address_blocked(&self, addr: Option<&str>, limit: AddressLimit) -> bool {
        let Some(addr) = addr else { return false };
        let Ok(mut map) = self.failures.lock() else {
            return false;
        };
        let Some(q) = map.get_mut(addr) else {
            return false;
        };
        while q.front().is_some_and(|t| t.elapsed() >= limit.window) {
            q.pop_front();
        }
        q.len() >= limit.failures as usize
    }

    pub(crate) fn address_failed(&self, addr: Option<&str>, limit: AddressLimit) {
        let Some(addr) = addr else { return };
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                // Bound the memory an address sweep can take.
                map.retain(|_, q| q.back().is_some_and(|t| t.elapsed() < limit.window));
            }
            let q = map.entry(addr.to_string()).or_default();
            q.push_back(Instant::now());
            while q.len() > limit.failures as usize + 1 {
                q.pop_front();
            }
        }
    }

    fn take_pending(&self, token: &PendingToken) -> Option<Pending> {
        let mut map = self.pending.lock().ok()?;
        map.retain(|_, p| p.created.elapsed() < PENDING_VALID_FOR);
        map.remove(&sha256(token.expose()))
    }

    fn put_pending(&self, token: &PendingToken, pending: Pending) {
        if let Ok(mut map) = self.pending.lock() {
            map.insert(sha256(token.expose()), pending);
        }
    }

    fn forget_account(&self, account: &AccountId) {
        if let Ok(mut map) = self.pending.lock() {
            map.retain(|_, p| p.account != *account);
        }
    }

    pub(crate) fn forget_session(&self, token_hash: &[u8]) {
        if let Ok(mut map) = self.reauth.lock() {
            map.remove(token_hash);
        }
        if let Ok(mut map) = self.mail_sessions.lock() {
            map.remove(token_hash);
        }
    }

    fn sessions_of_app_password(&self, app: &str) -> Vec<Vec<u8>> {
        self.mail_sessions
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(_, a)| a.as_str() == app)
                    .map(|(s, _)| s.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

// --- the directory's second-factor operations ----------------------------------------

impl Directory {
    /// Whether the account must have a second factor: the facility's setting if
    /// the operator made one, else the network's.
    pub async fn second_factor_required(&self, account: &Account) -> Result<bool> {
        if let Some(code) = &account.facility
            && let Some(required) = self.store().facility_second_factor(code.as_str()).await?
        {
            return Ok(required);
        }
        Ok(self.auth_policy().second_factor_required)
    }

    pub(crate) fn enrolment_pending(&self, account: &Account, required: bool) -> bool {
        required && !account.has_second_factor
    }

    fn factor_key(&self) -> Result<&SecondFactorKey> {
        self.second_factor_key()
            .ok_or_else(|| Error::Internal("no second-factor key is configured".into()))
    }

    /// After the password: a session at once, or a pending sign-in for the
    /// second step. Refused while the address is over its failure limit.
    pub async fn sign_in_password(
        &self,
        id_input: &str,
        password: &Password,
        remote_addr: Option<String>,
    ) -> Result<SignInStep> {
        let limit = self.auth_policy().address_limit;
        if self
            .factor_state()
            .address_blocked(remote_addr.as_deref(), limit)
        {
            tracing::warn!(
                remote = remote_addr.as_deref().unwrap_or("-"),
                "sign-in refused: too many failures from this address"
            );
            return Err(Error::TooManyAttempts);
        }
        let checked = self
            .check_password(id_input, password, remote_addr.clone())
            .await;
        let account = match checked {
            Ok(a) => a,
            Err(e) => {
                if matches!(e, Error::BadCredentials | Error::AccountLocked) {
                    self.factor_state()
                        .address_failed(remote_addr.as_deref(), limit);
                }
                return Err(e);
            }
        };
        if !account.has_second_factor {
            let (token, session) = self
                .open_session(account, password, None, remote_addr)
                .await?;
            return Ok(SignInStep::Done(token, Box::new(session)));
        }
        let keyring = self.unlock_keyring(&account, password).await?;
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        let token = PendingToken(hex::encode(raw));
        self.factor_state().put_pending(
            &token,
            Pending {
                account: account.id.clone(),
                webauthn: None,
                keyring,
                remote: remote_addr,
                created: Instant::now(),
            },
        );
        tracing::info!(
            account = account.id.as_str(),
            "password accepted; waiting for the second factor"
        );
        let mut methods = vec!["totp", "recovery_code"];
        if !self
            .store()
            .webauthn_credentials(account.id.as_str())
            .await?
            .is_empty()
        {
            methods.push("webauthn");
        }
        Ok(SignInStep::SecondFactor {
            pending: token,
            methods,
        })
    }

    /// The second step: the session is created only now.
    pub async fn complete_sign_in(
        &self,
        pending: &PendingToken,
        factor: &SecondFactor,
        remote_addr: Option<String>,
    ) -> Result<(SessionToken, CurrentSession)> {
        let limit = self.auth_policy().address_limit;
        let remote = remote_addr.clone();
        if self
            .factor_state()
            .address_blocked(remote.as_deref(), limit)
        {
            return Err(Error::TooManyAttempts);
        }
        let Some(p) = self.factor_state().take_pending(pending) else {
            return Err(Error::SessionExpired);
        };
        let account = self.account(&p.account).await?;
        if account.locked || account.removed {
            return Err(Error::AccountLocked);
        }
        match self
            .check_factor(&account, factor, remote.as_deref(), p.webauthn.as_ref())
            .await
        {
            Ok(()) => {}
            Err(Error::BadSecondFactor) => {
                // A wrong code may be retried within the same pending sign-in.
                let locked = self.account(&p.account).await?.locked;
                if !locked {
                    self.factor_state().put_pending(pending, p);
                    return Err(Error::BadSecondFactor);
                }
                return Err(Error::AccountLocked);
            }
            Err(e) => return Err(e),
        }
        let (token, session) = self
            .open_session(
                account,
                &Password::new(String::new()),
                Some(p.keyring),
                p.remote.or(remote_addr),
            )
            .await?;
        Ok((token, session))
    }

    /// Checks a TOTP or recovery code; a failure counts toward the account's
    /// lockout and the address limit, exactly like a wrong password.
    async fn check_factor(
        &self,
        account: &Account,
        factor: &SecondFactor,
        remote: Option<&str>,
        webauthn: Option<&PasskeyAuthentication>,
    ) -> Result<()> {
        let ok = match factor {
            SecondFactor::WebAuthn(credential) => match webauthn {
                Some(state) => self.check_webauthn(account, credential, state).await?,
                None => false,
            },
            SecondFactor::Totp(code) => self.check_totp(account, code).await?,
            SecondFactor::RecoveryCode(code) => {
                let used = self
                    .store()
                    .use_recovery_code(account.id.as_str(), &sha256(&normalise_code(code)), now())
                    .await?;
                if used {
                    tracing::warn!(account = account.id.as_str(), "a recovery code was used");
                }
                used
            }
        };
        if ok {
            return Ok(());
        }
        let outcome = self
            .store()
            .record_failed_login(&account.id, self.auth_policy().lock_after)
            .await?;
        self.factor_state()
            .address_failed(remote, self.auth_policy().address_limit);
        tracing::warn!(
            account = account.id.as_str(),
            attempts = outcome.failed_attempts,
            locked = outcome.locked,
            "second factor refused"
        );
        if outcome.locked {
            self.end_sessions_of(&account.id).await?;
            Err(Error::AccountLocked)
        } else {
            Err(Error::BadSecondFactor)
        }
    }

    async fn check_totp(&self, account: &Account, code: &str) -> Result<bool> {
        let Some(row) = self.store().totp(account.id.as_str()).await? else {
            return Ok(false);
        };
        let Some(sealed) = row.sealed_secret else {
            return Ok(false);
        };
        let secret = self.factor_key()?.open(&account.id, &sealed)?;
        let Some(step) = totp_match(&secret, code, now()) else {
            return Ok(false);
        };
        // Used once: the step must be later than any accepted before.
        self.store()
            .use_totp_step(account.id.as_str(), step)
            .await
            .map_err(Error::from)
    }

    /// Re-authentication before sensitive actions.
    pub async fn reauthenticate(
        &self,
        session: &CurrentSession,
        factor: &SecondFactor,
    ) -> Result<()> {
        let account = self.account(&session.account.id).await?;
        let challenge = self
            .factor_state()
            .reauth_challenges
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&session.record.token_hash));
        self.check_factor(
            &account,
            factor,
            session.record.remote_addr.as_deref(),
            challenge.as_ref(),
        )
        .await?;
        if let Ok(mut map) = self.factor_state().reauth.lock() {
            map.insert(session.record.token_hash.clone(), Instant::now());
        }
        tracing::info!(account = account.id.as_str(), "re-authenticated");
        Ok(())
    }

    /// The check before changing the address, the password or the factors, and
    /// before exporting a whole study: an account with a second factor must have
    /// re-authenticated with it within the last five minutes.
    pub fn require_recent_reauth(&self, session: &CurrentSession) -> Result<()> {
        if !session.account.has_second_factor {
            return Ok(());
        }
        let fresh = self
            .factor_state()
            .reauth
            .lock()
            .ok()
            .and_then(|m| m.get(&session.record.token_hash).copied())
            .is_some_and(|t| t.elapsed() < REAUTH_VALID_FOR);
        if fresh {
            Ok(())
        } else {
            Err(Error::ReauthRequired)
        }
    }

    // --- enrolment ---------------------------------------------------------------

    /// Starts a TOTP enrolment: a new secret, its URI and QR code. A confirmed
    /// secret stays in force until the new one is confirmed.
    pub async fn begin_totp(&self, session: &CurrentSession) -> Result<TotpEnrolment> {
        session.require_enrolment_allowed()?;
        self.require_recent_reauth(session)?;
        let mut secret = Zeroizing::new([0u8; 20]);
        OsRng.fill_bytes(secret.as_mut());
        let sealed = self
            .factor_key()?
            .seal(&session.account.id, secret.as_ref())?;
        self.store()
            .set_totp_pending(session.account.id.as_str(), &sealed, now())
            .await?;
        let b32 = base32(secret.as_ref());
        let label = format!("Renkei:{}", session.account.id.display_grouped());
        let uri = format!(
            "otpauth://totp/{}?secret={b32}&issuer=Renkei&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
            label.replace(':', "%3A")
        );
        let svg =
            renkei_pdf::qr_svg(uri.as_bytes(), 200).map_err(|e| Error::Internal(e.to_string()))?;
        tracing::info!(
            account = session.account.id.as_str(),
            "TOTP enrolment started"
        );
        Ok(TotpEnrolment {
            secret_base32: b32,
            otpauth_uri: uri,
            qr_svg: svg,
        })
    }

    /// Confirms the enrolment with a first code; returns ten new recovery codes,
    /// shown once.
    pub async fn confirm_totp(&self, session: &CurrentSession, code: &str) -> Result<Vec<String>> {
        session.require_enrolment_allowed()?;
        let id = &session.account.id;
        let row = self.store().totp(id.as_str()).await?;
        let Some(pending) = row.and_then(|r| r.pending_secret) else {
            return Err(Error::NotFound("TOTP enrolment"));
        };
        let secret = self.factor_key()?.open(id, &pending)?;
        let Some(step) = totp_match(&secret, code, now()) else {
            return Err(Error::BadSecondFactor);
        };
        self.store().confirm_totp(id.as_str(), step).await?;
        self.store()
            .set_has_second_factor(id.as_str(), true)
            .await?;
        let codes = self.new_recovery_codes(id).await?;
        // Enrolling counts as re-authenticating for the next few minutes.
        if let Ok(mut map) = self.factor_state().reauth.lock() {
            map.insert(session.record.token_hash.clone(), Instant::now());
        }
        tracing::info!(account = id.as_str(), "TOTP enrolled");
        Ok(codes)
    }

    async fn new_recovery_codes(&self, id: &AccountId) -> Result<Vec<String>> {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| random_code(16)).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| sha256(&normalise_code(c))).collect();
        self.store()
            .replace_recovery_codes(id.as_str(), &hashes)
            .await?;
        Ok(codes)
    }

    /// New recovery codes; the old ones stop working.
    pub async fn regenerate_recovery_codes(&self, session: &CurrentSession) -> Result<Vec<String>> {
        session.require_ready()?;
        self.require_recent_reauth(session)?;
        if !session.account.has_second_factor {
            return Err(Error::NotFound("second factor"));
        }
        let codes = self.new_recovery_codes(&session.account.id).await?;
        tracing::info!(
            account = session.account.id.as_str(),
            "recovery codes replaced"
        );
        Ok(codes)
    }

    /// Removes TOTP (and with it the recovery codes). Refused where a factor is
    /// required: enrol a new authenticator instead, which replaces it.
    pub async fn remove_totp(&self, session: &CurrentSession) -> Result<()> {
        session.require_ready()?;
        self.require_recent_reauth(session)?;
        let keys = self
            .store()
            .webauthn_credentials(session.account.id.as_str())
            .await?;
        if keys.is_empty() && self.second_factor_required(&session.account).await? {
            return Err(Error::invalid(
                "totp",
                "a second factor is required for this account; enrol a new authenticator instead",
                "このアカウントには二要素認証が必須です。新しい認証アプリを登録すると置き換わります。",
            ));
        }
        let id = session.account.id.as_str();
        self.store().delete_totp(id).await?;
        self.refresh_has_second_factor(&session.account.id).await?;
        tracing::info!(account = id, "TOTP removed by the person");
        Ok(())
    }

    pub async fn factors(&self, session: &CurrentSession) -> Result<FactorsView> {
        session.require_enrolment_allowed()?;
        let id = session.account.id.as_str();
        let totp = self.store().totp(id).await?;
        Ok(FactorsView {
            security_keys: self
                .store()
                .webauthn_credentials(id)
                .await?
                .into_iter()
                .map(SecurityKeyView::from)
                .collect(),
            required: self.second_factor_required(&session.account).await?,
            totp: totp.as_ref().is_some_and(|t| t.sealed_secret.is_some()),
            totp_pending: totp.as_ref().is_some_and(|t| t.pending_secret.is_some()),
            recovery_codes_left: self.store().recovery_codes_left(id).await?,
            app_passwords: self
                .store()
                .app_passwords(id)
                .await?
                .into_iter()
                .map(AppPasswordView::from)
                .collect(),
        })
    }

    /// `has_second_factor` follows what is enrolled; recovery codes go with the
    /// last factor.
    async fn refresh_has_second_factor(&self, id: &AccountId) -> Result<bool> {
        let totp = self
            .store()
            .totp(id.as_str())
            .await?
            .is_some_and(|t| t.sealed_secret.is_some());
        let keys = !self
            .store()
            .webauthn_credentials(id.as_str())
            .await?
            .is_empty();
        let has = totp || keys;
        if !has {
            self.store().delete_recovery_codes(id.as_str()).await?;
        }
        self.store().set_has_second_factor(id.as_str(), has).await?;
        Ok(has)
    }

    // --- security keys and passkeys (WebAuthn) -------------------------------------

    fn webauthn(&self) -> Result<&Webauthn> {
        self.webauthn_config()
            .ok_or_else(|| Error::Internal("WebAuthn is not configured".into()))
    }

    /// The WebAuthn user handle: stable per account, reveals nothing.
    fn webauthn_user(id: &AccountId) -> Uuid {
        let digest = Sha256::digest(format!("renkei-webauthn:{}", id.as_str()).as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    }

    fn passkeys(rows: &[WebauthnRow]) -> Vec<(String, Passkey)> {
        rows.iter()
            .filter_map(|r| {
                serde_json::from_str::<Passkey>(&r.passkey)
                    .ok()
                    .map(|p| (r.id.clone(), p))
            })
            .collect()
    }

    fn key_name(name: &str) -> Result<String> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::invalid(
                "name",
                "give the security key a name of at most 64 characters",
                "セキュリティキーの名前を64文字以内で入力してください。",
            ));
        }
        Ok(name.to_string())
    }

    /// Starts registering a security key or passkey named `name`.
    pub async fn begin_webauthn(
        &self,
        session: &CurrentSession,
        name: &str,
    ) -> Result<CreationChallengeResponse> {
        session.require_enrolment_allowed()?;
        self.require_recent_reauth(session)?;
        let name = Self::key_name(name)?;
        let id = &session.account.id;
        let rows = self.store().webauthn_credentials(id.as_str()).await?;
        let exclude = Self::passkeys(&rows)
            .iter()
            .map(|(_, p)| p.cred_id().clone())
            .collect();
        let (challenge, state) = self
            .webauthn()?
            .start_passkey_registration(
                Self::webauthn_user(id),
                &id.display_grouped(),
                &id.display_grouped(),
                Some(exclude),
            )
            .map_err(|e| Error::Internal(format!("webauthn: {e}")))?;
        if let Ok(mut map) = self.factor_state().registrations.lock() {
            map.retain(|_, r| r.created.elapsed() < PENDING_VALID_FOR);
            map.insert(
                session.record.token_hash.clone(),
                PendingRegistration {
                    state,
                    name,
                    created: Instant::now(),
                },
            );
        }
        Ok(challenge)
    }

    /// Finishes the registration; the first factor of an account also gets its
    /// ten recovery codes (returned once).
    pub async fn finish_webauthn(
        &self,
        session: &CurrentSession,
        credential: &RegisterPublicKeyCredential,
    ) -> Result<(SecurityKeyView, Option<Vec<String>>)> {
        session.require_enrolment_allowed()?;
        let Some(reg) = self
            .factor_state()
            .registrations
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&session.record.token_hash))
        else {
            return Err(Error::NotFound("security key registration"));
        };
        let id = &session.account.id;
        let passkey = self
            .webauthn()?
            .finish_passkey_registration(credential, &reg.state)
            .map_err(|e| {
                tracing::warn!(account = id.as_str(), error = %e, "security key registration refused");
                Error::BadSecondFactor
            })?;
        let row = WebauthnRow {
            id: crate::ids::new_id(),
            account_id: id.as_str().into(),
            name: reg.name,
            passkey: serde_json::to_string(&passkey)
                .map_err(|e| Error::Internal(format!("passkey json: {e}")))?,
            created_at: now(),
            last_used_at: None,
        };
        self.store().insert_webauthn(&row).await?;
        let codes = if self.store().recovery_codes_left(id.as_str()).await? == 0 {
            Some(self.new_recovery_codes(id).await?)
        } else {
            None
        };
        self.store()
            .set_has_second_factor(id.as_str(), true)
            .await?;
        if let Ok(mut map) = self.factor_state().reauth.lock() {
            map.insert(session.record.token_hash.clone(), Instant::now());
        }
        tracing::info!(
            account = id.as_str(),
            key = row.id,
            "security key registered"
        );
        Ok((SecurityKeyView::from(row), codes))
    }

    pub async fn rename_webauthn(
        &self,
        session: &CurrentSession,
        key: &str,
        name: &str,
    ) -> Result<()> {
        session.require_ready()?;
        let name = Self::key_name(name)?;
        if !self
            .store()
            .rename_webauthn(session.account.id.as_str(), key, &name)
            .await?
        {
            return Err(Error::NotFound("security key"));
        }
        Ok(())
    }

    /// Removes a security key; refused if it is the last factor of an account
    /// that must have one.
    pub async fn remove_webauthn(&self, session: &CurrentSession, key: &str) -> Result<()> {
        session.require_ready()?;
        self.require_recent_reauth(session)?;
        let id = &session.account.id;
        let rows = self.store().webauthn_credentials(id.as_str()).await?;
        if !rows.iter().any(|r| r.id == key) {
            return Err(Error::NotFound("security key"));
        }
        let totp = self
            .store()
            .totp(id.as_str())
            .await?
            .is_some_and(|t| t.sealed_secret.is_some());
        if rows.len() == 1 && !totp && self.second_factor_required(&session.account).await? {
            return Err(Error::invalid(
                "security_key",
                "this is the account's only second factor, which is required; add another first",
                "これは必須の二要素認証の唯一の手段です。先に別の手段を登録してください。",
            ));
        }
        self.store().delete_webauthn(id.as_str(), key).await?;
        self.refresh_has_second_factor(id).await?;
        tracing::info!(account = id.as_str(), key, "security key removed");
        Ok(())
    }

    /// The challenge for signing in with a security key, bound to the pending
    /// sign-in.
    pub async fn webauthn_challenge(
        &self,
        pending: &PendingToken,
    ) -> Result<RequestChallengeResponse> {
        let Some(mut p) = self.factor_state().take_pending(pending) else {
            return Err(Error::SessionExpired);
        };
        let result = self.webauthn_challenge_for(&p.account).await;
        match result {
            Ok((challenge, state)) => {
                p.webauthn = Some(state);
                self.factor_state().put_pending(pending, p);
                Ok(challenge)
            }
            Err(e) => {
                self.factor_state().put_pending(pending, p);
                Err(e)
            }
        }
    }

    /// The challenge for re-authenticating a session with a security key.
    pub async fn reauth_webauthn_challenge(
        &self,
        session: &CurrentSession,
    ) -> Result<RequestChallengeResponse> {
        let (challenge, state) = self.webauthn_challenge_for(&session.account.id).await?;
        if let Ok(mut map) = self.factor_state().reauth_challenges.lock() {
            map.insert(session.record.token_hash.clone(), state);
        }
        Ok(challenge)
    }

    async fn webauthn_challenge_for(
        &self,
        id: &AccountId,
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication)> {
        let rows = self.store().webauthn_credentials(id.as_str()).await?;
        let keys: Vec<Passkey> = Self::passkeys(&rows).into_iter().map(|(_, p)| p).collect();
        if keys.is_empty() {
            return Err(Error::NotFound("security key"));
        }
        self.webauthn()?
            .start_passkey_authentication(&keys)
            .map_err(|e| Error::Internal(format!("webauthn: {e}")))
    }

    async fn check_webauthn(
        &self,
        account: &Account,
        credential: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> Result<bool> {
        let result = match self
            .webauthn()?
            .finish_passkey_authentication(credential, state)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(account = account.id.as_str(), error = %e, "security key refused");
                return Ok(false);
            }
        };
        let rows = self
            .store()
            .webauthn_credentials(account.id.as_str())
            .await?;
        for (row_id, mut passkey) in Self::passkeys(&rows) {
            if passkey.cred_id() == result.cred_id() {
                passkey.update_credential(&result);
                let json = serde_json::to_string(&passkey)
                    .map_err(|e| Error::Internal(format!("passkey json: {e}")))?;
                self.store().update_webauthn(&row_id, &json, now()).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    // --- app passwords -------------------------------------------------------------

    /// Generates an app password for mail clients, shown once; the person's key
    /// is locked under it too.
    pub async fn create_app_password(
        &self,
        session: &CurrentSession,
        name: &str,
    ) -> Result<(AppPasswordView, Password)> {
        session.require_ready()?;
        // An app password opens mail without the second factor: making one is a
        // change of factors.
        self.require_recent_reauth(session)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::invalid(
                "name",
                "give the app password a name of at most 64 characters",
                "アプリパスワードの名前を64文字以内で入力してください。",
            ));
        }
        let secret = Password::new(random_code(20));
        let locked_key = match self.keyring(session) {
            Some(keyring) => Some(self.relock(&keyring, &secret).await?),
            None if session.account.role == Role::Operator => None,
            None => return Err(Error::SessionExpired),
        };
        let row = AppPasswordRow {
            id: crate::ids::new_id(),
            account_id: session.account.id.as_str().into(),
            name: name.into(),
            secret_hash: sha256(&normalise_code(secret.expose())),
            locked_key,
            created_at: now(),
            last_used_at: None,
            last_used_from: None,
        };
        self.store().insert_app_password(&row).await?;
        tracing::info!(
            account = row.account_id,
            app_password = row.id,
            "app password created"
        );
        Ok((AppPasswordView::from(row), secret))
    }

    pub async fn revoke_app_password(&self, session: &CurrentSession, id: &str) -> Result<()> {
        session.require_ready()?;
        if !self
            .store()
            .delete_app_password(session.account.id.as_str(), id)
            .await?
        {
            return Err(Error::NotFound("app password"));
        }
        // Mail sessions it opened end too: their next command is refused.
        for digest in self.factor_state().sessions_of_app_password(id) {
            self.end_session_by_hash(&digest).await?;
        }
        tracing::info!(
            account = session.account.id.as_str(),
            app_password = id,
            "app password revoked"
        );
        Ok(())
    }

    /// Sign-in for mail clients (IMAP): an app password always works; the
    /// account password only while the account neither must have nor has a
    /// second factor. Same lockout and address limit as the web.
    pub async fn sign_in_mail(
        &self,
        id_input: &str,
        secret: &Password,
        remote_addr: Option<String>,
    ) -> Result<(SessionToken, CurrentSession)> {
        let limit = self.auth_policy().address_limit;
        if self
            .factor_state()
            .address_blocked(remote_addr.as_deref(), limit)
        {
            tracing::warn!(
                remote = remote_addr.as_deref().unwrap_or("-"),
                "mail sign-in refused: too many failures from this address"
            );
            return Err(Error::TooManyAttempts);
        }
        let account = match AccountId::parse(id_input) {
            Ok(id) => self.store().account(&id).await?,
            Err(_) => None,
        };
        if let Some(account) = &account {
            if account.locked || account.removed {
                self.factor_state()
                    .address_failed(remote_addr.as_deref(), limit);
                return Err(Error::AccountLocked);
            }
            let hash = sha256(&normalise_code(secret.expose()));
            if let Some(app) = self
                .store()
                .app_password_by_hash(account.id.as_str(), &hash)
                .await?
            {
                return self
                    .open_mail_session(account.clone(), app, secret, remote_addr)
                    .await;
            }
            let two_factor =
                account.has_second_factor || self.second_factor_required(account).await?;
            if two_factor {
                // Tell apart only what the web tells apart too: a right password
                // here still needs an app password; a wrong one counts.
                let checked = self
                    .check_password(id_input, secret, remote_addr.clone())
                    .await;
                return match checked {
                    Ok(_) => Err(Error::AppPasswordRequired),
                    Err(e) => {
                        self.factor_state()
                            .address_failed(remote_addr.as_deref(), limit);
                        Err(e)
                    }
                };
            }
        }
        match self.sign_in_password(id_input, secret, remote_addr).await? {
            SignInStep::Done(token, session) => Ok((token, *session)),
            SignInStep::SecondFactor { .. } => Err(Error::AppPasswordRequired),
        }
    }

    async fn open_mail_session(
        &self,
        account: Account,
        app: AppPasswordRow,
        secret: &Password,
        remote_addr: Option<String>,
    ) -> Result<(SessionToken, CurrentSession)> {
        let keyring = match &app.locked_key {
            Some(locked) => {
                let locked = renkei_crypto::LockedKey::from_bytes(locked.clone());
                let pw = secret.clone();
                let user = tokio::task::spawn_blocking(move || {
                    locked.unlock(pw.expose().as_bytes()).map_err(crypto)
                })
                .await
                .map_err(|e| Error::Internal(format!("unlock task: {e}")))??;
                Some(self.keyring_from(&account, user).await?)
            }
            None => None,
        };
        self.store()
            .touch_app_password(&app.id, now(), remote_addr.as_deref())
            .await?;
        tracing::info!(
            account = account.id.as_str(),
            app_password = app.id,
            "signed in with an app password"
        );
        let (token, session) = self
            .open_session(account, secret, Some(keyring), remote_addr)
            .await?;
        if let Ok(mut map) = self.factor_state().mail_sessions.lock() {
            map.insert(session.record.token_hash.clone(), app.id.clone());
        }
        Ok((token, session))
    }

    // --- the operator ----------------------------------------------------------------

    /// After an identity check at the help desk: removes the person's TOTP and
    /// recovery codes, ends their sessions, logs it, and queues a mail without
    /// content. App passwords stay (they are separate credentials, listed and
    /// revocable by the person).
    pub async fn reset_second_factor(
        &self,
        id: &AccountId,
        notices: Option<&crate::notify::Notices>,
    ) -> Result<Account> {
        let account = self.account(id).await?;
        self.store().delete_totp(id.as_str()).await?;
        self.store().delete_recovery_codes(id.as_str()).await?;
        self.store().delete_webauthn_of(id.as_str()).await?;
        self.store()
            .set_has_second_factor(id.as_str(), false)
            .await?;
        self.end_sessions_of(id).await?;
        self.factor_state().forget_account(id);
        tracing::warn!(
            audit = "second_factor_reset",
            account = id.as_str(),
            "the operator reset the second factor"
        );
        if let Some(notices) = notices {
            notices.security_notice(id, "second_factor_reset").await?;
        }
        let _ = account;
        self.account(id).await
    }

    /// Which accounts have which factors.
    pub async fn factor_summaries(&self) -> Result<Vec<FactorSummaryRow>> {
        Ok(self.store().factor_summaries().await?)
    }

    /// Sets or clears (`None`: follow the network) a facility's requirement.
    pub async fn set_facility_second_factor(
        &self,
        code: &crate::facility::FacilityCode,
        required: Option<bool>,
    ) -> Result<()> {
        self.facility(code).await?;
        self.store()
            .set_facility_second_factor(code.as_str(), required)
            .await?;
        tracing::info!(facility = %code, required = ?required, "second-factor requirement set");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (eight digits there; six here are the
    /// last six).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(totp_code(secret, t / 30), eight % 1_000_000, "t={t}");
        }
    }

    #[test]
    fn skew_window_and_format() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_109;
        let code = format!("{:06}", totp_code(secret, t / 30 - 1));
        assert_eq!(totp_match(secret, &code, t), Some(t / 30 - 1));
        let far = format!("{:06}", totp_code(secret, t / 30 - 3));
        assert_eq!(totp_match(secret, &far, t), None);
        assert_eq!(totp_match(secret, "12345", t), None);
        assert_eq!(totp_match(secret, "abcdef", t), None);
    }

    #[test]
    fn base32_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
    }

    #[test]
    fn sealed_secret_is_bound_to_its_account() {
        let key = SecondFactorKey::generate();
        let a = AccountId::generate();
        let b = AccountId::generate();
        let sealed = key.seal(&a, b"secret").unwrap_or_default();
        assert_eq!(
            key.open(&a, &sealed).map(|s| s.to_vec()).ok(),
            Some(b"secret".to_vec())
        );
        assert!(key.open(&b, &sealed).is_err());
    }
}
