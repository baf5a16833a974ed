//! Who a thread is with, for its page: the requester, the addressee (the
//! facility and, once assigned, the doctor), the doctor in charge (担当医),
//! who took a shared-inbox item in (受付担当), and the liaison office's assign
//! control — the one way the office hands a request to a doctor.

use super::*;

/// The liaison office's control on one of its shared-inbox threads: its
/// facility's doctors (ID as shown, name) and the one assigned now.
pub struct AssignControl {
    pub doctors: Vec<(String, String)>,
    pub current: Option<String>,
}

pub(super) struct Handling {
    pub requester: String,
    pub target: String,
    /// The doctor in charge: the addressed or assigned doctor, "not assigned"
    /// for a shared-inbox item nobody has yet.
    pub doctor: String,
    pub claimed: Option<String>,
    pub assign: Option<AssignControl>,
}

pub(super) async fn handling(
    state: &AppState,
    lang: Lang,
    names: &mut Names,
    thread: &Thread,
    me: &mailbox::Account,
) -> Handling {
    let tt = texts(lang);
    let requester = {
        let (who, _) = names.person(state, &thread.requester_id).await;
        match &thread.requester_facility {
            Some(code) => format!("{} — {who}", names.facility(state, code).await),
            None => who,
        }
    };
    let facility = names.facility(state, &thread.target_facility).await;
    let office = pick(lang, "地域連携室", "liaison office");
    let assignee = match &thread.assignee_id {
        Some(id) => Some(names.person(state, id).await.0),
        None => None,
    };
    let (target, doctor) = match (thread.target.strip_prefix("account:"), &assignee) {
        (Some(acc), _) => {
            let who = names.person(state, acc).await.0;
            (format!("{facility} — {who}"), who)
        }
        (None, Some(who)) => (
            format!(
                "{facility} — {who}（{}）",
                pick(lang, "地域連携室経由", "through the liaison office")
            ),
            who.clone(),
        ),
        (None, None) => (
            format!("{facility} — {office}"),
            tt.not_assigned.to_string(),
        ),
    };
    let claimed = match &thread.claimed_by {
        Some(id) => Some(names.person(state, id).await.0),
        None => None,
    };
    let shared_inbox_of_mine = me.role == Role::Liaison
        && me
            .facility
            .as_ref()
            .is_some_and(|c| thread.target == format!("liaison:{c}"));
    let assign = if shared_inbox_of_mine && thread.closed_at.is_none() {
        let mut doctors = colleagues(state, me).await;
        doctors.retain(|(id, _)| !id.is_empty());
        Some(AssignControl {
            doctors,
            current: thread
                .assignee_id
                .as_deref()
                .and_then(|id| AccountId::parse(id).ok())
                .map(|id| id.display_grouped()),
        })
    } else {
        None
    };
    Handling {
        requester,
        target,
        doctor,
        claimed,
        assign,
    }
}
