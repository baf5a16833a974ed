//! A streamed archive (ZIP) of an item's files, a study or a series.
//!
//! The item is opened once, the scope resolved (studies and series by position
//! in the intake record), and one download audited (`zip study=S series=N
//! files=K`); the streaming is the edge's.

use std::io::Write;

use super::attachments::{attachment_info, read_record, record_index};
use super::integrity::{AttachmentIntegrity, IntegrityReport, blob_missing};
use super::{AttachmentInfo, BlobStore, Postroom, PreparedAttachment, crypto};
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::postroom::intake::IntakeRecord;
use crate::records::audit::{AuditEvent, action};

impl Postroom {
    /// Opens the item once and readies the files of `scope` for one streamed
    /// archive: their manifest entries, where intake placed each (study and
    /// series, from the sealed intake record) and their sealed blobs, opened
    /// only when streamed. Audited as one download; a study or series the
    /// record does not have is `NotFound`.
    pub async fn archive(
        &self,
        session: &CurrentSession,
        id: &str,
        scope: ArchiveScope,
    ) -> Result<SealedArchive> {
        // A whole item or study leaves at once: the person proves themselves first.
        if !matches!(scope, ArchiveScope::Series { .. }) {
            self.directory.require_proved_recently(session)?;
        }
        let raw = self.open_raw(session, id).await?;
        raw.refuse_if_moved()?;
        let (row, opened) = (raw.row, raw.opened);
        let manifest = &opened.inner.manifest;
        let record_at = record_index(manifest);
        let blob_rows = self.store.attachments(id).await?;
        let blob_key = |index: usize| {
            blob_rows
                .iter()
                .find(|r| r.idx == index as i64)
                .map(|r| r.blob_key.clone())
                .ok_or(Error::NotFound("attachment"))
        };
        let report = self.integrity_report(session, id);
        let states = self.store.attachment_integrity(id).await?;
        let known = |index: usize| {
            states
                .iter()
                .find(|r| r.idx == index as i64)
                .map_or(AttachmentIntegrity::Unknown, |r| r.state())
        };
        let record = match record_at {
            Some(at) => {
                IntegrityReport::refuse_damaged(known(at))?;
                let file = match self.blobs.open(&blob_key(at)?) {
                    Ok(file) => file,
                    Err(e) if blob_missing(&e) => {
                        report.damaged(at).await;
                        return Err(Error::Tampered("attachment"));
                    }
                    Err(e) => return Err(Error::Internal(format!("attachment blob: {e}"))),
                };
                let prepared = PreparedAttachment {
                    info: attachment_info(at, &manifest[at]),
                    entry: manifest[at].clone(),
                    file,
                    known: known(at),
                    report: report.clone(),
                };
                Some(read_record(prepared).await?)
            }
            None => None,
        };
        let studies = record.as_ref().map(|r| r.studies.as_slice()).unwrap_or(&[]);
        let wanted = wanted_files(scope, studies, manifest.len(), record_at)?;
        let mut files = Vec::with_capacity(wanted.len());
        let mut sealed = Vec::with_capacity(wanted.len());
        for (index, place) in wanted {
            // The record names attachments of this item only; one outside the
            // signed manifest would be a damaged record.
            let entry = manifest
                .get(index)
                .filter(|_| Some(index) != record_at)
                .ok_or(Error::Tampered("attachment"))?;
            // A file already found damaged: refused before any byte.
            IntegrityReport::refuse_damaged(known(index))?;
            files.push(ArchiveFile {
                info: attachment_info(index, entry),
                place,
            });
            sealed.push((entry.clone(), blob_key(index)?, known(index)));
        }
        self.audit
            .record(
                AuditEvent::by(session, action::DOWNLOAD)
                    .item(id)
                    .detail(format!("zip {} files={}", scope.describe(), files.len())),
            )
            .await?;
        Ok(SealedArchive {
            created_at: row.created_at,
            files,
            record,
            sealed,
            blobs: self.blobs.clone(),
            report,
        })
    }
}

/// Where intake placed a file: its study and series, by position.
type Place = (usize, usize);

/// The files of `scope` in the item's order, each with its place (study,
/// series) from the intake record's `studies`; the record itself is never one.
fn wanted_files(
    scope: ArchiveScope,
    studies: &[imaging::Study],
    count: usize,
    record_at: Option<usize>,
) -> Result<Vec<(usize, Option<Place>)>> {
    let places: std::collections::HashMap<usize, Place> = studies
        .iter()
        .enumerate()
        .flat_map(|(s, study)| {
            study
                .series
                .iter()
                .enumerate()
                .flat_map(move |(n, series)| {
                    series.instances.iter().map(move |i| (i.attachment, (s, n)))
                })
        })
        .collect();
    Ok(match scope {
        ArchiveScope::Item => (0..count)
            .filter(|i| Some(*i) != record_at)
            .map(|i| (i, places.get(&i).copied()))
            .collect(),
        ArchiveScope::Study(s) => {
            let study = studies.get(s).ok_or(Error::NotFound("study"))?;
            study
                .series
                .iter()
                .enumerate()
                .flat_map(|(n, series)| {
                    series
                        .instances
                        .iter()
                        .map(move |i| (i.attachment, Some((s, n))))
                })
                .collect()
        }
        ArchiveScope::Series { study, series } => studies
            .get(study)
            .and_then(|st| st.series.get(series))
            .ok_or(Error::NotFound("series"))?
            .instances
            .iter()
            .map(|i| (i.attachment, Some((study, series))))
            .collect(),
    })
}

/// Which files of an item one archive holds. Studies and series are named by
/// their position in the sealed intake record, never by their UIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveScope {
    /// Every attachment (the intake record itself excepted).
    Item,
    Study(usize),
    Series {
        study: usize,
        series: usize,
    },
}

impl ArchiveScope {
    fn describe(self) -> String {
        match self {
            Self::Item => "item".into(),
            Self::Study(s) => format!("study={s}"),
            Self::Series { study, series } => format!("study={study} series={series}"),
        }
    }
}

/// One file of an archive: what the signed manifest says of it, and the
/// study and series intake placed it in (by position in the record).
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    pub info: AttachmentInfo,
    pub place: Option<(usize, usize)>,
}

/// The files of an archive, ready to stream one by one.
pub struct SealedArchive {
    /// When the item was sent (Unix seconds).
    pub created_at: i64,
    pub files: Vec<ArchiveFile>,
    /// The intake record, for naming studies and series.
    pub record: Option<IntakeRecord>,
    /// Per file: its manifest entry, blob key and what was known of it.
    sealed: Vec<(renkei_crypto::ManifestEntry, String, AttachmentIntegrity)>,
    blobs: BlobStore,
    report: IntegrityReport,
}

impl SealedArchive {
    /// Blocking: decrypts file `i` (a position in `files`) into `out`,
    /// checked against the signed manifest. On `Tampered("attachment")`
    /// whatever reached `out` must be discarded; the file is then marked
    /// damaged (a moment later, on a task of its own).
    pub fn stream(&self, i: usize, out: impl Write + Send) -> Result<u64> {
        let (entry, key, known) = self.sealed.get(i).ok_or(Error::NotFound("attachment"))?;
        let index = self.files.get(i).map_or(i, |f| f.info.index);
        let outcome = match self.blobs.open(key) {
            Ok(file) => renkei_crypto::open_attachment(
                std::io::BufReader::with_capacity(1 << 20, file),
                entry,
                out,
            )
            .map(|o| o.size)
            .map_err(crypto),
            Err(e) if blob_missing(&e) => Err(Error::Tampered("attachment")),
            Err(e) => Err(Error::Internal(format!("attachment blob: {e}"))),
        };
        self.report.settle_later(index, *known, &outcome);
        outcome
    }
}
