//! The staging cipher: a file held briefly on disk (a form's upload waiting
//! for the rest of the form) is encrypted with AES-256-GCM under a random key
//! that lives only in memory, so the disk never holds plaintext.
//!
//! Format: a sequence of chunks, each `last flag (1 byte) ‖ length (u32 BE)
//! ‖ ciphertext+tag` of at most [`CHUNK`] bytes of plaintext. The nonce holds
//! the chunk's number and the last-chunk flag, so a reordered, truncated,
//! extended or altered file fails to read back. The format is not stable
//! across versions: a staged file never outlives the process that wrote it.

use std::io::{self, Read, Write};

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const HEAD: usize = 5;

/// A random key for one staged file; never written anywhere.
#[derive(Clone)]
pub struct StagingKey(Aes256Gcm);

impl StagingKey {
    /// A fresh key from the operating system's generator.
    pub fn random() -> Self {
        Self(Aes256Gcm::new(&Aes256Gcm::generate_key(OsRng)))
    }
}

impl std::fmt::Debug for StagingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StagingKey(..)")
    }
}

fn nonce(counter: u64, last: bool) -> Nonce<U12> {
    let mut n = [0u8; 12];
    n[0] = u8::from(last);
    n[4..].copy_from_slice(&counter.to_be_bytes());
    *Nonce::from_slice(&n)
}

/// Why a staged file did not read back; no detail, nothing of the content.
fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a staged upload could not be read back",
    )
}

/// Encrypts into `out` chunk by chunk; [`StagingWriter::finish`] seals the
/// last chunk (possibly empty) and hands `out` back.
pub struct StagingWriter<W: Write> {
    key: StagingKey,
    out: W,
    pending: Vec<u8>,
    counter: u64,
}

impl<W: Write> StagingWriter<W> {
    pub fn new(key: StagingKey, out: W) -> Self {
        Self {
            key,
            out,
            pending: Vec::with_capacity(CHUNK),
            counter: 0,
        }
    }

    fn flush_chunk(&mut self, last: bool) -> io::Result<()> {
        let sealed = self
            .key
            .0
            .encrypt(&nonce(self.counter, last), self.pending.as_slice())
            .map_err(|_| io::Error::other("staging encryption failed"))?;
        let len = u32::try_from(sealed.len()).map_err(|_| io::Error::other("chunk too large"))?;
        self.out.write_all(&[u8::from(last)])?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&sealed)?;
        self.pending.clear();
        self.counter += 1;
        Ok(())
    }

    /// Seals the last chunk and returns the underlying writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_chunk(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for StagingWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let given = data.len();
        while !data.is_empty() {
            // A full chunk is written only once more data follows, so the
            // last one can carry its flag.
            if self.pending.len() == CHUNK {
                self.flush_chunk(false)?;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(given)
    }

    /// Chunks are sealed whole; what is pending waits for more or for `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decrypts what a [`StagingWriter`] wrote under the same key; any change,
/// truncation or wrong key is an `InvalidData` error, never wrong bytes.
pub struct StagingReader<R: Read> {
    key: StagingKey,
    input: R,
    plain: Vec<u8>,
    at: usize,
    counter: u64,
    done: bool,
}

impl<R: Read> StagingReader<R> {
    pub fn new(key: StagingKey, input: R) -> Self {
        Self {
            key,
            input,
            plain: Vec::new(),
            at: 0,
            counter: 0,
            done: false,
        }
    }

    /// The capacity a buffered reader under this one best has.
    pub const fn buffer_capacity() -> usize {
        CHUNK + TAG + HEAD
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut head = [0u8; HEAD];
        self.input.read_exact(&mut head).map_err(|_| broken())?;
        let last = match head[0] {
            0 => false,
            1 => true,
            _ => return Err(broken()),
        };
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > CHUNK + TAG {
            return Err(broken());
        }
        let mut sealed = vec![0u8; len];
        self.input.read_exact(&mut sealed).map_err(|_| broken())?;
        self.plain = self
            .key
            .0
            .decrypt(&nonce(self.counter, last), sealed.as_slice())
            .map_err(|_| broken())?;
        self.at = 0;
        self.counter += 1;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for StagingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = buf.len().min(self.plain.len() - self.at);
        buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn stage(key: &StagingKey, plain: &[u8]) -> Vec<u8> {
        let mut w = StagingWriter::new(key.clone(), Vec::new());
        for piece in plain.chunks(10_000) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_back(key: &StagingKey, staged: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        StagingReader::new(key.clone(), staged).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_at_chunk_boundaries() {
        let key = StagingKey::random();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let plain = data(len);
            let staged = stage(&key, &plain);
            assert_eq!(read_back(&key, &staged).unwrap(), plain, "length {len}");
        }
    }

    #[test]
    fn no_plaintext_on_disk_and_a_changed_byte_fails() {
        let key = StagingKey::random();
        let secret = b"PATIENT-NAME-KAGAWA-TARO ".repeat(5000);
        let mut staged = stage(&key, &secret);
        assert!(!staged.windows(24).any(|x| x == &secret[..24]));
        // Flip a byte of the first chunk's ciphertext.
        staged[10] ^= 1;
        let err = read_back(&key, &staged).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_reordered_or_extended_files_fail() {
        let key = StagingKey::random();
        let staged = stage(&key, &data(3 * CHUNK + 5));
        let chunk = HEAD + CHUNK + TAG;
        // The last chunk cut off: the reader must not stop early with success.
        assert!(read_back(&key, &staged[..3 * chunk]).is_err());
        // The first two chunks swapped.
        let mut swapped = staged[chunk..2 * chunk].to_vec();
        swapped.extend_from_slice(&staged[..chunk]);
        swapped.extend_from_slice(&staged[2 * chunk..]);
        assert!(read_back(&key, &swapped).is_err());
        // A last-chunk flag flipped on a middle chunk.
        let mut flagged = staged.clone();
        flagged[chunk] = 1;
        assert!(read_back(&key, &flagged).is_err());
    }

    #[test]
    fn the_wrong_key_reads_nothing() {
        let staged = stage(&StagingKey::random(), &data(CHUNK + 1));
        let err = read_back(&StagingKey::random(), &staged).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
