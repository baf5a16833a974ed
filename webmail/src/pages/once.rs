//! Forms that send an item carry a per-render token (`submit_token`, a hidden
//! field) used as their Idempotency-Key (see `http::idempotency`): a double
//! click — two POSTs of the same rendered form — sends once, and the second
//! answer leads to the same item. The second request waits for the first
//! rather than being refused. The request hash covers the operation and the
//! form's text fields (not its files): the same token with other text is
//! refused with a message to open the form again.

use mailbox::Error;
use mailbox::auth::CurrentSession;
use mailbox::postroom::{Idempotency, KeyHold, Postroom, RememberedAnswer, Submitted};
use sha2::{Digest, Sha256};

use crate::http::idempotency::key_hash;

/// The hidden field.
pub(crate) const FIELD: &str = "submit_token";

/// A fresh token for one rendering of a form.
pub(crate) fn new_token() -> String {
    mailbox::ids::new_id()
}

/// A form submission holding its token's key.
pub(crate) struct Once {
    key_hash: [u8; 32],
    request_hash: [u8; 32],
    _hold: KeyHold,
}

/// What the start of a tokened form submission decided.
pub(crate) enum Begun {
    /// Sent already by an earlier POST of the same form: the IDs it made.
    Sent(Submitted),
    /// Go on sending (with the token held, if the form carried one).
    Send(Option<Once>),
}

/// Before sending a form: with its token held (waiting while an earlier POST
/// of the same form runs), what was sent with it already, if anything.
/// `fields` are the form's text fields in order.
pub(crate) async fn begin(
    postroom: &Postroom,
    session: &CurrentSession,
    operation: &str,
    fields: &[(String, String)],
) -> Result<Begun, Error> {
    let Some((_, token)) = fields.iter().find(|(k, _)| k == FIELD) else {
        return Ok(Begun::Send(None));
    };
    let key_hash = key_hash(token).map_err(|e| {
        Error::invalid(
            "submit_token",
            e.to_string(),
            "送信フォームが正しくありません。画面を開き直してください。",
        )
    })?;
    let mut hold = postroom.hold_idempotency_key(session, key_hash);
    hold.wait().await;
    let request_hash = request_hash(operation, fields);
    if let Some(remembered) = postroom.remembered_answer(session, &key_hash).await? {
        return sent(&remembered, request_hash).map(Begun::Sent);
    }
    Ok(Begun::Send(Some(Once {
        key_hash,
        request_hash,
        _hold: hold,
    })))
}

impl Once {
    /// The key to store with the envelope: the IDs it made.
    pub(crate) fn idempotency(&self) -> Idempotency {
        let request_hash = self.request_hash;
        Idempotency {
            key_hash: self.key_hash,
            answer: Box::new(move |made| RememberedAnswer {
                request_hash,
                status: 201,
                body: serde_json::json!({
                    "envelope_id": made.envelope_id,
                    "thread_id": made.thread_id,
                })
                .to_string()
                .into_bytes(),
            }),
        }
    }
}

fn request_hash(operation: &str, fields: &[(String, String)]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(operation.as_bytes());
    for (k, v) in fields.iter().filter(|(k, _)| k != "csrf" && k != FIELD) {
        h.update([0]);
        h.update(Sha256::digest(k.as_bytes()));
        h.update(Sha256::digest(v.as_bytes()));
    }
    h.finalize().into()
}

/// The IDs an earlier POST of the same form made, if it sent the same text.
fn sent(remembered: &RememberedAnswer, request_hash: [u8; 32]) -> Result<Submitted, Error> {
    if remembered.request_hash != request_hash {
        return Err(Error::invalid(
            "submit_token",
            "this form was sent already with other content",
            "このフォームは既に別の内容で送信されています。画面を開き直してください。",
        ));
    }
    #[derive(serde::Deserialize)]
    struct Ids {
        envelope_id: String,
        thread_id: Option<String>,
    }
    let ids: Ids = serde_json::from_slice(&remembered.body)
        .map_err(|e| Error::Internal(format!("remembered form answer: {e}")))?;
    Ok(Submitted {
        envelope_id: ids.envelope_id,
        thread_id: ids.thread_id,
    })
}
