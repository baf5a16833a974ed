//! A frozen envelope that must keep opening, so the format cannot change by
//! accident. Regenerate ONLY when the format is intentionally migrated:
//! `cargo test -p renkei-crypto --test frozen_fixture -- --ignored regenerate`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::path::PathBuf;

use renkei_crypto::*;

const PASSWORD: &[u8] = b"frozen-fixture-password";
const BODY: &str = "右上葉に8mmの結節影。経過観察を推奨します。";
const ATTACHMENT: &[u8] = b"DICM frozen fixture attachment \x00\x01\x02\x03";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn draft() -> Draft {
    Draft {
        headers: ProtectedHeaders {
            kind: "reading_report".into(),
            subject: "読影レポート".into(),
            patient_id: "FIX-0001".into(),
            patient_name: "香川 太郎".into(),
        },
        sender: SenderInfo {
            account_id: "K7M4QX9R".into(),
            name: "讃岐 一郎".into(),
            facility: "3710123450".into(),
        },
        body: BODY.into(),
        fields: Vec::new(),
        place: None,
    }
}

#[test]
#[ignore = "writes the fixture; run only for an intentional format migration"]
fn regenerate() {
    let sender = SecretKey::generate("K7M4QX9R <account:K7M4QX9R>").unwrap();
    let reader = SecretKey::generate("T3AN9GX9 <account:T3AN9GX9>").unwrap();
    let mut blob = Vec::new();
    let sealed = seal(
        &sender,
        &[&reader.cert()],
        &draft(),
        vec![AttachmentInput {
            checked_type: None,
            name: "CT0001.dcm".into(),
            media_type: "application/dicom".into(),
            source: Box::new(Cursor::new(ATTACHMENT.to_vec())),
            sink: Box::new(&mut blob),
        }],
    )
    .unwrap();
    std::fs::create_dir_all(dir()).unwrap();
    let locked = reader
        .lock_with(PASSWORD, LockParams::insecure_for_tests())
        .unwrap();
    std::fs::write(dir().join("reader.locked"), locked.as_bytes()).unwrap();
    std::fs::write(dir().join("sender.cert"), sender.cert().to_bytes().unwrap()).unwrap();
    std::fs::write(dir().join("envelope.pgp"), sealed.envelope.as_bytes()).unwrap();
    std::fs::write(dir().join("attachment.pgp"), &blob).unwrap();
}

#[test]
fn the_frozen_envelope_still_opens() {
    let reader = LockedKey::from_bytes(read("reader.locked"))
        .unlock(PASSWORD)
        .unwrap();
    let sender = Certificate::from_bytes(&read("sender.cert")).unwrap();
    let envelope = SealedEnvelope::from_bytes(read("envelope.pgp"));
    let s = sender.clone();
    let opened = open(&envelope, &reader, move |fp| {
        (s.fingerprint() == fp.to_hex()).then(|| s.clone())
    })
    .unwrap();
    assert_eq!(opened.verification, Verification::Valid);
    assert_eq!(
        opened.signer.as_deref(),
        Some(sender.fingerprint().as_str())
    );
    let expected = draft();
    assert_eq!(opened.inner.headers, expected.headers);
    assert_eq!(opened.inner.sender, expected.sender);
    assert_eq!(opened.inner.body, BODY);
    assert_eq!(opened.inner.place, None, "sealed before places were signed");
    let entry = &opened.inner.manifest[0];
    assert_eq!(
        (entry.name.as_str(), entry.media_type.as_str(), entry.size),
        ("CT0001.dcm", "application/dicom", ATTACHMENT.len() as u64)
    );
    let mut out = Vec::new();
    open_attachment(Cursor::new(read("attachment.pgp")), entry, &mut out).unwrap();
    assert_eq!(out, ATTACHMENT);
}
