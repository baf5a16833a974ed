//! The step forms of a thread, built from the domain's step spec.

use super::*;

/// The forms for the steps the domain allows this reader now, built from the
/// domain's step spec ([`Step::form_fields`]): which fields, which required.
pub(super) async fn action_forms(
    state: &AppState,
    lang: Lang,
    thread: &Thread,
    allowed: &[&'static str],
    own_facility: Option<&FacilityCode>,
) -> Vec<ActionForm> {
    let Ok(kind) = ThreadKind::parse(&thread.kind) else {
        return Vec::new();
    };
    let mut forms = Vec::new();
    for step in allowed.iter().filter_map(|s| Step::parse(s).ok()) {
        let (button_ja, button_en) = button(step);
        let fields = if step == Step::Stage {
            stage_fields(lang, thread)
        } else {
            step.form_fields(kind)
                .into_iter()
                .map(|f| action_field(lang, thread, step, f))
                .collect()
        };
        let next_facilities = if step == Step::Stage {
            next_facilities(state, own_facility).await
        } else {
            Vec::new()
        };
        forms.push(ActionForm {
            step: step.as_str(),
            label: step_label(lang, &thread.kind, Some(step.as_str())),
            button: pick(lang, button_ja, button_en),
            danger: step.is_refusal(),
            fields,
            next_facilities,
            files: step.takes_files(),
        });
    }
    forms
}

/// The button of a step's form.
pub(super) fn button(step: Step) -> (&'static str, &'static str) {
    match step {
        Step::Accept => ("受け付ける", "Accept"),
        Step::Report => ("レポートを送る", "Send the report"),
        Step::Decline => ("お断りする", "Decline"),
        Step::Reply => ("返書を送る", "Send the reply letter"),
        Step::Withdraw => ("取り下げる", "Withdraw"),
        Step::Acknowledge => ("確認しました", "Acknowledge"),
        Step::Confirm => ("予約を確定する", "Confirm the booking"),
        Step::Propose => ("別の日時を提案する", "Propose another time"),
        Step::Cancel => ("予約を取り消す", "Cancel the booking"),
        Step::Stage => ("この段階を記入する", "Fill this stage"),
    }
}

/// One field of a step's form as the domain specifies it, with the page's
/// label; confirming a booking offers the time it already holds.
pub(super) fn action_field(lang: Lang, thread: &Thread, step: Step, f: StepField) -> ActionField {
    let tt = texts(lang);
    let booked = thread.booked_slot.is_some();
    let label = match (step, f.name) {
        (Step::Reply, "body") => tt.reply_letter.to_string(),
        (_, "body") => tt.comment.to_string(),
        (_, name) => field_label(lang, name),
    };
    let value = match (step, f.name) {
        (Step::Confirm, "slot") => thread.booked_slot.clone().unwrap_or_default(),
        _ => String::new(),
    };
    ActionField {
        name: f.name.to_string(),
        label,
        required: f.is_required(booked),
        long: f.long,
        value,
    }
}

/// The fields of a pathway's current stage, from its template.
pub(super) fn stage_fields(lang: Lang, thread: &Thread) -> Vec<ActionField> {
    thread
        .template
        .as_deref()
        .and_then(|t| mailbox::threads::pathway::template(t).ok())
        .and_then(|t| {
            let i = usize::try_from(thread.stage.unwrap_or(0)).ok()?;
            t.stages.get(i).cloned()
        })
        .map(|s| {
            s.fields
                .iter()
                .map(|f| ActionField {
                    name: f.name.clone(),
                    label: match lang {
                        Lang::Ja => f.label_ja.clone(),
                        Lang::En => f.label_en.clone(),
                    },
                    required: f.required,
                    long: false,
                    value: String::new(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The facilities a pathway can be handed over to: those active today
/// ([`mailbox::Facility::is_active_on`]), other than the reader's own.
pub(super) async fn next_facilities(
    state: &AppState,
    own_facility: Option<&FacilityCode>,
) -> Vec<(String, String)> {
    let today = today_jst();
    match state.directory.facilities().await {
        Ok(all) => all
            .into_iter()
            .filter(|f| f.is_active_on(today))
            .filter(|f| own_facility != Some(&f.code))
            .map(|f| (f.code.to_string(), f.name))
            .collect(),
        Err(_) => Vec::new(),
    }
}
