//! Downloads of opened attachments: resumable byte ranges, a strong ETag from
//! the signed manifest, and a `Content-Disposition` that is always a download.
//!
//! The strong `ETag` is made of the item ID, the attachment's index and its
//! signed SHA-256, so it is stable across restarts. A whole download of up to
//! 64 MiB is checked whole before its answer starts (a damaged one is 422
//! `tampered_attachment`, no byte of it sent); a larger one, or a range, is
//! checked as it streams, and a download whose blob fails its signed hash is
//! aborted: the last piece is held back until the hash is checked. Either way
//! the attachment is then marked damaged, and the next request is refused at
//! once. The file name is the last path segment, control characters removed,
//! as an RFC 6266 `filename*` with an ASCII fallback. The `Content-Type` is the
//! declared type only when it is one of intake's allow-list (whose content
//! intake checked), `application/octet-stream` otherwise, and the answer carries
//! `Content-Security-Policy: sandbox`, so nothing in a file can run as this
//! origin even if opened in place. Every request is audited as a download by
//! the service.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use mailbox::Error;
use mailbox::postroom::attachment_policy::AcceptedKind;
use mailbox::postroom::{AttachmentInfo, PreparedAttachment, VERIFY_WHOLE_BYTES};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::http::ranges::{self, Download, RangeHeaders, Wanted, send_file_range, strong_etag};

/// The download of one opened attachment, whole or the range asked for
/// (see [`crate::http::ranges`]), always as a download, never rendered (ASVS 12.5.2).
/// A whole answer of up to [`VERIFY_WHOLE_BYTES`] is checked first: a
/// damaged file is `Tampered("attachment")` before any answer starts. A
/// range passes on only bytes the AEAD authenticated (see
/// [`send_file_range`]), so it is not held up by a check of the rest.
pub async fn attachment_download(
    headers: &HeaderMap,
    id: &str,
    prepared: PreparedAttachment,
    content_disposition: HeaderValue,
) -> Result<Response, Error> {
    let info = prepared.info.clone();
    let etag = attachment_etag(id, &info);
    let whole = RangeHeaders::of(headers).wanted(&etag, info.size) == Wanted::Whole;
    let prepared = if whole && info.size <= VERIFY_WHOLE_BYTES {
        prepared.checked_whole().await?
    } else {
        prepared
    };
    let download = Download {
        etag,
        len: info.size,
        content_type: HeaderValue::from_static(AcceptedKind::served_media_type(&info.media_type)),
        content_disposition,
        log_as: format!("attachment {} of {id}", info.index),
    };
    let mut response = ranges::respond(headers, download, move |range, tx| {
        send_file_range(info.size, &range, tx, |out| prepared.stream(out))
    });
    if let Ok(v) = HeaderValue::from_str(&info.sha256) {
        response.headers_mut().insert("x-renkei-sha256", v);
    }

    Ok(response)
}

/// The policy of every download's answer (set by [`ranges::respond`]): a
/// sandbox with nothing allowed.
pub const DOWNLOAD_CSP: &str = "sandbox; default-src 'none'";

/// A strong validator of one attachment's bytes: the item, the position and
/// the plaintext's SHA-256 from the signed manifest (never anything read
/// from inside the file), so it survives restarts and a resume after one.
fn attachment_etag(id: &str, info: &AttachmentInfo) -> String {
    let mut h = Sha256::new();
    h.update(b"renkei-file-1\0");
    h.update(id.as_bytes());
    h.update(format!("\0{}\0", info.index).as_bytes());
    h.update(info.sha256.as_bytes());
    strong_etag(h)
}

/// RFC 5987 `attr-char`s: everything else in `filename*` is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` for a download: always an attachment, the name cut
/// to its last path segment and stripped of control characters, an ASCII
/// `filename` fallback and the exact name as RFC 6266 / 5987 `filename*`.
pub fn content_disposition(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim().trim_start_matches('.').trim();
    let clean = if clean.is_empty() {
        "attachment"
    } else {
        clean
    };
    let ascii: String = clean
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(clean, ATTR_CHAR)
    )
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn download_names_cannot_traverse_or_inject_headers() {
        assert_eq!(
            content_disposition("../../etc/passwd"),
            "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
        );
        assert_eq!(
            content_disposition("C:\\Windows\\evil.exe"),
            "attachment; filename=\"evil.exe\"; filename*=UTF-8''evil.exe"
        );
        let injected = content_disposition("a.dcm\r\nSet-Cookie: x=1");
        assert!(
            !injected.contains('\r') && !injected.contains('\n'),
            "{injected}"
        );
        assert!(injected.contains("filename*=UTF-8''a.dcmSet-Cookie%3A%20x%3D1"));
        let quoted = content_disposition("a\"b;c.png");
        assert!(
            quoted.starts_with("attachment; filename=\"a_b_c.png\";"),
            "{quoted}"
        );
        assert_eq!(
            content_disposition("胸部CT.dcm"),
            "attachment; filename=\"__CT.dcm\"; filename*=UTF-8''%E8%83%B8%E9%83%A8CT.dcm"
        );
        assert_eq!(
            content_disposition("..."),
            "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"
        );
    }
}
