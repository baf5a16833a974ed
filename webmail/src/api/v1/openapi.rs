//! The OpenAPI document of the JSON API, `GET /api/v1/openapi.json`,
//! generated from the handlers' `#[utoipa::path]` annotations and the
//! request and response types' `ToSchema` derives. Every route of the API
//! router is listed here (`tests/e2e/openapi.rs` compares the two).

use std::sync::LazyLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder, SecurityRequirement};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{
    envelopes, factors, imaging, notify, records, recoveries, session as api, study_zip, threads,
};
use crate::api::v1::envelopes::EnvelopeSpec;
use crate::api::v1::threads::{StepSpec, ThreadSpec};
use crate::http::error::ErrorBody;
use crate::http::session::SESSION_COOKIE;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Renkei API",
        description = "The JSON API of Renkei, a secure store-and-forward messaging server for a regional medical network. \
            Everything the pages do goes through the same service layer. Sign in with `POST /session`; browsers keep the \
            session cookie, hospital systems send the returned token as `Authorization: Bearer …`. Refusals carry \
            `{error, message, message_ja}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/api/v1")),
    paths(
        api::sign_in, api::second_factor, api::reauth, api::sign_out, api::change_password, api::me,
        factors::sign_in_challenge, factors::reauth_challenge, factors::factors, factors::begin_totp,
        factors::confirm_totp, factors::remove_totp, factors::regenerate_recovery_codes,
        factors::app_passwords, factors::create_app_password, factors::revoke_app_password,
        factors::security_keys, factors::begin_webauthn, factors::finish_webauthn,
        factors::rename_webauthn, factors::remove_webauthn, factors::admin_factors, factors::admin_reset,
        envelopes::send, envelopes::list, envelopes::open, envelopes::attachment, envelopes::forward,
        envelopes::flags, envelopes::delivery, envelopes::mailbox, imaging::studies, imaging::render,
        study_zip::item, study_zip::study, study_zip::series,
        records::item_pdf, records::item_pdf_signature, records::audit, records::readings_csv,
        records::usage_csv, records::deletion_search, records::deletion_apply,
        threads::open, threads::list, threads::view, threads::step, threads::claim, threads::release,
        threads::assign, threads::unassign, threads::forward, threads::facility_overview, threads::reading_stats,
        threads::usage, threads::resources, threads::add_resource, threads::pathways,
        notify::change_email, notify::confirm_email, notify::settings, notify::set_mode,
        notify::failed_mine, notify::failed_all, recoveries::list, recoveries::approve,
        document,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "session", description = "Signing in (password, second factor, security keys), re-authenticating, signing out"),
        (name = "account", description = "The signed-in account and its password"),
        (name = "factors", description = "Authenticator app, recovery codes, security keys, app passwords for mail clients"),
        (name = "envelopes", description = "Sealed items: send with streamed attachments, open, download, forward, flags, folders, PDF"),
        (name = "threads", description = "Request workflows, the liaison office's claim and assignment, resources, care pathways"),
        (name = "stats", description = "Reading statistics and per-account usage"),
        (name = "records", description = "The audit trail"),
        (name = "notifications", description = "The notice address (with confirmation) and mode, failed notices"),
        (name = "recoveries", description = "A liaison, as custodian, restores a person's earlier keys after a password reset"),
        (name = "admin", description = "The operator: factors, failed notices, patient deletion requests"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// What every operation shares: the two ways to present a session (unless the
/// operation says it needs none) and the error body of every refusal.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "Set by `POST /session` (Secure, HttpOnly, SameSite=Strict)",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The `token` of `POST /session`, for hospital systems"))
                    .build(),
            ),
        );
        doc.security = Some(vec![
            SecurityRequirement::new("session_cookie", Vec::<String>::new()),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
        refusals(doc);
    }
}

/// The refusals every operation may meet, as shared responses; which of them
/// an operation lists is decided by [`refusal_statuses`].
const REFUSALS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The request does not fit: `invalid_path`, `invalid_query` or `invalid_body` (it could not be read as the operation describes), `invalid` or a field's own code (e.g. `weak_password`, `invalid_facility_code`, an attachment's refusal)",
    ),
    (
        "401",
        "Unauthorized",
        "Not signed in, or the sign-in failed: `not_signed_in`, `session_expired`, `bad_credentials`, `second_factor_required`, `bad_second_factor`",
    ),
    (
        "403",
        "Forbidden",
        "Signed in but not allowed: `role_forbids` (the role table refuses the action for this role), `forbidden` (facility or relation to the item), `password_change_required`, `second_factor_enrolment_required`, `reauthentication_required`, `cross_origin`",
    ),
    (
        "404",
        "NotFound",
        "`not_found`: there is no such thing, or the account may not see it (the same answer, so IDs do not leak)",
    ),
    (
        "409",
        "Conflict",
        "`conflict` (someone else changed it meanwhile, or the confirmed count no longer matches) or `patient_mismatch` (files whose patient differs must be confirmed)",
    ),
    (
        "422",
        "Tampered",
        "The stored item failed its integrity check: `tampered_body`, `tampered_key_slot`, `tampered_attachment`, or a place error (`moved`, `step_reordered`, `relabelled`, `recipients_changed`, `time_changed`, `step_missing`); no content is sent",
    ),
];

/// Operations that need a session but never answer 403.
const NEVER_FORBIDDEN: &[(&str, &str)] = &[("delete", "/session"), ("post", "/password")];

/// Refusals beyond what an operation's shape implies, one line per
/// operation: `(method, path, statuses)`.
const MORE_REFUSALS: &[(&str, &str, &[&str])] = &[
    ("post", "/session", &["401"]),
    ("post", "/session/second-factor", &["401"]),
    ("post", "/session/webauthn", &["401"]),
    ("post", "/email/confirm", &["404"]),
    ("post", "/envelopes", &["409"]),
    ("post", "/envelopes/{id}/forward", &["422"]),
    (
        "get",
        "/envelopes/{id}/attachments/{index}/render",
        &["422"],
    ),
    ("get", "/envelopes/{id}/studies", &["422"]),
    ("get", "/envelopes/{id}/zip", &["422"]),
    ("get", "/envelopes/{id}/studies/{study}/zip", &["422"]),
    (
        "get",
        "/envelopes/{id}/studies/{study}/series/{series}/zip",
        &["422"],
    ),
    ("get", "/envelopes/{id}/pdf", &["422"]),
    ("get", "/envelopes/{id}/pdf.asc", &["422"]),
    ("post", "/threads", &["409"]),
    ("post", "/threads/{id}/steps", &["409", "422"]),
    ("post", "/threads/{id}/claim", &["409"]),
    ("post", "/threads/{id}/release", &["409"]),
    ("post", "/threads/{id}/assign", &["409"]),
    ("post", "/threads/{id}/unassign", &["409"]),
    ("post", "/threads/{id}/forward", &["409", "422"]),
    ("post", "/admin/deletion-requests", &["409"]),
    ("post", "/recoveries/{account}/approve", &["409"]),
];

/// The refusal statuses `method path` lists besides `default`: 401 and 403
/// (unless [`NEVER_FORBIDDEN`]) when it needs a session, 400 when it takes
/// parameters or a body, 404 when its path names something, and
/// [`MORE_REFUSALS`].
fn refusal_statuses(
    method: &str,
    path: &str,
    op: &utoipa::openapi::path::Operation,
) -> Vec<&'static str> {
    use utoipa::openapi::path::ParameterIn;
    let mut out = Vec::new();
    let params = op.parameters.as_deref().unwrap_or_default();
    if !params.is_empty() || op.request_body.is_some() {
        out.push("400");
    }
    // `security(())` (an empty requirement) marks an operation without a session.
    let open = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
    if !open {
        out.push("401");
        if !NEVER_FORBIDDEN.contains(&(method, path)) {
            out.push("403");
        }
    }
    if params
        .iter()
        .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path)))
    {
        out.push("404");
    }
    for (m, p, more) in MORE_REFUSALS {
        if (*m, *p) == (method, path) {
            out.extend(more.iter().copied());
        }
    }
    out
}

/// Adds the shared refusals, the documented error body, and each
/// operation's refusal statuses (an operation's own description of a
/// status wins); `default` covers the rest (405, 413, 415, 423, 429, 500).
fn refusals(doc: &mut utoipa::openapi::OpenApi) {
    let refusal = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build()
    };
    let components = doc.components.get_or_insert_with(Default::default);
    for (_, name, description) in REFUSALS {
        components
            .responses
            .insert((*name).to_string(), refusal(description).into());
    }
    let default = refusal(
        "Any other refusal, with the HTTP status of the error's class: `unknown_path` (404: no such operation), `method_not_allowed` (405, with `Allow`), `payload_too_large` (413), `unsupported_media_type` (415), `account_locked` (423: the right password of an account the help desk locked), `too_many_attempts` (429: failed sign-ins wait a growing delay), `internal` (500)",
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ] {
            let Some(op) = op else { continue };
            for status in refusal_statuses(method, path, op) {
                if let Some((_, name, _)) = REFUSALS.iter().find(|(s, _, _)| *s == status) {
                    op.responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| {
                            RefOr::Ref(utoipa::openapi::Ref::from_response_name(*name))
                        });
                }
            }
            op.responses
                .responses
                .entry("default".into())
                .or_insert_with(|| default.clone().into());
        }
    }
}

/// The multipart form of `POST /envelopes`: the `envelope` part (JSON) first,
/// then one file part per declared attachment, in the declared order.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the form; the handler streams it part by part
pub(crate) struct EnvelopeUpload {
    envelope: EnvelopeSpec,
    /// The files, streamed into sealed blobs (any size).
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// The multipart form of `POST /threads`: the `thread` part (JSON), then the files.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ThreadUpload {
    thread: ThreadSpec,
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// The multipart form of `POST /threads/{id}/steps`: the `step` part (JSON), then the files.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct StepUpload {
    step: StepSpec,
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// A file as it is downloaded (attachments, PDFs): bytes, not JSON.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub(crate) struct Binary(Vec<u8>);

/// Serialized once: the document is the same for the life of the process.
static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));

/// `GET /api/v1/openapi.json` — this document (no sign-in).
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI document of this API", body = Object)))]
pub async fn document() -> Response {
    match &*DOCUMENT {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not serialize");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
