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
    let samples = json!([
        ["SignedIn", signed_in],
        ["ErrorBody", refused],
        ["Me", get("/api/v1/me").await],
        [
            "NotificationSettings",
            get("/api/v1/me/notifications").await
        ],
        ["FactorsJson", get("/api/v1/me/factors").await],
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
        (
            "/envelopes/{id}/attachments/{index}",
            "application/octet-stream",
        ),
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
