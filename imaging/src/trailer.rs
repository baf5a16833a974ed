//! Where a JPEG or PNG image ends, found as its bytes stream past: data after
//! a JPEG's end-of-image marker or after a PNG's `IEND` chunk is refused — it
//! is where a second file (an archive, a script, a program) hides in an image
//! that still displays. An image that ends before its end marker is refused
//! too, since appended data would then sit inside the last segment.
//!
//! The JPEG walk follows marker segments by their lengths and entropy-coded
//! data to the next marker (`FF00` stuffing and restart markers inside it),
//! so an end-of-image marker inside an EXIF thumbnail is passed over with its
//! segment. Multi-picture JPEGs (MPO), which put further images after the
//! first one's end, are refused for the same reason.

use crate::error::IntakeError;
use crate::intake::ImageFormat;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Jpeg {
    /// Between segments: a marker's `FF` is next (stray bytes are passed, as
    /// decoders do).
    Marker,
    /// After `FF`: the marker code.
    Code,
    /// A segment length's first byte; `true` when a scan (SOS) follows.
    Length(bool),
    LengthLow(u8, bool),
    Skip(u32, bool),
    Entropy,
    EntropyFf,
    Ended,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Png {
    /// Signature bytes still to pass.
    Signature(u8),
    /// A chunk header (length and type) being read.
    Header([u8; 8], u8),
    /// Data and CRC of a chunk still to pass; `true` for `IEND`.
    Body(u64, bool),
    Ended,
}

/// The walk of one image to its end.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EndWalk {
    Jpeg(Jpeg),
    Png(Png),
}

fn trailing(format: ImageFormat) -> IntakeError {
    IntakeError::DataAfterEnd {
        format: format.name(),
    }
}

fn bad(format: ImageFormat, reason: &str) -> IntakeError {
    IntakeError::BadImage {
        format: format.name(),
        reason: reason.into(),
    }
}

impl EndWalk {
    pub(crate) fn new(format: ImageFormat) -> Self {
        match format {
            ImageFormat::Jpeg => Self::Jpeg(Jpeg::Marker),
            ImageFormat::Png => Self::Png(Png::Signature(8)),
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<(), IntakeError> {
        match self {
            Self::Jpeg(state) => jpeg(state, data),
            Self::Png(state) => png(state, data),
        }
    }

    pub(crate) fn finish(self) -> Result<(), IntakeError> {
        match self {
            Self::Jpeg(Jpeg::Ended) | Self::Png(Png::Ended) => Ok(()),
            Self::Jpeg(_) => Err(bad(
                ImageFormat::Jpeg,
                "it ends before its end-of-image marker",
            )),
            Self::Png(_) => Err(bad(ImageFormat::Png, "it ends before its IEND chunk")),
        }
    }
}

/// The state after marker `code` (the byte after `FF`).
fn after_marker(code: u8) -> Jpeg {
    match code {
        0xD9 => Jpeg::Ended,
        // SOI, TEM, RSTn and fill bytes stand alone.
        0xD8 | 0x01 | 0xD0..=0xD7 => Jpeg::Marker,
        0xFF => Jpeg::Code,
        0xDA => Jpeg::Length(true),
        _ => Jpeg::Length(false),
    }
}

fn jpeg(state: &mut Jpeg, mut data: &[u8]) -> Result<(), IntakeError> {
    while let Some(&b) = data.first() {
        let mut used = 1;
        *state = match *state {
            Jpeg::Ended => return Err(trailing(ImageFormat::Jpeg)),
            Jpeg::Marker if b == 0xFF => Jpeg::Code,
            Jpeg::Marker => Jpeg::Marker,
            Jpeg::Code => after_marker(b),
            Jpeg::Length(scan) => Jpeg::LengthLow(b, scan),
            Jpeg::LengthLow(high, scan) => {
                let len = u16::from_be_bytes([high, b]);
                if len < 2 {
                    return Err(bad(ImageFormat::Jpeg, "a segment length is below 2"));
                }
                match len - 2 {
                    0 if scan => Jpeg::Entropy,
                    0 => Jpeg::Marker,
                    n => Jpeg::Skip(u32::from(n), scan),
                }
            }
            Jpeg::Skip(left, scan) => {
                let n = (left as usize).min(data.len());
                used = n;
                match left - n as u32 {
                    0 if scan => Jpeg::Entropy,
                    0 => Jpeg::Marker,
                    rest => Jpeg::Skip(rest, scan),
                }
            }
            Jpeg::Entropy => match memchr::memchr(0xFF, data) {
                Some(at) => {
                    used = at + 1;
                    Jpeg::EntropyFf
                }
                None => {
                    used = data.len();
                    Jpeg::Entropy
                }
            },
            Jpeg::EntropyFf => match b {
                0x00 | 0xD0..=0xD7 => Jpeg::Entropy,
                0xFF => Jpeg::EntropyFf,
                code => after_marker(code),
            },
        };
        data = &data[used..];
    }
    Ok(())
}

fn png(state: &mut Png, mut data: &[u8]) -> Result<(), IntakeError> {
    while !data.is_empty() {
        let mut used = 1;
        *state = match *state {
            Png::Ended => return Err(trailing(ImageFormat::Png)),
            Png::Signature(left) => {
                let n = (left as usize).min(data.len());
                used = n;
                match left - n as u8 {
                    0 => Png::Header([0; 8], 0),
                    rest => Png::Signature(rest),
                }
            }
            Png::Header(mut header, have) => {
                header[have as usize] = data[0];
                if have < 7 {
                    Png::Header(header, have + 1)
                } else {
                    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
                    if len > 0x7FFF_FFFF {
                        return Err(bad(ImageFormat::Png, "a chunk length is out of range"));
                    }
                    Png::Body(u64::from(len) + 4, &header[4..8] == b"IEND")
                }
            }
            Png::Body(left, iend) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                used = n;
                match left - n as u64 {
                    0 if iend => Png::Ended,
                    0 => Png::Header([0; 8], 0),
                    rest => Png::Body(rest, iend),
                }
            }
        };
        data = &data[used..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn walk(format: ImageFormat, bytes: &[u8], chunk: usize) -> Result<(), IntakeError> {
        let mut w = EndWalk::new(format);
        bytes.chunks(chunk).try_for_each(|c| w.feed(c))?;
        w.finish()
    }

    #[test]
    fn a_jpeg_ends_at_its_end_marker_and_nothing_may_follow() {
        // SOI, APP1 holding a thumbnail's own SOI/EOI, SOS, scan data with
        // stuffing and a restart marker, EOI.
        let mut jpeg = b"\xFF\xD8\xFF\xE1\x00\x06\xFF\xD8\xFF\xD9\xFF\xDA\x00\x04\x01\x02".to_vec();
        jpeg.extend_from_slice(b"\x12\xFF\x00\x34\xFF\xD0\x56\xFF\xD9");
        for chunk in [1, 3, 64] {
            assert_eq!(walk(ImageFormat::Jpeg, &jpeg, chunk), Ok(()));
            let mut appended = jpeg.clone();
            appended.extend_from_slice(b"PK\x03\x04");
            assert_eq!(
                walk(ImageFormat::Jpeg, &appended, chunk),
                Err(trailing(ImageFormat::Jpeg))
            );
            let cut = &jpeg[..jpeg.len() - 2];
            assert_eq!(
                walk(ImageFormat::Jpeg, cut, chunk).unwrap_err().code(),
                "bad_image"
            );
        }
    }

    #[test]
    fn a_png_ends_at_iend_and_nothing_may_follow() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(b"\x00\x00\x00\x02abcd\x01\x02CRC!");
        png.extend_from_slice(b"\x00\x00\x00\x00IEND\xAE\x42\x60\x82");
        for chunk in [1, 5, 64] {
            assert_eq!(walk(ImageFormat::Png, &png, chunk), Ok(()));
            let mut appended = png.clone();
            appended.push(0);
            assert_eq!(
                walk(ImageFormat::Png, &appended, chunk),
                Err(trailing(ImageFormat::Png))
            );
        }
    }
}
