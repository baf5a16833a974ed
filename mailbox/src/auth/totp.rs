//! TOTP (RFC 6238): the server's key that seals each secret, the code
//! arithmetic, and enrolling, checking and removing an authenticator app.
//!
//! Codes: HMAC-SHA-1, 30 s steps, six digits, one step either side accepted. A
//! code is used once: the highest accepted step is stored, and only a later
//! step passes, checked and stored in one `UPDATE`, so two sign-ins racing with
//! the same code cannot both win. The secret is sealed with AES-256-GCM (the
//! account ID as associated data) under the server's second-factor key, kept
//! outside the database (a file made at first start, mode 0600, or
//! `RENKEI_SECOND_FACTOR_KEY`); nodes sharing a database must share it, like
//! the blind-index key. Enrolment returns the `otpauth://` URI, the secret in
//! base32 and a QR code (SVG); confirming with a first code makes ten recovery
//! codes.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use super::Auth;
use super::session::CurrentSession;
use crate::account::{Account, AccountId};
use crate::error::{Error, Result};
use crate::records::audit::action;

/// RFC 6238 parameters: 30-second steps, six digits, HMAC-SHA-1 (what every
/// authenticator app supports), one step of clock skew either way.
pub const TOTP_STEP_SECS: i64 = 30;
pub const TOTP_DIGITS: u32 = 6;
pub const TOTP_SKEW_STEPS: i64 = 1;
pub const RECOVERY_CODES: usize = 10;

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
pub(super) fn random_code(chars: usize) -> String {
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
pub(super) fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Shown once at the start of a TOTP enrolment.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    /// The QR code of the URI, as an SVG document rendered here.
    pub qr_svg: String,
}

/// The secret as an authenticator app takes it: base32, the otpauth URI and
/// its QR code.
fn enrolment(session: &CurrentSession, secret: &[u8]) -> Result<TotpEnrolment> {
    let b32 = base32(secret);
    let label = format!("Renkei:{}", session.account.id.display_grouped());
    let uri = format!(
        "otpauth://totp/{}?secret={b32}&issuer=Renkei&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
        label.replace(':', "%3A")
    );
    let svg =
        renkei_pdf::qr_svg(uri.as_bytes(), 200).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(TotpEnrolment {
        secret_base32: b32,
        otpauth_uri: uri,
        qr_svg: svg,
    })
}

impl Auth {
    pub(super) async fn check_totp(&self, account: &Account, code: &str) -> Result<bool> {
        let Some(row) = self.store.totp(account.id.as_str()).await? else {
            return Ok(false);
        };
        let Some(sealed) = row.sealed_secret else {
            return Ok(false);
        };
        let secret = self.factor_key()?.open(&account.id, &sealed)?;
        let Some(step) = totp_match(&secret, code, self.now()) else {
            return Ok(false);
        };
        // Used once: the step must be later than any accepted before.
        self.store
            .use_totp_step(account.id.as_str(), step)
            .await
            .map_err(Error::from)
    }

    /// Starts a TOTP enrolment: a new secret, its URI and QR code. A confirmed
    /// secret stays in force until the new one is confirmed; an enrolment
    /// already under way is replaced (the page's "new key").
    pub async fn begin_totp(&self, session: &CurrentSession) -> Result<TotpEnrolment> {
        session.require_enrolment_allowed()?;
        self.require_recent_reauth(session)?;
        let mut secret = Zeroizing::new([0u8; 20]);
        OsRng.fill_bytes(secret.as_mut());
        let sealed = self
            .factor_key()?
            .seal(&session.account.id, secret.as_ref())?;
        self.store
            .set_totp_pending(session.account.id.as_str(), &sealed, self.now())
            .await?;
        tracing::info!(
            account = session.account.id.as_str(),
            "TOTP enrolment started"
        );
        enrolment(session, secret.as_ref())
    }

    /// The enrolment under way, shown again with the same secret until it is
    /// confirmed or replaced, so a second visit does not invalidate what the
    /// person has already scanned; a new one when none is under way.
    pub async fn pending_totp(&self, session: &CurrentSession) -> Result<TotpEnrolment> {
        session.require_enrolment_allowed()?;
        self.require_recent_reauth(session)?;
        let id = &session.account.id;
        let pending = self
            .store
            .totp(id.as_str())
            .await?
            .and_then(|r| r.pending_secret);
        match pending {
            Some(sealed) => {
                let secret = self.factor_key()?.open(id, &sealed)?;
                enrolment(session, &secret)
            }
            None => self.begin_totp(session).await,
        }
    }

    /// Confirms the enrolment with a first code; returns ten new recovery codes,
    /// shown once.
    pub async fn confirm_totp(&self, session: &CurrentSession, code: &str) -> Result<Vec<String>> {
        session.require_enrolment_allowed()?;
        let id = &session.account.id;
        let row = self.store.totp(id.as_str()).await?;
        let Some(pending) = row.and_then(|r| r.pending_secret) else {
            return Err(Error::NotFound("TOTP enrolment"));
        };
        let secret = self.factor_key()?.open(id, &pending)?;
        let Some(step) = totp_match(&secret, code, self.now()) else {
            return Err(Error::BadSecondFactor);
        };
        self.store.confirm_totp(id.as_str(), step).await?;
        self.store.set_has_second_factor(id.as_str(), true).await?;
        let codes = self.new_recovery_codes(id).await?;
        // Enrolling counts as re-authenticating for the next few minutes.
        self.factors.reauthenticated(&session.record.token_hash);
        tracing::info!(account = id.as_str(), "TOTP enrolled");
        self.audit_credentials(session, action::FACTOR_CHANGE, "totp enrolled".into())
            .await?;
        Ok(codes)
    }

    /// Removes TOTP (and with it the recovery codes). Refused where a factor is
    /// required: enrol a new authenticator instead, which replaces it.
    pub async fn remove_totp(&self, session: &CurrentSession) -> Result<()> {
        session.require_ready()?;
        self.require_recent_reauth(session)?;
        let keys = self
            .store
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
        self.store.delete_totp(id).await?;
        self.refresh_has_second_factor(&session.account.id).await?;
        tracing::info!(account = id, "TOTP removed by the person");
        self.audit_credentials(session, action::FACTOR_CHANGE, "totp removed".into())
            .await
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
