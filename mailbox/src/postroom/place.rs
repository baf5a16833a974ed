//! The signed place of an item against its clear row. The sender signs where
//! the item belongs (its ID, thread, step, kinds, sender, recipients, time and
//! patient blind index); whoever can write the database can move a row, but not
//! re-sign it, so every difference is named here and the item is never shown as
//! valid.

use renkei_crypto::Place;

use super::SignatureStatus;
use crate::store::vault::{EnvelopeRow, SlotRow};

/// How an item's signed place compares with where its row puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceCheck {
    /// Signed, and the row says the same.
    Matches,
    /// Sealed before places were signed: only content and sender are vouched for.
    NotSigned,
    /// The row differs from what was signed; the status names how.
    Differs(SignatureStatus),
}

/// Compares `place` with the row and its original key slots (those added by a
/// forward or an assignment later carry `added_by` and are not part of it).
/// The most serious difference wins: another item, thread or patient first.
pub(crate) fn check(row: &EnvelopeRow, slots: &[SlotRow], place: Option<&Place>) -> PlaceCheck {
    let Some(place) = place else {
        return PlaceCheck::NotSigned;
    };
    let blind = row.blind_index.as_deref().map(hex::encode);
    if place.envelope_id != row.id
        || place.thread_id != row.thread_id
        || place.patient_blind_index != blind
    {
        return PlaceCheck::Differs(SignatureStatus::Moved);
    }
    if place.step_seq != row.thread_seq {
        return PlaceCheck::Differs(SignatureStatus::StepReordered);
    }
    if place.item_kind != row.kind || place.step_kind != row.step {
        return PlaceCheck::Differs(SignatureStatus::Relabelled);
    }
    if place.sender_account != row.sender_id
        || place.sender_facility != row.sender_facility.clone().unwrap_or_default()
    {
        return PlaceCheck::Differs(SignatureStatus::SignerMismatch);
    }
    // Every slot the row says the sender made must be one the sender signed.
    // Fewer is not a change of address: unassigning a doctor removes their
    // slots on the steps sealed to them while they were assigned.
    let unsigned = slots
        .iter()
        .filter(|s| s.envelope_id == row.id && s.added_by.is_none())
        .any(|s| !place.recipients.contains(&s.principal));
    if unsigned {
        return PlaceCheck::Differs(SignatureStatus::RecipientsChanged);
    }
    if place.created_at != row.created_at {
        return PlaceCheck::Differs(SignatureStatus::TimeChanged);
    }
    PlaceCheck::Matches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> EnvelopeRow {
        EnvelopeRow {
            id: "E1".into(),
            kind: "reading_request".into(),
            sender_id: "K7M4QX9R".into(),
            sender_facility: Some("3710300017".into()),
            created_at: 1_765_000_000,
            body: Vec::new(),
            body_size: 0,
            blind_index: Some(vec![0xab; 32]),
            consent_obtained_on: None,
            consent_method: None,
            consent_obtained_by: None,
            consent_given_by: None,
            consent_relation: None,
            thread_id: Some("T1".into()),
            step: Some("report".into()),
            thread_seq: Some(3),
        }
    }

    fn slot(p: &str, added_by: Option<&str>) -> SlotRow {
        SlotRow {
            envelope_id: "E1".into(),
            principal: p.into(),
            added_by: added_by.map(Into::into),
            added_at: 0,
        }
    }

    fn place() -> Place {
        Place {
            envelope_id: "E1".into(),
            thread_id: Some("T1".into()),
            step_seq: Some(3),
            step_kind: Some("report".into()),
            item_kind: "reading_request".into(),
            sender_account: "K7M4QX9R".into(),
            sender_facility: "3710300017".into(),
            recipients: vec!["account:K7M4QX9R".into(), "account:T3AN9GX9".into()],
            created_at: 1_765_000_000,
            patient_blind_index: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn each_rewritten_column_is_named() {
        let slots = [
            slot("account:T3AN9GX9", None),
            slot("account:K7M4QX9R", None),
            // A forward's slot is not part of what the sender addressed.
            slot("account:Q2W3E4R5", Some("T3AN9GX9")),
        ];
        let p = place();
        assert_eq!(check(&row(), &slots, Some(&p)), PlaceCheck::Matches);
        assert_eq!(check(&row(), &slots, None), PlaceCheck::NotSigned);
        let differs = |f: &dyn Fn(&mut EnvelopeRow)| {
            let mut r = row();
            f(&mut r);
            check(&r, &slots, Some(&p))
        };
        use SignatureStatus as S;
        type Rewrite<'a> = &'a dyn Fn(&mut EnvelopeRow);
        let cases: [(Rewrite<'_>, S); 9] = [
            (&|r| r.id = "E2".into(), S::Moved),
            (&|r| r.thread_id = Some("T2".into()), S::Moved),
            (&|r| r.blind_index = Some(vec![0xcd; 32]), S::Moved),
            (&|r| r.thread_seq = Some(2), S::StepReordered),
            (&|r| r.step = Some("decline".into()), S::Relabelled),
            (&|r| r.kind = "referral".into(), S::Relabelled),
            (&|r| r.sender_id = "Q2W3E4R5".into(), S::SignerMismatch),
            (&|r| r.created_at -= 200 * 86_400, S::TimeChanged),
            (&|r| r.sender_facility = None, S::SignerMismatch),
        ];
        for (f, want) in cases {
            assert_eq!(differs(f), PlaceCheck::Differs(want));
        }
        // An unassigned doctor's slot removed: still the place that was signed.
        let fewer = [slot("account:T3AN9GX9", None)];
        assert_eq!(check(&row(), &fewer, Some(&p)), PlaceCheck::Matches);
        // A slot row re-pointed at someone the sender never addressed.
        let repointed = [
            slot("account:T3AN9GX9", None),
            slot("account:Q2W3E4R5", None),
        ];
        assert_eq!(
            check(&row(), &repointed, Some(&p)),
            PlaceCheck::Differs(S::RecipientsChanged)
        );
        let other = [
            slot("account:T3AN9GX9", None),
            slot("account:K7M4QX9R", None),
            slot("account:Q2W3E4R5", None),
        ];
        assert_eq!(
            check(&row(), &other, Some(&p)),
            PlaceCheck::Differs(S::RecipientsChanged)
        );
    }
}
