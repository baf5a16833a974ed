//! Who can open what: addressees, the facility keys, colleagues who were not
//! addressed, and a doctor forwarding an own item to a colleague.

use super::*;

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
        Err(Error::RoleForbids {
            role: Role::Clerk,
            action: mailbox::roles::Action::Forward
        })
    ));
    // Nor does a clerk send anything at all (the role table, in the service).
    let clerk_send = n
        .post
        .send(
            &clerk_s,
            Outgoing {
                kind: "share".into(),
                to: vec![Recipient::Person(colleague.id.clone())],
                subject: "s".into(),
                patient_id: "P-1".into(),
                patient_name: "p".into(),
                body: "b".into(),
                consent: None,
            },
            vec![],
        )
        .await;
    assert!(
        matches!(
            clerk_send,
            Err(Error::RoleForbids {
                role: Role::Clerk,
                ..
            })
        ),
        "{clerk_send:?}"
    );

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
                given_by: mailbox::postroom::ConsentGiver::Patient,
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
    let audit = n.audit.all_entries(0, i64::MAX).await.unwrap();
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
