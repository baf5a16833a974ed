//! The OpenAPI document at `/api/v1/openapi.json`: served without sign-in,
//! valid OpenAPI 3 by an independent validator (Python's
//! openapi-spec-validator), listing exactly the routes of the API router in
//! `webmail/src/api/v1/mod.rs` (a route added without its annotation fails here), and
//! describing what the API really answers.

use std::collections::BTreeSet;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{HOSPITAL, Network};

/// The router whose routes the document must list.
const ROUTER_SOURCE: &str = include_str!("../../webmail/src/api/v1/mod.rs");
const CHECK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/clients/openapi_check.py"
);

/// `(METHOD, path)` of every `.route(…)` of the `/api/v1` router, read from
/// its source: the path literal, then each `get(`/`post(`/`put(`/`delete(`/
/// `patch(` among the route's arguments.
fn router_operations(source: &str) -> BTreeSet<(String, String)> {
    // Comments may hold anything, even a `;`.
    let source: String = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let start = source
        .find("fn routes() -> Router<AppState>")
        .expect("the API router in webmail/src/api/v1/mod.rs");
    let block = &source[start..];
    let block = &block[..block.find("\n}").expect("the end of the API router")];
    let mut ops = BTreeSet::new();
    let mut rest = block;
    while let Some(at) = rest.find(".route(") {
        let args_start = at + ".route(".len();
        // The route's arguments, up to its closing parenthesis.
        let mut depth = 1;
        let mut end = args_start;
        for (i, c) in rest[args_start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = args_start + i;
                break;
            }
        }
        let args = &rest[args_start..end];
        let path = args
            .split('"')
            .nth(1)
            .expect("a route path literal")
            .to_string();
        let after_path = &args[args.find(',').expect("a handler after the path")..];
        for method in ["get", "post", "put", "delete", "patch"] {
            let call = format!("{method}(");
            let named = after_path.match_indices(&call).any(|(i, _)| {
                i == 0 || {
                    let before = after_path.as_bytes()[i - 1];
                    !(before.is_ascii_alphanumeric() || before == b'_')
                }
            });
            if named {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
        rest = &rest[end..];
    }
    ops
}

#[test]
fn the_route_reader_finds_methods_and_paths() {
    let src = r#"pub fn routes() -> Router<AppState> {
    Router::new()
        // a comment; with a semicolon }
        .route("/a", post(x::a).delete(x::b))
        .route("/b/{id}", axum::routing::delete(x::c))
        .route("/c", post(x::d).get(x::e).layer(DefaultBodyLimit::disable()))
        .route("/d", get(x::f))
}
pub fn other() -> Router<AppState> {
    Router::new().route("/e", get(y))
}"#;
    let expected: BTreeSet<(String, String)> = [
        ("POST", "/a"),
        ("DELETE", "/a"),
        ("DELETE", "/b/{id}"),
        ("POST", "/c"),
        ("GET", "/c"),
        ("GET", "/d"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(router_operations(src), expected);
}

pub(crate) fn check(document: &Value, samples: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let doc_path = dir.path().join("openapi.json");
    let samples_path = dir.path().join("samples.json");
    std::fs::write(&doc_path, document.to_string()).unwrap();
    std::fs::write(&samples_path, samples.to_string()).unwrap();
    let out = Command::new("python3")
        .arg(CHECK)
        .arg(&doc_path)
        .arg(&samples_path)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "openapi_check.py printed no result: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_lists_every_api_route() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&[]);

    // No sign-in needed for the document itself.
    let r = server
        .client()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = r.json().await.unwrap();

    // Real answers, to be checked against the schemas that describe them.
    let first = server.client();
    let (_, signed_in) = server.post_session(&first, &id, &issued).await;
    let (_, refused) = server.get_answer(&first, "/api/v1/me").await;
    let client = net.ready_client(&server, &id, &issued).await;
    let get = async |path: &str| -> Value {
        client
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    // An item (to oneself, no consent, no thread: the nullable fields null).
    let spec =
        json!({ "kind": "letter", "to": [{ "account": id }], "subject": "件名", "body": "本文" });
    let (status, created) = server
        .send_envelope(&client, &spec, Vec::<(&str, Vec<u8>)>::new())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let item = created["id"].as_str().expect("the item's ID").to_string();
    let samples = json!([
        ["SignedIn", signed_in],
        ["ErrorBody", refused],
        ["Me", get("/api/v1/me").await],
        [
            "NotificationSettings",
            get("/api/v1/me/notifications").await
        ],
        ["FactorsJson", get("/api/v1/me/factors").await],
        ["Created", created.clone()],
        ["ItemView", get(&format!("/api/v1/envelopes/{item}")).await],
        [
            "IntakeView",
            get(&format!("/api/v1/envelopes/{item}/studies")).await
        ],
        [
            "DeliveryView",
            get(&format!("/api/v1/envelopes/{item}/delivery")).await
        ],
        ["ListItem", get("/api/v1/envelopes").await[0]],
    ]);

    let v = check(&doc, &samples);
    assert_eq!(v["valid"], true, "{v}");
    assert!(
        v["openapi"].as_str().is_some_and(|o| o.starts_with("3.")),
        "{v}"
    );
    assert_eq!(v["sample_errors"], json!([]), "{v}");

    // Exactly the router's operations: none undocumented, none invented.
    let documented: BTreeSet<(String, String)> = v["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o[0].as_str().unwrap().into(), o[1].as_str().unwrap().into()))
        .collect();
    let routed = router_operations(ROUTER_SOURCE);
    assert!(routed.len() > 50, "the route reader found {routed:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes without documentation: {undocumented:?}; documented but not routed: {unrouted:?}"
    );

    // The API is served under /api/v1; sign-in needs no session, the rest do;
    // every operation documents its refusals.
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    assert_eq!(doc["paths"]["/session"]["post"]["security"], json!([{}]));
    assert!(doc["paths"]["/me"]["get"].get("security").is_none());
    assert!(doc["security"].as_array().is_some_and(|s| s.len() == 2));
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert_eq!(
                op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
        }
    }
    // Downloads are bytes, uploads the multipart forms they are.
    let binary = &doc["components"]["schemas"]["Binary"];
    assert_eq!(
        (&binary["type"], &binary["format"]),
        (&json!("string"), &json!("binary"))
    );
    for (path, media) in [
        ("/envelopes/{id}/pdf", "application/pdf"),
        ("/envelopes/{id}/attachments/{index}", "*/*"),
    ] {
        assert_eq!(
            doc["paths"][path]["get"]["responses"]["200"]["content"][media]["schema"]["$ref"],
            "#/components/schemas/Binary",
            "{path}"
        );
    }
    for path in ["/envelopes", "/threads", "/threads/{id}/steps"] {
        assert!(
            doc["paths"][path]["post"]["requestBody"]["content"]
                .get("multipart/form-data")
                .is_some(),
            "{path}"
        );
    }
}

/// An account of `role` (at [`HOSPITAL`] unless the operator), signed in with
/// its own password: the client and its bearer token.
pub(crate) async fn signed_in(
    net: &Network,
    server: &crate::harness::Server,
    role: &str,
) -> (reqwest::Client, String) {
    let (id, issued) = if role == "operator" {
        crate::harness::parse_letter(
            &net.admin(&["user", "add", "--role", "operator", "--name", "運営"]),
        )
    } else {
        net.add_user(role, HOSPITAL, "丸亀 次郎")
    };
    let client = net.ready_client(server, &id, &issued).await;
    let (status, body) = server
        .post_session(&server.client(), &id, &format!("{issued}-Mine-2026"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().expect("a token").to_string();
    (client, token)
}

/// `(status, content type, JSON body, Allow)` of `request`.
async fn refusal(request: reqwest::RequestBuilder) -> (StatusCode, String, Value, String) {
    let r = request.send().await.unwrap();
    let status = r.status();
    let header = |name| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, allow) = (header("content-type"), header("allow"));
    let body = r.json().await.unwrap_or(Value::Null);
    (status, content_type, body, allow)
}

#[tokio::test]
async fn every_api_refusal_is_the_json_error_body_with_a_code() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let server = net.serve(&[]);
    let (doctor, _) = signed_in(&net, &server, "doctor").await;
    let (clerk, _) = signed_in(&net, &server, "clerk").await;
    let (operator, _) = signed_in(&net, &server, "operator").await;
    let url = |p: &str| server.url(p);

    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        // A missing query parameter.
        (
            "readings without month",
            clerk.get(url("/api/v1/stats/readings")),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "readings.csv without month",
            clerk.get(url("/api/v1/stats/readings.csv")),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "audit without a period",
            clerk.get(url("/api/v1/audit")),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "a frame that is no number",
            doctor.get(url("/api/v1/envelopes/0/attachments/0/render?frame=x")),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        // A malformed path parameter.
        (
            "a negative attachment index",
            doctor.get(url("/api/v1/envelopes/0/attachments/-1")),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "a study that is no number",
            doctor.get(url("/api/v1/envelopes/0/studies/x/zip")),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        // Bodies that are not what the operation reads.
        (
            "flags as broken JSON",
            doctor
                .post(url("/api/v1/envelopes/0/flags"))
                .header("content-type", "application/json")
                .body("{"),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "flags of the wrong type",
            doctor
                .post(url("/api/v1/envelopes/0/flags"))
                .json(&json!({ "seen": "yes" })),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "flags as text",
            doctor.post(url("/api/v1/envelopes/0/flags")).body("seen"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "an envelope that is not multipart",
            doctor.post(url("/api/v1/envelopes")).json(&json!({})),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        // Paths and methods the API does not have.
        (
            "an unknown path",
            doctor.get(url("/api/v1/no/such/thing")),
            StatusCode::NOT_FOUND,
            "unknown_path",
        ),
        (
            "an unknown path without a session",
            server.client().get(url("/api/v1/nothing")),
            StatusCode::NOT_FOUND,
            "unknown_path",
        ),
        (
            "a method the path lacks",
            doctor.patch(url("/api/v1/me")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        // A write a browser marks as coming from another site.
        (
            "a cross-site write",
            doctor
                .post(url("/api/v1/envelopes/0/flags"))
                .header("sec-fetch-site", "cross-site")
                .json(&json!({ "seen": true })),
            StatusCode::FORBIDDEN,
            "cross_origin",
        ),
        // The operator without a facility to look at.
        (
            "the operator's usage without a facility",
            operator.get(url("/api/v1/stats/usage")),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "a clerk's usage of another facility",
            clerk.get(url(&format!(
                "/api/v1/stats/usage?facility={}",
                crate::harness::CLINIC
            ))),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ];
    for (what, request, status, code) in cases {
        let (got, content_type, body, allow) = refusal(request).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {content_type}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty())
                && body["message_ja"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(allow, "GET,HEAD", "{what}");
        }
    }

    // The operator names the facility and gets its usage, as the clerk does
    // for their own.
    for (who, client, path) in [
        (
            "operator",
            &operator,
            format!("/api/v1/stats/usage?facility={HOSPITAL}"),
        ),
        ("clerk", &clerk, "/api/v1/stats/usage".to_string()),
    ] {
        let (status, body) = server.get_answer(client, &path).await;
        assert_eq!(status, StatusCode::OK, "{who}: {body}");
        let accounts: Vec<&str> = body
            .as_array()
            .unwrap_or_else(|| panic!("{who}: {body}"))
            .iter()
            .filter_map(|l| l["account"].as_str())
            .collect();
        assert_eq!(
            accounts.len(),
            3,
            "{who}: the doctor and the clerk of the hospital, and its shared inbox: {body}"
        );
        assert!(
            accounts.contains(&format!("liaison:{HOSPITAL}").as_str()),
            "{who}: the shared inbox's line: {body}"
        );
    }

    // An item without attachments has studies: empty lists, not null.
    let (me_status, me) = server.get_answer(&doctor, "/api/v1/me").await;
    assert_eq!(me_status, StatusCode::OK, "{me}");
    let spec = json!({ "kind": "letter", "to": [{ "account": me["id"] }], "subject": "件名", "body": "本文" });
    let id = server
        .sent_envelope(&doctor, &spec, Vec::<(&str, Vec<u8>)>::new())
        .await;
    let (status, studies) = server
        .get_answer(&doctor, &format!("/api/v1/envelopes/{id}/studies"))
        .await;
    assert_eq!(status, StatusCode::OK, "{studies}");
    assert_eq!(
        (
            &studies["files"],
            &studies["studies"],
            &studies["patient_check"]["mismatches"]
        ),
        (&json!([]), &json!([]), &json!([])),
        "{studies}"
    );
}

#[tokio::test]
async fn the_document_lists_each_operations_refusals_and_what_downloads_serve() {
    let net = Network::new().await;
    let server = net.serve(&[]);
    let (status, doc) = server
        .get_answer(&server.client(), "/api/v1/openapi.json")
        .await;
    assert_eq!(status, StatusCode::OK);
    let statuses = |method: &str, path: &str| -> BTreeSet<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"))
            .keys()
            .filter(|k| k.starts_with('4'))
            .cloned()
            .collect()
    };
    let set = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    for (method, path, expected) in [
        ("get", "/me", &["401", "403"][..]),
        ("post", "/session", &["400", "401"]),
        ("delete", "/session", &["401"]),
        ("get", "/stats/readings", &["400", "401", "403"]),
        ("get", "/stats/usage", &["400", "401", "403"]),
        (
            "get",
            "/envelopes/{id}",
            &["400", "401", "403", "404", "422"],
        ),
        (
            "get",
            "/envelopes/{id}/attachments/{index}",
            &["400", "401", "403", "404", "416", "422"],
        ),
        (
            "post",
            "/threads/{id}/claim",
            &["400", "401", "403", "404", "409"],
        ),
        (
            "post",
            "/admin/deletion-requests",
            &["400", "401", "403", "409"],
        ),
    ] {
        assert_eq!(statuses(method, path), set(expected), "{method} {path}");
    }
    // Each refusal is the error body, shared or the operation's own.
    let refusal = &doc["components"]["responses"]["BadRequest"];
    assert_eq!(
        refusal["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert_eq!(
        doc["paths"]["/stats/readings"]["get"]["responses"]["400"]["$ref"],
        "#/components/responses/BadRequest"
    );
    // Required query parameters are required; an attachment comes with its
    // declared media type, so the document promises any.
    let month = &doc["paths"]["/stats/readings"]["get"]["parameters"][0];
    assert_eq!(
        (&month["name"], &month["required"]),
        (&json!("month"), &json!(true))
    );
    let attachment =
        &doc["paths"]["/envelopes/{id}/attachments/{index}"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        attachment
            .as_object()
            .map(|c| c.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["*/*".to_string()]),
        "{attachment}"
    );
}
