//! Threads on the queue: bookings, and a thread forwarded to a colleague.

use super::*;

/// The free times of a resource tomorrow (Japan time), as written.
async fn free_tomorrow(threads: &Threads, who: &CurrentSession, resource: &str) -> Vec<String> {
    let tomorrow = mailbox::clock::now_jst().date() + chrono::Duration::days(1);
    let free = threads
        .free_times(who, resource, Some(tomorrow), 1)
        .await
        .unwrap();
    free.days
        .iter()
        .flat_map(|d| {
            d.slots
                .iter()
                .map(|t| mailbox::threads::booking::slot_text(*t))
        })
        .collect()
}

#[tokio::test]
async fn a_booking_holds_its_time_until_cancelled_and_two_requests_never_share_one() {
    use mailbox::threads::StepInput;
    use mailbox::workflow::Step;

    let n = net().await;
    let threads = Threads::new(
        n.dir.clone(),
        n.post.clone(),
        n.t.store.clone(),
        n.audit.clone(),
    );
    // The clerk first: the first member who needs the facility's oversight key
    // makes it (later members get it at a holder's next sign-in).
    let clerk = n.person(Role::Clerk, HOSPITAL, "clerk").await;
    let liaison = n.person(Role::Liaison, HOSPITAL, "liaison").await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let ct = threads
        .add_resource(&liaison, "CT", "毎日 9:00-12:00")
        .await
        .unwrap();
    let day = (mailbox::clock::now_jst().date() + chrono::Duration::days(1)).to_string();
    let at = |time: &str| format!("{day} {time}");
    assert_eq!(
        free_tomorrow(&threads, &gp, &ct.id).await,
        ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"].map(at)
    );
    let booking = |slot: &str| NewThread {
        kind: ThreadKind::Booking,
        to: None,
        subject: String::new(),
        patient_id: String::new(),
        patient_name: String::new(),
        body: String::new(),
        consent: None,
        fields: vec![
            ("preferred_times".into(), slot.into()),
            ("slot".into(), slot.into()),
        ],
        urgency: Urgency::Routine,
        wanted_by: None,
        resource_id: Some(ct.id.clone()),
        template: None,
    };
    let step = |step: Step, slot: Option<&str>| StepInput {
        step,
        body: String::new(),
        fields: slot
            .map(|s| vec![("slot".to_string(), s.to_string())])
            .unwrap_or_default(),
        next_facility: None,
    };

    // A requested time is held: no longer free, and nobody else can ask for it.
    let b = threads
        .open(&gp, booking(&at("9:00")), vec![])
        .await
        .unwrap()
        .thread_id;
    assert!(
        !free_tomorrow(&threads, &gp, &ct.id)
            .await
            .contains(&at("09:00"))
    );
    let Err(e) = threads.open(&gp, booking(&at("09:00")), vec![]).await else {
        panic!("a held time was booked twice");
    };
    assert!(e.to_string().contains("already booked"), "{e}");

    // Another time proposed: the first is free again, the new one held.
    threads
        .act(&clerk, &b, step(Step::Propose, Some(&at("10:00"))), vec![])
        .await
        .unwrap();
    let free = free_tomorrow(&threads, &gp, &ct.id).await;
    assert!(
        free.contains(&at("09:00")) && !free.contains(&at("10:00")),
        "{free:?}"
    );
    assert_eq!(
        n.t.store.thread(&b).await.unwrap().unwrap().booked_slot,
        Some(at("10:00"))
    );
    // A proposal cannot take a time another booking holds.
    threads
        .open(&gp, booking(&at("11:00")), vec![])
        .await
        .unwrap();
    assert!(
        threads
            .act(&clerk, &b, step(Step::Propose, Some(&at("11:00"))), vec![])
            .await
            .is_err()
    );
    // Accepted, then cancelled: the time is free again.
    threads
        .act(&gp, &b, step(Step::Confirm, None), vec![])
        .await
        .unwrap();
    threads
        .act(&gp, &b, step(Step::Cancel, None), vec![])
        .await
        .unwrap();
    assert!(
        free_tomorrow(&threads, &gp, &ct.id)
            .await
            .contains(&at("10:00"))
    );

    // Two requests for one time at once: exactly one holds it (the unique
    // index settles what the check before sealing cannot).
    let (x, y) = tokio::join!(
        threads.open(&gp, booking(&at("11:30")), vec![]),
        threads.open(&gp, booking(&at("11:30")), vec![]),
    );
    assert_eq!(
        u8::from(x.is_ok()) + u8::from(y.is_ok()),
        1,
        "{:?} {:?}",
        x.err(),
        y.err()
    );
    // Times must be written as times.
    assert!(
        threads
            .open(&gp, booking("明日の午前"), vec![])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_forwarded_thread_follows_the_colleague_read_only_and_a_refusal_changes_nothing() {
    use mailbox::threads::StepInput;
    use mailbox::workflow::Step;
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let surgeon = n.person(Role::Doctor, HOSPITAL, "surgeon").await;
    let colleague = n.person(Role::Doctor, HOSPITAL, "colleague").await;
    let outsider = n.person(Role::Doctor, HOSPITAL, "outsider").await;
    let threads = Threads::new(
        n.dir.clone(),
        n.post.clone(),
        n.t.store.clone(),
        n.audit.clone(),
    );
    let referral = threads
        .open(
            &gp,
            NewThread {
                kind: ThreadKind::Referral,
                fields: vec![
                    ("purpose".into(), "手術適応の評価".into()),
                    ("diagnosis".into(), "右鼠径ヘルニア".into()),
                ],
                ..reading_request(Recipient::Person(surgeon.account.id.clone()))
            },
            vec![],
        )
        .await
        .unwrap();
    let id = referral.thread_id.as_str();
    let step = |step: Step, body: &str| StepInput {
        step,
        body: body.into(),
        fields: vec![],
        next_facility: None,
    };
    threads
        .act(&surgeon, id, step(Step::Accept, ""), vec![])
        .await
        .unwrap();
    let slot_count = || async {
        let mut total = 0;
        for s in n.t.store.thread_steps(id).await.unwrap() {
            total +=
                n.t.store
                    .envelope_slots(&s.envelope_id)
                    .await
                    .unwrap()
                    .len();
        }
        total
    };
    let before = slot_count().await;

    // Refused without a trace: by a doctor who cannot read it, or to a doctor
    // outside the forwarder's facility.
    assert!(matches!(
        threads.forward(&outsider, id, &colleague.account.id).await,
        Err(mailbox::Error::NotFound(_))
    ));
    assert!(matches!(
        threads.forward(&surgeon, id, &gp.account.id).await,
        Err(mailbox::Error::Invalid { field: "to", .. })
    ));
    assert_eq!(slot_count().await, before);
    assert!(threads.view(&colleague, id).await.is_err());

    // Forwarded: the colleague reads every step so far, and may take none.
    let opened: mailbox::threads::Thread = n.t.store.thread(id).await.unwrap().unwrap().into();
    assert!(threads.may_forward(&surgeon, &opened).await);
    assert!(!threads.may_forward(&outsider, &opened).await);
    threads
        .forward(&surgeon, id, &colleague.account.id)
        .await
        .unwrap();
    let seen = threads.view(&colleague, id).await.unwrap();
    assert_eq!(seen.steps.len(), 2);
    assert!(seen.allowed_steps.is_empty(), "{:?}", seen.allowed_steps);
    assert!(threads.may_forward(&colleague, &seen.thread).await);
    // The reply letter written afterwards reaches the colleague as well.
    threads
        .act(
            &surgeon,
            id,
            step(Step::Reply, "手術の方針とします。"),
            vec![],
        )
        .await
        .unwrap();
    let seen = threads.view(&colleague, id).await.unwrap();
    assert_eq!(seen.steps.len(), 3);
    assert_eq!(seen.steps[2].body, "手術の方針とします。");
    assert_eq!(seen.thread.state, "replied");
    // The colleague still cannot reply or acknowledge in the surgeon's place.
    assert!(
        threads
            .act(&colleague, id, step(Step::Acknowledge, ""), vec![])
            .await
            .is_err()
    );
    assert!(threads.view(&outsider, id).await.is_err());
}
