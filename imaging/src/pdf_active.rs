//! Active content in a PDF, found as the bytes stream past (a PDF attachment,
//! or the Encapsulated Document of an Encapsulated PDF DICOM instance). What is
//! refused: JavaScript, launch actions, an action written into `/OpenAction`
//! (a destination or a reference passes; see `destination_or_reference`), additional actions,
//! embedded files and file attachments, XFA forms, rich media and renditions,
//! form submission and data import, links that open another file.
//!
//! Why a scanner written here rather than a PDF library: lopdf and pdf parse a
//! whole document in memory, and attachments may be hundreds of MB; a reader
//! also finds objects through the cross-reference offsets, so a parser that
//! skips what it does not understand (strings, comments, stream data) leaves
//! places to hide. This scanner keeps a few hundred bytes and a 32 KiB inflate
//! window whatever the file size, and does not rely on the file being well
//! formed:
//! - every byte outside stream data (strings and comments included) is read as
//!   PDF tokens, and every name is compared after decoding `#xx` escapes
//!   (`/J#61vaScript` is `/JavaScript`);
//! - stream data is searched for the long names (those too unlikely to occur
//!   in binary data by chance) as it stands, and, when it is Flate-compressed
//!   and not an image, after inflating it;
//! - an object stream (`/Type /ObjStm`, or `/N` and `/First`, which is all a
//!   reader needs) is inflated and searched for every name, as the file's own
//!   objects are; one whose encoding cannot be undone here (another filter, a
//!   predictor, a filter given by reference) or that does not inflate is refused;
//! - inflating is bounded per stream and per file; a file past the bounds is
//!   refused, not passed unread.
//!
//! The short names `/JS`, `/AA` and `/EF` are looked for only outside stream
//! data and in object streams: in compressed image data they occur by chance,
//! and each only acts together with a long one (`/S /JavaScript`, a launch,
//! an embedded-file tree or annotation) that is looked for everywhere.

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::{ActiveContent, IntakeError};

/// Inflated bytes allowed per stream, and per file.
pub const INFLATE_PER_STREAM: u64 = 256 << 20;
pub const INFLATE_PER_FILE: u64 = 1 << 30;
/// Longest name kept (the longest looked for is 16 bytes).
const NAME_CAP: usize = 32;
/// Longest word kept (`endstream`, `stream`, `obj` and numbers are shorter).
const WORD_CAP: usize = 16;
const ENDSTREAM: &[u8] = b"endstream";

/// Looked for in every byte: names that act wherever they are.
const ANYWHERE: &[(&[u8], ActiveContent)] = &[
    (b"JavaScript", ActiveContent::JavaScript),
    (b"OnInstantiate", ActiveContent::JavaScript),
    (b"Launch", ActiveContent::Launch),
    (b"OpenAction", ActiveContent::OpenAction),
    (b"EmbeddedFiles", ActiveContent::EmbeddedFile),
    (b"EmbeddedFile", ActiveContent::EmbeddedFile),
    (b"FileAttachment", ActiveContent::EmbeddedFile),
    (b"GoToE", ActiveContent::EmbeddedFile),
    (b"XFA", ActiveContent::Xfa),
    (b"RichMedia", ActiveContent::Multimedia),
    (b"RichMediaExecute", ActiveContent::Multimedia),
    (b"Rendition", ActiveContent::Multimedia),
    (b"SubmitForm", ActiveContent::SubmitForm),
    (b"ImportData", ActiveContent::SubmitForm),
    (b"GoToR", ActiveContent::RemoteFile),
];

/// Looked for where dictionaries are: outside stream data and in object streams.
const IN_OBJECTS: &[(&[u8], ActiveContent)] = &[
    (b"JS", ActiveContent::JavaScript),
    (b"AA", ActiveContent::AdditionalActions),
    (b"EF", ActiveContent::EmbeddedFile),
];

/// Filters other than Flate: a stream with one is not inflated here.
const OTHER_FILTERS: &[&[u8]] = &[
    b"ASCIIHexDecode",
    b"AHx",
    b"ASCII85Decode",
    b"A85",
    b"LZWDecode",
    b"LZW",
    b"RunLengthDecode",
    b"RL",
    b"CCITTFaxDecode",
    b"CCF",
    b"DCTDecode",
    b"DCT",
    b"JBIG2Decode",
    b"JPXDecode",
    b"Crypt",
];

fn whitespace(b: u8) -> bool {
    matches!(b, 0 | b'\t' | b'\n' | 0x0C | b'\r' | b' ')
}

fn delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn found(what: ActiveContent) -> IntakeError {
    IntakeError::PdfActiveContent {
        what,
        encapsulated: false,
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A token as the lexer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event<'a> {
    /// A name, `#xx` decoded; `None` when longer than [`NAME_CAP`].
    Name(Option<&'a [u8]>),
    /// A run of regular characters and the byte that ended it.
    Word(Option<&'a [u8]>, Option<u8>),
    DictClose,
    ArrayOpen,
    Other,
}

#[derive(Default)]
enum Token {
    #[default]
    None,
    Name,
    Word,
}

/// PDF tokens, byte by byte. Strings and comments are not skipped: their bytes
/// are read as tokens too, so nothing a reader might reach by offset is passed.
#[derive(Default)]
struct Lexer {
    token: Token,
    buf: Vec<u8>,
    overflow: bool,
    /// A `#` and the hex digits after it, inside a name.
    escape: Option<Vec<u8>>,
    /// A `>` that may be the first of `>>`.
    gt: bool,
}

impl Lexer {
    fn put(&mut self, b: u8) {
        if self.buf.len() < NAME_CAP.max(WORD_CAP) {
            self.buf.push(b);
        } else {
            self.overflow = true;
        }
    }

    fn finish_escape(&mut self) {
        if let Some(esc) = self.escape.take() {
            for b in esc {
                self.put(b);
            }
        }
    }

    fn emit(
        &mut self,
        end: Option<u8>,
        on: &mut impl FnMut(Event<'_>) -> Result<(), IntakeError>,
    ) -> Result<(), IntakeError> {
        let token = std::mem::take(&mut self.token);
        self.finish_escape();
        let text = (!self.overflow).then_some(self.buf.as_slice());
        let result = match token {
            Token::None => Ok(()),
            Token::Name => on(Event::Name(text.filter(|t| t.len() <= NAME_CAP))),
            Token::Word => on(Event::Word(text.filter(|t| t.len() <= WORD_CAP), end)),
        };
        self.buf.clear();
        self.overflow = false;
        result
    }

    /// One byte of a name after `#`: two hex digits make one byte; anything
    /// else keeps the `#` as written (as readers do).
    fn escape_byte(&mut self, b: u8) -> bool {
        let Some(esc) = &mut self.escape else {
            return false;
        };
        if hex(b).is_none() {
            self.finish_escape();
            return false;
        }
        esc.push(b);
        if esc.len() == 3 {
            let value = hex(esc[1]).unwrap_or(0) << 4 | hex(esc[2]).unwrap_or(0);
            self.escape = None;
            self.put(value);
        }
        true
    }

    fn push(
        &mut self,
        b: u8,
        on: &mut impl FnMut(Event<'_>) -> Result<(), IntakeError>,
    ) -> Result<(), IntakeError> {
        let regular = !whitespace(b) && !delimiter(b);
        match self.token {
            Token::Name if regular => {
                if !self.escape_byte(b) {
                    if b == b'#' {
                        self.escape = Some(vec![b]);
                    } else {
                        self.put(b);
                    }
                }
                return Ok(());
            }
            Token::Word if regular => {
                self.put(b);
                return Ok(());
            }
            Token::Name | Token::Word => self.emit(Some(b), on)?,
            Token::None => {}
        }
        if self.gt {
            self.gt = false;
            if b == b'>' {
                return on(Event::DictClose);
            }
            on(Event::Other)?;
        }
        match b {
            b'/' => self.token = Token::Name,
            b'>' => self.gt = true,
            b'[' => on(Event::ArrayOpen)?,
            _ if regular => {
                self.token = Token::Word;
                self.put(b);
            }
            _ if delimiter(b) => on(Event::Other)?,
            _ => {}
        }
        Ok(())
    }

    /// The end of the bytes: a name or word still open is complete.
    fn end(
        &mut self,
        on: &mut impl FnMut(Event<'_>) -> Result<(), IntakeError>,
    ) -> Result<(), IntakeError> {
        self.emit(None, on)?;
        if std::mem::take(&mut self.gt) {
            on(Event::Other)?;
        }
        Ok(())
    }
}

/// Which names a run of bytes is searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    /// Objects: the file outside stream data, object streams.
    All,
    /// Other stream data, raw or inflated.
    Anywhere,
}

/// What may follow `/OpenAction`: a destination array (`[3 0 R /Fit]`) or a
/// reference (hyperref writes `/OpenAction 98 0 R`). An inline action
/// dictionary is refused; an action reached by reference is judged by its
/// type where it lies (JavaScript, Launch, … are refused wherever they are).
fn destination_or_reference(e: &Event<'_>) -> bool {
    match e {
        Event::ArrayOpen => true,
        Event::Word(Some(w), _) => w.first().is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// Names judged in one run of bytes; an `/OpenAction` is let through only
/// when a destination or a reference follows it.
struct Judge {
    names: Names,
    open_action: bool,
}

impl Judge {
    fn new(names: Names) -> Self {
        Self {
            names,
            open_action: false,
        }
    }

    fn event(&mut self, e: &Event<'_>) -> Result<(), IntakeError> {
        if std::mem::take(&mut self.open_action) && !destination_or_reference(e) {
            return Err(found(ActiveContent::OpenAction));
        }
        let Event::Name(Some(name)) = e else {
            return Ok(());
        };
        let lists: &[&[(&[u8], ActiveContent)]] = match self.names {
            Names::All => &[ANYWHERE, IN_OBJECTS],
            Names::Anywhere => &[ANYWHERE],
        };
        let hit = lists
            .iter()
            .flat_map(|l| l.iter())
            .find(|(n, _)| n == name)
            .map(|(_, what)| *what);
        match hit {
            Some(ActiveContent::OpenAction) => {
                self.open_action = true;
                Ok(())
            }
            Some(what) => Err(found(what)),
            None => Ok(()),
        }
    }

    fn end(&mut self) -> Result<(), IntakeError> {
        if self.open_action {
            return Err(found(ActiveContent::OpenAction));
        }
        Ok(())
    }
}

/// A lexer and its judge: one searched run of bytes.
struct Searched {
    lexer: Lexer,
    judge: Judge,
}

impl Searched {
    fn new(names: Names) -> Self {
        Self {
            lexer: Lexer::default(),
            judge: Judge::new(names),
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), IntakeError> {
        let judge = &mut self.judge;
        let mut on = |e: Event<'_>| judge.event(&e);
        data.iter().try_for_each(|&b| self.lexer.push(b, &mut on))
    }

    fn end(mut self) -> Result<(), IntakeError> {
        let judge = &mut self.judge;
        self.lexer.end(&mut |e: Event<'_>| judge.event(&e))?;
        self.judge.end()
    }
}

/// What the current object's dictionary said about its stream.
#[derive(Debug, Default, Clone, Copy)]
struct StreamKeys {
    object_stream: bool,
    flate: bool,
    other_filter: bool,
    predictor: bool,
    by_reference: bool,
    image: bool,
    xref: bool,
    /// The previous name was `/Filter` or `/DecodeParms`.
    expecting_filter: bool,
}

impl StreamKeys {
    fn name(&mut self, name: &[u8]) {
        self.expecting_filter = false;
        match name {
            b"ObjStm" | b"N" | b"First" => self.object_stream = true,
            b"FlateDecode" | b"Fl" => self.flate = true,
            b"Predictor" => self.predictor = true,
            b"Image" => self.image = true,
            b"XRef" => self.xref = true,
            b"Filter" | b"DecodeParms" => self.expecting_filter = true,
            n if OTHER_FILTERS.contains(&n) => self.other_filter = true,
            _ => {}
        }
    }
}

/// Inflates one stream, bounded, into a search.
struct Inflating {
    inflater: Box<Decompress>,
    out: Box<[u8]>,
    produced: u64,
    ended: bool,
    failed: bool,
    search: Searched,
}

/// Stream data, from after `stream` and its end of line to `endstream`.
struct InStream {
    keys: StreamKeys,
    /// Bytes held back: they may be the start of `endstream`.
    tail: Vec<u8>,
    /// What lies between `stream` and the data.
    start: Start,
    raw: Searched,
    inflating: Option<Inflating>,
}

enum Mode {
    Objects,
    Stream(Box<InStream>),
}

/// The scan of one PDF. `feed` every chunk in order, then `finish`.
pub(crate) struct PdfScanner {
    lexer: Lexer,
    judge: Judge,
    keys: StreamKeys,
    after_dict: bool,
    mode: Mode,
    inflated: u64,
}

impl Default for PdfScanner {
    fn default() -> Self {
        Self {
            lexer: Lexer::default(),
            judge: Judge::new(Names::All),
            keys: StreamKeys::default(),
            after_dict: false,
            mode: Mode::Objects,
            inflated: 0,
        }
    }
}

/// What a token outside stream data means for the scan.
enum Next {
    Go,
    /// `stream`: its data follows the end of line.
    Stream(Start),
}

/// Where stream data starts, after `stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Data,
    /// A CR ended `stream`: an LF right after it is not data.
    AfterCr,
    /// Blanks ended `stream`; readers skip them to the end of the line.
    ToEol,
}

fn object_event(
    judge: &mut Judge,
    keys: &mut StreamKeys,
    after_dict: &mut bool,
    e: &Event<'_>,
) -> Result<Next, IntakeError> {
    judge.event(e)?;
    let was_dict = std::mem::replace(after_dict, *e == Event::DictClose);
    match e {
        Event::Name(Some(n)) => keys.name(n),
        Event::Word(Some(w), end) => {
            if keys.expecting_filter && w.first().is_some_and(u8::is_ascii_digit) {
                keys.by_reference = true;
            }
            keys.expecting_filter = false;
            match *w {
                b"obj" | b"endobj" => *keys = StreamKeys::default(),
                b"stream" if was_dict => match end {
                    Some(b'\n') => return Ok(Next::Stream(Start::Data)),
                    Some(b'\r') => return Ok(Next::Stream(Start::AfterCr)),
                    Some(b' ' | b'\t') => return Ok(Next::Stream(Start::ToEol)),
                    _ => {}
                },
                _ => {}
            }
        }
        _ => keys.expecting_filter = false,
    }
    Ok(Next::Go)
}

impl PdfScanner {
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), IntakeError> {
        while !data.is_empty() {
            data = match &mut self.mode {
                Mode::Objects => self.objects(data)?,
                Mode::Stream(_) => self.stream(data)?,
            };
        }
        Ok(())
    }

    /// Reads objects until a stream starts; returns the bytes after that.
    fn objects<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], IntakeError> {
        for (i, &b) in data.iter().enumerate() {
            let mut next = Next::Go;
            let (judge, keys, after_dict) = (&mut self.judge, &mut self.keys, &mut self.after_dict);
            self.lexer.push(b, &mut |e: Event<'_>| {
                if let Next::Stream(start) = object_event(judge, keys, after_dict, &e)? {
                    next = Next::Stream(start);
                }
                Ok(())
            })?;
            if let Next::Stream(start) = next {
                self.begin_stream(start)?;
                return Ok(&data[i + 1..]);
            }
        }
        Ok(&[])
    }

    fn begin_stream(&mut self, start: Start) -> Result<(), IntakeError> {
        let keys = std::mem::take(&mut self.keys);
        self.after_dict = false;
        let uncheckable = keys.other_filter || keys.predictor || keys.by_reference;
        if keys.object_stream && uncheckable {
            return Err(IntakeError::PdfUncheckable(
                "an object stream is encoded in a way that cannot be checked here".into(),
            ));
        }
        let inflate = keys.flate && !uncheckable && !keys.image && !keys.xref;
        let (raw, inflated) = match (keys.object_stream, inflate) {
            (true, true) => (Names::Anywhere, Some(Names::All)),
            (true, false) => (Names::All, None),
            (false, true) => (Names::Anywhere, Some(Names::Anywhere)),
            (false, false) => (Names::Anywhere, None),
        };
        self.mode = Mode::Stream(Box::new(InStream {
            keys,
            tail: Vec::new(),
            start,
            raw: Searched::new(raw),
            inflating: inflated.map(|names| Inflating {
                inflater: Box::new(Decompress::new(true)),
                out: vec![0u8; 32 * 1024].into_boxed_slice(),
                produced: 0,
                ended: false,
                failed: false,
                search: Searched::new(names),
            }),
        }));
        Ok(())
    }

    /// Stream data up to `endstream`; returns the bytes after it.
    fn stream<'d>(&mut self, mut data: &'d [u8]) -> Result<&'d [u8], IntakeError> {
        let Mode::Stream(s) = &mut self.mode else {
            return Ok(data);
        };
        loop {
            match s.start {
                Start::Data => break,
                Start::AfterCr => {
                    s.start = Start::Data;
                    if data.first() == Some(&b'\n') {
                        data = &data[1..];
                    }
                }
                // Blanks are passed to the end of the line; anything else is data.
                Start::ToEol => match data.iter().position(|&b| b != b' ' && b != b'\t') {
                    None => return Ok(&[]),
                    Some(at) => {
                        let (next, skip) = match data[at] {
                            b'\r' => (Start::AfterCr, 1),
                            b'\n' => (Start::Data, 1),
                            _ => (Start::Data, 0),
                        };
                        s.start = next;
                        data = &data[at + skip..];
                    }
                },
            }
        }
        let mut joined = std::mem::take(&mut s.tail);
        joined.extend_from_slice(data);
        if let Some(at) = memchr::memmem::find(&joined, ENDSTREAM) {
            self.stream_data(&joined[..at])?;
            self.end_stream()?;
            // What follows `endstream` in this chunk: `joined` held up to 8
            // bytes from before `data`, so the rest lies within `data`.
            let consumed_from_data =
                (at + ENDSTREAM.len()).saturating_sub(joined.len() - data.len());
            return Ok(&data[consumed_from_data..]);
        }
        // Hold back a tail that could be the start of `endstream`.
        let keep = (1..ENDSTREAM.len())
            .rev()
            .find(|&k| joined.len() >= k && joined.ends_with(&ENDSTREAM[..k]))
            .unwrap_or(0);
        let split = joined.len() - keep;
        self.stream_data(&joined[..split])?;
        if let Mode::Stream(s) = &mut self.mode {
            s.tail = joined[split..].to_vec();
        }
        Ok(&[])
    }

    fn stream_data(&mut self, data: &[u8]) -> Result<(), IntakeError> {
        let Mode::Stream(s) = &mut self.mode else {
            return Ok(());
        };
        s.raw.feed(data)?;
        if let Some(inf) = &mut s.inflating {
            inflate(inf, data, &mut self.inflated, s.keys.object_stream, false)?;
        }
        Ok(())
    }

    fn end_stream(&mut self) -> Result<(), IntakeError> {
        let mode = std::mem::replace(&mut self.mode, Mode::Objects);
        let Mode::Stream(s) = mode else {
            return Ok(());
        };
        let s = *s;
        s.raw.end()?;
        if let Some(mut inf) = s.inflating {
            inflate(
                &mut inf,
                &[],
                &mut self.inflated,
                s.keys.object_stream,
                true,
            )?;
            inf.search.end()?;
        }
        // `endstream` is a word of its own: the object lexer starts afresh.
        self.lexer = Lexer::default();
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<(), IntakeError> {
        if let Mode::Stream(s) = &mut self.mode {
            let tail = std::mem::take(&mut s.tail);
            self.stream_data(&tail)?;
            self.end_stream()?;
        }
        let (judge, keys, after_dict) = (&mut self.judge, &mut self.keys, &mut self.after_dict);
        self.lexer
            .end(&mut |e: Event<'_>| object_event(judge, keys, after_dict, &e).map(drop))?;
        self.judge.end()
    }
}

/// Inflates `input` (or, at `last`, what the inflater still holds), searching
/// what comes out. An object stream that does not inflate is refused; any
/// other stream that does not is left as it is (its raw bytes were searched).
fn inflate(
    inf: &mut Inflating,
    mut input: &[u8],
    total: &mut u64,
    object_stream: bool,
    last: bool,
) -> Result<(), IntakeError> {
    let flush = if last {
        FlushDecompress::Finish
    } else {
        FlushDecompress::None
    };
    while !inf.ended && !inf.failed && (!input.is_empty() || last) {
        let (before_in, before_out) = (inf.inflater.total_in(), inf.inflater.total_out());
        let status = inf.inflater.decompress(input, &mut inf.out, flush);
        let consumed = (inf.inflater.total_in() - before_in) as usize;
        let produced = (inf.inflater.total_out() - before_out) as usize;
        input = &input[consumed.min(input.len())..];
        inf.produced += produced as u64;
        *total += produced as u64;
        if inf.produced > INFLATE_PER_STREAM || *total > INFLATE_PER_FILE {
            return Err(IntakeError::PdfTooLarge {
                limit_mib: if inf.produced > INFLATE_PER_STREAM {
                    INFLATE_PER_STREAM >> 20
                } else {
                    INFLATE_PER_FILE >> 20
                },
            });
        }
        inf.search.feed(&inf.out[..produced])?;
        match status {
            Ok(Status::StreamEnd) => inf.ended = true,
            Ok(_) if consumed == 0 && produced == 0 => break,
            Ok(_) => {}
            Err(_) if object_stream => {
                return Err(IntakeError::PdfUncheckable(
                    "an object stream cannot be decompressed".into(),
                ));
            }
            Err(_) => inf.failed = true,
        }
    }
    Ok(())
}

/// The Encapsulated Document (0042,0011) of a DICOM instance, searched as a
/// PDF when it is one: the instance is of the Encapsulated PDF class, or
/// `%PDF-` is within its first 1,024 bytes (where readers look for it).
pub(crate) struct EncapsulatedDocument {
    head: Vec<u8>,
    pdf: Option<Box<PdfScanner>>,
    decided: bool,
}

pub(crate) const ENCAPSULATED_PDF_CLASS: &str = "1.2.840.10008.5.1.4.1.1.104.1";
const PDF_HEADER_WITHIN: usize = 1024;

impl EncapsulatedDocument {
    pub(crate) fn new(pdf_class: bool) -> Self {
        Self {
            head: Vec::new(),
            pdf: pdf_class.then(Box::default),
            decided: pdf_class,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<(), IntakeError> {
        self.feed_inner(data).map_err(in_dicom)
    }

    fn feed_inner(&mut self, data: &[u8]) -> Result<(), IntakeError> {
        if !self.decided {
            let n = (PDF_HEADER_WITHIN - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            if self.head.len() < PDF_HEADER_WITHIN {
                return Ok(());
            }
            self.decide()?;
            return self.feed_inner(&data[n..]);
        }
        match &mut self.pdf {
            Some(pdf) => pdf.feed(data),
            None => Ok(()),
        }
    }

    fn decide(&mut self) -> Result<(), IntakeError> {
        self.decided = true;
        let head = std::mem::take(&mut self.head);
        if memchr::memmem::find(&head, b"%PDF-").is_some() {
            let mut pdf = Box::<PdfScanner>::default();
            pdf.feed(&head)?;
            self.pdf = Some(pdf);
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<(), IntakeError> {
        if !self.decided {
            self.decide().map_err(in_dicom)?;
        }
        match self.pdf {
            Some(pdf) => pdf.finish().map_err(in_dicom),
            None => Ok(()),
        }
    }
}

/// A refusal of the PDF inside a DICOM file says so.
fn in_dicom(e: IntakeError) -> IntakeError {
    match e {
        IntakeError::PdfActiveContent { what, .. } => IntakeError::PdfActiveContent {
            what,
            encapsulated: true,
        },
        other => other,
    }
}

/// Scans a whole PDF held in memory (tests, fuzzing).
pub fn check_pdf(bytes: &[u8]) -> Result<(), IntakeError> {
    let mut scanner = PdfScanner::default();
    scanner.feed(bytes)?;
    scanner.finish()
}

#[cfg(test)]
#[path = "pdf_active_tests.rs"]
mod tests;
