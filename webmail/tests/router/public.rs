//! What anyone may fetch: the OpenAPI document, the public facility list, and
//! the security headers on every answer.

use super::*;

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
/// the API's refusal (or its answer), never the router's `unknown_path` 404
/// or a 405.
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
    // The premise: a path the router does not have gets the JSON 404
    // `unknown_path`, which no routed operation answers.
    let unrouted = |status: StatusCode, body: &[u8]| {
        status == StatusCode::NOT_FOUND
            && serde_json::from_slice::<serde_json::Value>(body)
                .is_ok_and(|v| v["error"] == "unknown_path")
    };
    let r = call(
        &app,
        get("/api/v1/no-such-thing").body(Body::empty()).unwrap(),
    )
    .await;
    let status = r.status();
    assert!(unrouted(status, &bytes(r).await));
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
                !unrouted(status, &body),
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
            "same-origin",
            "{at}"
        );
        assert_eq!(
            header_of(&r, header::HeaderName::from_static("permissions-policy")),
            webmail::PERMISSIONS_POLICY,
            "{at}"
        );
        assert!(
            webmail::PERMISSIONS_POLICY.contains("camera=()"),
            "powerful features off"
        );
        assert_eq!(
            header_of(
                &r,
                header::HeaderName::from_static("cross-origin-opener-policy")
            ),
            "same-origin",
            "{at}"
        );
        assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-store", "{at}");
    }
    // The health check answers for load balancers, without a session.
    let r = call(&app, get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text_of(r).await, "ok");
}
