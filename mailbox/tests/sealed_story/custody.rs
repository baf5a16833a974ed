//! Keys that survive people: a reset from the console followed by a liaison's
//! approval keeps every item; the operator alone cannot restore; a custodian
//! cannot sign as the person; a facility's first clerk sees its history.

use super::*;
use renkei_crypto::{Certificate, SealedKey};

fn fingerprint_of(row: &mailbox::store::vault::AccountKeyRow) -> String {
    Certificate::from_bytes(&row.cert).unwrap().fingerprint()
}

#[tokio::test]
async fn a_reset_then_a_liaisons_approval_keeps_every_item() {
    let n = net().await;
    let liaison = n.person(Role::Liaison, Some(CLINIC), "liaison").await;
    let clerk = n.person(Role::Clerk, Some(CLINIC), "clerk").await;
    let doc = n.person(Role::Doctor, Some(CLINIC), "doc").await;
    let gp = n.person(Role::Doctor, Some(HOSPITAL), "gp").await;
    let operator = n.person(Role::Operator, None, "operator").await;
    n.sign_in(&doc).await; // Sign-in puts the doctor's decryption half in custody.
    let gp_s = n.sign_in(&gp).await;
    let before = n
        .send(
            &gp_s,
            vec![Recipient::Person(doc.id.clone())],
            "before",
            &[],
        )
        .await;
    let old_key = n.t.store.account_key(&doc.id).await.unwrap().unwrap();

    // The operator resets from the console: a new key, a restoration waits.
    let outcome = n.dir.reset_password_with(&doc.id, None).await.unwrap();
    assert!(outcome.key_replaced && outcome.restoration_requested);
    assert_eq!(outcome.unreadable_items, vec![before.clone()]);
    let issued = Person {
        id: doc.id.clone(),
        pw: outcome.password,
    };

    // The operator, knowing the issued password, signs in as the person: the
    // old item stays shut, and neither they nor the person can approve.
    let as_person = n.sign_in(&issued).await;
    let chosen = Password::new("Operator-Chose-2026!");
    n.dir
        .change_password(&as_person, &issued.pw, &chosen)
        .await
        .unwrap();
    let as_person = n
        .sign_in(&Person {
            id: doc.id.clone(),
            pw: chosen.clone(),
        })
        .await;
    assert!(matches!(
        n.post.open(&as_person, &before).await,
        Err(Error::NotFound(_))
    ));
    let op_s = n.sign_in(&operator).await;
    for s in [&op_s, &as_person, &n.sign_in(&clerk).await] {
        assert!(matches!(
            n.dir.approve_restoration(s, &doc.id).await,
            Err(Error::Forbidden)
        ));
        assert!(matches!(n.dir.restorations(s).await, Err(Error::Forbidden)));
    }
    assert!(
        n.t.store
            .restoration(doc.id.as_str())
            .await
            .unwrap()
            .unwrap()
            .approved_at
            .is_none()
    );

    // The liaison sees the request once the person chose a password, and approves.
    let l_s = n.sign_in(&liaison).await;
    let waiting = n.dir.restorations(&l_s).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].account, doc.id);
    assert!(waiting[0].ready);
    let after_reset = n
        .send(
            &gp_s,
            vec![Recipient::Person(doc.id.clone())],
            "after reset",
            &[],
        )
        .await;
    assert_eq!(n.dir.approve_restoration(&l_s, &doc.id).await.unwrap(), 1);
    assert!(n.dir.restorations(&l_s).await.unwrap().is_empty());
    assert!(matches!(
        n.dir.approve_restoration(&l_s, &doc.id).await,
        Err(Error::NotFound(_))
    ));

    // From the next sign-in every item opens, old and new.
    let doc_s = n
        .sign_in(&Person {
            id: doc.id.clone(),
            pw: chosen,
        })
        .await;
    let old = n.post.open(&doc_s, &before).await.unwrap();
    assert_eq!(old.body, "before");
    assert_eq!(old.signature, SignatureStatus::Valid);
    assert_eq!(
        n.post.open(&doc_s, &after_reset).await.unwrap().body,
        "after reset"
    );

    // The person signs with the new key only; the old signing key is gone.
    let reply = n
        .send(&doc_s, vec![Recipient::Person(gp.id.clone())], "reply", &[])
        .await;
    let seen = n.post.open(&gp_s, &reply).await.unwrap();
    assert_eq!(seen.signature, SignatureStatus::Valid);
    let new_key = n.t.store.account_key(&doc.id).await.unwrap().unwrap();
    assert_eq!(
        seen.signer_fingerprint.as_deref(),
        Some(fingerprint_of(&new_key).as_str())
    );
    assert_ne!(fingerprint_of(&new_key), fingerprint_of(&old_key));

    // Each step is on the audit trail.
    let trail = n.t.store.audit_entries(0, i64::MAX, None).await.unwrap();
    let steps: Vec<_> = trail
        .iter()
        .filter(|e| e.action == "key_restore")
        .map(|e| (e.actor.clone(), e.detail.clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (Some("system".into()), Some("requested".into())),
            (
                Some(liaison.id.as_str().into()),
                Some("approved keys=1".into())
            ),
        ]
    );
}

#[tokio::test]
async fn a_custodian_holds_no_signing_half() {
    let n = net().await;
    let liaison = n.person(Role::Liaison, Some(CLINIC), "liaison").await;
    let doc = n.person(Role::Doctor, Some(CLINIC), "doc").await;
    n.sign_in(&doc).await;
    let l_s = n.sign_in(&liaison).await;
    let keyring = n.dir.keyring(&l_s).unwrap();
    let custodian = keyring
        .custodian
        .as_ref()
        .expect("a liaison holds the custodian key");
    let held = n.t.store.custody_keys_of(doc.id.as_str()).await.unwrap();
    assert_eq!(held.len(), 1);
    let half = SealedKey::from_bytes(held[0].sealed.clone())
        .open(custodian)
        .unwrap();
    let doc_cert =
        Certificate::from_bytes(&n.t.store.account_key(&doc.id).await.unwrap().unwrap().cert)
            .unwrap();
    assert_eq!(half.cert().key_slot_id(), doc_cert.key_slot_id());
    let text = b"signed: the doctor's report";
    let forged = renkei_crypto::sign_detached(&half, text).unwrap();
    assert!(!renkei_crypto::verify_detached(&doc_cert, text, &forged).unwrap_or(false));
    // Nor does the signer of anything it seals resolve to the doctor.
    assert!(
        n.t.store
            .cert_by_fingerprint(&half.fingerprint())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_facilitys_first_clerk_sees_the_items_sent_before_they_joined() {
    let n = net().await;
    let doc = n.person(Role::Doctor, Some(CLINIC), "doc").await;
    let gp = n.person(Role::Doctor, Some(HOSPITAL), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let doc_s = n.sign_in(&doc).await;
    let to_doc = n
        .send(
            &gp_s,
            vec![Recipient::Person(doc.id.clone())],
            "to the clinic",
            &[],
        )
        .await;
    let from_doc = n
        .send(
            &doc_s,
            vec![Recipient::Person(gp.id.clone())],
            "from the clinic",
            &[],
        )
        .await;

    // The clinic's first clerk: the oversight key is made now, too late for both.
    let clerk = n.person(Role::Clerk, Some(CLINIC), "clerk").await;
    let c_s = n.sign_in(&clerk).await;
    assert!(matches!(
        n.post.open(&c_s, &to_doc).await,
        Err(Error::NotFound(_))
    ));

    // The doctor signs in: their items gain the clinic's oversight slot.
    n.sign_in(&doc).await;
    let c_s = n.sign_in(&clerk).await;
    for (id, body) in [(&to_doc, "to the clinic"), (&from_doc, "from the clinic")] {
        let seen = n.post.open(&c_s, id).await.unwrap();
        assert_eq!(seen.body, body);
        assert_eq!(
            seen.signature,
            SignatureStatus::Valid,
            "the signed place still matches"
        );
    }
    let facility_items =
        n.t.store
            .envelopes_for(&format!("oversight:{CLINIC}"))
            .await
            .unwrap();
    assert_eq!(facility_items.len(), 2);
    // The doctor and the hospital still open them as before.
    let doc_s = n.sign_in(&doc).await;
    assert_eq!(
        n.post.open(&doc_s, &to_doc).await.unwrap().signature,
        SignatureStatus::Valid
    );
    assert_eq!(
        n.post.open(&gp_s, &from_doc).await.unwrap().signature,
        SignatureStatus::Valid
    );
    // Once is enough: a later sign-in adds nothing.
    let slots = n.t.store.envelope_slots(&to_doc).await.unwrap();
    n.sign_in(&doc).await;
    assert_eq!(n.t.store.envelope_slots(&to_doc).await.unwrap(), slots);

    // A slot is only ever added to the body it was made from: a body that
    // changed meanwhile (another slot came first) is left alone.
    let body = n.t.store.envelope(&to_doc).await.unwrap().unwrap().body;
    let stale = mailbox::store::vault::SlotRow {
        envelope_id: to_doc.clone(),
        principal: format!("liaison:{CLINIC}"),
        added_by: Some(doc.id.as_str().into()),
        added_at: 0,
    };
    let len = i64::try_from(body.len()).unwrap();
    assert!(
        !n.t.store
            .add_slot_if_unchanged(len - 1, b"other", &stale)
            .await
            .unwrap()
    );
    assert_eq!(
        n.t.store.envelope(&to_doc).await.unwrap().unwrap().body,
        body
    );
    assert_eq!(n.t.store.envelope_slots(&to_doc).await.unwrap(), slots);
}
