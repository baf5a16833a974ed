//! The durable queue on both backends: acknowledged items are delivered exactly
//! once per recipient, a crashed claim is delivered after its lease, and
//! concurrent workers never duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use common::fresh_store;
use mailbox::delivery::{Deliverer, DeliveryPolicy};
use mailbox::notify::{Notices, NotifyPolicy};
use mailbox::postroom::folders::{Folder, FolderListing, Folders};
use mailbox::postroom::{
    BlobStore, Consent, ConsentMethod, Outgoing, OutgoingAttachment, Postroom, Recipient,
};
use mailbox::threads::workflow::ThreadKind;
use mailbox::threads::{NewThread, Threads, Urgency};
use mailbox::{
    AuthPolicy, CurrentSession, Directory, Facility, FacilityCode, NetworkPolicy, NewAccount,
    Password, Role,
};
use renkei_crypto::{BlindIndexKey, LockParams};

fn consent() -> Consent {
    Consent {
        obtained_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        method: ConsentMethod::Written,
        obtained_by: "坂出 明美".into(),
    }
}

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";

struct Net {
    t: common::TestStore,
    dir: Arc<Directory>,
    post: Arc<Postroom>,
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
    for code in [HOSPITAL, CLINIC] {
        dir.add_facility(Facility {
            code: FacilityCode::parse(code).unwrap(),
            name: format!("施設 {code}"),
            address: String::new(),
            phone: String::new(),
            departments: vec![],
            publish_details: false,
            city: String::new(),
            public_note: String::new(),
            active_from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
            active_until: None,
            approval_ref: None,
        })
        .await
        .unwrap();
    }
    let post = Arc::new(Postroom::new(
        dir.clone(),
        BlobStore::new(t.dir.path().join("blobs")),
        Arc::new(BlindIndexKey::generate().unwrap()),
    ));
    Net { t, dir, post }
}

impl Net {
    async fn person(&self, role: Role, facility: &str, name: &str) -> CurrentSession {
        let pw = Password::new(format!("Pass-{name}-2026!"));
        let a = self
            .dir
            .add_account_with_password(
                NewAccount {
                    role,
                    facility: Some(FacilityCode::parse(facility).unwrap()),
                    name: name.into(),
                    email: None,
                },
                &pw,
                false,
            )
            .await
            .unwrap();
        self.dir.sign_in(a.id.as_str(), &pw, None).await.unwrap().1
    }

    async fn send(&self, from: &CurrentSession, to: Vec<Recipient>) -> String {
        let dicom = imaging::sample::with_payload(b"slice");
        self.post
            .send(
                from,
                Outgoing {
                    kind: "reading_request".into(),
                    to,
                    subject: "CT".into(),
                    patient_id: "P-1".into(),
                    patient_name: "香川 太郎".into(),
                    body: "所見をお願いします".into(),
                    consent: Some(consent()),
                },
                vec![OutgoingAttachment {
                    name: "a.dcm".into(),
                    media_type: "application/dicom".into(),
                    source: Box::new(Cursor::new(dicom)),
                }],
            )
            .await
            .unwrap()
    }
}

fn deliverer(n: &Net, lease: Duration) -> Deliverer {
    Deliverer::new(
        n.t.store.clone(),
        DeliveryPolicy {
            lease,
            ..DeliveryPolicy::default()
        },
    )
}

#[tokio::test]
async fn an_acknowledged_item_reaches_every_mailbox_exactly_once() {
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    let liaison = n.person(Role::Liaison, HOSPITAL, "liaison").await;
    let id = n
        .send(
            &gp,
            vec![
                Recipient::Person(rad.account.id.clone()),
                Recipient::LiaisonInbox(FacilityCode::parse(HOSPITAL).unwrap()),
            ],
        )
        .await;
    // Acknowledged means queued, not yet in anyone's mailbox.
    assert_eq!(n.t.store.count_deliveries("pending").await.unwrap(), 1);
    assert!(n.post.mailbox(&rad, "inbox").await.unwrap().is_empty());
    assert_eq!(
        n.post
            .delivery_status(&gp, &id)
            .await
            .unwrap()
            .unwrap()
            .state,
        "pending"
    );

    let d = deliverer(&n, Duration::from_secs(30));
    assert_eq!(d.deliver_due().await.unwrap(), 1);
    assert_eq!(
        d.deliver_due().await.unwrap(),
        0,
        "nothing is delivered twice"
    );
    let inbox = n.post.mailbox(&rad, "inbox").await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        (inbox[0].envelope_id.as_str(), inbox[0].seen),
        (id.as_str(), false)
    );
    let sent = n.post.mailbox(&gp, "sent").await.unwrap();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].seen);
    assert_eq!(n.post.mailbox(&liaison, "shared").await.unwrap().len(), 1);
    assert!(n.post.mailbox(&liaison, "inbox").await.unwrap().is_empty());
    assert!(matches!(
        n.post.mailbox(&rad, "shared").await,
        Err(mailbox::Error::Forbidden)
    ));
    let status = n.post.delivery_status(&gp, &id).await.unwrap().unwrap();
    assert_eq!(status.state, "done");
    assert!(
        n.post.delivery_status(&rad, &id).await.unwrap().is_none(),
        "only the sender sees delivery"
    );

    // Opening marks it seen; archiving moves it out of the inbox.
    n.post.open(&rad, &id).await.unwrap();
    assert!(n.post.mailbox(&rad, "inbox").await.unwrap()[0].seen);
    n.post
        .set_flags(&rad, &id, None, Some(true), Some(true))
        .await
        .unwrap();
    assert!(n.post.mailbox(&rad, "inbox").await.unwrap().is_empty());
    let archive = n.post.mailbox(&rad, "archive").await.unwrap();
    assert!(archive[0].flagged && archive[0].archived);
}

#[tokio::test]
async fn a_claim_lost_in_a_crash_is_delivered_after_its_lease() {
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    n.send(&gp, vec![Recipient::Person(rad.account.id.clone())])
        .await;
    // A worker claims the entry and dies before completing it.
    let now = chrono::Utc::now().timestamp_millis();
    let claimed =
        n.t.store
            .claim_deliveries(now, now + 400, 10)
            .await
            .unwrap();
    assert_eq!(claimed.len(), 1);
    let d = deliverer(&n, Duration::from_secs(30));
    assert_eq!(
        d.deliver_due().await.unwrap(),
        0,
        "still leased to the dead worker"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.deliver_due().await.unwrap(), 1);
    assert_eq!(n.post.mailbox(&rad, "inbox").await.unwrap().len(), 1);
    assert_eq!(n.t.store.count_deliveries("done").await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_workers_deliver_a_burst_without_duplicates_or_loss() {
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    let count = 60;
    for _ in 0..count {
        n.send(&gp, vec![Recipient::Person(rad.account.id.clone())])
            .await;
    }
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let d = Arc::new(Deliverer::new(
                n.t.store.clone(),
                DeliveryPolicy {
                    batch: 5,
                    ..DeliveryPolicy::default()
                },
            ));
            tokio::spawn(async move {
                let mut handled = 0;
                loop {
                    match d.deliver_due().await.unwrap() {
                        0 => break,
                        k => handled += k,
                    }
                }
                handled
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    assert_eq!(total, count, "each entry handled by exactly one worker");
    assert_eq!(
        n.t.store.count_deliveries("done").await.unwrap(),
        count as i64
    );
    assert_eq!(n.post.mailbox(&rad, "inbox").await.unwrap().len(), count);
    assert_eq!(n.post.mailbox(&gp, "sent").await.unwrap().len(), count);
}

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
    let d = deliverer(&n, Duration::from_secs(30)).notifying(notices(&n));
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
    let rows =
        n.t.store
            .claim_notifications(i64::MAX - 1, i64::MAX, false, 10)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].account_id, gp.account.id.as_str());
    assert_eq!(rows[0].reason, "delivery_failed");
}

fn reading_request(to: Recipient) -> NewThread {
    NewThread {
        kind: ThreadKind::ReadingRequest,
        to: Some(to),
        subject: "胸部CT".into(),
        patient_id: "P-1".into(),
        patient_name: "香川 太郎".into(),
        body: "ご高診をお願いします".into(),
        consent: Some(consent()),
        fields: vec![
            ("modality".into(), "CT".into()),
            ("body_part".into(), "胸部".into()),
            ("clinical_question".into(), "結節の評価".into()),
        ],
        urgency: Urgency::Routine,
        wanted_by: None,
        resource_id: None,
        template: None,
    }
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
    let threads = Threads::new(n.dir.clone(), n.post.clone()).notifying(notices.clone());
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
    let now = chrono::Utc::now().timestamp_millis();
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
    let immediate =
        n.t.store
            .claim_notifications(now, now + 1000, false, 10)
            .await
            .unwrap();
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
        n.t.store
            .claim_notifications(now, now + 1000, true, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let at = notices.policy().next_digest_at(now);
    let digest =
        n.t.store
            .claim_notifications(at, at + 1000, true, 10)
            .await
            .unwrap();
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
    let escalations: Vec<_> =
        n.t.store
            .claim_notifications(later, later + 1000, false, 10)
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

#[tokio::test]
async fn mail_client_folders_keep_stable_growing_uids_and_archive_instead_of_deleting() {
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    let col = n.person(Role::Doctor, HOSPITAL, "col").await;
    let clerk = n.person(Role::Clerk, HOSPITAL, "clerk").await;
    let folders = Folders::new(n.dir.clone(), n.post.clone());
    let d = deliverer(&n, Duration::from_secs(30));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            n.send(&gp, vec![Recipient::Person(rad.account.id.clone())])
                .await,
        );
        d.deliver_due().await.unwrap();
    }
    let uids = |l: &FolderListing| -> Vec<(i64, String)> {
        l.messages
            .iter()
            .map(|m| (m.uid, m.envelope_id.clone()))
            .collect()
    };
    let inbox = folders.listing(&rad, Folder::Inbox).await.unwrap();
    let first = uids(&inbox);
    assert_eq!(
        first.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        ids,
        "arrival order"
    );
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(inbox.uid_next > first[2].0);
    assert_eq!(
        uids(&folders.listing(&rad, Folder::Inbox).await.unwrap()),
        first,
        "stable"
    );

    // Reading without marking, then marking.
    folders.open(&rad, &ids[0], false).await.unwrap();
    let l = folders.listing(&rad, Folder::Inbox).await.unwrap();
    assert!(!l.messages[0].seen, "a peek marks nothing");
    folders
        .set_flags(&rad, Folder::Inbox, &ids[0], Some(true), Some(true))
        .await
        .unwrap();
    let l = folders.listing(&rad, Folder::Inbox).await.unwrap();
    assert!(l.messages[0].seen && l.messages[0].flagged);
    assert!(
        n.post.mailbox(&rad, "inbox").await.unwrap()[2].seen,
        "the web sees it too"
    );

    // EXPUNGE archives; coming back gives a new, higher UID.
    folders.expunge(&rad, Folder::Inbox, &ids[1]).await.unwrap();
    let inbox = uids(&folders.listing(&rad, Folder::Inbox).await.unwrap());
    assert_eq!(inbox, vec![first[0].clone(), first[2].clone()]);
    let archive = uids(&folders.listing(&rad, Folder::Archive).await.unwrap());
    assert_eq!(archive.len(), 1);
    assert!(archive[0].0 > first[2].0);
    folders
        .expunge(&rad, Folder::Archive, &ids[1])
        .await
        .unwrap();
    assert!(
        folders
            .listing(&rad, Folder::Archive)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    let inbox = uids(&folders.listing(&rad, Folder::Inbox).await.unwrap());
    assert_eq!(inbox.len(), 3);
    assert_eq!(inbox[2].1, ids[1]);
    assert!(
        inbox[2].0 > archive[0].0,
        "back in INBOX above everything seen"
    );
    assert!(
        n.post.open(&rad, &ids[1]).await.is_ok(),
        "nothing destroyed"
    );

    // A colleague sees none of it; a doctor has no facility folder.
    assert!(
        folders
            .listing(&col, Folder::Inbox)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert!(folders.listing(&col, Folder::Facility).await.is_err());
    assert!(folders.open(&col, &ids[0], false).await.is_err());

    // The clerk's facility folder holds every item of the hospital, read-only.
    assert_eq!(
        folders.available(&clerk).unwrap(),
        vec![
            Folder::Inbox,
            Folder::Sent,
            Folder::Archive,
            Folder::Facility
        ]
    );
    let facility = folders.listing(&clerk, Folder::Facility).await.unwrap();
    assert_eq!(facility.messages.len(), 3);
    assert!(folders.open(&clerk, &ids[2], false).await.is_ok());
    assert!(matches!(
        folders
            .set_flags(&clerk, Folder::Facility, &ids[2], Some(true), None)
            .await,
        Err(mailbox::Error::Forbidden)
    ));
    assert!(matches!(
        folders.expunge(&clerk, Folder::Facility, &ids[2]).await,
        Err(mailbox::Error::Forbidden)
    ));
}

#[tokio::test]
async fn folder_pages_list_in_one_query_with_filters_paging_unread_counts_and_search() {
    use mailbox::postroom::listing::{FolderFilter, MailFolder};
    use mailbox::threads::StepInput;
    use mailbox::threads::workflow::{Step, ThreadState};

    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    let threads = Threads::new(n.dir.clone(), n.post.clone());
    let mut opened = Vec::new();
    for i in 0..5 {
        let mut new = reading_request(Recipient::Person(rad.account.id.clone()));
        new.body = format!("ご高診をお願いします item-{i}");
        opened.push(threads.open(&gp, new, vec![]).await.unwrap());
    }
    // One plain item, outside any thread.
    n.send(&gp, vec![Recipient::Person(rad.account.id.clone())])
        .await;
    let d = deliverer(&n, Duration::from_secs(30));
    assert_eq!(d.deliver_due().await.unwrap(), 6);

    let all = FolderFilter::default();
    let page1 = n
        .post
        .folder_page(&rad, MailFolder::Inbox, all, 1, 4)
        .await
        .unwrap();
    assert_eq!(page1.rows.len(), 4);
    assert!(page1.has_more);
    let page2 = n
        .post
        .folder_page(&rad, MailFolder::Inbox, all, 2, 4)
        .await
        .unwrap();
    assert_eq!(page2.rows.len(), 2);
    assert!(!page2.has_more);
    // Newest first, no item twice, the sending facility on every row.
    let rows: Vec<_> = page1.rows.iter().chain(&page2.rows).collect();
    assert!(
        rows.windows(2)
            .all(|w| w[0].delivered_at >= w[1].delivered_at)
    );
    let mut ids: Vec<_> = rows.iter().map(|r| r.envelope_id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    assert!(
        rows.iter()
            .all(|r| r.counterpart_facility.as_deref() == Some(CLINIC)
                && r.counterpart_name.as_deref() == Some(&*format!("施設 {CLINIC}")))
    );
    assert_eq!(n.post.unread_in_inbox(&rad).await.unwrap(), 6);

    // The sender's Sent names the other party's facility, with the thread's state.
    let sent = n
        .post
        .folder_page(&gp, MailFolder::Sent, all, 1, 50)
        .await
        .unwrap();
    assert_eq!(sent.rows.len(), 6);
    assert!(
        sent.rows.iter().filter(|r| r.thread_id.is_some()).all(|r| r
            .counterpart_facility
            .as_deref()
            == Some(HOSPITAL)
            && r.thread_state.as_deref() == Some("delivered"))
    );

    // Opening one and accepting another: unread count and the state filter follow.
    let view = threads.view_each(&rad, &opened[0].thread_id).await.unwrap();
    assert!(view.steps.iter().all(|s| s.opened.is_ok()));
    assert_eq!(n.post.unread_in_inbox(&rad).await.unwrap(), 5);
    threads
        .act(
            &rad,
            &opened[1].thread_id,
            StepInput {
                step: Step::Accept,
                body: String::new(),
                fields: vec![],
                next_facility: None,
            },
            vec![],
        )
        .await
        .unwrap();
    let accepted = FolderFilter {
        kind: None,
        state: Some(ThreadState::Accepted),
    };
    let only = n
        .post
        .folder_page(&rad, MailFolder::Inbox, accepted, 1, 50)
        .await
        .unwrap();
    assert_eq!(only.rows.len(), 1);
    assert_eq!(
        only.rows[0].thread_id.as_deref(),
        Some(&*opened[1].thread_id)
    );
    let by_kind = FolderFilter {
        kind: Some(ThreadKind::ReadingRequest),
        state: None,
    };
    assert_eq!(
        n.post
            .folder_page(&rad, MailFolder::Inbox, by_kind, 1, 50)
            .await
            .unwrap()
            .rows
            .len(),
        6,
        "the plain item's kind is reading_request too"
    );

    // Archiving moves an item from the Inbox page to the Archive page.
    n.post
        .set_flags(&rad, &opened[2].envelope_id, None, None, Some(true))
        .await
        .unwrap();
    let archive = n
        .post
        .folder_page(&rad, MailFolder::Archive, all, 1, 50)
        .await
        .unwrap();
    assert_eq!(archive.rows.len(), 1);
    assert_eq!(archive.rows[0].envelope_id, opened[2].envelope_id);
    assert_eq!(
        n.post
            .folder_page(&rad, MailFolder::Inbox, all, 1, 50)
            .await
            .unwrap()
            .rows
            .len(),
        5
    );

    // Search reads the sealed text: archived items included, others' not.
    let hits = n.post.search(&rad, "ITEM-2", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].envelope_id, opened[2].envelope_id);
    assert_eq!(n.post.search(&rad, "item-", 10).await.unwrap().len(), 5);
    assert!(
        n.post
            .search(&rad, "no such words", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(n.post.search(&rad, "  ", 10).await.is_err());
    let colleague = n.person(Role::Doctor, HOSPITAL, "colleague").await;
    assert!(
        n.post
            .search(&colleague, "item-", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A damaged step is reported in its place; the others still open.
    let good =
        n.t.store
            .envelope(&opened[0].envelope_id)
            .await
            .unwrap()
            .unwrap()
            .body;
    let mut bad = good.clone();
    let at = bad.len() - 20;
    bad[at] ^= 0x01;
    n.t.store
        .overwrite_body(&opened[0].envelope_id, &bad)
        .await
        .unwrap();
    let view = threads.view_each(&gp, &opened[0].thread_id).await.unwrap();
    assert!(matches!(
        view.steps[0].opened,
        Err(mailbox::Error::Tampered("body"))
    ));
    assert!(threads.view(&gp, &opened[0].thread_id).await.is_err());
}

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
    use mailbox::threads::workflow::Step;

    let n = net().await;
    let threads = Threads::new(n.dir.clone(), n.post.clone());
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
    use mailbox::threads::workflow::Step;
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let surgeon = n.person(Role::Doctor, HOSPITAL, "surgeon").await;
    let colleague = n.person(Role::Doctor, HOSPITAL, "colleague").await;
    let outsider = n.person(Role::Doctor, HOSPITAL, "outsider").await;
    let threads = Threads::new(n.dir.clone(), n.post.clone());
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
    let opened = n.t.store.thread(id).await.unwrap().unwrap();
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
