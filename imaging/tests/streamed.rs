//! A frame rendered from a stream ([`imaging::FrameCapture`], fed the file in
//! uneven pieces and holding only that frame) is the frame rendered from the
//! whole file in memory (`render_png`, itself checked against pydicom in
//! `pydicom_files.rs`): the same PNG bytes, window and frame count, or the
//! same refusal. Every image among pydicom's test files — native, RLE, JPEG
//! baseline and lossless, JPEG 2000, multi-frame with and without an offset
//! table — at its first, middle and last frame; and every frame of a generated
//! 40-frame 16-bit native file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{oracle, test_files};
use imaging::{FrameCapture, Preset, RenderError, Rendered, Window, WindowChoice};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The file fed in pieces of 1, 7, 4,093 and 65,537 bytes in turn.
fn streamed(bytes: &[u8], frame: u32, choice: WindowChoice) -> Result<Rendered, RenderError> {
    let mut capture = FrameCapture::new(frame, Some(bytes.len() as u64));
    let sizes = [1usize, 7, 4093, 65_537];
    let mut rest = bytes;
    let mut k = 0;
    while !rest.is_empty() {
        let n = sizes[k % sizes.len()].min(rest.len());
        capture.feed(&rest[..n])?;
        rest = &rest[n..];
        k += 1;
    }
    capture.render(choice)
}

/// `Ok(())` when both renders agree, else what differs.
fn same(name: &str, bytes: &[u8], frame: u32, choice: WindowChoice) -> Result<bool, String> {
    let whole = imaging::render_png(bytes, frame, choice);
    let stream = streamed(bytes, frame, choice);
    match (whole, stream) {
        (Ok(a), Ok(b)) => {
            if a.png == b.png
                && (a.width, a.height, a.frames) == (b.width, b.height, b.frames)
                && a.window == b.window
            {
                Ok(true)
            } else {
                Err(format!("{name} #{frame}: the streamed PNG differs"))
            }
        }
        (Err(a), Err(b)) if a.code() == b.code() => Ok(false),
        (a, b) => Err(format!(
            "{name} #{frame}: in memory {:?}, streamed {:?}",
            a.map(|r| r.png.len()).map_err(|e| e.to_string()),
            b.map(|r| r.png.len()).map_err(|e| e.to_string())
        )),
    }
}

#[test]
fn every_pydicom_image_streams_to_the_same_frames_as_in_memory() {
    let default = WindowChoice::Preset(Preset::Default);
    let mut problems = Vec::new();
    let (mut rendered, mut compressed, mut multi) = (0, 0, 0);
    for path in files_under(&test_files()) {
        // Read as stored files are: intake now refuses pydicom's DICOMDIR
        // files with a stray preamble byte, but what was stored before renders.
        let bytes = std::fs::read(&path).unwrap();
        let Ok(meta) = imaging::stored_meta(&bytes) else {
            continue;
        };
        if !meta.has_pixel_data {
            continue;
        }
        let name = path.display().to_string();
        let mut frames = vec![0, meta.frames / 2, meta.frames - 1];
        frames.dedup();
        for frame in frames {
            match same(&name, &bytes, frame, default) {
                Ok(true) => {
                    rendered += 1;
                    compressed += usize::from(
                        meta.transfer_syntax.starts_with("1.2.840.10008.1.2.4")
                            || meta.transfer_syntax == "1.2.840.10008.1.2.5",
                    );
                    multi += usize::from(meta.frames > 1 && frame > 0);
                }
                Ok(false) => {}
                Err(problem) => problems.push(problem),
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(rendered >= 85, "{rendered} frames rendered");
    assert!(compressed >= 30, "{compressed} compressed frames rendered");
    assert!(
        multi >= 10,
        "{multi} later frames of multi-frame files rendered"
    );
}

#[test]
fn generated_multi_frame_files_stream_every_frame_as_in_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("multi.dcm");
    // 40 frames of 128×128 16-bit MONOCHROME2, each its own pattern.
    oracle(&["multiframe", file.to_str().unwrap(), "40"]);
    let bytes = std::fs::read(&file).unwrap();
    let window = WindowChoice::Custom(Window {
        center: 40.0,
        width: 400.0,
    });
    let mut pngs = Vec::new();
    for frame in 0..40 {
        assert_eq!(same("multi", &bytes, frame, window), Ok(true));
        pngs.push(streamed(&bytes, frame, window).unwrap().png);
    }
    pngs.dedup();
    assert_eq!(pngs.len(), 40, "each frame renders its own pixels");
    assert_eq!(
        streamed(&bytes, 40, window).unwrap_err().code(),
        "dicom_no_such_frame"
    );
    // Cut short: the walk says so, as it does for the file in memory.
    let cut = &bytes[..bytes.len() - 100];
    assert_eq!(same("cut", cut, 39, window), Ok(false));
}
