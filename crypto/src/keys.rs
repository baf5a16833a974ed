//! Keys: one secret key type for every principal (user, facility liaison inbox,
//! facility oversight, network recovery), its public [`Certificate`], a
//! password-[`LockedKey`] for storage, and [`SealedKey`] grants.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, Password, S2K, SessionKey};
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::skesk::SKESK6;
use openpgp::packet::{Key, Packet, SKESK};
use openpgp::parse::Parse;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
use openpgp::serialize::{Marshal, SerializeInto};
use openpgp::types::{AEADAlgorithm, Features, KeyFlags, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, Profile};
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};
use crate::fast;
use crate::pgp::{self, KeySource, POLICY};

/// Symmetric cipher for every body, grant, locked key and attachment.
pub(crate) const SYM: SymmetricAlgorithm = SymmetricAlgorithm::AES256;
/// AEAD mode (SEIPDv2): OCB is RFC 9580's mandatory mode and the fastest here.
pub(crate) const AEAD: AEADAlgorithm = AEADAlgorithm::OCB;

/// The public half of a principal's key: what others encrypt to and verify with.
///
/// Safe to store and show; holds no secret. The encryption subkey is resolved
/// once at construction so sealing does not re-validate the certificate each time.
///
/// Shared behind an `Arc`: signer look-ups hand out clones on every open.
#[derive(Clone)]
pub struct Certificate(Arc<CertInner>);

struct CertInner {
    cert: Cert,
    fingerprint: Fingerprint,
    enc_key: Key<PublicParts, UnspecifiedRole>,
    enc_fpr: Fingerprint,
    /// The encryption subkey's X25519 point, when it is one (the fast path).
    enc_x25519: Option<[u8; 32]>,
    features: Features,
    /// Signing-capable keys that are valid now, with their Ed25519 form.
    signers: Vec<SigningKeyInfo>,
}

/// A signing-capable key of a certificate, as resolved under the policy when the
/// certificate was loaded.
pub(crate) struct SigningKeyInfo {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) ed25519: Option<ed25519_dalek::VerifyingKey>,
}

impl Certificate {
    pub(crate) fn from_cert(cert: Cert) -> Result<Self> {
        let cert = cert.strip_secret_key_material();
        let vc = cert
            .with_policy(&POLICY, None)
            .map_err(|e| CryptoError::UnusableKey(format!("certificate not valid: {e}")))?;
        let signers: Vec<SigningKeyInfo> = vc
            .keys()
            .alive()
            .revoked(false)
            .for_signing()
            .map(|ka| SigningKeyInfo {
                fingerprint: ka.key().fingerprint(),
                ed25519: fast::ed25519_public(ka.key().role_as_unspecified()),
            })
            .collect();
        if signers.is_empty() {
            return Err(CryptoError::UnusableKey("no signing key".into()));
        }
        let enc_key = vc
            .keys()
            .alive()
            .revoked(false)
            .supported()
            .for_storage_encryption()
            .next()
            .map(|ka| ka.key().clone().role_into_unspecified())
            .ok_or_else(|| CryptoError::UnusableKey("no encryption subkey".into()))?;
        let features = vc.features().unwrap_or_else(Features::sequoia);
        Ok(Certificate(Arc::new(CertInner {
            fingerprint: cert.fingerprint(),
            cert,
            enc_fpr: enc_key.fingerprint(),
            enc_x25519: fast::x25519_public(&enc_key),
            enc_key,
            features,
            signers,
        })))
    }

    /// Parses a certificate stored with [`Certificate::to_bytes`]; any secret parts are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let cert = Cert::from_bytes(bytes).map_err(|e| CryptoError::Malformed(e.to_string()))?;
        Self::from_cert(cert)
    }

    /// Binary OpenPGP certificate (public key packets and self-signatures only).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.0.cert.to_vec().map_err(CryptoError::pgp)
    }

    /// ASCII-armored form, for showing or handing to other OpenPGP tools.
    pub fn to_armored(&self) -> Result<String> {
        let v = self.0.cert.armored().to_vec().map_err(CryptoError::pgp)?;
        String::from_utf8(v).map_err(CryptoError::pgp)
    }

    /// Primary key fingerprint, upper-case hex: the principal's stable identity.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint.to_hex()
    }

    /// The same fingerprint as a typed value (what signer look-ups receive).
    pub fn fingerprint_typed(&self) -> Fingerprint {
        self.0.fingerprint.clone()
    }

    /// The identifier this principal's key slots carry (its encryption subkey's
    /// fingerprint); compare with [`crate::key_slots`].
    pub fn key_slot_id(&self) -> KeySlotId {
        KeySlotId(self.0.enc_fpr.to_hex())
    }

    /// The first user ID, if any (informational: account binding is the caller's job).
    pub fn user_id(&self) -> Option<String> {
        self.0
            .cert
            .userids()
            .next()
            .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
    }

    pub(crate) fn cert(&self) -> &Cert {
        &self.0.cert
    }
    pub(crate) fn enc_key(&self) -> &Key<PublicParts, UnspecifiedRole> {
        &self.0.enc_key
    }
    pub(crate) fn enc_fpr(&self) -> &Fingerprint {
        &self.0.enc_fpr
    }
    pub(crate) fn enc_x25519(&self) -> Option<&[u8; 32]> {
        self.0.enc_x25519.as_ref()
    }
    pub(crate) fn features(&self) -> &Features {
        &self.0.features
    }
    pub(crate) fn signers(&self) -> &[SigningKeyInfo] {
        &self.0.signers
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.0.fingerprint == other.0.fingerprint
    }
}
impl Eq for Certificate {}

/// Names the recipient of one key slot: the encryption subkey fingerprint (hex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeySlotId(pub String);

/// Which of a facility's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FacilityRole {
    /// Opens what is addressed to the facility's liaisons.
    LiaisonInbox,
    /// Opens everything involving the facility, for its clerks and liaisons.
    Oversight,
    /// Opens the decryption halves of the facility's people's keys (never a
    /// signing half), for a liaison to restore them after a password reset.
    Custodian,
}

/// A principal's secret key: Ed25519 primary (certify + sign) and an X25519
/// encryption subkey, OpenPGP v6 (RFC 9580).
///
/// The same type serves users, facility keys and the recovery key, so grants and
/// sealing work alike for all. Secret material lives in Sequoia's `Protected`
/// memory (encrypted in RAM, zeroized on drop); our own serialised copies are
/// `Zeroizing`. Deliberately no `Debug` derive, no `Serialize`, no `Clone`.
pub struct SecretKey {
    cert: Cert,
    public: Certificate,
    signer: KeyPair,
    decryptor: KeyPair,
    /// The same two secrets in dalek form when they are Ed25519 / X25519 (always,
    /// for keys made here): the hot path. Both wipe themselves on drop.
    fast_signer: Option<Box<ed25519_dalek::SigningKey>>,
    fast_decryptor: Option<Box<x25519_dalek::StaticSecret>>,
}

/// A person's key.
pub type UserKey = SecretKey;
/// A facility's liaison-inbox or oversight key.
pub type FacilityKey = SecretKey;
/// The network's offline recovery key.
pub type RecoveryKey = SecretKey;

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("fingerprint", &self.fingerprint())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SecretKey {
    /// Makes a new key for `user_id` (e.g. `"Dr A <account:42>"`); no expiry.
    pub fn generate(user_id: &str) -> Result<Self> {
        let (cert, _revocation) = CertBuilder::new()
            .set_profile(Profile::RFC9580)
            .map_err(CryptoError::pgp)?
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
            .add_subkey(
                KeyFlags::empty()
                    .set_transport_encryption()
                    .set_storage_encryption(),
                None,
                None,
            )
            .add_userid(user_id)
            .set_validity_period(None)
            .generate()
            .map_err(CryptoError::pgp)?;
        Self::from_cert(cert)
    }

    /// Makes a facility key; the user ID names facility and role (public information).
    pub fn generate_facility(facility_code: &str, role: FacilityRole) -> Result<Self> {
        let role = match role {
            FacilityRole::LiaisonInbox => "liaison-inbox",
            FacilityRole::Oversight => "oversight",
            FacilityRole::Custodian => "custodian",
        };
        Self::generate(&format!("Renkei facility {facility_code} {role}"))
    }

    /// Makes the network recovery key (its secret half goes to an offline file).
    pub fn generate_recovery() -> Result<Self> {
        Self::generate("Renkei network recovery key")
    }

    /// The decryption half of this key: its encryption subkey (same secret,
    /// same key slot ID, so it opens every item sealed to this key), bound to a
    /// fresh primary key that is nobody's. What a custodian holds: a signature
    /// made with it verifies as no one, since the owner's signing key is not in it.
    pub fn decryption_half(&self) -> Result<Self> {
        let (fresh, _revocation) = CertBuilder::new()
            .set_profile(Profile::RFC9580)
            .map_err(CryptoError::pgp)?
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
            .add_userid("Renkei decryption key")
            .set_validity_period(None)
            .generate()
            .map_err(CryptoError::pgp)?;
        let enc_fpr = self.public.enc_fpr().clone();
        let subkey = self
            .cert
            .keys()
            .subkeys()
            .secret()
            .find(|ka| ka.key().fingerprint() == enc_fpr)
            .ok_or_else(|| CryptoError::UnusableKey("no secret encryption key".into()))?
            .key()
            .clone();
        let mut primary = fresh
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .map_err(CryptoError::pgp)?
            .into_keypair()
            .map_err(CryptoError::pgp)?;
        let binding = openpgp::packet::signature::SignatureBuilder::new(
            openpgp::types::SignatureType::SubkeyBinding,
        )
        .set_key_flags(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
        )
        .map_err(CryptoError::pgp)?
        .sign_subkey_binding(&mut primary, None, &subkey)
        .map_err(CryptoError::pgp)?;
        let (cert, _) = fresh
            .insert_packets([Packet::from(subkey), Packet::from(binding)])
            .map_err(CryptoError::pgp)?;
        Self::from_cert(cert)
    }

    pub(crate) fn from_cert(cert: Cert) -> Result<Self> {
        let public = Certificate::from_cert(cert.clone())?;
        let (signer, decryptor) = {
            let vc = cert
                .with_policy(&POLICY, None)
                .map_err(|e| CryptoError::UnusableKey(e.to_string()))?;
            let signer = vc
                .keys()
                .alive()
                .revoked(false)
                .for_signing()
                .secret()
                .next()
                .ok_or_else(|| CryptoError::UnusableKey("no secret signing key".into()))?
                .key()
                .clone()
                .into_keypair()
                .map_err(|e| CryptoError::UnusableKey(e.to_string()))?;
            let fp = public.enc_fpr().clone();
            let decryptor = vc
                .keys()
                .secret()
                .find(|ka| ka.key().fingerprint() == fp)
                .ok_or_else(|| CryptoError::UnusableKey("no secret encryption key".into()))?
                .key()
                .clone()
                .into_keypair()
                .map_err(|e| CryptoError::UnusableKey(e.to_string()))?;
            (signer, decryptor)
        };
        let fast_signer = fast_ed25519_secret(&signer);
        let fast_decryptor = fast_x25519_secret(&decryptor);
        Ok(SecretKey {
            cert,
            public,
            signer,
            decryptor,
            fast_signer,
            fast_decryptor,
        })
    }

    /// The public half, to store on the server and encrypt to.
    pub fn cert(&self) -> Certificate {
        self.public.clone()
    }

    /// Borrowing form of [`SecretKey::cert`].
    pub fn certificate(&self) -> &Certificate {
        &self.public
    }

    /// Primary key fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint()
    }

    #[cfg(test)]
    pub(crate) fn signer(&self) -> KeyPair {
        self.signer.clone()
    }
    pub(crate) fn decryptor(&self) -> KeyPair {
        self.decryptor.clone()
    }

    /// The signer: the fast path when the key is Ed25519, else Sequoia's.
    pub(crate) fn any_signer(&self) -> fast::AnySigner<'_> {
        match &self.fast_signer {
            Some(secret) => fast::AnySigner::Fast(fast::Ed25519Signer {
                public: self.signer.public(),
                secret,
            }),
            None => fast::AnySigner::Sequoia(Box::new(self.signer.clone())),
        }
    }

    /// Decrypts key slots through the fast path when the key is X25519, else through Sequoia.
    pub(crate) fn with_decryptor<T>(
        &self,
        f: impl FnOnce(&mut dyn openpgp::crypto::Decryptor) -> T,
    ) -> T {
        match (&self.fast_decryptor, self.public.enc_x25519()) {
            (Some(secret), Some(u)) => f(&mut fast::X25519Decryptor {
                public: self.decryptor.public(),
                u: *u,
                secret,
            }),
            _ => f(&mut self.decryptor.clone()),
        }
    }

    /// The two 32-byte secrets (Ed25519 seed, X25519 scalar), for tests that
    /// scan files for them; never compiled into the server.
    #[cfg(feature = "test-support")]
    pub fn secret_material_for_tests(&self) -> Vec<Zeroizing<Vec<u8>>> {
        let mut out = Vec::new();
        if let Some(s) = &self.fast_signer {
            out.push(Zeroizing::new(s.to_bytes().to_vec()));
        }
        if let Some(s) = &self.fast_decryptor {
            out.push(Zeroizing::new(s.to_bytes().to_vec()));
        }
        out
    }

    /// Transferable secret key bytes; only ever fed into encryption.
    pub(crate) fn tsk_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        // `to_vec` sizes the buffer exactly, so no unzeroized reallocation copies are left.
        self.cert
            .as_tsk()
            .to_vec()
            .map(Zeroizing::new)
            .map_err(CryptoError::pgp)
    }

    pub(crate) fn from_tsk_bytes(bytes: &[u8]) -> Result<Self> {
        let cert = Cert::from_bytes(bytes).map_err(|e| CryptoError::Malformed(e.to_string()))?;
        if !cert.is_tsk() {
            return Err(CryptoError::Malformed("no secret key material".into()));
        }
        Self::from_cert(cert)
    }

    /// Locks the key under `password` with the default (production) Argon2id cost.
    pub fn lock(&self, password: &[u8]) -> Result<LockedKey> {
        self.lock_with(password, LockParams::default())
    }

    /// Locks the key under `password` with explicit Argon2id parameters (tests use cheap ones).
    ///
    /// Format: a standard OpenPGP message, SKESK v6 with Argon2 S2K (random salt) and
    /// AES-256-OCB, then SEIPDv2 holding the transferable secret key.
    pub fn lock_with(&self, password: &[u8], params: LockParams) -> Result<LockedKey> {
        params.check()?;
        let mut salt = [0u8; 16];
        openpgp::crypto::random(&mut salt).map_err(CryptoError::pgp)?;
        let s2k = S2K::Argon2 {
            salt,
            t: params.t,
            p: params.p,
            m: params.m_exp,
        };
        let sk =
            SessionKey::new(SYM.key_size().map_err(CryptoError::pgp)?).map_err(CryptoError::pgp)?;
        let password = Password::from(password);
        let skesk =
            SKESK6::with_password(SYM, SYM, AEAD, s2k, &sk, &password).map_err(CryptoError::pgp)?;
        let tsk = self.tsk_bytes()?;
        let mut out = Vec::with_capacity(tsk.len() + 256);
        Packet::SKESK(SKESK::V6(skesk))
            .serialize(&mut out)
            .map_err(CryptoError::pgp)?;
        pgp::encrypt_with_session_key(&mut out, sk, &tsk)?;
        Ok(LockedKey(out))
    }

    /// The secret key as an ASCII-armored, unencrypted OpenPGP key: the content of
    /// the operator's offline recovery file. Handle like the key itself.
    pub fn to_armored_secret(&self) -> Result<Zeroizing<String>> {
        let v = Zeroizing::new(
            self.cert
                .as_tsk()
                .armored()
                .to_vec()
                .map_err(CryptoError::pgp)?,
        );
        let s = std::str::from_utf8(&v).map_err(CryptoError::pgp)?;
        Ok(Zeroizing::new(s.to_owned()))
    }

    /// Reads a key written by [`SecretKey::to_armored_secret`].
    pub fn from_armored_secret(armored: &str) -> Result<Self> {
        Self::from_tsk_bytes(armored.as_bytes())
    }
}

/// The Ed25519 secret of `kp` as a dalek key, if it is one.
fn fast_ed25519_secret(kp: &KeyPair) -> Option<Box<ed25519_dalek::SigningKey>> {
    let a = match kp.public().mpis() {
        openpgp::crypto::mpi::PublicKey::Ed25519 { a } => *a,
        _ => return None,
    };
    let sk = kp.secret().map(|m| match m {
        openpgp::crypto::mpi::SecretKeyMaterial::Ed25519 { x } if x.len() == 32 => {
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(x);
            Some(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
        }
        _ => None,
    })?;
    // Only if the secret matches the public key the certificate carries.
    (sk.verifying_key().to_bytes() == a).then_some(sk)
}

/// The X25519 secret of `kp` as a dalek key, if it is one.
fn fast_x25519_secret(kp: &KeyPair) -> Option<Box<x25519_dalek::StaticSecret>> {
    let u = match kp.public().mpis() {
        openpgp::crypto::mpi::PublicKey::X25519 { u } => *u,
        _ => return None,
    };
    let sk = kp.secret().map(|m| match m {
        openpgp::crypto::mpi::SecretKeyMaterial::X25519 { x } if x.len() == 32 => {
            let mut b = Zeroizing::new([0u8; 32]);
            b.copy_from_slice(x);
            Some(Box::new(x25519_dalek::StaticSecret::from(*b)))
        }
        _ => None,
    })?;
    (x25519_dalek::PublicKey::from(&*sk).to_bytes() == u).then_some(sk)
}

/// Argon2id cost for [`SecretKey::lock_with`], stored inside the locked key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockParams {
    /// Passes.
    pub t: u8,
    /// Lanes.
    pub p: u8,
    /// Memory is 2^m_exp KiB.
    pub m_exp: u8,
}

impl Default for LockParams {
    /// RFC 9580 §3.7.1.4's second recommendation: t=3, p=4, 64 MiB.
    fn default() -> Self {
        LockParams {
            t: 3,
            p: 4,
            m_exp: 16,
        }
    }
}

impl LockParams {
    /// Cheap parameters (1 MiB, one pass) for tests only; never for real accounts.
    pub fn insecure_for_tests() -> Self {
        LockParams {
            t: 1,
            p: 1,
            m_exp: 10,
        }
    }

    /// Bounds both what we write and what we agree to compute when unlocking,
    /// so a crafted locked key cannot ask for gigabytes or minutes.
    pub(crate) fn check_pub(&self) -> Result<()> {
        self.check()
    }

    fn check(&self) -> Result<()> {
        if !(1..=10).contains(&self.t)
            || !(1..=16).contains(&self.p)
            || !(3..=21).contains(&self.m_exp)
        {
            return Err(CryptoError::InvalidInput(
                "argon2 parameters out of range".into(),
            ));
        }
        if (1u64 << self.m_exp) < 8 * u64::from(self.p) {
            return Err(CryptoError::InvalidInput(
                "argon2 memory too small for lanes".into(),
            ));
        }
        Ok(())
    }
}

/// A secret key locked under a password (opaque bytes for the database).
#[derive(Clone, PartialEq, Eq)]
pub struct LockedKey(Vec<u8>);

impl fmt::Debug for LockedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockedKey({} bytes)", self.0.len())
    }
}

impl LockedKey {
    /// Wraps stored bytes; they are only checked when unlocking.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        LockedKey(bytes)
    }
    /// The bytes to store.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }
    /// Borrowing form of [`LockedKey::to_bytes`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Unlocks with `password`; a wrong password is [`CryptoError::WrongPassword`].
    /// A password change is `unlock(old)` then `lock(new)`: the key, and so every
    /// message sealed to it, stays the same.
    pub fn unlock(&self, password: &[u8]) -> Result<SecretKey> {
        let password = Password::from(password);
        let plain = pgp::decrypt_small(&self.0, KeySource::Password(&password), None)?;
        SecretKey::from_tsk_bytes(&plain.data)
    }

    /// The Argon2id parameters this key was locked with (to decide on re-locking).
    pub fn params(&self) -> Result<LockParams> {
        pgp::locked_key_params(&self.0)
    }
}

/// A secret key encrypted to one or more certificates: a grant of a facility key to
/// its members, or a user key sealed to the recovery certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey(Vec<u8>);

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedKey({} bytes)", self.0.len())
    }
}

/// Seals `key` (its full secret) so that any holder of one of `to` can open it.
pub fn seal_secret_key(key: &SecretKey, to: &[&Certificate]) -> Result<SealedKey> {
    if to.is_empty() {
        return Err(CryptoError::InvalidInput("no recipient".into()));
    }
    let tsk = key.tsk_bytes()?;
    Ok(SealedKey(seal_bytes(&tsk, to)?))
}

/// Encrypts small secret bytes (a key file's content) so that any holder of
/// one of `to` can read them: an OpenPGP message like a [`SealedKey`].
pub fn seal_bytes(plain: &[u8], to: &[&Certificate]) -> Result<Vec<u8>> {
    if to.is_empty() {
        return Err(CryptoError::InvalidInput("no recipient".into()));
    }
    let mut out = Vec::with_capacity(plain.len() + 128 * to.len() + 128);
    {
        let msg = Message::new(&mut out);
        let msg = Encryptor::for_recipients(msg, pgp::recipients(to))
            .symmetric_algo(SYM)
            .aead_algo(AEAD)
            .build()
            .map_err(CryptoError::pgp)?;
        let mut lw = LiteralWriter::new(msg).build().map_err(CryptoError::pgp)?;
        lw.write_all(plain)?;
        lw.finalize().map_err(CryptoError::pgp)?;
    }
    Ok(out)
}

/// Reads what [`seal_bytes`] wrote, with one holder's key.
pub fn open_bytes(sealed: &[u8], holder: &SecretKey) -> Result<Zeroizing<Vec<u8>>> {
    Ok(pgp::decrypt_small(sealed, KeySource::Secret(holder), None)?.data)
}

impl SealedKey {
    /// Wraps stored bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        SealedKey(bytes)
    }
    /// The bytes to store.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }
    /// Borrowing form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Opens with one holder's key. Callers should check the returned key's
    /// fingerprint against the certificate they expect (e.g. the facility's).
    pub fn open(&self, holder: &SecretKey) -> Result<SecretKey> {
        let plain = pgp::decrypt_small(&self.0, KeySource::Secret(holder), None)?;
        SecretKey::from_tsk_bytes(&plain.data)
    }
}
