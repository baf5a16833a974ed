//! Page: the DICOM viewer of one item (`/items/{id}/viewer`). The study and
//! series list comes from the sealed intake record (read with the reader's
//! key, audited as a view); the viewport asks the render route
//! (`/api/v1/envelopes/{id}/attachments/{index}/render`, audited per slice)
//! for one frame at a time. `viewer.js` scrolls with the wheel and the keys,
//! prefetches the next slices and applies window presets; without scripts the
//! page still shows the first slice of each series. Only IDs and indexes go
//! into URLs. The tab title names the item (its subject, else its kind),
//! never the patient; the patient banner beside the image shows the request's
//! patient and, in the series list, the one the DICOM files name, written as
//! people write names (`香川 花子`, not DICOM's `香川^花子`).
//!
//! `viewer.js` fetches each frame as a blob URL and prefetches six ahead and
//! two behind, but only once the slice on screen has arrived, so the first
//! slice does not share the cores with its neighbours. It adopts the plain
//! first `<img>` when the page knows its window (a file without one, such as a
//! dose map, is fetched again for the window the server chose), scrolls with
//! the wheel, ↑/↓, PageUp/PageDown, Home/End, a slider and a vertical touch
//! drag, and shows the render route's message for a slice that cannot be
//! decoded (its download link stays). It marks `#viewport` with what it shows
//! (`data-shown`, `data-first-slice-ms`) for the browser test and
//! `bench/dicom/first_slice.sh`.

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use imaging::{Preset, Study};
use mailbox::postroom::intake::IntakeRecord;
use serde::Deserialize;

use super::labels::kind_label;
use super::thread::css;
use super::{Chrome, PageSession, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/items/{id}/viewer", get(view))
        .route("/static/viewer.css", get(|| async { css(VIEWER_CSS) }))
        .route(
            "/static/viewer.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    VIEWER_JS,
                )
            }),
        )
}

const VIEWER_CSS: &str = include_str!("../../static/viewer.css");
const VIEWER_JS: &str = include_str!("../../static/viewer.js");

/// The viewer's link on a thread step: for items that carry DICOM files.
pub(super) fn href_for(item: &mailbox::postroom::OpenedItem) -> Option<String> {
    item.attachments
        .iter()
        .any(|a| imaging::claims_dicom(&a.name, &a.media_type))
        .then(|| format!("/items/{}/viewer", item.id))
}

// --- texts ---------------------------------------------------------------------

pub struct ViewerTexts {
    pub title: &'static str,
    pub studies: &'static str,
    pub study_date: &'static str,
    pub modality: &'static str,
    pub body_part: &'static str,
    pub series: &'static str,
    pub images: &'static str,
    pub frames: &'static str,
    pub patient: &'static str,
    pub window: &'static str,
    pub preset: &'static str,
    pub center: &'static str,
    pub width: &'static str,
    pub apply: &'static str,
    pub image: &'static str,
    pub instance: &'static str,
    pub frame: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub download: &'static str,
    pub loading: &'static str,
    pub failed: &'static str,
    pub help: &'static str,
    pub no_images: &'static str,
    pub back: &'static str,
    pub no_script: &'static str,
    pub request_patient: &'static str,
    pub subject: &'static str,
    pub files: &'static str,
    pub no_description: &'static str,
}

static JA: ViewerTexts = ViewerTexts {
    title: "画像ビューア",
    studies: "検査とシリーズ",
    study_date: "検査日",
    modality: "モダリティ",
    body_part: "部位",
    series: "シリーズ",
    images: "画像",
    frames: "フレーム",
    patient: "DICOM上の患者",
    window: "ウィンドウ",
    preset: "プリセット",
    center: "中心（WL）",
    width: "幅（WW）",
    apply: "適用",
    image: "画像",
    instance: "インスタンス番号",
    frame: "フレーム",
    previous: "前の画像",
    next: "次の画像",
    download: "この画像のファイルをダウンロード",
    loading: "読み込み中…",
    failed: "画像を読み込めませんでした。通信状態を確認してください。",
    help: "マウスホイール・↑↓キー・PageUp/PageDownで画像を送ります。",
    no_images: "この項目には表示できるDICOM画像がありません。",
    back: "スレッドへ戻る",
    request_patient: "患者",
    subject: "件名",
    files: "添付ファイル一覧",
    no_description: "説明なし",
    no_script: "スクリプトが無効のため、各シリーズの最初の画像のみ表示しています。",
};

static EN: ViewerTexts = ViewerTexts {
    title: "Image viewer",
    studies: "Studies and series",
    study_date: "Study date",
    modality: "Modality",
    body_part: "Body part",
    series: "Series",
    images: "image(s)",
    frames: "frame(s)",
    patient: "Patient in the DICOM files",
    window: "Window",
    preset: "Preset",
    center: "Centre (WL)",
    width: "Width (WW)",
    apply: "Apply",
    image: "Image",
    instance: "Instance number",
    frame: "Frame",
    previous: "Previous image",
    next: "Next image",
    download: "Download this image's file",
    loading: "Loading…",
    failed: "The image could not be loaded. Check the connection.",
    help: "Scroll through the images with the mouse wheel, the ↑/↓ keys or PageUp/PageDown.",
    no_images: "This item holds no DICOM images to show.",
    back: "Back to the thread",
    request_patient: "Patient",
    subject: "Subject",
    files: "List of attachments",
    no_description: "no description",
    no_script: "Scripts are off: only the first image of each series is shown.",
};

fn texts(lang: Lang) -> &'static ViewerTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

fn preset_label(lang: Lang, p: Preset) -> &'static str {
    match lang {
        Lang::Ja => p.label_ja(),
        Lang::En => match p {
            Preset::Default => "File default",
            Preset::Lung => "Lung",
            Preset::Mediastinum => "Mediastinum",
            Preset::Bone => "Bone",
            Preset::Brain => "Brain",
        },
    }
}

// --- views ---------------------------------------------------------------------

pub struct SeriesView {
    /// Position in the page's flat list of series (the `series` parameter).
    pub index: usize,
    pub href: String,
    pub modality: String,
    pub body_part: String,
    pub description: String,
    pub image_count: usize,
    /// Frames over all instances (what the viewport scrolls through).
    pub frame_count: usize,
    /// `[[attachment, frame, instance number or null], …]` in scroll order.
    pub slices_json: String,
    pub selected: bool,
}

pub struct StudyView {
    pub date: String,
    pub description: String,
    pub patient: String,
    pub series: Vec<SeriesView>,
}

pub struct PresetOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// The slice the page opens with (rendered without scripts too).
pub struct FirstSlice {
    pub attachment: usize,
    pub frame: u32,
    pub instance: String,
    pub count: usize,
}

#[derive(Template)]
#[template(path = "viewer.html")]
struct ViewerPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    vt: &'static ViewerTexts,
    item_id: String,
    /// `件名 — 画像ビューア` (the subject, else the kind; never the patient).
    tab_title: String,
    banner: Option<Banner>,
    /// The thread the item belongs to, else the item.
    back_href: String,
    studies: Vec<StudyView>,
    presets: Vec<PresetOption>,
    /// The window the page opens with, as render-route parameters.
    window_query: String,
    center: String,
    width: String,
    selected_series: usize,
    first: Option<FirstSlice>,
    /// The first slice's window when known before rendering (`centre width`).
    first_window: String,
    error: Option<String>,
}

/// Who and what the images are about, beside the image.
pub struct Banner {
    pub subject: String,
    pub patient: String,
}

/// What the page's own links and the window form may carry.
#[derive(Deserialize, Default)]
struct ViewerQuery {
    series: Option<String>,
    preset: Option<String>,
    center: Option<String>,
    width: Option<String>,
}

/// The opening window: a valid centre/width pair wins over a preset; anything
/// malformed falls back to the file's own (the render route refuses it with
/// its message when a script sends it).
fn opening_window(q: &ViewerQuery) -> (Preset, Option<(f64, f64)>) {
    let num = |s: &Option<String>| {
        s.as_deref()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let custom = match (num(&q.center), num(&q.width)) {
        (Some(c), Some(w)) if w > 0.0 => Some((c, w)),
        _ => None,
    };
    let preset = q
        .preset
        .as_deref()
        .and_then(Preset::parse)
        .unwrap_or(Preset::Default);
    (preset, custom)
}

fn series_views(
    vt: &ViewerTexts,
    item_id: &str,
    studies: &[Study],
    selected: usize,
) -> Vec<StudyView> {
    let mut index = 0;
    studies
        .iter()
        .map(|study| StudyView {
            date: study.study_date.clone().unwrap_or_default(),
            description: study.description.clone(),
            patient: String::new(),
            series: study
                .series
                .iter()
                .map(|s| {
                    let slices: Vec<(usize, u32, Option<i64>)> = s
                        .instances
                        .iter()
                        .flat_map(|i| {
                            (0..i.frames.max(1)).map(move |f| (i.attachment, f, i.instance_number))
                        })
                        .collect();
                    let view = SeriesView {
                        index,
                        href: format!("/items/{item_id}/viewer?series={index}"),
                        modality: s.modality.clone(),
                        body_part: s.body_part.clone(),
                        description: series_description(vt, s, index),
                        image_count: s.image_count(),
                        frame_count: slices.len(),
                        slices_json: serde_json::to_string(&slices).unwrap_or_default(),
                        selected: index == selected,
                    };
                    index += 1;
                    view
                })
                .collect(),
        })
        .collect()
}

/// A series' own description, else `シリーズ 3（説明なし）` by its number
/// (or its place in the list).
fn series_description(vt: &ViewerTexts, s: &imaging::Series, index: usize) -> String {
    if !s.description.trim().is_empty() {
        return s.description.trim().to_string();
    }
    let n = s.series_number.unwrap_or(index as i64 + 1);
    format!("{} {n}（{}）", vt.series, vt.no_description)
}

/// The patient as the DICOM files of a study name it (the reader compares it
/// with the request's; never in the title or a URL).
fn study_patient(record: &IntakeRecord, study: &Study) -> String {
    let Some(first) = study
        .series
        .first()
        .and_then(|s| s.instances.first())
        .and_then(|i| record.dicom(i.attachment))
    else {
        return String::new();
    };
    let name = imaging::display_name(&first.patient_name);
    [first.patient_id.as_str(), name.as_str()]
        .iter()
        .filter(|s| !s.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /items/{id}/viewer?series=&preset=|&center=&width=`
async fn view(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let lang = ctx.lang;
    // A repeated or unknown parameter is ignored rather than refused.
    let q: ViewerQuery = raw
        .as_deref()
        .and_then(|r| serde_urlencoded::from_str(r).ok())
        .unwrap_or_default();
    let (preset, custom) = opening_window(&q);
    let (window_query, center, width) = match custom {
        Some((c, w)) => (
            format!("center={c}&width={w}"),
            c.to_string(),
            w.to_string(),
        ),
        None => (
            format!("preset={}", preset.as_str()),
            String::new(),
            String::new(),
        ),
    };
    let presets = Preset::ALL
        .into_iter()
        .map(|p| PresetOption {
            value: p.as_str(),
            label: preset_label(lang, p),
            selected: custom.is_none() && p == preset,
        })
        .collect();
    let mut page = ViewerPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        vt: texts(lang),
        item_id: id.clone(),
        tab_title: texts(lang).title.to_string(),
        banner: None,
        back_href: format!("/items/{id}"),
        studies: Vec::new(),
        presets,
        window_query,
        center,
        width,
        selected_series: 0,
        first: None,
        first_window: String::new(),
        error: None,
    };
    // Subject, patient and thread from the item itself (not marked seen).
    if let Ok(item) = state.postroom.peek(&ctx.session, &id).await {
        let named = if item.subject.trim().is_empty() {
            kind_label(lang, &item.kind).to_string()
        } else {
            item.subject.trim().to_string()
        };
        page.tab_title = format!("{named} — {}", texts(lang).title);
        if let Some(thread) = &item.thread_id {
            page.back_href = format!("/threads/{thread}");
        }
        let patient = [
            item.patient_id.trim().to_string(),
            imaging::display_name(&item.patient_name),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        page.banner = Some(Banner {
            subject: named,
            patient,
        });
    }
    let record = match state.postroom.intake_record(&ctx.session, &id).await {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            page.error = Some(message(lang, &e));
            return render(status_of(e.kind()), lang, raw.as_deref(), &page);
        }
    };
    let series_total: usize = record.studies.iter().map(|s| s.series.len()).sum();
    if series_total == 0 {
        page.error = Some(texts(lang).no_images.to_string());
        return render(StatusCode::NOT_FOUND, lang, raw.as_deref(), &page);
    }
    let selected = q
        .series
        .as_deref()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|s| *s < series_total)
        .unwrap_or(0);
    let mut studies = series_views(texts(lang), &id, &record.studies, selected);
    for (view, study) in studies.iter_mut().zip(&record.studies) {
        view.patient = study_patient(&record, study);
    }
    page.first = record
        .studies
        .iter()
        .flat_map(|s| &s.series)
        .nth(selected)
        .and_then(|s| {
            let count = s.instances.iter().map(|i| i.frames.max(1) as usize).sum();
            s.instances.first().map(|i| FirstSlice {
                attachment: i.attachment,
                frame: 0,
                instance: i.instance_number.map(|n| n.to_string()).unwrap_or_default(),
                count,
            })
        });
    // The window the first slice renders with: the chosen one, or the file's own.
    let known = match custom {
        Some((center, width)) => Some(imaging::Window { center, width }),
        None => preset.window().or_else(|| {
            page.first
                .as_ref()
                .and_then(|f| record.dicom(f.attachment))
                .and_then(|m| m.window)
        }),
    };
    if let Some(w) = known {
        page.first_window = format!("{} {}", w.center, w.width);
        page.center = w.center.to_string();
        page.width = w.width.to_string();
    }
    page.studies = studies;
    page.selected_series = selected;
    render(StatusCode::OK, lang, raw.as_deref(), &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_window_opens_with_the_file_default() {
        let q = |preset: Option<&str>, c: Option<&str>, w: Option<&str>| ViewerQuery {
            series: None,
            preset: preset.map(str::to_string),
            center: c.map(str::to_string),
            width: w.map(str::to_string),
        };
        assert_eq!(
            opening_window(&q(Some("lung"), None, None)),
            (Preset::Lung, None)
        );
        assert_eq!(
            opening_window(&q(Some("liver"), None, None)),
            (Preset::Default, None)
        );
        assert_eq!(
            opening_window(&q(None, Some("-600"), Some("1500"))),
            (Preset::Default, Some((-600.0, 1500.0)))
        );
        assert_eq!(
            opening_window(&q(None, Some("40"), Some("0"))),
            (Preset::Default, None)
        );
        assert_eq!(
            opening_window(&q(None, Some("NaN"), Some("400"))),
            (Preset::Default, None)
        );
    }
}
