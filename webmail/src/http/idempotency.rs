//! `Idempotency-Key` on the submitting API calls (`POST /envelopes`,
//! `/threads`, `/threads/{id}/steps`) and the pages' per-render form tokens.
//!
//! A key is 8 to 128 characters of letters, digits, `-`, `_`, `.` and `:`,
//! kept per account for 24 hours (as SHA-256, with the SHA-256 of the request
//! and the answer, which holds IDs only). The answer is stored in the
//! transaction that stores the envelope, so a retry after a lost answer —
//! even across a crash — gets the first answer (same status and body, with
//! `Idempotent-Replayed: true`) and stores nothing. The same key with another
//! request answers 422 `idempotency_key_reused`; while the first request
//! with a key is still running, the API answers 409 `idempotency_key_in_use`
//! (retry once it has answered), and the pages wait for it and lead to the
//! same item.
//!
//! The request is hashed as the operation, the spec part and each file part
//! in order, each part as SHA-256 of its bytes: a sent request's files are
//! hashed as sealing reads them, a retry's as it is read off the wire.

use std::sync::{Arc, Mutex};

use axum::extract::Multipart;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailbox::auth::CurrentSession;
use mailbox::postroom::{
    Idempotency, KeyHold, OutgoingAttachment, Postroom, RememberedAnswer, Submitted,
};
use sha2::{Digest, Sha256};

use crate::http::error::{ApiError, refusal};
use crate::http::upload::bad_upload;

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";
/// Set on an answer given again.
pub(crate) const REPLAYED: &str = "idempotent-replayed";

/// A key refused before anything is stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum KeyRefusal {
    #[error(
        "the Idempotency-Key must be 8 to 128 characters of letters, digits, '-', '_', '.' or ':'"
    )]
    Invalid,
    #[error("a request with this Idempotency-Key is still running; retry once it has answered")]
    InUse,
    #[error("this Idempotency-Key was used with a different request")]
    Reused,
}

impl IntoResponse for KeyRefusal {
    fn into_response(self) -> Response {
        let (status, code, ja) = match self {
            Self::Invalid => (
                StatusCode::BAD_REQUEST,
                "idempotency_key_invalid",
                "Idempotency-Key は英数字と - _ . : の8〜128文字で指定してください。",
            ),
            Self::InUse => (
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "同じ Idempotency-Key の送信を処理中です。応答の後に再送してください。",
            ),
            Self::Reused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "この Idempotency-Key は別の内容の送信に使われています。",
            ),
        };
        refusal(status, code, self.to_string(), ja.into())
    }
}

/// SHA-256 of a key (or a page's form token), once its syntax is checked.
pub(crate) fn key_hash(key: &str) -> Result<[u8; 32], KeyRefusal> {
    let fits = (8..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !fits {
        return Err(KeyRefusal::Invalid);
    }
    Ok(Sha256::digest(key.as_bytes()).into())
}

/// The request's key, checked; `None` without the header.
pub(crate) fn header_key(headers: &HeaderMap) -> Result<Option<[u8; 32]>, KeyRefusal> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(KeyRefusal::Invalid);
    }
    let key = value.to_str().map_err(|_| KeyRefusal::Invalid)?;
    key_hash(key).map(Some)
}

/// The SHA-256 of a request, its file parts hashed as they are read.
#[derive(Clone)]
pub(crate) struct RequestHash {
    head: [u8; 32],
    parts: Vec<Arc<Mutex<Sha256>>>,
}

impl RequestHash {
    /// Starts with the operation (method, path with its IDs) and the spec part.
    pub(crate) fn new(operation: &str, spec: &[u8]) -> Self {
        let mut head = Sha256::new();
        head.update(operation.as_bytes());
        head.update([0]);
        head.update(Sha256::digest(spec));
        Self {
            head: head.finalize().into(),
            parts: Vec::new(),
        }
    }

    /// The attachments, each hashed as sealing reads it.
    pub(crate) fn hashing(
        &mut self,
        attachments: Vec<OutgoingAttachment>,
    ) -> Vec<OutgoingAttachment> {
        attachments
            .into_iter()
            .map(|a| {
                let part = Arc::new(Mutex::new(Sha256::new()));
                self.parts.push(part.clone());
                OutgoingAttachment {
                    source: Box::new(HashingReader {
                        inner: a.source,
                        part,
                    }),
                    ..a
                }
            })
            .collect()
    }

    /// Reads the rest of a retried upload, each part hashed and dropped.
    pub(crate) async fn drain(mut self, mut multipart: Multipart) -> Result<Self, ApiError> {
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| bad_upload(format!("multipart: {e}")))?
        {
            let mut part = Sha256::new();
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| bad_upload(format!("upload interrupted: {e}")))?
            {
                part.update(&chunk);
            }
            self.parts.push(Arc::new(Mutex::new(part)));
        }
        Ok(self)
    }

    pub(crate) fn finish(&self) -> [u8; 32] {
        let mut all = Sha256::new();
        all.update(self.head);
        for part in &self.parts {
            let digest = match part.lock() {
                Ok(p) => p.clone().finalize(),
                Err(poisoned) => poisoned.into_inner().clone().finalize(),
            };
            all.update(digest);
        }
        all.finalize().into()
    }
}

struct HashingReader {
    inner: Box<dyn std::io::Read + Send>,
    part: Arc<Mutex<Sha256>>,
}

impl std::io::Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut part) = self.part.lock() {
            part.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// A keyed submission under way: the key held for this request.
pub(crate) struct Keyed {
    pub(crate) key_hash: [u8; 32],
    pub(crate) hash: RequestHash,
    _hold: KeyHold,
}

/// What the start of a keyed API submission decided.
pub(crate) enum Begun {
    /// A retry: answered from what is remembered (the upload read and hashed).
    Answered(Response),
    /// Go on sending, with the key held if there is one.
    Send(Multipart, Option<Keyed>),
}

/// Before an API submission: checks the key, refuses it while another request
/// with it runs, and answers a retry from what is remembered.
pub(crate) async fn begin(
    postroom: &Postroom,
    session: &CurrentSession,
    headers: &HeaderMap,
    operation: &str,
    spec: &[u8],
    multipart: Multipart,
) -> Result<Begun, ApiError> {
    let key_hash = match header_key(headers) {
        Ok(Some(k)) => k,
        Ok(None) => return Ok(Begun::Send(multipart, None)),
        Err(refusal) => return Ok(Begun::Answered(refusal.into_response())),
    };
    let hold = postroom.hold_idempotency_key(session, key_hash);
    if !hold.held() {
        return Ok(Begun::Answered(KeyRefusal::InUse.into_response()));
    }
    let hash = RequestHash::new(operation, spec);
    if let Some(remembered) = postroom.remembered_answer(session, &key_hash).await? {
        let hash = hash.drain(multipart).await?;
        return Ok(Begun::Answered(replay(&remembered, hash.finish())));
    }
    Ok(Begun::Send(
        multipart,
        Some(Keyed {
            key_hash,
            hash,
            _hold: hold,
        }),
    ))
}

/// The remembered answer, if `request_hash` is the remembered request's.
pub(crate) fn replay(remembered: &RememberedAnswer, request_hash: [u8; 32]) -> Response {
    if remembered.request_hash != request_hash {
        return KeyRefusal::Reused.into_response();
    }
    let status = StatusCode::from_u16(remembered.status).unwrap_or(StatusCode::OK);
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static(REPLAYED),
                HeaderValue::from_static("true"),
            ),
        ],
        remembered.body.clone(),
    )
        .into_response()
}

/// The key to store with the envelope: its answer (201 and `body` as JSON)
/// built once the IDs are known.
pub(crate) fn idempotency(
    keyed: &mut Keyed,
    body: impl FnOnce(&Submitted) -> Vec<u8> + Send + 'static,
) -> Idempotency {
    let hash = keyed.hash.clone();
    Idempotency {
        key_hash: keyed.key_hash,
        answer: Box::new(move |made| RememberedAnswer {
            request_hash: hash.finish(),
            status: StatusCode::CREATED.as_u16(),
            body: body(made),
        }),
    }
}

/// After a keyed submission failed as a conflict: if another request with the
/// key (on another node) committed meanwhile, its answer.
pub(crate) async fn answer_after_conflict(
    postroom: &Postroom,
    session: &CurrentSession,
    keyed: &Keyed,
) -> Option<Response> {
    let remembered = postroom
        .remembered_answer(session, &keyed.key_hash)
        .await
        .ok()??;
    Some(replay(&remembered, keyed.hash.finish()))
}

/// The header as the OpenAPI document states it on the three submitting
/// operations (never read through this type).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct IdempotencyKeyHeader {
    /// Optional. 8 to 128 characters of letters, digits, `-`, `_`, `.` and
    /// `:` (a UUID fits), chosen by the client per submission and kept per
    /// account for 24 hours. A retry with the same key gets the first answer
    /// (same status and body, header `Idempotent-Replayed: true`) and stores
    /// nothing; the same key with another request answers 422
    /// `idempotency_key_reused`; while the first request with the key is still
    /// running, 409 `idempotency_key_in_use` (retry once it has answered); a
    /// malformed key 400 `idempotency_key_invalid`.
    #[param(rename = "Idempotency-Key", pattern = "^[A-Za-z0-9._:-]{8,128}$")]
    idempotency_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_8_to_128_safe_characters_are_taken() {
        for good in [
            "8b0c6c1e-5f7a-4d0e-9c43-2f1d0a7b9e11",
            "abcdefgh",
            "a.b_c:d-e",
            &"x".repeat(128),
        ] {
            assert!(key_hash(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "short",
            "has a space",
            "ＵＴＦ８のキー12345",
            &"x".repeat(129),
            "a/b/c/d/e",
        ] {
            assert_eq!(key_hash(bad), Err(KeyRefusal::Invalid), "{bad}");
        }
        assert_ne!(key_hash("abcdefgh"), key_hash("abcdefgi"));
    }

    #[test]
    fn the_three_submitting_operations_document_the_header() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(crate::api::v1::openapi::ApiDoc::openapi()).unwrap();
        for path in ["/envelopes", "/threads", "/threads/{id}/steps"] {
            let params = doc["paths"][path]["post"]["parameters"].as_array().unwrap();
            let header = params
                .iter()
                .find(|p| p["name"] == "Idempotency-Key")
                .unwrap_or_else(|| panic!("{path}: {params:?}"));
            assert_eq!(header["in"], "header");
            assert_ne!(header["required"], true);
        }
        // Nowhere else.
        let everywhere = doc.to_string().matches("\"Idempotency-Key\"").count();
        assert_eq!(everywhere, 3);
    }
}
