//! `/api/v1/envelopes/{id}/studies` and `…/attachments/{index}/render`: what
//! intake recorded inside a sealed item (studies, series, image counts, the
//! wrong-patient check) and one DICOM frame as PNG, for the viewer. Both
//! open the item with the reader's key and are audited by the postroom.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use imaging::{Preset, Window, WindowChoice};
use mailbox::Error;
use mailbox::postroom::intake::IntakeRecord;
use serde::Deserialize;

use crate::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery, ApiSession};

/// What intake recorded of an item's attachments, as sealed inside it
/// (`renkei-intake.json`); empty lists for an item without attachments.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the answer; the handler serializes `IntakeRecord`
pub(crate) struct IntakeView {
    /// One entry per attachment intake read: `attachment` (index), `name`,
    /// and `dicom` or `image` metadata where it applies.
    #[schema(value_type = Vec<Object>)]
    files: Vec<serde_json::Value>,
    /// DICOM studies with their series (study UID, date or null, description, series).
    #[schema(value_type = Vec<Object>)]
    studies: Vec<serde_json::Value>,
    /// The wrong-patient check: `mismatches` and, when the sender confirmed
    /// them, `confirmed_by`.
    #[schema(value_type = Object)]
    patient_check: serde_json::Value,
}

/// `GET /api/v1/envelopes/{id}/studies` — the sealed intake record.
#[utoipa::path(get, path = "/envelopes/{id}/studies", tag = "envelopes", operation_id = "envelope_studies",
    params(("id" = String, Path, description = "Item ID")),
    responses((status = 200, description = "Studies, series and image counts recorded at intake, from inside the sealed item (empty lists for an item without attachments)", body = IntakeView)))]
pub async fn studies(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<IntakeRecord>, ApiError> {
    let record = state.postroom.intake_record(&session, &id).await?;
    Ok(Json(record.unwrap_or_default()))
}

#[derive(Deserialize)]
pub struct RenderQuery {
    #[serde(default)]
    frame: u32,
    /// `default`, `lung`, `mediastinum`, `bone` or `brain`.
    preset: Option<String>,
    center: Option<f64>,
    width: Option<f64>,
}

impl RenderQuery {
    fn window(&self) -> Result<WindowChoice, Error> {
        match (self.center, self.width, self.preset.as_deref()) {
            (Some(center), Some(width), _)
                if width > 0.0 && center.is_finite() && width.is_finite() =>
            {
                Ok(WindowChoice::Custom(Window { center, width }))
            }
            (None, None, p) => Preset::parse(p.unwrap_or("default"))
                .map(WindowChoice::Preset)
                .ok_or_else(|| {
                    Error::invalid(
                        "preset",
                        "preset must be default, lung, mediastinum, bone or brain",
                        "ウィンドウのプリセットは既定・肺野・縦隔・骨・脳のいずれかです。",
                    )
                }),
            _ => Err(Error::invalid(
                "window",
                "a window needs both center and a positive width",
                "ウィンドウ値（中心と幅）を正しく指定してください。",
            )),
        }
    }
}

/// `GET /api/v1/envelopes/{id}/attachments/{index}/render?frame=&preset=` (or
/// `&center=&width=`) — one frame as PNG, never cached by the browser; the
/// file decrypted as a stream, only that frame kept (`postroom::render`).
#[utoipa::path(get, path = "/envelopes/{id}/attachments/{index}/render", tag = "envelopes", operation_id = "render_slice",
    params(("id" = String, Path, description = "Item ID"), ("index" = usize, Path, maximum = 2147483647, description = "Attachment index"),
        ("frame" = Option<u32>, Query, description = "Frame of a multi-frame image, from 0"),
        ("preset" = Option<String>, Query, description = "default, lung, mediastinum, bone or brain"),
        ("center" = Option<f64>, Query, description = "Window centre (with width)"),
        ("width" = Option<f64>, Query, description = "Window width (with center)")),
    responses((status = 200, description = "The frame as PNG; `x-renkei-frames` gives the frame count, `x-renkei-window` the window used",
        content_type = "image/png", body = crate::api::v1::openapi::Binary),
        (status = 422, description = "`tampered_attachment`: the file does not match its signed manifest (every render checks the whole file); nothing is rendered", body = crate::http::error::ErrorBody),
        (status = 503, description = "`renders_busy`: every render slot (`[imaging] max_renders`) stayed taken for `[imaging] render_wait_secs`; try again", body = crate::http::error::ErrorBody)))]
pub async fn render(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath((id, index)): ApiPath<(String, usize)>,
    ApiQuery(query): ApiQuery<RenderQuery>,
) -> Result<Response, ApiError> {
    let window = query.window()?;
    let rendered = state
        .postroom
        .render_slice(&session, &id, index, query.frame, window)
        .await?;
    let mut response = rendered.png.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    h.insert("x-renkei-frames", HeaderValue::from(rendered.frames));
    if let Some(w) = rendered.window
        && let Ok(v) = HeaderValue::from_str(&format!("{} {}", w.center, w.width))
    {
        h.insert("x-renkei-window", v);
    }
    Ok(response)
}
