//! How a rendered message is laid out around its attachments, so that a
//! summary, a whole render and a streamed FETCH are the same bytes.
//!
//! The message is built once with every attachment body left empty (the
//! *skeleton*); each attachment is always written base64 in lines of 76
//! characters (whatever its declared type: a `text/*` part written
//! quoted-printable would change length with its content), so its encoded
//! length follows from its signed clear size alone. Filling the gaps gives the
//! whole message; streaming writes the skeleton's pieces and each attachment
//! encoded chunk by chunk as it is decrypted.
//!
//! The declared media type (from the signed manifest) is parsed with
//! mail-parser and written back with mail-builder: its parameters survive
//! (charset, a non-ASCII name, format=flowed, …); a `multipart/*` or
//! `message/*` type, which would turn the content into a MIME structure of its
//! own, and anything unreadable are served as `application/octet-stream`.

use std::io::Write;
use std::ops::Range;

use mail_builder::headers::content_type::ContentType;
use mail_parser::{MessageParser, MimeHeaders};

/// Clear bytes per base64 line (76 characters).
pub const LINE_BYTES: usize = 57;

/// Stands for an attachment body while the skeleton is built; NUL never
/// appears unencoded anywhere else in a message mail-builder writes.
pub(super) const GAP: &[u8] = b"\0renkei-attachment-gap\0";

/// The length of `n` bytes as an attachment is written: base64 in lines of
/// 76 characters, each ended by CRLF.
pub fn base64_mime_len(n: u64) -> u64 {
    let chars = n.div_ceil(3) * 4;
    chars + 2 * chars.div_ceil(76)
}

/// Lines of `n` bytes written base64 (a `text/*` part's line count).
pub fn base64_mime_lines(n: u64) -> u64 {
    (n.div_ceil(3) * 4).div_ceil(76)
}

/// Base64 at 76 characters a line, exactly as [`base64_mime_len`] counts.
pub fn encode(clear: &[u8], out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = mail_builder::encoders::base64::base64_encode_mime(clear, out, false);
}

/// The Content-Type an attachment is served with (see the module doc).
pub fn attachment_type(declared: &str) -> ContentType<'static> {
    let octet = || ContentType::new("application/octet-stream");
    let clean: String = declared
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let header = format!("Content-Type: {clean}\r\n\r\n");
    let Some(msg) = MessageParser::default().parse(header.as_bytes()) else {
        return octet();
    };
    let Some(ct) = msg.parts.first().and_then(|p| p.content_type()) else {
        return octet();
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let ctype = ct.ctype().to_ascii_lowercase();
    let Some(subtype) = ct.subtype().map(str::to_ascii_lowercase) else {
        return octet();
    };
    if !token(&ctype) || !token(&subtype) || ctype == "multipart" || ctype == "message" {
        return octet();
    }
    let mut out = ContentType::new(format!("{ctype}/{subtype}"));
    for a in ct.attributes().unwrap_or_default() {
        let name = a.name.to_ascii_lowercase();
        if token(&name) && name != "boundary" {
            out = out.attribute(name, a.value.to_string());
        }
    }
    out
}

/// A message with its attachment bodies left out.
#[derive(Debug, Clone)]
pub struct Skeleton {
    pub bytes: Vec<u8>,
    /// Per attachment, in order: where its body goes in `bytes`, and its
    /// clear size.
    pub gaps: Vec<(usize, u64)>,
}

/// One piece of a message as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes of the skeleton.
    Skeleton(Range<usize>),
    /// The `skip..skip+take` bytes of attachment `gap`'s base64 text.
    Attachment { gap: usize, skip: u64, take: u64 },
}

impl Skeleton {
    /// Takes the gap markers out of a message built with them.
    pub fn from_marked(marked: Vec<u8>, sizes: &[u64]) -> std::io::Result<Self> {
        let mut bytes = Vec::with_capacity(marked.len());
        let mut gaps = Vec::with_capacity(sizes.len());
        let mut rest = marked.as_slice();
        for size in sizes {
            let at = rest
                .windows(GAP.len())
                .position(|w| w == GAP)
                .ok_or_else(|| std::io::Error::other("attachment gap missing"))?;
            bytes.extend_from_slice(&rest[..at]);
            gaps.push((bytes.len(), *size));
            rest = &rest[at + GAP.len()..];
        }
        if rest.windows(GAP.len()).any(|w| w == GAP) {
            return Err(std::io::Error::other("unexpected attachment gap"));
        }
        bytes.extend_from_slice(rest);
        Ok(Self { bytes, gaps })
    }

    /// The length of the whole message.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64 + self.gaps.iter().map(|g| base64_mime_len(g.1)).sum::<u64>()
    }

    /// Where skeleton offset `at` lands in the whole message; a gap at `at`
    /// counts as before it when `after_gap`.
    pub fn place(&self, at: usize, after_gap: bool) -> u64 {
        let grown: u64 = self
            .gaps
            .iter()
            .filter(|(g, _)| *g < at || (after_gap && *g == at))
            .map(|(_, n)| base64_mime_len(*n))
            .sum();
        at as u64 + grown
    }

    /// The pieces making up bytes `range` of the whole message.
    pub fn pieces(&self, range: Range<u64>) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut at = 0u64; // position in the whole message
        let mut from = 0usize; // position in the skeleton
        let push_skeleton = |out: &mut Vec<Piece>, s: usize, e: usize, at: u64| {
            let lo = range.start.max(at);
            let hi = range.end.min(at + (e - s) as u64);
            if lo < hi {
                let a = s + usize::try_from(lo - at).unwrap_or(0);
                let b = s + usize::try_from(hi - at).unwrap_or(0);
                out.push(Piece::Skeleton(a..b));
            }
        };
        for (gap, (offset, size)) in self.gaps.iter().enumerate() {
            push_skeleton(&mut out, from, *offset, at);
            at += (*offset - from) as u64;
            from = *offset;
            let len = base64_mime_len(*size);
            let lo = range.start.max(at);
            let hi = range.end.min(at + len);
            if lo < hi {
                out.push(Piece::Attachment {
                    gap,
                    skip: lo - at,
                    take: hi - lo,
                });
            }
            at += len;
        }
        push_skeleton(&mut out, from, self.bytes.len(), at);
        out
    }

    /// The whole message, each attachment's clear bytes in its gap.
    pub fn fill(&self, files: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
        if files.len() != self.gaps.len()
            || files
                .iter()
                .zip(&self.gaps)
                .any(|(f, g)| f.len() as u64 != g.1)
        {
            return Err(std::io::Error::other(
                "attachments differ from their signed sizes",
            ));
        }
        let mut out = Vec::with_capacity(usize::try_from(self.size()).unwrap_or(0));
        let mut from = 0;
        for ((offset, _), file) in self.gaps.iter().zip(files) {
            out.extend_from_slice(&self.bytes[from..*offset]);
            encode(file, &mut out);
            from = *offset;
        }
        out.extend_from_slice(&self.bytes[from..]);
        Ok(out)
    }
}

/// Base64 for one attachment as its clear bytes arrive, in whole lines, so
/// the text is exactly what [`encode`] makes of the whole; bytes before
/// `skip` and after `skip + take` of the text are dropped.
pub struct LineEncoder {
    pending: Vec<u8>,
    at: u64,
    skip: u64,
    end: u64,
}

impl LineEncoder {
    pub fn new(skip: u64, take: u64) -> Self {
        Self {
            pending: Vec::with_capacity(LINE_BYTES * 1024),
            at: 0,
            skip,
            end: skip.saturating_add(take),
        }
    }

    /// Encodes what whole lines of `clear` (with what was pending) make,
    /// writing the wanted part of the text into `out`.
    pub fn push(&mut self, clear: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(clear);
        let whole = self.pending.len() / LINE_BYTES * LINE_BYTES;
        if whole > 0 {
            let rest = self.pending.split_off(whole);
            let lines = std::mem::replace(&mut self.pending, rest);
            self.emit(&lines, out);
        }
    }

    /// The last, short line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let last = std::mem::take(&mut self.pending);
        self.emit(&last, out);
    }

    /// Whether every wanted byte of the text has been written.
    pub fn done(&self) -> bool {
        self.at >= self.end
    }

    fn emit(&mut self, clear: &[u8], out: &mut Vec<u8>) {
        let len = base64_mime_len(clear.len() as u64);
        let (lo, hi) = (self.at, self.at + len);
        self.at = hi;
        if hi <= self.skip || lo >= self.end {
            return;
        }
        let mut text = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        encode(clear, &mut text);
        let a = usize::try_from(self.skip.saturating_sub(lo)).unwrap_or(0);
        let b = usize::try_from(self.end.min(hi) - lo).unwrap_or(text.len());
        out.write_all(&text[a..b.min(text.len())]).unwrap_or(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_length_matches_mail_builder() {
        for n in (0..2000u64).chain([8192, 65_537, 1 << 20]) {
            let mut out = Vec::new();
            encode(&vec![0x5a_u8; usize::try_from(n).expect("small")], &mut out);
            assert_eq!(base64_mime_len(n), out.len() as u64, "n = {n}");
            let lines = out.iter().filter(|b| **b == b'\n').count() as u64;
            assert_eq!(base64_mime_lines(n), lines, "n = {n}");
        }
    }

    /// Encoding as the bytes arrive, in any chunks, and cutting any window
    /// out of the text, gives what encoding the whole gives.
    #[test]
    fn line_encoder_matches_the_whole() {
        let clear: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 256) as u8).collect();
        let mut whole = Vec::new();
        encode(&clear, &mut whole);
        for chunk in [1, 2, 56, 57, 58, 1000, 5000] {
            for (skip, take) in [(0, whole.len()), (1, 10), (77, 300), (6000, 500)] {
                let mut enc = LineEncoder::new(skip as u64, take as u64);
                let mut out = Vec::new();
                for c in clear.chunks(chunk) {
                    enc.push(c, &mut out);
                }
                enc.finish(&mut out);
                let end = (skip + take).min(whole.len());
                assert_eq!(out, whole[skip.min(end)..end], "chunk {chunk} skip {skip}");
            }
        }
    }

    #[test]
    fn pieces_cover_any_range() {
        let sk = Skeleton {
            bytes: b"HEADER--A--B--END".to_vec(),
            gaps: vec![(9, 100), (12, 0), (14, 5)],
        };
        let files = vec![vec![7u8; 100], Vec::new(), vec![9u8; 5]];
        let whole = sk.fill(&files).expect("fills");
        assert_eq!(whole.len() as u64, sk.size());
        let total = sk.size();
        for (lo, hi) in [(0, total), (3, 40), (9, 145), (140, total), (0, 0)] {
            let mut out = Vec::new();
            for p in sk.pieces(lo..hi) {
                match p {
                    Piece::Skeleton(r) => out.extend_from_slice(&sk.bytes[r]),
                    Piece::Attachment { gap, skip, take } => {
                        let mut enc = LineEncoder::new(skip, take);
                        enc.push(&files[gap], &mut out);
                        enc.finish(&mut out);
                    }
                }
            }
            let (a, b) = (
                usize::try_from(lo).expect("small"),
                usize::try_from(hi).expect("small"),
            );
            assert_eq!(out, whole[a..b], "range {lo}..{hi}");
        }
    }

    #[test]
    fn declared_types_are_kept_or_made_safe() {
        let shown = |t: &str| {
            let ct = attachment_type(t);
            let mut s = ct.c_type.to_string();
            for (k, v) in &ct.attributes {
                s.push_str(&format!(";{k}={v}"));
            }
            s
        };
        assert_eq!(shown("application/pdf"), "application/pdf");
        assert_eq!(
            shown("TEXT/Plain; charset=UTF-8"),
            "text/plain;charset=UTF-8"
        );
        assert_eq!(
            shown("text/plain; format=flowed; delsp=yes"),
            "text/plain;format=flowed;delsp=yes"
        );
        assert_eq!(
            shown("image/png; name*=utf-8''%E7%94%BB%E5%83%8F.png"),
            "image/png;name=画像.png"
        );
        assert_eq!(
            shown("multipart/mixed; boundary=x"),
            "application/octet-stream"
        );
        assert_eq!(shown("message/rfc822"), "application/octet-stream");
        assert_eq!(shown("nonsense"), "application/octet-stream");
        assert_eq!(shown("text/plain\r\nX-Evil: 1"), "application/octet-stream");
    }
}
