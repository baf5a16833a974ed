//! The durable queue on both backends: acknowledged items are delivered exactly
//! once per recipient, a crashed claim is delivered after its lease, and
//! concurrent workers never duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use mailbox::records::audit::Audit;
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
use mailbox::threads::{NewThread, Threads, Urgency};
use mailbox::workflow::ThreadKind;
use mailbox::{
    AuthPolicy, CurrentSession, Directory, Facility, FacilityCode, NetworkPolicy, NewAccount,
    Password, Role,
};
use renkei_crypto::{BlindIndexKey, LockParams};

#[path = "delivery_story/folders.rs"]
mod folders;
#[path = "delivery_story/notices.rs"]
mod notices;
#[path = "delivery_story/threads.rs"]
mod threads;

fn consent() -> Consent {
    Consent {
        obtained_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        method: ConsentMethod::Written,
        obtained_by: "坂出 明美".into(),
        given_by: mailbox::postroom::ConsentGiver::Patient,
    }
}

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";

struct Net {
    t: common::TestStore,
    dir: Arc<Directory>,
    post: Arc<Postroom>,
    audit: Audit,
}

async fn net() -> Net {
    let t = fresh_store().await;
    let policy = AuthPolicy {
        key_lock: LockParams::insecure_for_tests(),
        second_factor_required: false,
        ..AuthPolicy::default()
    };
    // One audit trail for every service, as the binary builds it.
    let audit = Audit::new(t.store.clone());
    let dir = Arc::new(Directory::assemble(
        t.store.clone(),
        audit.clone(),
        mailbox::clock::system(),
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
        t.store.clone(),
        audit.clone(),
        BlobStore::new(t.dir.path().join("blobs")),
        Arc::new(BlindIndexKey::generate().unwrap()),
    ));
    Net {
        t,
        dir,
        post,
        audit,
    }
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
    let now = mailbox::clock::now_millis();
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
    // Asked again until the lease runs out: then the entry is delivered, once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let delivered = loop {
        let k = d.deliver_due().await.unwrap();
        if k != 0 || std::time::Instant::now() > deadline {
            break k;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(delivered, 1);
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
