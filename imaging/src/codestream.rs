//! Compressed frames checked before a third-party decoder sees them, and the
//! one decoder written here. dicom-rs trusted the RLE segment header and the
//! JPEG 2000 image size (allocating by one, indexing past the frame by the
//! other), and gives one generic error for a JPEG the pure-Rust decoder does not
//! implement; each is looked at first, so a refusal says what is wrong.

use crate::error::RenderError;

/// What a frame must decode to.
#[derive(Clone, Copy)]
pub(crate) struct Geometry {
    pub pixels: u64,
    pub columns: u32,
    pub samples: u32,
    /// Bytes per sample (1, 2 or 4).
    pub bytes_per_sample: u32,
}

impl Geometry {
    /// RLE segments per frame: one per byte of each sample (PS3.5 G.2).
    fn segments(self) -> u64 {
        u64::from(self.samples) * u64::from(self.bytes_per_sample)
    }
}

fn undecodable(what: &str, why: &str) -> RenderError {
    RenderError::Undecodable(format!("invalid {what} data: {why}"))
}

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

/// The first `len` bytes a PackBits segment decodes to (PS3.5 G.3.1);
/// [`check_rle`] has made sure it holds that many.
fn unpack_bits(segment: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    let mut i = 0usize;
    while i < segment.len() && out.len() < len {
        let n = segment[i] as i8;
        i += 1;
        match n {
            0..=127 => {
                let end = (i + n as usize + 1).min(segment.len());
                out.extend_from_slice(&segment[i..end]);
                i = end;
            }
            -127..=-1 => {
                if let Some(&byte) = segment.get(i) {
                    out.resize(out.len() + (1 - n as isize) as usize, byte);
                }
                i += 1;
            }
            _ => {}
        }
    }
    out.truncate(len);
    out
}

fn rle_offsets(fragment: &[u8]) -> Vec<u64> {
    let word = |i: usize| {
        u32::from_le_bytes([
            fragment[i],
            fragment[i + 1],
            fragment[i + 2],
            fragment[i + 3],
        ]) as u64
    };
    let count = word(0).min(15) as usize;
    let mut offsets: Vec<u64> = (1..=count).map(|k| word(4 * k)).collect();
    offsets.push(fragment.len() as u64);
    offsets
}

/// dicom-rs's RLE decoder trusts the segment header: a count of 2³² segments
/// makes it allocate 16 GiB, a short segment makes it index out of bounds.
/// The header and every segment are checked here first (PS3.5 G.5).
pub(crate) fn check_rle(fragment: &[u8], g: Geometry) -> Result<(), RenderError> {
    let bad = |why: &str| Err(undecodable("RLE", why));
    if fragment.len() < 64 {
        return bad("the frame is shorter than its header");
    }
    let count = u32::from_le_bytes([fragment[0], fragment[1], fragment[2], fragment[3]]) as u64;
    if count == 0 || count > 15 || count != g.segments() {
        return bad("the segment count does not fit the image");
    }
    let offsets = rle_offsets(fragment);
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

/// One RLE frame as little-endian samples, pixel by pixel (PS3.5 G.2: one
/// segment per byte of each sample, most significant first). dicom-rs decodes
/// 8- and 16-bit samples only; this is for 32-bit ones (an RT Dose, for
/// instance). The fragment must have passed [`check_rle`].
pub(crate) fn decode_rle(fragment: &[u8], g: Geometry) -> Vec<u8> {
    let (pixels, samples, width) = (
        g.pixels as usize,
        g.samples as usize,
        g.bytes_per_sample as usize,
    );
    let offsets = rle_offsets(fragment);
    let mut out = vec![0u8; pixels * samples * width];
    for (k, w) in offsets.windows(2).enumerate() {
        let (sample, byte) = (k / width, k % width);
        let plane = unpack_bits(&fragment[w[0] as usize..w[1] as usize], pixels);
        let first = sample * width + (width - 1 - byte);
        for (dst, src) in out[first..].iter_mut().step_by(samples * width).zip(plane) {
            *dst = src;
        }
    }
    out
}

const J2K_SOC_SIZ: &[u8] = &[0xFF, 0x4F, 0xFF, 0x51];
const JPEG_SOI: &[u8] = &[0xFF, 0xD8];

/// The fragment holding `frame`: one fragment per frame, or else the first
/// that starts a codestream (a single frame split over several fragments).
pub(crate) fn frame_fragment(
    fragments: &[Vec<u8>],
    frame: u32,
    frames: u32,
    codestream: Codestream,
) -> &[u8] {
    let fragment = if fragments.len() == frames as usize {
        fragments.get(frame as usize)
    } else {
        codestream.start().and_then(|start| {
            fragments
                .iter()
                .find(|f| f.windows(start.len()).any(|w| w == start))
        })
    };
    fragment.map_or(&[][..], Vec::as_slice)
}

/// Which codestream a compressed transfer syntax holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codestream {
    Rle,
    Jpeg,
    Jpeg2000,
    Other,
}

impl Codestream {
    pub fn of(transfer_syntax: &str) -> Self {
        match transfer_syntax {
            "1.2.840.10008.1.2.5" => Self::Rle,
            "1.2.840.10008.1.2.4.50"
            | "1.2.840.10008.1.2.4.51"
            | "1.2.840.10008.1.2.4.57"
            | "1.2.840.10008.1.2.4.70" => Self::Jpeg,
            ts if ts.starts_with("1.2.840.10008.1.2.4.9")
                || ts.starts_with("1.2.840.10008.1.2.4.20") =>
            {
                Self::Jpeg2000
            }
            _ => Self::Other,
        }
    }

    /// The marker a frame's codestream starts with.
    fn start(self) -> Option<&'static [u8]> {
        match self {
            Self::Jpeg => Some(JPEG_SOI),
            Self::Jpeg2000 => Some(J2K_SOC_SIZ),
            Self::Rle | Self::Other => None,
        }
    }
}

/// dicom-rs copies every decoded JPEG 2000 sample into a frame sized by Rows
/// and Columns, indexing past it when the codestream is larger (a panic the
/// fuzzer found), and lets one component too many through. The codestream's
/// image size (SIZ, ISO 15444-1 A.5.1) must match the geometry first.
pub(crate) fn check_jpeg2000(fragment: &[u8], g: Geometry) -> Result<(), RenderError> {
    let bad = |why: &str| Err(undecodable("JPEG 2000", why));
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

/// jpeg-decoder, the pure-Rust JPEG decoder, implements baseline, extended and
/// progressive DCT at 8 bits and lossless at 2–16 bits (ISO 10918-1); a 12-bit
/// DCT frame (JPEG Extended, process 4), arithmetic coding and hierarchical
/// frames are said so here rather than as its generic failure. The frame
/// header (SOFn, B.2.2) is found by walking the marker segments.
pub(crate) fn check_jpeg(fragment: &[u8]) -> Result<(), RenderError> {
    let Some(soi) = fragment.windows(2).position(|w| w == JPEG_SOI) else {
        return Err(undecodable("JPEG", "no start of image"));
    };
    let mut i = soi + 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while fragment.get(i) == Some(&0xFF) && fragment.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(0xFF), Some(&marker)) = (fragment.get(i), fragment.get(i + 1)) else {
            return Ok(()); // no frame header found: the decoder says what is wrong
        };
        i += 2;
        let unsupported = |what: String| Err(RenderError::UnsupportedCompression(what));
        match marker {
            // SOF0–SOF15 but DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let precision = fragment.get(i + 2).copied().unwrap_or(0);
                return match marker {
                    0xC3 => Ok(()),
                    0xC0..=0xC2 if precision == 8 => Ok(()),
                    0xC0..=0xC2 if precision == 12 => {
                        unsupported("12-bit lossy JPEG (JPEG Extended, process 4)".into())
                    }
                    0xC0..=0xC2 => Err(undecodable(
                        "JPEG",
                        &format!("a DCT frame of {precision} bits (8 or 12 exist)"),
                    )),
                    0xC5..=0xC7 => unsupported("hierarchical JPEG".into()),
                    _ => unsupported("arithmetic-coded JPEG".into()),
                };
            }
            // Markers without a length: TEM, RSTn, SOI.
            0x01 | 0xD0..=0xD8 => {}
            // Start of scan or end of image before any frame header.
            0xDA | 0xD9 => return Ok(()),
            _ => {
                let (Some(&hi), Some(&lo)) = (fragment.get(i), fragment.get(i + 1)) else {
                    return Ok(());
                };
                i += usize::from(u16::from_be_bytes([hi, lo]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packbits_literal(bytes: &[u8]) -> Vec<u8> {
        bytes
            .chunks(128)
            .flat_map(|c| std::iter::once((c.len() - 1) as u8).chain(c.iter().copied()))
            .collect()
    }

    #[test]
    fn a_32_bit_rle_frame_decodes_to_little_endian_samples() {
        // Two pixels, 0x01020304 and 0xA0B0C0D0: four segments, MSB first,
        // the second as a replicate run to cover both PackBits forms.
        let segments = [
            packbits_literal(&[0x01, 0xA0]),
            vec![0xFF, 0x02], // 0x02 twice: both pixels' second byte
            packbits_literal(&[0x03, 0xC0]),
            packbits_literal(&[0x04, 0xD0]),
        ];
        let mut fragment = vec![0u8; 64];
        fragment[..4].copy_from_slice(&4u32.to_le_bytes());
        for (k, s) in segments.iter().enumerate() {
            let offset = fragment.len() as u32;
            fragment[4 + 4 * k..8 + 4 * k].copy_from_slice(&offset.to_le_bytes());
            fragment.extend_from_slice(s);
        }
        let g = Geometry {
            pixels: 2,
            columns: 2,
            samples: 1,
            bytes_per_sample: 4,
        };
        check_rle(&fragment, g).unwrap();
        let out = decode_rle(&fragment, g);
        let values: Vec<u32> = out
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(values, [0x0102_0304, 0xA002_C0D0]);
    }

    #[test]
    fn a_12_bit_lossy_jpeg_is_named_not_failed() {
        // SOI, an APP0 segment to walk past, then SOF1 with P = 12.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB];
        jpeg.extend_from_slice(&[0xFF, 0xC1, 0x00, 0x0B, 12, 0, 1, 0, 1, 1, 1, 0x11, 0]);
        let err = check_jpeg(&jpeg).unwrap_err();
        assert_eq!(err.code(), "dicom_unsupported_compression", "{err}");
        assert!(err.to_string().contains("12-bit"), "{err}");
        jpeg[12] = 8;
        assert_eq!(check_jpeg(&jpeg), Ok(()));
        jpeg[12] = 85;
        assert_eq!(check_jpeg(&jpeg).unwrap_err().code(), "dicom_undecodable");
        // A length running off the end is left to the decoder, never a panic.
        assert_eq!(check_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF]), Ok(()));
    }
}
