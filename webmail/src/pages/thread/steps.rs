//! Taking a step or forwarding a thread from its page.

use super::*;
use crate::pages::once;

/// Names an action form may send besides the step's structured fields.
pub(super) const NOT_FIELDS: &[&str] = &["csrf", once::FIELD, "step", "body", "next_facility"];

/// The step a form names, with its text and structured fields.
pub(super) fn step_input(form: &[(String, String)]) -> Result<StepInput, Error> {
    let value = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let step = Step::parse(&value("step"))?;
    Ok(StepInput {
        step,
        body: value("body"),
        fields: form
            .iter()
            .filter(|(k, v)| !NOT_FIELDS.contains(&k.as_str()) && !v.trim().is_empty())
            .cloned()
            .collect(),
        next_facility: Some(value("next_facility"))
            .filter(|s| !s.trim().is_empty())
            .map(|s| FacilityCode::parse(&s))
            .transpose()?,
    })
}

/// Back to the thread after a step or a forward: its page with the notice, or
/// with what was refused.
pub(super) async fn after_change(
    state: &AppState,
    ctx: PageCtx,
    id: &str,
    result: Result<(), Error>,
) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/threads/{id}?done=1")).into_response(),
        Err(e) => {
            if matches!(e, Error::NotFound(_)) {
                return error_page(ctx, &e, None);
            }
            let status = status_of(e.kind());
            let text = message(ctx.lang, &e);
            thread_page(state, ctx, id, Some((status, text)), false, None).await
        }
    }
}

/// `POST /threads/{id}/steps` — the step, its text and fields, as a plain form.
/// The domain decides whether this reader may take it (a clerk never may).
pub(super) async fn take_step(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    act(&state, ctx, &id, Ok(form), Vec::new()).await
}

/// Takes the step the form names, with its files, and shows the outcome. A
/// step whose files total more than `[attachments] warn_above_mib` is logged
/// as the compose page and the API log it (the form warned before sending).
pub(super) async fn act(
    state: &AppState,
    ctx: PageCtx,
    id: &str,
    form: Result<Vec<(String, String)>, Error>,
    attachments: Vec<mailbox::postroom::OutgoingAttachment>,
) -> Response {
    let result = match form.and_then(|f| step_input(&f).map(|input| (f, input))) {
        Ok((form, input)) => send_step(state, &ctx, id, &form, input, attachments).await,
        Err(e) => Err(e),
    };
    after_change(state, ctx, id, result).await
}

/// Sends a step once per rendered form (its `submit_token`): a second POST of
/// the same form leads back to the thread with nothing sent again.
async fn send_step(
    state: &AppState,
    ctx: &PageCtx,
    id: &str,
    form: &[(String, String)],
    input: StepInput,
    attachments: Vec<mailbox::postroom::OutgoingAttachment>,
) -> Result<(), Error> {
    let operation = format!("POST /threads/{id}/steps");
    let held = match once::begin(&state.postroom, &ctx.session, &operation, form).await? {
        once::Begun::Sent(_) => return Ok(()),
        once::Begun::Send(held) => held,
    };
    let key = held.as_ref().map(once::Once::idempotency);
    let (attachments, total) = crate::http::upload::counted(attachments);
    let envelope_id = state
        .threads
        .act_with_key(&ctx.session, id, input, attachments, key)
        .await?;
    let total = total.load(std::sync::atomic::Ordering::Relaxed);
    let _ = crate::http::upload::large_item_warning(&state.upload, &envelope_id, total);
    Ok(())
}

/// `POST /threads/{id}/steps/files` — a reply letter or report with files
/// (multipart, the `csrf` field first). Files are staged as on the plain
/// compose form, never held whole in memory.
pub(super) async fn take_step_with_files(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    CheckedMultipart(mut multipart): CheckedMultipart,
) -> Result<Response, Response> {
    // The session only after the CSRF check of the first part, so a stale
    // form is refused as such rather than sent to sign in.
    let ctx = PageCtx::ready(&state, &headers, None).await?;
    let mut form = Vec::new();
    let mut files = Vec::new();
    let received: Result<(), Error> = async {
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| bad_form(format!("multipart: {e}")))?
        {
            if field.file_name().is_some() {
                files.extend(stage_file(&mut field).await?);
            } else {
                let name = field.name().unwrap_or_default().to_string();
                form.push((name, read_text(&mut field).await?));
            }
        }
        Ok(())
    }
    .await;
    let attachments = files.into_iter().map(|f| f.into_attachment()).collect();
    Ok(act(&state, ctx, &id, received.map(|()| form), attachments).await)
}

/// `POST /threads/{id}/forward` — to a doctor of the reader's facility; the
/// domain decides who may (a doctor's own items, a liaison's shared inbox).
pub(super) async fn forward(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let to = form
        .iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let chosen = if to.trim().is_empty() {
        Err(Error::invalid(
            "to",
            "choose the doctor to forward to",
            "転送先の医師を選んでください。",
        ))
    } else {
        AccountId::parse(to)
    };
    let result = match chosen {
        Ok(to) => state.threads.forward(&ctx.session, &id, &to).await,
        Err(e) => Err(e),
    };
    if matches!(result, Err(Error::ReauthRequired)) {
        // Prove it is you, then back to the thread to forward again.
        return crate::pages::reauth::to_reauth(&format!("/threads/{id}"));
    }
    after_change(&state, ctx, &id, result).await
}
