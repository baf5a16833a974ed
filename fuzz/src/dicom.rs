//! The DICOM intake harness (`fuzz_targets/dicom_intake.rs`): arbitrary bytes
//! through `imaging::Intake` as a file that claims to be DICOM, whole (size
//! known, as from disk) and streamed in chunks (as an upload arrives, size
//! unknown); both must accept it or both refuse it. An accepted file of modest
//! size is rendered, so the decoders see what intake lets through, from the
//! bytes in memory and from a stream (`FrameCapture`), alike. Run with
//! `-rss_limit_mb`/`-malloc_limit_mb` so an allocation by a declared length
//! is a crash. The same bytes after `%PDF-` go through the PDF scanner of
//! intake (active content), whole and streamed: the same verdict either way.

use imaging::{Checked, Intake, Preset, WindowChoice};

/// What one input came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Refused(&'static str),
    Dicom { rendered: Option<&'static str> },
    Other,
}

/// The bytes as the rest of a PDF attachment: whole and streamed agree.
pub fn pdf(chunk: usize, file: &[u8]) -> Result<(), &'static str> {
    let mut bytes = b"%PDF-".to_vec();
    bytes.extend_from_slice(file);
    let whole = imaging::check_bytes("fuzz.pdf", "application/pdf", &bytes);
    let mut streamed = Intake::new("fuzz.pdf", "application/pdf");
    let streamed = bytes
        .chunks(chunk)
        .try_for_each(|c| streamed.feed(c))
        .and_then(|()| streamed.finish());
    assert_eq!(whole, streamed, "a PDF judged whole and streamed differs");
    whole.map(drop).map_err(|e| e.code())
}

pub fn intake(data: &[u8]) -> Verdict {
    let Some((&first, file)) = data.split_first() else {
        return Verdict::Other;
    };
    let chunk = usize::from(first) + 1;
    let _ = pdf(chunk, file);
    let whole = imaging::check_bytes("fuzz.dcm", "application/dicom", file);
    let mut streamed = Intake::new("fuzz.dcm", "application/dicom");
    let streamed = file
        .chunks(chunk)
        .try_for_each(|c| streamed.feed(c))
        .and_then(|()| streamed.finish());
    let verdict = |r: &Result<Checked, imaging::IntakeError>| match r {
        Ok(Checked::Dicom(_)) => Verdict::Dicom { rendered: None },
        Ok(_) => Verdict::Other,
        Err(e) => Verdict::Refused(e.code()),
    };
    // Accepted or refused alike. The reason may differ: knowing the size, a
    // length past the end is met first; streamed, a length past its item may
    // be met first in the same damaged file (the fuzzer's first find).
    assert_eq!(
        whole.is_ok(),
        streamed.is_ok(),
        "whole {:?} and streamed {:?} differ",
        verdict(&whole),
        verdict(&streamed)
    );
    match whole {
        Ok(Checked::Dicom(meta)) => {
            let pixels = u64::from(meta.rows.unwrap_or(0)) * u64::from(meta.columns.unwrap_or(0));
            let rendered = (pixels <= 1 << 20).then(|| {
                let choice = WindowChoice::Preset(Preset::Default);
                let whole = imaging::render_png(file, 0, choice);
                // The same frame from a stream (a rendered slice), in the same chunks.
                let mut capture = imaging::FrameCapture::new(0, Some(file.len() as u64));
                let streamed = file
                    .chunks(chunk)
                    .try_for_each(|c| capture.feed(c))
                    .and_then(|()| capture.render(choice));
                match (whole, streamed) {
                    (Ok(a), Ok(b)) => {
                        assert!(a.png == b.png, "the streamed frame differs");
                        "png"
                    }
                    (Err(a), Err(b)) => {
                        assert_eq!(a.code(), b.code(), "whole {a} and streamed {b} differ");
                        a.code()
                    }
                    (a, b) => panic!("whole {:?} and streamed {:?} differ", a.err(), b.err()),
                }
            });
            Verdict::Dicom { rendered }
        }
        other => verdict(&other),
    }
}
