#![allow(dead_code)]
//! Shared helpers for the integration tests.

use std::io::{self, Read};

use renkei_crypto::*;

pub fn key(name: &str) -> SecretKey {
    SecretKey::generate(&format!("{name} <test>")).expect("generate key")
}

pub fn draft(body: &str) -> Draft {
    Draft {
        headers: ProtectedHeaders {
            kind: "referral".into(),
            subject: "紹介状: 心エコー所見".into(),
            patient_id: "P-000123".into(),
            patient_name: "香川 太郎 (カガワ タロウ)".into(),
        },
        sender: SenderInfo {
            account_id: "42".into(),
            name: "Dr A".into(),
            facility: "F001".into(),
        },
        body: body.into(),
        fields: Vec::new(),
        place: None,
    }
}

/// A signer look-up over a fixed set of certificates.
pub fn lookup(certs: Vec<Certificate>) -> impl Fn(&Fingerprint) -> Option<Certificate> {
    move |fp| {
        certs
            .iter()
            .find(|c| c.fingerprint() == fp.to_hex())
            .cloned()
    }
}

/// Cheap deterministic plaintext: a fixed pseudo-random 1 MiB block, with the
/// block number stamped into each copy so blocks differ.
pub struct Pattern {
    block: Vec<u8>,
    remaining: u64,
    pos: u64,
}

impl Pattern {
    pub fn new(len: u64) -> Self {
        let mut block = vec![0u8; 1 << 20];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        Pattern {
            block,
            remaining: len,
            pos: 0,
        }
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let bl = self.block.len() as u64;
        let off = (self.pos % bl) as usize;
        let n = buf
            .len()
            .min(self.block.len() - off)
            .min(self.remaining as usize);
        buf[..n].copy_from_slice(&self.block[off..off + n]);
        // Stamp the block number over the first 8 bytes of each block.
        if off < 8 {
            let stamp = (self.pos / bl).to_le_bytes();
            let end = n.min(8 - off);
            buf[..end].copy_from_slice(&stamp[off..off + end]);
        }
        self.pos += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}
