//! Sealed envelopes through the domain services, on both storage backends: who can
//! open what (in the slot table and in the crypto), tampering, password changes
//! and resets, grants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use mailbox::records::audit::Audit;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use common::fresh_store;
use mailbox::postroom::{
    ArchiveScope, AttachmentIntegrity, BlobStore, Consent, ConsentMethod, Outgoing,
    OutgoingAttachment, Postroom, Recipient, SignatureStatus,
};
use mailbox::{
    AccountId, AuthPolicy, CurrentSession, Directory, Error, Facility, FacilityCode, NetworkPolicy,
    NewAccount, Password, Role,
};
use renkei_crypto::{BlindIndexKey, CryptoError, LockParams, SealedEnvelope};

#[path = "sealed_story/access.rs"]
mod access;
#[path = "sealed_story/custody.rs"]
mod custody;
#[path = "sealed_story/integrity.rs"]
mod integrity;
#[path = "sealed_story/keys.rs"]
mod keys;
#[path = "sealed_story/recovery.rs"]
mod recovery;

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

/// A DICOM file whose data is `body`.
fn dicom(body: &[u8]) -> Vec<u8> {
    imaging::sample::with_payload(body)
}

struct Net {
    t: common::TestStore,
    dir: Arc<Directory>,
    post: Postroom,
    audit: Audit,
}

struct Person {
    id: AccountId,
    pw: Password,
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
    for (code, name) in [(HOSPITAL, "さぬき中央病院"), (CLINIC, "ことひら内科")] {
        dir.add_facility(Facility {
            code: FacilityCode::parse(code).unwrap(),
            name: name.into(),
            address: String::new(),
            phone: String::new(),
            departments: vec![],
            publish_details: true,
            city: String::new(),
            public_note: String::new(),
            active_from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
            active_until: None,
            approval_ref: None,
        })
        .await
        .unwrap();
    }
    let post = Postroom::new(
        dir.clone(),
        t.store.clone(),
        audit.clone(),
        BlobStore::new(t.dir.path().join("blobs")),
        Arc::new(BlindIndexKey::generate().unwrap()),
    );
    Net {
        t,
        dir,
        post,
        audit,
    }
}

impl Net {
    async fn person(&self, role: Role, facility: Option<&str>, name: &str) -> Person {
        let pw = Password::new(format!("Pass-{name}-2026!"));
        let a = self
            .dir
            .add_account_with_password(
                NewAccount {
                    role,
                    facility: facility.map(|f| FacilityCode::parse(f).unwrap()),
                    name: name.into(),
                    email: None,
                },
                &pw,
                false,
            )
            .await
            .unwrap();
        Person { id: a.id, pw }
    }

    async fn sign_in(&self, p: &Person) -> CurrentSession {
        self.dir
            .sign_in(p.id.as_str(), &p.pw, None)
            .await
            .unwrap()
            .1
    }

    async fn send(
        &self,
        from: &CurrentSession,
        to: Vec<Recipient>,
        body: &str,
        files: &[(&str, Vec<u8>)],
    ) -> String {
        let attachments = files
            .iter()
            .map(|(name, bytes)| OutgoingAttachment {
                name: (*name).into(),
                media_type: "application/dicom".into(),
                source: Box::new(Cursor::new(bytes.clone())),
            })
            .collect();
        self.post
            .send(
                from,
                Outgoing {
                    kind: "reading_request".into(),
                    to,
                    subject: "胸部CT 読影依頼".into(),
                    patient_id: "P-0001".into(),
                    patient_name: "香川 太郎".into(),
                    body: body.into(),
                    consent: Some(consent()),
                },
                attachments,
            )
            .await
            .unwrap()
    }

    async fn attachment(
        &self,
        s: &CurrentSession,
        id: &str,
        index: usize,
    ) -> Result<Vec<u8>, Error> {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        self.post
            .open_attachment(s, id, index, sink.clone())
            .await?;
        Ok(sink.0.lock().unwrap().clone())
    }
}
