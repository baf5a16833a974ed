//! Sealed envelopes: sign-then-encrypt of an inner MIME message, one key slot per
//! principal, and attachments as separate streamed OpenPGP messages whose session
//! keys and SHA-256 sit in the signed manifest.
//!
//! Format: OpenPGP v6 — PKESK v6 key slots and one SEIPDv2 (AES-256-OCB) body,
//! SHA-256 signature digests; attachments with 256 KiB AEAD chunks, bodies with
//! one chunk sized to the body (4 KiB floor). The reasons and the figures are
//! in `bench/seal/README.md`; the frozen fixture in `crypto/tests/fixtures`
//! pins the format. `open` reads the envelope straight off the packet parser
//! (key slots, then one-pass signature, literal, signature) instead of the
//! streaming `Decryptor`, with the same failure naming and the same signature
//! checks (policy at signature time, key alive, not revoked, signing-capable,
//! signature alive), verifying once. `Certificate` sits behind an `Arc` and
//! caches its encryption subkey and signing keys.

use std::fmt;
use std::io::{Read, Write};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::Fingerprint;
use openpgp::crypto::SessionKey;
use openpgp::packet::Packet;
use openpgp::packet::pkesk::PKESK6;
use openpgp::serialize::Marshal;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{CryptoError, Result};
use crate::keys::{Certificate, KeySlotId, SecretKey};
use crate::pgp::{self, KeySource};

mod attachments;
mod mime;
mod signing;

/// Defined beside the verifier that decides it; envelopes report it.
pub use crate::pgp::Verification;
use attachments::seal_attachments;
pub use attachments::{AttachmentOpened, open_attachment};
use mime::{build_mime, parse_mime};
use signing::seal_body;
pub use signing::{sign_detached, verify_detached};

/// Headers that are part of the signed, encrypted content (never in clear metadata).
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ProtectedHeaders {
    /// Message kind (request, report, letter, …).
    pub kind: String,
    /// Subject line.
    pub subject: String,
    /// Patient ID as entered.
    pub patient_id: String,
    /// Patient name as entered.
    pub patient_name: String,
}

/// Who the sender says they are; authenticated only together with a `Valid`
/// verification whose signer fingerprint the caller maps to this account.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SenderInfo {
    /// Account ID.
    pub account_id: String,
    /// Display name.
    pub name: String,
    /// Facility code.
    pub facility: String,
}

/// What a sender writes: input to [`seal`]. The manifest is added by `seal`.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Draft {
    /// Protected headers.
    pub headers: ProtectedHeaders,
    /// Claimed sender.
    pub sender: SenderInfo,
    /// Plain-text body.
    pub body: String,
    /// Structured fields of the form (for example modality, findings), signed with
    /// the body, in order.
    pub fields: Vec<Field>,
    /// Where the item belongs, signed with it (see [`Place`]); `None` only for
    /// tests of the older format.
    pub place: Option<Place>,
}

/// The item's place, signed in the inner message so that a row moved to another
/// thread or patient, relabelled, re-addressed or re-dated no longer matches
/// what the sender signed. Items sealed before places were signed have none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct Place {
    /// The envelope's own ID.
    pub envelope_id: String,
    /// The thread it belongs to, if any.
    pub thread_id: Option<String>,
    /// Its step's sequence number in the thread (1 for the opening envelope).
    pub step_seq: Option<i64>,
    /// Its step's kind (`open`, `report`, `decline`, …).
    pub step_kind: Option<String>,
    /// The item's kind as stored in clear (`message`, `reading_request`, …).
    pub item_kind: String,
    /// The sending account.
    pub sender_account: String,
    /// The sending account's facility (empty for operators).
    pub sender_facility: String,
    /// The principals it was sealed to (key slot owners), sorted.
    pub recipients: Vec<String>,
    /// Creation time, seconds since the Unix epoch, as stored in clear.
    pub created_at: i64,
    /// The patient's blind index (hex), when the item names a patient.
    pub patient_blind_index: Option<String>,
}

/// One named field of a structured form.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct Field {
    /// Field name (stable, ASCII: `modality`, `findings`, …).
    pub name: String,
    /// Value as entered.
    pub value: String,
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field({} = <redacted>)", self.name)
    }
}

impl Field {
    /// A field from a name and a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The opened, plaintext inner message. Distinct from [`SealedEnvelope`] so the
/// two cannot be confused; wiped on drop; `Debug` shows no content.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct InnerMessage {
    /// Protected headers.
    pub headers: ProtectedHeaders,
    /// Claimed sender (see [`SenderInfo`]).
    pub sender: SenderInfo,
    /// Plain-text body.
    pub body: String,
    /// Structured fields, as sealed.
    pub fields: Vec<Field>,
    /// The signed place; `None` for items sealed before places were signed.
    pub place: Option<Place>,
    /// One entry per attachment, in the order given to [`seal`].
    pub manifest: Vec<ManifestEntry>,
}

/// One attachment as recorded in the signed inner message. Holds the attachment's
/// session key, so it is secret: no `Serialize`, redacted `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ManifestEntry {
    /// File name as given by the sender.
    pub name: String,
    /// Media type as given by the sender.
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
    #[zeroize(skip)] // Sequoia's SessionKey wipes itself on drop.
    session_key: SessionKey,
}

impl PartialEq for ManifestEntry {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.media_type == o.media_type
            && self.size == o.size
            && self.sha256 == o.sha256
            && self.session_key == o.session_key
    }
}
impl Eq for ManifestEntry {}

impl fmt::Debug for ManifestEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestEntry")
            .field("size", &self.size)
            .field("sha256", &hex::encode(self.sha256))
            .field("name", &"<redacted>")
            .field("session_key", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for InnerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InnerMessage")
            .field("content", &"<redacted>")
            .field("attachments", &self.manifest.len())
            .finish()
    }
}
impl fmt::Debug for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Draft { <redacted> }")
    }
}
impl fmt::Debug for ProtectedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProtectedHeaders { <redacted> }")
    }
}
impl fmt::Debug for SenderInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderInfo")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// An attachment to seal: metadata, a plaintext source and a sink for the sealed blob.
/// The source is read on a helper thread (hence `Send`); nothing is held whole in memory.
pub struct AttachmentInput<'a> {
    /// File name (goes into the signed manifest only).
    pub name: String,
    /// Media type (signed manifest only).
    pub media_type: String,
    /// Set by the source once it has judged the content: the media type the
    /// manifest records instead of `media_type` (a declared type that
    /// contradicts the content is corrected; `None` keeps `media_type`).
    pub checked_type: Option<std::sync::Arc<std::sync::OnceLock<String>>>,
    /// Plaintext.
    pub source: Box<dyn Read + Send + 'a>,
    /// Where the sealed OpenPGP message is written (the caller stores it as a blob).
    pub sink: Box<dyn Write + Send + Sync + 'a>,
}

/// Clear facts about one sealed attachment, for storage and billing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedAttachment {
    /// Plaintext size.
    pub plain_size: u64,
    /// Size of the sealed blob written to the sink.
    pub sealed_size: u64,
}

/// An encrypted, signed envelope: key slots (PKESK v6) followed by one SEIPDv2 body.
/// Opaque bytes for storage.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedEnvelope(Vec<u8>);

impl fmt::Debug for SealedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedEnvelope({} bytes)", self.0.len())
    }
}

impl SealedEnvelope {
    /// Wraps stored bytes; checked when opened.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        SealedEnvelope(bytes)
    }
    /// The bytes to store.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }
    /// Borrowing form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Whether `cert` holds a key slot (by recipient id; does not decrypt anything).
    pub fn is_addressed_to(&self, cert: &Certificate) -> Result<bool> {
        Ok(key_slots(self)?.contains(&cert.key_slot_id()))
    }
}

/// Result of [`seal`].
#[derive(Debug)]
pub struct Sealed {
    /// The envelope.
    pub envelope: SealedEnvelope,
    /// One per attachment, same order as the input.
    pub attachments: Vec<SealedAttachment>,
}

/// Result of [`open`].
#[derive(Debug)]
pub struct OpenedEnvelope {
    /// The plaintext.
    pub inner: InnerMessage,
    /// Fingerprint (hex) of the signing key's certificate, when the signature names one.
    pub signer: Option<String>,
    /// Signature status; anything but `Valid` must be shown as such.
    pub verification: Verification,
    /// Signature creation time.
    pub signed_at: Option<SystemTime>,
    /// SHA-256 of the signed content (the literal data the signature covers),
    /// printed on PDF exports so a paper copy can be matched to its item.
    pub signed_sha256: [u8; 32],
}

fn check_header(what: &str, v: &str) -> Result<()> {
    if v.chars().any(char::is_control) {
        return Err(CryptoError::InvalidInput(format!(
            "{what} contains a control character"
        )));
    }
    Ok(())
}

/// Seals a message: attachments first (each streamed to its sink under a fresh
/// session key), then the inner MIME message with their manifest, signed by
/// `sender` (SHA-256) and encrypted once with one key slot per recipient.
pub fn seal(
    sender: &SecretKey,
    recipients: &[&Certificate],
    draft: &Draft,
    attachments: Vec<AttachmentInput<'_>>,
) -> Result<Sealed> {
    if recipients.is_empty() {
        return Err(CryptoError::InvalidInput("no recipient".into()));
    }
    let h = &draft.headers;
    for (what, v) in [
        ("kind", &h.kind),
        ("subject", &h.subject),
        ("patient id", &h.patient_id),
        ("patient name", &h.patient_name),
        ("sender account", &draft.sender.account_id),
        ("sender name", &draft.sender.name),
        ("sender facility", &draft.sender.facility),
    ] {
        check_header(what, v)?;
    }
    if let Some(p) = &draft.place
        && (p.envelope_id.is_empty() || p.recipients.is_empty())
    {
        return Err(CryptoError::InvalidInput(
            "a place names its envelope and recipients".into(),
        ));
    }
    for a in &attachments {
        check_header("attachment name", &a.name)?;
        check_header("attachment media type", &a.media_type)?;
    }
    let (manifest, sealed_atts): (Vec<_>, Vec<_>) =
        seal_attachments(attachments)?.into_iter().unzip();
    let mime = build_mime(draft, &manifest)?;
    let envelope = seal_body(sender, recipients, &mime)?;
    Ok(Sealed {
        envelope,
        attachments: sealed_atts,
    })
}

/// Opens an envelope with one principal's key. `signer_lookup` maps the signer's
/// primary fingerprint to their certificate (typically from the account table).
///
/// Errors: [`CryptoError::NotAddressedToYou`] (no key slot for `key`),
/// [`CryptoError::KeySlotDamaged`], [`CryptoError::BodyDamaged`]. A body that
/// decrypts but whose signature fails is *not* an error: it is returned with
/// `Verification::BadSignature` so the UI can say so.
pub fn open(
    envelope: &SealedEnvelope,
    key: &SecretKey,
    signer_lookup: impl Fn(&Fingerprint) -> Option<Certificate>,
) -> Result<OpenedEnvelope> {
    let (data, verified) = pgp::decrypt_verify(&envelope.0, key, &signer_lookup)?;
    let inner = parse_mime(&data)?;
    let signed_sha256 = {
        use sha2::Digest;
        sha2::Sha256::digest(&data[..]).into()
    };
    Ok(OpenedEnvelope {
        inner,
        signer: verified.signer.map(|f| f.to_hex()),
        verification: verified.status,
        signed_at: verified.signed_at,
        signed_sha256,
    })
}

/// Adds a key slot for `new_recipient` (forwarding within a facility) using any key
/// that can already open the envelope. Only the session key is recovered; the
/// encrypted body and the existing slots are kept byte for byte, and the new PKESK
/// is prepended. Adding an already present recipient returns the envelope unchanged.
pub fn add_key_slot(
    envelope: &SealedEnvelope,
    opener: &SecretKey,
    new_recipient: &Certificate,
) -> Result<SealedEnvelope> {
    if envelope.is_addressed_to(new_recipient)? {
        return Ok(envelope.clone());
    }
    // Decrypting the body as well proves the session key is right and the body
    // intact, so we never hand out a slot to a damaged envelope.
    let plain = pgp::decrypt_small(&envelope.0, KeySource::Secret(opener), None)?;
    let sk = plain.session_key.ok_or(CryptoError::KeySlotDamaged)?;
    let mut pkesk =
        PKESK6::for_recipient(&sk, new_recipient.enc_key()).map_err(CryptoError::pgp)?;
    pkesk.set_recipient(Some(new_recipient.enc_key().fingerprint()));
    let mut out = Vec::with_capacity(envelope.0.len() + 160);
    Packet::PKESK(pkesk.into())
        .serialize(&mut out)
        .map_err(CryptoError::pgp)?;
    out.extend_from_slice(&envelope.0);
    Ok(SealedEnvelope(out))
}

/// Lists the recipients of an envelope's key slots (encryption-subkey
/// fingerprints; see [`Certificate::key_slot_id`]). Reads only clear packet headers.
pub fn key_slots(envelope: &SealedEnvelope) -> Result<Vec<KeySlotId>> {
    Ok(pgp::top_level_pkesks(&envelope.0)?
        .iter()
        .filter_map(|p| p.recipient())
        .map(|h| KeySlotId(h.to_hex()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AEAD;
    use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};
    use openpgp::types::HashAlgorithm;

    /// An insider who knows the session key re-encrypts a signed message whose
    /// literal data was altered after signing: the body decrypts, the signature fails.
    #[test]
    fn altered_signed_content_is_bad_signature() -> Result<()> {
        let a = SecretKey::generate("a")?;
        let b = SecretKey::generate("b")?;
        let mut draft = Draft::default();
        draft.body = "findings: benign".into();
        let mime = build_mime(&draft, &[])?;
        let mut signed = Vec::new();
        {
            let msg = Message::new(&mut signed);
            let msg = Signer::new(msg, a.signer())
                .map_err(CryptoError::pgp)?
                .hash_algo(HashAlgorithm::SHA256)
                .map_err(CryptoError::pgp)?
                .build()
                .map_err(CryptoError::pgp)?;
            let mut lw = LiteralWriter::new(msg).build().map_err(CryptoError::pgp)?;
            lw.write_all(&mime)?;
            lw.finalize().map_err(CryptoError::pgp)?;
        }
        let at = signed
            .windows(6)
            .position(|w| w == b"benign")
            .ok_or(CryptoError::BodyDamaged)?;
        signed[at..at + 6].copy_from_slice(b"MALIGN");
        let mut out = Vec::new();
        {
            let b_cert = b.cert();
            let msg = Message::new(&mut out);
            let mut msg = Encryptor::for_recipients(msg, pgp::recipients(&[&b_cert]))
                .aead_algo(AEAD)
                .build()
                .map_err(CryptoError::pgp)?;
            msg.write_all(&signed)?;
            msg.finalize().map_err(CryptoError::pgp)?;
        }
        let a_cert = a.cert();
        let o = open(&SealedEnvelope(out), &b, |_| Some(a_cert.clone()))?;
        assert_eq!(o.verification, Verification::BadSignature);
        assert_eq!(o.inner.body, "findings: MALIGN");
        Ok(())
    }
}
