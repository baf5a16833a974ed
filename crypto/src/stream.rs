//! The attachment writer: a SEIPDv2 (AES-256-OCB) message holding one literal
//! packet, with AEAD chunks of [`CHUNK_OCTET`] instead of the 4 KiB Sequoia's
//! `Encryptor` always uses. Per chunk, Sequoia's AEAD layer derives a nonce and
//! builds an OpenSSL context; at 4 KiB that overhead, not OCB, was the limit of
//! a large seal. The bytes are what RFC 9580 §5.13.2 specifies for any chunk
//! size, and readers (Sequoia's parser included) must accept chunk octets up to
//! 16 (4 MiB), so blobs written with 4 KiB chunks and these both open.

use std::io::{self, Write};

use sequoia_openpgp as openpgp;

use openpgp::crypto::SessionKey;
use openpgp::crypto::aead::{Encryptor as AeadEncryptor, SEIPv2Schedule};

use crate::error::{CryptoError, Result};
use crate::keys::{AEAD, SYM};

/// Chunk size octet `c` for attachments: chunks of 2^(c+6) bytes, here 256 KiB.
/// Big enough that the per-chunk cost vanishes, small enough to stay in L2
/// while OCB runs and that a reader never holds more than one chunk back.
pub(crate) const CHUNK_OCTET: u8 = 12;
/// The smallest chunk we write, 4 KiB (Sequoia's fixed size, so a small
/// envelope's body is laid out as before).
const MIN_CHUNK_OCTET: u8 = 6;

/// The chunk octet for a body of `len` bytes known in advance: one chunk if it
/// fits in 4 KiB … 256 KiB (AEAD buffers are allocated per chunk size, so a small
/// envelope must not pay for a big one).
pub(crate) fn chunk_octet_for(len: usize) -> u8 {
    let mut c = MIN_CHUNK_OCTET;
    while c < CHUNK_OCTET && (1usize << (c + 6)) < len {
        c += 1;
    }
    c
}
/// Partial body length of the literal packet (power of two, at least 512).
const LITERAL_PIECE_LOG2: u8 = 20;

/// OpenPGP partial body framing (RFC 9580 §4.2.1.4) that passes whole pieces
/// straight through and only buffers what does not yet fill one.
struct PartialBody<W: Write> {
    inner: W,
    /// Piece length is 2^piece_log2.
    piece_log2: u8,
    /// Plaintext for the literal layer: wiped on drop, never reallocated.
    pending: zeroize::Zeroizing<Vec<u8>>,
}

impl<W: Write> PartialBody<W> {
    fn new(inner: W, piece_log2: u8) -> Self {
        PartialBody {
            inner,
            piece_log2: piece_log2.clamp(9, 30),
            pending: zeroize::Zeroizing::new(Vec::new()),
        }
    }

    /// Writes the final piece with a definite length and returns the sink.
    fn finish(mut self) -> io::Result<W> {
        let n = self.pending.len();
        // New-format lengths: 1, 2 or 5 octets.
        if n < 192 {
            self.inner.write_all(&[n as u8])?;
        } else if n < 8384 {
            let v = n - 192;
            self.inner
                .write_all(&[((v >> 8) + 192) as u8, (v & 0xff) as u8])?;
        } else {
            let mut h = [0xffu8; 5];
            h[1..].copy_from_slice(&(n as u32).to_be_bytes());
            self.inner.write_all(&h)?;
        }
        self.inner.write_all(&self.pending)?;
        self.pending.clear();
        Ok(self.inner)
    }
}

impl<W: Write> Write for PartialBody<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let len = buf.len();
        let piece = 1usize << self.piece_log2;
        while self.pending.len() + buf.len() > piece {
            // More than a piece is available: emit one (keeping at least one
            // byte back, so the final piece is never empty by accident).
            let take = piece - self.pending.len();
            self.inner.write_all(&[0xE0 | self.piece_log2])?;
            self.inner.write_all(&self.pending)?;
            self.inner.write_all(&buf[..take])?;
            self.pending.clear();
            buf = &buf[take..];
        }
        let need = self.pending.len() + buf.len();
        if need > self.pending.capacity() {
            // Grow by hand so the old buffer is wiped, not left behind by a realloc.
            let cap = need.max(2 * self.pending.capacity()).clamp(4096, piece);
            let mut bigger = zeroize::Zeroizing::new(Vec::with_capacity(cap));
            bigger.extend_from_slice(&self.pending);
            self.pending = bigger;
        }
        self.pending.extend_from_slice(buf);
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Fills `buf` from the operating system's generator.
pub(crate) fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf).map_err(|e| CryptoError::Io(io::Error::other(e.to_string())))
}

/// A fresh AES-256 session key.
pub(crate) fn session_key() -> Result<SessionKey> {
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    random(&mut k[..])?;
    Ok(SessionKey::from(&k[..]))
}

/// The encrypted container: a SEIPDv2 packet (new-format CTB, partial body
/// lengths) whose content is written through [`Write`] and AEAD-encrypted in
/// chunks of 2^(c+6) bytes. Carries no key slot.
pub(crate) struct Seipd2<W: Write + Send + Sync> {
    enc: AeadEncryptor<'static, PartialBody<W>>,
}

impl<W: Write + Send + Sync> Seipd2<W> {
    pub(crate) fn new(mut sink: W, sk: &SessionKey, chunk_octet: u8) -> Result<Self> {
        let chunk_octet = chunk_octet.clamp(MIN_CHUNK_OCTET, CHUNK_OCTET);
        let chunk_size = 1usize << (chunk_octet + 6);
        let mut salt = [0u8; 32];
        random(&mut salt)?;
        sink.write_all(&[0xC0 | 18])?;
        // Pieces the size of an AEAD chunk: each encrypted chunk then passes
        // straight through to the sink instead of being copied into a buffer.
        let mut seip = PartialBody::new(sink, chunk_octet + 6);
        seip.write_all(&[2, SYM.into(), AEAD.into(), chunk_octet])?;
        seip.write_all(&salt)?;
        let schedule =
            SEIPv2Schedule::new(sk, SYM, AEAD, chunk_size, &salt).map_err(CryptoError::pgp)?;
        let enc =
            AeadEncryptor::new(SYM, AEAD, chunk_size, schedule, seip).map_err(CryptoError::pgp)?;
        Ok(Seipd2 { enc })
    }

    /// Writes the last chunk and the final tag; returns the sink.
    pub(crate) fn finish(self) -> Result<W> {
        let seip = self.enc.finalize().map_err(CryptoError::pgp)?;
        Ok(seip.finish()?)
    }
}

impl<W: Write + Send + Sync> Write for Seipd2<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enc.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

/// The literal data packet header for `len` bytes of binary data with no file
/// name and no date, definite length.
pub(crate) fn literal_header(len: usize) -> Result<Vec<u8>> {
    let body = len + 6;
    let mut h = vec![0xC0 | 11];
    if body < 192 {
        h.push(body as u8);
    } else if body < 8384 {
        let v = body - 192;
        h.extend_from_slice(&[((v >> 8) + 192) as u8, (v & 0xff) as u8]);
    } else {
        let n = u32::try_from(body)
            .map_err(|_| CryptoError::InvalidInput("message too large".into()))?;
        h.push(0xff);
        h.extend_from_slice(&n.to_be_bytes());
    }
    h.extend_from_slice(&[b'b', 0, 0, 0, 0, 0]);
    Ok(h)
}

/// Streams a SEIPDv2 message with no key slot holding one literal packet:
/// [`AttachmentWriter::write`] takes plaintext, [`AttachmentWriter::finish`]
/// writes the final tag.
pub(crate) struct AttachmentWriter<W: Write + Send + Sync> {
    literal: PartialBody<Seipd2<W>>,
}

impl<W: Write + Send + Sync> AttachmentWriter<W> {
    pub(crate) fn new(sink: W, sk: &SessionKey) -> Result<Self> {
        let mut seipd = Seipd2::new(sink, sk, CHUNK_OCTET)?;
        // Literal data packet (tag 11): binary, no file name, no date.
        seipd.write_all(&[0xC0 | 11])?;
        let mut literal = PartialBody::new(seipd, LITERAL_PIECE_LOG2);
        literal.write_all(&[b'b', 0, 0, 0, 0, 0])?;
        Ok(AttachmentWriter { literal })
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        self.literal.write_all(data)?;
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<W> {
        self.literal.finish()?.finish()
    }
}
