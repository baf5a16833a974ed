//! A 1 GiB attachment seals and opens as a stream: the process's peak resident
//! memory stays under 128 MiB. Its own test binary, so no other test shares the
//! process while it measures. `RENKEI_BIG_ATTACHMENT_MIB` changes the size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};

use common::*;
use renkei_crypto::*;
use sha2::{Digest, Sha256};

/// Peak resident set size of this process, from the kernel.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// A sink that only hashes what it is given.
struct HashSink(Sha256, u64);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        self.1 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_gibibyte_attachment_streams_in_bounded_memory() {
    let mib: u64 = std::env::var("RENKEI_BIG_ATTACHMENT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let len = mib << 20;
    let sender = key("sender");
    let reader = key("reader");
    let dir = tempfile::tempdir().unwrap();
    let blob_path = dir.path().join("attachment.pgp");

    // The plaintext's hash, computed independently of the crypto.
    let mut expected = HashSink(Sha256::new(), 0);
    io::copy(&mut Pattern::new(len), &mut expected).unwrap();
    let expected: [u8; 32] = expected.0.finalize().into();

    let sealed = seal(
        &sender,
        &[&reader.cert()],
        &draft("large study"),
        vec![AttachmentInput {
            checked_type: None,
            name: "study.dcm".into(),
            media_type: "application/dicom".into(),
            source: Box::new(Pattern::new(len)),
            sink: Box::new(BufWriter::new(File::create(&blob_path).unwrap())),
        }],
    )
    .unwrap();
    assert_eq!(sealed.attachments[0].plain_size, len);
    let after_seal = peak_rss_mib();
    assert!(std::fs::metadata(&blob_path).unwrap().len() >= len);

    let opened = open(&sealed.envelope, &reader, lookup(vec![sender.cert()])).unwrap();
    assert_eq!(opened.verification, Verification::Valid);
    let entry = &opened.inner.manifest[0];
    assert_eq!(entry.size, len);
    assert_eq!(entry.sha256, expected);
    let mut out = HashSink(Sha256::new(), 0);
    let result = open_attachment(
        BufReader::new(File::open(&blob_path).unwrap()),
        entry,
        &mut out,
    )
    .unwrap();
    assert_eq!(result.size, len);
    assert_eq!(out.1, len);
    assert_eq!(<[u8; 32]>::from(out.0.finalize()), expected);

    let peak = peak_rss_mib();
    eprintln!(
        "sealed and opened {mib} MiB: peak RSS {after_seal} MiB after sealing, {peak} MiB overall"
    );
    assert!(
        peak < 128,
        "peak resident memory {peak} MiB is over 128 MiB"
    );
}
