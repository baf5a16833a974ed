//! Sign-in answers, the session cookie, and the refusals of the typed session
//! extractors: the API's 401, the pages' redirect to sign-in, the operator console's 403.

use super::*;

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
            // The role table's refusal names the role and what it may not do.
            assert!(
                page.contains("のアカウントでは「施設・アカウントの管理」はできません"),
                "{path}: {page}"
            );
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
