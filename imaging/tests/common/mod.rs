//! pydicom as the reference: its bundled test files and its decoding, through
//! `tests/py/oracle.py` (the test command installs pydicom and numpy).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn python() -> String {
    std::env::var("RENKEI_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn oracle(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "oracle {args:?} failed (is pydicom installed? scripts/test-all installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

pub fn oracle_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&oracle(args)).expect("oracle JSON")
}

pub fn test_files() -> PathBuf {
    PathBuf::from(oracle_json(&["paths"])["test_files"].as_str().unwrap())
}

pub fn charset_files() -> PathBuf {
    PathBuf::from(oracle_json(&["paths"])["charset_files"].as_str().unwrap())
}

/// Decodes an 8-bit greyscale or RGB PNG into its samples.
pub fn png_samples(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}
