//! Stable-Rust smoke test: replays the seed corpus through the same harness as
//! the fuzz target. `cargo test` in `fuzz/`.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn seed_corpus_replays_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = inputs(&root.join("corpus/imap_session"));
    assert!(seeds.len() >= 10, "the seed corpus is missing");
    let mut commands = 0;
    for path in &seeds {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (a, b) = renkei_fuzz::run(&data);
        commands += a.commands + b.commands;
        eprintln!("{}: {a:?} {b:?}", path.display());
    }
    assert!(
        commands > 50,
        "the seeds reached the session only {commands} times"
    );
}

#[test]
fn seeds_sign_in_and_fetch() {
    // A seed that signs in with the fixture credentials really does (its
    // FETCH produces a message body in the output).
    let (_, b) = renkei_fuzz::run(
        b"a LOGIN $USER $PASS\r\nb SELECT INBOX\r\nc FETCH 1:* (FLAGS ENVELOPE BODY[])\r\nd LOGOUT\r\n",
    );
    assert!(b.output_bytes > 10_000, "{b:?}");
    let (a, _) =
        renkei_fuzz::run(b"a LOGIN $USER $PASS\r\nb SELECT INBOX\r\nc FETCH 1:* BODY.PEEK[]\r\n");
    assert!(a.output_bytes > 10_000, "{a:?}");
}

#[test]
fn dicom_seeds_replay_with_the_expected_verdicts() {
    use renkei_fuzz::dicom::{Verdict, intake};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = inputs(&root.join("corpus/dicom_intake"));
    assert!(seeds.len() >= 20, "the DICOM seed corpus is missing");
    let (mut accepted, mut rendered) = (0, 0);
    for path in &seeds {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v = intake(&data);
        eprintln!("{}: {v:?}", path.display());
        if let Verdict::Dicom { rendered: r } = v {
            accepted += 1;
            rendered += usize::from(r == Some("png"));
        }
    }
    assert!(
        accepted >= 5 && rendered >= 3,
        "{accepted} accepted, {rendered} rendered"
    );
}
