//! Writes from elsewhere (another origin, a form without the page's token), and
//! an item another person may not read answering exactly like a missing one.

use super::*;

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
    // A form from a sandboxed frame or a `data:` page says `Origin: null`.
    let r = call(
        &app,
        form_body(
            post("/logout")
                .header(header::COOKIE, &cookie)
                .header(header::ORIGIN, "null"),
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

#[tokio::test]
async fn a_cookie_api_write_from_origin_null_is_refused_and_a_bearer_one_is_not() {
    let (app, net) = app().await;
    let doctor = net.person(Role::Doctor, Some(HOSPITAL), "高松 花子").await;
    let cookie = cookie_of(&app, &doctor).await;
    let csrf = csrf_of(&cookie);
    let me = async |auth: (header::HeaderName, String)| {
        call(
            &app,
            get("/api/v1/me")
                .header(auth.0, auth.1)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .status()
    };
    // Signing out is a write: with the cookie and `Origin: null`, refused.
    let r = call(
        &app,
        Request::delete("/api/v1/session")
            .header(header::HOST, "localhost")
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, "null")
            .header(webmail::csrf::HEADER, &csrf)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(r).await["error"], "cross_origin");
    assert_eq!(
        me((header::COOKIE, cookie.clone())).await,
        StatusCode::OK,
        "still signed in"
    );
    // A sign-in from `Origin: null` is refused too (no session to plant).
    let r = call(
        &app,
        json_body(
            post("/api/v1/session").header(header::ORIGIN, "null"),
            &json!({ "id": doctor.id.display_grouped(), "password": doctor.password }),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    // A hospital system's bearer call is not a browser's: it goes through.
    let token = cookie.split_once('=').unwrap().1.to_string();
    let r = call(
        &app,
        Request::delete("/api/v1/session")
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ORIGIN, "null")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        me((header::AUTHORIZATION, format!("Bearer {token}"))).await,
        StatusCode::UNAUTHORIZED
    );
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
