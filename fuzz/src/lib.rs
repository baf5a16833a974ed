//! The IMAP session harness shared by the cargo-fuzz target
//! (`fuzz_targets/imap_session.rs`) and the stable replay test
//! (`tests/replay.rs`).
//!
//! Arbitrary bytes are a client's whole input on one connection, served by
//! the server's own connection loop (`transport::imap::serve_session`, the loop
//! the TLS listeners run after the handshake) over an in-memory pipe
//! (`tokio::io::duplex`); the pass reads the server's answers until it closes.
//! Each input is played twice:
//!
//! 1. against a new, not-authenticated `Session` (the pre-login attack surface;
//!    `transport::imap::serve_connection`, as a listener runs it after TLS),
//! 2. against an authenticated `Session` kept for the life of the process
//!    (signed in once; after a LOGOUT or expiry it is signed in again, and a
//!    folder left selected by the previous input is unselected first).
//!
//! The services are real: a `Directory`, `Postroom` and `Folders` over a SQLite
//! store in a temporary folder, made once per process, with one doctor whose
//! INBOX holds three sealed items (one with a PDF attachment) and whose Sent
//! holds one. State the fuzzer changes in the store (flags, archiving by
//! EXPUNGE) carries over between inputs, like a long-lived mailbox; a crash
//! found on one input normally reproduces alone, but replay with the run's
//! corpus if it does not.

pub mod dicom;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};

use imap_next::imap_types::command::{Command, CommandBody};
use mailbox::postroom::folders::Folders;
use mailbox::postroom::{
    BlobStore, Consent, ConsentMethod, Outgoing, OutgoingAttachment, Postroom, Recipient,
};
use mailbox::store::StoreTarget;
use mailbox::{
    AuthPolicy, CurrentSession, Directory, Facility, FacilityCode, NetworkPolicy, NewAccount,
    Password, Role,
};
use renkei_crypto::{BlindIndexKey, LockParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use transport::imap::session::{Services, Session};
use transport::imap::{ImapSettings, Tally, serve_connection, serve_session};

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";
/// The in-memory pipe's buffer each way.
const PIPE: usize = 64 * 1024;

/// The signed-in account the authenticated pass uses.
pub struct Fixture {
    pub rt: tokio::runtime::Runtime,
    pub services: Services,
    pub user: String,
    pub password: String,
    _dir: tempfile::TempDir,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn person(
    dir: &Directory,
    role: Role,
    facility: &str,
    name: &str,
) -> Result<(CurrentSession, mailbox::Account, String), BoxError> {
    let pw = format!("Fuzz-{name}-2026!pass");
    let a = dir
        .add_account_with_password(
            NewAccount {
                role,
                facility: Some(FacilityCode::parse(facility)?),
                name: name.into(),
                email: None,
            },
            &Password::new(pw.clone()),
            false,
        )
        .await?;
    let (_, session) = dir
        .sign_in(a.id.as_str(), &Password::new(pw.clone()), None)
        .await?;
    Ok((session, a, pw))
}

fn item(n: usize, to: &mailbox::AccountId) -> Outgoing {
    Outgoing {
        kind: "reading_request".into(),
        to: vec![Recipient::Person(to.clone())],
        subject: format!("胸部CT 読影依頼 #{n}"),
        patient_id: format!("P-{n:04}"),
        patient_name: "香川 太郎".into(),
        body: "右上葉の結節影について読影をお願いいたします。\r\n--\r\nboundary-like line\r\n"
            .into(),
        consent: Some(Consent {
            obtained_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default(),
            method: ConsentMethod::Verbal,
            obtained_by: "坂出 明美".into(),
            given_by: mailbox::postroom::ConsentGiver::Patient,
        }),
    }
}

async fn build(dir: &std::path::Path) -> Result<(Services, String, String), BoxError> {
    let store = mailbox::store::open(&StoreTarget::Sqlite(dir.join("renkei.db"))).await?;
    let policy = AuthPolicy {
        // Wrong passwords from the fuzzer must never delay the fixture account.
        delay_after: u32::MAX,
        key_lock: LockParams::insecure_for_tests(),
        second_factor_required: false,
        // Nor must they use up the address's failure limit: the fuzzer's
        // connections all come from one address, and the fixture signs in from it.
        address_limit: mailbox::auth::AddressLimit {
            failures: u32::MAX,
            ..mailbox::auth::AddressLimit::default()
        },
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
                active_from: chrono::NaiveDate::from_ymd_opt(2026, 4, 1).unwrap_or_default(),
                active_until: None,
                approval_ref: None,
            })
            .await?;
    }
    person(&directory, Role::Clerk, HOSPITAL, "clerk-h").await?;
    person(&directory, Role::Clerk, CLINIC, "clerk-c").await?;
    let (gp, gp_account, _) = person(&directory, Role::Doctor, CLINIC, "gp").await?;
    let (rad, rad_account, rad_pw) = person(&directory, Role::Doctor, HOSPITAL, "rad").await?;
    let postroom = Arc::new(Postroom::new(
        directory.clone(),
        store.clone(),
        audit,
        BlobStore::new(dir.join("blobs")),
        Arc::new(BlindIndexKey::generate()?),
    ));
    for n in 0..3 {
        let files = if n == 1 {
            let mut pdf = b"%PDF-1.7\n".to_vec();
            pdf.extend((0..3000u32).flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()));
            pdf.extend_from_slice(b"\n%%EOF\n");
            vec![OutgoingAttachment {
                name: "紹介状.pdf".into(),
                media_type: "application/pdf".into(),
                source: Box::new(std::io::Cursor::new(pdf)),
            }]
        } else {
            vec![]
        };
        postroom.send(&gp, item(n, &rad_account.id), files).await?;
    }
    postroom.send(&rad, item(9, &gp_account.id), vec![]).await?;
    let deliverer = mailbox::delivery::Deliverer::new(
        store.clone(),
        mailbox::delivery::DeliveryPolicy::default(),
    );
    while deliverer.deliver_due().await? > 0 {}
    let folders = Arc::new(Folders::new(postroom.clone(), store));
    Ok((
        Services {
            directory,
            postroom,
            folders,
        },
        rad_account.id.as_str().to_string(),
        rad_pw,
    ))
}

/// The process-wide fixture (built on first use).
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("renkei-fuzz-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let (services, user, password) = rt
            .block_on(build(dir.path()))
            .unwrap_or_else(|e| panic!("fixture: {e}"));
        Fixture {
            rt,
            services,
            user,
            password,
            _dir: dir,
        }
    })
}

/// What one pass saw (for the replay test's summary).
#[derive(Debug, Default, Clone, Copy)]
pub struct PassStats {
    pub commands: usize,
    pub refused: usize,
    pub output_bytes: usize,
}

/// Plays `data` as the whole input of one connection served by `serve` (the
/// server's connection loop) over an in-memory pipe, reading every byte the
/// server answers until it closes the connection.
async fn play<F>(data: &[u8], serve: impl FnOnce(DuplexStream) -> F) -> PassStats
where
    F: Future<Output = Tally>,
{
    let (client, server) = tokio::io::duplex(PIPE);
    let (mut from_server, mut to_server) = tokio::io::split(client);
    let feed = async {
        // The server may stop reading (LOGOUT, too many bad lines): the rest is
        // refused by a closed pipe, as a TCP peer would see it.
        let _ = to_server.write_all(data).await;
        let _ = to_server.shutdown().await;
    };
    let drain = async {
        let mut out = Vec::new();
        let _ = from_server.read_to_end(&mut out).await;
        out.len()
    };
    // `serve` drops its end of the pipe when it returns, which ends the drain.
    let ((), output_bytes, tally) = tokio::join!(feed, drain, serve(server));
    PassStats {
        commands: tally.commands,
        refused: tally.refused,
        output_bytes,
    }
}

fn peer() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))
}

/// The authenticated session kept between inputs.
fn authenticated_slot() -> &'static Mutex<Option<Session>> {
    static SLOT: OnceLock<Mutex<Option<Session>>> = OnceLock::new();
    SLOT.get_or_init(|| Mutex::new(None))
}

/// `$USER` and `$PASS` in an input stand for the fixture account's ID and
/// password (made fresh in every process), so seeds can sign in for real.
fn substitute(data: &[u8], user: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(b"$USER".as_slice()) {
            out.extend_from_slice(user.as_bytes());
            rest = r;
        } else if let Some(r) = rest.strip_prefix(b"$PASS".as_slice()) {
            out.extend_from_slice(password.as_bytes());
            rest = r;
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// Runs one input through both passes. Panics only if the code under test does
/// (or the fixture cannot be built).
pub fn run(data: &[u8]) -> (PassStats, PassStats) {
    let fx = fixture();
    let data = &substitute(data, &fx.user, &fx.password)[..];
    let settings = ImapSettings::default();
    // One input at a time, taken before entering the runtime: the runtime has
    // one thread, and a caller blocked on this lock inside it would stall the
    // caller that holds it (parallel tests call `run` from several threads).
    let mut slot = authenticated_slot()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    fx.rt.block_on(async {
        // 1. Not authenticated: a fresh session per input.
        let first = play(data, |pipe| {
            serve_connection(pipe, peer(), fx.services.clone(), &settings)
        })
        .await;

        // 2. Authenticated: the long-lived session, back in the authenticated state.
        let reusable = slot
            .as_ref()
            .is_some_and(|s| s.authenticated() && !s.logged_out());
        if !reusable {
            let mut s = Session::new(fx.services.clone(), peer());
            if let Err(e) = s.sign_in(&fx.user, fx.password.clone()).await {
                panic!("the fixture account cannot sign in: {e}");
            }
            *slot = Some(s);
        }
        let Some(session) = slot.as_mut() else {
            unreachable!("filled above")
        };
        if session.selected()
            && let Ok(unselect) = Command::new("reset", CommandBody::Unselect)
        {
            let _ = session.command(unselect).await;
        }
        let second = play(data, |pipe| serve_session(pipe, session, &settings)).await;
        (first, second)
    })
}

/// The fixture account's ID and password, for writing seeds.
pub fn credentials() -> (String, String) {
    let fx = fixture();
    (fx.user.clone(), fx.password.clone())
}
