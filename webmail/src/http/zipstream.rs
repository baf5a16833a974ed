//! A ZIP archive of sealed attachments, streamed on the fly, whose every byte
//! offset is known before the first byte is sent — so `Content-Length` is exact
//! and a broken download resumes with a `Range` request.
//!
//! Entries are stored (DICOM pixel data does not compress well, and storing
//! keeps the layout a pure function of names and sizes), always with ZIP64
//! fields, and with a data descriptor after each entry because its CRC-32 is
//! only known once its plaintext has streamed by. The central directory at
//! the end needs every CRC: an entry this response did not stream is decrypted
//! again only to compute it (cached per process), never sent twice. Which
//! range a request gets is [`crate::http::ranges`]' decision.

use std::ops::Range;

/// One file in the archive.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the archive, `/`-separated, already made safe by the caller.
    pub name: String,
    pub size: u64,
}

/// Where each part of the archive lies.
#[derive(Debug, Clone)]
pub struct Layout {
    entries: Vec<Entry>,
    /// Offset of each entry's local header.
    offsets: Vec<u64>,
    central_offset: u64,
    central_len: u64,
    dos_time: u16,
    dos_date: u16,
}

/// A piece of the archive, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Fixed bytes: a local header, or the whole tail (central directory and
    /// end records) once every CRC is known.
    Header(usize),
    /// The plaintext of entry `i`.
    Data(usize),
    /// The data descriptor of entry `i` (needs its CRC).
    Descriptor(usize),
    /// Central directory and end records (needs every CRC).
    Tail,
}

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;
const VERSION: u16 = 45; // ZIP64
/// Bit 3: sizes and CRC follow in a data descriptor; bit 11: names are UTF-8.
const FLAGS: u16 = (1 << 3) | (1 << 11);
const LOCAL_FIXED: u64 = 30;
const LOCAL_EXTRA: u64 = 4 + 16;
const DESCRIPTOR_LEN: u64 = 4 + 4 + 8 + 8;
const CENTRAL_FIXED: u64 = 46;
const CENTRAL_EXTRA: u64 = 4 + 24;
const END_LEN: u64 = 56 + 20 + 22;

impl Layout {
    /// `modified` is the archive's one timestamp (the item's delivery time) so
    /// the same request always yields the same bytes.
    pub fn new(entries: Vec<Entry>, modified: chrono::NaiveDateTime) -> Self {
        let mut offsets = Vec::with_capacity(entries.len());
        let mut at = 0u64;
        let mut central_len = 0u64;
        for e in &entries {
            offsets.push(at);
            at += LOCAL_FIXED + e.name.len() as u64 + LOCAL_EXTRA + e.size + DESCRIPTOR_LEN;
            central_len += CENTRAL_FIXED + e.name.len() as u64 + CENTRAL_EXTRA;
        }
        use chrono::{Datelike, Timelike};
        let year = modified.year().clamp(1980, 2107) as u16;
        let dos_date =
            ((year - 1980) << 9) | ((modified.month() as u16) << 5) | modified.day() as u16;
        let dos_time = ((modified.hour() as u16) << 11)
            | ((modified.minute() as u16) << 5)
            | (modified.second() as u16 / 2);
        Self {
            entries,
            offsets,
            central_offset: at,
            central_len,
            dos_time,
            dos_date,
        }
    }

    pub fn total_len(&self) -> u64 {
        self.central_offset + self.central_len + END_LEN
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every part with its byte range in the archive.
    pub fn parts(&self) -> Vec<(Part, Range<u64>)> {
        let mut parts = Vec::with_capacity(self.entries.len() * 3 + 1);
        for (i, e) in self.entries.iter().enumerate() {
            let start = self.offsets[i];
            let data = start + LOCAL_FIXED + e.name.len() as u64 + LOCAL_EXTRA;
            parts.push((Part::Header(i), start..data));
            parts.push((Part::Data(i), data..data + e.size));
            parts.push((
                Part::Descriptor(i),
                data + e.size..data + e.size + DESCRIPTOR_LEN,
            ));
        }
        parts.push((Part::Tail, self.central_offset..self.total_len()));
        parts
    }

    /// The parts that overlap `range`, with the sub-range of each to send.
    pub fn parts_in(&self, range: &Range<u64>) -> Vec<(Part, Range<u64>)> {
        self.parts()
            .into_iter()
            .filter_map(|(p, r)| {
                let start = r.start.max(range.start);
                let end = r.end.min(range.end);
                (start < end).then(|| (p, (start - r.start)..(end - r.start)))
            })
            .collect()
    }

    pub fn local_header(&self, i: usize) -> Vec<u8> {
        let e = &self.entries[i];
        let mut b = Vec::with_capacity((LOCAL_FIXED + LOCAL_EXTRA) as usize + e.name.len());
        put32(&mut b, LOCAL_SIG);
        put16(&mut b, VERSION);
        put16(&mut b, FLAGS);
        put16(&mut b, 0); // stored
        put16(&mut b, self.dos_time);
        put16(&mut b, self.dos_date);
        put32(&mut b, 0); // CRC: in the descriptor
        put32(&mut b, u32::MAX); // sizes: in the ZIP64 extra field
        put32(&mut b, u32::MAX);
        put16(&mut b, e.name.len() as u16);
        put16(&mut b, LOCAL_EXTRA as u16);
        b.extend_from_slice(e.name.as_bytes());
        put16(&mut b, 0x0001);
        put16(&mut b, 16);
        put64(&mut b, e.size);
        put64(&mut b, e.size);
        b
    }

    pub fn descriptor(&self, i: usize, crc: u32) -> Vec<u8> {
        let size = self.entries[i].size;
        let mut b = Vec::with_capacity(DESCRIPTOR_LEN as usize);
        put32(&mut b, DESCRIPTOR_SIG);
        put32(&mut b, crc);
        put64(&mut b, size);
        put64(&mut b, size);
        b
    }

    /// Central directory, ZIP64 end record and locator, end record.
    pub fn tail(&self, crcs: &[u32]) -> Vec<u8> {
        let mut b = Vec::with_capacity((self.central_len + END_LEN) as usize);
        for (i, e) in self.entries.iter().enumerate() {
            put32(&mut b, CENTRAL_SIG);
            put16(&mut b, VERSION);
            put16(&mut b, VERSION);
            put16(&mut b, FLAGS);
            put16(&mut b, 0);
            put16(&mut b, self.dos_time);
            put16(&mut b, self.dos_date);
            put32(&mut b, crcs.get(i).copied().unwrap_or(0));
            put32(&mut b, u32::MAX);
            put32(&mut b, u32::MAX);
            put16(&mut b, e.name.len() as u16);
            put16(&mut b, CENTRAL_EXTRA as u16);
            put16(&mut b, 0); // comment
            put16(&mut b, 0); // disk
            put16(&mut b, 0); // internal attributes
            put32(&mut b, 0o100_644 << 16); // a regular file, rw-r--r--
            put32(&mut b, u32::MAX); // offset: in the extra field
            b.extend_from_slice(e.name.as_bytes());
            put16(&mut b, 0x0001);
            put16(&mut b, 24);
            put64(&mut b, e.size);
            put64(&mut b, e.size);
            put64(&mut b, self.offsets[i]);
        }
        let n = self.entries.len() as u64;
        let zip64_end = self.central_offset + self.central_len;
        put32(&mut b, ZIP64_END_SIG);
        put64(&mut b, 44);
        put16(&mut b, VERSION);
        put16(&mut b, VERSION);
        put32(&mut b, 0);
        put32(&mut b, 0);
        put64(&mut b, n);
        put64(&mut b, n);
        put64(&mut b, self.central_len);
        put64(&mut b, self.central_offset);
        put32(&mut b, ZIP64_LOCATOR_SIG);
        put32(&mut b, 0);
        put64(&mut b, zip64_end);
        put32(&mut b, 1);
        put32(&mut b, END_SIG);
        put16(&mut b, 0);
        put16(&mut b, 0);
        put16(&mut b, u16::MAX);
        put16(&mut b, u16::MAX);
        put32(&mut b, u32::MAX);
        put32(&mut b, u32::MAX);
        put16(&mut b, 0);
        b
    }
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// A name safe to put in an archive or a `Content-Disposition`: no directory
/// parts from the sender, no control characters, no leading dots, not empty.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '"' | ':' | '*' | '?' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    let cleaned: String = cleaned.chars().take(180).collect();
    if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(entries: &[(&str, &[u8])]) -> (Layout, Vec<u8>) {
        let l = Layout::new(
            entries
                .iter()
                .map(|(n, d)| Entry {
                    name: (*n).to_string(),
                    size: d.len() as u64,
                })
                .collect(),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
                .and_then(|d| d.and_hms_opt(9, 30, 0))
                .unwrap_or_default(),
        );
        let crcs: Vec<u32> = entries.iter().map(|(_, d)| crc32fast::hash(d)).collect();
        let mut out = Vec::new();
        for (p, _) in l.parts() {
            match p {
                Part::Header(i) => out.extend(l.local_header(i)),
                Part::Data(i) => out.extend_from_slice(entries[i].1),
                Part::Descriptor(i) => out.extend(l.descriptor(i, crcs[i])),
                Part::Tail => out.extend(l.tail(&crcs)),
            }
        }
        (l, out)
    }

    #[test]
    fn the_layout_predicts_every_byte_and_python_reads_the_archive() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let (l, bytes) = layout(&[
            ("study/CT000001.dcm", b"DICM first"),
            ("study/報告書.pdf", &big),
            ("empty.txt", b""),
        ]);
        assert_eq!(bytes.len() as u64, l.total_len());
        let path = std::env::temp_dir().join(format!("renkei-zip-{}.zip", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile, hashlib\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nfor i in z.infolist(): print(i.filename, i.file_size, hashlib.sha256(z.read(i)).hexdigest())",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{listing} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        use sha2::{Digest, Sha256};
        let expected = format!(
            "study/CT000001.dcm 10 {}\nstudy/報告書.pdf 70000 {}\nempty.txt 0 {}\n",
            hex::encode(Sha256::digest(b"DICM first")),
            hex::encode(Sha256::digest(&big)),
            hex::encode(Sha256::digest(b"")),
        );
        assert_eq!(listing, expected);
    }

    #[test]
    fn a_range_maps_to_the_parts_it_overlaps() {
        let (l, bytes) = layout(&[("a", b"0123456789"), ("b", b"abcdef")]);
        let data_b = l
            .parts()
            .into_iter()
            .find(|(p, _)| *p == Part::Data(1))
            .map(|(_, r)| r)
            .unwrap();
        let wanted = (data_b.start + 2)..l.total_len();
        let parts = l.parts_in(&wanted);
        assert_eq!(parts[0], (Part::Data(1), 2..6));
        assert_eq!(parts[1].0, Part::Descriptor(1));
        assert_eq!(parts[2].0, Part::Tail);
        let sent: u64 = parts.iter().map(|(_, r)| r.end - r.start).sum();
        assert_eq!(sent, wanted.end - wanted.start);
        assert_eq!(&bytes[wanted.start as usize..][..4], b"cdef");
    }

    #[test]
    fn file_names_lose_paths_and_header_breakers() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\Users\\a\\報告.pdf"), "報告.pdf");
        assert_eq!(
            safe_file_name("a\r\nSet-Cookie: x.txt"),
            "a__Set-Cookie_ x.txt"
        );
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name("say \"hi\".txt"), "say _hi_.txt");
    }
}
