//! The stable stand-in for a short libFuzzer run, for machines without a
//! nightly toolchain (CI's `scripts/test-all` uses it there): each target's
//! committed seeds, then inputs made from them by a fixed, seeded mutator (bit
//! flips, boundary bytes, cut, duplicated and spliced ranges), through the
//! same harness as the fuzz target, for `RENKEI_FUZZ_SECS` seconds per target
//! (default 20) and at most `RENKEI_FUZZ_INPUTS` inputs (default 100,000).
//! Not coverage-guided: it finds shallow panics and assertion failures, not
//! what needs many steps of feedback. An input that panics is written to
//! `artifacts/<target>/stable-<n>` before the test fails, for replay.
//!
//! `cd fuzz && cargo test --test mutate -- --nocapture --test-threads 1`

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// xorshift64*: a fixed sequence, so a failure repeats with the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const BOUNDARY: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, b'\r', b'\n', b'{', b'*', b'9',
];

/// One to four mutations of `seed`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = BOUNDARY[rng.below(BOUNDARY.len())];
            }
            2 if !v.is_empty() => {
                let at = rng.below(v.len());
                let len = rng.below((v.len() - at).min(64)) + 1;
                v.drain(at..(at + len).min(v.len()));
            }
            3 if !v.is_empty() => {
                let at = rng.below(v.len());
                let len = rng.below((v.len() - at).min(256)) + 1;
                let chunk = v[at..(at + len).min(v.len())].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, chunk);
            }
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let cut = rng.below(v.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            5 => {
                let to = rng.below(v.len() + 1);
                let n = rng.below(8) + 1;
                let bytes: Vec<u8> = (0..n)
                    .map(|_| BOUNDARY[rng.below(BOUNDARY.len())])
                    .collect();
                v.splice(to..to, bytes);
            }
            _ => {
                let cut = rng.below(v.len() + 1);
                v.truncate(cut);
            }
        }
    }
    v.truncate(max_len);
    v
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `harness` over the seeds, then mutated inputs until the time or the
/// count runs out; returns how many inputs ran.
fn run(target: &str, max_len: usize, harness: impl Fn(&[u8])) -> u64 {
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let budget = Duration::from_secs(setting("RENKEI_FUZZ_SECS", 20));
    let limit = setting("RENKEI_FUZZ_INPUTS", 100_000);
    let mut rng = Rng(setting("RENKEI_FUZZ_SEED", 0x5eed_2026) | 1);
    let started = Instant::now();
    let mut count = 0u64;
    let mut inputs = seeds.iter().cloned();
    loop {
        let input = match inputs.next() {
            Some(seed) => seed,
            None if started.elapsed() >= budget || count >= limit => break,
            None => {
                let seed = &seeds[rng.below(seeds.len())];
                let other = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, seed, other, max_len)
            }
        };
        count += 1;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| harness(&input))) {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("artifacts")
                .join(target);
            let path = dir.join(format!("stable-{count}"));
            let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &input));
            eprintln!(
                "{target}: input {count} panicked; saved to {}",
                path.display()
            );
            resume_unwind(panic);
        }
    }
    eprintln!(
        "{target}: {count} inputs ({} seeds, then mutations) in {:.1} s, no panic",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    count
}

#[test]
fn imap_session_survives_mutated_seeds() {
    let n = run("imap_session", 4096, |data| {
        let _ = renkei_fuzz::run(data);
    });
    assert!(n > 13, "only the seeds ran");
}

#[test]
fn dicom_intake_survives_mutated_seeds() {
    let n = run("dicom_intake", 65536, |data| {
        let _ = renkei_fuzz::dicom::intake(data);
    });
    assert!(n > 40, "only the seeds ran");
}
