//! Request workflows as pure rules: which step may follow which state, and who
//! may take it. No I/O here; `threads` applies these rules to stored threads.
//!
//! `next_state(kind, state, step, role, relation)` is the one function that
//! says who may take which step when (the role table of the design, unit-tested
//! row by row and again end to end in `tests/e2e/workflows/`). The step spec
//! (required fields per step) is the one source the page forms and the API's
//! validation both derive from.

use crate::account::Role;
use crate::error::{Error, Result};

/// What a thread is about (the kind of its opening envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadKind {
    /// 読影依頼
    ReadingRequest,
    /// 患者紹介
    Referral,
    /// 医療情報連携・経過報告 (no reply expected; receipt recorded on opening)
    Share,
    /// 予約受付
    Booking,
    /// 地域連携クリティカルパス
    Pathway,
}

impl ThreadKind {
    pub const ALL: [Self; 5] = [
        Self::ReadingRequest,
        Self::Referral,
        Self::Share,
        Self::Booking,
        Self::Pathway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadingRequest => "reading_request",
            Self::Referral => "referral",
            Self::Share => "share",
            Self::Booking => "booking",
            Self::Pathway => "pathway",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "kind",
                    format!(
                        "unknown kind {s:?}: use reading_request, referral, share, booking or pathway"
                    ),
                    "種別は 読影依頼・患者紹介・情報連携・予約・連携パス のいずれかです。",
                )
            })
    }

    /// The state a new thread starts in.
    pub fn initial_state(self) -> ThreadState {
        match self {
            Self::Booking => ThreadState::Requested,
            Self::Pathway => ThreadState::Active,
            _ => ThreadState::Sent,
        }
    }
}

/// Where a thread stands; every side sees the same state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadState {
    Sent,
    /// Delivered to the addressee's inbox (受信).
    Delivered,
    /// Opened by the addressee (開封).
    Opened,
    /// 受付
    Accepted,
    /// 読影レポート送付済み
    Reported,
    /// 返書送付済み
    Replied,
    /// 読影しない / お断り
    Declined,
    /// 取り下げ
    Withdrawn,
    /// The requester has read the report or reply (確認済み).
    Acknowledged,
    /// Booking: asked for, waiting for the receiving facility.
    Requested,
    /// Booking: a time both sides agreed on.
    Confirmed,
    /// Booking: the receiving facility proposes another time.
    Proposed,
    Cancelled,
    /// Pathway: in progress, stage by stage.
    Active,
    Completed,
}

impl ThreadState {
    const ALL: [Self; 15] = [
        Self::Sent,
        Self::Delivered,
        Self::Opened,
        Self::Accepted,
        Self::Reported,
        Self::Replied,
        Self::Declined,
        Self::Withdrawn,
        Self::Acknowledged,
        Self::Requested,
        Self::Confirmed,
        Self::Proposed,
        Self::Cancelled,
        Self::Active,
        Self::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Opened => "opened",
            Self::Accepted => "accepted",
            Self::Reported => "reported",
            Self::Replied => "replied",
            Self::Declined => "declined",
            Self::Withdrawn => "withdrawn",
            Self::Acknowledged => "acknowledged",
            Self::Requested => "requested",
            Self::Confirmed => "confirmed",
            Self::Proposed => "proposed",
            Self::Cancelled => "cancelled",
            Self::Active => "active",
            Self::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Sent => "送信済み",
            Self::Delivered => "受信",
            Self::Opened => "開封済み",
            Self::Accepted => "受付済み",
            Self::Reported => "レポート済み",
            Self::Replied => "返書済み",
            Self::Declined => "お断り",
            Self::Withdrawn => "取り下げ",
            Self::Acknowledged => "確認済み",
            Self::Requested => "予約依頼中",
            Self::Confirmed => "予約確定",
            Self::Proposed => "別日時を提案中",
            Self::Cancelled => "取消",
            Self::Active => "進行中",
            Self::Completed => "完了",
        }
    }

    /// Nothing more is expected from the receiving side.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Self::Reported
                | Self::Replied
                | Self::Declined
                | Self::Withdrawn
                | Self::Acknowledged
                | Self::Cancelled
                | Self::Completed
        )
    }

    /// Before the receiving side has accepted or answered.
    fn is_waiting(self) -> bool {
        matches!(self, Self::Sent | Self::Delivered | Self::Opened)
    }
}

/// A step someone takes on a thread; each is a signed envelope of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Accept,
    /// 読影レポート (findings, impression).
    Report,
    /// 読影しない / decline, with a reason.
    Decline,
    /// 返書 (reply letter to a referral).
    Reply,
    Withdraw,
    Acknowledge,
    /// Booking: fix the requested (or proposed) time.
    Confirm,
    /// Booking: offer another time.
    Propose,
    /// Booking: call it off.
    Cancel,
    /// Pathway: fill the current stage (and hand over to the next facility).
    Stage,
}

impl Step {
    const ALL: [Self; 10] = [
        Self::Accept,
        Self::Report,
        Self::Decline,
        Self::Reply,
        Self::Withdraw,
        Self::Acknowledge,
        Self::Confirm,
        Self::Propose,
        Self::Cancel,
        Self::Stage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Report => "report",
            Self::Decline => "decline",
            Self::Reply => "reply",
            Self::Withdraw => "withdraw",
            Self::Acknowledge => "acknowledge",
            Self::Confirm => "confirm",
            Self::Propose => "propose",
            Self::Cancel => "cancel",
            Self::Stage => "stage",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "step",
                    format!("unknown step {s:?}"),
                    "操作の種類が正しくありません。",
                )
            })
    }

    /// Form fields that must be filled for this step.
    pub fn required_fields(self, kind: ThreadKind) -> &'static [&'static str] {
        match (kind, self) {
            (ThreadKind::ReadingRequest, Self::Report) => &["findings", "impression"],
            (_, Self::Decline) => &["reason"],
            (_, Self::Propose) => &["slot"],
            _ => &[],
        }
    }
}

// --- step form spec (what a step's form asks for; labels are the edge's) -----

/// Whether a step's field must be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
    /// Required unless the booking already holds a time (confirming a request
    /// keeps the time it names).
    UnlessBooked,
}

/// One field of a step's form, as the domain knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepField {
    /// The field's name in [`Step::required_fields`] and the step's fields;
    /// `body` is the step's free text.
    pub name: &'static str,
    pub need: Need,
    /// Free text of several lines rather than one value.
    pub long: bool,
}

impl StepField {
    const fn new(name: &'static str, need: Need, long: bool) -> Self {
        Self { name, need, long }
    }

    /// Whether the field must be filled on a thread that does or does not
    /// hold a booked time.
    pub fn is_required(self, booked: bool) -> bool {
        match self.need {
            Need::Required => true,
            Need::Optional => false,
            Need::UnlessBooked => !booked,
        }
    }
}

impl Step {
    /// The fields of this step's form, in order. Required ones are exactly
    /// [`Step::required_fields`] (plus `slot` when confirming an unbooked
    /// request); a pathway stage's fields come from its template instead.
    pub fn form_fields(self, kind: ThreadKind) -> Vec<StepField> {
        let need = |name| {
            if self.required_fields(kind).contains(&name) {
                Need::Required
            } else {
                Need::Optional
            }
        };
        let body = StepField::new("body", need("body"), true);
        match self {
            Self::Accept | Self::Withdraw | Self::Cancel | Self::Reply => vec![body],
            Self::Report => vec![
                StepField::new("findings", need("findings"), true),
                StepField::new("impression", need("impression"), true),
                body,
            ],
            Self::Decline => vec![StepField::new("reason", need("reason"), true)],
            Self::Acknowledge | Self::Stage => Vec::new(),
            Self::Confirm => vec![StepField::new("slot", Need::UnlessBooked, false)],
            Self::Propose => vec![StepField::new("slot", need("slot"), false), body],
        }
    }

    /// Whether the step may carry files (a report's images, a reply letter's
    /// documents).
    pub fn takes_files(self) -> bool {
        matches!(self, Self::Reply | Self::Report)
    }

    /// Whether the step refuses, withdraws or calls something off.
    pub fn is_refusal(self) -> bool {
        matches!(self, Self::Decline | Self::Withdraw | Self::Cancel)
    }
}

#[cfg(test)]
mod step_form_tests {
    use super::*;

    #[test]
    fn a_form_requires_exactly_what_the_step_requires() {
        for kind in ThreadKind::ALL {
            for step in Step::ALL {
                let fields = step.form_fields(kind);
                let required: Vec<&str> = fields
                    .iter()
                    .filter(|f| f.need == Need::Required)
                    .map(|f| f.name)
                    .collect();
                assert_eq!(required, step.required_fields(kind), "{kind:?} {step:?}");
            }
        }
    }
}

/// How the person acting stands to the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Sent the opening request.
    Requester,
    /// A staff member of the requesting facility other than the requester.
    RequesterFacility,
    /// The doctor it is addressed or assigned to.
    Addressee,
    /// A liaison of the facility whose shared inbox holds it.
    SharedInbox,
    /// Any other member of the receiving facility.
    ReceivingFacility,
}

/// Whether `role` in `relation` may take `step` on a `kind` thread in `state`;
/// the state it leads to, or a refusal that says why.
pub fn next_state(
    kind: ThreadKind,
    state: ThreadState,
    step: Step,
    role: Role,
    relation: Relation,
) -> Result<ThreadState> {
    use Relation::*;
    use ThreadState as S;
    let receiving_doctor = role == Role::Doctor && relation == Addressee;
    let on_behalf = role == Role::Liaison && relation == SharedInbox;
    let requester = relation == Requester;
    // Booking is the one thing clerks may change, on either side.
    let booking_requester_side =
        requester || (relation == RequesterFacility && matches!(role, Role::Clerk | Role::Liaison));
    let booking_receiving_side = (relation == Addressee && role == Role::Doctor)
        || on_behalf
        || (matches!(relation, ReceivingFacility | SharedInbox)
            && matches!(role, Role::Clerk | Role::Liaison));

    let to = match (kind, step) {
        (ThreadKind::ReadingRequest | ThreadKind::Referral, Step::Accept)
            if receiving_doctor || on_behalf =>
        {
            state.is_waiting().then_some(S::Accepted)
        }
        (ThreadKind::ReadingRequest, Step::Report) if receiving_doctor => {
            (state == S::Accepted).then_some(S::Reported)
        }
        (ThreadKind::Referral, Step::Reply) if receiving_doctor => {
            (state == S::Accepted).then_some(S::Replied)
        }
        (ThreadKind::ReadingRequest | ThreadKind::Referral, Step::Decline)
            if receiving_doctor || on_behalf =>
        {
            (state.is_waiting() || state == S::Accepted).then_some(S::Declined)
        }
        (ThreadKind::ReadingRequest | ThreadKind::Referral, Step::Withdraw) if requester => {
            (state.is_waiting() || state == S::Accepted).then_some(S::Withdrawn)
        }
        (ThreadKind::ReadingRequest, Step::Acknowledge) if requester => {
            (state == S::Reported).then_some(S::Acknowledged)
        }
        (ThreadKind::Referral, Step::Acknowledge) if requester => {
            (state == S::Replied).then_some(S::Acknowledged)
        }
        (ThreadKind::Booking, Step::Confirm) if booking_receiving_side => {
            (state == S::Requested).then_some(S::Confirmed)
        }
        (ThreadKind::Booking, Step::Confirm) if booking_requester_side => {
            (state == S::Proposed).then_some(S::Confirmed)
        }
        (ThreadKind::Booking, Step::Propose) if booking_receiving_side => {
            matches!(state, S::Requested | S::Confirmed).then_some(S::Proposed)
        }
        (ThreadKind::Booking, Step::Cancel) if booking_receiving_side || booking_requester_side => {
            matches!(state, S::Requested | S::Proposed | S::Confirmed).then_some(S::Cancelled)
        }
        (ThreadKind::Pathway, Step::Stage)
            if matches!(role, Role::Doctor | Role::Liaison)
                && matches!(relation, Addressee | SharedInbox) =>
        {
            // Whether this stage completes the pathway is decided by the template.
            (state == S::Active).then_some(S::Active)
        }
        _ => return Err(Error::Forbidden),
    };
    to.ok_or_else(|| {
        Error::invalid(
            "step",
            format!(
                "a {} thread in state {} cannot take the step {}",
                kind.as_str(),
                state.as_str(),
                step.as_str()
            ),
            format!(
                "現在の状態（{}）ではこの操作はできません。",
                state.label_ja()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Relation::*;
    use ThreadKind as K;
    use ThreadState as S;

    fn ok(k: K, s: S, step: Step, role: Role, rel: Relation) -> Option<S> {
        next_state(k, s, step, role, rel).ok()
    }

    #[test]
    fn a_reading_request_runs_from_acceptance_to_acknowledgement() {
        let d = Role::Doctor;
        assert_eq!(
            ok(K::ReadingRequest, S::Opened, Step::Accept, d, Addressee),
            Some(S::Accepted)
        );
        assert_eq!(
            ok(K::ReadingRequest, S::Accepted, Step::Report, d, Addressee),
            Some(S::Reported)
        );
        assert_eq!(
            ok(
                K::ReadingRequest,
                S::Reported,
                Step::Acknowledge,
                d,
                Requester
            ),
            Some(S::Acknowledged)
        );
        // A report needs acceptance first; the requester cannot report.
        assert!(ok(K::ReadingRequest, S::Opened, Step::Report, d, Addressee).is_none());
        assert!(matches!(
            next_state(K::ReadingRequest, S::Accepted, Step::Report, d, Requester),
            Err(Error::Forbidden)
        ));
        // Withdrawal only before a report.
        assert_eq!(
            ok(K::ReadingRequest, S::Accepted, Step::Withdraw, d, Requester),
            Some(S::Withdrawn)
        );
        assert!(matches!(
            next_state(K::ReadingRequest, S::Reported, Step::Withdraw, d, Requester),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn liaisons_accept_and_decline_on_behalf_but_never_report() {
        let l = Role::Liaison;
        assert_eq!(
            ok(
                K::ReadingRequest,
                S::Delivered,
                Step::Accept,
                l,
                SharedInbox
            ),
            Some(S::Accepted)
        );
        assert_eq!(
            ok(K::Referral, S::Delivered, Step::Decline, l, SharedInbox),
            Some(S::Declined)
        );
        assert!(ok(K::ReadingRequest, S::Accepted, Step::Report, l, SharedInbox).is_none());
        assert!(ok(K::Referral, S::Accepted, Step::Reply, l, SharedInbox).is_none());
    }

    #[test]
    fn clerks_change_nothing_but_bookings() {
        let c = Role::Clerk;
        for step in Step::ALL {
            for state in S::ALL {
                for kind in [K::ReadingRequest, K::Referral, K::Share, K::Pathway] {
                    assert!(ok(kind, state, step, c, ReceivingFacility).is_none());
                    assert!(ok(kind, state, step, c, RequesterFacility).is_none());
                }
            }
        }
        assert_eq!(
            ok(
                K::Booking,
                S::Requested,
                Step::Confirm,
                c,
                ReceivingFacility
            ),
            Some(S::Confirmed)
        );
        assert_eq!(
            ok(
                K::Booking,
                S::Requested,
                Step::Propose,
                c,
                ReceivingFacility
            ),
            Some(S::Proposed)
        );
        assert_eq!(
            ok(K::Booking, S::Proposed, Step::Confirm, c, RequesterFacility),
            Some(S::Confirmed)
        );
        assert_eq!(
            ok(K::Booking, S::Confirmed, Step::Cancel, c, RequesterFacility),
            Some(S::Cancelled)
        );
        // The requesting side cannot confirm its own request.
        assert!(
            ok(
                K::Booking,
                S::Requested,
                Step::Confirm,
                c,
                RequesterFacility
            )
            .is_none()
        );
    }

    #[test]
    fn every_state_and_step_name_round_trips() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        for s in Step::ALL {
            assert_eq!(Step::parse(s.as_str()).ok(), Some(s));
        }
        for k in K::ALL {
            assert_eq!(K::parse(k.as_str()).ok(), Some(k));
        }
    }
}
