//! DICOM and image handling for Renkei: intake of untrusted files under a hard
//! memory bound, metadata (with the character sets Japanese files use),
//! studies and series, the wrong-patient guard, and rendering one frame as
//! PNG. No I/O beyond the readers and bytes it is given; no storage.

pub mod charset;
mod codestream;
pub mod error;
pub mod intake;
pub mod meta;
pub mod patient;
mod pdf_active;
pub mod render;
pub mod sample;
mod scan;
mod stream;
pub mod study;
mod trailer;

pub use error::{ActiveContent, IntakeError, RenderError, RequiredTag};
pub use intake::{
    Checked, ImageFormat, ImageInfo, Intake, check_bytes, check_file, check_reader, claims_dicom,
    stored_meta,
};
pub use meta::{DicomMeta, Window};
pub use patient::{
    Comparison, Mismatch, PatientMatch, differing_files, display_name, same_patient,
};
pub use pdf_active::{INFLATE_PER_FILE, INFLATE_PER_STREAM, check_pdf};
pub use render::{Preset, Rendered, WindowChoice, apply_window, render_png};
pub use scan::{HEADER_CAP, MAX_DEPTH};
pub use stream::{FRAME_CAP, FrameCapture};
pub use study::{InstanceRef, Series, Study, group};
