//! Round trips, key management and tampering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Cursor, Read};

use common::*;
use renkei_crypto::*;

fn fast() -> LockParams {
    LockParams::insecure_for_tests()
}

struct Att {
    name: &'static str,
    data: Vec<u8>,
}

/// Seals `draft` with attachments; returns the envelope and the sealed blobs.
fn seal_with(
    sender: &SecretKey,
    to: &[&Certificate],
    d: &Draft,
    atts: &[Att],
) -> (SealedEnvelope, Vec<Vec<u8>>) {
    let mut blobs: Vec<Vec<u8>> = atts.iter().map(|_| Vec::new()).collect();
    let inputs = atts
        .iter()
        .zip(blobs.iter_mut())
        .map(|(a, blob)| AttachmentInput {
            checked_type: None,
            name: a.name.into(),
            media_type: "application/dicom".into(),
            source: Box::new(Cursor::new(a.data.clone())),
            sink: Box::new(blob),
        })
        .collect();
    let sealed = seal(sender, to, d, inputs).expect("seal");
    assert_eq!(sealed.attachments.len(), atts.len());
    (sealed.envelope, blobs)
}

#[test]
fn round_trip_one_recipient() {
    let (a, b) = (key("a"), key("b"));
    let d = draft("所見: 左室駆出率 55%。\nfindings line two");
    let (env, _) = seal_with(&a, &[&b.cert()], &d, &[]);
    let o = open(&env, &b, lookup(vec![a.cert()])).expect("open");
    assert_eq!(o.verification, Verification::Valid);
    assert_eq!(o.signer.as_deref(), Some(a.fingerprint().as_str()));
    assert_eq!(o.inner.headers, d.headers);
    assert_eq!(o.inner.sender, d.sender);
    assert_eq!(o.inner.body, d.body);
    assert!(o.inner.manifest.is_empty());
    assert!(o.signed_at.is_some());
    // The sender holds no key slot unless addressed.
    assert!(matches!(
        open(&env, &a, lookup(vec![])),
        Err(CryptoError::NotAddressedToYou)
    ));
}

#[test]
fn structured_fields_are_sealed_and_come_back_in_order() {
    let (a, b) = (key("a"), key("b"));
    let mut d = draft("本文");
    d.fields = vec![
        Field::new("modality", "CT"),
        Field::new("body_part", "胸部"),
        Field::new("clinical_question", "結節影の評価をお願いします。\n二行目"),
    ];
    let (env, _) = seal_with(&a, &[&b.cert()], &d, &[]);
    let o = open(&env, &b, lookup(vec![a.cert()])).expect("open");
    assert_eq!(o.verification, Verification::Valid);
    assert_eq!(o.inner.fields, d.fields);
    assert_eq!(o.inner.body, "本文");
    // Nothing of the form is readable in the sealed bytes.
    let raw = env.as_bytes();
    assert!(!raw.windows(b"body_part".len()).any(|w| w == b"body_part"));
}

#[test]
fn the_place_is_sealed_and_comes_back_and_the_older_format_has_none() {
    let (a, b) = (key("a"), key("b"));
    let mut d = draft("読影所見");
    d.place = Some(Place {
        envelope_id: "01JEXAMPLEENVELOPE".into(),
        thread_id: Some("01JEXAMPLETHREAD".into()),
        step_seq: Some(2),
        step_kind: Some("report".into()),
        item_kind: "reading_request".into(),
        sender_account: "42".into(),
        sender_facility: "F001".into(),
        recipients: vec!["account:T3AN9GX9".into(), "liaison:3710123450".into()],
        created_at: 1_765_000_000,
        patient_blind_index: Some("ab".repeat(32)),
    });
    let (env, _) = seal_with(&a, &[&b.cert()], &d, &[]);
    let o = open(&env, &b, lookup(vec![a.cert()])).expect("open");
    assert_eq!(o.verification, Verification::Valid);
    assert_eq!(o.inner.place, d.place);
    // The place is inside the encryption: no ID is readable in the sealed bytes.
    assert!(!contains(env.as_bytes(), b"01JEXAMPLETHREAD"));
    // A draft without a place opens with none (what older items look like).
    let (env, _) = seal_with(&a, &[&b.cert()], &draft("x"), &[]);
    let o = open(&env, &b, lookup(vec![a.cert()])).expect("open");
    assert_eq!(o.inner.place, None);
}

#[test]
fn round_trip_four_recipients_with_attachments() {
    let a = key("a");
    let rs: Vec<SecretKey> = (0..4).map(|i| key(&format!("r{i}"))).collect();
    let certs: Vec<Certificate> = rs.iter().map(|k| k.cert()).collect();
    let to: Vec<&Certificate> = certs.iter().collect();
    let atts = [
        Att {
            name: "echo.dcm",
            data: b"DICM\x00\x01 marker-bytes".repeat(5000),
        },
        Att {
            name: "empty.txt",
            data: Vec::new(),
        },
    ];
    let (env, blobs) = seal_with(&a, &to, &draft("body"), &atts);
    let slots = key_slots(&env).unwrap();
    assert_eq!(
        slots,
        certs.iter().map(|c| c.key_slot_id()).collect::<Vec<_>>()
    );
    for r in &rs {
        let o = open(&env, r, lookup(vec![a.cert()])).expect("open");
        assert_eq!(o.verification, Verification::Valid);
        assert_eq!(o.inner.manifest.len(), 2);
        for ((entry, blob), att) in o.inner.manifest.iter().zip(&blobs).zip(&atts) {
            assert_eq!(entry.name, att.name);
            assert_eq!(entry.size, att.data.len() as u64);
            let mut out = Vec::new();
            open_attachment(Cursor::new(blob), entry, &mut out).expect("attachment");
            assert_eq!(out, att.data);
        }
        // Plaintext markers never appear in the sealed bytes.
        assert!(!contains(env.as_bytes(), "香川".as_bytes()));
        assert!(!contains(&blobs[0], b"marker-bytes"));
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn unknown_signer_is_reported() {
    let (a, b) = (key("a"), key("b"));
    let (env, _) = seal_with(&a, &[&b.cert()], &draft("x"), &[]);
    let o = open(&env, &b, lookup(vec![])).expect("open");
    assert_eq!(o.verification, Verification::UnknownSigner);
    assert_eq!(o.signer.as_deref(), Some(a.fingerprint().as_str()));
}

#[test]
fn not_addressed_to_you() {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let (env, _) = seal_with(&a, &[&b.cert()], &draft("x"), &[]);
    assert!(matches!(
        open(&env, &c, lookup(vec![a.cert()])),
        Err(CryptoError::NotAddressedToYou)
    ));
    assert!(!env.is_addressed_to(&c.cert()).unwrap());
    // Nor can c add itself.
    assert!(matches!(
        add_key_slot(&env, &c, &c.cert()),
        Err(CryptoError::NotAddressedToYou)
    ));
}

#[test]
fn add_key_slot_forwards_without_touching_the_body() {
    let (a, liaison, doctor) = (key("a"), key("liaison"), key("doctor"));
    let (env, _) = seal_with(&a, &[&liaison.cert()], &draft("forward me"), &[]);
    assert!(matches!(
        open(&env, &doctor, lookup(vec![])),
        Err(CryptoError::NotAddressedToYou)
    ));
    let fwd = add_key_slot(&env, &liaison, &doctor.cert()).expect("add slot");
    // Old envelope (all slots and the SEIPD body) is kept byte for byte; one slot prepended.
    assert!(fwd.as_bytes().ends_with(env.as_bytes()));
    assert_eq!(key_slots(&fwd).unwrap().len(), 2);
    assert!(fwd.is_addressed_to(&doctor.cert()).unwrap());
    let o = open(&fwd, &doctor, lookup(vec![a.cert()])).expect("doctor opens");
    assert_eq!(o.verification, Verification::Valid);
    assert_eq!(o.inner.body, "forward me");
    open(&fwd, &liaison, lookup(vec![a.cert()])).expect("liaison still opens");
    // Idempotent.
    assert_eq!(add_key_slot(&fwd, &liaison, &doctor.cert()).unwrap(), fwd);
}

#[test]
fn lock_unlock_and_password_change() {
    let (a, u) = (key("a"), key("user"));
    let (env, _) = seal_with(&a, &[&u.cert()], &draft("old message"), &[]);
    let locked = u.lock_with(b"correct horse", fast()).unwrap();
    assert_eq!(locked.params().unwrap(), fast());
    assert!(matches!(
        locked.unlock(b"wrong"),
        Err(CryptoError::WrongPassword)
    ));
    let u1 = locked.unlock(b"correct horse").unwrap();
    assert_eq!(u1.fingerprint(), u.fingerprint());
    // Password change: unlock with the old password, lock with the new one.
    let relocked = u1.lock_with("新しいパスワード".as_bytes(), fast()).unwrap();
    let stored = LockedKey::from_bytes(relocked.to_bytes());
    assert!(matches!(
        stored.unlock(b"correct horse"),
        Err(CryptoError::WrongPassword)
    ));
    let u2 = stored.unlock("新しいパスワード".as_bytes()).unwrap();
    assert_eq!(u2.fingerprint(), u.fingerprint());
    assert_eq!(
        open(&env, &u2, lookup(vec![a.cert()])).unwrap().inner.body,
        "old message"
    );
    // Locked bytes hold no recognisable key material and differ per lock (random salt).
    assert_ne!(
        u2.lock_with(b"p", fast()).unwrap(),
        u2.lock_with(b"p", fast()).unwrap()
    );
    // Garbage is malformed, not a wrong password.
    assert!(matches!(
        LockedKey::from_bytes(b"junk".to_vec()).unlock(b"p"),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn default_lock_params_round_trip() {
    let u = key("user");
    let locked = u.lock(b"pw").unwrap();
    assert_eq!(locked.params().unwrap(), LockParams::default());
    assert_eq!(locked.unlock(b"pw").unwrap().fingerprint(), u.fingerprint());
}

#[test]
fn grants_and_recovery() {
    let facility = SecretKey::generate_facility("F001", FacilityRole::Oversight).unwrap();
    let (clerk, liaison, outsider, sender) =
        (key("clerk"), key("liaison"), key("outsider"), key("s"));
    let grant = seal_secret_key(&facility, &[&clerk.cert(), &liaison.cert()]).unwrap();
    let stored = SealedKey::from_bytes(grant.to_bytes());
    for member in [&clerk, &liaison] {
        let k = stored.open(member).unwrap();
        assert_eq!(k.fingerprint(), facility.fingerprint());
    }
    assert!(matches!(
        stored.open(&outsider),
        Err(CryptoError::NotAddressedToYou)
    ));
    // A member opens mail addressed to the facility key through the grant.
    let (env, _) = seal_with(&sender, &[&facility.cert()], &draft("to oversight"), &[]);
    let fk = stored.open(&clerk).unwrap();
    assert_eq!(
        open(&env, &fk, lookup(vec![sender.cert()]))
            .unwrap()
            .inner
            .body,
        "to oversight"
    );

    // Recovery: the secret file round-trips, and a user key sealed to it can be recovered.
    let recovery = RecoveryKey::generate_recovery().unwrap();
    let file = recovery.to_armored_secret().unwrap();
    assert!(file.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
    let recovery2 = SecretKey::from_armored_secret(&file).unwrap();
    assert_eq!(recovery2.fingerprint(), recovery.fingerprint());
    let user = key("user");
    let escrow = seal_secret_key(&user, &[&recovery.cert()]).unwrap();
    let restored = escrow.open(&recovery2).unwrap();
    assert_eq!(restored.fingerprint(), user.fingerprint());
    // Certificates round-trip and hold no secret.
    let c = Certificate::from_bytes(&recovery.cert().to_bytes().unwrap()).unwrap();
    assert_eq!(c, recovery.cert());
    assert!(SecretKey::from_armored_secret(&c.to_armored().unwrap()).is_err());
}

#[test]
fn debug_output_is_redacted() {
    let k = key("secret-holder");
    let s = format!("{k:?}");
    assert!(s.contains("<redacted>") && s.contains(&k.fingerprint()));
    let d = draft("findings: confidential");
    assert!(!format!("{d:?}").contains("confidential"));
}

// ---- tampering ---------------------------------------------------------------

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 0x01;
    v
}

/// Byte range of the first key slot (a new-format packet with a one-octet length).
fn first_slot(env: &[u8]) -> std::ops::Range<usize> {
    assert_eq!(env[0], 0xC1, "PKESK with new-format header");
    let len = env[1] as usize;
    assert!(len < 192);
    2..2 + len
}

#[test]
fn flipped_byte_in_body_is_body_damaged() {
    let (a, b) = (key("a"), key("b"));
    let (env, _) = seal_with(&a, &[&b.cert()], &draft(&"本文 ".repeat(400)), &[]);
    let bytes = env.as_bytes();
    let body_start = first_slot(bytes).end;
    for at in [
        body_start + 60,
        (body_start + bytes.len()) / 2,
        bytes.len() - 40,
        bytes.len() - 1,
    ] {
        let t = SealedEnvelope::from_bytes(flip(bytes, at));
        let r = open(&t, &b, lookup(vec![a.cert()]));
        assert!(
            matches!(r, Err(CryptoError::BodyDamaged)),
            "flip at {at}: {r:?}"
        );
    }
}

#[test]
fn flipped_byte_in_key_slot_is_key_slot_damaged() {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let (env, _) = seal_with(&a, &[&b.cert(), &c.cert()], &draft("x"), &[]);
    let slot = first_slot(env.as_bytes());
    // In the wrapped session key, in the ephemeral key, and in the recipient fingerprint.
    for at in [slot.end - 3, slot.end - 50, slot.start + 10] {
        let t = SealedEnvelope::from_bytes(flip(env.as_bytes(), at));
        let r = open(&t, &b, lookup(vec![a.cert()]));
        assert!(
            matches!(r, Err(CryptoError::KeySlotDamaged)),
            "flip at {at}: {r:?}"
        );
        // The other recipient's slot is intact.
        assert_eq!(
            open(&t, &c, lookup(vec![a.cert()])).unwrap().verification,
            Verification::Valid
        );
    }
}

#[test]
fn attachment_tampering_and_swapping() {
    let (a, b) = (key("a"), key("b"));
    let atts = [
        Att {
            name: "one.bin",
            data: vec![1u8; 300_000],
        },
        Att {
            name: "two.bin",
            data: vec![2u8; 300_000],
        },
    ];
    let (env, blobs) = seal_with(&a, &[&b.cert()], &draft("x"), &atts);
    let o = open(&env, &b, lookup(vec![a.cert()])).unwrap();
    let m = &o.inner.manifest;
    let try_open =
        |blob: &[u8], i: usize| open_attachment(Cursor::new(blob.to_vec()), &m[i], std::io::sink());
    try_open(&blobs[0], 0).expect("intact");
    // Flipped byte anywhere in the blob.
    for at in [10, blobs[0].len() / 2, blobs[0].len() - 1] {
        let r = try_open(&flip(&blobs[0], at), 0);
        assert!(
            matches!(r, Err(CryptoError::AttachmentChanged)),
            "flip at {at}: {r:?}"
        );
    }
    // Swapped blobs.
    assert!(matches!(
        try_open(&blobs[1], 0),
        Err(CryptoError::AttachmentChanged)
    ));
    assert!(matches!(
        try_open(&blobs[0], 1),
        Err(CryptoError::AttachmentChanged)
    ));
    // Truncated blob.
    let r = try_open(&blobs[0][..blobs[0].len() - 100], 0);
    assert!(matches!(r, Err(CryptoError::AttachmentChanged)), "{r:?}");
    // Garbage.
    assert!(matches!(
        try_open(b"not openpgp", 0),
        Err(CryptoError::AttachmentChanged)
    ));
}

#[test]
fn malformed_envelopes_do_not_panic() {
    let (a, b) = (key("a"), key("b"));
    let (env, _) = seal_with(&a, &[&b.cert()], &draft("x"), &[]);
    for len in [0, 1, 5, 40, env.as_bytes().len() - 1] {
        let t = SealedEnvelope::from_bytes(env.as_bytes()[..len].to_vec());
        assert!(open(&t, &b, lookup(vec![])).is_err());
        let _ = key_slots(&t);
    }
    assert!(Certificate::from_bytes(b"garbage").is_err());
    assert!(
        SealedKey::from_bytes(vec![0xC1, 0x03, 0, 0, 0])
            .open(&b)
            .is_err()
    );
    let mut buf = Vec::new();
    assert!(Cursor::new(Vec::<u8>::new()).read_to_end(&mut buf).is_ok());
}

#[test]
fn header_injection_is_refused() {
    let (a, b) = (key("a"), key("b"));
    let mut d = draft("x");
    d.headers.subject = "hi\r\nX-Renkei-Kind: evil".into();
    assert!(matches!(
        seal(&a, &[&b.cert()], &d, vec![]),
        Err(CryptoError::InvalidInput(_))
    ));
}
