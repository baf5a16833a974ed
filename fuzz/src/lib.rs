//! The IMAP session harness shared by the cargo-fuzz target
//! (`fuzz_targets/imap_session.rs`) and the stable replay test
//! (`tests/replay.rs`).
//!
//! Arbitrary bytes go through imap-next's `Server` exactly as
//! `transport::imap::connection` feeds it (same options: literal limit, command
//! limit, reject texts), and every event goes where that loop sends it: parsed
//! commands into `transport::imap::session::Session`, AUTHENTICATE PLAIN into
//! `Session::sign_in`, IDLE into `changes`, and every reply back through the
//! server's encoder. Each input is played twice:
//!
//! 1. against a new, not-authenticated `Session` (the pre-login attack surface),
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

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};

use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::{Command, CommandBody};
use imap_next::imap_types::core::Tag;
use imap_next::imap_types::response::{Code, CommandContinuationRequest, Greeting, Status};
use imap_next::server::{Event, Options, Server};
use imap_next::{Interrupt, Io, State};
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
use transport::imap::ImapSettings;
use transport::imap::session::{Reply, Services, Session, bad, capabilities, no, ok};

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";
/// Events handled per pass at most (a guard against a flow that never stops).
const MAX_EVENTS: usize = 10_000;

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
        }),
    }
}

async fn build(dir: &std::path::Path) -> Result<(Services, String, String), BoxError> {
    let store = mailbox::store::open(&StoreTarget::Sqlite(dir.join("renkei.db"))).await?;
    let policy = AuthPolicy {
        // Wrong passwords from the fuzzer must never lock the fixture account.
        lock_after: u32::MAX,
        key_lock: LockParams::insecure_for_tests(),
        second_factor_required: false,
        ..AuthPolicy::default()
    };
    let directory = Arc::new(Directory::new(store, policy, NetworkPolicy::default()));
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
        directory.store().clone(),
        mailbox::delivery::DeliveryPolicy::default(),
    );
    while deliverer.deliver_due().await? > 0 {}
    let folders = Arc::new(Folders::new(directory.clone(), postroom.clone()));
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

/// The server flow with the options `transport::imap::connection` sets.
fn server() -> Server {
    let settings = ImapSettings::default();
    let mut options = Options::default();
    options.max_literal_size = settings.max_literal;
    options.max_command_size = settings.max_literal.saturating_add(8 * 1024);
    let _ = options.set_literal_reject_text("literal too large: refused unread".into());
    let _ = options.set_literal_accept_text("ready for the literal".into());
    let greeting = Greeting::ok(Some(Code::Capability(capabilities())), "Renkei IMAP ready")
        .unwrap_or_else(|e| panic!("greeting: {e:?}"));
    Server::new(options, greeting)
}

fn status(reply: Reply) -> Option<Status<'static>> {
    match reply {
        Reply::Status(s) => Some(s),
        Reply::Data(_) => None,
    }
}

fn plain(data: &[u8]) -> Option<(String, String)> {
    let mut parts = data.split(|b| *b == 0);
    let _authz = parts.next()?;
    let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let password = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((user, password))
}

async fn authenticate(session: &mut Session, tag: Tag<'static>, data: &[u8]) -> Reply {
    match plain(data) {
        Some((user, password)) => match session.sign_in(&user, password).await {
            Ok(()) => ok(
                Some(tag),
                Some(Code::Capability(capabilities())),
                "signed in",
            ),
            Err(text) => no(Some(tag), None, &text),
        },
        None => bad(Some(tag), "malformed PLAIN credentials"),
    }
}

/// What one pass saw (for the replay test's summary).
#[derive(Debug, Default, Clone, Copy)]
pub struct PassStats {
    pub commands: usize,
    pub refused: usize,
    pub output_bytes: usize,
}

/// Plays `data` as the whole input of one connection against `session`,
/// following `transport::imap::connection` event by event.
async fn play(session: &mut Session, data: &[u8]) -> PassStats {
    let mut stats = PassStats::default();
    let mut server = server();
    server.enqueue_input(data);
    let mut pending_auth: Option<Tag<'static>> = None;
    let mut idling: Option<Tag<'static>> = None;
    for _ in 0..MAX_EVENTS {
        if session.logged_out() {
            break;
        }
        let event = match server.next() {
            Ok(event) => event,
            Err(Interrupt::Io(Io::Output(bytes))) => {
                stats.output_bytes += bytes.len();
                continue;
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => break,
            Err(Interrupt::Error(e)) => {
                stats.refused += 1;
                use imap_next::server::Error as E;
                let text = match &e {
                    E::LiteralTooLong { .. } => continue,
                    E::CommandTooLong { .. } => "command too long",
                    E::MalformedMessage { .. } | E::ExpectedCrlfGotLf { .. } => {
                        "unparsable command"
                    }
                };
                if let Some(s) = status(bad(None, text)) {
                    server.enqueue_status(s);
                }
                continue;
            }
        };
        match event {
            Event::GreetingSent { .. } | Event::ResponseSent { .. } => {}
            Event::CommandReceived { command } => {
                stats.commands += 1;
                for reply in session.command(command).await {
                    match reply {
                        Reply::Data(d) => {
                            server.enqueue_data(d);
                        }
                        Reply::Status(s) => {
                            server.enqueue_status(s);
                        }
                    }
                }
            }
            Event::CommandAuthenticateReceived {
                command_authenticate,
            } => {
                stats.commands += 1;
                let tag = command_authenticate.tag;
                if session.authenticated() {
                    if let Some(s) = status(bad(Some(tag), "already signed in")) {
                        let _ = server.authenticate_finish(s);
                    }
                    continue;
                }
                if command_authenticate.mechanism != AuthMechanism::Plain {
                    if let Some(s) = status(no(Some(tag), None, "only AUTHENTICATE PLAIN")) {
                        let _ = server.authenticate_finish(s);
                    }
                    continue;
                }
                match command_authenticate.initial_response {
                    Some(data) => {
                        let reply = authenticate(session, tag, data.declassify()).await;
                        if let Some(s) = status(reply) {
                            let _ = server.authenticate_finish(s);
                        }
                    }
                    None => {
                        pending_auth = Some(tag);
                        let _ = server.authenticate_continue(CommandContinuationRequest::base64(
                            Vec::<u8>::new(),
                        ));
                    }
                }
            }
            Event::AuthenticateDataReceived { authenticate_data } => {
                let Some(tag) = pending_auth.take() else {
                    continue;
                };
                let reply = match authenticate_data {
                    AuthenticateData::Continue(data) => {
                        authenticate(session, tag, data.declassify()).await
                    }
                    AuthenticateData::Cancel => bad(Some(tag), "authentication cancelled"),
                };
                if let Some(s) = status(reply) {
                    let _ = server.authenticate_finish(s);
                }
            }
            Event::IdleCommandReceived { tag } => {
                stats.commands += 1;
                if session.selected() {
                    let accepted = CommandContinuationRequest::basic(None, "idling")
                        .map(|c| server.idle_accept(c).is_ok())
                        .unwrap_or(false);
                    if accepted {
                        idling = Some(tag);
                        for reply in session.changes().await {
                            match reply {
                                Reply::Data(d) => {
                                    server.enqueue_data(d);
                                }
                                Reply::Status(s) => {
                                    server.enqueue_status(s);
                                }
                            }
                        }
                    }
                } else if let Some(s) = status(bad(Some(tag), "select a folder first")) {
                    let _ = server.idle_reject(s);
                }
            }
            Event::IdleDoneReceived => {
                if let Some(tag) = idling.take()
                    && let Some(s) = status(ok(Some(tag), None, "IDLE done"))
                {
                    server.enqueue_status(s);
                }
            }
        }
    }
    // Flush whatever is still queued through the encoder.
    for _ in 0..MAX_EVENTS {
        match server.next() {
            Err(Interrupt::Io(Io::Output(bytes))) => stats.output_bytes += bytes.len(),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    stats
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
    fx.rt.block_on(async {
        // 1. Not authenticated: a fresh session per input.
        let mut fresh = Session::new(fx.services.clone(), peer());
        let first = play(&mut fresh, data).await;
        fresh.sign_out().await;

        // 2. Authenticated: the long-lived session, back in the authenticated state.
        let mut slot = authenticated_slot()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let second = play(session, data).await;
        (first, second)
    })
}

/// The fixture account's ID and password, for writing seeds.
pub fn credentials() -> (String, String) {
    let fx = fixture();
    (fx.user.clone(), fx.password.clone())
}
