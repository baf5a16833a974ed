//! Resumable downloads (RFC 9110 §14): one byte range, honoured only while
//! `If-Range` (when sent) names the very bytes being served, answered 206;
//! a range outside the body 416; anything else — no `Range`, several ranges,
//! a header that is not a byte range, a stale `If-Range` — the whole body 200.
//! The single-file and the ZIP downloads share this; they differ only in what
//! produces the bytes.
//!
//! Bytes come from a decryption that always starts at the beginning of a
//! file: [`RangeWriter`] drops what lies before the range and refuses more
//! once the range is filled, which stops the decryption feeding it, so a
//! range near the start of a 1 GiB file does not decrypt the rest.

use std::io::{self, Write};
use std::ops::Range;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mailbox::Error;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use utoipa::{IntoParams, IntoResponses};

/// Where a response body's bytes go, from a blocking producer.
pub type Sink = mpsc::Sender<io::Result<Bytes>>;

/// A single byte range from a `Range` header, resolved against `len`.
/// `None` when the header is not one byte range (several ranges are answered
/// with the whole body, as RFC 9110 allows; a malformed one is ignored);
/// `Err` when it is one but lies outside the body (416).
pub fn byte_range(header: &str, len: u64) -> Option<Result<Range<u64>, ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        len.saturating_sub(n)..len
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len
        } else {
            let last = b.parse::<u64>().ok()?;
            if last < start {
                return None;
            }
            last.saturating_add(1).min(len)
        };
        start..end
    };
    Some(if range.start < range.end && range.start < len {
        Ok(range)
    } else {
        Err(())
    })
}

/// What the request asks for, resolved against the body's length.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

/// A download request's `Range` and `If-Range`; also their description in
/// the OpenAPI document (`params(RangeHeaders)`).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct RangeHeaders {
    /// `bytes=a-b`, `bytes=a-` or `bytes=-n`: one range, answered with 206.
    /// Several ranges, or anything else, get the whole body.
    #[param(rename = "Range", value_type = String, required = false)]
    pub range: Option<String>,
    /// The `ETag` of the download being resumed; any other value gets the whole body.
    #[param(rename = "If-Range", value_type = String, required = false)]
    pub if_range: Option<String>,
}

impl RangeHeaders {
    pub fn of(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap_or_default().to_string())
        };
        Self {
            range: text(header::RANGE),
            if_range: text(header::IF_RANGE),
        }
    }

    /// One `Range`, honoured only while `If-Range` (when sent) is this body's
    /// ETag, compared strongly: a changed body is sent whole, never spliced.
    /// An HTTP-date in `If-Range` never matches (no `Last-Modified` is sent).
    pub fn wanted(&self, etag: &str, len: u64) -> Wanted {
        let Some(range) = &self.range else {
            return Wanted::Whole;
        };
        if self.if_range.as_ref().is_some_and(|v| v != etag) {
            return Wanted::Whole;
        }
        match byte_range(range, len) {
            None => Wanted::Whole,
            Some(Ok(r)) => Wanted::Part(r),
            Some(Err(())) => Wanted::Unsatisfiable,
        }
    }
}

/// The answers a resumable download adds to its 200, for the OpenAPI
/// document (`responses((status = 200, …), RangeAnswers)`).
#[derive(IntoResponses)]
#[allow(dead_code)] // describes the answers; `respond` builds them
pub enum RangeAnswers {
    /// The requested range of the body described under 200, in the same
    /// media type, with `Content-Range` and an exact `Content-Length`;
    /// audited as a download like the whole body.
    #[response(status = 206)]
    Partial,
    /// The range lies outside the body (`Content-Range: bytes */LENGTH`).
    #[response(status = 416)]
    Unsatisfiable,
}

/// A strong validator from what fixes the bytes (hashed, so nothing of the
/// inputs shows): stable across restarts, changed by any change of content.
pub fn strong_etag(h: Sha256) -> String {
    format!("\"{}\"", hex::encode(&h.finalize()[..20]))
}

/// What a download serves, before its bytes are produced.
pub struct Download {
    pub etag: String,
    pub len: u64,
    pub content_type: HeaderValue,
    pub content_disposition: HeaderValue,
    /// Names the download in the log when it aborts (IDs and positions only).
    pub log_as: String,
}

/// Answers a download request: 416 for a range outside the body, else 200
/// or 206 with a body that `produce` writes into a [`Sink`] on a blocking
/// thread, given the byte range to send. A producer's error aborts the body
/// (the client sees a broken transfer, never a complete-looking one).
pub fn respond<F>(headers: &HeaderMap, download: Download, produce: F) -> Response
where
    F: FnOnce(Range<u64>, &Sink) -> Result<(), Error> + Send + 'static,
{
    let len = download.len;
    let (range, partial) = match RangeHeaders::of(headers).wanted(&download.etag, len) {
        Wanted::Whole => (0..len, false),
        Wanted::Part(r) => (r, true),
        Wanted::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            let h = response.headers_mut();
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            return response;
        }
    };
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let sent = range.clone();
    let log_as = download.log_as;
    tokio::task::spawn_blocking(move || {
        if let Err(e) = produce(sent, &tx) {
            tracing::warn!(download = log_as, error = %e, "download aborted");
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    if partial {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, download.content_type);
    h.insert(header::CONTENT_DISPOSITION, download.content_disposition);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::http::download::DOWNLOAD_CSP),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    if let Ok(v) = HeaderValue::from_str(&download.etag) {
        h.insert(header::ETAG, v);
    }
    if partial
        && let Ok(v) =
            HeaderValue::from_str(&format!("bytes {}-{}/{len}", range.start, range.end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    response
}

/// Blocking: sends bytes `range` of one file of `size` bytes into `tx`.
/// `stream` decrypts the file's whole plaintext from its start into the
/// writer it is given, checking it against the signed manifest, and fails
/// when the writer refuses more.
///
/// Integrity: a range that runs to the end of the file saw every byte go
/// through the manifest's size and SHA-256 check, and its last bytes are
/// held back until that check passed. A range that ends earlier stops the
/// decryption before the end, so the SHA-256 is never reached; it relies on
/// the AEAD instead: the attachment is SEIPDv2 (OCB), whose every chunk is
/// authenticated, with its index, under the file's own session key before
/// its plaintext comes out — each byte passed on is the byte sealed at that
/// offset, and a damaged chunk fails the transfer.
pub fn send_file_range(
    size: u64,
    range: &Range<u64>,
    tx: &Sink,
    stream: impl FnOnce(&mut RangeWriter<'_>) -> Result<u64, Error>,
) -> Result<(), Error> {
    let mut out = RangeWriter::new(range, tx);
    let streamed = stream(&mut out);
    if range.end == size || !out.filled() {
        // Through the end of the file (checked), or stopped before the
        // range was filled: an error, or the client left.
        streamed?;
        if !out.filled() {
            return Err(client_gone());
        }
    }
    out.finish()
}

pub fn client_gone() -> Error {
    Error::Internal("the client went away".into())
}

/// Passes on bytes `skip..skip+left` of what is written into it, the last
/// piece held back until [`RangeWriter::finish`]. Once the range is filled
/// it refuses more, which stops the decryption writing into it.
pub struct RangeWriter<'a> {
    skip: u64,
    left: u64,
    held: Option<Bytes>,
    tx: &'a Sink,
}

impl<'a> RangeWriter<'a> {
    pub fn new(range: &Range<u64>, tx: &'a Sink) -> Self {
        Self {
            skip: range.start,
            left: range.end.saturating_sub(range.start),
            held: None,
            tx,
        }
    }

    /// Every byte of the range has been written.
    pub fn filled(&self) -> bool {
        self.left == 0
    }

    /// Sends the held-back piece: call once what was written is known good.
    pub fn finish(mut self) -> Result<(), Error> {
        self.pass(None).map_err(|_| client_gone())
    }

    /// Sends what was held and holds `next` instead.
    fn pass(&mut self, next: Option<Bytes>) -> io::Result<()> {
        if let Some(held) = std::mem::replace(&mut self.held, next) {
            self.tx
                .blocking_send(Ok(held))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        }
        Ok(())
    }
}

impl Write for RangeWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 && self.skip == 0 {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "range filled"));
        }
        let skipped = self.skip.min(buf.len() as u64) as usize;
        self.skip -= skipped as u64;
        let rest = &buf[skipped..];
        let take = self.left.min(rest.len() as u64) as usize;
        if take > 0 {
            self.pass(Some(Bytes::copy_from_slice(&rest[..take])))?;
            self.left -= take as u64;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some(Ok(0..100)));
        assert_eq!(byte_range("bytes=500-", 1000), Some(Ok(500..1000)));
        assert_eq!(byte_range("bytes=-100", 1000), Some(Ok(900..1000)));
        assert_eq!(byte_range("bytes=-5000", 1000), Some(Ok(0..1000)));
        assert_eq!(byte_range("bytes=990-2000", 1000), Some(Ok(990..1000)));
        assert_eq!(byte_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(byte_range("bytes=-0", 1000), Some(Err(())));
        assert_eq!(byte_range("bytes=0-", 0), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
        assert_eq!(byte_range("bytes=x-1", 1000), None);
        assert_eq!(byte_range("bytes=9-3", 1000), None, "last before first");
    }

    #[test]
    fn if_range_must_name_this_body() {
        let requested_range =
            |h: &HeaderMap, etag: &str, len| RangeHeaders::of(h).wanted(etag, len);
        let mut h = HeaderMap::new();
        assert_eq!(requested_range(&h, "\"e\"", 100), Wanted::Whole);
        h.insert(header::RANGE, HeaderValue::from_static("bytes=40-"));
        assert_eq!(requested_range(&h, "\"e\"", 100), Wanted::Part(40..100));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"e\""));
        assert_eq!(requested_range(&h, "\"e\"", 100), Wanted::Part(40..100));
        h.insert(header::IF_RANGE, HeaderValue::from_static("W/\"e\""));
        assert_eq!(requested_range(&h, "\"e\"", 100), Wanted::Whole, "weak");
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"other\""));
        assert_eq!(requested_range(&h, "\"e\"", 100), Wanted::Whole);
        h.remove(header::IF_RANGE);
        h.insert(header::RANGE, HeaderValue::from_static("bytes=100-"));
        assert_eq!(requested_range(&h, "\"e\"", 100), Wanted::Unsatisfiable);
    }

    fn received(rx: &mut mpsc::Receiver<io::Result<Bytes>>) -> Vec<u8> {
        let mut got = Vec::new();
        while let Ok(Ok(b)) = rx.try_recv() {
            got.extend_from_slice(&b);
        }
        got
    }

    #[test]
    fn a_range_writer_passes_its_window_holding_back_the_last_piece() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut w = RangeWriter::new(&(3..7), &tx);
        assert!(w.write_all(b"01234").is_ok());
        assert!(w.write_all(b"56").is_ok());
        assert!(w.filled());
        assert!(w.write_all(b"789").is_err(), "the range is filled");
        assert_eq!(received(&mut rx), b"34", "the last piece is held");
        assert!(w.finish().is_ok());
        assert_eq!(received(&mut rx), b"56");
    }

    /// Stands for a decryption: writes `plain` in pieces of 4, stops when
    /// the writer refuses, and fails its final check when `bad_digest`.
    fn decrypt(plain: &[u8], bad_digest: bool, out: &mut RangeWriter<'_>) -> Result<u64, Error> {
        for piece in plain.chunks(4) {
            out.write_all(piece)
                .map_err(|_| Error::Internal("sink stopped".into()))?;
        }
        if bad_digest {
            return Err(Error::Tampered("attachment"));
        }
        Ok(plain.len() as u64)
    }

    #[test]
    fn a_file_range_is_sent_only_once_it_is_known_good() {
        let plain: Vec<u8> = (0..40).collect();
        for (range, bad_digest, sent) in [
            (0..40, false, Some(0..40)),
            (10..40, false, Some(10..40)),
            (5..13, false, Some(5..13)),
            // Ends before the end: the decryption stopped before the digest.
            (5..13, true, Some(5..13)),
            // Runs to the end: a bad digest keeps the last piece back.
            (0..40, true, None),
            (30..40, true, None),
        ] {
            let (tx, mut rx) = mpsc::channel(64);
            let result = send_file_range(40, &range, &tx, |w| decrypt(&plain, bad_digest, w));
            let got = received(&mut rx);
            match sent {
                Some(r) => {
                    assert!(result.is_ok(), "{range:?}");
                    assert_eq!(got, plain[r.start as usize..r.end as usize], "{range:?}");
                }
                None => {
                    assert!(
                        matches!(result, Err(Error::Tampered(_))),
                        "{range:?}: {result:?}"
                    );
                    assert!(got.len() < (range.end - range.start) as usize);
                }
            }
        }
    }

    #[test]
    fn a_client_that_left_fails_the_range() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let plain = [7u8; 32];
        let result = send_file_range(32, &(0..32), &tx, |w| decrypt(&plain, false, w));
        assert!(result.is_err());
    }
}
