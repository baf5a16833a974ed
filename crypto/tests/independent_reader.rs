//! An independent OpenPGP implementation reads what Renkei writes.
//!
//! `src/fast.rs` (X25519 key slots, Ed25519 signatures) and `src/stream.rs`
//! (SEIPDv2 packet, AEAD chunking, partial body lengths, literal packet) write
//! the RFC 9580 framing by hand instead of through Sequoia's writer stack. Read
//! back only by Sequoia, a framing mistake that Sequoia happens to tolerate
//! would go unnoticed until another program (a hospital's archive, a recovery
//! tool, a future Renkei on another library) failed to open years of mail.
//!
//! Here every kind of item is sealed with [`renkei_crypto::seal`], the real
//! sealing path, to several recipients and then read with rPGP (the `pgp`
//! crate) alone: each recipient's exported secret key decrypts the envelope,
//! the signature verifies against the sender's certificate, the inner MIME
//! holds the body, and every attachment blob decrypts with the session key
//! from the signed manifest to the original bytes. Sizes cover the edges of the
//! chunking (a body of a few bytes and one spanning two 256 KiB chunks;
//! attachments of 0 bytes, exactly one chunk, and 1 MiB + 1 byte), and a
//! flipped or missing byte must make rPGP refuse, so the test can fail.
//!
//! Only the body text and the manifest part of the MIME message are relied on,
//! so parts added to the signed message later do not break it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;

use pgp::composed::{
    Deserializable, Edata, Esk, Message, PlainSessionKey, RawSessionKey, SignedPublicKey,
    SignedSecretKey,
};
use pgp::crypto::aead::{AeadAlgorithm, ChunkSize};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{ProtectedDataConfig, SignatureType, SymEncryptedProtectedDataConfig};
use pgp::types::{KeyDetails, Password};
use renkei_crypto::{
    AttachmentInput, Certificate, Draft, Field, Place, ProtectedHeaders, SecretKey,
};
use renkei_crypto::{SenderInfo, seal};
use sha2::{Digest, Sha256};

use common::{Pattern, key};

/// The attachment chunk size Renkei writes (256 KiB).
const CHUNK: usize = 256 << 10;
const MANIFEST_TYPE: &str = "application/vnd.renkei.manifest+json";
const FIELDS_TYPE: &str = "application/vnd.renkei.fields+json";

/// A kind of item: the draft's `headers.kind`, its subject and form fields.
struct Kind {
    kind: &'static str,
    subject: &'static str,
    fields: &'static [(&'static str, &'static str)],
}

const KINDS: [Kind; 8] = [
    Kind {
        kind: "message",
        subject: "ご連絡",
        fields: &[],
    },
    Kind {
        kind: "reading_request",
        subject: "読影依頼: 胸部CT",
        fields: &[
            ("modality", "CT"),
            ("body_part", "胸部"),
            (
                "clinical_question",
                "右上葉の結節影について精査をお願いします。",
            ),
        ],
    },
    Kind {
        kind: "report",
        subject: "読影レポート: 胸部CT",
        fields: &[
            ("findings", "右上葉に径8mmの充実性結節を認めます。"),
            ("impression", "3か月後のCTによる経過観察を推奨します。"),
        ],
    },
    Kind {
        kind: "decline",
        subject: "お受けできません",
        fields: &[("reason", "専門外のため、他院へのご紹介をお願いします。")],
    },
    Kind {
        kind: "referral",
        subject: "紹介状: 心エコー所見",
        fields: &[
            ("purpose", "精査加療のお願い"),
            ("diagnosis", "狭心症の疑い"),
        ],
    },
    Kind {
        kind: "share",
        subject: "経過報告",
        fields: &[],
    },
    Kind {
        kind: "booking",
        subject: "外来予約のお願い",
        fields: &[
            ("preferred_times", "12月10日 午前"),
            ("slot", "2026-12-10T09:30+09:00"),
        ],
    },
    Kind {
        kind: "pathway",
        subject: "地域連携クリティカルパス: 大腿骨頸部骨折",
        fields: &[],
    },
];

/// Bodies: a few bytes, a page, and one spanning two 256 KiB AEAD chunks.
fn body(i: usize) -> String {
    match i % 3 {
        0 => "了解".into(),
        1 => "いつもお世話になっております。検査結果をお送りします。\n".repeat(60),
        _ => "胸部CTにて右上葉に結節影を認めます。経過観察をお願いします。\n".repeat(3300),
    }
}

/// Attachment sizes at the edges of the 256 KiB chunking, one per item in turn.
fn edge_size(i: usize) -> usize {
    [0, CHUNK, (1 << 20) + 1][i % 3]
}

struct Original {
    name: String,
    media_type: &'static str,
    data: Vec<u8>,
}

fn pattern(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    std::io::copy(&mut Pattern::new(len as u64), &mut v).unwrap();
    assert_eq!(v.len(), len);
    v
}

fn draft(k: &Kind, body: String) -> Draft {
    Draft {
        headers: ProtectedHeaders {
            kind: k.kind.into(),
            subject: k.subject.into(),
            patient_id: "P-000123".into(),
            patient_name: "香川 太郎 (カガワ タロウ)".into(),
        },
        sender: SenderInfo {
            account_id: "42".into(),
            name: "讃岐 花子".into(),
            facility: "F001".into(),
        },
        body,
        fields: k.fields.iter().map(|(n, v)| Field::new(*n, *v)).collect(),
        // As the server seals today: the item's place signed with it.
        place: Some(Place {
            envelope_id: format!("ENV-{}", k.kind),
            thread_id: Some("THREAD-1".into()),
            step_seq: Some(2),
            step_kind: Some(k.kind.into()),
            item_kind: k.kind.into(),
            sender_account: "42".into(),
            sender_facility: "F001".into(),
            recipients: vec!["account:42".into(), "liaison:F002".into()],
            created_at: 1_765_000_000,
            patient_blind_index: Some("ab".repeat(32)),
        }),
    }
}

/// Seals through the real path; returns the envelope bytes and the blobs.
fn seal_item(
    sender: &SecretKey,
    to: &[&Certificate],
    d: &Draft,
    atts: &[Original],
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut blobs: Vec<Vec<u8>> = atts.iter().map(|_| Vec::new()).collect();
    let inputs = atts
        .iter()
        .zip(blobs.iter_mut())
        .map(|(a, blob)| AttachmentInput {
            checked_type: None,
            name: a.name.clone(),
            media_type: a.media_type.into(),
            source: Box::new(Cursor::new(a.data.clone())),
            sink: Box::new(blob),
        })
        .collect();
    let sealed = seal(sender, to, d, inputs).expect("seal");
    assert_eq!(sealed.attachments.len(), atts.len());
    for (s, a) in sealed.attachments.iter().zip(atts) {
        assert_eq!(s.plain_size, a.data.len() as u64);
    }
    (sealed.envelope.to_bytes(), blobs)
}

/// A recipient as rPGP sees it: the secret key exported from Renkei, and the
/// fingerprint its key slots name.
struct Reader {
    secret: SignedSecretKey,
    slot: String,
}

fn rpgp_reader(k: &SecretKey) -> Reader {
    let armored = k.to_armored_secret().expect("export secret key");
    let (secret, _) = SignedSecretKey::from_string(&armored).expect("rPGP parses the secret key");
    secret
        .verify_bindings()
        .expect("rPGP accepts the self-signatures");
    let slot = k.cert().key_slot_id().0;
    assert!(
        secret
            .secret_subkeys
            .iter()
            .any(|s| format!("{:X}", s.key.fingerprint()) == slot),
        "rPGP sees the encryption subkey Renkei addresses"
    );
    Reader { secret, slot }
}

fn rpgp_cert(c: &Certificate) -> SignedPublicKey {
    let cert = SignedPublicKey::from_bytes(&c.to_bytes().expect("cert bytes")[..])
        .expect("rPGP parses the certificate");
    cert.verify_bindings()
        .expect("rPGP accepts the certificate's self-signatures");
    assert_eq!(format!("{:X}", cert.fingerprint()), c.fingerprint());
    cert
}

/// The SEIPDv2 parameters rPGP reads off an encrypted message, and the
/// recipients its key slots name.
fn seipd2_params(msg: &Message<'_>) -> (ChunkSize, Vec<String>) {
    let Message::Encrypted { esk, edata, .. } = msg else {
        panic!("not an encrypted message");
    };
    let Edata::SymEncryptedProtectedData { reader } = edata else {
        panic!("not a SEIPD packet");
    };
    let ProtectedDataConfig::Seipd(SymEncryptedProtectedDataConfig::V2 {
        sym_alg,
        aead,
        chunk_size,
        ..
    }) = reader.config()
    else {
        panic!("not SEIPDv2: {:?}", reader.config());
    };
    assert_eq!(*sym_alg, SymmetricKeyAlgorithm::AES256);
    assert_eq!(*aead, AeadAlgorithm::Ocb);
    let slots = esk
        .iter()
        .map(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(p) => {
                assert_eq!(p.version(), pgp::types::PkeskVersion::V6);
                let fp = p.fingerprint().expect("v6 key slot").expect("named");
                format!("{fp:X}")
            }
            Esk::SymKeyEncryptedSessionKey(_) => panic!("unexpected password slot"),
        })
        .collect();
    (*chunk_size, slots)
}

type Failure = Box<dyn std::error::Error>;

/// Decrypts and verifies an envelope with rPGP alone; returns the signed MIME.
fn rpgp_open(env: &[u8], r: &Reader, sender: &SignedPublicKey) -> Result<Vec<u8>, Failure> {
    let msg = Message::from_bytes(env)?;
    let mut msg = msg.decrypt(&Password::empty(), &r.secret)?;
    if !msg.is_one_pass_signed() {
        return Err("body is not one-pass signed".into());
    }
    let mime = msg.as_data_vec()?;
    let sig = msg.verify(sender)?;
    if sig.typ() != Some(SignatureType::Binary) {
        return Err(format!("signature type {:?}", sig.typ()).into());
    }
    let issuer = sender.fingerprint();
    if !sig.issuer_fingerprint().contains(&&issuer) {
        return Err("signature does not name the sender's key".into());
    }
    Ok(mime)
}

/// Decrypts an attachment blob (SEIPDv2, no key slot) with rPGP and the
/// session key from the manifest.
fn rpgp_attachment(blob: &[u8], session_key: &[u8]) -> Result<Vec<u8>, Failure> {
    let msg = Message::from_bytes(blob)?;
    let key = PlainSessionKey::V6 {
        key: RawSessionKey::from(session_key),
    };
    let mut msg = msg.decrypt_with_session_key(key)?;
    if !msg.is_literal() {
        return Err("attachment is not one literal packet".into());
    }
    Ok(msg.as_data_vec()?)
}

/// One attachment as the signed manifest lists it.
struct Entry {
    name: String,
    media_type: String,
    size: u64,
    sha256: String,
    session_key: Vec<u8>,
}

/// Reads the signed MIME message: body text, field values (if any), manifest.
fn read_mime(mime: &[u8]) -> (String, String, Option<serde_json::Value>, Vec<Entry>) {
    use mail_parser::{MessageParser, MimeHeaders};
    let msg = MessageParser::new().parse(mime).expect("MIME parses");
    let body = msg.body_text(0).expect("a text body").into_owned();
    let subject = msg.subject().unwrap_or_default().to_owned();
    let part = |ty: &str| {
        msg.attachments().find(|p| {
            p.content_type().is_some_and(|ct| {
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
                    .eq_ignore_ascii_case(ty)
            })
        })
    };
    let fields = part(FIELDS_TYPE).map(|p| serde_json::from_slice(p.contents()).expect("fields"));
    let manifest: serde_json::Value =
        serde_json::from_slice(part(MANIFEST_TYPE).expect("manifest part").contents())
            .expect("manifest JSON");
    assert_eq!(manifest["v"], 1);
    let entries = manifest["attachments"]
        .as_array()
        .expect("attachment list")
        .iter()
        .map(|e| {
            assert_eq!(e["cipher"], "AES256-OCB");
            let s = |k: &str| e[k].as_str().expect(k).to_owned();
            Entry {
                name: s("name"),
                media_type: s("media_type"),
                size: e["size"].as_u64().expect("size"),
                sha256: s("sha256"),
                session_key: hex::decode(s("session_key")).expect("hex session key"),
            }
        })
        .collect();
    (body, subject, fields, entries)
}

/// The signed place part of an inner message, as JSON.
fn place_of(mime: &[u8]) -> serde_json::Value {
    use mail_parser::{MessageParser, MimeHeaders};
    let msg = MessageParser::new().parse(mime).expect("MIME parses");
    let part = msg
        .attachments()
        .find(|p| {
            p.content_type().is_some_and(|ct| {
                ct.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("vnd.renkei.place+json"))
            })
        })
        .expect("a place part");
    serde_json::from_slice(part.contents()).expect("place JSON")
}

/// The sender, three recipients (a doctor and a facility's two keys) and their
/// rPGP forms.
struct Cast {
    sender: SecretKey,
    sender_rpgp: SignedPublicKey,
    to: Vec<SecretKey>,
    readers: Vec<Reader>,
}

fn cast() -> Cast {
    let sender = key("sender");
    let to = vec![
        key("doctor"),
        SecretKey::generate_facility("F002", renkei_crypto::FacilityRole::LiaisonInbox).unwrap(),
        SecretKey::generate_facility("F002", renkei_crypto::FacilityRole::Oversight).unwrap(),
    ];
    Cast {
        sender_rpgp: rpgp_cert(&sender.cert()),
        readers: to.iter().map(rpgp_reader).collect(),
        sender,
        to,
    }
}

fn attachments_for(i: usize) -> Vec<Original> {
    vec![
        Original {
            name: "紹介状.txt".into(),
            media_type: "text/plain; charset=utf-8",
            data: "紹介状\n香川 太郎 様\n".repeat(40).into_bytes(),
        },
        Original {
            name: format!("study-{i}.dcm"),
            media_type: "application/dicom",
            data: pattern(edge_size(i)),
        },
    ]
}

#[test]
fn every_kind_of_item_opens_and_verifies_in_rpgp() {
    let c = cast();
    let to: Vec<Certificate> = c.to.iter().map(SecretKey::cert).collect();
    let to: Vec<&Certificate> = to.iter().collect();
    for (i, k) in KINDS.iter().enumerate() {
        let text = body(i);
        let d = draft(k, text.clone());
        let originals = attachments_for(i);
        let (env, blobs) = seal_item(&c.sender, &to, &d, &originals);

        let (chunk, slots) = seipd2_params(&Message::from_bytes(&env[..]).unwrap());
        let want: Vec<&str> = c.readers.iter().map(|r| r.slot.as_str()).collect();
        assert_eq!(slots, want, "{}: one v6 key slot per recipient", k.kind);
        assert!(
            (ChunkSize::C4KiB..=ChunkSize::C256KiB).contains(&chunk),
            "{}: body chunk {chunk:?}",
            k.kind
        );
        if text.len() < 100 {
            assert_eq!(
                chunk,
                ChunkSize::C4KiB,
                "{}: small body, one 4 KiB chunk",
                k.kind
            );
        }
        if text.len() > CHUNK {
            assert_eq!(chunk, ChunkSize::C256KiB, "{}: large body", k.kind);
        }

        let mut manifests = Vec::new();
        for r in &c.readers {
            let mime = rpgp_open(&env, r, &c.sender_rpgp)
                .unwrap_or_else(|e| panic!("{}: rPGP cannot open the body: {e}", k.kind));
            let (got_body, subject, fields, entries) = read_mime(&mime);
            assert_eq!(got_body, text, "{}: body text", k.kind);
            assert_eq!(subject, k.subject, "{}: subject", k.kind);
            assert_eq!(
                place_of(&mime)["envelope_id"],
                format!("ENV-{}", k.kind),
                "{}: the signed place is in what rPGP verified",
                k.kind
            );
            if !k.fields.is_empty() {
                let fields = fields.unwrap_or_else(|| panic!("{}: no fields part", k.kind));
                for (n, v) in k.fields {
                    let found = fields
                        .as_array()
                        .expect("field list")
                        .iter()
                        .any(|f| f["name"] == *n && f["value"] == *v);
                    assert!(found, "{}: field {n}", k.kind);
                }
            }
            manifests.push(entries);
        }

        let entries = &manifests[0];
        assert_eq!(entries.len(), originals.len(), "{}: manifest", k.kind);
        for (e, (orig, blob)) in entries.iter().zip(originals.iter().zip(&blobs)) {
            assert_eq!(e.name, orig.name);
            assert_eq!(e.media_type, orig.media_type);
            assert_eq!(e.size, orig.data.len() as u64);
            let digest = hex::encode(Sha256::digest(&orig.data));
            assert_eq!(e.sha256, digest, "{}: manifest digest", k.kind);
            for other in &manifests[1..] {
                let same = other.iter().any(|o| o.session_key == e.session_key);
                assert!(same, "every recipient reads the same attachment key");
            }

            let (chunk, slots) = seipd2_params(&Message::from_bytes(&blob[..]).unwrap());
            assert_eq!(chunk, ChunkSize::C256KiB, "attachment chunk size");
            assert!(slots.is_empty(), "an attachment carries no key slot");
            let plain = rpgp_attachment(blob, &e.session_key).unwrap_or_else(|err| {
                panic!(
                    "{}: rPGP cannot open a {}-byte attachment: {err}",
                    k.kind,
                    orig.data.len()
                )
            });
            assert_eq!(plain.len(), orig.data.len(), "{}: attachment size", k.kind);
            assert!(plain == orig.data, "{}: attachment bytes", k.kind);
            assert_eq!(hex::encode(Sha256::digest(&plain)), e.sha256);
        }
    }
}

#[test]
fn every_attachment_size_edge_in_one_item() {
    let c = cast();
    let doctor = c.to[0].cert();
    let sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, (1 << 20) + 1];
    let originals: Vec<Original> = sizes
        .iter()
        .map(|n| Original {
            name: format!("{n}.bin"),
            media_type: "application/octet-stream",
            data: pattern(*n),
        })
        .collect();
    let d = draft(&KINDS[2], body(2));
    let (env, blobs) = seal_item(&c.sender, &[&doctor], &d, &originals);
    let mime = rpgp_open(&env, &c.readers[0], &c.sender_rpgp)
        .unwrap_or_else(|e| panic!("rPGP opens the body: {e}"));
    let (got_body, _, _, entries) = read_mime(&mime);
    assert_eq!(got_body, body(2));
    assert_eq!(entries.len(), sizes.len());
    for (e, (orig, blob)) in entries.iter().zip(originals.iter().zip(&blobs)) {
        let plain = rpgp_attachment(blob, &e.session_key)
            .unwrap_or_else(|err| panic!("{} bytes: {err}", orig.data.len()));
        assert!(plain == orig.data, "{} bytes differ", orig.data.len());
    }
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 0x01;
    v
}

#[test]
fn rpgp_rejects_a_flipped_byte_in_body_or_attachment() {
    let c = cast();
    let doctor = c.to[0].cert();
    let r = &c.readers[0];
    let originals = vec![
        Original {
            name: "empty.bin".into(),
            media_type: "application/octet-stream",
            data: Vec::new(),
        },
        Original {
            name: "big.dcm".into(),
            media_type: "application/dicom",
            data: pattern((1 << 20) + 1),
        },
    ];
    for text in [body(0), body(2)] {
        let d = draft(&KINDS[2], text);
        let (env, blobs) = seal_item(&c.sender, &[&doctor], &d, &originals);
        // The untouched copies open, so a refusal below is the flip's doing.
        let mime =
            rpgp_open(&env, r, &c.sender_rpgp).unwrap_or_else(|e| panic!("intact body opens: {e}"));
        let (_, _, _, entries) = read_mime(&mime);
        for (e, blob) in entries.iter().zip(&blobs) {
            rpgp_attachment(blob, &e.session_key)
                .unwrap_or_else(|e| panic!("intact attachment opens: {e}"));
        }

        // Body ciphertext: in the middle, and just before the two final tags.
        for at in [env.len() / 2, env.len() - 40] {
            assert!(
                rpgp_open(&flip(&env, at), r, &c.sender_rpgp).is_err(),
                "rPGP accepted an envelope of {} bytes with byte {at} flipped",
                env.len()
            );
        }
        assert!(rpgp_open(&env[..env.len() - 1], r, &c.sender_rpgp).is_err());
        // The signature must be the sender's: another certificate refuses it.
        let stranger = rpgp_cert(&key("stranger").cert());
        assert!(rpgp_open(&env, r, &stranger).is_err());

        for (e, blob) in entries.iter().zip(&blobs) {
            for at in [blob.len() / 2, blob.len() - 1] {
                assert!(
                    rpgp_attachment(&flip(blob, at), &e.session_key).is_err(),
                    "rPGP accepted a {}-byte blob with byte {at} flipped",
                    blob.len()
                );
            }
            assert!(rpgp_attachment(&blob[..blob.len() - 1], &e.session_key).is_err());
            let mut wrong = e.session_key.clone();
            wrong[0] ^= 1;
            assert!(rpgp_attachment(blob, &wrong).is_err());
        }
    }
}

/// The frozen fixture (`tests/fixtures`, the format as first shipped) opens in
/// rPGP too, down to the reader's password-locked key (SKESK v6 with Argon2).
#[test]
fn rpgp_opens_the_frozen_fixture() {
    let read = |name: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::read(path.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    };
    let locked = read("reader.locked");
    let mut unlocked = Message::from_bytes(&locked[..])
        .unwrap()
        .decrypt_with_password(&Password::from("frozen-fixture-password"))
        .unwrap_or_else(|e| panic!("rPGP unlocks the locked key: {e}"));
    let tsk = unlocked.as_data_vec().unwrap();
    let secret = SignedSecretKey::from_bytes(&tsk[..]).expect("rPGP parses the unlocked key");
    secret.verify_bindings().unwrap();
    let sender = SignedPublicKey::from_bytes(&read("sender.cert")[..]).unwrap();
    let r = Reader {
        secret,
        slot: String::new(),
    };
    let mime = rpgp_open(&read("envelope.pgp"), &r, &sender)
        .unwrap_or_else(|e| panic!("rPGP opens the frozen envelope: {e}"));
    let (body, subject, _, entries) = read_mime(&mime);
    assert_eq!(body, "右上葉に8mmの結節影。経過観察を推奨します。");
    assert_eq!(subject, "読影レポート");
    assert_eq!(entries.len(), 1);
    let plain = rpgp_attachment(&read("attachment.pgp"), &entries[0].session_key)
        .unwrap_or_else(|e| panic!("rPGP opens the frozen attachment: {e}"));
    assert_eq!(plain, b"DICM frozen fixture attachment \x00\x01\x02\x03");
    assert_eq!(hex::encode(Sha256::digest(&plain)), entries[0].sha256);
}
