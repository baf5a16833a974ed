//! Why a person is told: the reasons a notice is queued for, and which steps
//! of a thread tell its addressees at all.

use crate::workflow::ThreadKind;

/// Why a person is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyReason {
    /// A new item or request has arrived.
    NewItem,
    /// A reading report has arrived.
    Report,
    /// A reply letter has arrived.
    Reply,
    /// A step that waits for this person (a pathway stage).
    ActionNeeded,
    /// The addressee declined the request (for a reading request: 読影しない).
    Declined,
    /// The requester withdrew the request.
    Withdrawn,
    /// A booking was confirmed.
    BookingConfirmed,
    /// Another time was proposed for a booking.
    BookingRescheduled,
    /// A booking was called off.
    BookingCancelled,
    /// The liaison office handed an item to this doctor.
    Assigned,
    /// An item addressed to this person's facility has not been opened in time.
    Escalation,
    /// The link that confirms a new address.
    ConfirmAddress,
    /// An item the person sent could not be delivered.
    DeliveryFailed,
    /// The operator changed the person's sign-in (a second-factor reset).
    SecurityChange,
    /// A liaison approved restoring the person's earlier keys after a reset.
    KeysRestored,
}

impl NotifyReason {
    const ALL: [Self; 15] = [
        Self::SecurityChange,
        Self::KeysRestored,
        Self::NewItem,
        Self::Report,
        Self::Reply,
        Self::ActionNeeded,
        Self::Declined,
        Self::Withdrawn,
        Self::BookingConfirmed,
        Self::BookingRescheduled,
        Self::BookingCancelled,
        Self::Assigned,
        Self::Escalation,
        Self::ConfirmAddress,
        Self::DeliveryFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewItem => "new_item",
            Self::Report => "report",
            Self::Reply => "reply",
            Self::ActionNeeded => "action_needed",
            Self::Declined => "declined",
            Self::Withdrawn => "withdrawn",
            Self::BookingConfirmed => "booking_confirmed",
            Self::BookingRescheduled => "booking_rescheduled",
            Self::BookingCancelled => "booking_cancelled",
            Self::Assigned => "assigned",
            Self::Escalation => "escalation",
            Self::ConfirmAddress => "confirm_address",
            Self::DeliveryFailed => "delivery_failed",
            Self::SecurityChange => "security_change",
            Self::KeysRestored => "keys_restored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The reason a delivered envelope of `kind` gives its addressees, by the
    /// step it carries. Accepting and acknowledging need nothing from the other
    /// side and are visible in the mailbox without a mail; every step that
    /// changes what the other side can count on (a decline, a withdrawal, a
    /// booking confirmed, moved or called off) is told.
    pub fn for_step(kind: Option<&str>, step: Option<&str>) -> Option<Self> {
        let booking = kind.and_then(|k| ThreadKind::parse(k).ok()) == Some(ThreadKind::Booking);
        match step {
            None | Some("open") => Some(Self::NewItem),
            Some("report") => Some(Self::Report),
            Some("reply") => Some(Self::Reply),
            Some("propose") if booking => Some(Self::BookingRescheduled),
            Some("propose" | "stage") => Some(Self::ActionNeeded),
            Some("decline") => Some(Self::Declined),
            Some("withdraw") => Some(Self::Withdrawn),
            Some("confirm") => Some(Self::BookingConfirmed),
            Some("cancel") => Some(Self::BookingCancelled),
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_that_change_what_the_other_side_counts_on_are_told() {
        let rr = Some("reading_request");
        assert_eq!(
            NotifyReason::for_step(rr, Some("open")),
            Some(NotifyReason::NewItem)
        );
        assert_eq!(
            NotifyReason::for_step(rr, None),
            Some(NotifyReason::NewItem)
        );
        assert_eq!(
            NotifyReason::for_step(rr, Some("report")),
            Some(NotifyReason::Report)
        );
        assert_eq!(
            NotifyReason::for_step(rr, Some("decline")),
            Some(NotifyReason::Declined)
        );
        assert_eq!(
            NotifyReason::for_step(rr, Some("withdraw")),
            Some(NotifyReason::Withdrawn)
        );
        let booking = Some("booking");
        assert_eq!(
            NotifyReason::for_step(booking, Some("propose")),
            Some(NotifyReason::BookingRescheduled)
        );
        assert_eq!(
            NotifyReason::for_step(booking, Some("confirm")),
            Some(NotifyReason::BookingConfirmed)
        );
        assert_eq!(
            NotifyReason::for_step(booking, Some("cancel")),
            Some(NotifyReason::BookingCancelled)
        );
        assert_eq!(
            NotifyReason::for_step(Some("pathway"), Some("stage")),
            Some(NotifyReason::ActionNeeded)
        );
        for quiet in ["accept", "acknowledge"] {
            assert_eq!(NotifyReason::for_step(rr, Some(quiet)), None, "{quiet}");
        }
        for r in NotifyReason::ALL {
            assert_eq!(NotifyReason::parse(r.as_str()), Some(r));
        }
    }
}
