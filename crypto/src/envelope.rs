//! Sealed envelopes: sign-then-encrypt of an inner MIME message, one key slot per
//! principal, and attachments as separate streamed OpenPGP messages whose session
//! keys and SHA-256 sit in the signed manifest.

use std::fmt;
use std::io::{self, BufWriter, Read, Write};
use std::sync::OnceLock;
use std::sync::mpsc::sync_channel;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::Fingerprint;
use openpgp::crypto::SessionKey;
use openpgp::crypto::Signer as _;
use openpgp::packet::Packet;
use openpgp::packet::one_pass_sig::OnePassSig6;
use openpgp::packet::pkesk::PKESK6;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::serialize::Marshal;
use openpgp::types::{HashAlgorithm, SignatureType};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{CryptoError, Result};
use crate::fast;
use crate::keys::{Certificate, KeySlotId, SecretKey};
use crate::pgp::{self, KeySource};
use crate::stream::{self, AttachmentWriter};

/// Streaming unit for attachments: big enough to amortise per-call overhead,
/// small enough that a handful in flight stay far below the memory target.
const CHUNK: usize = 1 << 20;
/// Buffers queued between the reading/hashing thread and the encrypting thread.
const QUEUE: usize = 4;

const MANIFEST_TYPE: &str = "application/vnd.renkei.manifest+json";
const FIELDS_TYPE: &str = "application/vnd.renkei.fields+json";
const H_KIND: &str = "X-Renkei-Kind";
const H_PATIENT_ID: &str = "X-Renkei-Patient-Id";
const H_PATIENT_NAME: &str = "X-Renkei-Patient-Name";
const H_SENDER_ACCOUNT: &str = "X-Renkei-Sender-Account";
const H_SENDER_NAME: &str = "X-Renkei-Sender-Name";
const H_SENDER_FACILITY: &str = "X-Renkei-Sender-Facility";

/// How far a reader may trust what they opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Signed by the key the look-up returned, and the signature checks.
    Valid,
    /// Signed, but the look-up knows no certificate for the signer's fingerprint.
    UnknownSigner,
    /// The signature does not verify (or is missing): content must not be shown as genuine.
    BadSignature,
    /// An attachment blob does not match its signed manifest entry.
    /// ([`open_attachment`] reports this as [`CryptoError::AttachmentChanged`];
    /// the variant lets callers fold it into one status.)
    AttachmentChanged,
}

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

fn seal_body(
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

/// SHA-256 of attachment plaintext through OpenSSL (SHA-NI), about 12% faster
/// here than the `sha2` crate: hashing is the longest stage of a large seal.
struct Sha256(openpgp::crypto::hash::Context);

impl Sha256 {
    fn new() -> io::Result<Self> {
        HashAlgorithm::SHA256
            .context()
            .map(|c| Sha256(c.for_digest()))
            .map_err(|e| io::Error::other(e.to_string()))
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finish(mut self) -> io::Result<[u8; 32]> {
        let mut d = [0u8; 32];
        self.0
            .digest(&mut d)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(d)
    }
}

/// Counts bytes on their way to the sink.
struct Counting<W> {
    inner: W,
    n: u64,
}
impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads until `buf` is full or the source ends.
fn read_full(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn thread_died() -> CryptoError {
    CryptoError::Io(io::Error::other("worker thread panicked"))
}

/// Seals attachments on a few workers (one per core) that take them in order:
/// a study of thousands of half-megabyte files kept one core busy while the
/// other waited. Taking them in order keeps sources fed one after another (an
/// upload's parts) moving: the earliest unfinished attachment always has a
/// worker. The last attachment starts only once every other is done, so it
/// may summarise them (the intake record). Results keep the input order; the
/// first error stops the workers from taking more.
fn seal_attachments(
    attachments: Vec<AttachmentInput<'_>>,
) -> Result<Vec<(ManifestEntry, SealedAttachment)>> {
    let mut attachments = attachments;
    let Some(last) = attachments.pop() else {
        return Ok(Vec::new());
    };
    let count = attachments.len();
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4)
        .min(count);
    let mut results: Vec<Option<Result<(ManifestEntry, SealedAttachment)>>> = Vec::new();
    if workers <= 1 {
        let mut pool = BufferPool::default();
        for a in attachments {
            let r = seal_attachment(a, &mut pool);
            let failed = r.is_err();
            results.push(Some(r));
            if failed {
                break;
            }
        }
    } else {
        results.resize_with(count, || None);
        let queue = std::sync::Mutex::new(attachments.into_iter().enumerate());
        let done = std::sync::Mutex::new(&mut results);
        let failed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut pool = BufferPool::default();
                    while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                        let next = match queue.lock() {
                            Ok(mut q) => q.next(),
                            Err(_) => None,
                        };
                        let Some((i, a)) = next else { break };
                        let r = seal_attachment(a, &mut pool);
                        if r.is_err() {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        if let Ok(mut d) = done.lock() {
                            d[i] = Some(r);
                        }
                    }
                });
            }
        });
    }
    // The first error in input order explains the failure best.
    let mut sealed = Vec::with_capacity(count + 1);
    for r in results {
        match r {
            Some(r) => sealed.push(r?),
            None => return Err(thread_died()),
        }
    }
    if sealed.len() != count {
        return Err(thread_died());
    }
    sealed.push(seal_attachment(last, &mut BufferPool::default())?);
    Ok(sealed)
}

/// Plaintext buffers of [`CHUNK`] bytes that a sealing worker hands from one
/// attachment to the next: zeroed once when made and wiped once when the
/// worker is done. A study's thousands of half-megabyte files each made and
/// wiped two fresh buffers of their own: four times the study's size in
/// memory writes, a fifth of the CPU time of an ingest.
#[derive(Default)]
struct BufferPool(Vec<Zeroizing<Vec<u8>>>);

impl BufferPool {
    /// Buffers a pipeline may hold at once: the queue, one being read, one
    /// being encrypted.
    const KEEP: usize = QUEUE + 2;

    fn take(&mut self) -> Zeroizing<Vec<u8>> {
        self.0
            .pop()
            .unwrap_or_else(|| Zeroizing::new(vec![0u8; CHUNK]))
    }

    fn give(&mut self, buf: Zeroizing<Vec<u8>>) {
        if self.0.len() < Self::KEEP && buf.len() == CHUNK {
            self.0.push(buf);
        }
    }
}

/// Streams one attachment: a helper thread reads and hashes while this thread
/// encrypts (SEIPDv2, AES-256-OCB, no key slot) and writes. Two cores, two stages.
fn seal_attachment(
    a: AttachmentInput<'_>,
    pool: &mut BufferPool,
) -> Result<(ManifestEntry, SealedAttachment)> {
    let AttachmentInput {
        name,
        media_type,
        mut source,
        sink,
    } = a;
    let sk = stream::session_key()?;
    let mut out = Counting {
        inner: BufWriter::with_capacity(CHUNK, sink),
        n: 0,
    };

    let (size, sha256) = std::thread::scope(|s| -> Result<(u64, [u8; 32])> {
        // Full buffers carry how many of their bytes are the file's.
        let (full_tx, full_rx) = sync_channel::<(Zeroizing<Vec<u8>>, usize)>(QUEUE);
        let (empty_tx, empty_rx) = sync_channel::<Zeroizing<Vec<u8>>>(BufferPool::KEEP);
        for buf in pool.0.drain(..) {
            let _ = empty_tx.try_send(buf);
        }
        let reader = s.spawn(move || {
            let mut hasher = Sha256::new()?;
            let mut total = 0u64;
            let mut spare = BufferPool::default();
            loop {
                let mut buf = empty_rx.try_recv().unwrap_or_else(|_| spare.take());
                let n = read_full(&mut source, &mut buf)?;
                if n == 0 {
                    spare.give(buf);
                    break;
                }
                hasher.update(&buf[..n]);
                total += n as u64;
                if full_tx.send((buf, n)).is_err() {
                    break; // encrypting side gave up; its error is reported
                }
            }
            // The receiver goes back with the result: buffers the encrypting
            // side hands back after this are still collected for the pool.
            io::Result::Ok(((total, hasher.finish()?), spare, empty_rx))
        });

        let written = (|| -> Result<()> {
            let mut w = AttachmentWriter::new(&mut out, &sk)?;
            for (buf, n) in full_rx.iter() {
                w.write(&buf[..n])?;
                let _ = empty_tx.try_send(buf);
            }
            w.finish()?;
            Ok(())
        })();
        drop(full_rx); // unblocks the reader if we stopped early
        let read = reader.join().map_err(|_| thread_died())?;
        let (read, spare, empty_rx) = read?; // a source error explains a short stream best
        for buf in spare.0.into_iter().chain(empty_rx.try_iter()) {
            pool.give(buf);
        }
        written?;
        Ok(read)
    })?;
    out.flush()?;
    let sealed_size = out.n;
    Ok((
        ManifestEntry {
            name,
            media_type,
            size,
            sha256,
            session_key: sk,
        },
        SealedAttachment {
            plain_size: size,
            sealed_size,
        },
    ))
}

/// What an [`open_attachment`] call checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentOpened {
    /// Bytes written to the sink (equals the manifest size).
    pub size: u64,
}

/// Streams an attachment's plaintext into `out`, checking it against its signed
/// manifest entry. Any mismatch — altered or truncated blob, a blob swapped with
/// another attachment's, wrong size or SHA-256 — is [`CryptoError::AttachmentChanged`].
/// Data reaches `out` before the final check, so on any error discard what was written.
pub fn open_attachment(
    sealed: impl Read + Send + Sync,
    entry: &ManifestEntry,
    out: impl Write + Send,
) -> Result<AttachmentOpened> {
    let mut out = out;
    // Buffers no larger than the file (plus the byte that finds its end): a
    // half-megabyte slice of a study zeroed and wiped 1 MiB buffers otherwise.
    let chunk = usize::try_from(entry.size)
        .map_or(CHUNK, |size| size.saturating_add(1))
        .clamp(4096, CHUNK);
    std::thread::scope(|s| -> Result<AttachmentOpened> {
        let (full_tx, full_rx) = sync_channel::<Zeroizing<Vec<u8>>>(QUEUE);
        let (empty_tx, empty_rx) = sync_channel::<Zeroizing<Vec<u8>>>(QUEUE + 2);
        let out = &mut out;
        let consumer = s.spawn(move || -> io::Result<[u8; 32]> {
            let mut hasher = Sha256::new()?;
            for buf in full_rx.iter() {
                hasher.update(&buf[..]);
                out.write_all(&buf)?;
                let _ = empty_tx.try_send(buf);
            }
            out.flush()?;
            hasher.finish()
        });
        let mut total = 0u64;
        let decrypted = pgp::decrypt_stream(sealed, &entry.session_key, chunk, |buf| {
            total += buf.len() as u64;
            if total > entry.size {
                return Err(CryptoError::AttachmentChanged);
            }
            full_tx
                .send(buf)
                .map_err(|_| CryptoError::Io(io::Error::other("attachment sink stopped")))?;
            Ok(empty_rx
                .try_recv()
                .unwrap_or_else(|_| Zeroizing::new(Vec::with_capacity(chunk))))
        });
        drop(full_tx);
        let digest = consumer.join().map_err(|_| thread_died())?;
        let size = match decrypted {
            Ok(n) => n,
            Err(CryptoError::Io(_)) => {
                return Err(digest
                    .err()
                    .map(CryptoError::Io)
                    .unwrap_or(CryptoError::AttachmentChanged));
            }
            Err(e) => return Err(e),
        };
        let digest = digest?;
        if size != entry.size || digest != entry.sha256 {
            return Err(CryptoError::AttachmentChanged);
        }
        Ok(AttachmentOpened { size })
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

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct ManifestJson {
    v: u32,
    attachments: Vec<EntryJson>,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct EntryJson {
    name: String,
    media_type: String,
    size: u64,
    sha256: String,
    cipher: String,
    session_key: String,
}

const CIPHER: &str = "AES256-OCB";

fn build_mime(draft: &Draft, manifest: &[ManifestEntry]) -> Result<Zeroizing<Vec<u8>>> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::text::Text;

    let m = ManifestJson {
        v: 1,
        attachments: manifest
            .iter()
            .map(|e| EntryJson {
                name: e.name.clone(),
                media_type: e.media_type.clone(),
                size: e.size,
                sha256: hex::encode(e.sha256),
                cipher: CIPHER.into(),
                session_key: hex::encode(&e.session_key[..]),
            })
            .collect(),
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&m).map_err(|e| CryptoError::InvalidInput(e.to_string()))?,
    );
    let h = &draft.headers;
    let s = &draft.sender;
    let fields_json = Zeroizing::new(
        serde_json::to_vec(&draft.fields).map_err(|e| CryptoError::InvalidInput(e.to_string()))?,
    );
    let mut builder = MessageBuilder::new()
        .message_id("sealed@renkei.invalid")
        .subject(h.subject.as_str())
        .header(H_KIND, Text::new(h.kind.as_str()))
        .header(H_PATIENT_ID, Text::new(h.patient_id.as_str()))
        .header(H_PATIENT_NAME, Text::new(h.patient_name.as_str()))
        .header(H_SENDER_ACCOUNT, Text::new(s.account_id.as_str()))
        .header(H_SENDER_NAME, Text::new(s.name.as_str()))
        .header(H_SENDER_FACILITY, Text::new(s.facility.as_str()))
        .text_body(draft.body.as_str())
        .attachment(MANIFEST_TYPE, "manifest.json", json.as_slice());
    if !draft.fields.is_empty() {
        builder = builder.attachment(FIELDS_TYPE, "fields.json", fields_json.as_slice());
    }
    // Reserve generously (encodings expand text up to ~3x) so the buffer holding
    // plaintext is not reallocated, which would leave unwiped copies behind.
    let mut out = Zeroizing::new(Vec::with_capacity(
        draft.body.len() * 3 + json.len() * 2 + fields_json.len() * 3 + 8192,
    ));
    builder.write_to(&mut *out)?;
    Ok(out)
}

fn parse_mime(bytes: &[u8]) -> Result<InnerMessage> {
    use mail_parser::{MessageParser, MimeHeaders};

    let bad = |what: &str| CryptoError::Malformed(format!("inner message: {what}"));
    // Parsers built once: `MessageParser::new` fills a table of header parsers.
    static INNER: OnceLock<MessageParser> = OnceLock::new();
    static PROBE: OnceLock<MessageParser> = OnceLock::new();
    let msg = INNER
        .get_or_init(|| MessageParser::new().default_header_text())
        .parse(bytes)
        .ok_or_else(|| bad("not MIME"))?;
    // Our own headers may carry RFC 2047 encoded words (Japanese names), which the
    // parser leaves encoded for unknown headers: decode them as a Subject would be.
    let text = |name: &str| -> String {
        let raw = msg
            .header(name)
            .and_then(|v| v.as_text())
            .unwrap_or_default();
        if !raw.contains("=?") {
            return raw.to_owned();
        }
        let probe = format!("Subject: {raw}\r\n\r\n");
        PROBE
            .get_or_init(MessageParser::new)
            .parse(probe.as_bytes())
            .and_then(|m| m.subject().map(str::to_owned))
            .unwrap_or_else(|| raw.to_owned())
    };
    let headers = ProtectedHeaders {
        kind: text(H_KIND),
        subject: msg.subject().unwrap_or_default().to_owned(),
        patient_id: text(H_PATIENT_ID),
        patient_name: text(H_PATIENT_NAME),
    };
    let sender = SenderInfo {
        account_id: text(H_SENDER_ACCOUNT),
        name: text(H_SENDER_NAME),
        facility: text(H_SENDER_FACILITY),
    };
    let body = msg.body_text(0).map(|c| c.into_owned()).unwrap_or_default();
    let part_of = |media_type: &str| {
        msg.attachments().find(|p| {
            p.content_type()
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
                        .eq_ignore_ascii_case(media_type)
                })
                .unwrap_or(false)
        })
    };
    let fields: Vec<Field> = match part_of(FIELDS_TYPE) {
        Some(p) => serde_json::from_slice(p.contents()).map_err(|_| bad("fields unreadable"))?,
        None => Vec::new(),
    };
    let part = part_of(MANIFEST_TYPE).ok_or_else(|| bad("no manifest"))?;
    let m: ManifestJson =
        serde_json::from_slice(part.contents()).map_err(|_| bad("manifest unreadable"))?;
    if m.v != 1 {
        return Err(bad("unknown manifest version"));
    }
    let mut manifest = Vec::with_capacity(m.attachments.len());
    for e in &m.attachments {
        if e.cipher != CIPHER {
            return Err(bad("unknown attachment cipher"));
        }
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&e.sha256, &mut sha256).map_err(|_| bad("bad attachment digest"))?;
        let key =
            Zeroizing::new(hex::decode(&e.session_key).map_err(|_| bad("bad attachment key"))?);
        if key.len() != 32 {
            return Err(bad("bad attachment key length"));
        }
        manifest.push(ManifestEntry {
            name: e.name.clone(),
            media_type: e.media_type.clone(),
            size: e.size,
            sha256,
            session_key: SessionKey::from(&key[..]),
        });
    }
    Ok(InnerMessage {
        headers,
        sender,
        body,
        fields,
        manifest,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AEAD;
    use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};

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
