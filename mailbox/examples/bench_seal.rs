//! `bench/seal`: sealing and opening throughput, side by side with `cp` and GnuPG
//! on the same inputs in one run. Run through `bench/seal/run.sh` (release build).
//!
//! Prints: small envelopes (2 KiB text, 4 key slots) seals/s and opens/s on one
//! core; a 1 GiB attachment's seal and open wall time as ratios against `cp` of the
//! same file and `gpg --sign --encrypt --compress-algo none`; peak RSS. The sealed
//! attachment is written through the blob store, as the server writes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mailbox::blob::{BlobStore, EarlySync};
use renkei_crypto::*;

/// CPU time (user + system) of this thread so far, from /proc (10 ms ticks):
/// on a shared machine the wall-clock rate also counts time spent waiting for
/// the core, so both are printed.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// CPU time of this process (all threads) and of its waited-for children, from
/// /proc/self/stat: the work each tool did, whatever else the machine runs.
fn process_cpu() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    (
        Duration::from_millis((at(11) + at(12)) * 10),
        Duration::from_millis((at(13) + at(14)) * 10),
    )
}

fn draft(body: String) -> Draft {
    Draft {
        headers: ProtectedHeaders {
            kind: "reading_request".into(),
            subject: "胸部CT 読影依頼".into(),
            patient_id: "P-000123".into(),
            patient_name: "香川 太郎".into(),
        },
        sender: SenderInfo {
            account_id: "K7M4QX9R".into(),
            name: "讃岐 一郎".into(),
            facility: "3710123450".into(),
        },
        body,
        fields: Vec::new(),
        // As the server seals: the item's place signed with it.
        place: Some(renkei_crypto::Place {
            envelope_id: "01JF0000000000000000000000".into(),
            thread_id: Some("01JF0000000000000000000001".into()),
            step_seq: Some(1),
            step_kind: Some("open".into()),
            item_kind: "reading_request".into(),
            sender_account: "K7M4QX9R".into(),
            sender_facility: "3710123450".into(),
            recipients: vec![
                "account:K7M4QX9R".into(),
                "account:T3AN9GX9".into(),
                "liaison:3710300017".into(),
                "oversight:3710300017".into(),
            ],
            created_at: 1_765_000_000,
            patient_blind_index: Some("5f".repeat(32)),
        }),
    }
}

fn run(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn write_plaintext(path: &Path, len: u64) {
    let mut f = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut left = len;
    let mut i = 0u64;
    while left > 0 {
        block[..8].copy_from_slice(&i.to_le_bytes());
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
        i += 1;
    }
    f.flush().unwrap();
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: bench_seal WORK_DIR [MiB]");
    let dir = Path::new(&dir);
    let mib: u64 = std::env::args()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let mode = std::env::args().nth(3).unwrap_or_else(|| "all".into());

    // --- small envelopes -----------------------------------------------------------
    let sender = SecretKey::generate("sender <bench>").unwrap();
    let readers: Vec<SecretKey> = (0..4)
        .map(|i| SecretKey::generate(&format!("r{i} <bench>")).unwrap())
        .collect();
    let certs: Vec<Certificate> = readers.iter().map(|k| k.cert()).collect();
    let refs: Vec<&Certificate> = certs.iter().collect();
    let text: String = "所見：右上葉に結節影を認めます。"
        .chars()
        .cycle()
        .take(2048 / 3)
        .collect();
    let d = draft(text);
    let n = if mode == "large" {
        10
    } else {
        std::env::var("BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000)
    };
    let t = Instant::now();
    let c = thread_cpu();
    let mut envelopes = Vec::with_capacity(n);
    for _ in 0..n {
        envelopes.push(seal(&sender, &refs, &d, vec![]).unwrap().envelope);
    }
    let seal_rate = n as f64 / t.elapsed().as_secs_f64();
    let seal_cpu_rate = n as f64 / (thread_cpu() - c).as_secs_f64().max(0.01);
    let sender_cert = sender.cert();
    let t = Instant::now();
    let c = thread_cpu();
    for e in &envelopes {
        let s = sender_cert.clone();
        let o = open(e, &readers[2], move |fp| {
            (s.fingerprint() == fp.to_hex()).then(|| s.clone())
        })
        .unwrap();
        assert_eq!(o.verification, Verification::Valid);
    }
    let open_rate = n as f64 / t.elapsed().as_secs_f64();
    let open_cpu_rate = n as f64 / (thread_cpu() - c).as_secs_f64().max(0.01);
    if mode != "large" {
        println!("small envelopes (2 KiB text, 4 key slots), one core:");
        println!(
            "  seal  {seal_rate:>8.0} /s   (target >= 2000)   per CPU-second: {seal_cpu_rate:.0} /s"
        );
        println!(
            "  open  {open_rate:>8.0} /s   (target >= 5000)   per CPU-second: {open_cpu_rate:.0} /s"
        );
    }
    if mode == "small" {
        return;
    }

    // --- one large attachment ------------------------------------------------------
    let plain = dir.join("study.bin");
    write_plaintext(&plain, mib << 20);
    let opened_path = dir.join("study.out");
    // The sealed attachment goes where the server puts it: a blob written
    // through the blob store (synced early on its own thread as it grows),
    // committed (synced, renamed into place). cp and our own output end with
    // an fsync too, so the baseline is the disk, not the page cache.
    let blobs = BlobStore::new(dir.join("blobs"));
    let sync = |p: &Path| File::open(p).and_then(|f| f.sync_all()).unwrap();
    // Start from a clean page cache state: the freshly written plaintext must
    // not still be flushing while the first tool runs.
    sync(&plain);
    // The disk's speed varies by half from one run to the next here: cp and
    // seal alternate over a few rounds and the medians are compared.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (mut cp_t, mut cp_cache_t, mut seal_t, mut seal_cache_t, mut open_t) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut cpu_cp, mut cpu_seal) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let copy = dir.join("study.copy");
        let t = Instant::now();
        let (_, c0) = process_cpu();
        run(Command::new("cp").arg(&plain).arg(&copy));
        cp_cache_t.push(t.elapsed());
        cpu_cp = process_cpu().1 - c0;
        sync(&copy);
        cp_t.push(t.elapsed());
        std::fs::remove_file(&copy).unwrap();

        let key = format!("item{round}/0");
        let t = Instant::now();
        let (c0, _) = process_cpu();
        let early = EarlySync::start();
        let (sink, pending) = blobs.create(&key, Some(&early)).unwrap();
        let sealed = seal(
            &sender,
            &[&certs[0]],
            &d,
            vec![AttachmentInput {
                checked_type: None,
                name: "study.dcm".into(),
                media_type: "application/dicom".into(),
                source: Box::new(BufReader::with_capacity(
                    1 << 20,
                    File::open(&plain).unwrap(),
                )),
                sink: Box::new(sink),
            }],
        )
        .unwrap();
        seal_cache_t.push(t.elapsed());
        cpu_seal = process_cpu().0 - c0;
        pending.commit().unwrap();
        seal_t.push(t.elapsed());

        let opened = open(&sealed.envelope, &readers[0], |_| None).unwrap();
        let t = Instant::now();
        open_attachment(
            BufReader::with_capacity(1 << 20, blobs.open(&key).unwrap()),
            &opened.inner.manifest[0],
            BufWriter::with_capacity(1 << 20, File::create(&opened_path).unwrap()),
        )
        .unwrap();
        sync(&opened_path);
        open_t.push(t.elapsed());
        if round + 1 == rounds {
            let mut a = File::open(&plain).unwrap();
            let mut b = File::open(&opened_path).unwrap();
            let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
            loop {
                let n = a.read(&mut x).unwrap();
                let m = b.read(&mut y).unwrap();
                assert_eq!(&x[..n], &y[..m], "round trip differs");
                if n == 0 {
                    break;
                }
            }
        }
        std::fs::remove_file(&opened_path).unwrap();
        blobs.delete(&key).unwrap();
        println!(
            "  round {}: cp {:.2} s, seal {:.2} s ({:.2}x), open {:.2} s",
            round + 1,
            cp_t[round].as_secs_f64(),
            seal_t[round].as_secs_f64(),
            seal_t[round].as_secs_f64() / cp_t[round].as_secs_f64(),
            open_t[round].as_secs_f64()
        );
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (t_cp, t_cp_cache) = (median(&mut cp_t), median(&mut cp_cache_t));
    let (t_seal, t_seal_cache) = (median(&mut seal_t), median(&mut seal_cache_t));
    let t_open = median(&mut open_t);

    // GnuPG with the same curves, compression off.
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let gpg = || {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(&home).args([
            "--batch",
            "--yes",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    };
    run(gpg().args([
        "--quick-gen-key",
        "bench <bench@renkei.invalid>",
        "ed25519",
        "sign",
        "never",
    ]));
    let listing = gpg()
        .args(["--with-colons", "--list-keys", "bench@renkei.invalid"])
        .output()
        .unwrap();
    let fpr = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .expect("gpg fingerprint");
    run(gpg().args(["--quick-add-key", &fpr, "cv25519", "encr", "never"]));
    let gpg_out = dir.join("study.gpg");
    let t = Instant::now();
    let (_, c0) = process_cpu();
    run(gpg()
        .args([
            "--sign",
            "--encrypt",
            "--compress-algo",
            "none",
            "--digest-algo",
            "SHA256",
            "-r",
            "bench@renkei.invalid",
            "-o",
        ])
        .arg(&gpg_out)
        .arg(&plain));
    let cpu_gpg = process_cpu().1 - c0;
    sync(&gpg_out);
    let t_gpg = t.elapsed();
    let t = Instant::now();
    run(gpg()
        .arg("-o")
        .arg(dir.join("study.gpgout"))
        .arg("--decrypt")
        .arg(&gpg_out));
    sync(&dir.join("study.gpgout"));
    let t_gpg_open = t.elapsed();

    let s = |d: Duration| d.as_secs_f64();
    println!(
        "{mib} MiB attachment (same file for every tool; each time includes fsync of the output; median of {rounds} rounds for cp, seal and open):"
    );
    println!(
        "  cp                 {:>7.2} s   (without fsync: {:.2} s)",
        s(t_cp),
        s(t_cp_cache)
    );
    println!(
        "  renkei seal        {:>7.2} s   {:.2}x cp (target <= 1.3x)   {:.2}x faster than gpg (target >= 1.5x)   (without fsync: {:.2} s = {:.2}x cp)",
        s(t_seal),
        s(t_seal) / s(t_cp),
        s(t_gpg) / s(t_seal),
        s(t_seal_cache),
        s(t_seal_cache) / s(t_cp_cache)
    );
    println!(
        "  renkei open        {:>7.2} s   {:.2}x cp   {:.2}x faster than gpg decrypt",
        s(t_open),
        s(t_open) / s(t_cp),
        s(t_gpg_open) / s(t_open)
    );
    println!("  gpg sign+encrypt   {:>7.2} s", s(t_gpg));
    println!(
        "  CPU seconds (user+system, all threads): cp {:.2}, renkei seal {:.2}, gpg sign+encrypt {:.2}",
        s(cpu_cp),
        s(cpu_seal),
        s(cpu_gpg)
    );
    println!("  gpg decrypt        {:>7.2} s", s(t_gpg_open));
    println!(
        "peak RSS of the renkei process: {:.0} MiB (target < 128)",
        support::peak_rss_mib()
    );
}
