//! The web face in-process: the real router (`webmail::router`) over the real
//! mailbox services, a temporary SQLite store and blob folder, driven request by
//! request with `tower::ServiceExt::oneshot` — no socket, no TLS, no binary.
//!
//! What a person or a hospital system would check and what needs neither a
//! browser nor a network: the sign-in answers and the session cookie, the
//! refusals of the typed session extractors (API, pages, operator console),
//! cross-origin and token-less form posts, an item another person may not read
//! answering exactly like a missing one, the OpenAPI document, the public
//! facility list, and the security headers. The end-to-end suite (`tests/e2e`)
//! keeps what needs the binary: TLS, the delivery worker, IMAP, browsers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, Response, StatusCode, header};
use chrono::{Days, NaiveDate};
use mailbox::postroom::{BlobStore, Consent, ConsentMethod, Outgoing, Postroom, Recipient};
use mailbox::{
    AccountId, AuthPolicy, Directory, Facility, FacilityCode, NetworkPolicy, NewAccount, Password,
    Role, SessionToken,
};
use renkei_crypto::{BlindIndexKey, LockParams};
use serde_json::{Value, json};
use tower::ServiceExt;
use webmail::{AppState, UploadPolicy};

#[path = "router/public.rs"]
mod public;
#[path = "router/sessions.rs"]
mod sessions;
#[path = "router/writes.rs"]
mod writes;

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";
/// Joins the network next month: not on the public list yet.
const LATER: &str = "3740012343";
/// A well-formed account ID nobody has.
const NOBODY: &str = "K7M4-QX9R";
/// The content-security policy every answer carries.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The services behind the router, for setting up people and items directly.
struct TestNet {
    directory: Arc<Directory>,
    postroom: Arc<Postroom>,
    /// The store and the blobs; removed when the test ends.
    _dir: tempfile::TempDir,
}

/// Someone with an account whose password is already their own.
struct Person {
    id: AccountId,
    password: String,
}

/// The router as `src/app.rs` wires it, over a fresh network: a hospital and a
/// clinic taking part since last year, and a pharmacy joining next month. The
/// one place that constructs the services.
async fn app() -> (Router, TestNet) {
    let dir = tempfile::tempdir().unwrap();
    let target = mailbox::store::StoreTarget::Sqlite(dir.path().join("renkei.db"));
    let store = mailbox::store::open(&target).await.unwrap();
    let policy = AuthPolicy {
        key_lock: LockParams::insecure_for_tests(),
        second_factor_required: false,
        ..AuthPolicy::default()
    };
    // One audit trail for every service, as `Application::build` wires it.
    let audit = mailbox::records::audit::Audit::new(store.clone());
    let directory = Arc::new(Directory::assemble(
        store.clone(),
        audit.clone(),
        mailbox::clock::system(),
        policy,
        NetworkPolicy::default(),
    ));
    let postroom = Arc::new(Postroom::new(
        directory.clone(),
        store.clone(),
        audit.clone(),
        BlobStore::new(dir.path().join("blobs")),
        Arc::new(BlindIndexKey::generate().unwrap()),
    ));
    let notices = Arc::new(mailbox::notify::Notices::new(
        store.clone(),
        mailbox::notify::NotifyPolicy::default(),
    ));
    let threads = Arc::new(
        mailbox::threads::Threads::new(
            directory.clone(),
            postroom.clone(),
            store.clone(),
            audit.clone(),
        )
        .notifying(notices.clone()),
    );
    let records = Arc::new(mailbox::records::Records::new(postroom.vault(), 365));
    let router = webmail::router(AppState {
        directory: directory.clone(),
        postroom: postroom.clone(),
        threads,
        notices,
        records,
        time: Arc::new(mailbox::timesync::TimeSync::new(
            store.clone(),
            audit.clone(),
            mailbox::timesync::TimePolicy::default(),
        )),
        audit,
        upload: UploadPolicy::default(),
        site: webmail::SiteInfo::default(),
    });

    let today = mailbox::clock::today_jst();
    let last_year = today.checked_sub_days(Days::new(365)).unwrap();
    let next_month = today.checked_add_days(Days::new(30)).unwrap();
    for (code, name, from) in [
        (HOSPITAL, "さぬき中央病院", last_year),
        (CLINIC, "ことひら内科", last_year),
        (LATER, "これからの薬局", next_month),
    ] {
        directory
            .add_facility(Facility::new(
                FacilityCode::parse(code).unwrap(),
                name,
                from,
            ))
            .await
            .unwrap();
    }
    (
        router,
        TestNet {
            directory,
            postroom,
            _dir: dir,
        },
    )
}

impl TestNet {
    async fn person(&self, role: Role, facility: Option<&str>, name: &str) -> Person {
        let password = format!("Pass-{name}-2026!");
        let account = self
            .directory
            .add_account_with_password(
                NewAccount {
                    role,
                    facility: facility.map(|f| FacilityCode::parse(f).unwrap()),
                    name: name.into(),
                    email: None,
                },
                &Password::new(password.clone()),
                false,
            )
            .await
            .unwrap();
        Person {
            id: account.id,
            password,
        }
    }

    /// An item from `from` to `to`, committed through the postroom.
    async fn send(&self, from: &Person, to: &Person) -> String {
        let session = self
            .directory
            .sign_in(
                from.id.as_str(),
                &Password::new(from.password.clone()),
                None,
            )
            .await
            .unwrap()
            .1;
        self.postroom
            .send(
                &session,
                Outgoing {
                    kind: "reading_request".into(),
                    to: vec![Recipient::Person(to.id.clone())],
                    subject: "胸部CT 読影依頼".into(),
                    patient_id: "KGW-4471-2026".into(),
                    patient_name: "香川 太郎".into(),
                    body: "右上葉に結節影を認めます。ご高診をお願いします。".into(),
                    consent: Some(Consent {
                        obtained_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
                        method: ConsentMethod::Written,
                        obtained_by: "坂出 明美".into(),
                        given_by: mailbox::postroom::ConsentGiver::Patient,
                    }),
                },
                vec![],
            )
            .await
            .unwrap()
    }
}

// --- requests and answers --------------------------------------------------------

async fn call(app: &Router, request: Request<Body>) -> Response<Body> {
    app.clone().oneshot(request).await.unwrap()
}

fn get(path: &str) -> axum::http::request::Builder {
    Request::get(path).header(header::HOST, "localhost")
}

fn post(path: &str) -> axum::http::request::Builder {
    Request::post(path).header(header::HOST, "localhost")
}

fn json_body(builder: axum::http::request::Builder, body: &Value) -> Request<Body> {
    builder
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn form_body(builder: axum::http::request::Builder, fields: &[(&str, &str)]) -> Request<Body> {
    builder
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(serde_urlencoded::to_string(fields).unwrap()))
        .unwrap()
}

async fn bytes(r: Response<Body>) -> Vec<u8> {
    to_bytes(r.into_body(), usize::MAX).await.unwrap().to_vec()
}

async fn json_of(r: Response<Body>) -> Value {
    let body = bytes(r).await;
    serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)))
}

async fn text_of(r: Response<Body>) -> String {
    String::from_utf8(bytes(r).await).unwrap()
}

fn header_of(r: &Response<Body>, name: header::HeaderName) -> &str {
    r.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// `POST /api/v1/session` with an ID and a password.
async fn sign_in(app: &Router, id: &str, password: &str) -> Response<Body> {
    call(
        app,
        json_body(
            post("/api/v1/session"),
            &json!({ "id": id, "password": password }),
        ),
    )
    .await
}

/// A signed-in browser's cookie header (`__Host-renkei-session=…`).
async fn cookie_of(app: &Router, p: &Person) -> String {
    let r = sign_in(app, &p.id.display_grouped(), &p.password).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set = header_of(&r, header::SET_COOKIE);
    set.split(';').next().unwrap().to_string()
}

/// The page token of the session behind `cookie`, as the pages embed it.
fn csrf_of(cookie: &str) -> String {
    let value = cookie.split_once('=').unwrap().1;
    webmail::csrf::token_for(&SessionToken::from_cookie(value))
}
