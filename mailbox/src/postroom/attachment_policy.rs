//! What may be attached (MHLW guideline: no executables, scripts or macros). The
//! decision is made on the content's first bytes, never on the file name: an
//! allow-list of DICOM, JPEG, PNG and PDF; everything else is refused with a reason
//! that names what the file turned out to be.
//!
//! Refusals name PE/ELF/Mach-O programs, scripts, OLE or OOXML Office documents
//! and archives. `PolicedReader` judges the first 132 bytes (the DICOM preamble
//! plus `DICM`) as the file streams into sealing, so a refusal never reads
//! ahead of the pipeline.

use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, OnceLock};

/// Bytes needed to decide: the DICOM preamble (128) plus `DICM`.
pub const SNIFF_LEN: usize = 132;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedKind {
    Dicom,
    Jpeg,
    Png,
    Pdf,
}

impl AcceptedKind {
    pub const ALL: [Self; 4] = [Self::Dicom, Self::Jpeg, Self::Png, Self::Pdf];

    /// The type a download is served as: the sender's declared type only when
    /// it is one of the allow-list's (intake already refused any other
    /// content), `application/octet-stream` otherwise — a declared
    /// `text/html` is never served as HTML.
    pub fn served_media_type(declared: &str) -> &'static str {
        let bare = declared.split(';').next().unwrap_or_default().trim();
        Self::ALL
            .iter()
            .map(|k| k.media_type())
            .find(|m| m.eq_ignore_ascii_case(bare))
            .unwrap_or("application/octet-stream")
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Dicom => "application/dicom",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Pdf => "application/pdf",
        }
    }
}

/// Why an attachment is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Executable(&'static str),
    Script,
    MacroDocument(&'static str),
    Archive,
    Empty,
    NotAccepted,
    /// Refused by imaging intake (not DICOM, truncated, missing tags, …).
    Intake(imaging::IntakeError),
}

impl Refusal {
    pub fn reason_en(&self) -> String {
        match self {
            Self::Executable(what) => format!("it is an executable program ({what})"),
            Self::Script => "it is a script".into(),
            Self::MacroDocument(what) => {
                format!("it is an Office document that can carry macros ({what})")
            }
            Self::Archive => "it is an archive whose contents cannot be checked here".into(),
            Self::Empty => "it is empty".into(),
            Self::NotAccepted => "only DICOM, JPEG, PNG and PDF files are accepted".into(),
            Self::Intake(e) => e.message_en(),
        }
    }

    pub fn reason_ja(&self) -> String {
        match self {
            Self::Executable(what) => format!("実行形式のプログラム（{what}）です"),
            Self::Script => "スクリプトです".into(),
            Self::MacroDocument(what) => format!("マクロを含みうるOffice文書（{what}）です"),
            Self::Archive => "中身を確認できない圧縮ファイルです".into(),
            Self::Empty => "空のファイルです".into(),
            Self::NotAccepted => "送信できるのはDICOM・JPEG・PNG・PDFのみです".into(),
            Self::Intake(e) => e.message_ja(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason_en())
    }
}

/// Classifies a file by its first bytes (up to [`SNIFF_LEN`]).
pub fn classify(head: &[u8]) -> Result<AcceptedKind, Refusal> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if head.is_empty() {
        return Err(Refusal::Empty);
    }
    if head.len() >= SNIFF_LEN && &head[128..132] == b"DICM" {
        return Ok(AcceptedKind::Dicom);
    }
    if starts(b"\xFF\xD8\xFF") {
        return Ok(AcceptedKind::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(AcceptedKind::Png);
    }
    if starts(b"%PDF-") {
        return Ok(AcceptedKind::Pdf);
    }
    // Named refusals, so the sender learns what the file really is.
    if starts(b"MZ") {
        return Err(Refusal::Executable("Windows PE"));
    }
    if starts(b"\x7FELF") {
        return Err(Refusal::Executable("ELF"));
    }
    if starts(b"\xCF\xFA\xED\xFE") || starts(b"\xCE\xFA\xED\xFE") || starts(b"\xCA\xFE\xBA\xBE") {
        return Err(Refusal::Executable("Mach-O / Java class"));
    }
    if starts(b"#!") {
        return Err(Refusal::Script);
    }
    if starts(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Err(Refusal::MacroDocument("OLE compound file: .doc/.xls/.ppt"));
    }
    if starts(b"PK\x03\x04") {
        // OOXML (.docm/.xlsm carry vbaProject.bin), JAR, or a plain ZIP: none can be
        // checked from the first bytes, and a study ZIP is unpacked before sealing.
        let name_len = head
            .get(26..28)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
        let first_name = name_len.and_then(|n| head.get(30..30 + n));
        return Err(match first_name {
            Some(n)
                if n.starts_with(b"[Content_Types].xml")
                    || n.starts_with(b"word/")
                    || n.starts_with(b"xl/") =>
            {
                Refusal::MacroDocument("Office Open XML")
            }
            Some(n) if n.starts_with(b"META-INF/") => Refusal::Executable("Java archive"),
            _ => Refusal::Archive,
        });
    }
    Err(Refusal::NotAccepted)
}

/// The `io::Error` payload a [`PolicedReader`] fails with.
#[derive(Debug)]
pub struct RefusedAttachment {
    pub name: String,
    pub refusal: Refusal,
}

impl fmt::Display for RefusedAttachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attachment {:?} refused: {}", self.name, self.refusal)
    }
}

impl std::error::Error for RefusedAttachment {}

/// Passes a stream through after checking its first bytes, so a file is judged
/// as it streams in, without reading ahead of the sealing pipeline.
pub struct PolicedReader<R> {
    inner: R,
    name: String,
    head: Vec<u8>,
    pos: usize,
    checked: bool,
    /// The declared media type, and where the type to record goes.
    correct: Option<(String, Arc<OnceLock<String>>)>,
}

/// The media type the manifest records for a file declared `declared` whose
/// content is `kind`: the declared one (parameters kept) when it names that
/// kind, the kind's own otherwise (a PDF declared `text/plain` is a PDF).
pub fn corrected_type(declared: &str, kind: AcceptedKind) -> String {
    let essence = declared.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case(kind.media_type()) {
        declared.trim().to_string()
    } else {
        kind.media_type().to_string()
    }
}

impl<R: Read> PolicedReader<R> {
    pub fn new(inner: R, name: impl Into<String>) -> Self {
        Self {
            inner,
            name: name.into(),
            head: Vec::with_capacity(SNIFF_LEN),
            pos: 0,
            checked: false,
            correct: None,
        }
    }

    /// Records in `cell`, once the content is judged, the type the manifest
    /// should carry for a file declared `declared` ([`corrected_type`]).
    pub fn correcting(mut self, declared: String, cell: Arc<OnceLock<String>>) -> Self {
        self.correct = Some((declared, cell));
        self
    }

    fn check(&mut self) -> io::Result<()> {
        while self.head.len() < SNIFF_LEN {
            let mut buf = [0u8; SNIFF_LEN];
            let want = SNIFF_LEN - self.head.len();
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => self.head.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.checked = true;
        let kind = classify(&self.head);
        if let (Ok(kind), Some((declared, cell))) = (&kind, &self.correct) {
            let _ = cell.set(corrected_type(declared, *kind));
        }
        kind.map(|_| ()).map_err(|refusal| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                RefusedAttachment {
                    name: self.name.clone(),
                    refusal,
                },
            )
        })
    }
}

impl<R: Read> Read for PolicedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.checked {
            self.check()?;
        }
        if self.pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dicom() -> Vec<u8> {
        let mut v = vec![0u8; 128];
        v.extend_from_slice(b"DICM\x02\x00\x00\x00");
        v
    }

    #[test]
    fn downloads_are_served_only_as_allow_listed_types() {
        for (declared, served) in [
            ("image/png", "image/png"),
            ("Application/PDF; name=a.pdf", "application/pdf"),
            ("application/dicom", "application/dicom"),
            ("text/html", "application/octet-stream"),
            ("image/svg+xml", "application/octet-stream"),
            ("", "application/octet-stream"),
        ] {
            assert_eq!(
                AcceptedKind::served_media_type(declared),
                served,
                "{declared}"
            );
        }
    }

    #[test]
    fn a_declared_type_that_contradicts_the_content_is_corrected() {
        let pdf = AcceptedKind::Pdf;
        assert_eq!(
            corrected_type("text/plain; charset=utf-8", pdf),
            "application/pdf"
        );
        assert_eq!(
            corrected_type("application/octet-stream", pdf),
            "application/pdf"
        );
        assert_eq!(
            corrected_type("Application/PDF; name=\"a.pdf\"", pdf),
            "Application/PDF; name=\"a.pdf\""
        );
        assert_eq!(
            corrected_type("image/jpg", AcceptedKind::Jpeg),
            "image/jpeg"
        );
        let cell = Arc::new(OnceLock::new());
        let mut r = PolicedReader::new(io::Cursor::new(dicom()), "ct.dcm")
            .correcting("text/plain".into(), cell.clone());
        io::copy(&mut r, &mut io::sink()).expect("accepted");
        assert_eq!(cell.get().map(String::as_str), Some("application/dicom"));
    }

    #[test]
    fn the_allow_list_is_judged_by_content() {
        assert_eq!(classify(&dicom()), Ok(AcceptedKind::Dicom));
        assert_eq!(
            classify(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"),
            Ok(AcceptedKind::Jpeg)
        );
        assert_eq!(
            classify(b"\x89PNG\r\n\x1a\n\x00\x00"),
            Ok(AcceptedKind::Png)
        );
        assert_eq!(classify(b"%PDF-1.7\n"), Ok(AcceptedKind::Pdf));
    }

    #[test]
    fn executables_scripts_and_macro_documents_are_refused_with_a_reason() {
        let table: &[(&[u8], Refusal)] = &[
            (b"MZ\x90\x00\x03", Refusal::Executable("Windows PE")),
            (b"\x7FELF\x02\x01\x01", Refusal::Executable("ELF")),
            (b"#!/bin/sh\nrm -rf /", Refusal::Script),
            (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00", Refusal::MacroDocument("OLE compound file: .doc/.xls/.ppt")),
            (
                b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00\x21\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x13\x00\x00\x00[Content_Types].xml",
                Refusal::MacroDocument("Office Open XML"),
            ),
            (b"PK\x03\x04rest-of-a-zip", Refusal::Archive),
            (b"<html><script>alert(1)</script>", Refusal::NotAccepted),
            (b"", Refusal::Empty),
        ];
        for (bytes, expected) in table {
            assert_eq!(classify(bytes).as_ref(), Err(expected), "{bytes:?}");
            assert!(!expected.reason_ja().is_empty());
        }
        // A renamed executable is still an executable.
        assert!(matches!(
            classify(b"MZ this was called scan.dcm"),
            Err(Refusal::Executable(_))
        ));
    }

    /// The renamed macro documents of imaging's neutralisation corpus
    /// (`imaging/tests/neutral/make.py`): a `.docm` named `.pdf`, an OLE
    /// document named `.jpg` — refused by what they are, whatever the name.
    #[test]
    fn renamed_macro_documents_of_the_corpus_are_refused_by_content() {
        let docm = include_bytes!("../../../imaging/tests/neutral/renamed-macro-document.pdf");
        let ole = include_bytes!("../../../imaging/tests/neutral/renamed-ole-document.jpg");
        for (name, bytes, what) in [
            ("report.pdf", &docm[..], "Office Open XML"),
            ("photo.jpg", &ole[..], "OLE compound file: .doc/.xls/.ppt"),
        ] {
            let err = PolicedReader::new(io::Cursor::new(bytes.to_vec()), name)
                .read_to_end(&mut Vec::new())
                .unwrap_err();
            let refused = err
                .get_ref()
                .and_then(|e| e.downcast_ref::<RefusedAttachment>())
                .unwrap();
            assert_eq!(refused.refusal, Refusal::MacroDocument(what), "{name}");
            assert!(refused.refusal.reason_ja().contains("マクロ"));
        }
    }

    #[test]
    fn the_policed_reader_passes_accepted_bytes_through_unchanged() {
        let mut file = dicom();
        file.extend((0..100_000u32).map(|i| i as u8));
        let mut out = Vec::new();
        PolicedReader::new(io::Cursor::new(file.clone()), "ct.dcm")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, file);

        let err = PolicedReader::new(io::Cursor::new(b"\x7FELF....".to_vec()), "scan.dcm")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        let refused = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<RefusedAttachment>())
            .unwrap();
        assert_eq!(refused.refusal, Refusal::Executable("ELF"));
        assert!(refused.to_string().contains("scan.dcm"));
    }
}
