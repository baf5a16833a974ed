//! Arbitrary bytes as an uploaded DICOM file: intake whole and streamed, then
//! rendering of what intake accepts. See `src/dicom.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = renkei_fuzz::dicom::intake(data);
});
