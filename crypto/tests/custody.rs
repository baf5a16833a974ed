//! The decryption half a facility's custodian holds: it opens what was sealed
//! to the person, and nothing it signs verifies as the person.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use renkei_crypto::*;

#[test]
fn the_decryption_half_opens_the_persons_items_and_signs_as_nobody() {
    let sender = key("sender");
    let person = key("person");
    let custodian = SecretKey::generate_facility("3710300017", FacilityRole::Custodian).unwrap();
    let sealed = seal(&sender, &[&person.cert()], &draft("findings"), Vec::new()).unwrap();

    // Held by the custodian as a sealed key, opened only with the custodian key.
    let held = seal_secret_key(&person.decryption_half().unwrap(), &[&custodian.cert()]).unwrap();
    assert!(held.open(&sender).is_err(), "only the custodian opens it");
    let half = held.open(&custodian).unwrap();

    // The same key slot, a different identity.
    assert_eq!(half.cert().key_slot_id(), person.cert().key_slot_id());
    assert_ne!(half.fingerprint(), person.fingerprint());
    let opened = open(&sealed.envelope, &half, lookup(vec![sender.cert()])).unwrap();
    assert_eq!(opened.inner.body, "findings");
    assert_eq!(opened.verification, Verification::Valid);

    // A detached signature by the half does not verify as the person.
    let data = b"I, the person, confirm this report";
    let by_half = sign_detached(&half, data).unwrap();
    assert!(!verify_detached(&person.cert(), data, &by_half).unwrap_or(false));
    let by_person = sign_detached(&person, data).unwrap();
    assert!(verify_detached(&person.cert(), data, &by_person).unwrap());

    // Nor does an item it seals: its signer is not the person's certificate.
    let forged = seal(&half, &[&sender.cert()], &draft("forged"), Vec::new()).unwrap();
    let read = open(&forged.envelope, &sender, lookup(vec![person.cert()])).unwrap();
    assert_ne!(read.verification, Verification::Valid);
    assert_ne!(read.signer.as_deref(), Some(person.fingerprint().as_str()));
}
