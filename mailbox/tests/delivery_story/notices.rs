//! Notices: an item that cannot be delivered comes back to its sender, and
//! notices are queued once with delivery; unopened items escalate once.

use super::*;

/// Gives a person a confirmed address (what the confirmation link does).
async fn confirmed_address(n: &Net, who: &CurrentSession) {
    n.t.store
        .set_email(
            &who.account.id,
            Some(&format!("{}@renkei-test.example", who.account.id.as_str())),
            true,
        )
        .await
        .unwrap();
}

fn notices(n: &Net) -> Arc<Notices> {
    Arc::new(Notices::new(
        n.t.store.clone(),
        NotifyPolicy {
            enabled: true,
            ..NotifyPolicy::default()
        },
    ))
}

#[tokio::test]
async fn an_item_for_a_removed_account_comes_back_to_the_sender_as_failed_with_the_reason() {
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    confirmed_address(&n, &gp).await;
    let id = n
        .send(&gp, vec![Recipient::Person(rad.account.id.clone())])
        .await;
    // Between the acknowledgement and delivery the reader leaves.
    n.dir.remove_account(&rad.account.id).await.unwrap();
    let notices = notices(&n);
    let d = deliverer(&n, Duration::from_secs(30)).notifying(notices.clone());
    assert_eq!(d.deliver_due().await.unwrap(), 1);

    let status = n.post.delivery_status(&gp, &id).await.unwrap().unwrap();
    assert_eq!(status.state, "failed", "not retried: a removal is final");
    let reason = status.last_error.unwrap();
    assert!(reason.contains("has been removed"), "{reason}");
    assert!(
        reason.contains(&rad.account.id.display_grouped()),
        "{reason}"
    );
    let sent = n.post.mailbox(&gp, "sent").await.unwrap();
    assert_eq!(sent.len(), 1, "the sender still sees what they sent");
    assert_eq!(sent[0].delivery_state.as_deref(), Some("failed"));
    assert!(
        sent[0]
            .delivery_error
            .as_deref()
            .unwrap()
            .contains("removed")
    );
    assert_eq!(
        n.t.store.count_deliveries("pending").await.unwrap(),
        0,
        "nothing left to retry"
    );
    // And the sender is told by mail (once; the text has no content).
    let rows = notices
        .claim_due(i64::MAX - 1, i64::MAX, false, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].account_id, gp.account.id.as_str());
    assert_eq!(rows[0].reason, "delivery_failed");
}

#[tokio::test]
async fn notices_are_queued_once_with_delivery_and_unopened_items_escalate_once() {
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let liaison = n.person(Role::Liaison, HOSPITAL, "liaison").await;
    let quiet_liaison = n.person(Role::Liaison, HOSPITAL, "quiet").await;
    let clerk = n.person(Role::Clerk, HOSPITAL, "clerk").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    for who in [&liaison, &clerk, &rad, &gp] {
        confirmed_address(&n, who).await;
    }
    // The quiet liaison has no confirmed address; the doctor wants a daily summary.
    n.t.store
        .set_notify_mode(rad.account.id.as_str(), "digest")
        .await
        .unwrap();
    let notices = notices(&n);
    let threads = Threads::new(
        n.dir.clone(),
        n.post.clone(),
        n.t.store.clone(),
        n.audit.clone(),
    )
    .notifying(notices.clone());
    let hospital = FacilityCode::parse(HOSPITAL).unwrap();
    let unopened = threads
        .open(
            &gp,
            reading_request(Recipient::LiaisonInbox(hospital.clone())),
            vec![],
        )
        .await
        .unwrap();
    let opened = threads
        .open(
            &gp,
            reading_request(Recipient::LiaisonInbox(hospital.clone())),
            vec![],
        )
        .await
        .unwrap();
    let to_rad = threads
        .open(
            &gp,
            reading_request(Recipient::Person(rad.account.id.clone())),
            vec![],
        )
        .await
        .unwrap();
    let d = deliverer(&n, Duration::from_secs(30)).notifying(notices.clone());
    assert_eq!(d.deliver_due().await.unwrap(), 3);
    let _ = quiet_liaison;

    // One immediate notice per liaison with an address, per shared-inbox item.
    let now = mailbox::clock::now_millis();
    assert_eq!(n.t.store.count_notifications("pending").await.unwrap(), 3);
    // Delivering the same item again (a crash after the commit) queues nothing new.
    let envelope =
        n.t.store
            .envelope(&unopened.envelope_id)
            .await
            .unwrap()
            .unwrap();
    let slots =
        n.t.store
            .envelope_slots(&unopened.envelope_id)
            .await
            .unwrap();
    let entries = mailbox::delivery::plan(&envelope, &slots, now);
    let again = notices
        .for_delivery(&envelope, &entries, now)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    n.t.store
        .complete_delivery(&unopened.envelope_id, &entries, &again, now)
        .await
        .unwrap();
    assert_eq!(n.t.store.count_notifications("pending").await.unwrap(), 3);
    let immediate = notices.claim_due(now, now + 1000, false, 10).await.unwrap();
    let mut got: Vec<(String, String)> = immediate
        .iter()
        .map(|r| (r.account_id.clone(), r.thread_id.clone().unwrap()))
        .collect();
    got.sort();
    let mut want = vec![
        (
            liaison.account.id.as_str().to_string(),
            unopened.thread_id.clone(),
        ),
        (
            liaison.account.id.as_str().to_string(),
            opened.thread_id.clone(),
        ),
    ];
    want.sort();
    assert_eq!(got, want, "no notice for the liaison without an address");
    // The digest reader's line waits for 08:00 Japan time.
    assert!(
        notices
            .claim_due(now, now + 1000, true, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let at = notices.policy().next_digest_at(now);
    let digest = notices.claim_due(at, at + 1000, true, 10).await.unwrap();
    assert_eq!(digest.len(), 1);
    assert_eq!(
        digest[0].thread_id.as_deref(),
        Some(to_rad.thread_id.as_str())
    );

    // The liaison office opens one; the other waits past the facility's 4 hours.
    threads.view(&liaison, &opened.thread_id).await.unwrap();
    threads.view(&rad, &to_rad.thread_id).await.unwrap();
    assert_eq!(notices.escalate_due(now).await.unwrap(), 0, "not yet");
    let later = now + 4 * 3_600_000 + 60_000;
    assert_eq!(notices.escalate_due(later).await.unwrap(), 1);
    assert_eq!(
        notices.escalate_due(later + 60_000).await.unwrap(),
        0,
        "once"
    );
    let escalations: Vec<_> = notices
        .claim_due(later, later + 1000, false, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.reason == "escalation")
        .collect();
    let mut told: Vec<&str> = escalations.iter().map(|r| r.account_id.as_str()).collect();
    told.sort_unstable();
    let mut want = vec![liaison.account.id.as_str(), clerk.account.id.as_str()];
    want.sort_unstable();
    assert_eq!(
        told, want,
        "the facility's liaisons and clerks with an address"
    );
    assert!(
        escalations
            .iter()
            .all(|r| r.thread_id.as_deref() == Some(unopened.thread_id.as_str()))
    );
    // A facility may wait longer.
    let next = threads
        .open(
            &gp,
            reading_request(Recipient::LiaisonInbox(hospital)),
            vec![],
        )
        .await
        .unwrap();
    d.deliver_due().await.unwrap();
    n.t.store.set_escalation_hours(HOSPITAL, 8).await.unwrap();
    assert_eq!(notices.escalate_due(later).await.unwrap(), 0);
    assert_eq!(
        notices
            .escalate_due(now + 8 * 3_600_000 + 60_000)
            .await
            .unwrap(),
        1
    );
    let _ = next;
}
