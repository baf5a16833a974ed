//! One frame of a DICOM instance rendered from a stream, without holding the
//! file: [`FrameCapture`] is fed the file's bytes in order (as they are
//! decrypted) and keeps the bounded walk's header copy (at most
//! [`crate::HEADER_CAP`]) and the bytes of the one frame asked for, nothing
//! else. Native pixel data: the frame's byte range, frame × frame size.
//! Encapsulated: the fragment of the frame when there is one fragment per
//! frame, else the fragments the basic offset table gives it (all of them for
//! frame 0 without a table), as dicom-rs picks them from a whole file; which of
//! the two applies is known only at the end, so both are kept until then.
//! The frame is then decoded by the same code as [`crate::render_png`]: a
//! compressed one through dicom-rs, from an object holding the header and
//! that frame's fragments alone. At most [`FRAME_CAP`] bytes of a frame are
//! kept (a 100-megapixel 16-bit frame fits); beyond that it is `TooLarge`.
//!
//! Also the compressed decoding of a whole file in memory (`render_png`).

use std::borrow::Cow;

use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_pixeldata::PixelDecoder;

use crate::codestream::{self, Codestream};
use crate::error::RenderError;
use crate::meta::DicomMeta;
use crate::render::{Layout, Plan, Rendered, Samples, WindowChoice, render_planned, undecodable};
use crate::scan::{PixelValue, Scanned, Scanner};

/// The most bytes of one frame kept while streaming (256 MiB).
pub const FRAME_CAP: u64 = 256 << 20;

/// Feeds a DICOM file through, keeping only what one frame needs.
pub struct FrameCapture {
    frame: u32,
    scanner: Scanner,
    /// Decided at the first byte of pixel data (or at the end).
    plan: Option<(DicomMeta, Plan)>,
    /// Native: the kept bytes of the pixel value and where they start.
    window: Vec<u8>,
    window_start: u64,
    /// Encapsulated: the basic offset table's bytes.
    table: Vec<u8>,
    /// Encapsulated: fragment number `frame` (one fragment per frame).
    own: Option<Vec<u8>>,
    /// Encapsulated: the fragments the offset table gives the frame.
    by_table: Vec<Vec<u8>>,
    /// File offset of the first fragment's item header.
    first_item: Option<u64>,
    kept: u64,
    overflow: bool,
    /// Frames in the file, once the plan is made.
    frames: u32,
}

impl FrameCapture {
    /// A capture of frame `frame` (0-based) of a file of `size` bytes when known.
    pub fn new(frame: u32, size: Option<u64>) -> Self {
        Self {
            frame,
            scanner: Scanner::new(size),
            plan: None,
            window: Vec::new(),
            window_start: 0,
            table: Vec::new(),
            own: None,
            by_table: Vec::new(),
            first_item: None,
            kept: 0,
            overflow: false,
            frames: 0,
        }
    }

    /// The next bytes of the file.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), RenderError> {
        while !data.is_empty() {
            if let Some(at) = self.scanner.pixel_value() {
                let n = usize::try_from(at.left)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.pixels(at, &data[..n])?;
                self.scanner.skip(n as u64);
                data = &data[n..];
            } else {
                let n = self.scanner.feed_structure(data).map_err(open)?;
                if n == 0 && self.scanner.pixel_value().is_none() {
                    return Err(RenderError::Open("the walk stopped".into()));
                }
                data = &data[n..];
            }
        }
        Ok(())
    }

    /// The plan, made at the first byte of pixel data from the walk so far.
    fn plan(&mut self) -> Result<&Plan, RenderError> {
        if self.plan.is_none() {
            let scanned = self.scanner.snapshot();
            let meta = DicomMeta::from_scan(&scanned).map_err(open)?;
            self.frames = meta.frames;
            let plan = Plan::of(&meta, &scanned, self.frame)?;
            if let Some((start, _)) = plan.codestream.is_none().then(|| plan.native_bytes()) {
                self.window_start = start;
            }
            self.plan = Some((meta, plan));
        }
        match &self.plan {
            Some((_, plan)) => Ok(plan),
            None => Err(RenderError::NoPixelData),
        }
    }

    fn keep(&mut self, n: usize) -> Result<(), RenderError> {
        self.kept += n as u64;
        if self.kept > FRAME_CAP {
            return Err(RenderError::TooLarge { pixels: self.kept });
        }
        Ok(())
    }

    /// Bytes of the top-level pixel data, at `at`.
    fn pixels(&mut self, at: PixelValue, bytes: &[u8]) -> Result<(), RenderError> {
        let plan = self.plan()?;
        let (start, end) = plan.native_bytes();
        let rle = plan.codestream == Some(Codestream::Rle);
        match at.item {
            None => {
                let (from, to) = (at.at, at.at + bytes.len() as u64);
                let (lo, hi) = (from.max(start), to.min(end));
                if lo < hi {
                    let slice = &bytes[(lo - from) as usize..(hi - from) as usize];
                    self.keep(slice.len())?;
                    self.window.extend_from_slice(slice);
                }
            }
            Some((0, _)) => {
                self.keep(bytes.len())?;
                self.table.extend_from_slice(bytes);
            }
            Some((item, header)) => {
                // Without a table, the fragments of a single frame are all of
                // it; several frames need one fragment each or a table.
                let tabled = !self.table.is_empty() || self.frames == 1;
                let first = *self.first_item.get_or_insert(header);
                if item - 1 == self.frame {
                    self.keep(bytes.len())?;
                    let own = self.own.get_or_insert_with(Vec::new);
                    own.extend_from_slice(bytes);
                }
                if tabled && !rle && !self.overflow && self.by_table(header - first) {
                    if self.kept + bytes.len() as u64 > FRAME_CAP {
                        // Kept only if the file turns out to need it.
                        self.overflow = true;
                        self.by_table.clear();
                        return Ok(());
                    }
                    self.kept += bytes.len() as u64;
                    if at.at == 0 {
                        self.by_table.push(Vec::new());
                    }
                    if let Some(last) = self.by_table.last_mut() {
                        last.extend_from_slice(bytes);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the fragment whose item starts `offset` bytes after the
    /// first one's belongs to the frame by the basic offset table (dicom-rs:
    /// no table gives frame 0 every fragment and any other frame none).
    fn by_table(&self, offset: u64) -> bool {
        let entry = |k: u32| -> Option<u64> {
            let i = usize::try_from(k).ok()?.checked_mul(4)?;
            let b = self.table.get(i..i + 4)?;
            Some(u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        };
        let start = match entry(self.frame) {
            Some(start) => start,
            None if self.frame == 0 => 0,
            None => return false,
        };
        offset >= start && entry(self.frame + 1).is_none_or(|next| offset < next)
    }

    /// The end of the file: the frame, rendered with `choice`.
    pub fn render(mut self, choice: WindowChoice) -> Result<Rendered, RenderError> {
        let items = self.scanner.items();
        let scanned = self.scanner.finish().map_err(open)?;
        crate::intake::parse_header(&scanned).map_err(open)?;
        let meta = DicomMeta::from_scan(&scanned).map_err(open)?;
        let plan = match self.plan.take() {
            Some((_, plan)) => plan,
            None => Plan::of(&meta, &scanned, self.frame)?,
        };
        let fragments = items.saturating_sub(1);
        let (window, window_start) = (self.window, self.window_start);
        let (own, by_table, overflow) = (self.own, self.by_table, self.overflow);
        let value_len = plan.pixel.length.unwrap_or(0);
        render_planned(&meta, &scanned, &plan, choice, |plan| {
            match plan.codestream {
                None => {
                    crate::render::native_frame(&window, window_start, value_len, plan, plan.frame)
                }
                Some(c) => {
                    let frags = if c == Codestream::Rle || fragments == meta.frames {
                        vec![own.ok_or_else(|| missing(plan.frame))?]
                    } else if overflow {
                        return Err(RenderError::TooLarge { pixels: FRAME_CAP });
                    } else if by_table.is_empty() {
                        return Err(missing(plan.frame));
                    } else {
                        by_table
                    };
                    fragments_frame(&scanned, frags, c, &plan.layout)
                }
            }
        })
    }
}

fn open(e: crate::IntakeError) -> RenderError {
    RenderError::Open(e.to_string())
}

fn missing(frame: u32) -> RenderError {
    RenderError::Undecodable(format!("no fragment for frame {frame}"))
}

/// A compressed frame's codestream checked like a whole file's: the RLE
/// header, or the JPEG / JPEG 2000 headers against the geometry.
fn check(fragment: &[u8], codestream: Codestream, l: &Layout) -> Result<(), RenderError> {
    match codestream {
        Codestream::Rle => codestream::check_rle(fragment, l.geometry()),
        Codestream::Jpeg => codestream::check_jpeg(fragment),
        Codestream::Jpeg2000 => codestream::check_jpeg2000(fragment, l.geometry()),
        Codestream::Other => Ok(()),
    }
}

/// A frame's fragments decoded by dicom-rs, from an object of the file's
/// header and those fragments alone (one frame, no offset table: dicom-rs
/// then reads all of them as the frame, as it reads them from the whole file).
fn fragments_frame(
    scanned: &Scanned,
    fragments: Vec<Vec<u8>>,
    codestream: Codestream,
    l: &Layout,
) -> Result<Samples<'static>, RenderError> {
    let first = codestream::frame_fragment(&fragments, 0, 1, codestream);
    check(first, codestream, l)?;
    if codestream == Codestream::Rle && l.bits_allocated == 32 {
        let fragment = fragments.first().map_or(&[][..], Vec::as_slice);
        return Ok(Samples {
            data: Cow::Owned(codestream::decode_rle(fragment, l.geometry())),
            width: 4,
            big_endian: false,
        });
    }
    let mut obj = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .read_until(tags::PIXEL_DATA)
        .from_reader(scanned.header.as_slice())
        .map_err(|e| RenderError::Open(e.to_string()))?;
    obj.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("1"),
    ));
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        Value::from(PixelFragmentSequence::new(Vec::<u32>::new(), fragments)),
    ));
    let decoded = obj
        .decode_pixel_data_frame(0)
        .map_err(|e| undecodable(&e))?;
    Ok(Samples {
        data: Cow::Owned(decoded.into_data()),
        width: l.bytes_per_sample() as usize,
        big_endian: false,
    })
}

/// Frame `frame` of compressed pixel data, its codestream checked, then decoded.
pub(crate) fn compressed_frame(
    bytes: &[u8],
    frame: u32,
    frames: u32,
    codestream: Codestream,
    l: &Layout,
) -> Result<Samples<'static>, RenderError> {
    let obj = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .from_reader(bytes)
        .map_err(|e| RenderError::Open(e.to_string()))?;
    let fragments = obj
        .element(dicom_dictionary_std::tags::PIXEL_DATA)
        .ok()
        .and_then(|e| e.value().fragments())
        .unwrap_or(&[]);
    let geometry = l.geometry();
    let fragment = || codestream::frame_fragment(fragments, frame, frames, codestream);
    match codestream {
        Codestream::Rle => {
            let fragment = fragments.get(frame as usize).ok_or_else(|| {
                RenderError::Undecodable(format!("no RLE fragment for frame {frame}"))
            })?;
            codestream::check_rle(fragment, geometry)?;
            if l.bits_allocated == 32 {
                return Ok(Samples {
                    data: Cow::Owned(codestream::decode_rle(fragment, geometry)),
                    width: 4,
                    big_endian: false,
                });
            }
        }
        Codestream::Jpeg => codestream::check_jpeg(fragment())?,
        Codestream::Jpeg2000 => codestream::check_jpeg2000(fragment(), geometry)?,
        Codestream::Other => {}
    }
    let decoded = obj
        .decode_pixel_data_frame(frame)
        .map_err(|e| undecodable(&e))?;
    Ok(Samples {
        data: Cow::Owned(decoded.into_data()),
        width: l.bytes_per_sample() as usize,
        big_endian: false,
    })
}
