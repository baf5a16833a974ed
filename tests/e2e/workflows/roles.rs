//! The role table, row by row: what each role may do to an item, by how it
//! stands to the item.

use reqwest::StatusCode;
use serde_json::json;

use super::{World, steps_of};
use crate::harness::HOSPITAL;

/// What each role may do to an item, by how it stands to the item — the design's
/// table, row by row. Every action runs on a fresh thread so rows do not interfere.
#[tokio::test]
async fn the_role_table_holds_for_every_role_relation_and_action() {
    let w = World::new().await;

    #[derive(Clone, Copy, Debug)]
    enum To {
        /// Clinic doctor → hospital radiologist.
        Doctor,
        /// Clinic doctor → hospital liaison office.
        SharedInbox,
    }
    let table: &[(&str, To, &str, StatusCode)] = {
        use StatusCode as S;
        &[
            // Doctor, own items: sent by me.
            ("gp", To::Doctor, "read", S::OK),
            ("gp", To::Doctor, "withdraw", S::CREATED),
            ("gp", To::Doctor, "accept", S::FORBIDDEN),
            ("gp", To::Doctor, "report", S::FORBIDDEN),
            ("gp", To::Doctor, "claim", S::FORBIDDEN),
            // Doctor, own items: addressed to me.
            ("rad", To::Doctor, "read", S::OK),
            ("rad", To::Doctor, "accept", S::CREATED),
            ("rad", To::Doctor, "report", S::CREATED),
            ("rad", To::Doctor, "decline", S::CREATED),
            ("rad", To::Doctor, "withdraw", S::FORBIDDEN),
            ("rad", To::Doctor, "claim", S::FORBIDDEN),
            // Doctor, a colleague's item and the shared inbox: as if it did not exist.
            ("col", To::Doctor, "read", S::NOT_FOUND),
            ("col", To::Doctor, "accept", S::NOT_FOUND),
            ("col", To::SharedInbox, "read", S::NOT_FOUND),
            // Claiming is no doctor's action at all: the role table refuses it
            // before the item is looked at (which says nothing about the item).
            ("col", To::SharedInbox, "claim", S::FORBIDDEN),
            // Doctor, another facility.
            ("rehab_dr", To::Doctor, "read", S::NOT_FOUND),
            ("rehab_dr", To::Doctor, "decline", S::NOT_FOUND),
            // Clerk: reads the facility's items and shared inbox, changes nothing.
            ("clerk_h", To::Doctor, "read", S::OK),
            ("clerk_h", To::Doctor, "accept", S::FORBIDDEN),
            ("clerk_h", To::Doctor, "decline", S::FORBIDDEN),
            ("clerk_h", To::SharedInbox, "read", S::OK),
            ("clerk_h", To::SharedInbox, "accept", S::FORBIDDEN),
            ("clerk_h", To::SharedInbox, "claim", S::FORBIDDEN),
            ("clerk_h", To::SharedInbox, "assign", S::FORBIDDEN),
            ("clerk_c", To::Doctor, "read", S::OK),
            ("clerk_c", To::Doctor, "withdraw", S::FORBIDDEN),
            ("rehab_clerk", To::Doctor, "read", S::NOT_FOUND),
            // Liaison: colleagues' items read-only; the shared inbox worked.
            ("liaison_h", To::Doctor, "read", S::OK),
            ("liaison_h", To::Doctor, "accept", S::FORBIDDEN),
            ("liaison_h", To::Doctor, "claim", S::FORBIDDEN),
            ("liaison_h", To::SharedInbox, "read", S::OK),
            ("liaison_h", To::SharedInbox, "claim", S::NO_CONTENT),
            ("liaison_h", To::SharedInbox, "assign", S::NO_CONTENT),
            ("liaison_h", To::SharedInbox, "accept", S::CREATED),
            ("liaison_h", To::SharedInbox, "decline", S::CREATED),
            ("liaison_h", To::SharedInbox, "report", S::FORBIDDEN),
            ("liaison_h", To::SharedInbox, "withdraw", S::FORBIDDEN),
            ("rehab_l", To::SharedInbox, "read", S::NOT_FOUND),
            ("rehab_l", To::SharedInbox, "claim", S::NOT_FOUND),
            // Operator: no content at all.
            ("operator", To::Doctor, "read", S::FORBIDDEN),
            ("operator", To::SharedInbox, "claim", S::FORBIDDEN),
        ]
    };
    for &(who, to, action, expected) in table {
        let target = match to {
            To::Doctor => json!({ "account": w.p("rad").id }),
            To::SharedInbox => json!({ "liaison": HOSPITAL }),
        };
        let t = w.open("gp", w.reading_request(target), vec![]).await;
        w.delivered("gp", &t).await;
        let (status, body) = match action {
            "read" => w.get(who, &format!("/api/v1/threads/{t}")).await,
            "claim" => {
                w.post(who, &format!("/api/v1/threads/{t}/claim"), json!({}))
                    .await
            }
            "assign" => {
                w.post(
                    who,
                    &format!("/api/v1/threads/{t}/assign"),
                    json!({ "doctor": w.p("rad").id }),
                )
                .await
            }
            "report" => {
                // A report follows acceptance by whoever may accept.
                let acceptor = match to {
                    To::Doctor => "rad",
                    To::SharedInbox => "liaison_h",
                };
                let (s, _) = w.step(acceptor, &t, json!({ "step": "accept" })).await;
                assert_eq!(s, StatusCode::CREATED);
                w.step(
                    who,
                    &t,
                    json!({ "step": "report", "fields": { "findings": "f", "impression": "i" } }),
                )
                .await
            }
            "decline" => {
                w.step(
                    who,
                    &t,
                    json!({ "step": "decline", "fields": { "reason": "r" } }),
                )
                .await
            }
            step => w.step(who, &t, json!({ "step": step })).await,
        };
        assert_eq!(
            status, expected,
            "{who} {action} on a request to {to:?}: {body}"
        );
        // A refusal never says whether the item exists, and never changes it.
        if status == StatusCode::NOT_FOUND {
            assert_eq!(body["error"], "not_found", "{body}");
        }
        if !status.is_success() {
            let v = w.thread("gp", &t).await;
            assert_eq!(
                steps_of(&v).len(),
                1 + usize::from(action == "report"),
                "{who} {action}"
            );
        }
    }
}

/// Every action of the role table, tried by every role, on the API and on the
/// pages: what the table refuses is refused by the service with the same code
/// (`role_forbids`) and a Japanese message naming the role; what it allows
/// goes through.
#[tokio::test]
async fn every_role_tries_every_action_on_the_api_and_the_pages() {
    let w = World::new().await;
    // An item of the clinic the clinic's clerk can read (oversight).
    let sent = w
        .open(
            "gp",
            w.reading_request(json!({ "account": w.p("rad").id })),
            vec![],
        )
        .await;
    w.delivered("gp", &sent).await;
    let view = w.thread("gp", &sent).await;
    let item = view["steps"][0]["envelope_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let resource = json!({ "name": "MRI 1号機", "opening_hours": "平日 9:00-17:00" });
    // (who, allowed actions)
    let table: [(&str, &[&str]); 4] = [
        ("gp", &["send", "open", "forward"]),
        ("clerk_c", &[]),
        (
            "liaison_c",
            &["send", "open", "forward", "claim", "resource"],
        ),
        ("operator", &["admin"]),
    ];
    for (who, allowed) in table {
        for action in ["send", "open", "forward", "claim", "resource", "admin"] {
            let (status, body) = match action {
                "send" => {
                    let mut spec = w.reading_request(json!({ "account": w.p("rad").id }));
                    spec["to"] = json!([{ "account": w.p("rad").id }]);
                    w.multipart(who, "/api/v1/envelopes", "envelope", spec, vec![])
                        .await
                }
                "open" => {
                    let spec = w.reading_request(json!({ "account": w.p("rad").id }));
                    w.multipart(who, "/api/v1/threads", "thread", spec, vec![])
                        .await
                }
                "forward" => {
                    let to = json!({ "to": w.p("gp").id });
                    w.post(who, &format!("/api/v1/envelopes/{item}/forward"), to)
                        .await
                }
                "claim" => {
                    let t = w
                        .open(
                            "rad",
                            w.reading_request(json!({ "liaison": super::CLINIC })),
                            vec![],
                        )
                        .await;
                    w.delivered("rad", &t).await;
                    w.post(who, &format!("/api/v1/threads/{t}/claim"), json!({}))
                        .await
                }
                "resource" => w.post(who, "/api/v1/resources", resource.clone()).await,
                _ => w.get(who, "/api/v1/admin/factors").await,
            };
            if allowed.contains(&action) {
                assert_ne!(body["error"], "role_forbids", "{who} {action}: {body}");
                if action != "forward" {
                    assert!(status.is_success(), "{who} {action}: {status} {body}");
                }
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{who} {action}: {body}");
                assert_eq!(body["error"], "role_forbids", "{who} {action}: {body}");
                let ja = body["message_ja"].as_str().unwrap_or_default();
                assert!(ja.contains("のアカウントでは"), "{who} {action}: {ja}");
            }
        }
    }

    // The pages: the compose form refuses a clerk and the operator up front and
    // on submission; the console refuses everyone but the operator.
    for (who, may_send) in [
        ("gp", true),
        ("clerk_c", false),
        ("liaison_c", true),
        ("operator", false),
    ] {
        let client = &w.p(who).client;
        let r = client.get(w.server.url("/compose")).send().await.unwrap();
        let status = r.status();
        let page = r.text().await.unwrap();
        if may_send {
            assert_eq!(status, StatusCode::OK, "{who} compose");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} compose");
            assert!(page.contains("「送信」はできません"), "{who}: {page}");
        }
        let r = client.get(w.server.url("/operator")).send().await.unwrap();
        let status = r.status();
        let page = r.text().await.unwrap();
        if who == "operator" {
            assert_eq!(status, StatusCode::OK);
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} console");
            assert!(
                page.contains("「施設・アカウントの管理」はできません"),
                "{who}: {page}"
            );
        }
    }
    // A clerk's form post reaches the service and is refused there.
    let clerk = &w.p("clerk_c").client;
    let page = clerk
        .get(w.server.url("/compose"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf", crate::harness::csrf_of(&page))
        .text("kind", "reading_request")
        .text("to", format!("account:{}", w.p("rad").id))
        .text("subject", "胸部CT");
    let r = clerk
        .post(w.server.url("/compose"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("事務員のアカウントでは「送信」はできません"),
        "{page}"
    );
}
