//! A sealed archive (an item, a study or a series) as a stored ZIP streamed
//! on the fly, resumable with `Range`.
//!
//! Every byte offset comes from the manifest sizes ([`zipstream::Layout`]),
//! so `Content-Length` is exact and the same request yields the same bytes.
//! Each entry's CRC-32 travels in a data descriptor after its data, because
//! it is only known once the plaintext has been decrypted: a response
//! decrypts just the entries its range touches (a range starting inside an
//! entry decrypts that entry from its start and skips), and the central
//! directory at the end needs every CRC — those this response did not
//! stream come from a per-process cache keyed by the plaintext's signed
//! SHA-256 (filled only after the manifest check passed), else the entry is
//! decrypted once more just to compute it. CRCs are not written anywhere:
//! after a restart a resume that reaches the tail decrypts again.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::ops::Range;
use std::sync::{Mutex, OnceLock};

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use mailbox::Error;
use mailbox::postroom::intake::IntakeRecord;
use mailbox::postroom::{ArchiveScope, SealedArchive};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::http::download::content_disposition;
use crate::http::ranges::{Download, client_gone, respond, send_file_range, strong_etag};
use crate::http::zipstream::{Entry, Layout, Part, safe_file_name};

/// The answer to a request for `archive`: the whole ZIP or the range asked for.
pub fn respond_with(
    headers: &HeaderMap,
    id: &str,
    scope: ArchiveScope,
    archive: SealedArchive,
) -> Response {
    let layout = Layout::new(entries(&archive), jst(archive.created_at));
    let download = Download {
        etag: etag(id, scope, &archive, &layout),
        len: layout.total_len(),
        content_type: HeaderValue::from_static("application/zip"),
        content_disposition: HeaderValue::from_str(&content_disposition(&zip_name(id, scope)))
            .unwrap_or(HeaderValue::from_static("attachment")),
        log_as: format!("archive of {id}"),
    };
    respond(headers, download, move |range, tx| {
        produce(&archive, &layout, &range, tx)
    })
}

/// A strong validator: the archive's bytes follow from the item, the scope,
/// the entry names and the signed sizes and SHA-256 of the files (and the
/// layout's version, should the layout ever change).
fn etag(id: &str, scope: ArchiveScope, archive: &SealedArchive, layout: &Layout) -> String {
    let mut h = Sha256::new();
    h.update(b"renkei-zip-1\0");
    h.update(id.as_bytes());
    h.update(format!("\0{scope:?}\0{}\0", archive.created_at).as_bytes());
    for (f, e) in archive.files.iter().zip(layout.entries()) {
        h.update(e.name.as_bytes());
        h.update(b"\0");
        h.update(f.info.size.to_le_bytes());
        h.update(f.info.sha256.as_bytes());
    }
    strong_etag(h)
}

/// The download's own name: the item ID and the positions, nothing from
/// inside the item.
fn zip_name(id: &str, scope: ArchiveScope) -> String {
    match scope {
        ArchiveScope::Item => format!("renkei-{id}.zip"),
        ArchiveScope::Study(s) => format!("renkei-{id}-study{}.zip", s + 1),
        ArchiveScope::Series { study, series } => {
            format!("renkei-{id}-study{}-series{}.zip", study + 1, series + 1)
        }
    }
}

/// The archive's one timestamp: when the item was sent, in Japan time (ZIP
/// times are local and carry no zone).
fn jst(created_at: i64) -> chrono::NaiveDateTime {
    mailbox::clock::jst_from_secs(created_at).unwrap_or_default()
}

/// Paths inside the archive: `study1_DATE_DESCRIPTION/series3_CT_DESCRIPTION/NAME`
/// for DICOM files, the bare name for the rest; every part made safe, and a
/// repeated path gets ` (2)`, ` (3)` … before its extension.
fn entries(archive: &SealedArchive) -> Vec<Entry> {
    let mut taken = HashSet::new();
    archive
        .files
        .iter()
        .map(|f| {
            let name = safe_file_name(&f.info.name);
            let folder = f
                .place
                .and_then(|(s, n)| folder(archive.record.as_ref()?, s, n));
            let path = match folder {
                Some(folder) => format!("{folder}/{name}"),
                None => name,
            };
            Entry {
                name: unique(&mut taken, path),
                size: f.info.size,
            }
        })
        .collect()
}

fn folder(record: &IntakeRecord, s: usize, n: usize) -> Option<String> {
    let study = record.studies.get(s)?;
    let series = study.series.get(n)?;
    let part = |words: &[&str]| {
        let joined = words
            .iter()
            .map(|w| w.trim())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        // A description may hold `/` ("A/P"); it is a word, not a folder.
        safe_file_name(&joined.replace(['/', '\\'], "_"))
    };
    let study_no = format!("study{}", s + 1);
    let series_no = format!(
        "series{}",
        series.series_number.map_or(n as i64 + 1, |number| number)
    );
    Some(format!(
        "{}/{}",
        part(&[
            &study_no,
            study.study_date.as_deref().unwrap_or(""),
            &study.description
        ]),
        part(&[&series_no, &series.modality, &series.description]),
    ))
}

fn unique(taken: &mut HashSet<String>, path: String) -> String {
    if taken.insert(path.clone()) {
        return path;
    }
    let (stem, ext) = match path.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !stem.ends_with('/') && !ext.contains('/') => {
            (stem.to_string(), format!(".{ext}"))
        }
        _ => (path.clone(), String::new()),
    };
    (2..)
        .map(|k| format!("{stem} ({k}){ext}"))
        .find(|candidate| taken.insert(candidate.clone()))
        .unwrap_or(path)
}

/// Blocking: sends the bytes of `range` of the archive into `tx`.
fn produce(
    archive: &SealedArchive,
    layout: &Layout,
    range: &Range<u64>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
) -> Result<(), Error> {
    let mut crcs: Vec<Option<u32>> = archive
        .files
        .iter()
        .map(|f| cached_crc(&f.info.sha256))
        .collect();
    let send = |bytes: &[u8], part: &Range<u64>| -> Result<(), Error> {
        let slice = bytes
            .get(part.start as usize..part.end as usize)
            .ok_or_else(|| Error::Internal("archive part out of its layout".into()))?;
        tx.blocking_send(Ok(Bytes::copy_from_slice(slice)))
            .map_err(|_| client_gone())
    };
    for (part, sub) in layout.parts_in(range) {
        match part {
            Part::Header(i) => send(&layout.local_header(i), &sub)?,
            Part::Data(i) => {
                let size = layout.entries()[i].size;
                let mut crc = crc32fast::Hasher::new();
                send_file_range(size, &sub, tx, |out| {
                    archive.stream(
                        i,
                        CrcWriter {
                            crc: &mut crc,
                            inner: out,
                        },
                    )
                })?;
                if sub.end == size {
                    // The whole plaintext went by and passed the manifest check.
                    let crc = crc.finalize();
                    remember_crc(&archive.files[i].info.sha256, crc);
                    crcs[i] = Some(crc);
                }
            }
            Part::Descriptor(i) => {
                let crc = crc_of(archive, &mut crcs, i)?;
                send(&layout.descriptor(i, crc), &sub)?;
            }
            Part::Tail => {
                let mut all = Vec::with_capacity(crcs.len());
                for i in 0..crcs.len() {
                    all.push(crc_of(archive, &mut crcs, i)?);
                }
                send(&layout.tail(&all), &sub)?;
            }
        }
    }
    Ok(())
}

/// The CRC-32 of file `i`: known, cached, or decrypted again to compute it.
fn crc_of(archive: &SealedArchive, crcs: &mut [Option<u32>], i: usize) -> Result<u32, Error> {
    if let Some(crc) = crcs[i] {
        return Ok(crc);
    }
    let mut crc = crc32fast::Hasher::new();
    archive.stream(
        i,
        CrcWriter {
            crc: &mut crc,
            inner: io::sink(),
        },
    )?;
    let crc = crc.finalize();
    remember_crc(&archive.files[i].info.sha256, crc);
    crcs[i] = Some(crc);
    Ok(crc)
}

/// Takes the CRC-32 of every byte that `inner` accepts.
struct CrcWriter<'a, W> {
    crc: &'a mut crc32fast::Hasher,
    inner: W,
}

impl<W: Write> Write for CrcWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// CRC-32 by the plaintext's signed SHA-256: content-addressed, so an entry
/// can only be found by someone holding a file with that digest, and a CRC
/// goes in only after its file passed the manifest check. Bounded: when
/// full it starts over (a miss costs one more decryption, never a wrong byte).
const CRC_CACHE_ENTRIES: usize = 1 << 17;

fn crc_cache() -> &'static Mutex<HashMap<[u8; 32], u32>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], u32>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn digest_key(sha256_hex: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(sha256_hex, &mut key).ok()?;
    Some(key)
}

fn cached_crc(sha256_hex: &str) -> Option<u32> {
    let key = digest_key(sha256_hex)?;
    crc_cache().lock().ok()?.get(&key).copied()
}

fn remember_crc(sha256_hex: &str, crc: u32) {
    let (Some(key), Ok(mut cache)) = (digest_key(sha256_hex), crc_cache().lock()) else {
        return;
    };
    if cache.len() >= CRC_CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(key, crc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_paths_get_a_number_before_the_extension() {
        let mut taken = HashSet::new();
        assert_eq!(unique(&mut taken, "a/IM0001.dcm".into()), "a/IM0001.dcm");
        assert_eq!(
            unique(&mut taken, "a/IM0001.dcm".into()),
            "a/IM0001 (2).dcm"
        );
        assert_eq!(
            unique(&mut taken, "a/IM0001.dcm".into()),
            "a/IM0001 (3).dcm"
        );
        assert_eq!(unique(&mut taken, "a.b/IM".into()), "a.b/IM");
        assert_eq!(unique(&mut taken, "a.b/IM".into()), "a.b/IM (2)");
    }

    #[test]
    fn an_entry_range_passes_its_window_and_sums_every_byte_it_passed() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut crc = crc32fast::Hasher::new();
        let plain = b"0123456789";
        let sent = send_file_range(10, &(3..7), &tx, |out| {
            let mut w = CrcWriter {
                crc: &mut crc,
                inner: out,
            };
            for piece in plain.chunks(3) {
                w.write_all(piece)
                    .map_err(|_| Error::Internal("sink stopped".into()))?;
            }
            Ok(10)
        });
        assert!(sent.is_ok());
        let mut got = Vec::new();
        while let Ok(Ok(b)) = rx.try_recv() {
            got.extend_from_slice(&b);
        }
        assert_eq!(got, b"3456");
        // The range is filled inside the third piece: the fourth is refused.
        assert_eq!(crc.finalize(), crc32fast::hash(b"012345678"));
    }
}
