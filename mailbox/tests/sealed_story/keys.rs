//! Password changes and resets, and the grants of later members.

use super::*;

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
    // Oversight, shared inbox and custodian keys.
    assert_eq!(n.dir.pending_grants().await.unwrap().len(), 3);
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
        3
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
    // A removed account answers like an unknown one, even to its password.
    assert!(matches!(
        n.dir.sign_in(third.id.as_str(), &third.pw, None).await,
        Err(Error::BadCredentials)
    ));
    assert!(matches!(
        n.dir.set_locked(&third.id, false).await,
        Err(Error::Conflict(_))
    ));
}
