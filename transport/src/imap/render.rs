//! An opened item as an RFC 5322 message (mail-builder), built on demand in
//! memory and never written to disk; and the IMAP ENVELOPE taken from it.
//!
//! The signature status travels in `X-Renkei-Signature`. The MIME boundary is
//! fixed per item, so every render is the same bytes (a message fetched in
//! pieces never mixes two renders, and RFC822.SIZE always matches `BODY[]`).
//! The message is built around its attachments (`layout`): `summarize` gives
//! size, header, ENVELOPE, BODYSTRUCTURE and part ranges without decrypting
//! any attachment, since every attachment is written base64 whatever its
//! declared type and its encoded length follows from the signed clear size; a
//! unit test checks summary against full render for every top-level type, odd
//! parameters and sizes around every line and padding boundary.

use std::io::Write;
use std::sync::{Arc, Mutex};

use imap_next::imap_types::core::NString;
use imap_next::imap_types::envelope::{Address, Envelope};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as MailAddress;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mailbox::postroom::OpenedItem;

use super::layout::{GAP, Skeleton, attachment_type, base64_mime_len, base64_mime_lines};

/// A part's byte ranges in the whole message (`structure::PartRange` of a
/// message that is never whole in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSpan {
    pub path: Vec<u32>,
    pub mime: std::ops::Range<u64>,
    pub body: std::ops::Range<u64>,
}

/// The people and facilities a message names, resolved by the caller.
pub struct Parties {
    pub sender_name: String,
    pub sender_facility: Option<String>,
    pub reader_id: String,
    pub reader_name: String,
}

/// A rendered message: the bytes a client downloads, plus what ENVELOPE needs.
pub struct Rendered {
    pub bytes: Vec<u8>,
    /// Where the header ends (the blank line included).
    pub header_len: usize,
    pub envelope: Envelope<'static>,
    /// BODYSTRUCTURE and part ranges, read back from `bytes`.
    pub structure: Option<super::structure::Structure>,
}

/// What clients ask for in bulk (a message list): everything but the body,
/// computed without decrypting a single attachment and kept per session.
pub struct Summary {
    /// RFC822.SIZE: exactly the length of the rendered message.
    pub size: u32,
    /// The message header, byte for byte as in the rendered message.
    pub header: Vec<u8>,
    pub envelope: Envelope<'static>,
    pub body_structure: Option<imap_next::imap_types::body::BodyStructure<'static>>,
    /// Each part's ranges in the whole message (as `structure` finds them).
    pub parts: Vec<PartSpan>,
    /// The message with its attachments left out: what streaming writes
    /// around them.
    pub skeleton: Skeleton,
    /// The manifest index of each attachment, in the skeleton's order.
    pub attachments: Vec<usize>,
}

/// Collects streamed attachment plaintext (the stream needs a `'static` writer).
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

fn address(id: &str) -> String {
    format!("{}@renkei.invalid", id.to_ascii_lowercase())
}

fn display(name: &str, facility: Option<&str>) -> String {
    match facility {
        Some(f) => format!("{name} ({f})"),
        None => name.to_string(),
    }
}

fn message_id(item: &OpenedItem) -> String {
    match (&item.thread_id, item.step.as_deref()) {
        (Some(t), Some("open")) => format!("{t}@thread.renkei"),
        _ => format!("{}@item.renkei", item.id),
    }
}

/// RFC 2047 for a header word, as a client expects to see it inside ENVELOPE.
fn encoded_word(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let b64 = mail_builder::encoders::base64::base64_encode(text.as_bytes()).unwrap_or_default();
    format!("=?utf-8?B?{}?=", String::from_utf8_lossy(&b64))
}

fn nstring(s: &str) -> NString<'static> {
    NString::try_from(s.to_string()).unwrap_or(NString::NIL)
}

fn imap_address(name: &str, id: &str) -> Address<'static> {
    let addr = address(id);
    let (mailbox, host) = addr.split_once('@').unwrap_or((addr.as_str(), ""));
    Address {
        name: nstring(&encoded_word(name)),
        adl: NString::NIL,
        mailbox: nstring(mailbox),
        host: nstring(host),
    }
}

/// The readable text: the body, the signed form fields, the patient and consent,
/// and the signature status.
fn text_of(item: &OpenedItem) -> String {
    let mut text = String::new();
    if item.signature.is_place_difference() {
        // The domain withheld the content; say why instead.
        text.push_str(&format!(
            "改ざんの疑い：この項目の記録は送信者が署名した場所と一致しません。内容は表示しません。\n\
             Tampering suspected: this item's record does not match the place its sender signed \
             ({}); its content is withheld.\n\n",
            item.signature.as_str()
        ));
    }
    if !item.patient_id.is_empty() || !item.patient_name.is_empty() {
        text.push_str(&format!(
            "患者 / Patient: {} ({})\n",
            item.patient_name, item.patient_id
        ));
    }
    if let Some(c) = &item.consent {
        text.push_str(&format!(
            "同意 / Consent: {} {} ({})\n",
            c.obtained_on,
            c.method.as_str(),
            c.obtained_by
        ));
    }
    for (name, value) in &item.fields {
        text.push_str(&format!("{name}: {value}\n"));
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&item.body);
    text.push_str(&format!(
        "\n\n-- \n署名 / Signature: {}{}\n",
        item.signature.as_str(),
        item.signer_fingerprint
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default()
    ));
    if !item.place_signed {
        text.push_str("旧形式：場所は署名されていません / older format: place not signed\n");
    }
    text
}

/// The message with every attachment's clear bytes (in manifest order) in it.
pub fn render(
    item: &OpenedItem,
    parties: &Parties,
    files: &[Vec<u8>],
) -> std::io::Result<Rendered> {
    let (skeleton, header_len, envelope) = build(item, parties)?;
    let bytes = skeleton.fill(files)?;
    let structure = super::structure::analyse(&bytes);
    Ok(Rendered {
        bytes,
        header_len,
        envelope,
        structure,
    })
}

/// The summary of the message `render` makes, from the item and the clear
/// sizes of its attachments alone: the skeleton (attachments empty) is read
/// back, and each attachment part grows to its base64 length, which depends
/// on nothing but the size (see `layout`).
pub fn summarize(item: &OpenedItem, parties: &Parties) -> std::io::Result<Summary> {
    let (skeleton, header_len, envelope) = build(item, parties)?;
    let size = u32::try_from(skeleton.size()).unwrap_or(u32::MAX);
    let (body_structure, parts) = match super::structure::analyse(&skeleton.bytes) {
        Some(s) => {
            let mut b = s.body_structure;
            grow_attachments(&mut b, &skeleton);
            let parts = s
                .parts
                .into_iter()
                .map(|p| PartSpan {
                    path: p.path,
                    mime: skeleton.place(p.mime.start, false)..skeleton.place(p.mime.end, false),
                    body: skeleton.place(p.body.start, false)..skeleton.place(p.body.end, true),
                })
                .collect();
            (Some(b), parts)
        }
        None => (None, Vec::new()),
    };
    Ok(Summary {
        size,
        header: skeleton.bytes[..header_len].to_vec(),
        envelope,
        body_structure,
        parts,
        skeleton,
        attachments: item.attachments.iter().map(|a| a.index).collect(),
    })
}

/// Sets the attachment parts' sizes (parts 2.. of the multipart `build`
/// makes) to what the real attachments encode to, and a text part's lines.
fn grow_attachments(
    b: &mut imap_next::imap_types::body::BodyStructure<'static>,
    skeleton: &Skeleton,
) {
    use imap_next::imap_types::body::{BodyStructure, SpecificFields};
    let BodyStructure::Multi { bodies, .. } = b else {
        return;
    };
    let mut parts: Vec<BodyStructure<'static>> = bodies.as_ref().to_vec();
    for (part, (_, size)) in parts.iter_mut().skip(1).zip(&skeleton.gaps) {
        if let BodyStructure::Single { body, .. } = part {
            body.basic.size = u32::try_from(base64_mime_len(*size)).unwrap_or(u32::MAX);
            if let SpecificFields::Text {
                number_of_lines, ..
            } = &mut body.specific
            {
                *number_of_lines = u32::try_from(base64_mime_lines(*size)).unwrap_or(u32::MAX);
            }
        }
    }
    if let Ok(v) = imap_next::imap_types::core::Vec1::try_from(parts) {
        *bodies = v;
    }
}

/// The MIME boundary of an item's message: fixed per item, so every render of
/// it is the same bytes (a client may fetch a message in pieces, and its size
/// must match what it downloads). The item ID is random and made after the
/// sender wrote the text, so no text can contain it.
fn boundary(item: &OpenedItem) -> String {
    format!("=_renkei_{}", item.id)
}

fn build(
    item: &OpenedItem,
    parties: &Parties,
) -> std::io::Result<(Skeleton, usize, Envelope<'static>)> {
    let from_name = display(&parties.sender_name, parties.sender_facility.as_deref());
    let date = item.created_at;
    let mut builder = MessageBuilder::new()
        .from(MailAddress::new_address(
            Some(from_name.clone()),
            address(&item.sender_id),
        ))
        .to(MailAddress::new_address(
            Some(parties.reader_name.clone()),
            address(&parties.reader_id),
        ))
        .subject(item.subject.clone())
        .date(date)
        .message_id(message_id(item))
        .header(
            "X-Renkei-Signature",
            Raw::new(format!(
                "{}{}{}",
                item.signature.as_str(),
                item.signer_fingerprint
                    .as_deref()
                    .map(|f| format!("; signer={f}"))
                    .unwrap_or_default(),
                if item.place_signed {
                    ""
                } else {
                    "; place=unsigned"
                }
            )),
        )
        .header("X-Renkei-Kind", Raw::new(item.kind.clone()));
    let in_reply_to = match (&item.thread_id, item.step.as_deref()) {
        (Some(t), Some(step)) if step != "open" => Some(format!("{t}@thread.renkei")),
        _ => None,
    };
    if let Some(parent) = &in_reply_to {
        builder = builder
            .in_reply_to(parent.clone())
            .references(parent.clone());
    }
    let text = MimePart::new("text/plain", text_of(item));
    builder = if item.attachments.is_empty() {
        builder.body(text)
    } else {
        let mut parts = vec![text];
        for a in &item.attachments {
            // Always base64 (`layout`): the body is left as a gap, filled or
            // streamed later.
            parts.push(
                MimePart::new(attachment_type(&a.media_type), GAP.to_vec())
                    .attachment(a.name.clone())
                    .transfer_encoding("base64"),
            );
        }
        builder.body(MimePart::new(
            ContentType::new("multipart/mixed").attribute("boundary", boundary(item)),
            parts,
        ))
    };
    let sizes: Vec<u64> = item.attachments.iter().map(|a| a.size).collect();
    let skeleton = Skeleton::from_marked(builder.write_to_vec()?, &sizes)?;
    let bytes = &skeleton.bytes;
    let header_len = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |p| p + 4);
    let header = String::from_utf8_lossy(&bytes[..header_len]).into_owned();
    let raw_header = |name: &str| -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut value = None::<String>;
        for line in header.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if line.to_ascii_lowercase().starts_with(&prefix) {
                value = Some(line[prefix.len()..].trim().to_string());
            }
        }
        value
    };
    let envelope = Envelope {
        date: raw_header("Date").map_or(NString::NIL, |d| nstring(&d)),
        subject: raw_header("Subject").map_or(NString::NIL, |s| nstring(&s)),
        from: vec![imap_address(&from_name, &item.sender_id)],
        sender: vec![imap_address(&from_name, &item.sender_id)],
        reply_to: vec![imap_address(&from_name, &item.sender_id)],
        to: vec![imap_address(&parties.reader_name, &parties.reader_id)],
        cc: Vec::new(),
        bcc: Vec::new(),
        in_reply_to: in_reply_to.map_or(NString::NIL, |p| nstring(&format!("<{p}>"))),
        message_id: nstring(&format!("<{}>", message_id(item))),
    };
    Ok((skeleton, header_len, envelope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailbox::keys::Principal;
    use mailbox::postroom::{AttachmentInfo, SignatureStatus};

    fn item(files: &[(&str, &str, u64)]) -> OpenedItem {
        OpenedItem {
            id: "01JDTESTITEM".into(),
            kind: "reading_request".into(),
            sender_id: "K7M4QX9T".into(),
            created_at: 1_764_000_000,
            subject: "胸部CT 読影依頼".into(),
            patient_id: "P-1".into(),
            patient_name: "香川 太郎".into(),
            body: "読影をお願いします。\nplain ASCII line\n".repeat(3),
            fields: vec![("modality".into(), "CT".into())],
            thread_id: Some("01JDTHREAD".into()),
            step: Some("open".into()),
            signature: SignatureStatus::Valid,
            place_signed: true,
            signer_fingerprint: Some("AB".repeat(32)),
            signed_sha256: "00".repeat(32),
            attachments: files
                .iter()
                .enumerate()
                .map(|(i, (name, media_type, size))| AttachmentInfo {
                    index: i,
                    name: (*name).into(),
                    media_type: (*media_type).into(),
                    size: *size,
                    sha256: String::new(),
                })
                .collect(),
            opened_as: Principal::Account(
                mailbox::AccountId::parse("K7M4QX9R").expect("a valid test ID"),
            ),
            consent: None,
        }
    }

    fn parties() -> Parties {
        Parties {
            sender_name: "坂出 一郎".into(),
            sender_facility: Some("坂出クリニック".into()),
            reader_id: "K7M4QX9R".into(),
            reader_name: "高松 花子".into(),
        }
    }

    /// Every top-level type, and parameters that once changed the encoding.
    const TYPES: &[&str] = &[
        "application/pdf",
        "application/dicom",
        "image/jpeg",
        "image/png; name=\"scan.png\"",
        "text/plain",
        "text/plain; charset=iso-2022-jp",
        "text/plain; charset=utf-8; format=flowed; delsp=yes",
        "text/html; charset=shift_jis",
        "text/csv; name*=utf-8''%E6%A4%9C%E6%9F%BB.csv",
        "audio/wav",
        "video/mp4",
        "font/woff2",
        "model/stl",
        "example/x",
        "message/rfc822",
        "multipart/mixed; boundary=\"inner\"",
        "application/octet-stream; name=\"報告書.pdf\"",
        "x-unknown",
        "",
    ];

    fn clear(size: u64, seed: u64) -> Vec<u8> {
        (0..size).map(|i| ((i * 7 + seed) % 251) as u8).collect()
    }

    /// What a list shows (size, header, ENVELOPE, BODYSTRUCTURE, part ranges)
    /// is what the download is, for any declared type and size, with no
    /// attachment decrypted to know it; every render is the same bytes.
    #[test]
    fn summary_matches_the_rendered_message() {
        let sizes: &[u64] = &[0, 1, 2, 3, 56, 57, 58, 8192, 100_003];
        for (t, media_type) in TYPES.iter().enumerate() {
            for (s, size) in sizes.iter().enumerate() {
                let files_meta = [
                    ("検査結果 報告.pdf", *media_type, *size),
                    ("second.txt", "text/plain", sizes[(s + t) % sizes.len()]),
                ];
                let it = item(&files_meta);
                let files: Vec<Vec<u8>> = files_meta
                    .iter()
                    .enumerate()
                    .map(|(i, f)| clear(f.2, i as u64))
                    .collect();
                let full = render(&it, &parties(), &files).expect("renders");
                let again = render(&it, &parties(), &files).expect("renders");
                assert_eq!(full.bytes, again.bytes, "renders differ for {media_type}");
                let sum = summarize(&it, &parties()).expect("summarizes");
                let what = format!("{media_type:?} of {size}");
                assert_eq!(sum.size as usize, full.bytes.len(), "size, {what}");
                assert_eq!(sum.header, full.bytes[..full.header_len].to_vec());
                assert_eq!(sum.envelope, full.envelope);
                let structure = full.structure.expect("read back");
                assert_eq!(
                    sum.body_structure,
                    Some(structure.body_structure.clone()),
                    "structure, {what}"
                );
                let spans: Vec<PartSpan> = structure
                    .parts
                    .iter()
                    .map(|p| PartSpan {
                        path: p.path.clone(),
                        mime: p.mime.start as u64..p.mime.end as u64,
                        body: p.body.start as u64..p.body.end as u64,
                    })
                    .collect();
                assert_eq!(sum.parts, spans, "part ranges, {what}");
                // The attachment parts are the very bytes, base64.
                for (i, file) in files.iter().enumerate() {
                    let part = structure
                        .part(&[std::num::NonZeroU32::new(i as u32 + 2).expect("nonzero")])
                        .expect("attachment part");
                    let mut want = Vec::new();
                    super::super::layout::encode(file, &mut want);
                    assert_eq!(full.bytes[part.body.clone()], want[..], "bytes, {what}");
                }
            }
        }
    }
}
