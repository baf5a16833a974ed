//! The JSON API, version 1: one module per resource.

pub mod envelopes;
pub mod factors;
pub mod imaging;
pub mod notify;
pub mod openapi;
pub mod records;
pub mod recoveries;
pub mod session;
pub mod study_zip;
pub mod threads;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AppState;

/// Every route under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/session", post(session::sign_in).delete(session::sign_out))
        .route("/session/second-factor", post(session::second_factor))
        .route("/session/reauth", post(session::reauth))
        .route("/session/webauthn", post(factors::sign_in_challenge))
        .route("/session/reauth/webauthn", post(factors::reauth_challenge))
        .route("/me/webauthn", get(factors::security_keys))
        .route("/me/webauthn/register", post(factors::begin_webauthn))
        .route(
            "/me/webauthn/register/finish",
            post(factors::finish_webauthn),
        )
        .route(
            "/me/webauthn/{id}",
            put(factors::rename_webauthn).delete(factors::remove_webauthn),
        )
        .route("/me/factors", get(factors::factors))
        .route(
            "/me/totp",
            post(factors::begin_totp).delete(factors::remove_totp),
        )
        .route("/me/totp/confirm", post(factors::confirm_totp))
        .route(
            "/me/recovery-codes",
            post(factors::regenerate_recovery_codes),
        )
        .route(
            "/me/app-passwords",
            get(factors::app_passwords).post(factors::create_app_password),
        )
        .route(
            "/me/app-passwords/{id}",
            axum::routing::delete(factors::revoke_app_password),
        )
        .route("/admin/factors", get(factors::admin_factors))
        .route(
            "/admin/accounts/{id}/second-factor/reset",
            post(factors::admin_reset),
        )
        .route("/password", post(session::change_password))
        .route("/me", get(session::me))
        .route("/recoveries", get(recoveries::list))
        .route("/recoveries/{account}/approve", post(recoveries::approve))
        .route(
            "/envelopes",
            post(envelopes::send)
                .get(envelopes::list)
                // Attachments stream into sealed blobs; no whole-body limit applies.
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/envelopes/{id}", get(envelopes::open))
        .route(
            "/envelopes/{id}/attachments/{index}",
            get(envelopes::attachment),
        )
        .route("/envelopes/{id}/studies", get(imaging::studies))
        .route("/envelopes/{id}/zip", get(study_zip::item))
        .route("/envelopes/{id}/studies/{study}/zip", get(study_zip::study))
        .route(
            "/envelopes/{id}/studies/{study}/series/{series}/zip",
            get(study_zip::series),
        )
        .route(
            "/envelopes/{id}/attachments/{index}/render",
            get(imaging::render),
        )
        .route("/envelopes/{id}/forward", post(envelopes::forward))
        .route("/envelopes/{id}/pdf", get(records::item_pdf))
        .route("/envelopes/{id}/pdf.asc", get(records::item_pdf_signature))
        .route("/envelopes/{id}/flags", post(envelopes::flags))
        .route("/envelopes/{id}/delivery", get(envelopes::delivery))
        .route("/mailbox/{folder}", get(envelopes::mailbox))
        .route(
            "/threads",
            post(threads::open)
                .get(threads::list)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/threads/{id}", get(threads::view))
        .route(
            "/threads/{id}/steps",
            post(threads::step).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/threads/{id}/claim", post(threads::claim))
        .route("/threads/{id}/release", post(threads::release))
        .route("/threads/{id}/assign", post(threads::assign))
        .route("/threads/{id}/unassign", post(threads::unassign))
        .route("/threads/{id}/forward", post(threads::forward))
        .route("/facility/threads", get(threads::facility_overview))
        .route("/stats/readings", get(threads::reading_stats))
        .route("/stats/usage", get(threads::usage))
        .route("/stats/readings.csv", get(records::readings_csv))
        .route("/stats/usage.csv", get(records::usage_csv))
        .route("/audit", get(records::audit))
        .route(
            "/admin/deletion-requests/search",
            post(records::deletion_search),
        )
        .route("/admin/deletion-requests", post(records::deletion_apply))
        .route("/facilities/{code}/resources", get(threads::resources))
        .route("/resources", post(threads::add_resource))
        .route("/pathways", get(threads::pathways))
        .route("/me/email", put(notify::change_email))
        .route("/email/confirm", post(notify::confirm_email))
        .route(
            "/me/notifications",
            get(notify::settings).put(notify::set_mode),
        )
        .route("/me/notifications/failed", get(notify::failed_mine))
        .route("/admin/notifications/failed", get(notify::failed_all))
        .route("/openapi.json", get(openapi::document))
        // Unknown paths and methods get the JSON error body too (axum adds `Allow`).
        .method_not_allowed_fallback(crate::http::error::no_such_method)
        .fallback(crate::http::error::no_such_path)
}
