//! A bounded walk over a DICOM Part 10 stream, fed chunk by chunk as the file
//! arrives. dicom-rs allocates each value by its declared length, so a few
//! bytes can ask it for gigabytes; this walk never allocates by a declared
//! length. It checks every length against the item that holds it (and against
//! the file size when that is known), bounds the nesting of sequences, keeps
//! the raw values of the few top-level tags intake needs (each capped), and
//! keeps a copy of the data set up to the pixel data (capped, cut at a
//! top-level element boundary) for dicom-rs to parse afterwards — every length
//! in that copy has then been checked against the bytes actually there.
//!
//! Bounds: sequences nest 16 deep at most; 29 top-level tags are kept, up to 64
//! KiB each; the copy for dicom-rs is 4 MiB at most. Explicit and implicit VR,
//! big endian, undefined lengths and encapsulated fragments are walked;
//! deflated syntaxes are refused, and so is any VR outside PS3.5 (dicom-rs
//! reads one as UN with a 4-byte length, so the two would disagree about where
//! the next element starts — the fuzzer found a 775 MB allocation there) and a
//! binary value whose length is not a whole number of its size (an `FL` of two
//! bytes made dicom-rs read a length out of the next element's text: 1.3 GB).

use dicom_core::Tag;
use dicom_core::VR;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;

use crate::error::IntakeError;
use crate::pdf_active::{ENCAPSULATED_PDF_CLASS, EncapsulatedDocument};

/// Deepest sequence nesting accepted (real files rarely exceed 5).
pub const MAX_DEPTH: usize = 16;
/// Bytes of the data set before the pixel data kept for dicom-rs.
pub const HEADER_CAP: usize = 4 << 20;
/// Longest value collected for metadata; longer ones are passed over.
const VALUE_CAP: u64 = 64 * 1024;
const UNDEFINED: u32 = 0xFFFF_FFFF;
pub const PIXEL_DATA: u32 = 0x7FE0_0010;
pub const TRANSFER_SYNTAX: u32 = 0x0002_0010;
/// Encapsulated Document (0042,0011): the PDF of an Encapsulated PDF instance.
const ENCAPSULATED_DOCUMENT: u32 = 0x0042_0011;
const SOP_CLASS: u32 = 0x0008_0016;

/// Top-level tags whose values intake reads.
const WANTED: &[u32] = &[
    0x0002_0010, // transfer syntax
    0x0008_0005, // specific character set
    0x0008_0016, // SOP class
    0x0008_0018, // SOP instance
    0x0008_0020, // study date
    0x0008_0060, // modality
    0x0008_1030, // study description
    0x0008_103E, // series description
    0x0010_0010, // patient name
    0x0010_0020, // patient ID
    0x0018_0015, // body part
    0x0020_000D, // study instance UID
    0x0020_000E, // series instance UID
    0x0020_0011, // series number
    0x0020_0013, // instance number
    0x0028_0002, // samples per pixel
    0x0028_0004, // photometric interpretation
    0x0028_0006, // planar configuration
    0x0028_0008, // number of frames
    0x0028_0010, // rows
    0x0028_0011, // columns
    0x0028_0100, // bits allocated
    0x0028_0101, // bits stored
    0x0028_0103, // pixel representation
    0x0028_1050, // window centre
    0x0028_1051, // window width
    0x0028_1052, // rescale intercept
    0x0028_1053, // rescale slope
    0x3004_000E, // dose grid scaling (RT Dose)
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    pub explicit: bool,
    pub big_endian: bool,
}

const META: Syntax = Syntax {
    explicit: true,
    big_endian: false,
};
const IMPLICIT_LE: Syntax = Syntax {
    explicit: false,
    big_endian: false,
};

impl Syntax {
    pub(crate) fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    /// The data set syntax a transfer syntax UID names.
    pub fn of(ts: &str) -> Result<Self, IntakeError> {
        match ts {
            "1.2.840.10008.1.2" => Ok(IMPLICIT_LE),
            "1.2.840.10008.1.2.2" => Ok(Syntax {
                explicit: true,
                big_endian: true,
            }),
            "1.2.840.10008.1.2.1.99" | "1.2.840.10008.1.2.4.95" => Err(
                IntakeError::UnsupportedTransferSyntax(format!("{ts} (deflated)")),
            ),
            "" => Err(IntakeError::Malformed(
                "the file meta information names no transfer syntax".into(),
            )),
            _ => Ok(META),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sequence,
    Item,
    /// Encapsulated pixel data: items are compressed fragments, not data sets.
    Fragments,
}

#[derive(Debug)]
struct Container {
    kind: Kind,
    start: u64,
    end: Option<u64>,
    syntax: Syntax,
    tag: u32,
}

/// Where the pixel data sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelData {
    /// Offset of the value's first byte.
    pub offset: u64,
    /// `None` for encapsulated (compressed) pixel data.
    pub length: Option<u64>,
    /// OB or OW as written (`UN` in implicit VR, whose little endian makes
    /// the two alike).
    pub vr: [u8; 2],
}

/// What a value being read is for.
struct Value {
    tag: u32,
    declared: u64,
    left: u64,
    keep: Option<Vec<u8>>,
    /// Top-level pixel data: `Some(None)` for a native value, `Some(Some((k,
    /// start)))` for item `k` of encapsulated pixel data (0 is the basic
    /// offset table) whose item header starts at `start`.
    pixel: Option<Option<(u32, u64)>>,
}

/// Where the bytes about to be read lie in the top-level pixel data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelValue {
    /// `None` for a native value; else the item (0: the basic offset table,
    /// 1…: fragments) and the file offset of its item header.
    pub item: Option<(u32, u64)>,
    /// Bytes of this value already read.
    pub at: u64,
    /// Bytes of it still to come.
    pub left: u64,
}

pub struct Scanner {
    size_hint: Option<u64>,
    /// Structure bytes waiting for `need` of them to be there.
    pending: Vec<u8>,
    need: usize,
    /// Offset of the first byte not yet consumed (`pending` is not consumed).
    offset: u64,
    value: Option<Value>,
    stack: Vec<Container>,
    in_meta: bool,
    dataset: Syntax,
    started: bool,
    values: Vec<(u32, Vec<u8>)>,
    header: Vec<u8>,
    header_open: bool,
    top_start: usize,
    pixel: Option<PixelData>,
    /// Whether a top-level Encapsulated Document is searched for active content.
    documents: bool,
    document: Option<EncapsulatedDocument>,
    /// Items of encapsulated pixel data met so far (the offset table too).
    items: u32,
    /// The last top-level tag: a data set is in ascending tag order (PS3.5
    /// 7.1), and a reader that stops at the pixel data must see every
    /// element a whole-file reader sees.
    last_top_tag: Option<u32>,
}

/// A finished walk.
pub struct Scanned {
    pub values: Vec<(u32, Vec<u8>)>,
    /// Preamble, meta group and data set up to the pixel data (or up to a
    /// top-level element boundary within [`HEADER_CAP`]).
    pub header: Vec<u8>,
    pub pixel: Option<PixelData>,
    pub syntax: Syntax,
}

impl Scanned {
    pub fn value(&self, tag: u32) -> Option<&[u8]> {
        self.values
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }
}

fn tag_name(tag: u32) -> String {
    format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF)
}

/// The value representations of PS3.5 6.2. dicom-rs reads any other pair as
/// UN, whose length is a 4-byte field after two reserved bytes, so a walk that
/// read such an element's 2-byte length would disagree with it about where
/// the next element starts (the fuzzer found a 4-byte "length" of 775 MB there).
fn known_vr(vr: [u8; 2]) -> bool {
    const VRS: [&[u8; 2]; 34] = [
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB",
        b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
        b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
    ];
    VRS.contains(&&vr)
}

/// Bytes per value of the binary VRs: a length that is not a multiple is
/// refused (dicom-rs then reads past the element; the fuzzer found a 1.3 GB
/// allocation after an `FL` of two bytes).
fn value_size(vr: [u8; 2]) -> u32 {
    match &vr {
        b"AT" | b"FL" | b"SL" | b"UL" | b"OF" | b"OL" => 4,
        b"FD" | b"SV" | b"UV" | b"OD" | b"OV" => 8,
        b"SS" | b"US" | b"OW" => 2,
        _ => 1,
    }
}

fn long_form(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"SV"
            | b"UV"
    )
}

/// Whether the standard dictionary calls `tag` a sequence (implicit VR needs it).
fn is_sequence(tag: u32) -> bool {
    let t = Tag((tag >> 16) as u16, (tag & 0xFFFF) as u16);
    StandardDataDictionary
        .by_tag(t)
        .is_some_and(|e| matches!(e.vr(), VirtualVr::Exact(VR::SQ)))
}

impl Scanner {
    /// `size_hint`: the whole file's size when known, so a length past the end
    /// is refused at once instead of at the end of the stream.
    pub fn new(size_hint: Option<u64>) -> Self {
        Self {
            size_hint,
            pending: Vec::with_capacity(132),
            need: 132,
            offset: 0,
            value: None,
            stack: Vec::new(),
            in_meta: true,
            dataset: META,
            started: false,
            values: Vec::new(),
            header: Vec::new(),
            header_open: true,
            top_start: 0,
            pixel: None,
            documents: false,
            document: None,
            items: 0,
            last_top_tag: None,
        }
    }

    /// Searches a top-level Encapsulated Document (0042,0011) for active
    /// content as it streams past, when it is a PDF.
    pub fn check_documents(&mut self) {
        self.documents = true;
    }

    fn consume(&mut self, bytes: &[u8]) {
        self.offset += bytes.len() as u64;
        if self.header_open {
            if self.header.len() + bytes.len() > HEADER_CAP {
                // Keep whole top-level elements only.
                self.header.truncate(self.top_start);
                self.header_open = false;
            } else {
                self.header.extend_from_slice(bytes);
            }
        }
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<(), IntakeError> {
        self.walk(data, false).map(drop)
    }

    /// Feeds `data` up to the first byte of top-level pixel data (a native
    /// value or a fragment) and returns how many bytes it took: the caller
    /// reads the pixel bytes itself ([`Scanner::pixel_value`]) and passes
    /// them with [`Scanner::skip`].
    pub fn feed_structure(&mut self, data: &[u8]) -> Result<usize, IntakeError> {
        self.walk(data, true)
    }

    fn walk(&mut self, mut data: &[u8], stop_at_pixels: bool) -> Result<usize, IntakeError> {
        let len = data.len();
        while !data.is_empty() {
            if let Some(v) = &mut self.value {
                if stop_at_pixels && v.pixel.is_some() {
                    break;
                }
                let n = usize::try_from(v.left)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                if let Some(buf) = &mut v.keep {
                    buf.extend_from_slice(&data[..n]);
                }
                v.left -= n as u64;
                let done = v.left == 0;
                let (chunk, rest) = data.split_at(n);
                if let Some(doc) = &mut self.document {
                    doc.feed(chunk)?;
                }
                self.consume(chunk);
                data = rest;
                if done {
                    self.end_value();
                    if let Some(doc) = self.document.take() {
                        doc.finish()?;
                    }
                }
                continue;
            }
            let n = (self.need - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.pending.len() == self.need {
                self.step()?;
            }
        }
        Ok(len - data.len())
    }

    /// The top-level pixel data value being read, if the next byte is one of it.
    pub fn pixel_value(&self) -> Option<PixelValue> {
        let v = self.value.as_ref()?;
        let item = v.pixel?;
        (v.left > 0).then_some(PixelValue {
            item,
            at: v.declared - v.left,
            left: v.left,
        })
    }

    /// The walk so far, as if it ended here (the header copy is complete
    /// once the top-level pixel data has begun).
    pub fn snapshot(&self) -> Scanned {
        Scanned {
            values: self.values.clone(),
            header: self.header.clone(),
            pixel: self.pixel,
            syntax: if self.in_meta { META } else { self.dataset },
        }
    }

    /// Items of encapsulated pixel data met so far, the offset table included.
    pub fn items(&self) -> u32 {
        self.items
    }

    /// Bytes that may be passed over unread: the rest of a value that is
    /// neither kept nor part of the copy for dicom-rs (pixel data, in practice).
    pub fn skippable(&self) -> u64 {
        match &self.value {
            Some(v) if v.keep.is_none() && !self.header_open && self.document.is_none() => v.left,
            _ => 0,
        }
    }

    /// Passes over `n` bytes (at most [`Scanner::skippable`]) without seeing them.
    pub fn skip(&mut self, n: u64) {
        let n = n.min(self.skippable());
        if let Some(v) = &mut self.value {
            v.left -= n;
            self.offset += n;
            if v.left == 0 {
                self.end_value();
            }
        }
    }

    fn end_value(&mut self) {
        if let Some(Value {
            tag,
            keep: Some(buf),
            ..
        }) = self.value.take()
        {
            self.values.push((tag, buf));
        }
    }

    /// Closes defined-length containers that end here.
    fn close_finished(&mut self) -> Result<(), IntakeError> {
        while let Some(c) = self.stack.last() {
            match c.end {
                Some(end) if end == self.offset => {
                    self.stack.pop();
                }
                Some(end) if end < self.offset => {
                    return Err(IntakeError::LengthPastContainer {
                        tag: tag_name(c.tag),
                        declared: self.offset - c.start,
                        room: end - c.start,
                    });
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// Refuses a value of `len` bytes starting at the current offset that
    /// would run past its container or past the end of the file.
    fn check_fits(&self, tag: u32, len: u64) -> Result<(), IntakeError> {
        if let Some(end) = self.stack.iter().rev().find_map(|c| c.end)
            && self.offset + len > end
        {
            return Err(IntakeError::LengthPastContainer {
                tag: tag_name(tag),
                declared: len,
                room: end - self.offset,
            });
        }
        if let Some(size) = self.size_hint
            && self.offset + len > size
        {
            return Err(IntakeError::Truncated {
                what: format!("element {}", tag_name(tag)),
                declared: len,
                available: size.saturating_sub(self.offset),
            });
        }
        Ok(())
    }

    fn syntax(&self) -> Syntax {
        if self.in_meta {
            META
        } else {
            self.stack.last().map_or(self.dataset, |c| c.syntax)
        }
    }

    /// One header's worth of bytes is pending: the preamble, an item delimiter
    /// or an element header. Decides what comes next.
    fn step(&mut self) -> Result<(), IntakeError> {
        if !self.started {
            return self.start_file();
        }
        self.close_finished()?;
        let syn = self.syntax_after_meta()?;
        let group = syn.u16(&self.pending[0..2]) as u32;
        let element = syn.u16(&self.pending[2..4]) as u32;
        let tag = (group << 16) | element;
        let start = self.offset;
        if group == 0xFFFE {
            let len = syn.u32(&self.pending[4..8]);
            self.take_pending();
            return self.delimiter(tag, len, start);
        }
        let Some((vr, len)) = self.element_header(syn, tag)? else {
            return Ok(());
        };
        let top_level = self.stack.is_empty();
        if top_level {
            if let Some(last) = self.last_top_tag.filter(|last| *last >= tag) {
                return Err(IntakeError::Malformed(format!(
                    "element {} comes after {}: elements must be in ascending tag order",
                    tag_name(tag),
                    tag_name(last)
                )));
            }
            self.last_top_tag = Some(tag);
            self.top_start = self.header.len();
        }
        self.take_pending();

        let undefined = len == UNDEFINED;
        if &vr == b"SQ" || (undefined && &vr == b"UN" && tag != PIXEL_DATA) {
            return self.open_sequence(syn, vr, tag, len, start);
        }
        if tag == PIXEL_DATA && top_level && self.begin_pixel_data(syn, vr, len, start) {
            return Ok(());
        }
        self.begin_value(vr, tag, len, top_level)
    }

    /// The 128-byte preamble and `DICM` have arrived.
    fn start_file(&mut self) -> Result<(), IntakeError> {
        if &self.pending[128..132] != b"DICM" {
            return Err(IntakeError::NotDicom);
        }
        self.take_pending();
        self.started = true;
        Ok(())
    }

    /// Consumes the pending header bytes; the next header is at least 8 bytes.
    fn take_pending(&mut self) {
        let p = std::mem::take(&mut self.pending);
        self.consume(&p);
        self.need = 8;
    }

    /// The transfer syntax of the pending header: the first element past group
    /// 0002 switches from the meta header's syntax to the dataset's.
    fn syntax_after_meta(&mut self) -> Result<Syntax, IntakeError> {
        let syn = self.syntax();
        let group = syn.u16(&self.pending[0..2]);
        if self.in_meta && group != 0x0002 {
            self.in_meta = false;
            let ts = crate::charset::trim_value(self.value_of(TRANSFER_SYNTAX).unwrap_or(&[]));
            self.dataset = Syntax::of(&String::from_utf8_lossy(ts))?;
            return Ok(self.dataset);
        }
        Ok(syn)
    }

    /// The element's VR and declared length, or `None` when the header's long
    /// form needs four more bytes first.
    fn element_header(
        &mut self,
        syn: Syntax,
        tag: u32,
    ) -> Result<Option<([u8; 2], u32)>, IntakeError> {
        let (vr, len, header_len) = if syn.explicit {
            let vr = [self.pending[4], self.pending[5]];
            if !known_vr(vr) {
                return Err(IntakeError::Malformed(format!(
                    "element {} has no valid value representation",
                    tag_name(tag)
                )));
            }
            if long_form(vr) {
                if self.pending.len() < 12 {
                    self.need = 12;
                    return Ok(None);
                }
                (vr, syn.u32(&self.pending[8..12]), 12)
            } else {
                (vr, syn.u16(&self.pending[6..8]) as u32, 8)
            }
        } else {
            let vr = if is_sequence(tag) { *b"SQ" } else { *b"UN" };
            (vr, syn.u32(&self.pending[4..8]), 8)
        };
        debug_assert_eq!(self.pending.len(), header_len);
        Ok(Some((vr, len)))
    }

    fn open_sequence(
        &mut self,
        syn: Syntax,
        vr: [u8; 2],
        tag: u32,
        len: u32,
        start: u64,
    ) -> Result<(), IntakeError> {
        let depth = self
            .stack
            .iter()
            .filter(|c| c.kind == Kind::Sequence)
            .count();
        if depth + 1 > MAX_DEPTH {
            return Err(IntakeError::NestingTooDeep { limit: MAX_DEPTH });
        }
        let end = if len == UNDEFINED {
            None
        } else {
            self.check_fits(tag, len as u64)?;
            Some(self.offset + len as u64)
        };
        // An undefined-length UN holds an implicit VR little endian sequence.
        let syntax = if &vr == b"UN" { IMPLICIT_LE } else { syn };
        self.stack.push(Container {
            kind: Kind::Sequence,
            start,
            end,
            syntax,
            tag,
        });
        Ok(())
    }

    /// Records where the top-level pixel data lies. Returns true when it is
    /// encapsulated (fragments follow as items), false when a plain value follows.
    fn begin_pixel_data(&mut self, syn: Syntax, vr: [u8; 2], len: u32, start: u64) -> bool {
        // The copy for dicom-rs stops before the pixel data.
        if self.header_open {
            self.header.truncate(self.top_start);
            self.header_open = false;
        }
        if len == UNDEFINED {
            self.pixel = Some(PixelData {
                offset: self.offset,
                length: None,
                vr,
            });
            self.stack.push(Container {
                kind: Kind::Fragments,
                start,
                end: None,
                syntax: syn,
                tag: PIXEL_DATA,
            });
            return true;
        }
        self.pixel = Some(PixelData {
            offset: self.offset,
            length: Some(len as u64),
            vr,
        });
        false
    }

    fn begin_value(
        &mut self,
        vr: [u8; 2],
        tag: u32,
        len: u32,
        top_level: bool,
    ) -> Result<(), IntakeError> {
        if len == UNDEFINED {
            return Err(IntakeError::Malformed(format!(
                "element {} has an undefined length but is not a sequence",
                tag_name(tag)
            )));
        }
        if !len.is_multiple_of(value_size(vr)) {
            return Err(IntakeError::Malformed(format!(
                "element {} has a length of {len} bytes, not a whole number of {} values",
                tag_name(tag),
                String::from_utf8_lossy(&vr)
            )));
        }
        let len = len as u64;
        self.check_fits(tag, len)?;
        let keep = (top_level && WANTED.contains(&tag) && len <= VALUE_CAP)
            .then(|| Vec::with_capacity(len as usize));
        if self.documents && top_level && tag == ENCAPSULATED_DOCUMENT && len > 0 {
            let class = crate::charset::trim_value(self.value_of(SOP_CLASS).unwrap_or(&[]));
            self.document = Some(EncapsulatedDocument::new(
                class == ENCAPSULATED_PDF_CLASS.as_bytes(),
            ));
        }
        self.value = Some(Value {
            tag,
            declared: len,
            left: len,
            keep,
            pixel: (top_level && tag == PIXEL_DATA).then_some(None),
        });
        if len == 0 {
            self.end_value();
        }
        Ok(())
    }

    fn delimiter(&mut self, tag: u32, len: u32, start: u64) -> Result<(), IntakeError> {
        let top = self.stack.last().map(|c| (c.kind, c.end));
        match (tag & 0xFFFF, top) {
            (0xE000, Some((Kind::Sequence, _))) => {
                let end = if len == UNDEFINED {
                    None
                } else {
                    self.check_fits(tag, len as u64)?;
                    Some(self.offset + len as u64)
                };
                let syntax = self.syntax();
                self.stack.push(Container {
                    kind: Kind::Item,
                    start,
                    end,
                    syntax,
                    tag,
                });
                Ok(())
            }
            (0xE000, Some((Kind::Fragments, _))) if len != UNDEFINED => {
                self.check_fits(tag, len as u64)?;
                self.value = Some(Value {
                    tag: PIXEL_DATA,
                    declared: len as u64,
                    left: len as u64,
                    keep: None,
                    pixel: Some(Some((self.items, start))),
                });
                self.items += 1;
                if len == 0 {
                    self.value = None;
                }
                Ok(())
            }
            (0xE00D, Some((Kind::Item, None)))
            | (0xE0DD, Some((Kind::Sequence | Kind::Fragments, None))) => {
                self.stack.pop();
                Ok(())
            }
            _ => Err(IntakeError::Malformed(format!(
                "unexpected {} at byte {start}",
                match tag & 0xFFFF {
                    0xE000 => "item",
                    0xE00D => "item end marker",
                    0xE0DD => "sequence end marker",
                    _ => "delimiter",
                }
            ))),
        }
    }

    fn value_of(&self, tag: u32) -> Option<&[u8]> {
        self.values
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }

    /// The end of the stream: anything still open means the file was cut short.
    pub fn finish(mut self) -> Result<Scanned, IntakeError> {
        if !self.started {
            return Err(if self.pending.is_empty() {
                IntakeError::Empty
            } else {
                IntakeError::NotDicom
            });
        }
        if let Some(v) = &self.value {
            return Err(IntakeError::Truncated {
                what: format!("element {}", tag_name(v.tag)),
                declared: v.declared,
                available: v.declared - v.left,
            });
        }
        if !self.pending.is_empty() {
            return Err(IntakeError::Truncated {
                what: "an element header".into(),
                declared: self.need as u64,
                available: self.pending.len() as u64,
            });
        }
        self.close_finished()?;
        if let Some(c) = self.stack.last() {
            return Err(match c.end {
                Some(end) => IntakeError::Truncated {
                    what: format!("sequence {}", tag_name(c.tag)),
                    declared: end - c.start,
                    available: self.offset - c.start,
                },
                None => IntakeError::Unterminated {
                    what: match c.kind {
                        Kind::Fragments => "the compressed pixel data".into(),
                        Kind::Item => "a sequence item".into(),
                        Kind::Sequence => format!("sequence {}", tag_name(c.tag)),
                    },
                },
            });
        }
        if self.in_meta {
            // Only a meta group: the data set syntax still has to be known.
            let ts = crate::charset::trim_value(self.value_of(TRANSFER_SYNTAX).unwrap_or(&[]));
            self.dataset = Syntax::of(&String::from_utf8_lossy(ts))?;
        }
        if self.header_open {
            self.header_open = false;
        }
        Ok(Scanned {
            values: self.values,
            header: self.header,
            pixel: self.pixel,
            syntax: self.dataset,
        })
    }
}
