//! The inner MIME message: protected headers, sender, body, form fields and
//! the attachment manifest, built for sealing and parsed back on opening.

use std::sync::OnceLock;

use sequoia_openpgp::crypto::SessionKey;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{Draft, Field, InnerMessage, ManifestEntry, Place, ProtectedHeaders, SenderInfo};
use crate::error::{CryptoError, Result};

const MANIFEST_TYPE: &str = "application/vnd.renkei.manifest+json";
const FIELDS_TYPE: &str = "application/vnd.renkei.fields+json";
const PLACE_TYPE: &str = "application/vnd.renkei.place+json";
const H_KIND: &str = "X-Renkei-Kind";
const H_PATIENT_ID: &str = "X-Renkei-Patient-Id";
const H_PATIENT_NAME: &str = "X-Renkei-Patient-Name";
const H_SENDER_ACCOUNT: &str = "X-Renkei-Sender-Account";
const H_SENDER_NAME: &str = "X-Renkei-Sender-Name";
const H_SENDER_FACILITY: &str = "X-Renkei-Sender-Facility";

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct ManifestJson {
    v: u32,
    attachments: Vec<EntryJson>,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct EntryJson {
    name: String,
    media_type: String,
    size: u64,
    sha256: String,
    cipher: String,
    session_key: String,
}

const CIPHER: &str = "AES256-OCB";

pub(super) fn build_mime(draft: &Draft, manifest: &[ManifestEntry]) -> Result<Zeroizing<Vec<u8>>> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::text::Text;

    let m = ManifestJson {
        v: 1,
        attachments: manifest
            .iter()
            .map(|e| EntryJson {
                name: e.name.clone(),
                media_type: e.media_type.clone(),
                size: e.size,
                sha256: hex::encode(e.sha256),
                cipher: CIPHER.into(),
                session_key: hex::encode(&e.session_key[..]),
            })
            .collect(),
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&m).map_err(|e| CryptoError::InvalidInput(e.to_string()))?,
    );
    let h = &draft.headers;
    let s = &draft.sender;
    let fields_json = Zeroizing::new(
        serde_json::to_vec(&draft.fields).map_err(|e| CryptoError::InvalidInput(e.to_string()))?,
    );
    let mut builder = MessageBuilder::new()
        .message_id("sealed@renkei.invalid")
        .subject(h.subject.as_str())
        .header(H_KIND, Text::new(h.kind.as_str()))
        .header(H_PATIENT_ID, Text::new(h.patient_id.as_str()))
        .header(H_PATIENT_NAME, Text::new(h.patient_name.as_str()))
        .header(H_SENDER_ACCOUNT, Text::new(s.account_id.as_str()))
        .header(H_SENDER_NAME, Text::new(s.name.as_str()))
        .header(H_SENDER_FACILITY, Text::new(s.facility.as_str()))
        .text_body(draft.body.as_str())
        .attachment(MANIFEST_TYPE, "manifest.json", json.as_slice());
    if !draft.fields.is_empty() {
        builder = builder.attachment(FIELDS_TYPE, "fields.json", fields_json.as_slice());
    }
    let place_json = match &draft.place {
        Some(p) => Zeroizing::new(
            serde_json::to_vec(p).map_err(|e| CryptoError::InvalidInput(e.to_string()))?,
        ),
        None => Zeroizing::new(Vec::new()),
    };
    if draft.place.is_some() {
        builder = builder.attachment(PLACE_TYPE, "place.json", place_json.as_slice());
    }
    // Reserve generously (encodings expand text up to ~3x) so the buffer holding
    // plaintext is not reallocated, which would leave unwiped copies behind.
    let mut out = Zeroizing::new(Vec::with_capacity(
        draft.body.len() * 3 + json.len() * 2 + fields_json.len() * 3 + place_json.len() * 2 + 8192,
    ));
    builder.write_to(&mut *out)?;
    Ok(out)
}

pub(super) fn parse_mime(bytes: &[u8]) -> Result<InnerMessage> {
    use mail_parser::{MessageParser, MimeHeaders};

    let bad = |what: &str| CryptoError::Malformed(format!("inner message: {what}"));
    // Parsers built once: `MessageParser::new` fills a table of header parsers.
    static INNER: OnceLock<MessageParser> = OnceLock::new();
    static PROBE: OnceLock<MessageParser> = OnceLock::new();
    let msg = INNER
        .get_or_init(|| MessageParser::new().default_header_text())
        .parse(bytes)
        .ok_or_else(|| bad("not MIME"))?;
    // Our own headers may carry RFC 2047 encoded words (Japanese names), which the
    // parser leaves encoded for unknown headers: decode them as a Subject would be.
    let text = |name: &str| -> String {
        let raw = msg
            .header(name)
            .and_then(|v| v.as_text())
            .unwrap_or_default();
        if !raw.contains("=?") {
            return raw.to_owned();
        }
        let probe = format!("Subject: {raw}\r\n\r\n");
        PROBE
            .get_or_init(MessageParser::new)
            .parse(probe.as_bytes())
            .and_then(|m| m.subject().map(str::to_owned))
            .unwrap_or_else(|| raw.to_owned())
    };
    let headers = ProtectedHeaders {
        kind: text(H_KIND),
        subject: msg.subject().unwrap_or_default().to_owned(),
        patient_id: text(H_PATIENT_ID),
        patient_name: text(H_PATIENT_NAME),
    };
    let sender = SenderInfo {
        account_id: text(H_SENDER_ACCOUNT),
        name: text(H_SENDER_NAME),
        facility: text(H_SENDER_FACILITY),
    };
    let body = msg.body_text(0).map(|c| c.into_owned()).unwrap_or_default();
    let part_of = |media_type: &str| {
        msg.attachments().find(|p| {
            p.content_type()
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
                        .eq_ignore_ascii_case(media_type)
                })
                .unwrap_or(false)
        })
    };
    let fields: Vec<Field> = match part_of(FIELDS_TYPE) {
        Some(p) => serde_json::from_slice(p.contents()).map_err(|_| bad("fields unreadable"))?,
        None => Vec::new(),
    };
    let place: Option<Place> = match part_of(PLACE_TYPE) {
        Some(p) => Some(serde_json::from_slice(p.contents()).map_err(|_| bad("place unreadable"))?),
        None => None,
    };
    let part = part_of(MANIFEST_TYPE).ok_or_else(|| bad("no manifest"))?;
    let m: ManifestJson =
        serde_json::from_slice(part.contents()).map_err(|_| bad("manifest unreadable"))?;
    if m.v != 1 {
        return Err(bad("unknown manifest version"));
    }
    let mut manifest = Vec::with_capacity(m.attachments.len());
    for e in &m.attachments {
        if e.cipher != CIPHER {
            return Err(bad("unknown attachment cipher"));
        }
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&e.sha256, &mut sha256).map_err(|_| bad("bad attachment digest"))?;
        let key =
            Zeroizing::new(hex::decode(&e.session_key).map_err(|_| bad("bad attachment key"))?);
        if key.len() != 32 {
            return Err(bad("bad attachment key length"));
        }
        manifest.push(ManifestEntry {
            name: e.name.clone(),
            media_type: e.media_type.clone(),
            size: e.size,
            sha256,
            session_key: SessionKey::from(&key[..]),
        });
    }
    Ok(InnerMessage {
        headers,
        sender,
        body,
        fields,
        place,
        manifest,
    })
}
