//! The two public-key operations on every envelope, done without Sequoia's
//! OpenSSL backend: X25519 key slots (RFC 9580 §5.1.6) and Ed25519 signatures
//! (§5.2.3.3). Sequoia imports the key into a fresh OpenSSL `EVP_PKEY` (a
//! provider fetch behind a lock) for every operation and decrypts its in-memory
//! secret each time; that overhead, not the curve arithmetic, was most of the
//! cost of a small envelope. The dalek crates are constant-time for secret
//! scalars. Keys of any other algorithm still go through Sequoia.

use sequoia_openpgp as openpgp;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use openpgp::crypto::ecdh::{aes_key_unwrap, aes_key_wrap};
use openpgp::crypto::mem::Protected;
use openpgp::crypto::{Decryptor, SessionKey, Signer, mpi};
use openpgp::packet::Key;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::pkesk::PKESK6;
use openpgp::types::{HashAlgorithm, PublicKeyAlgorithm, SymmetricAlgorithm};
use openpgp::{Error, Fingerprint};
use sha2::Sha256;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

type PubKey = Key<PublicParts, UnspecifiedRole>;

/// The X25519 key-encryption key: HKDF-SHA256(ephemeral ‖ recipient ‖ shared,
/// info "OpenPGP X25519"), 16 bytes for AES-128 key wrap.
fn kek(e: &[u8; 32], u: &[u8; 32], shared: &[u8; 32]) -> openpgp::Result<Protected> {
    let mut ikm = Zeroizing::new([0u8; 96]);
    ikm[..32].copy_from_slice(e);
    ikm[32..64].copy_from_slice(u);
    ikm[64..].copy_from_slice(shared);
    let mut okm = Zeroizing::new([0u8; 16]);
    Hkdf::<Sha256>::new(None, &ikm[..])
        .expand(b"OpenPGP X25519", &mut okm[..])
        .map_err(|_| Error::InvalidOperation("hkdf".into()))?;
    Ok(Protected::from(&okm[..]))
}

/// The X25519 public key of an encryption subkey, if it is one.
pub(crate) fn x25519_public(key: &PubKey) -> Option<[u8; 32]> {
    match key.mpis() {
        mpi::PublicKey::X25519 { u } => Some(*u),
        _ => None,
    }
}

/// The Ed25519 verifying key of a signing key, if it is one.
pub(crate) fn ed25519_public(key: &PubKey) -> Option<VerifyingKey> {
    match key.mpis() {
        mpi::PublicKey::Ed25519 { a } => VerifyingKey::from_bytes(a).ok(),
        _ => None,
    }
}

/// A v6 key slot for `recipient` (an X25519 subkey with public key `u`).
pub(crate) fn x25519_pkesk(
    sk: &SessionKey,
    recipient: Fingerprint,
    u: &[u8; 32],
) -> openpgp::Result<PKESK6> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut seed[..]).map_err(|e| Error::InvalidOperation(e.to_string()))?;
    let eph = StaticSecret::from(*seed);
    let e = XPublic::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&XPublic::from(*u));
    if !shared.was_contributory() {
        return Err(Error::InvalidKey("X25519 key of low order".into()).into());
    }
    let kek = kek(&e, u, shared.as_bytes())?;
    let esk = aes_key_wrap(SymmetricAlgorithm::AES128, &kek, &Protected::from(&sk[..]))?;
    PKESK6::new(
        Some(recipient),
        PublicKeyAlgorithm::X25519,
        mpi::Ciphertext::X25519 {
            e: Box::new(e),
            key: esk.into(),
        },
    )
}

/// Decrypts X25519 key slots with a secret held as a dalek `StaticSecret`.
pub(crate) struct X25519Decryptor<'a> {
    pub(crate) public: &'a PubKey,
    pub(crate) u: [u8; 32],
    pub(crate) secret: &'a StaticSecret,
}

impl Decryptor for X25519Decryptor<'_> {
    fn public(&self) -> &PubKey {
        self.public
    }

    fn decrypt(
        &mut self,
        ciphertext: &mpi::Ciphertext,
        _plaintext_len: Option<usize>,
    ) -> openpgp::Result<SessionKey> {
        let mpi::Ciphertext::X25519 { e, key } = ciphertext else {
            return Err(Error::MalformedPacket("not an X25519 key slot".into()).into());
        };
        let shared = self.secret.diffie_hellman(&XPublic::from(**e));
        if !shared.was_contributory() {
            return Err(Error::MalformedPacket("X25519 point of low order".into()).into());
        }
        let kek = kek(e, &self.u, shared.as_bytes())?;
        Ok(aes_key_unwrap(SymmetricAlgorithm::AES128, &kek, key)?.into())
    }
}

/// Signs with an Ed25519 key held as a dalek `SigningKey`.
pub(crate) struct Ed25519Signer<'a> {
    pub(crate) public: &'a PubKey,
    pub(crate) secret: &'a SigningKey,
}

impl Signer for Ed25519Signer<'_> {
    fn public(&self) -> &PubKey {
        self.public
    }

    fn acceptable_hashes(&self) -> &[HashAlgorithm] {
        &[HashAlgorithm::SHA256, HashAlgorithm::SHA512]
    }

    fn sign(
        &mut self,
        _hash_algo: HashAlgorithm,
        digest: &[u8],
    ) -> openpgp::Result<mpi::Signature> {
        Ok(mpi::Signature::Ed25519 {
            s: Box::new(self.secret.sign(digest).to_bytes()),
        })
    }
}

/// Checks an Ed25519 signature over `digest` (strict: canonical `s`, no small-order points).
pub(crate) fn ed25519_verify(vk: &VerifyingKey, digest: &[u8], sig: &mpi::Signature) -> bool {
    match sig {
        mpi::Signature::Ed25519 { s } => vk
            .verify_strict(digest, &ed25519_dalek::Signature::from_bytes(s))
            .is_ok(),
        _ => false,
    }
}

/// Either signer, so the streaming `Signer` takes one concrete type.
pub(crate) enum AnySigner<'a> {
    Fast(Ed25519Signer<'a>),
    Sequoia(Box<openpgp::crypto::KeyPair>),
}

impl Signer for AnySigner<'_> {
    fn public(&self) -> &PubKey {
        match self {
            AnySigner::Fast(s) => s.public(),
            AnySigner::Sequoia(s) => s.public(),
        }
    }

    fn acceptable_hashes(&self) -> &[HashAlgorithm] {
        match self {
            AnySigner::Fast(s) => s.acceptable_hashes(),
            AnySigner::Sequoia(s) => s.acceptable_hashes(),
        }
    }

    fn sign(&mut self, hash_algo: HashAlgorithm, digest: &[u8]) -> openpgp::Result<mpi::Signature> {
        match self {
            AnySigner::Fast(s) => s.sign(hash_algo, digest),
            AnySigner::Sequoia(s) => s.sign(hash_algo, digest),
        }
    }
}

/// `Signature::verify_document` for an Ed25519 key: the same checks (type,
/// versions, salt size, not older than the key), the digest the packet parser
/// computed, and the Ed25519 equation on the fast path.
pub(crate) fn verify_document(
    sig: &openpgp::packet::Signature,
    key: &PubKey,
    vk: &VerifyingKey,
) -> bool {
    use openpgp::types::SignatureType;
    if !matches!(sig.typ(), SignatureType::Binary | SignatureType::Text) {
        return false;
    }
    if (sig.version() == 6) != (key.version() == 6) {
        return false;
    }
    if sig.version() == 6 && sig.hash_algo().salt_size().ok() != sig.salt().map(|s| s.len()) {
        return false;
    }
    match sig.signature_creation_time() {
        Some(t) if t >= key.creation_time() => {}
        _ => return false,
    }
    match sig.computed_digest() {
        Some(digest) => ed25519_verify(vk, digest, sig.mpis()),
        None => false,
    }
}
