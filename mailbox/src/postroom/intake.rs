//! Imaging intake on the sending path. Every attachment streams through the
//! attachment policy and then an [`IntakeReader`], which hands each chunk to
//! `imaging::Intake` on its way into sealing: a file that claims to be DICOM (by name, media type or the
//! `DICM` marker) must be one that can be placed in a study, JPEG and PNG
//! must have a readable header, and a refusal fails the read before the
//! sealer sees the end of the file, so nothing of the item is stored.
//!
//! What intake learns — per-file metadata, studies and series, the
//! wrong-patient check — is sealed into the envelope as one more attachment
//! ([`RECORD_NAME`], [`RECORD_MEDIA_TYPE`]), written last, after every file
//! has been read. It is never kept in a clear column.
//!
//! A file named `.dcm` that the policy does not recognise is told it is not
//! DICOM; a recognised program keeps the policy's refusal; intake's refusals
//! carry its code (`not_dicom`, `dicom_truncated`, …) in
//! `Error::AttachmentRefused`. The record is hidden from
//! `OpenedItem.attachments` (so from the API, IMAP and PDFs) and read with
//! `Postroom::intake_record`. The wrong-patient guard: when the entered patient
//! (ID or name) differs from the patient inside DICOM files, the send fails
//! with `Error::PatientMismatch` (409, naming the files) after sealing and
//! before the commit, so nothing is kept; sending again with those file names
//! confirmed (`send_confirming`, `open_confirming`) seals `confirmed_by` into
//! the record and adds `patient_mismatch_confirmed=N` to the audit entry.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use imaging::{Checked, DicomMeta, ImageInfo, Intake, IntakeError, Mismatch, Study};
use serde::{Deserialize, Serialize};

use crate::postroom::attachment_policy::{Refusal, RefusedAttachment};

/// The sealed part that carries the intake record (the last attachment).
pub const RECORD_NAME: &str = "renkei-intake.json";
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.renkei.intake+json";

/// One attachment as intake saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub attachment: usize,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dicom: Option<DicomMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
}

/// The wrong-patient check of an item: the files whose patient differs from
/// the one entered, and the sender's confirmation of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientCheck {
    pub mismatches: Vec<Mismatch>,
    /// Set when the sender confirmed sending the differing files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
}

/// What is sealed as [`RECORD_NAME`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntakeRecord {
    pub files: Vec<FileRecord>,
    pub studies: Vec<Study>,
    pub patient_check: PatientCheck,
}

impl IntakeRecord {
    /// The DICOM metadata of attachment `index`, if it is a DICOM file.
    pub fn dicom(&self, index: usize) -> Option<&DicomMeta> {
        self.files
            .iter()
            .find(|f| f.attachment == index)
            .and_then(|f| f.dicom.as_ref())
    }
}

/// Files intake has finished with, shared by the readers of one item.
#[derive(Clone, Default)]
pub(crate) struct IntakeLog(Arc<Mutex<Vec<FileRecord>>>);

impl IntakeLog {
    fn push(&self, record: FileRecord) {
        if let Ok(mut files) = self.0.lock() {
            files.push(record);
        }
    }

    pub(crate) fn files(&self) -> Vec<FileRecord> {
        let mut files = self.0.lock().map(|f| f.clone()).unwrap_or_default();
        files.sort_by_key(|f| f.attachment);
        files
    }
}

/// The patient entered on the request, and what the sender confirmed.
#[derive(Clone, Default)]
pub(crate) struct EnteredPatient {
    pub id: String,
    pub name: String,
    /// File names the sender confirmed despite a differing patient.
    pub confirmed: Vec<String>,
    pub sender: String,
}

impl EnteredPatient {
    pub(crate) fn check(&self, files: &[FileRecord]) -> PatientCheck {
        let mismatches = if self.id.trim().is_empty() && self.name.trim().is_empty() {
            Vec::new()
        } else {
            imaging::differing_files(
                &self.id,
                &self.name,
                files.iter().filter_map(|f| {
                    f.dicom.as_ref().map(|m| {
                        (
                            f.name.as_str(),
                            m.patient_id.as_str(),
                            m.patient_name.as_str(),
                        )
                    })
                }),
            )
        };
        let confirmed =
            !mismatches.is_empty() && mismatches.iter().all(|m| self.confirmed.contains(&m.file));
        PatientCheck {
            mismatches,
            confirmed_by: confirmed.then(|| self.sender.clone()),
        }
    }
}

/// Builds the record from the finished files.
pub(crate) fn record(files: Vec<FileRecord>, patient: &EnteredPatient) -> IntakeRecord {
    let studies = imaging::group(
        files
            .iter()
            .filter_map(|f| f.dicom.as_ref().map(|m| (f.attachment, m))),
    );
    let patient_check = patient.check(&files);
    IntakeRecord {
        files,
        studies,
        patient_check,
    }
}

fn refused(name: &str, e: IntakeError) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        RefusedAttachment {
            name: name.to_string(),
            refusal: Refusal::Intake(e),
        },
    )
}

/// Passes an attachment through unchanged while intake judges it.
pub(crate) struct IntakeReader<R> {
    inner: R,
    index: usize,
    name: String,
    intake: Option<Intake>,
    log: IntakeLog,
    claims_dicom: bool,
}

impl<R: Read> IntakeReader<R> {
    pub(crate) fn new(
        inner: R,
        index: usize,
        name: &str,
        media_type: &str,
        log: IntakeLog,
    ) -> Self {
        Self {
            inner,
            index,
            claims_dicom: imaging::claims_dicom(name, media_type),
            name: name.to_string(),
            intake: Some(Intake::new(name, media_type)),
            log,
        }
    }
}

impl<R: Read> IntakeReader<R> {
    /// A file that claims to be DICOM and is none of the allow-list is told
    /// it is not DICOM; what the policy recognised (a program, a macro
    /// document) is named as such.
    fn refine(&self, e: io::Error) -> io::Error {
        let not_accepted = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<RefusedAttachment>())
            .is_some_and(|r| r.refusal == Refusal::NotAccepted);
        if not_accepted && self.claims_dicom {
            refused(&self.name, IntakeError::NotDicom)
        } else {
            e
        }
    }
}

impl<R: Read> Read for IntakeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| self.refine(e))?;
        let Some(intake) = self.intake.as_mut() else {
            return Ok(n);
        };
        if n > 0 {
            intake.feed(&buf[..n]).map_err(|e| refused(&self.name, e))?;
            return Ok(n);
        }
        // The end: judge before the sealer sees it.
        let Some(intake) = self.intake.take() else {
            return Ok(0);
        };
        let (dicom, image) = match intake.finish().map_err(|e| refused(&self.name, e))? {
            Checked::Dicom(m) => (Some(*m), None),
            Checked::Image(i) => (None, Some(i)),
            Checked::Other => (None, None),
        };
        self.log.push(FileRecord {
            attachment: self.index,
            name: self.name.clone(),
            dicom,
            image,
        });
        Ok(0)
    }
}

/// The record's bytes, made when the sealer first reads this last part —
/// after every file before it has been read to its end.
pub(crate) struct RecordReader {
    log: IntakeLog,
    patient: EnteredPatient,
    bytes: Option<io::Cursor<Vec<u8>>>,
}

impl RecordReader {
    pub(crate) fn new(log: IntakeLog, patient: EnteredPatient) -> Self {
        Self {
            log,
            patient,
            bytes: None,
        }
    }
}

impl Read for RecordReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.bytes.is_none() {
            let record = record(self.log.files(), &self.patient);
            let json = serde_json::to_vec(&record).map_err(io::Error::other)?;
            self.bytes = Some(io::Cursor::new(json));
        }
        match &mut self.bytes {
            Some(c) => c.read(buf),
            None => Ok(0),
        }
    }
}
