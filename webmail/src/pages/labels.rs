//! Labels of thread kinds, states, steps, urgencies and form fields, shared
//! by the folder, thread, compose, files and office pages.

use mailbox::workflow::{Step, ThreadState};

use crate::i18n::Lang;

pub(crate) fn kind_label(lang: Lang, kind: &str) -> &'static str {
    let (ja, en) = mailbox::notify::kind_labels(Some(kind));
    pick(lang, ja, en)
}

pub(crate) fn pick(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

pub(crate) fn state_label(lang: Lang, state: &str) -> &'static str {
    let Some(s) = ThreadState::parse(state) else {
        return "";
    };
    match lang {
        Lang::Ja => s.label_ja(),
        Lang::En => match s {
            ThreadState::Sent => "sent",
            ThreadState::Delivered => "delivered",
            ThreadState::Opened => "opened",
            ThreadState::Accepted => "accepted",
            ThreadState::Reported => "reported",
            ThreadState::Replied => "replied",
            ThreadState::Declined => "declined",
            ThreadState::Withdrawn => "withdrawn",
            ThreadState::Acknowledged => "acknowledged",
            ThreadState::Requested => "requested",
            ThreadState::Confirmed => "confirmed",
            ThreadState::Proposed => "other time proposed",
            ThreadState::Cancelled => "cancelled",
            ThreadState::Active => "in progress",
            ThreadState::Completed => "completed",
        },
    }
}

/// What a step is called; the opening step is called by the thread's kind.
pub(crate) fn step_label(lang: Lang, kind: &str, step: Option<&str>) -> &'static str {
    let Some(step) = step
        .filter(|s| *s != "open")
        .and_then(|s| Step::parse(s).ok())
    else {
        return kind_label(lang, kind);
    };
    let (ja, en) = match step {
        Step::Accept => ("受付", "Accepted"),
        Step::Report => ("読影レポート", "Reading report"),
        Step::Decline => ("お断り", "Declined"),
        Step::Reply => ("返書", "Reply letter"),
        Step::Withdraw => ("取り下げ", "Withdrawn"),
        Step::Acknowledge => ("確認", "Acknowledged"),
        Step::Confirm => ("予約確定", "Booking confirmed"),
        Step::Propose => ("別日時の提案", "Other time proposed"),
        Step::Cancel => ("予約取消", "Booking cancelled"),
        Step::Stage => ("連携パス段階記入", "Pathway stage"),
    };
    pick(lang, ja, en)
}

pub(crate) fn urgency_label(lang: Lang, urgency: &str) -> &'static str {
    match urgency {
        "urgent" => pick(lang, "至急", "urgent"),
        "routine" => pick(lang, "通常", "routine"),
        _ => "",
    }
}

/// The fixed fields in the order the forms ask for them.
const FIELD_ORDER: [&str; 13] = [
    "modality",
    "body_part",
    "clinical_question",
    "purpose",
    "diagnosis",
    "history",
    "medication",
    "course",
    "preferred_times",
    "slot",
    "findings",
    "impression",
    "reason",
];

/// Where a field goes when an item's fields are shown: the forms' order, then
/// care-pathway fields in their template's order, then anything else.
pub(crate) fn field_order(name: &str) -> usize {
    if let Some(i) = FIELD_ORDER.iter().position(|f| *f == name) {
        return i;
    }
    mailbox::threads::pathway::templates()
        .iter()
        .flat_map(|t| t.stages.iter())
        .flat_map(|s| s.fields.iter())
        .position(|f| f.name == name)
        .map_or(usize::MAX, |i| FIELD_ORDER.len() + i)
}

/// The label of a structured form field (fixed ones, then care-pathway fields).
pub(crate) fn field_label(lang: Lang, name: &str) -> String {
    let fixed = match name {
        "modality" => Some(("検査種別", "Modality")),
        "body_part" => Some(("検査部位", "Body part")),
        "clinical_question" => Some(("依頼内容・臨床上の疑問", "Clinical question")),
        "findings" => Some(("所見", "Findings")),
        "impression" => Some(("診断・結論", "Impression")),
        "reason" => Some(("理由", "Reason")),
        "purpose" => Some(("紹介目的", "Purpose of referral")),
        "diagnosis" => Some(("傷病名", "Diagnosis")),
        "history" => Some(("既往歴", "Medical history")),
        "medication" => Some(("処方", "Medication")),
        "course" => Some(("経過", "Course")),
        "preferred_times" => Some(("希望日時", "Preferred times")),
        "slot" => Some(("日時", "Date and time")),
        _ => None,
    };
    if let Some((ja, en)) = fixed {
        return pick(lang, ja, en).to_string();
    }
    mailbox::threads::pathway::templates()
        .iter()
        .flat_map(|t| t.stages.iter())
        .flat_map(|s| s.fields.iter())
        .find(|f| f.name == name)
        .map(|f| match lang {
            Lang::Ja => f.label_ja.clone(),
            Lang::En => f.label_en.clone(),
        })
        .unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_the_forms_order_and_have_labels_in_both_languages() {
        let mut names = vec!["clinical_question", "body_part", "modality"];
        names.sort_by_key(|n| field_order(n));
        assert_eq!(names, ["modality", "body_part", "clinical_question"]);
        let mut names = vec!["course", "medication", "history", "diagnosis", "purpose"];
        names.sort_by_key(|n| field_order(n));
        assert_eq!(
            names,
            ["purpose", "diagnosis", "history", "medication", "course"]
        );
        for (name, ja, en) in [
            ("history", "既往歴", "Medical history"),
            ("medication", "処方", "Medication"),
            ("course", "経過", "Course"),
        ] {
            assert_eq!(field_label(Lang::Ja, name), ja);
            assert_eq!(field_label(Lang::En, name), en);
        }
    }
}
