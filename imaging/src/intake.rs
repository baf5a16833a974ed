//! Intake of one untrusted file as it streams in: fed chunk by chunk, judged at
//! the end. A file that claims to be DICOM — by its name (`.dcm`, `.dicom`), its
//! media type (`application/dicom`) or the `DICM` marker — must be a DICOM file
//! that can be placed in a study; JPEG and PNG images must have a readable
//! header. Memory stays bounded whatever the file says about itself.
//!
//! Neutralisation (issue 26): a DICOM preamble must be zeros or a TIFF
//! header; a PDF, and the PDF inside an Encapsulated PDF instance, is refused
//! when it holds active content (`pdf_active`); data after a JPEG's or PNG's
//! end is refused (`trailer`). Each is judged on the streamed bytes.
//!
//! JPEG and PNG headers are read with jpeg-decoder and png from the first MiB.
//! A DICOM file goes through the bounded walk (`scan`), then
//! `DicomMeta::from_scan` (required tags, native pixel geometry) and
//! dicom-object reading the checked copy up to the pixel data; `check_file`
//! seeks past the pixel data once its length is checked.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use crate::error::IntakeError;
use crate::meta::DicomMeta;
use crate::pdf_active::PdfScanner;
use crate::scan::{Scanned, Scanner};
use crate::trailer::EndWalk;

/// Bytes of an image kept to read its header.
const IMAGE_HEAD: usize = 1 << 20;
const SNIFF: usize = 132;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// What a file turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    Dicom(Box<DicomMeta>),
    Image(ImageInfo),
    /// Neither DICOM nor an image; the attachment policy judges it.
    Other,
}

/// Whether a file's name or media type says it is DICOM.
pub fn claims_dicom(name: &str, media_type: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".dcm")
        || lower.ends_with(".dicom")
        || media_type
            .split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/dicom"))
}

enum State {
    Sniffing(Vec<u8>),
    Dicom(Box<Scanner>),
    /// The header kept, and the walk to the image's end.
    Image(ImageFormat, Vec<u8>, EndWalk),
    Pdf(Box<PdfScanner>),
    Other,
}

/// One file's intake. `feed` every chunk in order, then `finish`.
pub struct Intake {
    claims_dicom: bool,
    size_hint: Option<u64>,
    /// Neutralisation checks (preamble, active content, data after the end);
    /// off only to read back a file already stored.
    neutralise: bool,
    state: State,
}

/// A DICOM preamble must be zeros or a TIFF header (PS3.10 7.1): anything
/// else may make the file a program too (CVE-2019-11687). The file is
/// refused rather than its preamble zeroed, so the bytes sealed are the
/// sender's own, and so are their checksums.
fn check_preamble(preamble: &[u8]) -> Result<(), IntakeError> {
    let tiff = preamble.starts_with(b"II*\0") || preamble.starts_with(b"MM\0*");
    if tiff || preamble.iter().all(|&b| b == 0) {
        return Ok(());
    }
    Err(IntakeError::DicomPreamble {
        program: preamble.starts_with(b"MZ"),
    })
}

impl Intake {
    pub fn new(name: &str, media_type: &str) -> Self {
        Self {
            claims_dicom: claims_dicom(name, media_type),
            size_hint: None,
            neutralise: true,
            state: State::Sniffing(Vec::with_capacity(SNIFF)),
        }
    }

    /// Reads a file already stored: the structure is checked, the
    /// neutralisation of intake is not applied again.
    fn stored(mut self) -> Self {
        self.neutralise = false;
        self
    }

    /// The file's total size, when known before it is read: a declared
    /// length past the end is then refused as soon as it is met.
    pub fn with_size(mut self, size: u64) -> Self {
        self.size_hint = Some(size);
        self
    }

    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), IntakeError> {
        if let State::Sniffing(head) = &mut self.state {
            let n = (SNIFF - head.len()).min(data.len());
            head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if head.len() < SNIFF {
                return Ok(());
            }
            let head = std::mem::take(head);
            self.decide(&head)?;
        }
        match &mut self.state {
            State::Sniffing(_) | State::Other => Ok(()),
            State::Dicom(scanner) => scanner.feed(data),
            State::Image(_, head, walk) => {
                let n = (IMAGE_HEAD - head.len()).min(data.len());
                head.extend_from_slice(&data[..n]);
                walk.feed(data)
            }
            State::Pdf(pdf) => pdf.feed(data),
        }
    }

    /// Chooses the path once the first bytes are known (or the file ended).
    fn decide(&mut self, head: &[u8]) -> Result<(), IntakeError> {
        self.state = if head.len() >= SNIFF && &head[128..132] == b"DICM" {
            let mut scanner = Box::new(Scanner::new(self.size_hint));
            if self.neutralise {
                check_preamble(&head[..128])?;
                scanner.check_documents();
            }
            scanner.feed(head)?;
            State::Dicom(scanner)
        } else if self.claims_dicom {
            return Err(if head.is_empty() {
                IntakeError::Empty
            } else {
                IntakeError::NotDicom
            });
        } else if head.starts_with(b"\xFF\xD8\xFF") {
            image(ImageFormat::Jpeg, head)?
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            image(ImageFormat::Png, head)?
        } else if self.neutralise && head.starts_with(b"%PDF-") {
            let mut pdf = Box::<PdfScanner>::default();
            pdf.feed(head)?;
            State::Pdf(pdf)
        } else {
            State::Other
        };
        Ok(())
    }

    /// Bytes the caller may seek past instead of feeding (a file on disk):
    /// the rest of the pixel data once it is known to fit the file.
    pub fn skippable(&self) -> u64 {
        match &self.state {
            State::Dicom(scanner) if self.size_hint.is_some() => scanner.skippable(),
            _ => 0,
        }
    }

    /// Records that the caller sought past `n` bytes (at most [`Intake::skippable`]).
    pub fn skip(&mut self, n: u64) {
        if let State::Dicom(scanner) = &mut self.state {
            scanner.skip(n);
        }
    }

    pub fn finish(self) -> Result<Checked, IntakeError> {
        Ok(match self.finish_scanned()? {
            Finished::Dicom(dicom) => Checked::Dicom(Box::new(dicom.0)),
            Finished::Image(info) => Checked::Image(info),
            Finished::Other => Checked::Other,
        })
    }

    fn finish_scanned(mut self) -> Result<Finished, IntakeError> {
        if let State::Sniffing(head) = &mut self.state {
            let head = std::mem::take(head);
            self.decide(&head)?;
        }
        match self.state {
            State::Sniffing(_) | State::Other => Ok(Finished::Other),
            State::Dicom(scanner) => {
                let scanned = scanner.finish()?;
                let meta = DicomMeta::from_scan(&scanned)?;
                parse_header(&scanned)?;
                Ok(Finished::Dicom(Box::new((meta, scanned))))
            }
            State::Image(format, head, walk) => {
                let info = image_info(format, &head)?;
                walk.finish()?;
                Ok(Finished::Image(info))
            }
            State::Pdf(pdf) => pdf.finish().map(|()| Finished::Other),
        }
    }
}

/// An image's first bytes: its header is kept, its end walked to.
fn image(format: ImageFormat, head: &[u8]) -> Result<State, IntakeError> {
    let mut walk = EndWalk::new(format);
    walk.feed(head)?;
    Ok(State::Image(format, head.to_vec(), walk))
}

/// [`Checked`] with, for DICOM, the walk itself (raw values, where the pixel
/// data lies), which rendering reads.
enum Finished {
    Dicom(Box<(DicomMeta, Scanned)>),
    Image(ImageInfo),
    Other,
}

/// The intake of a DICOM file held in memory, for rendering: its metadata and
/// the walk, every length checked. Anything but DICOM is `NotDicom`.
pub(crate) fn scan_dicom(bytes: &[u8]) -> Result<(DicomMeta, Scanned), IntakeError> {
    let mut intake = Intake::new("", "application/dicom")
        .with_size(bytes.len() as u64)
        .stored();
    intake.feed(bytes)?;
    match intake.finish_scanned()? {
        Finished::Dicom(dicom) => Ok(*dicom),
        Finished::Image(_) | Finished::Other => Err(IntakeError::NotDicom),
    }
}

/// The metadata of a DICOM file already stored, as rendering reads it: every
/// structural check of intake, not its neutralisation (a file stored before
/// a check was added still shows).
pub fn stored_meta(bytes: &[u8]) -> Result<DicomMeta, IntakeError> {
    scan_dicom(bytes).map(|(meta, _)| meta)
}

/// dicom-rs reads the data set up to the pixel data from the scanner's copy,
/// whose every length has been checked against the bytes there, so it can
/// allocate no more than that copy holds.
pub(crate) fn parse_header(scanned: &Scanned) -> Result<(), IntakeError> {
    dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .read_until(dicom_dictionary_std::tags::PIXEL_DATA)
        .from_reader(scanned.header.as_slice())
        .map(drop)
        .map_err(|e| IntakeError::Malformed(e.to_string()))
}

fn image_info(format: ImageFormat, head: &[u8]) -> Result<ImageInfo, IntakeError> {
    let bad = |reason: String| IntakeError::BadImage {
        format: format.name(),
        reason,
    };
    let (width, height) = match format {
        ImageFormat::Jpeg => {
            let mut d = jpeg_decoder::Decoder::new(head);
            d.read_info().map_err(|e| bad(e.to_string()))?;
            let info = d.info().ok_or_else(|| bad("no frame header".into()))?;
            (u32::from(info.width), u32::from(info.height))
        }
        ImageFormat::Png => {
            let reader = png::Decoder::new(io::Cursor::new(head))
                .read_info()
                .map_err(|e| bad(e.to_string()))?;
            let info = reader.info();
            (info.width, info.height)
        }
    };
    if width == 0 || height == 0 {
        return Err(bad("it has no pixels".into()));
    }
    Ok(ImageInfo {
        format,
        width,
        height,
    })
}

/// Checks a whole file from a reader (64 KiB at a time).
pub fn check_reader(
    name: &str,
    media_type: &str,
    size: Option<u64>,
    mut reader: impl Read,
) -> io::Result<Result<Checked, IntakeError>> {
    let mut intake = Intake::new(name, media_type);
    if let Some(size) = size {
        intake = intake.with_size(size);
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = intake.feed(&buf[..n]) {
            return Ok(Err(e));
        }
    }
    Ok(intake.finish())
}

/// Checks a file held in memory (tests, fuzzing).
pub fn check_bytes(name: &str, media_type: &str, bytes: &[u8]) -> Result<Checked, IntakeError> {
    let mut intake = Intake::new(name, media_type).with_size(bytes.len() as u64);
    intake.feed(bytes)?;
    intake.finish()
}

/// Checks a file on disk, its size known up front; the pixel data, once its
/// length is checked against the file size, is sought past, not read.
pub fn check_file(path: &std::path::Path) -> io::Result<Result<Checked, IntakeError>> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut intake = Intake::new(name, "").with_size(size);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let skip = intake.skippable();
        if skip > 0 {
            let offset = i64::try_from(skip).map_err(io::Error::other)?;
            file.seek(SeekFrom::Current(offset))?;
            intake.skip(skip);
            continue;
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = intake.feed(&buf[..n]) {
            return Ok(Err(e));
        }
    }
    Ok(intake.finish())
}
