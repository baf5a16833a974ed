//! Attachments as separate streamed OpenPGP messages: sealed on a few workers,
//! hashed as they go, opened and checked against their signed manifest entry.
//!
//! Attachments are sealed on one worker per core (at most four), taken in order
//! so an upload's parts, fed one after another, always have a worker; the last
//! attachment starts only after all others (the intake record summarises them).
//! Each worker hands its 1 MiB plaintext buffers (`BufferPool`) from one
//! attachment to the next: a fresh pair per file, zeroed on allocation and
//! wiped on drop, was four times the study in memory writes and a third of an
//! ingest's user time. Attachments are decrypted straight off Sequoia's packet
//! parser, not its streaming `Decryptor`, which held several times the
//! attachment in memory.

use std::io::{self, BufWriter, Read, Write};
use std::sync::mpsc::sync_channel;

use sequoia_openpgp as openpgp;

use openpgp::types::HashAlgorithm;
use zeroize::Zeroizing;

use super::{AttachmentInput, ManifestEntry, SealedAttachment};
use crate::error::{CryptoError, Result};
use crate::pgp;
use crate::stream::{self, AttachmentWriter};

/// Streaming unit for attachments: big enough to amortise per-call overhead,
/// small enough that a handful in flight stay far below the memory target.
const CHUNK: usize = 1 << 20;
/// Buffers queued between the reading/hashing thread and the encrypting thread.
const QUEUE: usize = 4;

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
pub(super) fn seal_attachments(
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
        checked_type,
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
    // The source has read the whole file by now.
    let media_type = checked_type
        .and_then(|c| c.get().cloned())
        .unwrap_or(media_type);
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
