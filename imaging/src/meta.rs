//! What intake learns about one DICOM instance: where it belongs (study,
//! series), what it shows, and how to display it. Patient data: this goes
//! only inside sealed envelopes, never into logs or clear columns.

use serde::{Deserialize, Serialize};

use crate::charset::{Charsets, trim_value};
use crate::error::{IntakeError, RequiredTag};
use crate::scan::Scanned;

/// A window centre/width pair (VOI LUT, PS3.3 C.11.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DicomMeta {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub modality: String,
    pub patient_id: String,
    /// As written (`Family^Given=漢字=かな`), decoded from the file's character set.
    pub patient_name: String,
    /// `YYYY-MM-DD` when the file has a valid date.
    pub study_date: Option<String>,
    pub study_description: String,
    pub series_description: String,
    pub body_part: String,
    pub series_number: Option<i64>,
    pub instance_number: Option<i64>,
    pub rows: Option<u32>,
    pub columns: Option<u32>,
    pub frames: u32,
    pub samples_per_pixel: u32,
    pub bits_allocated: Option<u32>,
    #[serde(default)]
    pub bits_stored: Option<u32>,
    pub photometric_interpretation: String,
    pub transfer_syntax: String,
    /// The file's own default window, when it has one.
    pub window: Option<Window>,
    pub rescale_slope: f64,
    pub rescale_intercept: f64,
    pub has_pixel_data: bool,
}

impl std::fmt::Debug for DicomMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DicomMeta")
            .field("modality", &self.modality)
            .field("rows", &self.rows)
            .field("columns", &self.columns)
            .field("frames", &self.frames)
            .field("transfer_syntax", &self.transfer_syntax)
            .field("patient", &"<redacted>")
            .finish()
    }
}

fn ascii(raw: Option<&[u8]>) -> String {
    raw.map(|v| String::from_utf8_lossy(trim_value(v)).into_owned())
        .unwrap_or_default()
}

/// First value of a decimal or integer string (`DS`, `IS`), which may be multi-valued.
pub(crate) fn number(raw: Option<&[u8]>) -> Option<f64> {
    let s = ascii(raw);
    s.split('\\')
        .next()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

fn date(raw: Option<&[u8]>) -> Option<String> {
    let s = ascii(raw);
    let d = s.get(0..8)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, day) = (&d[0..4], &d[4..6], &d[6..8]);
    let (mi, di): (u32, u32) = (m.parse().ok()?, day.parse().ok()?);
    ((1..=12).contains(&mi) && (1..=31).contains(&di)).then(|| format!("{y}-{m}-{day}"))
}

impl DicomMeta {
    pub(crate) fn from_scan(scan: &Scanned) -> Result<Self, IntakeError> {
        let v = |tag: u32| scan.value(tag);
        let charsets = Charsets::from_value(v(0x0008_0005).unwrap_or(&[]));
        let text = |tag: u32| v(tag).map(|r| charsets.decode(r)).unwrap_or_default();
        let us = |tag: u32| -> Option<u32> {
            let r = v(tag)?;
            (r.len() >= 2).then(|| {
                let a = [r[0], r[1]];
                u32::from(if scan.syntax.big_endian {
                    u16::from_be_bytes(a)
                } else {
                    u16::from_le_bytes(a)
                })
            })
        };
        let require = |tag: u32, what: RequiredTag| -> Result<String, IntakeError> {
            let s = ascii(v(tag));
            if s.is_empty() {
                Err(IntakeError::Missing(what))
            } else {
                Ok(s)
            }
        };
        let meta = DicomMeta {
            sop_instance_uid: require(0x0008_0018, RequiredTag::SopInstanceUid)?,
            study_instance_uid: require(0x0020_000D, RequiredTag::StudyInstanceUid)?,
            series_instance_uid: require(0x0020_000E, RequiredTag::SeriesInstanceUid)?,
            modality: require(0x0008_0060, RequiredTag::Modality)?,
            sop_class_uid: ascii(v(0x0008_0016)),
            patient_id: text(0x0010_0020),
            patient_name: text(0x0010_0010),
            study_date: date(v(0x0008_0020)),
            study_description: text(0x0008_1030),
            series_description: text(0x0008_103E),
            body_part: ascii(v(0x0018_0015)),
            series_number: number(v(0x0020_0011)).map(|n| n as i64),
            instance_number: number(v(0x0020_0013)).map(|n| n as i64),
            rows: us(0x0028_0010),
            columns: us(0x0028_0011),
            frames: number(v(0x0028_0008))
                .map(|n| n.max(1.0).min(u32::MAX as f64) as u32)
                .unwrap_or(1),
            samples_per_pixel: us(0x0028_0002).unwrap_or(1),
            bits_allocated: us(0x0028_0100),
            bits_stored: us(0x0028_0101),
            photometric_interpretation: ascii(v(0x0028_0004)),
            transfer_syntax: ascii(v(0x0002_0010)),
            window: match (number(v(0x0028_1050)), number(v(0x0028_1051))) {
                (Some(center), Some(width)) if width > 0.0 => Some(Window { center, width }),
                _ => None,
            },
            rescale_slope: number(v(0x0028_1053)).unwrap_or(1.0),
            rescale_intercept: number(v(0x0028_1052)).unwrap_or(0.0),
            has_pixel_data: scan.pixel.is_some(),
        };
        meta.check_geometry(scan)?;
        Ok(meta)
    }

    /// Native (uncompressed) pixel data must hold every frame the geometry
    /// declares; compressed data is checked by the decoder when shown.
    fn check_geometry(&self, scan: &Scanned) -> Result<(), IntakeError> {
        let Some(pixel) = scan.pixel else {
            return Ok(());
        };
        let Some(actual) = pixel.length else {
            return Ok(());
        };
        let (Some(rows), Some(columns), Some(bits)) =
            (self.rows, self.columns, self.bits_allocated)
        else {
            return Err(IntakeError::Malformed(
                "the file has pixel data but no Rows, Columns or Bits Allocated".into(),
            ));
        };
        // 4:2:2 subsampled colour stores two samples per pixel (PS3.3 C.7.6.3.1.2).
        let samples = if self.photometric_interpretation.ends_with("_422") {
            2
        } else {
            self.samples_per_pixel as u128
        };
        let bits_total =
            rows as u128 * columns as u128 * samples * self.frames as u128 * bits as u128;
        let expected = bits_total.div_ceil(8);
        if rows == 0 || columns == 0 || bits == 0 || (actual as u128) < expected {
            return Err(IntakeError::PixelGeometry {
                rows,
                columns,
                frames: self.frames,
                expected: u64::try_from(expected).unwrap_or(u64::MAX),
                actual,
            });
        }
        Ok(())
    }
}
