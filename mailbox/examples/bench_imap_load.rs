//! `bench/imap`: fills a data folder that `renkei serve --data-dir DIR` then
//! serves over IMAP. Run through `bench/imap/run.sh`.
//!
//! What it writes into DIR: `renkei.db` (SQLite, as `serve` opens it by default),
//! `blobs/`, and `blind-index.key` (the hex form `serve` reads). Two facilities,
//! a clerk each (their first sign-in makes the facility oversight keys), a GP at
//! the clinic who sends, and a radiologist at the hospital who reads. The GP
//! sends COUNT items of one shape to the radiologist through `Postroom::send`
//! (sealed to 4 key slots, signed) and the delivery worker files them in the
//! radiologist's Inbox. Each item: a Japanese subject and a few hundred
//! characters of text with patient data and consent, and one PDF attachment of
//! ATTACH bytes (default 8 KiB) — a referral letter with its scan.
//!
//! With `threads` as the fourth argument (`bench/webmail`) each item opens a
//! reading-request thread instead (`Threads::open`: structured fields, an
//! urgency and a due date), as the webmail's compose page does.
//!
//! Usage: bench_imap_load DIR [COUNT] [ATTACH_BYTES] [items|threads]
//! Prints `READER <account id> <password>` for the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::NaiveDate;
use mailbox::delivery::{Deliverer, DeliveryPolicy};
use mailbox::postroom::{
    BlobStore, Consent, ConsentMethod, Outgoing, OutgoingAttachment, Postroom, Recipient,
};
use mailbox::store::StoreTarget;
use mailbox::threads::{NewThread, Threads, Urgency};
use mailbox::workflow::ThreadKind;
use mailbox::{
    AuthPolicy, CurrentSession, Directory, Facility, FacilityCode, NetworkPolicy, NewAccount,
    Password, Role,
};
use renkei_crypto::{BlindIndexKey, LockParams};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";
/// Submissions in flight at once while loading.
const CLIENTS: u64 = 8;

fn password(name: &str) -> Password {
    Password::new(format!("Bench-{name}-2026!pass"))
}

async fn person(
    dir: &Directory,
    role: Role,
    facility: &str,
    name: &str,
) -> Res<(CurrentSession, mailbox::Account)> {
    let pw = password(name);
    let a = dir
        .add_account_with_password(
            NewAccount {
                role,
                facility: Some(FacilityCode::parse(facility)?),
                name: name.into(),
                email: None,
            },
            &pw,
            false,
        )
        .await?;
    let (_, session) = dir.sign_in(a.id.as_str(), &pw, None).await?;
    Ok((session, a))
}

/// A PDF-looking attachment (the attachment policy judges by content).
fn pdf(size: usize, n: u64) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < size.saturating_sub(6) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size.saturating_sub(6));
    v.extend_from_slice(b"%%EOF\n");
    v
}

async fn send(
    post: &Postroom,
    sender: &CurrentSession,
    to: &mailbox::AccountId,
    n: u64,
    attach: usize,
) -> mailbox::Result<String> {
    let today = chrono::Local::now().date_naive();
    post.send(
        sender,
        Outgoing {
            kind: "reading_request".into(),
            to: vec![Recipient::Person(to.clone())],
            subject: format!("胸部CT 読影依頼 #{n} — 3 か月前の画像との比較をお願いします"),
            patient_id: format!("P-{:06}", n % 1_000_000),
            patient_name: "香川 太郎".into(),
            body: "いつもお世話になっております。咳嗽が続く 68 歳男性です。\
                   胸部単純CTを撮影しました。右上葉の結節影について、前回画像との比較を\
                   含めて読影をお願いいたします。既往歴: 高血圧、喫煙歴 40 pack-years。\
                   ご多忙のところ恐縮ですが、よろしくお願い申し上げます。"
                .into(),
            consent: Some(Consent {
                obtained_on: today,
                method: ConsentMethod::Written,
                obtained_by: "坂出 明美".into(),
                given_by: mailbox::postroom::ConsentGiver::Patient,
            }),
        },
        if attach == 0 {
            vec![]
        } else {
            vec![OutgoingAttachment {
                name: format!("referral-{n}.pdf"),
                media_type: "application/pdf".into(),
                source: Box::new(std::io::Cursor::new(pdf(attach, n))),
            }]
        },
    )
    .await
}

/// The same item as a reading-request thread.
async fn open_thread(
    threads: &Threads,
    sender: &CurrentSession,
    to: &mailbox::AccountId,
    n: u64,
    attach: usize,
) -> mailbox::Result<String> {
    let today = chrono::Local::now().date_naive();
    threads
        .open(
            sender,
            NewThread {
                kind: ThreadKind::ReadingRequest,
                to: Some(Recipient::Person(to.clone())),
                subject: format!("胸部CT 読影依頼 #{n}"),
                patient_id: format!("P-{:06}", n % 1_000_000),
                patient_name: "香川 太郎".into(),
                body: "咳嗽が続く 68 歳男性です。右上葉の結節影について読影をお願いします。".into(),
                consent: Some(Consent {
                    obtained_on: today,
                    method: ConsentMethod::Written,
                    obtained_by: "坂出 明美".into(),
                    given_by: mailbox::postroom::ConsentGiver::Patient,
                }),
                fields: vec![
                    ("modality".into(), "CT".into()),
                    ("body_part".into(), "胸部".into()),
                    ("clinical_question".into(), "結節影の評価".into()),
                ],
                urgency: if n.is_multiple_of(5) {
                    Urgency::Urgent
                } else {
                    Urgency::Routine
                },
                wanted_by: today.checked_add_days(chrono::Days::new(n % 14)),
                resource_id: None,
                template: None,
            },
            if attach == 0 {
                vec![]
            } else {
                vec![OutgoingAttachment {
                    name: format!("referral-{n}.pdf"),
                    media_type: "application/pdf".into(),
                    source: Box::new(std::io::Cursor::new(pdf(attach, n))),
                }]
            },
        )
        .await
        .map(|c| c.envelope_id)
}

async fn run() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_imap_load DIR [COUNT] [ATTACH_BYTES] [items|threads]";
    let dir: std::path::PathBuf = args.next().ok_or(usage)?.into();
    let count: u64 = args.next().map_or(Ok(10_000), |s| s.parse())?;
    let attach: usize = args.next().map_or(Ok(8 * 1024), |s| s.parse())?;
    let as_threads = match args.next().as_deref() {
        None | Some("items") => false,
        Some("threads") => true,
        Some(_) => return Err(usage.into()),
    };
    std::fs::create_dir_all(&dir)?;

    let key = BlindIndexKey::generate()?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("blind-index.key"))?;
        f.write_all(key.to_hex().as_bytes())?;
        f.sync_all()?;
    }
    let store = mailbox::store::open(&StoreTarget::Sqlite(dir.join("renkei.db"))).await?;
    let policy = AuthPolicy {
        // Only these four sign-ins unlock keys here; `serve` unlocks with the
        // parameters stored in each locked key, whatever its own policy.
        key_lock: LockParams::insecure_for_tests(),
        second_factor_required: false,
        ..AuthPolicy::default()
    };
    let audit = mailbox::records::audit::Audit::new(store.clone());
    let directory = Arc::new(Directory::assemble(
        store.clone(),
        audit.clone(),
        mailbox::clock::system(),
        policy,
        NetworkPolicy::default(),
    ));
    for code in [HOSPITAL, CLINIC] {
        directory
            .add_facility(Facility {
                code: FacilityCode::parse(code)?,
                name: format!("施設 {code}"),
                address: String::new(),
                phone: String::new(),
                departments: vec![],
                publish_details: false,
                city: String::new(),
                public_note: String::new(),
                active_from: NaiveDate::from_ymd_opt(2026, 4, 1).ok_or("date")?,
                active_until: None,
                approval_ref: None,
            })
            .await?;
    }
    person(&directory, Role::Clerk, HOSPITAL, "clerk-h").await?;
    person(&directory, Role::Clerk, CLINIC, "clerk-c").await?;
    let (sender, _) = person(&directory, Role::Doctor, CLINIC, "gp").await?;
    let (_, reader) = person(&directory, Role::Doctor, HOSPITAL, "rad").await?;
    let post = Arc::new(Postroom::new(
        directory.clone(),
        store.clone(),
        audit.clone(),
        BlobStore::new(dir.join("blobs")),
        Arc::new(key),
    ));
    let threads = Arc::new(Threads::new(
        directory.clone(),
        post.clone(),
        store.clone(),
        audit.clone(),
    ));

    let t = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (post, threads, sender, to, next) = (
            post.clone(),
            threads.clone(),
            sender.clone(),
            reader.id.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<(), BoxError>(());
                }
                if as_threads {
                    open_thread(&threads, &sender, &to, n, attach).await?;
                } else {
                    send(&post, &sender, &to, n, attach).await?;
                }
            }
        }));
    }
    let deliverer = Deliverer::new(store.clone(), DeliveryPolicy::default());
    let mut delivered = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        delivered += deliverer.deliver_due().await?;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.await??;
    }
    loop {
        let n = deliverer.deliver_due().await?;
        if n == 0 && store.count_deliveries("pending").await? == 0 {
            break;
        }
        delivered += n;
    }
    eprintln!(
        "loaded {count} items ({attach} B attachment each) into {} in {:.1} s; {delivered} delivered",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    println!("READER {} {}", reader.id.as_str(), password("rad").expose());
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench_imap_load: {e}");
        std::process::exit(1);
    }
}
