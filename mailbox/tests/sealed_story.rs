//! Sealed envelopes through the domain services, on both storage backends: who can
//! open what (in the slot table and in the crypto), tampering, password changes
//! and resets, grants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use common::fresh_store;
use mailbox::postroom::{
    ArchiveScope, BlobStore, Consent, ConsentMethod, Outgoing, OutgoingAttachment, Postroom,
    Recipient, SignatureStatus,
};
use mailbox::{
    AccountId, AuthPolicy, CurrentSession, Directory, Error, Facility, FacilityCode, NetworkPolicy,
    NewAccount, Password, Role,
};
use renkei_crypto::{BlindIndexKey, CryptoError, LockParams, SealedEnvelope};

fn consent() -> Consent {
    Consent {
        obtained_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        method: ConsentMethod::Written,
        obtained_by: "坂出 明美".into(),
    }
}

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";

/// A DICOM file whose data is `body`.
fn dicom(body: &[u8]) -> Vec<u8> {
    imaging::sample::with_payload(body)
}

struct Net {
    t: common::TestStore,
    dir: Arc<Directory>,
    post: Postroom,
}

struct Person {
    id: AccountId,
    pw: Password,
}

async fn net() -> Net {
    let t = fresh_store().await;
    let policy = AuthPolicy {
        key_lock: LockParams::insecure_for_tests(),
        second_factor_required: false,
        ..AuthPolicy::default()
    };
    let dir = Arc::new(Directory::new(
        t.store.clone(),
        policy,
        NetworkPolicy::default(),
    ));
    for (code, name) in [(HOSPITAL, "さぬき中央病院"), (CLINIC, "ことひら内科")] {
        dir.add_facility(Facility {
            code: FacilityCode::parse(code).unwrap(),
            name: name.into(),
            address: String::new(),
            phone: String::new(),
            departments: vec![],
            publish_details: true,
            city: String::new(),
            public_note: String::new(),
            active_from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
            active_until: None,
            approval_ref: None,
        })
        .await
        .unwrap();
    }
    let post = Postroom::new(
        dir.clone(),
        BlobStore::new(t.dir.path().join("blobs")),
        Arc::new(BlindIndexKey::generate().unwrap()),
    );
    Net { t, dir, post }
}

impl Net {
    async fn person(&self, role: Role, facility: Option<&str>, name: &str) -> Person {
        let pw = Password::new(format!("Pass-{name}-2026!"));
        let a = self
            .dir
            .add_account_with_password(
                NewAccount {
                    role,
                    facility: facility.map(|f| FacilityCode::parse(f).unwrap()),
                    name: name.into(),
                    email: None,
                },
                &pw,
                false,
            )
            .await
            .unwrap();
        Person { id: a.id, pw }
    }

    async fn sign_in(&self, p: &Person) -> CurrentSession {
        self.dir
            .sign_in(p.id.as_str(), &p.pw, None)
            .await
            .unwrap()
            .1
    }

    async fn send(
        &self,
        from: &CurrentSession,
        to: Vec<Recipient>,
        body: &str,
        files: &[(&str, Vec<u8>)],
    ) -> String {
        let attachments = files
            .iter()
            .map(|(name, bytes)| OutgoingAttachment {
                name: (*name).into(),
                media_type: "application/dicom".into(),
                source: Box::new(Cursor::new(bytes.clone())),
            })
            .collect();
        self.post
            .send(
                from,
                Outgoing {
                    kind: "reading_request".into(),
                    to,
                    subject: "胸部CT 読影依頼".into(),
                    patient_id: "P-0001".into(),
                    patient_name: "香川 太郎".into(),
                    body: body.into(),
                    consent: Some(consent()),
                },
                attachments,
            )
            .await
            .unwrap()
    }

    async fn attachment(
        &self,
        s: &CurrentSession,
        id: &str,
        index: usize,
    ) -> Result<Vec<u8>, Error> {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        self.post
            .open_attachment(s, id, index, sink.clone())
            .await?;
        Ok(sink.0.lock().unwrap().clone())
    }
}

#[tokio::test]
async fn who_can_open_what() {
    let n = net().await;
    let radiologist = n.person(Role::Doctor, Some(HOSPITAL), "radiologist").await;
    let colleague = n.person(Role::Doctor, Some(HOSPITAL), "colleague").await;
    let clerk = n.person(Role::Clerk, Some(HOSPITAL), "clerk").await;
    let liaison = n.person(Role::Liaison, Some(HOSPITAL), "liaison").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_clerk = n.person(Role::Clerk, Some(CLINIC), "gpclerk").await;
    let operator = n.person(Role::Operator, None, "operator").await;
    // The clerk made the oversight key; the liaison waits for it until the clerk signs in.
    let pending = n.dir.pending_grants().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].role.as_str(), pending[0].account_id.as_str()),
        ("oversight", liaison.id.as_str())
    );
    let clerk_s = n.sign_in(&clerk).await;
    assert!(n.dir.pending_grants().await.unwrap().is_empty());

    let gp_s = n.sign_in(&gp).await;
    let study = dicom(&b"fake slice with a marker".repeat(1000));
    let id = n
        .send(
            &gp_s,
            vec![Recipient::Person(radiologist.id.clone())],
            "所見をお願いします",
            &[("ct-001.dcm", study.clone())],
        )
        .await;

    // The addressed doctor reads it, signed and intact.
    let rad_s = n.sign_in(&radiologist).await;
    let item = n.post.open(&rad_s, &id).await.unwrap();
    assert_eq!(item.body, "所見をお願いします");
    assert_eq!(item.patient_name, "香川 太郎");
    assert_eq!(item.signature, SignatureStatus::Valid);
    assert_eq!(
        item.consent,
        Some(consent()),
        "the consent record travels with the item"
    );
    assert_eq!(item.sender_id, gp.id.as_str());
    assert_eq!(item.attachments[0].size, study.len() as u64);
    assert_eq!(n.attachment(&rad_s, &id, 0).await.unwrap(), study);

    // The receiving facility's clerk reads through the oversight key; so does the sender's.
    let as_clerk = n.post.open(&clerk_s, &id).await.unwrap();
    assert_eq!(as_clerk.opened_as.key(), format!("oversight:{HOSPITAL}"));
    let gp_clerk_s = n.sign_in(&gp_clerk).await;
    assert_eq!(
        n.post.open(&gp_clerk_s, &id).await.unwrap().signature,
        SignatureStatus::Valid
    );
    // The sender keeps a slot for the Sent folder.
    n.post.open(&gp_s, &id).await.unwrap();

    // A colleague in the same facility who was not addressed: refused by the service…
    let col_s = n.sign_in(&colleague).await;
    assert!(matches!(
        n.post.open(&col_s, &id).await,
        Err(Error::NotFound("item"))
    ));
    assert!(matches!(
        n.attachment(&col_s, &id, 0).await,
        Err(Error::NotFound("item"))
    ));
    // …and by the crypto: the colleague's key has no slot.
    let body = n.t.store.envelope(&id).await.unwrap().unwrap().body;
    let kr = n.dir.keyring(&col_s).unwrap();
    let err =
        renkei_crypto::open(&SealedEnvelope::from_bytes(body), &kr.user, |_| None).unwrap_err();
    assert!(matches!(err, CryptoError::NotAddressedToYou), "{err:?}");

    // The operator has no key and reads nothing.
    let op_s = n.sign_in(&operator).await;
    assert!(n.dir.keyring(&op_s).is_none());
    assert!(matches!(
        n.post.open(&op_s, &id).await,
        Err(Error::Forbidden)
    ));

    // To the liaison inbox, then handed to the radiologist by adding a key slot.
    let to_inbox = n
        .send(
            &gp_s,
            vec![Recipient::LiaisonInbox(
                FacilityCode::parse(HOSPITAL).unwrap(),
            )],
            "どなたか読影を",
            &[],
        )
        .await;
    let liaison_s = n.sign_in(&liaison).await;
    let via_inbox = n.post.open(&liaison_s, &to_inbox).await.unwrap();
    assert_eq!(via_inbox.opened_as.key(), format!("liaison:{HOSPITAL}"));
    assert!(matches!(
        n.post.open(&rad_s, &to_inbox).await,
        Err(Error::NotFound(_))
    ));
    let before = n.t.store.envelope(&to_inbox).await.unwrap().unwrap().body;
    n.post
        .forward(&liaison_s, &to_inbox, &radiologist.id)
        .await
        .unwrap();
    let after = n.t.store.envelope(&to_inbox).await.unwrap().unwrap().body;
    assert!(
        after.ends_with(&before),
        "forwarding only prepends a key slot"
    );
    let forwarded = n.post.open(&rad_s, &to_inbox).await.unwrap();
    assert_eq!(forwarded.body, "どなたか読影を");
    assert_eq!(forwarded.signature, SignatureStatus::Valid);
    assert!(matches!(
        n.post.open(&col_s, &to_inbox).await,
        Err(Error::NotFound(_))
    ));
    // Only to a doctor of the same facility, and never by a clerk (who reads it
    // through the oversight key but changes nothing).
    assert!(matches!(
        n.post.forward(&liaison_s, &to_inbox, &gp.id).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        n.post.forward(&clerk_s, &to_inbox, &colleague.id).await,
        Err(Error::Forbidden)
    ));

    // No consent, no send.
    let refused = n
        .post
        .send(
            &gp_s,
            Outgoing {
                kind: "referral".into(),
                to: vec![Recipient::Person(radiologist.id.clone())],
                subject: "紹介".into(),
                patient_id: "P-2".into(),
                patient_name: "讃岐 花子".into(),
                body: "…".into(),
                consent: None,
            },
            vec![],
        )
        .await;
    assert!(matches!(
        refused,
        Err(Error::Invalid {
            field: "consent",
            ..
        })
    ));
    // A consent record must name who obtained it, and cannot be dated in the future.
    for (bad, field) in [
        (
            Consent {
                obtained_by: " ".into(),
                ..consent()
            },
            "consent.obtained_by",
        ),
        (
            Consent {
                obtained_on: chrono::Local::now().date_naive() + chrono::Days::new(2),
                ..consent()
            },
            "consent.obtained_on",
        ),
    ] {
        let r = n
            .post
            .send(
                &gp_s,
                Outgoing {
                    kind: "referral".into(),
                    to: vec![Recipient::Person(radiologist.id.clone())],
                    subject: "紹介".into(),
                    patient_id: "P-2".into(),
                    patient_name: "讃岐 花子".into(),
                    body: "…".into(),
                    consent: Some(bad),
                },
                vec![],
            )
            .await;
        assert!(
            matches!(r, Err(Error::Invalid { field: f, .. }) if f == field),
            "{r:?}"
        );
    }
    assert_eq!(n.post.list(&rad_s).await.unwrap().len(), 2);

    // An executable renamed to .dcm is refused by content, naming the file; nothing
    // of the refused submission is left behind.
    let blobs_before = count_files(&n.t.dir.path().join("blobs"));
    let refused = n
        .post
        .send(
            &gp_s,
            Outgoing {
                kind: "reading_request".into(),
                to: vec![Recipient::Person(radiologist.id.clone())],
                subject: "CT".into(),
                patient_id: "P-0001".into(),
                patient_name: "香川 太郎".into(),
                body: "…".into(),
                consent: Some(consent()),
            },
            vec![
                OutgoingAttachment {
                    name: "ok.dcm".into(),
                    media_type: "application/dicom".into(),
                    source: Box::new(Cursor::new(dicom(b"fine"))),
                },
                OutgoingAttachment {
                    name: "scan.dcm".into(),
                    media_type: "application/dicom".into(),
                    source: Box::new(Cursor::new(b"MZ\x90\x00 a Windows program".to_vec())),
                },
            ],
        )
        .await;
    match refused {
        Err(Error::Invalid {
            field: "attachment",
            reason,
            reason_ja,
        }) => {
            assert!(
                reason.contains("scan.dcm") && reason.contains("executable"),
                "{reason}"
            );
            assert!(
                reason_ja.contains("scan.dcm") && reason_ja.contains("実行形式"),
                "{reason_ja}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(n.post.list(&rad_s).await.unwrap().len(), 2);
    assert_eq!(count_files(&n.t.dir.path().join("blobs")), blobs_before);
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// DESIGN's role table: a doctor forwards their own items to a colleague of
/// the same facility; the colleague's key slot is made with the doctor's own key.
#[tokio::test]
async fn a_doctor_forwards_an_own_item_to_a_colleague_of_the_same_facility() {
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let colleague = n.person(Role::Doctor, Some(HOSPITAL), "colleague").await;
    let third = n.person(Role::Doctor, Some(HOSPITAL), "third").await;
    let liaison = n.person(Role::Liaison, Some(HOSPITAL), "liaison").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_colleague = n.person(Role::Doctor, Some(CLINIC), "gpcolleague").await;
    let gp_s = n.sign_in(&gp).await;
    let study = dicom(b"slice for a second opinion");
    let id = n
        .send(
            &gp_s,
            vec![Recipient::Person(rad.id.clone())],
            "ご意見をお願いします",
            &[("ct.dcm", study.clone())],
        )
        .await;
    let rad_s = n.sign_in(&rad).await;
    let col_s = n.sign_in(&colleague).await;
    let third_s = n.sign_in(&third).await;
    assert!(matches!(
        n.post.open(&col_s, &id).await,
        Err(Error::NotFound(_))
    ));

    // A doctor who cannot open the item cannot forward it (nor learn it exists).
    assert!(matches!(
        n.post.forward(&third_s, &id, &colleague.id).await,
        Err(Error::NotFound("item"))
    ));
    // Nor through the shared inbox: it was addressed to the doctor, not the office.
    let liaison_s = n.sign_in(&liaison).await;
    assert!(matches!(
        n.post.forward(&liaison_s, &id, &colleague.id).await,
        Err(Error::Forbidden)
    ));
    // Only to a doctor of the forwarder's own facility, not to oneself.
    for target in [&gp_colleague.id, &liaison.id, &rad.id] {
        assert!(
            matches!(
                n.post.forward(&rad_s, &id, target).await,
                Err(Error::Invalid { field: "to", .. })
            ),
            "forwarding to {target} must be refused"
        );
    }
    let slots_before = n.t.store.envelope_slots(&id).await.unwrap().len();

    // The addressed doctor forwards: the colleague opens it, verified, files intact.
    n.post.forward(&rad_s, &id, &colleague.id).await.unwrap();
    let opened = n.post.open(&col_s, &id).await.unwrap();
    assert_eq!(opened.body, "ご意見をお願いします");
    assert_eq!(opened.signature, SignatureStatus::Valid);
    assert_eq!(n.attachment(&col_s, &id, 0).await.unwrap(), study);
    let slots = n.t.store.envelope_slots(&id).await.unwrap();
    assert_eq!(slots.len(), slots_before + 1);
    let added = slots
        .iter()
        .find(|s| s.principal == format!("account:{}", colleague.id.as_str()))
        .expect("the colleague's slot");
    assert_eq!(added.added_by.as_deref(), Some(rad.id.as_str()));
    // It is in the colleague's Inbox, and the forward is in the audit trail.
    let inbox = n.post.mailbox(&col_s, "inbox").await.unwrap();
    assert!(inbox.iter().any(|e| e.envelope_id == id));
    let audit = n.dir.audit().all_entries(0, i64::MAX).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "forward"
        && e.actor.as_deref() == Some(rad.id.as_str())
        && e.item.as_deref() == Some(id.as_str())
        && e.detail.as_deref() == Some(&*format!("to={}", colleague.id.as_str()))));
    // The sender may forward too, inside the clinic only.
    n.post.forward(&gp_s, &id, &gp_colleague.id).await.unwrap();
    let gp_col_s = n.sign_in(&gp_colleague).await;
    assert_eq!(
        n.post.open(&gp_col_s, &id).await.unwrap().body,
        "ご意見をお願いします"
    );
    // The third doctor of the hospital still has nothing.
    assert!(matches!(
        n.post.open(&third_s, &id).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn tampering_gives_distinct_statuses() {
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let rad_s = n.sign_in(&rad).await;
    let files = [
        ("a.dcm", dicom(&[1u8; 70_000])),
        ("b.dcm", dicom(&[2u8; 50_000])),
    ];
    let id = n
        .send(
            &gp_s,
            vec![Recipient::Person(rad.id.clone())],
            "original",
            &files,
        )
        .await;
    let good = n.t.store.envelope(&id).await.unwrap().unwrap().body;

    // A flipped byte in the encrypted body.
    let mut body = good.clone();
    let last = body.len() - 20;
    body[last] ^= 0x01;
    n.t.store.overwrite_body(&id, &body).await.unwrap();
    assert!(matches!(
        n.post.open(&rad_s, &id).await,
        Err(Error::Tampered("body"))
    ));

    // A flipped byte inside the reader's key slot (the first packet: a PKESK whose
    // new-format header gives its length in the second byte).
    let mut body = good.clone();
    assert_eq!(body[0], 0xC1, "starts with a new-format PKESK packet");
    let first_len = 2 + body[1] as usize;
    body[first_len - 3] ^= 0x01;
    n.t.store.overwrite_body(&id, &body).await.unwrap();
    assert!(
        matches!(
            n.post.open(&rad_s, &id).await,
            Err(Error::Tampered("key_slot"))
        ),
        "{:?}",
        n.post.open(&rad_s, &id).await.err()
    );
    n.t.store.overwrite_body(&id, &good).await.unwrap();
    assert_eq!(
        n.post.open(&rad_s, &id).await.unwrap().signature,
        SignatureStatus::Valid
    );

    // A flipped byte in an attachment blob.
    let path0 = n.post.blobs().file_path(&format!("{id}/0")).unwrap();
    let path1 = n.post.blobs().file_path(&format!("{id}/1")).unwrap();
    let blob0 = std::fs::read(&path0).unwrap();
    let mut bad = blob0.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x80;
    std::fs::write(&path0, &bad).unwrap();
    assert!(matches!(
        n.attachment(&rad_s, &id, 0).await,
        Err(Error::Tampered("attachment"))
    ));
    // Swapped blobs: each is a fine OpenPGP message, but not the one the manifest signed.
    let blob1 = std::fs::read(&path1).unwrap();
    std::fs::write(&path0, &blob1).unwrap();
    std::fs::write(&path1, &blob0).unwrap();
    assert!(matches!(
        n.attachment(&rad_s, &id, 0).await,
        Err(Error::Tampered("attachment"))
    ));
    assert!(matches!(
        n.attachment(&rad_s, &id, 1).await,
        Err(Error::Tampered("attachment"))
    ));
    std::fs::write(&path0, &blob0).unwrap();
    std::fs::write(&path1, &blob1).unwrap();
    let restored = n.attachment(&rad_s, &id, 1).await.unwrap();
    assert!(
        restored == dicom(&[2u8; 50_000]),
        "restored attachment differs ({} bytes)",
        restored.len()
    );
}

#[tokio::test]
async fn password_change_and_resets_keep_or_lose_old_items_as_stated() {
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let id = n
        .send(
            &gp_s,
            vec![Recipient::Person(rad.id.clone())],
            "before",
            &[],
        )
        .await;

    // A password change re-locks the same key; the old item still opens.
    let rad_s = n.sign_in(&rad).await;
    let fp_before =
        n.t.store
            .account_key(&rad.id)
            .await
            .unwrap()
            .unwrap()
            .fingerprint;
    let new_pw = Password::new("Changed-Pass-2026!");
    n.dir
        .change_password(&rad_s, &rad.pw, &new_pw)
        .await
        .unwrap();
    assert_eq!(n.post.open(&rad_s, &id).await.unwrap().body, "before");
    let rad = Person {
        id: rad.id.clone(),
        pw: new_pw,
    };
    let rad_s = n.sign_in(&rad).await;
    assert_eq!(n.post.open(&rad_s, &id).await.unwrap().body, "before");
    assert_eq!(
        n.t.store
            .account_key(&rad.id)
            .await
            .unwrap()
            .unwrap()
            .fingerprint,
        fp_before
    );

    // The recovery key: made after the account, so the key is sealed to it at the
    // next sign-in; a reset with it keeps the key.
    let recovery = n.dir.init_recovery().await.unwrap();
    assert!(matches!(
        n.dir.init_recovery().await,
        Err(Error::Conflict(_))
    ));
    n.sign_in(&rad).await;
    let outcome = n
        .dir
        .reset_password_with(&rad.id, Some(&recovery))
        .await
        .unwrap();
    assert!(!outcome.key_replaced);
    assert!(
        n.dir.keyring(&rad_s).is_none(),
        "a reset ends the person's sessions and wipes their keys"
    );
    let rad = Person {
        id: rad.id.clone(),
        pw: outcome.password,
    };
    let rad_s = n.sign_in(&rad).await;
    assert!(rad_s.account.must_change_password);
    assert_eq!(
        n.t.store
            .account_key(&rad.id)
            .await
            .unwrap()
            .unwrap()
            .fingerprint,
        fp_before
    );
    // A wrong recovery file is refused and changes nothing.
    let stranger = renkei_crypto::SecretKey::generate_recovery().unwrap();
    assert!(matches!(
        n.dir.reset_password_with(&rad.id, Some(&stranger)).await,
        Err(Error::Invalid { .. })
    ));

    // Without the recovery key: a new key, and the outcome names what is lost.
    let outcome = n.dir.reset_password_with(&rad.id, None).await.unwrap();
    assert!(outcome.key_replaced);
    assert_eq!(outcome.unreadable_items, vec![id.clone()]);
    let rad = Person {
        id: rad.id.clone(),
        pw: outcome.password,
    };
    let rad_s = n.sign_in(&rad).await;
    assert_ne!(
        n.t.store
            .account_key(&rad.id)
            .await
            .unwrap()
            .unwrap()
            .fingerprint,
        fp_before
    );
    let change = Password::new("Another-Pass-2026!");
    n.dir
        .change_password(&rad_s, &rad.pw, &change)
        .await
        .unwrap();
    let rad_s = n
        .sign_in(&Person {
            id: rad.id.clone(),
            pw: change,
        })
        .await;
    let lost = n.post.open(&rad_s, &id).await;
    assert!(matches!(lost, Err(Error::NotFound(_))), "{lost:?}");
    // New items reach the new key; the sender's old signature still verifies for others.
    let fresh = n
        .send(&gp_s, vec![Recipient::Person(rad.id.clone())], "after", &[])
        .await;
    assert_eq!(n.post.open(&rad_s, &fresh).await.unwrap().body, "after");
}

#[tokio::test]
async fn later_members_get_grants_and_removal_takes_them() {
    let n = net().await;
    let recovery = n.dir.init_recovery().await.unwrap();
    let liaison = n.person(Role::Liaison, Some(HOSPITAL), "liaison").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let id = n
        .send(
            &gp_s,
            vec![Recipient::LiaisonInbox(
                FacilityCode::parse(HOSPITAL).unwrap(),
            )],
            "inbox item",
            &[],
        )
        .await;

    // A second liaison joins: pending until the operator completes it with the recovery key.
    let second = n.person(Role::Liaison, Some(HOSPITAL), "second").await;
    assert_eq!(n.dir.pending_grants().await.unwrap().len(), 2);
    let s = n.sign_in(&second).await;
    assert!(matches!(
        n.post.open(&s, &id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        n.dir
            .complete_grants_with_recovery(&recovery)
            .await
            .unwrap(),
        2
    );
    let s = n.sign_in(&second).await;
    assert_eq!(n.post.open(&s, &id).await.unwrap().body, "inbox item");

    // A third is completed automatically when the first signs in.
    let third = n.person(Role::Liaison, Some(HOSPITAL), "third").await;
    n.sign_in(&liaison).await;
    assert!(n.dir.pending_grants().await.unwrap().is_empty());
    let s3 = n.sign_in(&third).await;
    assert_eq!(n.post.open(&s3, &id).await.unwrap().body, "inbox item");

    // Removing a member removes the grants and ends the session.
    n.dir.remove_account(&third.id).await.unwrap();
    assert!(n.t.store.grants_of(&third.id).await.unwrap().is_empty());
    assert!(matches!(
        n.dir.sign_in(third.id.as_str(), &third.pw, None).await,
        Err(Error::AccountLocked)
    ));
    assert!(matches!(
        n.dir.set_locked(&third.id, false).await,
        Err(Error::Conflict(_))
    ));
}

/// Opening many at once (a mail client listing a folder) gives, item by item,
/// what opening each alone gives: the same content and signature status, a
/// tampered body refused without failing the others, an item the reader holds
/// no slot of `NotFound`, and nothing marked seen.
#[tokio::test]
async fn opening_many_answers_each_item_as_opening_it_alone() {
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let colleague = n.person(Role::Doctor, Some(HOSPITAL), "colleague").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let rad_s = n.sign_in(&rad).await;
    let mut mine = Vec::new();
    for i in 0..7 {
        let body = format!("所見をお願いします {i}");
        let files = [("a.dcm", dicom(&vec![i as u8; 1000 + i]))];
        mine.push(
            n.send(
                &gp_s,
                vec![Recipient::Person(rad.id.clone())],
                &body,
                &files,
            )
            .await,
        );
    }
    let theirs = n
        .send(
            &gp_s,
            vec![Recipient::Person(colleague.id.clone())],
            "別の方へ",
            &[],
        )
        .await;
    let tampered = mine[3].clone();
    let mut body = n.t.store.envelope(&tampered).await.unwrap().unwrap().body;
    let last = body.len() - 20;
    body[last] ^= 0x01;
    n.t.store.overwrite_body(&tampered, &body).await.unwrap();

    let mut ids = mine.clone();
    ids.push(theirs.clone());
    ids.push("01NOSUCHITEM000000000000".into());
    let many = n.post.peek_many(&rad_s, &ids).await.unwrap();
    assert_eq!(many.len(), ids.len(), "one answer per ID");
    for (id, got) in &many {
        let alone = n.post.peek(&rad_s, id).await;
        match (got, alone) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.body, b.body);
                assert_eq!(a.subject, b.subject);
                assert_eq!(a.signature, b.signature);
                assert_eq!(a.signature, SignatureStatus::Valid);
                assert_eq!(a.attachments.len(), 1);
                assert_eq!(a.attachments[0].size, b.attachments[0].size);
            }
            (Err(Error::Tampered(x)), Err(Error::Tampered(y))) => {
                assert_eq!(*id, tampered);
                assert_eq!(*x, y);
            }
            (Err(Error::NotFound(_)), Err(Error::NotFound(_))) => {
                assert!(*id == theirs || id.starts_with("01NOSUCH"), "{id}");
            }
            (a, b) => panic!("{id}: together {:?}, alone {:?}", a.as_ref().err(), b.err()),
        }
    }
    let ok = many.iter().filter(|(_, r)| r.is_ok()).count();
    assert_eq!(ok, 6, "the six untouched items open");
    let deliverer = mailbox::delivery::Deliverer::new(
        n.t.store.clone(),
        mailbox::delivery::DeliveryPolicy::default(),
    );
    while deliverer.deliver_due().await.unwrap() > 0 {}
    n.post.peek_many(&rad_s, &mine).await.unwrap();
    let inbox =
        n.t.store
            .mailbox(&format!("account:{}", rad.id.as_str()), "inbox", false)
            .await
            .unwrap();
    assert_eq!(inbox.len(), 7, "delivered");
    assert!(inbox.iter().all(|e| !e.seen), "peeking marks nothing seen");
}

#[tokio::test]
async fn an_archive_holds_the_files_of_its_study_or_series_and_streams_them_checked() {
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let other = n.person(Role::Doctor, Some(HOSPITAL), "other").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let slice = |series: &str, k: u32| {
        imaging::sample::instance("2.25.9", series, k, "", "", &[k as u8; 5000])
    };
    let files = [
        ("a1.dcm", slice("2.25.9.1", 1)),
        ("b1.dcm", slice("2.25.9.2", 1)),
        ("a2.dcm", slice("2.25.9.1", 2)),
    ];
    let id = n
        .send(&gp_s, vec![Recipient::Person(rad.id.clone())], "", &files)
        .await;
    let rad_s = n.sign_in(&rad).await;

    let all = n
        .post
        .archive(&rad_s, &id, ArchiveScope::Item)
        .await
        .unwrap();
    let names: Vec<&str> = all.files.iter().map(|f| f.info.name.as_str()).collect();
    assert_eq!(
        names,
        ["a1.dcm", "b1.dcm", "a2.dcm"],
        "not the intake record"
    );
    assert_eq!(all.record.as_ref().unwrap().studies[0].series.len(), 2);
    let a = all.files[0].place.unwrap();
    assert_eq!(all.files[2].place, Some(a));
    assert_ne!(all.files[1].place, Some(a));
    for (i, (_, bytes)) in files.iter().enumerate() {
        let mut out = Vec::new();
        all.stream(i, &mut out).unwrap();
        assert!(out == *bytes, "{i} streams byte for byte");
    }

    let series = n
        .post
        .archive(
            &rad_s,
            &id,
            ArchiveScope::Series {
                study: a.0,
                series: a.1,
            },
        )
        .await
        .unwrap();
    let names: Vec<&str> = series.files.iter().map(|f| f.info.name.as_str()).collect();
    assert_eq!(names, ["a1.dcm", "a2.dcm"]);
    let study = n
        .post
        .archive(&rad_s, &id, ArchiveScope::Study(0))
        .await
        .unwrap();
    assert_eq!(study.files.len(), 3);
    assert!(matches!(
        n.post.archive(&rad_s, &id, ArchiveScope::Study(1)).await,
        Err(Error::NotFound("study"))
    ));
    assert!(matches!(
        n.post
            .archive(
                &rad_s,
                &id,
                ArchiveScope::Series {
                    study: 0,
                    series: 2
                }
            )
            .await,
        Err(Error::NotFound("series"))
    ));
    let other_s = n.sign_in(&other).await;
    assert!(matches!(
        n.post.archive(&other_s, &id, ArchiveScope::Item).await,
        Err(Error::NotFound(_))
    ));

    // A changed blob stops the stream with `Tampered`.
    let path = n.post.blobs().file_path(&format!("{id}/2")).unwrap();
    let mut blob = std::fs::read(&path).unwrap();
    let mid = blob.len() / 2;
    blob[mid] ^= 0x40;
    std::fs::write(&path, &blob).unwrap();
    assert!(matches!(
        all.stream(2, Vec::new()),
        Err(Error::Tampered("attachment"))
    ));
}
