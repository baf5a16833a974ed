//! One frame of a DICOM instance as an 8-bit PNG. An uncompressed frame is
//! read straight from the file's bytes, where the intake walk found the pixel
//! data: only the requested frame is touched, whatever the file holds besides.
//! A compressed frame is decoded by dicom-pixeldata (RLE, JPEG baseline,
//! extended and lossless through jpeg-decoder, JPEG 2000 through openjp2: no
//! system libraries), a 32-bit RLE frame, which it does not decode, by
//! `codestream`. Then the modality LUT (rescale slope and intercept, or an RT
//! Dose's Dose Grid Scaling), a window (PS3.3 C.11.2.1.2), MONOCHROME1
//! inverted; colour images as 8-bit RGB.
//!
//! Uncompressed samples of 1, 8, 16 and 32 bits, signed or not, big endian too
//! (8-bit OW big endian swapped as pydicom does), without a dicom-object copy
//! of the file. A compressed frame is decoded only after the registry says it
//! has a decoder for the transfer syntax (else
//! `dicom_unsupported_transfer_syntax`: JPEG-LS, JPEG XL …). The window is the
//! preset (lung, mediastinum, bone, brain), the file's, or else the frame's
//! min/max modality values; linear, or LINEAR_EXACT for a width below 1 (a dose
//! in Gy). Colour: RGB, YBR_FULL, uncompressed YBR_FULL_422 and palette colour
//! (8- or 16-bit tables, read by dicom-rs from the walk's header copy). The
//! decoder runs under `catch_unwind`.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use serde::{Deserialize, Serialize};

use crate::codestream::{Codestream, Geometry};
use crate::error::RenderError;
use crate::meta::{DicomMeta, Window, number};
use crate::scan::{PixelData, Scanned};

/// Pixels per frame beyond which nothing is rendered (a 10k × 10k image).
const MAX_PIXELS: u64 = 100_000_000;

/// Window presets for CT (Hounsfield units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The file's own window (or its full range when it has none).
    Default,
    Lung,
    Mediastinum,
    Bone,
    Brain,
}

impl Preset {
    pub const ALL: [Preset; 5] = [
        Preset::Default,
        Preset::Lung,
        Preset::Mediastinum,
        Preset::Bone,
        Preset::Brain,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Lung => "lung",
            Self::Mediastinum => "mediastinum",
            Self::Bone => "bone",
            Self::Brain => "brain",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Default => "既定",
            Self::Lung => "肺野",
            Self::Mediastinum => "縦隔",
            Self::Bone => "骨",
            Self::Brain => "脳",
        }
    }

    /// The preset's window; `None` for the file's own.
    pub fn window(self) -> Option<Window> {
        let (center, width) = match self {
            Self::Default => return None,
            Self::Lung => (-600.0, 1500.0),
            Self::Mediastinum => (50.0, 350.0),
            Self::Bone => (400.0, 1800.0),
            Self::Brain => (40.0, 80.0),
        };
        Some(Window { center, width })
    }
}

/// Which window to render with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowChoice {
    Preset(Preset),
    Custom(Window),
}

/// A rendered frame.
pub struct Rendered {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The window applied (monochrome only).
    pub window: Option<Window>,
    pub frames: u32,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("png_bytes", &self.png.len())
            .finish()
    }
}

/// Maps a modality value to 0..=255 through a window: linear (PS3.3
/// C.11.2.1.2.1), the function a file's window means unless it says otherwise.
/// Linear needs a width of at least 1 in the values' own units, which a dose
/// map in Gy does not span, so a narrower window is applied as LINEAR_EXACT
/// (C.11.2.1.3.2), which holds for any positive width.
pub fn apply_window(x: f64, w: Window) -> u8 {
    if w.width > 0.0 && w.width < 1.0 {
        let y = if x <= w.center - w.width / 2.0 {
            0.0
        } else if x > w.center + w.width / 2.0 {
            255.0
        } else {
            ((x - w.center) / w.width + 0.5) * 255.0
        };
        return y.round().clamp(0.0, 255.0) as u8;
    }
    let width = w.width.max(1.0);
    let low = w.center - 0.5 - (width - 1.0) / 2.0;
    let high = w.center - 0.5 + (width - 1.0) / 2.0;
    if x <= low {
        0
    } else if x > high {
        255
    } else {
        (((x - (w.center - 0.5)) / (width - 1.0) + 0.5) * 255.0)
            .round()
            .clamp(0.0, 255.0) as u8
    }
}

/// A decoder's error with its causes (dicom-pixeldata's own text is only
/// "Could not decode pixel data").
pub(crate) fn undecodable(e: &dyn std::error::Error) -> RenderError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    RenderError::Undecodable(text)
}

/// How the samples of a frame are to be read as colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Photometric {
    Monochrome {
        invert: bool,
    },
    Rgb,
    YbrFull,
    /// Uncompressed 4:2:2: Y1 Y2 Cb Cr for each pair of pixels (PS3.3 C.7.6.3.1.2).
    YbrFull422,
    /// One sample per pixel, an index into the file's colour lookup tables.
    Palette,
}

impl Photometric {
    fn of(name: &str, samples: u32, codestream: Option<Codestream>) -> Result<Self, RenderError> {
        let photometric = match name {
            "MONOCHROME1" => Self::Monochrome { invert: true },
            "MONOCHROME2" => Self::Monochrome { invert: false },
            // The JPEG and JPEG 2000 decoders hand back RGB, whatever the
            // colour space they were given (YBR_FULL_422, YBR_ICT, YBR_RCT …).
            _ if samples == 3
                && matches!(codestream, Some(Codestream::Jpeg | Codestream::Jpeg2000)) =>
            {
                Self::Rgb
            }
            "RGB" => Self::Rgb,
            "YBR_FULL" => Self::YbrFull,
            "YBR_FULL_422" if codestream.is_none() => Self::YbrFull422,
            "PALETTE COLOR" => Self::Palette,
            other => return Err(RenderError::UnsupportedPhotometric(other.to_string())),
        };
        let expected = if matches!(photometric, Self::Monochrome { .. } | Self::Palette) {
            1
        } else {
            3
        };
        if samples != expected {
            return Err(RenderError::Undecodable(format!(
                "{name} with {samples} samples per pixel"
            )));
        }
        Ok(photometric)
    }
}

/// What the intake walk says about a frame's samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) pixels: u64,
    pub(crate) columns: u32,
    pub(crate) samples: u32,
    pub(crate) bits_allocated: u32,
    pub(crate) bits_stored: u32,
    pub(crate) signed: bool,
    /// Planar configuration 1 (uncompressed only): each sample's plane in turn.
    pub(crate) planar: bool,
    /// Uncompressed samples in explicit VR big endian.
    pub(crate) big_endian: bool,
    photometric: Photometric,
    /// The modality LUT: stored value × slope + intercept.
    pub(crate) slope: f64,
    pub(crate) intercept: f64,
}

impl Layout {
    fn of(
        meta: &DicomMeta,
        scanned: &Scanned,
        codestream: Option<Codestream>,
    ) -> Result<Self, RenderError> {
        let us = |tag: u32| {
            scanned
                .value(tag)
                .filter(|v| v.len() >= 2)
                .map(|v| u32::from(scanned.syntax.u16(v)))
        };
        let bits_allocated = meta.bits_allocated.unwrap_or(0);
        let bits_stored = meta.bits_stored.unwrap_or(bits_allocated);
        if !matches!(bits_allocated, 1 | 8 | 16 | 32) {
            return Err(RenderError::Undecodable(format!(
                "{bits_allocated}-bit samples (Bits Allocated must be 1, 8, 16 or 32)"
            )));
        }
        if bits_stored == 0 || bits_stored > bits_allocated {
            return Err(RenderError::Undecodable(format!(
                "{bits_stored} bits stored in {bits_allocated}-bit samples"
            )));
        }
        let photometric = Photometric::of(
            &meta.photometric_interpretation,
            meta.samples_per_pixel,
            codestream,
        )?;
        if bits_allocated == 1 && !matches!(photometric, Photometric::Monochrome { .. }) {
            return Err(RenderError::Undecodable("1-bit colour samples".into()));
        }
        // An RT Dose has no modality LUT: its Dose Grid Scaling turns the
        // stored values into dose, in its Dose Units (PS3.3 C.8.8.3).
        let dose_grid_scaling = number(scanned.value(0x3004_000E))
            .filter(|s| *s > 0.0)
            .unwrap_or(1.0);
        Ok(Self {
            pixels: u64::from(meta.rows.unwrap_or(0)) * u64::from(meta.columns.unwrap_or(0)),
            columns: meta.columns.unwrap_or(0),
            samples: meta.samples_per_pixel,
            bits_allocated,
            bits_stored,
            signed: us(0x0028_0103) == Some(1),
            planar: codestream.is_none() && us(0x0028_0006) == Some(1),
            big_endian: scanned.syntax.big_endian,
            photometric,
            slope: meta.rescale_slope * dose_grid_scaling,
            intercept: meta.rescale_intercept,
        })
    }

    pub(crate) fn bytes_per_sample(&self) -> u32 {
        self.bits_allocated.div_ceil(8)
    }

    /// Samples stored for one frame: 4:2:2 keeps two per pixel.
    pub(crate) fn stored_samples(&self) -> u64 {
        let per_pixel = if self.photometric == Photometric::YbrFull422 {
            2
        } else {
            self.samples
        };
        self.pixels * u64::from(per_pixel)
    }

    pub(crate) fn geometry(&self) -> Geometry {
        Geometry {
            pixels: self.pixels,
            columns: self.columns,
            samples: self.samples,
            bytes_per_sample: self.bytes_per_sample(),
        }
    }
}

/// One frame's samples: as stored (uncompressed), or as a decoder left them
/// (little endian, pixel by pixel).
pub(crate) struct Samples<'a> {
    pub(crate) data: Cow<'a, [u8]>,
    /// Bytes per sample: 1, 2 or 4 (1-bit samples are unpacked to bytes).
    pub(crate) width: usize,
    pub(crate) big_endian: bool,
}

impl Samples<'_> {
    /// Each sample as an unsigned number, Bits Stored of it kept.
    fn raw(&self, bits_stored: u32) -> impl Iterator<Item = u32> + '_ {
        let mask = u32::MAX >> (32 - bits_stored.clamp(1, 32));
        let big_endian = self.big_endian;
        self.data.chunks_exact(self.width).map(move |c| {
            let v = match (c, big_endian) {
                ([a], _) => u32::from(*a),
                ([a, b], false) => u32::from(u16::from_le_bytes([*a, *b])),
                ([a, b], true) => u32::from(u16::from_be_bytes([*a, *b])),
                ([a, b, c, d], false) => u32::from_le_bytes([*a, *b, *c, *d]),
                ([a, b, c, d], true) => u32::from_be_bytes([*a, *b, *c, *d]),
                _ => 0,
            };
            v & mask
        })
    }

    /// Each sample's stored value, sign-extended when Pixel Representation is 1.
    fn stored(&self, l: &Layout) -> impl Iterator<Item = i64> + '_ {
        let top = 1i64 << l.bits_stored;
        let (signed, sign) = (l.signed, top >> 1);
        self.raw(l.bits_stored).map(move |raw| {
            let raw = i64::from(raw);
            if signed && raw >= sign {
                raw - top
            } else {
                raw
            }
        })
    }
}

/// A palette colour image's red, green and blue lookup tables (PS3.3
/// C.7.6.3.1.5–6), each entry as 8 bits. They lie before the pixel data, in
/// the intake walk's copy of the data set, which dicom-rs reads here.
struct Palette {
    /// The stored value the first entry maps; lower ones get the first entry.
    first: i64,
    tables: [Vec<u8>; 3],
}

impl Palette {
    fn of(scanned: &Scanned) -> Result<Self, RenderError> {
        let obj = dicom_object::OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Always)
            .read_until(dicom_dictionary_std::tags::PIXEL_DATA)
            .from_reader(scanned.header.as_slice())
            .map_err(|e| RenderError::Open(e.to_string()))?;
        let missing = || {
            RenderError::UnsupportedPhotometric(
                "PALETTE COLOR without its lookup tables (segmented tables are not supported)"
                    .into(),
            )
        };
        let mut first = 0;
        let mut tables: [Vec<u8>; 3] = Default::default();
        for (k, table) in tables.iter_mut().enumerate() {
            let element = |element: u16| obj.element(dicom_core::Tag(0x0028, element)).ok();
            let descriptor = element(0x1101 + k as u16)
                .and_then(|e| e.to_multi_int::<i32>().ok())
                .ok_or_else(missing)?;
            let data = element(0x1201 + k as u16)
                .and_then(|e| e.to_bytes().ok())
                .ok_or_else(missing)?;
            let &[entries, mapped, bits] = descriptor.as_slice() else {
                return Err(missing());
            };
            // The count is unsigned whatever the VR (US or SS); 0 means 2^16.
            let entries = match entries as u16 {
                0 => 1 << 16,
                n => usize::from(n),
            };
            first = i64::from(mapped);
            // 8-bit entries may each take a 16-bit word: the data's length says.
            *table = match (data.len() / entries, bits) {
                (1, _) => data[..entries].to_vec(),
                (2, 16) => data
                    .chunks_exact(2)
                    .map(|c| (u16::from_le_bytes([c[0], c[1]]) >> 8) as u8)
                    .collect(),
                (2, _) => data
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]).min(255) as u8)
                    .collect(),
                _ => return Err(missing()),
            };
        }
        Ok(Self { first, tables })
    }

    fn apply(&self, samples: &Samples<'_>, l: &Layout, n: usize) -> Result<Vec<u8>, RenderError> {
        let mut rgb = Vec::with_capacity(3 * n);
        for v in samples.stored(l).take(n) {
            for table in &self.tables {
                let last = table.len().saturating_sub(1);
                let i = usize::try_from(v - self.first).unwrap_or(0).min(last);
                rgb.push(table.get(i).copied().unwrap_or(0));
            }
        }
        if rgb.len() < 3 * n {
            return Err(too_small());
        }
        Ok(rgb)
    }
}

/// Renders frame `frame` (0-based) of the DICOM file in `bytes` as PNG.
pub fn render_png(bytes: &[u8], frame: u32, choice: WindowChoice) -> Result<Rendered, RenderError> {
    // The bounded intake walk first: every length checked, so dicom-rs below
    // cannot be made to allocate beyond the file it is given.
    let (meta, scanned) =
        crate::intake::scan_dicom(bytes).map_err(|e| RenderError::Open(e.to_string()))?;
    let plan = Plan::of(&meta, &scanned, frame)?;
    let frames = meta.frames;
    render_planned(&meta, &scanned, &plan, choice, |plan| {
        match plan.codestream {
            None => {
                let value = usize::try_from(plan.pixel.offset)
                    .ok()
                    .zip(plan.pixel.length.and_then(|n| usize::try_from(n).ok()))
                    .and_then(|(start, len)| bytes.get(start..)?.get(..len))
                    .ok_or_else(short)?;
                native_frame(value, 0, value.len() as u64, plan, frame)
            }
            Some(c) => crate::stream::compressed_frame(bytes, frame, frames, c, &plan.layout),
        }
    })
}

/// What rendering a frame needs from the walk, checked before any pixel is read.
pub(crate) struct Plan {
    pub(crate) pixel: PixelData,
    pub(crate) codestream: Option<Codestream>,
    pub(crate) layout: Layout,
    pub(crate) frame: u32,
}

impl Plan {
    pub(crate) fn of(meta: &DicomMeta, scanned: &Scanned, frame: u32) -> Result<Self, RenderError> {
        let Some(pixel) = scanned.pixel else {
            return Err(RenderError::NoPixelData);
        };
        if frame >= meta.frames {
            return Err(RenderError::NoSuchFrame {
                frame,
                frames: meta.frames,
            });
        }
        let pixels = u64::from(meta.rows.unwrap_or(0)) * u64::from(meta.columns.unwrap_or(0));
        if pixels > MAX_PIXELS {
            return Err(RenderError::TooLarge { pixels });
        }
        let codestream = decodable(&meta.transfer_syntax, pixel)?;
        let layout = Layout::of(meta, scanned, codestream)?;
        Ok(Self {
            pixel,
            codestream,
            layout,
            frame,
        })
    }

    /// The bytes of the native pixel value frame `frame` lies in: `[start,
    /// end)`, a byte wider each side (8-bit OW big endian reads pairs).
    pub(crate) fn native_bytes(&self) -> (u64, u64) {
        let l = &self.layout;
        let per_frame = l.stored_samples();
        let (start, end) = if l.bits_allocated == 1 {
            let first = u64::from(self.frame) * per_frame;
            (first / 8, (first + per_frame).div_ceil(8))
        } else {
            let len = per_frame * u64::from(l.bytes_per_sample());
            let start = u64::from(self.frame) * len;
            (start, start + len)
        };
        (start.saturating_sub(1), end + 1)
    }
}

/// Renders a planned frame whose samples `samples` reads.
pub(crate) fn render_planned<'a>(
    meta: &DicomMeta,
    scanned: &Scanned,
    plan: &Plan,
    choice: WindowChoice,
    samples: impl FnOnce(&Plan) -> Result<Samples<'a>, RenderError>,
) -> Result<Rendered, RenderError> {
    let layout = &plan.layout;
    let palette = match layout.photometric {
        Photometric::Palette => Some(Palette::of(scanned)?),
        _ => None,
    };
    let frames = meta.frames;
    // Decoders are third-party code fed untrusted data: a panic in one is a
    // slice that cannot be shown, not a crashed server.
    catch_unwind(AssertUnwindSafe(|| {
        let samples = samples(plan)?;
        let n = layout.pixels as usize;
        let (png, window) = match layout.photometric {
            Photometric::Monochrome { invert } => {
                let file_window = meta.window;
                let (gray, window) = monochrome(&samples, layout, n, choice, file_window)?;
                let gray = if invert {
                    gray.into_iter().map(|g| 255 - g).collect()
                } else {
                    gray
                };
                (
                    encode(&gray, meta, png::ColorType::Grayscale)?,
                    Some(window),
                )
            }
            _ => {
                let rgb = match &palette {
                    Some(palette) => palette.apply(&samples, layout, n)?,
                    None => colour(&samples, layout, n)?,
                };
                (encode(&rgb, meta, png::ColorType::Rgb)?, None)
            }
        };
        Ok(Rendered {
            png,
            width: meta.columns.unwrap_or(0),
            height: meta.rows.unwrap_or(0),
            window,
            frames,
        })
    }))
    .unwrap_or_else(|_| Err(RenderError::Undecodable("the decoder failed".into())))
}

/// `None` for uncompressed pixel data, else the codestream, when
/// dicom-pixeldata has a decoder for it here (without system libraries).
fn decodable(transfer_syntax: &str, pixel: PixelData) -> Result<Option<Codestream>, RenderError> {
    let Some(entry) = TransferSyntaxRegistry.get(transfer_syntax) else {
        return Err(RenderError::UnsupportedTransferSyntax(format!(
            "{transfer_syntax} (unknown)"
        )));
    };
    let compressed = pixel.length.is_none();
    if compressed != entry.is_encapsulated_pixel_data() {
        return Err(RenderError::Undecodable(format!(
            "the pixel data is {} but {} says otherwise",
            if compressed {
                "in fragments"
            } else {
                "one uncompressed value"
            },
            entry.name()
        )));
    }
    if !entry.can_decode_all() {
        return Err(RenderError::UnsupportedTransferSyntax(format!(
            "{} ({transfer_syntax})",
            entry.name()
        )));
    }
    Ok(compressed.then(|| Codestream::of(transfer_syntax)))
}

fn short() -> RenderError {
    RenderError::Undecodable("the pixel data is shorter than its frames".into())
}

/// Frame `frame` of uncompressed pixel data, borrowed from `window`: the
/// bytes of the pixel value (`value_len` long) from byte `base` on.
pub(crate) fn native_frame<'a>(
    window: &'a [u8],
    base: u64,
    value_len: u64,
    plan: &Plan,
    frame: u32,
) -> Result<Samples<'a>, RenderError> {
    let l = &plan.layout;
    let byte = |k: u64| -> Option<u8> {
        if k >= value_len {
            return None;
        }
        window
            .get(usize::try_from(k.checked_sub(base)?).ok()?)
            .copied()
    };
    let per_frame = l.stored_samples();
    if l.bits_allocated == 1 {
        // Frames follow one another bit by bit, each pixel one bit, the
        // first in the least significant bit of a byte (PS3.5 8.1.1, D.2).
        let first = u64::from(frame) * per_frame;
        let bits = (first..first + per_frame)
            .map(|k| Some((byte(k / 8)? >> (k % 8)) & 1))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(short)?;
        return Ok(Samples {
            data: Cow::Owned(bits),
            width: 1,
            big_endian: false,
        });
    }
    let len = per_frame * u64::from(l.bytes_per_sample());
    let start = u64::from(frame) * len;
    if start.checked_add(len).is_none_or(|end| end > value_len) {
        return Err(short());
    }
    let data = if l.big_endian && l.bits_allocated == 8 && &plan.pixel.vr == b"OW" {
        // 8-bit samples in OW words, each word big endian (PS3.5 7.1.2):
        // the bytes of every pair are swapped.
        let swapped = (start..start + len)
            .map(|k| byte(k ^ 1))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(short)?;
        Cow::Owned(swapped)
    } else {
        let from = usize::try_from(start - base.min(start))
            .ok()
            .filter(|_| base <= start);
        let frame_bytes = from
            .zip(usize::try_from(len).ok())
            .and_then(|(from, len)| window.get(from..)?.get(..len))
            .ok_or_else(short)?;
        Cow::Borrowed(frame_bytes)
    };
    Ok(Samples {
        data,
        width: l.bytes_per_sample() as usize,
        big_endian: l.big_endian,
    })
}

fn too_small() -> RenderError {
    RenderError::Undecodable("the decoded frame is smaller than its geometry".into())
}

/// Grey levels of a monochrome frame and the window applied.
fn monochrome(
    samples: &Samples<'_>,
    l: &Layout,
    n: usize,
    choice: WindowChoice,
    file_window: Option<Window>,
) -> Result<(Vec<u8>, Window), RenderError> {
    let values: Vec<f32> = samples
        .stored(l)
        .take(n)
        .map(|v| (v as f64 * l.slope + l.intercept) as f32)
        .collect();
    if values.len() < n {
        return Err(too_small());
    }
    let window = match choice {
        WindowChoice::Custom(w) => w,
        WindowChoice::Preset(p) => match p.window().or(file_window) {
            Some(w) => w,
            None => full_range(
                &values,
                l.slope.fract() == 0.0 && l.intercept.fract() == 0.0,
            ),
        },
    };
    let gray = values
        .iter()
        .map(|&v| apply_window(f64::from(v), window))
        .collect();
    Ok((gray, window))
}

/// The window of a frame whose file has none: its lowest modality value black,
/// its highest white. A dose map has no window and no VOI LUT, and no fixed
/// window suits every plan's dose; the frame's own range always shows the
/// whole of it, in the file's units (Gy for a dose).
///
/// Integer values (`integral`: stored values through an integer slope and
/// intercept) get the linear window that maps exactly that range; others the
/// range itself, widened outward to four significant digits so the window
/// reads as the file's units (0.795–1.254 Gy: centre 1.0245, width 0.459).
fn full_range(values: &[f32], integral: bool) -> Window {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| {
            (lo.min(f64::from(v)), hi.max(f64::from(v)))
        });
    if lo > hi {
        return Window {
            center: 0.0,
            width: 1.0,
        };
    }
    let span = hi - lo;
    if integral || span == 0.0 {
        let width = span.max(1.0) + 1.0;
        return Window {
            center: lo + width / 2.0,
            width,
        };
    }
    // Work in whole steps of 10^e so the ends print as written.
    let e = span.log10().floor() as i32 - 3;
    let (scale, step) = if e < 0 {
        (10f64.powi(-e), 1.0)
    } else {
        (1.0, 10f64.powi(e))
    };
    let (lo, hi) = ((lo * scale / step).floor(), (hi * scale / step).ceil());
    Window {
        center: (lo + hi) / 2.0 * step / scale,
        width: (hi - lo) * step / scale,
    }
}

/// Interleaved 8-bit RGB from RGB or YBR_FULL(_422) samples; samples wider
/// than 8 bits keep their 8 most significant stored bits.
fn colour(samples: &Samples<'_>, l: &Layout, n: usize) -> Result<Vec<u8>, RenderError> {
    let shift = l.bits_stored.saturating_sub(8);
    let eight: Vec<u8> = samples
        .raw(l.bits_stored)
        .map(|v| (v >> shift) as u8)
        .collect();
    let mut rgb = match l.photometric {
        Photometric::YbrFull422 => {
            if !n.is_multiple_of(2) {
                return Err(RenderError::UnsupportedPhotometric(
                    "YBR_FULL_422 with an odd number of pixels".into(),
                ));
            }
            if eight.len() < 2 * n {
                return Err(too_small());
            }
            eight[..2 * n]
                .chunks_exact(4)
                .flat_map(|q| [q[0], q[2], q[3], q[1], q[2], q[3]])
                .collect()
        }
        _ if eight.len() < 3 * n => return Err(too_small()),
        _ if l.planar => {
            let (r, rest) = eight.split_at(n);
            let (g, b) = rest.split_at(n);
            (0..n).flat_map(|i| [r[i], g[i], b[i]]).collect()
        }
        _ => {
            let mut eight = eight;
            eight.truncate(3 * n);
            eight
        }
    };
    if matches!(
        l.photometric,
        Photometric::YbrFull | Photometric::YbrFull422
    ) {
        for p in rgb.chunks_exact_mut(3) {
            let (y, cb, cr) = (
                f32::from(p[0]),
                f32::from(p[1]) - 128.0,
                f32::from(p[2]) - 128.0,
            );
            let r = y + 1.402 * cr;
            let g = y - (0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr;
            let b = y + 1.772 * cb;
            p[0] = r.round().clamp(0.0, 255.0) as u8;
            p[1] = g.round().clamp(0.0, 255.0) as u8;
            p[2] = b.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(rgb)
}

fn encode(pixels: &[u8], meta: &DicomMeta, colour: png::ColorType) -> Result<Vec<u8>, RenderError> {
    let (width, height) = (meta.columns.unwrap_or(0), meta.rows.unwrap_or(0));
    let mut out = Vec::with_capacity(pixels.len() / 2 + 1024);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder
        .write_header()
        .map_err(|e| RenderError::Encode(e.to_string()))?;
    writer
        .write_image_data(pixels)
        .map_err(|e| RenderError::Encode(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| RenderError::Encode(e.to_string()))?;
    Ok(out)
}
