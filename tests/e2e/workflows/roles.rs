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
            ("col", To::SharedInbox, "claim", S::NOT_FOUND),
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
