//! Arbitrary bytes from a client, through imap-next's server flow into the
//! session state machine, not signed in and signed in. See `src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = renkei_fuzz::run(data);
});
