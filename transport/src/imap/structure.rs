//! BODYSTRUCTURE and body sections of a rendered message, read back with
//! mail-parser: the MIME tree as IMAP describes it, and the byte ranges of each
//! part so `BODY[2]` or `BODY[2.MIME]` serve exactly the bytes of that part.

use std::num::NonZeroU32;
use std::ops::Range;

use imap_next::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, SinglePartExtensionData, SpecificFields,
};
use imap_next::imap_types::core::{IString, NString, Vec1};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// One leaf or multipart node, addressed by its IMAP part number (`[2, 1]` is 2.1).
#[derive(Debug, Clone)]
pub struct PartRange {
    pub path: Vec<u32>,
    /// The part's own MIME header.
    pub mime: Range<usize>,
    pub body: Range<usize>,
}

pub struct Structure {
    pub body_structure: BodyStructure<'static>,
    pub parts: Vec<PartRange>,
}

fn istring(s: &str) -> Option<IString<'static>> {
    IString::try_from(s.to_string()).ok()
}

fn nstring(s: Option<&str>) -> NString<'static> {
    s.and_then(|v| NString::try_from(v.to_string()).ok())
        .unwrap_or(NString::NIL)
}

fn walk(
    msg: &Message<'_>,
    id: usize,
    path: Vec<u32>,
    out: &mut Vec<PartRange>,
) -> Option<BodyStructure<'static>> {
    let part = msg.parts.get(id)?;
    let range = |a: u32, b: u32| usize::try_from(a).unwrap_or(0)..usize::try_from(b).unwrap_or(0);
    out.push(PartRange {
        path: path.clone(),
        mime: range(part.offset_header, part.offset_body),
        body: range(part.offset_body, part.offset_end),
    });
    let ct = part.content_type();
    let ctype = ct.map_or("text", |c| c.ctype()).to_ascii_lowercase();
    let subtype = ct
        .and_then(|c| c.subtype())
        .unwrap_or(if ctype == "text" {
            "plain"
        } else {
            "octet-stream"
        })
        .to_ascii_lowercase();
    if let PartType::Multipart(children) = &part.body {
        let mut bodies = Vec::new();
        for (i, child) in children.iter().enumerate() {
            let mut p = path.clone();
            p.push(u32::try_from(i + 1).ok()?);
            bodies.push(walk(msg, usize::try_from(*child).ok()?, p, out)?);
        }
        return Some(BodyStructure::Multi {
            bodies: Vec1::try_from(bodies).ok()?,
            subtype: istring(&subtype)?,
            extension_data: None,
        });
    }
    let parameter_list = ct
        .and_then(|c| c.attributes())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| Some((istring(&a.name.to_ascii_lowercase())?, istring(&a.value)?)))
        .collect();
    let size = part.offset_end.saturating_sub(part.offset_body);
    let basic = BasicFields {
        parameter_list,
        id: nstring(part.content_id()),
        description: nstring(part.content_description()),
        content_transfer_encoding: istring(
            &part
                .content_transfer_encoding()
                .unwrap_or("7bit")
                .to_ascii_lowercase(),
        )?,
        size,
    };
    let specific = if ctype == "text" {
        let body = msg
            .raw_message
            .get(usize::try_from(part.offset_body).ok()?..usize::try_from(part.offset_end).ok()?)
            .unwrap_or_default();
        SpecificFields::Text {
            subtype: istring(&subtype)?,
            number_of_lines: u32::try_from(body.iter().filter(|b| **b == b'\n').count())
                .unwrap_or(u32::MAX),
        }
    } else {
        SpecificFields::Basic {
            r#type: istring(&ctype)?,
            subtype: istring(&subtype)?,
        }
    };
    let tail = part.content_disposition().and_then(|d| {
        let params = d
            .attributes()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| Some((istring(&a.name.to_ascii_lowercase())?, istring(&a.value)?)))
            .collect();
        Some(Disposition {
            disposition: Some((istring(&d.ctype().to_ascii_lowercase())?, params)),
            tail: None,
        })
    });
    Some(BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: Some(SinglePartExtensionData {
            md5: NString::NIL,
            tail,
        }),
    })
}

/// The structure of a rendered message; `None` if it cannot be read back.
pub fn analyse(bytes: &[u8]) -> Option<Structure> {
    let msg = MessageParser::default().parse(bytes)?;
    let mut parts = Vec::new();
    let root_is_multi = matches!(msg.parts.first()?.body, PartType::Multipart(_));
    // A single-part message's body is part 1; a multipart's children are 1..n.
    let body_structure = walk(
        &msg,
        0,
        if root_is_multi { Vec::new() } else { vec![1] },
        &mut parts,
    )?;
    Some(Structure {
        body_structure,
        parts,
    })
}

impl Structure {
    pub fn part(&self, path: &[NonZeroU32]) -> Option<&PartRange> {
        let want: Vec<u32> = path.iter().map(|n| n.get()).collect();
        self.parts.iter().find(|p| p.path == want)
    }
}

/// Header lines of `header` whose names are (or, with `not`, are not) in `names`.
pub fn header_fields(header: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(header);
    let mut out = String::new();
    let mut keep = false;
    for line in text.split_inclusive("\r\n") {
        if line == "\r\n" {
            break;
        }
        if !line.starts_with([' ', '\t']) {
            let name = line.split(':').next().unwrap_or_default().trim();
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
            keep = listed != not;
        }
        if keep {
            out.push_str(line);
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
}
