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
    let directory = Arc::new(Directory::new(
        store.clone(),
        policy,
        NetworkPolicy::default(),
    ));
    let postroom = Arc::new(Postroom::new(
        directory.clone(),
        BlobStore::new(dir.path().join("blobs")),
        Arc::new(BlindIndexKey::generate().unwrap()),
    ));
    let notices = Arc::new(mailbox::notify::Notices::new(
        store.clone(),
        mailbox::notify::NotifyPolicy::default(),
    ));
    let threads = Arc::new(
        mailbox::threads::Threads::new(directory.clone(), postroom.clone())
            .notifying(notices.clone()),
    );
    let records = Arc::new(mailbox::records::Records::new(postroom.vault(), 365));
    let router = webmail::router(AppState {
        directory: directory.clone(),
        postroom: postroom.clone(),
        threads,
        notices,
        records,
        upload: UploadPolicy::default(),
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

// --- sign-in ---------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_password_and_an_unknown_id_get_the_same_answer() {
    let (app, net) = app().await;
    let doctor = net.person(Role::Doctor, Some(HOSPITAL), "讃岐 一郎").await;

    let wrong = sign_in(&app, &doctor.id.display_grouped(), "Wrong-Password-99!").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    assert!(header_of(&wrong, header::CONTENT_TYPE).starts_with("application/json"));
    let wrong = json_of(wrong).await;
    assert_eq!(wrong["error"], "bad_credentials", "{wrong}");

    let unknown = sign_in(&app, NOBODY, "Wrong-Password-99!").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(unknown.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(
        json_of(unknown).await,
        wrong,
        "nothing tells whether the ID exists"
    );
    // Not even for something that is no ID at all.
    let garbage = sign_in(&app, "讃岐 一郎", "Wrong-Password-99!").await;
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(garbage).await, wrong);
}

#[tokio::test]
async fn signing_in_sets_a_locked_down_cookie_and_returns_a_bearer_token() {
    let (app, net) = app().await;
    let doctor = net.person(Role::Doctor, Some(HOSPITAL), "高松 花子").await;

    let r = sign_in(&app, &doctor.id.display_grouped(), &doctor.password).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = header_of(&r, header::SET_COOKIE).to_string();
    for attr in [
        "__Host-renkei-session=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    assert!(!cookie.contains("Domain="), "host-only: {cookie}");
    let body = json_of(r).await;
    assert_eq!(body["must_change_password"], false, "{body}");
    assert_eq!(body["second_factor_enrolment_required"], false, "{body}");
    assert_eq!(body["account"]["name"], "高松 花子");
    assert_eq!(body["account"]["facility"], HOSPITAL);
    assert_eq!(body["idle_timeout_secs"], 30 * 60);
    let token = body["token"].as_str().unwrap();
    // The cookie and the bearer token are the same session.
    assert!(cookie.starts_with(&format!("__Host-renkei-session={token};")));

    for request in [
        get("/api/v1/me")
            .header(header::COOKIE, cookie.split(';').next().unwrap())
            .body(Body::empty())
            .unwrap(),
        get("/api/v1/me")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    ] {
        let r = call(&app, request).await;
        assert_eq!(r.status(), StatusCode::OK);
        let me = json_of(r).await;
        assert_eq!(me["name"], "高松 花子", "{me}");
        assert_eq!(me["role"], "doctor");
    }
}

// --- the typed session extractors --------------------------------------------------

#[tokio::test]
async fn the_api_without_a_session_answers_401_with_its_code() {
    let (app, _net) = app().await;
    for request in [
        get("/api/v1/me").body(Body::empty()).unwrap(),
        get("/api/v1/me")
            .header(header::AUTHORIZATION, "Bearer not-a-session")
            .body(Body::empty())
            .unwrap(),
        get("/api/v1/me")
            .header(header::COOKIE, "__Host-renkei-session=not-a-session")
            .body(Body::empty())
            .unwrap(),
        get("/api/v1/mailbox/inbox").body(Body::empty()).unwrap(),
        get("/api/v1/envelopes/00000000000000000000000000000000")
            .body(Body::empty())
            .unwrap(),
    ] {
        let path = request.uri().path().to_string();
        let r = call(&app, request).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            header_of(&r, header::CONTENT_TYPE).starts_with("application/json"),
            "{path}"
        );
        let body = json_of(r).await;
        assert_eq!(body["error"], "not_signed_in", "{path}: {body}");
        assert!(body["message"].is_string() && body["message_ja"].is_string());
    }
}

#[tokio::test]
async fn a_page_without_a_session_sends_the_browser_to_sign_in() {
    let (app, _net) = app().await;
    for path in ["/", "/mail/inbox", "/password", "/operator"] {
        let r = call(&app, get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(header_of(&r, header::LOCATION), "/login", "{path}");
    }
    // A cookie the server no longer knows: sent to sign in with the reason,
    // and the stale cookie is cleared.
    let r = call(
        &app,
        get("/")
            .header(header::COOKIE, "__Host-renkei-session=gone")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&r, header::LOCATION), "/login?expired=1");
    let cleared = header_of(&r, header::SET_COOKIE);
    assert!(
        cleared.starts_with("__Host-renkei-session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The sign-in page itself needs no session.
    let r = call(&app, get("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = text_of(r).await;
    assert!(
        page.contains("ユーザーID") && page.contains("パスワード"),
        "{page}"
    );
}

#[tokio::test]
async fn the_operator_console_is_for_the_operator_only() {
    let (app, net) = app().await;
    let clerk = net.person(Role::Clerk, Some(HOSPITAL), "坂出 明美").await;
    let doctor = net.person(Role::Doctor, Some(HOSPITAL), "讃岐 一郎").await;
    let operator = net.person(Role::Operator, None, "運用担当").await;

    for person in [&clerk, &doctor] {
        let cookie = cookie_of(&app, person).await;
        for path in ["/operator", "/operator/accounts", "/operator/notifications"] {
            let r = call(
                &app,
                get(path)
                    .header(header::COOKIE, &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
            let page = text_of(r).await;
            assert!(page.contains("許可されていません"), "{path}: {page}");
        }
    }
    let cookie = cookie_of(&app, &operator).await;
    let r = call(
        &app,
        get("/operator")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = text_of(r).await;
    assert!(page.contains(HOSPITAL) && page.contains("さぬき中央病院"));
}

// --- writes from elsewhere ---------------------------------------------------------

#[tokio::test]
async fn cross_origin_and_token_less_form_posts_are_refused() {
    let (app, net) = app().await;
    let doctor = net.person(Role::Doctor, Some(HOSPITAL), "高松 花子").await;
    let cookie = cookie_of(&app, &doctor).await;
    let csrf = csrf_of(&cookie);
    let signed_in = async || {
        call(
            &app,
            get("/api/v1/me")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .status()
    };

    // Another site's form, even with the cookie and the right token.
    let r = call(
        &app,
        form_body(
            post("/logout")
                .header(header::COOKIE, &cookie)
                .header(header::ORIGIN, "https://evil.example"),
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // What the browser itself says of where the form came from.
    let r = call(
        &app,
        form_body(
            post("/logout")
                .header(header::COOKIE, &cookie)
                .header("sec-fetch-site", "cross-site"),
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The same origin without the page's token, or with another session's.
    let other = csrf_of("__Host-renkei-session=someone-else");
    for fields in [vec![], vec![("csrf", other.as_str())]] {
        let r = call(
            &app,
            form_body(
                post("/logout")
                    .header(header::COOKIE, &cookie)
                    .header(header::ORIGIN, "https://localhost"),
                &fields,
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(text_of(r).await.contains("ページを開き直して"));
    }
    assert_eq!(signed_in().await, StatusCode::OK, "nothing was signed out");

    // The page's own form signs out.
    let r = call(
        &app,
        form_body(
            post("/logout")
                .header(header::COOKIE, &cookie)
                .header(header::ORIGIN, "https://localhost"),
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&r, header::LOCATION), "/login?signed_out=1");
    assert_eq!(signed_in().await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cross_origin_api_write_is_refused() {
    let (app, net) = app().await;
    let doctor = net.person(Role::Doctor, Some(HOSPITAL), "高松 花子").await;
    let r = call(
        &app,
        json_body(
            post("/api/v1/session").header(header::ORIGIN, "https://evil.example"),
            &json!({ "id": doctor.id.display_grouped(), "password": doctor.password }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
}

// --- what another person may not read ----------------------------------------------

#[tokio::test]
async fn an_item_another_person_may_not_read_answers_like_a_missing_one() {
    let (app, net) = app().await;
    let gp = net.person(Role::Doctor, Some(CLINIC), "琴平 健").await;
    let radiologist = net.person(Role::Doctor, Some(HOSPITAL), "讃岐 一郎").await;
    let colleague = net.person(Role::Doctor, Some(HOSPITAL), "高松 花子").await;
    let id = net.send(&gp, &radiologist).await;

    let open = async |p: &Person, id: &str| {
        let cookie = cookie_of(&app, p).await;
        call(
            &app,
            get(&format!("/api/v1/envelopes/{id}"))
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    };
    let r = open(&radiologist, &id).await;
    assert_eq!(r.status(), StatusCode::OK);
    let item = json_of(r).await;
    assert_eq!(item["patient_name"], "香川 太郎", "{item}");

    let refused = open(&colleague, &id).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let missing = open(&colleague, "00000000000000000000000000000000").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let refused = bytes(refused).await;
    assert_eq!(
        refused,
        bytes(missing).await,
        "the refusal says nothing of the item"
    );
    let refused = String::from_utf8(refused).unwrap();
    assert!(
        !refused.contains("香川") && !refused.contains(&id),
        "{refused}"
    );
}

// --- public answers ----------------------------------------------------------------

#[tokio::test]
async fn the_openapi_document_is_served_without_sign_in_and_names_the_main_paths() {
    let (app, _net) = app().await;
    let r = call(
        &app,
        get("/api/v1/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header_of(&r, header::CONTENT_TYPE).starts_with("application/json"));
    let doc = json_of(r).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    for (path, method) in [
        ("/session", "post"),
        ("/session", "delete"),
        ("/me", "get"),
        ("/password", "post"),
        ("/envelopes", "post"),
        ("/envelopes", "get"),
        ("/envelopes/{id}", "get"),
        ("/envelopes/{id}/attachments/{index}", "get"),
        ("/threads", "post"),
    ] {
        assert!(
            doc["paths"][path].get(method).is_some(),
            "{method} {path} is not in the document"
        );
    }
    // Sign-in needs no session; the rest use the document's default security.
    assert_eq!(doc["paths"]["/session"]["post"]["security"], json!([{}]));
    assert!(doc["paths"]["/me"]["get"].get("security").is_none());
}

/// Every operation the document lists is routed: without a session it gets
/// the API's refusal (or its answer), never the router's bare 404 or a 405.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (app, _net) = app().await;
    let doc = json_of(
        call(
            &app,
            get("/api/v1/openapi.json").body(Body::empty()).unwrap(),
        )
        .await,
    )
    .await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Every path parameter as `1`.
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "1" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = call(
                &app,
                Request::builder()
                    .method(method.clone())
                    .uri(format!("/api/v1{concrete}"))
                    .header(header::HOST, "localhost")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            let status = r.status();
            let body = bytes(r).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !(status == StatusCode::NOT_FOUND && body.is_empty()),
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} operations documented");
}

#[tokio::test]
async fn the_public_list_shows_facilities_taking_part_today_only() {
    let (app, _net) = app().await;
    let r = call(&app, get("/facilities").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = text_of(r).await;
    assert!(page.contains("参加医療施設一覧"), "{page}");
    assert!(
        page.contains("さぬき中央病院") && page.contains("ことひら内科"),
        "{page}"
    );
    assert!(
        !page.contains("これからの薬局"),
        "not yet taking part: {page}"
    );

    // The filter narrows the list.
    let r = call(
        &app,
        get("/facilities?q=%E3%81%93%E3%81%A8%E3%81%B2%E3%82%89")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let page = text_of(r).await;
    assert!(
        page.contains("ことひら内科") && !page.contains("さぬき中央病院"),
        "{page}"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (app, _net) = app().await;
    for (method, path) in [
        (Method::GET, "/login"),
        (Method::GET, "/facilities"),
        (Method::GET, "/"),
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/openapi.json"),
        (Method::GET, "/healthz"),
        (Method::POST, "/logout"),
    ] {
        let r = call(
            &app,
            Request::builder()
                .method(method.clone())
                .uri(path)
                .header(header::HOST, "localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let at = format!("{method} {path} ({})", r.status());
        assert_eq!(header_of(&r, header::CONTENT_SECURITY_POLICY), CSP, "{at}");
        assert_eq!(
            header_of(&r, header::STRICT_TRANSPORT_SECURITY),
            "max-age=31536000",
            "{at}"
        );
        assert_eq!(
            header_of(&r, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{at}"
        );
        assert_eq!(
            header_of(&r, header::REFERRER_POLICY),
            "no-referrer",
            "{at}"
        );
        assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-store", "{at}");
    }
    // The health check answers for load balancers, without a session.
    let r = call(&app, get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text_of(r).await, "ok");
}
