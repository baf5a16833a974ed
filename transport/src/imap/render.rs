//! An opened item as an RFC 5322 message (mail-builder), built on demand in
//! memory and never written to disk; and the IMAP ENVELOPE taken from it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use imap_next::imap_types::core::NString;
use imap_next::imap_types::envelope::{Address, Envelope};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as MailAddress;
use mail_builder::headers::raw::Raw;
use mailbox::postroom::OpenedItem;

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
    text
}

pub fn render(
    item: &OpenedItem,
    parties: &Parties,
    attachments: Vec<(String, String, Vec<u8>)>,
) -> std::io::Result<Rendered> {
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
                "{}{}",
                item.signature.as_str(),
                item.signer_fingerprint
                    .as_deref()
                    .map(|f| format!("; signer={f}"))
                    .unwrap_or_default()
            )),
        )
        .header("X-Renkei-Kind", Raw::new(item.kind.clone()))
        .text_body(text_of(item));
    let in_reply_to = match (&item.thread_id, item.step.as_deref()) {
        (Some(t), Some(step)) if step != "open" => Some(format!("{t}@thread.renkei")),
        _ => None,
    };
    if let Some(parent) = &in_reply_to {
        builder = builder
            .in_reply_to(parent.clone())
            .references(parent.clone());
    }
    for (name, media_type, bytes) in attachments {
        builder = builder.attachment(media_type, name, bytes);
    }
    let bytes = builder.write_to_vec()?;
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
    let structure = super::structure::analyse(&bytes);
    Ok(Rendered {
        bytes,
        header_len,
        envelope,
        structure,
    })
}
