//! What the compose form holds, turned into a new thread.

use super::*;

pub(super) fn parse_recipient(to: &str) -> Result<Option<Recipient>, Error> {
    let to = to.trim();
    if to.is_empty() {
        return Ok(None);
    }
    if let Some(id) = to.strip_prefix("account:") {
        return Ok(Some(Recipient::Person(AccountId::parse(id)?)));
    }
    if let Some(code) = to.strip_prefix("liaison:") {
        return Ok(Some(Recipient::LiaisonInbox(FacilityCode::parse(code)?)));
    }
    Err(Error::invalid(
        "to",
        "choose a recipient from the list",
        "宛先を一覧から選んでください。",
    ))
}

pub(super) fn parse_date(field: &'static str, s: &str) -> Result<Option<chrono::NaiveDate>, Error> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            Error::invalid(
                field,
                format!("{field} must look like 2026-11-30"),
                "日付は 2026-11-30 の形式で入力してください。",
            )
        })
}

/// The consent record, when any of its fields is filled (the domain refuses
/// patient data without one).
pub(super) fn consent(v: &Values) -> Result<Option<Consent>, Error> {
    let any = [&v.consent_on, &v.consent_by]
        .iter()
        .any(|s| !s.trim().is_empty());
    if !any {
        return Ok(None);
    }
    let Some(obtained_on) = parse_date("consent_on", &v.consent_on)? else {
        return Err(Error::invalid(
            "consent_on",
            "give the date the consent was obtained",
            "同意取得日を入力してください。",
        ));
    };
    Ok(Some(Consent {
        obtained_on,
        method: ConsentMethod::parse(&v.consent_method)?,
        obtained_by: v.consent_by.trim().to_string(),
        given_by: ConsentGiver::parse(Some(&v.consent_given_by), Some(&v.consent_relation))?,
    }))
}

/// A plain message: to one recipient, the patient and consent only when given.
pub(super) fn new_message(v: &Values) -> Result<Outgoing, Error> {
    let to = parse_recipient(&v.to)?
        .ok_or_else(|| Error::invalid("to", "choose a recipient", "宛先を選んでください。"))?;
    if v.body.trim().is_empty() {
        return Err(Error::invalid(
            "body",
            "the message has no text",
            "本文を入力してください。",
        ));
    }
    Ok(Outgoing {
        kind: MESSAGE.into(),
        to: vec![to],
        subject: v.subject.clone(),
        patient_id: v.patient_id.trim().to_string(),
        patient_name: v.patient_name.trim().to_string(),
        body: v.body.clone(),
        consent: consent(v)?,
    })
}

/// A `datetime-local` value (`2026-12-05T10:00`) as people write it
/// (`2026-12-05 10:00`); other text as typed.
pub(super) fn preferred_times(text: &str) -> String {
    let t = text.trim();
    match chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M") {
        Ok(at) => at.format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => t.to_string(),
    }
}

pub(super) fn new_thread(kind: ThreadKind, v: &Values) -> Result<NewThread, Error> {
    let mut fields: Vec<(String, String)> = [
        ("modality", &v.modality),
        ("body_part", &v.body_part),
        ("clinical_question", &v.clinical_question),
        ("purpose", &v.purpose),
        ("diagnosis", &v.diagnosis),
        ("history", &v.history),
        ("medication", &v.medication),
        ("course", &v.course),
        ("preferred_times", &preferred_times(&v.preferred_times)),
    ]
    .into_iter()
    .filter(|(_, val)| !val.trim().is_empty())
    .map(|(k, val)| (k.to_string(), val.clone()))
    .collect();
    fields.extend(
        v.extra
            .iter()
            .filter(|(_, val)| !val.trim().is_empty())
            .cloned(),
    );
    Ok(NewThread {
        kind,
        to: parse_recipient(&v.to)?,
        subject: v.subject.clone(),
        patient_id: v.patient_id.trim().to_string(),
        patient_name: v.patient_name.trim().to_string(),
        body: v.body.clone(),
        consent: consent(v)?,
        fields,
        urgency: Urgency::parse(&v.urgency)?,
        wanted_by: parse_date("wanted_by", &v.wanted_by)?,
        resource_id: Some(v.resource_id.clone()).filter(|s| !s.trim().is_empty()),
        template: Some(v.template.clone()).filter(|s| !s.trim().is_empty()),
    })
}

pub(super) fn set_value(v: &mut Values, kind: &mut String, name: &str, value: String) {
    match name {
        "kind" => *kind = value,
        "to" => v.to = value,
        "subject" => v.subject = value,
        "patient_id" => v.patient_id = value,
        "patient_name" => v.patient_name = value,
        "consent_on" => v.consent_on = value,
        "consent_method" => v.consent_method = value,
        "consent_by" => v.consent_by = value,
        "consent_given_by" => v.consent_given_by = value,
        "consent_relation" => v.consent_relation = value,
        "body" => v.body = value,
        "urgency" => v.urgency = value,
        "wanted_by" => v.wanted_by = value,
        "modality" => v.modality = value,
        "body_part" => v.body_part = value,
        "clinical_question" => v.clinical_question = value,
        "purpose" => v.purpose = value,
        "diagnosis" => v.diagnosis = value,
        "history" => v.history = value,
        "medication" => v.medication = value,
        "course" => v.course = value,
        "preferred_times" => v.preferred_times = value,
        "facility" => v.facility = value,
        "resource_id" => v.resource_id = value,
        "template" => v.template = value,
        other if !OWN_FIELDS.contains(&other) => v.extra.push((other.to_string(), value)),
        _ => {}
    }
}
