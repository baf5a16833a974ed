//! Keys made before the network recovery key existed are sealed to it the
//! next time a member signs in: the person's key and the facility keys they
//! hold (the custodian key among them), so the recovery key then completes
//! grants and keeps items at a reset.

use super::*;

#[tokio::test]
async fn keys_made_before_the_recovery_key_are_sealed_to_it_at_the_next_sign_in() {
    let n = net().await;
    let liaison = n.person(Role::Liaison, Some(HOSPITAL), "liaison").await;
    let store = &n.t.store;
    let code = FacilityCode::parse(HOSPITAL).unwrap();
    for role in ["oversight", "liaison", "custodian"] {
        let fk = store.facility_key(&code, role).await.unwrap();
        assert!(
            fk.unwrap().recovery_sealed.is_none(),
            "{role}: no recovery key yet"
        );
    }
    let recovery = n.dir.init_recovery().await.unwrap();
    // A second liaison waits for the facility keys.
    let second = n.person(Role::Liaison, Some(HOSPITAL), "second").await;
    // Before anyone signs in, the recovery key cannot complete the grants.
    assert!(matches!(
        n.dir.complete_grants_with_recovery(&recovery).await,
        Err(Error::Conflict(_))
    ));
    // The first member signs in: their key and the facility keys they hold are sealed to it.
    let before = store.account_key(&liaison.id).await.unwrap().unwrap();
    assert!(before.recovery_sealed.is_none());
    n.sign_in(&liaison).await;
    assert!(
        store
            .account_key(&liaison.id)
            .await
            .unwrap()
            .unwrap()
            .recovery_sealed
            .is_some()
    );
    for role in ["oversight", "liaison", "custodian"] {
        let fk = store.facility_key(&code, role).await.unwrap().unwrap();
        let sealed = renkei_crypto::SealedKey::from_bytes(fk.recovery_sealed.unwrap());
        assert_eq!(
            sealed.open(&recovery).unwrap().fingerprint(),
            fk.fingerprint,
            "{role}"
        );
    }
    // Their sign-in also completed the second liaison's grants.
    let grants = store.grants_of(&second.id).await.unwrap();
    assert!(grants.iter().all(|g| g.sealed_key.is_some()) && grants.len() == 3);
}
