//! One frame of a DICOM instance as an 8-bit PNG: decoded by dicom-pixeldata
//! (native, RLE, JPEG baseline/extended/lossless, JPEG 2000 through openjp2),
//! the modality LUT (rescale slope/intercept) applied, then a window
//! (PS3.3 C.11.2.1.2, linear), MONOCHROME1 inverted; colour images as RGB.

use std::panic::{AssertUnwindSafe, catch_unwind};

use dicom_pixeldata::{
    ConvertOptions, ModalityLutOption, PhotometricInterpretation, PixelDecoder,
    PlanarConfiguration, VoiLutOption,
};
use serde::{Deserialize, Serialize};

use crate::error::RenderError;
use crate::intake::{Checked, check_bytes};
use crate::meta::Window;

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

/// Maps a modality value to 0..=255 through a linear window (PS3.3 C.11.2.1.2.1).
pub fn apply_window(x: f64, w: Window) -> u8 {
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

fn undecodable(e: impl std::fmt::Display) -> RenderError {
    RenderError::Undecodable(e.to_string())
}

/// Renders frame `frame` (0-based) of the DICOM file in `bytes` as PNG.
pub fn render_png(bytes: &[u8], frame: u32, choice: WindowChoice) -> Result<Rendered, RenderError> {
    // The bounded intake walk first: every length checked, so dicom-rs below
    // cannot be made to allocate beyond the file it is given.
    let meta = match check_bytes("", "application/dicom", bytes) {
        Ok(Checked::Dicom(meta)) => meta,
        Ok(_) => return Err(RenderError::Open("not DICOM".into())),
        Err(e) => return Err(RenderError::Open(e.to_string())),
    };
    if !meta.has_pixel_data {
        return Err(RenderError::NoPixelData);
    }
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
    // dicom-pixeldata asserts (panics) on these instead of returning an error.
    if let (Some(stored), Some(allocated)) = (meta.bits_stored, meta.bits_allocated)
        && (stored == 0 || stored > allocated || stored > 32)
    {
        return Err(RenderError::Undecodable(format!(
            "{stored} bits stored in {allocated}-bit samples"
        )));
    }
    let native = matches!(
        meta.transfer_syntax.as_str(),
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2"
    );
    if native && meta.photometric_interpretation.ends_with("_422") {
        // dicom-pixeldata does not unpack subsampled uncompressed colour.
        return Err(RenderError::UnsupportedPhotometric(format!(
            "{} (uncompressed)",
            meta.photometric_interpretation
        )));
    }
    let file_window = meta.window;
    let frames = meta.frames;
    let geometry = Geometry {
        pixels,
        columns: meta.columns.unwrap_or(0),
        samples: meta.samples_per_pixel,
        segments: u64::from(meta.samples_per_pixel)
            * u64::from(meta.bits_allocated.unwrap_or(8).div_ceil(8)),
    };
    let transfer_syntax = meta.transfer_syntax.clone();
    // Decoders are third-party code fed untrusted data: a panic in one is a
    // slice that cannot be shown, not a crashed server.
    catch_unwind(AssertUnwindSafe(|| {
        decode_and_encode(
            bytes,
            frame,
            choice,
            file_window,
            frames,
            &transfer_syntax,
            geometry,
        )
    }))
    .unwrap_or_else(|_| Err(RenderError::Undecodable("the decoder failed".into())))
}

/// What an RLE frame must decode to.
#[derive(Clone, Copy)]
struct Geometry {
    pixels: u64,
    columns: u32,
    samples: u32,
    segments: u64,
}

const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Output length of one PackBits segment (PS3.5 G.3.1), without decoding it.
fn packbits_len(segment: &[u8]) -> u64 {
    let (mut i, mut out) = (0usize, 0u64);
    while i < segment.len() {
        let n = segment[i] as i8;
        i += 1;
        match n {
            0..=127 => {
                let run = n as usize + 1;
                out += run.min(segment.len().saturating_sub(i)) as u64;
                i += run;
            }
            -127..=-1 => {
                if i < segment.len() {
                    out += (1 - n as i64) as u64;
                }
                i += 1;
            }
            _ => {}
        }
    }
    out
}

/// dicom-rs's RLE decoder trusts the segment header: a count of 2³² segments
/// makes it allocate 16 GiB, a short segment makes it index out of bounds.
/// The header and every segment are checked here first (PS3.5 G.5).
fn check_rle(fragment: &[u8], g: Geometry) -> Result<(), RenderError> {
    let bad = |why: &str| Err(RenderError::Undecodable(format!("invalid RLE data: {why}")));
    if fragment.len() < 64 {
        return bad("the frame is shorter than its header");
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            fragment[i],
            fragment[i + 1],
            fragment[i + 2],
            fragment[i + 3],
        ]) as u64
    };
    let count = word(0);
    if count == 0 || count > 15 || count != g.segments {
        return bad("the segment count does not fit the image");
    }
    let mut offsets: Vec<u64> = (1..=count as usize).map(|k| word(4 * k)).collect();
    offsets.push(fragment.len() as u64);
    if offsets[0] != 64 || offsets.windows(2).any(|w| w[0] > w[1]) {
        return bad("the segment offsets are out of order or past the end");
    }
    for w in offsets.windows(2) {
        if packbits_len(&fragment[w[0] as usize..w[1] as usize]) < g.pixels {
            return bad("a segment holds fewer pixels than the image");
        }
    }
    Ok(())
}

const J2K_SOC_SIZ: &[u8] = &[0xFF, 0x4F, 0xFF, 0x51];

/// dicom-rs copies every decoded JPEG 2000 sample into a frame sized by Rows
/// and Columns, indexing past it when the codestream is larger (a panic the
/// fuzzer found), and lets one component too many through. The codestream's
/// image size (SIZ, ISO 15444-1 A.5.1) must match the geometry first.
fn check_jpeg2000(fragment: &[u8], g: Geometry) -> Result<(), RenderError> {
    let bad = |why: &str| {
        Err(RenderError::Undecodable(format!(
            "invalid JPEG 2000 data: {why}"
        )))
    };
    let Some(at) = fragment.windows(4).position(|w| w == J2K_SOC_SIZ) else {
        return bad("no image header");
    };
    let siz = &fragment[at + 4..];
    if siz.len() < 38 {
        return bad("the image header is cut short");
    }
    let word = |i: usize| u32::from_be_bytes([siz[i], siz[i + 1], siz[i + 2], siz[i + 3]]);
    // Lsiz, Rsiz, then Xsiz, Ysiz, XOsiz, YOsiz (… Csiz at 36).
    let (width, height) = (
        word(4).saturating_sub(word(12)),
        word(8).saturating_sub(word(16)),
    );
    let components = u16::from_be_bytes([siz[36], siz[37]]);
    if u64::from(width) * u64::from(height) != g.pixels
        || u64::from(width) != u64::from(g.columns)
        || u64::from(components) != u64::from(g.samples)
    {
        return bad("its size or components do not match the image geometry");
    }
    Ok(())
}

fn decode_and_encode(
    bytes: &[u8],
    frame: u32,
    choice: WindowChoice,
    file_window: Option<Window>,
    frames: u32,
    transfer_syntax: &str,
    geometry: Geometry,
) -> Result<Rendered, RenderError> {
    let obj = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .from_reader(bytes)
        .map_err(|e| RenderError::Open(e.to_string()))?;
    if transfer_syntax == RLE_LOSSLESS {
        let fragments = obj
            .element(dicom_dictionary_std::tags::PIXEL_DATA)
            .ok()
            .and_then(|e| e.value().fragments());
        let fragment = fragments
            .and_then(|f| f.get(frame as usize))
            .ok_or_else(|| {
                RenderError::Undecodable(format!("no RLE fragment for frame {frame}"))
            })?;
        check_rle(fragment, geometry)?;
    }
    if transfer_syntax.starts_with("1.2.840.10008.1.2.4.9") {
        let fragments = obj
            .element(dicom_dictionary_std::tags::PIXEL_DATA)
            .ok()
            .and_then(|e| e.value().fragments())
            .unwrap_or(&[]);
        let fragment = if fragments.len() == frames as usize {
            fragments.get(frame as usize)
        } else {
            fragments
                .iter()
                .find(|f| f.windows(4).any(|w| w == J2K_SOC_SIZ))
        };
        check_jpeg2000(fragment.map_or(&[][..], Vec::as_slice), geometry)?;
    }
    let decoded = obj.decode_pixel_data_frame(frame).map_err(undecodable)?;
    let (width, height) = (decoded.columns(), decoded.rows());
    let n = width as usize * height as usize;
    let photometric = decoded.photometric_interpretation().clone();
    if photometric.is_monochrome() {
        let options = ConvertOptions::new()
            .with_modality_lut(ModalityLutOption::Default)
            .with_voi_lut(VoiLutOption::Identity);
        let values: Vec<f32> = decoded
            .to_vec_frame_with_options(0, &options)
            .map_err(undecodable)?;
        if values.len() < n {
            return Err(RenderError::Undecodable(
                "the decoded frame is smaller than its geometry".into(),
            ));
        }
        let window = match choice {
            WindowChoice::Custom(w) => w,
            WindowChoice::Preset(p) => match p.window().or(file_window) {
                Some(w) => w,
                None => full_range(&values[..n]),
            },
        };
        let invert = photometric == PhotometricInterpretation::Monochrome1;
        let gray: Vec<u8> = values[..n]
            .iter()
            .map(|&v| {
                let g = apply_window(f64::from(v), window);
                if invert { 255 - g } else { g }
            })
            .collect();
        let png = encode(&gray, width, height, png::ColorType::Grayscale)?;
        return Ok(Rendered {
            png,
            width,
            height,
            window: Some(window),
            frames,
        });
    }
    let rgb = colour(&decoded, &photometric, n)?;
    let png = encode(&rgb, width, height, png::ColorType::Rgb)?;
    Ok(Rendered {
        png,
        width,
        height,
        window: None,
        frames,
    })
}

fn full_range(values: &[f32]) -> Window {
    let (lo, hi) = values
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return Window {
            center: 0.0,
            width: 1.0,
        };
    }
    let width = f64::from(hi - lo).max(1.0) + 1.0;
    Window {
        center: f64::from(lo) + width / 2.0,
        width,
    }
}

/// Interleaved 8-bit RGB from RGB or YBR_FULL(_422) samples.
fn colour(
    decoded: &dicom_pixeldata::DecodedPixelData<'_>,
    photometric: &PhotometricInterpretation,
    n: usize,
) -> Result<Vec<u8>, RenderError> {
    let ybr = match photometric {
        PhotometricInterpretation::Rgb => false,
        PhotometricInterpretation::YbrFull | PhotometricInterpretation::YbrFull422 => true,
        other => return Err(RenderError::UnsupportedPhotometric(other.to_string())),
    };
    if decoded.samples_per_pixel() != 3 {
        return Err(RenderError::Undecodable(format!(
            "{photometric} with {} samples per pixel",
            decoded.samples_per_pixel()
        )));
    }
    let data = decoded.frame_data(0).map_err(undecodable)?;
    let samples: Vec<u8> = match decoded.bits_allocated() {
        8 => data.to_vec(),
        16 => {
            let shift = decoded.bits_stored().saturating_sub(8).min(8);
            data.chunks_exact(2)
                .map(|c| (u16::from_le_bytes([c[0], c[1]]) >> shift).min(255) as u8)
                .collect()
        }
        b => return Err(RenderError::Undecodable(format!("{b}-bit colour"))),
    };
    if samples.len() < 3 * n {
        return Err(RenderError::Undecodable(
            "the decoded frame is smaller than its geometry".into(),
        ));
    }
    let mut rgb = if decoded.planar_configuration() == PlanarConfiguration::Standard {
        samples[..3 * n].to_vec()
    } else {
        let (r, rest) = samples.split_at(n);
        let (g, b) = rest.split_at(n);
        (0..n).flat_map(|i| [r[i], g[i], b[i]]).collect()
    };
    if ybr {
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

fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    colour: png::ColorType,
) -> Result<Vec<u8>, RenderError> {
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
