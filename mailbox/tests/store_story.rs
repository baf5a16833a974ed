//! One storage story, run unchanged against SQLite (default) and PostgreSQL
//! (`RENKEI_TEST_BACKEND=postgres` with `RENKEI_TEST_PG_URL` pointing at a server
//! where the test may create databases).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
mod common;

use common::fresh_store;
use mailbox::auth::password;
use mailbox::clock::{ManualClock, SharedClock};
use mailbox::store::{SessionRecord, Store, StoreError};
use mailbox::{
    AccountId, AuthPolicy, Directory, Error, Facility, FacilityCode, NetworkPolicy, NewAccount,
    Password, Role,
};

fn facility(code: &str, name: &str) -> Facility {
    Facility {
        code: FacilityCode::parse(code).unwrap(),
        name: name.into(),
        address: "香川県高松市".into(),
        phone: "087-000-0000".into(),
        departments: vec!["放射線科".into(), "内科".into()],
        publish_details: true,
        city: "高松市".into(),
        public_note: "紹介受付 平日9時〜17時".into(),
        active_from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        active_until: None,
        approval_ref: None,
    }
}

fn directory(store: Arc<dyn Store>, policy: AuthPolicy) -> Directory {
    directory_at(store, policy, mailbox::clock::system())
}

/// The directory reading `clock`, so a test moves time instead of sleeping.
fn directory_at(store: Arc<dyn Store>, policy: AuthPolicy, clock: SharedClock) -> Directory {
    // Cheap Argon2 for the key lock keeps the suite fast; the cost is a parameter.
    let policy = AuthPolicy {
        key_lock: renkei_crypto::LockParams::insecure_for_tests(),
        second_factor_required: false,
        ..policy
    };
    Directory::with_clock(store, policy, NetworkPolicy::default(), clock)
}

#[tokio::test]
async fn facilities_round_trip_and_refuse_duplicates() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let f = dir
        .add_facility(facility("3710123450", "さぬき病院"))
        .await
        .unwrap();
    assert_eq!(dir.facility(&f.code).await.unwrap(), f);
    let dup = dir
        .add_facility(facility("3710123450", "別名"))
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::Conflict(_)), "{dup:?}");
    // The first registration is untouched by the refused one.
    assert_eq!(dir.facility(&f.code).await.unwrap().name, "さぬき病院");

    let mut changed = f.clone();
    changed.departments = vec!["歯科".into()];
    changed.city = "丸亀市".into();
    changed.public_note = "予約は電話で".into();
    changed.publish_details = false;
    dir.update_facility(changed.clone()).await.unwrap();
    assert_eq!(dir.facility(&f.code).await.unwrap(), changed);

    let last = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
    let ended = dir.deactivate_facility(&f.code, last).await.unwrap();
    assert_eq!(ended.active_until, Some(last));
    assert!(ended.is_active_on(NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()));
    assert!(!ended.is_active_on(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()));

    let missing = FacilityCode::parse("3740012343").unwrap();
    assert!(matches!(
        dir.facility(&missing).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(dir.facilities().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_public_list_shows_participating_facilities_and_only_published_details() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let mut open = facility("3710123450", "さぬき病院");
    open.city = "丸亀市".into();
    dir.add_facility(open).await.unwrap();
    let mut private = facility("3710300017", "ことひら内科");
    private.city = "琴平町".into();
    private.publish_details = false;
    dir.add_facility(private).await.unwrap();
    let mut left = facility("3730045675", "去った歯科");
    left.active_until = Some(NaiveDate::from_ymd_opt(2026, 6, 30).unwrap());
    dir.add_facility(left).await.unwrap();
    let mut later = facility("3740012343", "これからの薬局");
    later.active_from = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    dir.add_facility(later).await.unwrap();

    let listed = dir
        .public_listings(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap())
        .await
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
    // By city: 丸亀市 before 琴平町 (code-point order); neither the one that
    // left nor the one not yet started.
    assert_eq!(names, ["さぬき病院", "ことひら内科"]);
    assert_eq!(listed[0].city, "丸亀市");
    assert_eq!(listed[0].departments, ["放射線科", "内科"]);
    assert_eq!(listed[0].address.as_deref(), Some("香川県高松市"));
    assert_eq!(listed[0].note.as_deref(), Some("紹介受付 平日9時〜17時"));
    assert_eq!(listed[1].city, "琴平町");
    assert_eq!(listed[1].departments, ["放射線科", "内科"]);
    assert_eq!(
        (&listed[1].address, &listed[1].phone, &listed[1].note),
        (&None, &None, &None),
        "unpublished details stay off the list"
    );
}

#[tokio::test]
async fn out_of_prefecture_needs_approval_reference() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let err = dir
        .add_facility(facility("0110113719", "札幌の病院"))
        .await
        .unwrap_err();
    match &err {
        Error::Invalid { field, .. } => assert_eq!(*field, "approval_ref"),
        other => panic!("{other:?}"),
    }
    assert!(
        dir.facilities().await.unwrap().is_empty(),
        "nothing half-written"
    );
    let mut ok = facility("0110113719", "札幌の病院");
    ok.approval_ref = Some("運営委員会 2026-07 承認第3号".into());
    dir.add_facility(ok).await.unwrap();
}

#[tokio::test]
async fn accounts_belong_to_one_facility_and_get_assigned_ids() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let f = dir
        .add_facility(facility("3710123450", "さぬき病院"))
        .await
        .unwrap();
    let (doctor, issued) = dir
        .add_account(NewAccount {
            role: Role::Doctor,
            facility: Some(f.code.clone()),
            name: "讃岐 一郎".into(),
            email: Some("ichiro@example.jp".into()),
        })
        .await
        .unwrap();
    assert!(doctor.must_change_password);
    assert!(!doctor.email_verified);
    assert!(password::verify(&issued, &doctor.password));
    let stored = dir.account(&doctor.id).await.unwrap();
    assert_eq!(stored, doctor);

    let no_facility = dir
        .add_account(NewAccount {
            role: Role::Clerk,
            facility: None,
            name: "事務".into(),
            email: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(
        no_facility,
        Error::Invalid {
            field: "facility",
            ..
        }
    ));
    let operator_with_facility = dir
        .add_account(NewAccount {
            role: Role::Operator,
            facility: Some(f.code.clone()),
            name: "運営".into(),
            email: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(
        operator_with_facility,
        Error::Invalid {
            field: "facility",
            ..
        }
    ));
    let unknown = dir
        .add_account(NewAccount {
            role: Role::Doctor,
            facility: Some(FacilityCode::parse("3740012343").unwrap()),
            name: "誰か".into(),
            email: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::NotFound("facility")));
    let bad_mail = dir
        .add_account(NewAccount {
            role: Role::Doctor,
            facility: Some(f.code.clone()),
            name: "誰か".into(),
            email: Some("not an address".into()),
        })
        .await
        .unwrap_err();
    assert!(matches!(bad_mail, Error::Invalid { field: "email", .. }));

    let (op, _) = dir
        .add_account(NewAccount {
            role: Role::Operator,
            facility: None,
            name: "ヘルプデスク".into(),
            email: None,
        })
        .await
        .unwrap();
    assert_eq!(dir.accounts(Some(&f.code)).await.unwrap().len(), 1);
    assert_eq!(dir.accounts(None).await.unwrap().len(), 2);
    assert_ne!(op.id, doctor.id);

    t.store
        .set_email(&doctor.id, Some("new@example.jp"), true)
        .await
        .unwrap();
    let a = dir.account(&doctor.id).await.unwrap();
    assert_eq!(a.email.as_deref(), Some("new@example.jp"));
    assert!(a.email_verified);
}

#[tokio::test]
async fn only_a_ready_operator_passes_the_operator_check() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let pw = Password::new("Operator-Console-2026!");
    let doctor = doctor_with_password(&dir, &pw).await;
    let mut ids = Vec::new();
    for must_change in [false, true] {
        let op = dir
            .add_account_with_password(
                NewAccount {
                    role: Role::Operator,
                    facility: None,
                    name: "ヘルプデスク".into(),
                    email: None,
                },
                &pw,
                must_change,
            )
            .await
            .unwrap();
        ids.push(op.id);
    }
    let (_, ready) = dir.sign_in(ids[0].as_str(), &pw, None).await.unwrap();
    assert_eq!(ready.require_operator().unwrap().id, ids[0]);
    let (_, issued) = dir.sign_in(ids[1].as_str(), &pw, None).await.unwrap();
    assert!(matches!(
        issued.require_operator(),
        Err(Error::PasswordChangeRequired)
    ));
    let (_, doc) = dir.sign_in(doctor.as_str(), &pw, None).await.unwrap();
    assert!(matches!(
        doc.require_operator(),
        Err(Error::PasswordChangeRequired)
    ));
    t.store
        .set_password(&doctor, &password::hash(&pw).unwrap(), false)
        .await
        .unwrap();
    let (_, doc) = dir.sign_in(doctor.as_str(), &pw, None).await.unwrap();
    assert!(matches!(
        doc.require_operator(),
        Err(Error::RoleForbids {
            role: Role::Doctor,
            action: mailbox::roles::Action::RunNetwork
        })
    ));
}

async fn doctor_with_password(dir: &Directory, pw: &Password) -> AccountId {
    let code = FacilityCode::parse("3710123450").unwrap();
    if dir.facility(&code).await.is_err() {
        dir.add_facility(facility("3710123450", "さぬき病院"))
            .await
            .unwrap();
    }
    dir.add_account_with_password(
        NewAccount {
            role: Role::Doctor,
            facility: Some(code),
            name: "讃岐 一郎".into(),
            email: None,
        },
        pw,
        true,
    )
    .await
    .unwrap()
    .id
}

#[tokio::test]
async fn wrong_passwords_delay_but_never_lock_and_counts_are_shared() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let pw = Password::new("Issued-Pass-2026!");
    let id = doctor_with_password(&dir, &pw).await;
    let wrong = Password::new("wrong-password-1!");
    let addr = || Some("192.0.2.7".to_string());
    for attempt in 1..=5 {
        let e = dir.sign_in(id.as_str(), &wrong, addr()).await.unwrap_err();
        assert!(
            matches!(e, Error::BadCredentials),
            "attempt {attempt}: {e:?}"
        );
    }
    // The sixth waits, even with the right password; nothing is locked.
    let e = dir.sign_in(id.as_str(), &pw, addr()).await.unwrap_err();
    assert!(matches!(e, Error::TooManyAttempts), "{e:?}");
    let a = dir.account(&id).await.unwrap();
    assert!(!a.locked);
    assert_eq!(a.failed_attempts, 5, "shown on the operator's console");
    // Another node over the same database sees the same count.
    let other = directory(t.store.clone(), AuthPolicy::default());
    let e = other.sign_in(id.as_str(), &pw, addr()).await.unwrap_err();
    assert!(matches!(e, Error::TooManyAttempts), "{e:?}");
    // Another address is not held up by this one.
    other
        .sign_in(id.as_str(), &pw, Some("198.51.100.1".to_string()))
        .await
        .unwrap();
    assert_eq!(dir.account(&id).await.unwrap().failed_attempts, 0);

    // Only the help desk locks; then only the right password learns it.
    dir.set_locked(&id, true).await.unwrap();
    let e = dir.sign_in(id.as_str(), &wrong, None).await.unwrap_err();
    assert!(matches!(e, Error::BadCredentials), "{e:?}");
    let e = dir.sign_in(id.as_str(), &pw, None).await.unwrap_err();
    assert!(matches!(e, Error::AccountLocked), "{e:?}");
    dir.set_locked(&id, false).await.unwrap();
    dir.sign_in(&id.display_grouped().to_lowercase(), &pw, None)
        .await
        .unwrap();
    // An ID that does not exist gets the wrong password's answer.
    let e = dir.sign_in("K7M4-QX9R", &wrong, None).await.unwrap_err();
    assert!(matches!(e, Error::BadCredentials), "{e:?}");
}

#[tokio::test]
async fn failed_attempts_are_counted_atomically() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let id = doctor_with_password(&dir, &Password::new("Issued-Pass-2026!")).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = t.store.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(
            async move { store.record_failed_login(&id).await },
        ));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(dir.account(&id).await.unwrap().failed_attempts, 12);
    let outcome = t.store.record_failed_login(&id).await.unwrap().unwrap();
    assert_eq!(outcome.failed_attempts, 13);
    assert!(!outcome.locked, "counting never locks");
    // The throttle's counters, too, from many tasks at once.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .throttle_failed("k", 1_000, mailbox::store::throttle::Reset::QuietSince(0))
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let rows = t.store.throttle(&["k"]).await.unwrap();
    assert_eq!(rows[0].failures, 12);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_end_on_sign_out() {
    let t = fresh_store().await;
    let policy = AuthPolicy {
        idle_timeout: Duration::from_secs(2),
        absolute_timeout: Duration::from_secs(3600),
        second_factor_required: false,
        ..AuthPolicy::default()
    };
    // The clock stands still unless the test moves it: no waiting for time to pass.
    let clock = Arc::new(ManualClock::starting_now());
    let dir = directory_at(t.store.clone(), policy, clock.clone());
    let pw = Password::new("Issued-Pass-2026!");
    let id = doctor_with_password(&dir, &pw).await;

    let (token, s) = dir
        .sign_in(id.as_str(), &pw, Some("192.0.2.7".into()))
        .await
        .unwrap();
    assert_eq!(s.record.remote_addr.as_deref(), Some("192.0.2.7"));
    let again = dir.authenticate(&token).await.unwrap();
    assert_eq!(again.account.id, id);
    assert!(matches!(
        again.require_ready(),
        Err(Error::PasswordChangeRequired)
    ));

    // Activity keeps it alive past the idle timeout in total.
    clock.advance(Duration::from_millis(1200));
    dir.authenticate(&token).await.unwrap();
    clock.advance(Duration::from_millis(1200));
    dir.authenticate(&token).await.unwrap();
    // Idleness ends it, and it stays ended.
    clock.advance(Duration::from_millis(3100));
    assert!(matches!(
        dir.authenticate(&token).await,
        Err(Error::SessionExpired)
    ));
    assert!(matches!(
        dir.authenticate(&token).await,
        Err(Error::NotSignedIn)
    ));

    let (token, _) = dir.sign_in(id.as_str(), &pw, None).await.unwrap();
    dir.sign_out(&token).await.unwrap();
    assert!(matches!(
        dir.authenticate(&token).await,
        Err(Error::NotSignedIn)
    ));
}

#[tokio::test]
async fn password_change_needs_the_current_one_and_the_policy() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let issued = Password::new("Issued-Pass-2026!");
    let id = doctor_with_password(&dir, &issued).await;
    let (token, s) = dir.sign_in(id.as_str(), &issued, None).await.unwrap();
    let (other_token, _) = dir.sign_in(id.as_str(), &issued, None).await.unwrap();

    let wrong = dir
        .change_password(
            &s,
            &Password::new("not-it"),
            &Password::new("Brand-New-Pass-42!"),
        )
        .await
        .unwrap_err();
    assert!(matches!(wrong, Error::WrongCurrentPassword));
    let weak = dir
        .change_password(&s, &issued, &Password::new("short1!"))
        .await
        .unwrap_err();
    match weak {
        Error::WeakPassword(v) => assert_eq!(v.too_short, Some(13)),
        other => panic!("{other:?}"),
    }
    let no_symbol = dir
        .change_password(&s, &issued, &Password::new("LongEnoughButPlain2026"))
        .await
        .unwrap_err();
    assert!(
        matches!(no_symbol, Error::WeakPassword(ref v) if v.no_symbol && v.too_short.is_none())
    );

    let new = Password::new("Brand-New-Pass-42!");
    dir.change_password(&s, &issued, &new).await.unwrap();
    let a = dir.account(&id).await.unwrap();
    assert!(!a.must_change_password);
    // This session lives on; the other one was ended.
    assert!(
        dir.authenticate(&token)
            .await
            .unwrap()
            .require_ready()
            .is_ok()
    );
    assert!(matches!(
        dir.authenticate(&other_token).await,
        Err(Error::NotSignedIn)
    ));
    assert!(matches!(
        dir.sign_in(id.as_str(), &issued, None).await,
        Err(Error::BadCredentials)
    ));
    dir.sign_in(id.as_str(), &new, None).await.unwrap();

    // An operator reset issues a fresh password that must be changed again.
    let reissued = dir.reset_password(&id).await.unwrap();
    assert!(matches!(
        dir.authenticate(&token).await,
        Err(Error::NotSignedIn)
    ));
    let (_, s) = dir.sign_in(id.as_str(), &reissued, None).await.unwrap();
    assert!(s.account.must_change_password);
}

#[tokio::test]
async fn raw_session_rows_round_trip_and_purge() {
    let t = fresh_store().await;
    let dir = directory(t.store.clone(), AuthPolicy::default());
    let id = doctor_with_password(&dir, &Password::new("Issued-Pass-2026!")).await;
    let record = SessionRecord {
        token_hash: vec![7; 32],
        account_id: id.clone(),
        created_at: 1_000,
        last_seen: 2_000,
        remote_addr: None,
        channel: Some("api".into()),
    };
    t.store.insert_session(&record).await.unwrap();
    assert_eq!(
        t.store.session(&[7; 32]).await.unwrap(),
        Some(record.clone())
    );
    let dup = t.store.insert_session(&record).await.unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
    t.store.touch_session(&[7; 32], 3_000).await.unwrap();
    assert_eq!(
        t.store.session(&[7; 32]).await.unwrap().unwrap().last_seen,
        3_000
    );
    let fresh = SessionRecord {
        token_hash: vec![8; 32],
        created_at: 10_000,
        last_seen: 10_000,
        ..record.clone()
    };
    t.store.insert_session(&fresh).await.unwrap();
    let purged = t.store.purge_sessions(5_000, 0).await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].token_hash, vec![7; 32]);
    assert_eq!(purged[0].channel.as_deref(), Some("api"));
    assert!(t.store.session(&[7; 32]).await.unwrap().is_none());
    assert_eq!(t.store.delete_sessions_of(&id).await.unwrap().len(), 1);
    assert!(t.store.session(&[8; 32]).await.unwrap().is_none());
}
