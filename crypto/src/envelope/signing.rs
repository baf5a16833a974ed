//! The signed body of an envelope (one-pass signature, literal data,
//! signature) encrypted once with a key slot per recipient, and detached
//! signatures of exported files.

use std::io::Write;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::crypto::Signer as _;
use openpgp::packet::Packet;
use openpgp::packet::one_pass_sig::OnePassSig6;
use openpgp::packet::pkesk::PKESK6;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::serialize::Marshal;
use openpgp::types::{HashAlgorithm, SignatureType};
use zeroize::Zeroizing;

use super::SealedEnvelope;
use crate::error::{CryptoError, Result};
use crate::fast;
use crate::keys::{Certificate, SecretKey};
use crate::stream;

pub(super) fn seal_body(
    sender: &SecretKey,
    recipients: &[&Certificate],
    plain: &[u8],
) -> Result<SealedEnvelope> {
    let sk = stream::session_key()?;
    let mut out = Vec::with_capacity(plain.len() + 120 * recipients.len() + 512);
    // Key slots first (PKESK v6, addressed to the encryption subkey), as
    // Sequoia's `Encryptor` writes them, through the X25519 fast path.
    for c in recipients {
        let pkesk = match c.enc_x25519() {
            Some(u) => fast::x25519_pkesk(&sk, c.enc_fpr().clone(), u),
            None => PKESK6::for_recipient(&sk, c.enc_key()).map(|mut p| {
                p.set_recipient(Some(c.enc_fpr().clone()));
                p
            }),
        }
        .map_err(CryptoError::pgp)?;
        Packet::PKESK(pkesk.into())
            .serialize(&mut out)
            .map_err(CryptoError::pgp)?;
    }

    // The signed message, built whole (it is small): one-pass signature,
    // literal data, signature (v6, SHA-256, salted) — what Sequoia's streaming
    // `Signer` + `LiteralWriter` emit, without their writer stack.
    let mut signer = sender.any_signer();
    let hash = HashAlgorithm::SHA256;
    let mut salt = vec![0u8; hash.salt_size().map_err(CryptoError::pgp)?];
    stream::random(&mut salt)?;
    let issuer = signer.public().fingerprint();
    let mut ops = OnePassSig6::new(SignatureType::Binary, issuer);
    ops.set_pk_algo(signer.public().pk_algo());
    ops.set_hash_algo(hash);
    ops.set_salt(salt.clone());
    ops.set_last(true);
    let sig = SignatureBuilder::new(SignatureType::Binary)
        .set_hash_algo(hash)
        .set_prefix_salt(salt)
        .0
        .set_signature_creation_time(SystemTime::now())
        .map_err(CryptoError::pgp)?
        .sign_message(&mut signer, plain)
        .map_err(CryptoError::pgp)?;
    let literal = stream::literal_header(plain.len())?;
    let mut inner = Zeroizing::new(Vec::with_capacity(plain.len() + literal.len() + 512));
    Packet::OnePassSig(ops.into())
        .serialize(&mut *inner)
        .map_err(CryptoError::pgp)?;
    inner.extend_from_slice(&literal);
    inner.extend_from_slice(plain);
    Packet::Signature(sig)
        .serialize(&mut *inner)
        .map_err(CryptoError::pgp)?;

    let mut body = stream::Seipd2::new(&mut out, &sk, stream::chunk_octet_for(inner.len()))?;
    body.write_all(&inner)?;
    body.finish()?;
    Ok(SealedEnvelope(out))
}

/// A detached OpenPGP signature (v6, SHA-256, ASCII armor) of `data` by `key`:
/// what goes beside an exported PDF.
pub fn sign_detached(key: &SecretKey, data: &[u8]) -> Result<String> {
    let mut signer = key.any_signer();
    let hash = HashAlgorithm::SHA256;
    let mut salt = vec![0u8; hash.salt_size().map_err(CryptoError::pgp)?];
    stream::random(&mut salt)?;
    let sig = SignatureBuilder::new(SignatureType::Binary)
        .set_hash_algo(hash)
        .set_prefix_salt(salt)
        .0
        .set_signature_creation_time(SystemTime::now())
        .map_err(CryptoError::pgp)?
        .sign_message(&mut signer, data)
        .map_err(CryptoError::pgp)?;
    let mut out = Vec::new();
    let mut w = openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Signature)
        .map_err(CryptoError::pgp)?;
    Packet::Signature(sig)
        .serialize(&mut w)
        .map_err(CryptoError::pgp)?;
    w.finalize().map_err(CryptoError::pgp)?;
    String::from_utf8(out).map_err(|e| CryptoError::InvalidInput(e.to_string()))
}

/// Checks a detached signature made by [`sign_detached`] against `cert`'s
/// signing keys (policy-checked, alive at the signature's time).
pub fn verify_detached(cert: &Certificate, data: &[u8], armored: &str) -> Result<bool> {
    use openpgp::parse::Parse;
    use openpgp::policy::StandardPolicy;
    let packet = Packet::from_bytes(armored.as_bytes()).map_err(CryptoError::pgp)?;
    let Packet::Signature(sig) = packet else {
        return Ok(false);
    };
    let policy = StandardPolicy::new();
    let at = sig.signature_creation_time();
    for ka in cert
        .cert()
        .keys()
        .with_policy(&policy, at)
        .for_signing()
        .alive()
        .revoked(false)
    {
        if sig.verify_message(ka.key(), data).is_ok() {
            return Ok(true);
        }
    }
    Ok(false)
}
