//! A single item outside any thread (`/items/{id}`): a plain message with what
//! a reader does with mail — reply to its sender (a new item of the same kind
//! through `Postroom::send`), forward to a doctor of the facility
//! (`Postroom::forward`, after a recent proof, like a thread's forward) and
//! archive (the folder flags form). A clerk reads only.

use super::*;
use crate::pages::once;
use mailbox::postroom::{Outgoing, PatientConfirmation, Recipient};

/// The reply form of a received message.
pub struct ReplyForm {
    /// Who the reply goes to, as shown.
    pub to: String,
    pub subject: String,
}

#[derive(Template)]
#[template(path = "thread_item.html")]
struct ItemPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    tt: &'static ThreadTexts,
    title: String,
    kind: &'static str,
    step: StepView,
    reply: Option<ReplyForm>,
    /// The facility's other doctors, for whoever may forward.
    forward: Option<Vec<(String, String)>>,
    /// The reader's folder holding the item (`inbox` or `sent`), to archive it.
    archive_folder: Option<&'static str>,
    back: BackLink,
    done: Option<&'static str>,
    error: Option<String>,
    submit_token: String,
}

/// `GET /items/{id}` — an item outside any thread (a thread's step goes to
/// its thread).
pub(super) async fn item(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let done = match query.as_deref().unwrap_or_default() {
        q if q.contains("done=reply") => Some(texts(ctx.lang).reply_sent),
        q if q.contains("done=forward") => Some(texts(ctx.lang).forwarded),
        _ => None,
    };
    item_page(&state, ctx, &id, done, None, query.as_deref()).await
}

async fn item_page(
    state: &AppState,
    ctx: PageCtx,
    id: &str,
    done: Option<&'static str>,
    error: Option<(StatusCode, String)>,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let tt = texts(lang);
    let opened = match state.postroom.open(&ctx.session, id).await {
        Ok(o) => o,
        Err(e) => return error_page(ctx, &e, query),
    };
    if let Some(thread) = &opened.thread_id {
        return Redirect::to(&format!("/threads/{thread}")).into_response();
    }
    let mut names = Names::default();
    let mut step = StepView {
        zip: crate::pages::zip_links::page_links(state, &ctx.session, lang, &opened).await,
        ..step_view(state, lang, &mut names, &opened.kind, &opened).await
    };
    crate::pages::files::show_integrity(state, &ctx.session, lang, std::slice::from_mut(&mut step))
        .await;
    let me = &ctx.session.account;
    let mine = opened.sender_id == me.id.as_str();
    let personal = matches!(me.role, Role::Doctor | Role::Liaison);
    let reply = (personal && !mine && step.broken.is_none()).then(|| ReplyForm {
        to: step.signer.clone(),
        subject: reply_subject(&opened.subject),
    });
    let forward = if personal && step.broken.is_none() {
        Some(colleagues(state, me).await)
    } else {
        None
    };
    let (status, error) = match error {
        Some((s, m)) => (s, Some(m)),
        None => (StatusCode::OK, None),
    };
    let kind = kind_label(lang, &opened.kind);
    let page = ItemPage {
        lang,
        t: lang.texts(),
        tt,
        // The subject, unless the content is withheld (a place difference).
        title: if opened.subject.trim().is_empty() || step.broken.is_some() {
            kind.to_string()
        } else {
            opened.subject.clone()
        },
        kind,
        step,
        reply,
        forward,
        archive_folder: personal.then_some(if mine { "sent" } else { "inbox" }),
        back: back_link(lang, me.role),
        done,
        error,
        submit_token: once::new_token(),
        chrome: ctx.chrome,
    };
    render(status, lang, query, &page)
}

/// "Re: " before the subject, once.
pub(super) fn reply_subject(subject: &str) -> String {
    let s = subject.trim();
    if s.to_ascii_lowercase().starts_with("re:") {
        s.to_string()
    } else {
        format!("Re: {s}")
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// `POST /items/{id}/reply` — a new item of the same kind to the sender, with
/// no patient data (the original stays where it is); sent once per rendered
/// form.
pub(super) async fn reply(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let result = send_reply(&state, &ctx, &id, &form).await;
    match result {
        Ok(()) => Redirect::to(&format!("/items/{id}?done=reply")).into_response(),
        Err(e) => {
            let status = status_of(e.kind());
            let text = message(ctx.lang, &e);
            item_page(&state, ctx, &id, None, Some((status, text)), None).await
        }
    }
}

async fn send_reply(
    state: &AppState,
    ctx: &PageCtx,
    id: &str,
    form: &[(String, String)],
) -> Result<(), Error> {
    let original = state.postroom.open(&ctx.session, id).await?;
    if original.thread_id.is_some() {
        return Err(Error::NotFound("item"));
    }
    let body = field(form, "body");
    if body.trim().is_empty() {
        return Err(Error::invalid(
            "body",
            "write the reply",
            "返信の本文を入力してください。",
        ));
    }
    let subject = match field(form, "subject").trim() {
        "" => reply_subject(&original.subject),
        s => s.to_string(),
    };
    let to = AccountId::parse(&original.sender_id)?;
    let operation = format!("POST /items/{id}/reply");
    let held = match once::begin(&state.postroom, &ctx.session, &operation, form).await? {
        once::Begun::Sent(_) => return Ok(()),
        once::Begun::Send(held) => held,
    };
    let key = held.as_ref().map(once::Once::idempotency);
    let outgoing = Outgoing {
        kind: original.kind.clone(),
        to: vec![Recipient::Person(to)],
        subject,
        patient_id: String::new(),
        patient_name: String::new(),
        body: body.to_string(),
        consent: None,
    };
    state
        .postroom
        .send_with_key(
            &ctx.session,
            outgoing,
            Vec::new(),
            PatientConfirmation::default(),
            key,
        )
        .await?;
    Ok(())
}

/// `POST /items/{id}/forward` — to a doctor of the reader's facility, as a
/// thread's forward (a proof within `reauth_secs` first).
pub(super) async fn forward_item(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let to = field(&form, "to");
    let result = if to.trim().is_empty() {
        Err(Error::invalid(
            "to",
            "choose the doctor to forward to",
            "転送先の医師を選んでください。",
        ))
    } else {
        match AccountId::parse(to) {
            Ok(to) => state.postroom.forward(&ctx.session, &id, &to).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => Redirect::to(&format!("/items/{id}?done=forward")).into_response(),
        Err(Error::ReauthRequired) => crate::pages::reauth::to_reauth(&format!("/items/{id}")),
        Err(e) => {
            let status = status_of(e.kind());
            let text = message(ctx.lang, &e);
            item_page(&state, ctx, &id, None, Some((status, text)), None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;
    use super::reply_subject;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(70), "70 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KB");
        assert_eq!(human_size(12_700), "12.4 KB");
        assert_eq!(human_size(5 * 1024 * 1024 + 1), "5.0 MB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GB");
    }

    #[test]
    fn a_reply_subject_says_re_once() {
        assert_eq!(reply_subject("検査のご相談"), "Re: 検査のご相談");
        assert_eq!(reply_subject("Re: 検査のご相談"), "Re: 検査のご相談");
        assert_eq!(reply_subject("RE: x"), "RE: x");
    }
}
