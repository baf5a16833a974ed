//! Page: every attachment of one item (`/items/{id}/files?page=N`), paged,
//! each with its size, SHA-256 and a single-file download. A thread step lists
//! its attachments inline, except the DICOM files of a large study: those are
//! summarised by count and size with a link here (a small study is listed
//! and linked too, and the viewer always links here), because a page listing
//! thousands of slices takes the browser longer to lay out than the viewer
//! takes to show the first image.

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use mailbox::CurrentSession;
use mailbox::postroom::{AttachmentIntegrity, OpenedItem};
use serde::Deserialize;

use super::labels::{kind_label, pick};
use super::thread::AttachmentLink;
use super::{Chrome, PageSession, message, render};
use crate::AppState;
use crate::http::error::status_of;
use crate::i18n::{Lang, Texts};

/// Up to this many DICOM files a step lists them one by one.
pub(super) const INLINE_DICOM: usize = 24;
/// Rows of the files page.
const PAGE_ROWS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new().route("/items/{id}/files", get(view))
}

/// The DICOM files of a step too many to list: how many, how large, where.
pub struct DicomFiles {
    pub summary: String,
    pub href: String,
    pub label: &'static str,
}

/// The attachments a step lists inline and, for a study, the line that
/// leads to the files page: a large study's DICOM files are summarised there
/// instead of listed; a small one is listed and linked too, so the files page
/// is always one click from the thread.
pub(super) fn step_attachments(
    lang: Lang,
    item: &OpenedItem,
) -> (Vec<AttachmentLink>, Option<DicomFiles>) {
    let is_dicom =
        |a: &mailbox::postroom::AttachmentInfo| imaging::claims_dicom(&a.name, &a.media_type);
    let dicom: Vec<_> = item.attachments.iter().filter(|a| is_dicom(a)).collect();
    if dicom.is_empty() {
        return (links(item, item.attachments.iter()), None);
    }
    let bytes: u64 = dicom.iter().map(|a| a.size).sum();
    let summary = match lang {
        Lang::Ja => format!(
            "DICOM {} ファイル（{}）",
            group(dicom.len() as u64),
            human_size(bytes)
        ),
        Lang::En => format!(
            "{} DICOM files ({})",
            group(dicom.len() as u64),
            human_size(bytes)
        ),
    };
    let files = DicomFiles {
        summary,
        href: format!("/items/{}/files", item.id),
        label: pick(
            lang,
            "ファイル一覧（1件ずつダウンロード）",
            "List of files (download one by one)",
        ),
    };
    if dicom.len() <= INLINE_DICOM {
        return (links(item, item.attachments.iter()), Some(files));
    }
    let others = item.attachments.iter().filter(|a| !is_dicom(a));
    (links(item, others), Some(files))
}

fn links<'a>(
    item: &OpenedItem,
    attachments: impl Iterator<Item = &'a mailbox::postroom::AttachmentInfo>,
) -> Vec<AttachmentLink> {
    attachments
        .map(|a| AttachmentLink {
            index: a.index,
            integrity: None,
            href: format!("/items/{}/attachments/{}", item.id, a.index),
            name: a.name.clone(),
            media_type: a.media_type.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
        })
        .collect()
}

/// An attachment's integrity as a line shows it: damaged in red, verified
/// in green; nothing while unknown.
pub struct IntegrityMark {
    /// `verified` or `damaged` (the class and `data-integrity`).
    pub state: &'static str,
    pub damaged: bool,
    pub text: &'static str,
}

fn integrity_mark(lang: Lang, state: AttachmentIntegrity) -> Option<IntegrityMark> {
    match state {
        AttachmentIntegrity::Unknown => None,
        AttachmentIntegrity::Verified => Some(IntegrityMark {
            state: "verified",
            damaged: false,
            text: pick(lang, "検証済み", "Verified"),
        }),
        AttachmentIntegrity::Damaged => Some(IntegrityMark {
            state: "damaged",
            damaged: true,
            text: pick(
                lang,
                "破損（署名と一致しません）",
                "Damaged (does not match its signature)",
            ),
        }),
    }
}

/// Marks each listed attachment of `links` with what is known of it.
fn mark(lang: Lang, links: &mut [AttachmentLink], known: &[(usize, AttachmentIntegrity)]) {
    for link in links {
        link.integrity = known
            .iter()
            .find(|(index, _)| *index == link.index)
            .and_then(|(_, state)| integrity_mark(lang, *state));
    }
}

/// Shows on each opened step's attachment lines what is known of their
/// integrity (one query per step with attachments). A failure leaves the
/// lines as they are: the page still shows the item.
pub(super) async fn show_integrity(
    state: &AppState,
    session: &CurrentSession,
    lang: Lang,
    steps: &mut [super::thread::StepView],
) {
    for step in steps.iter_mut().filter(|s| !s.attachments.is_empty()) {
        match state.postroom.attachment_integrity(session, &step.id).await {
            Ok(known) => mark(lang, &mut step.attachments, &known),
            Err(e) => tracing::warn!(item = %step.id, error = %e, "attachment integrity not shown"),
        }
    }
}

/// `12345` → `12,345`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Decimal units, as file managers and disk labels show them.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

struct FilesTexts {
    heading: &'static str,
    name: &'static str,
    media_type: &'static str,
    size: &'static str,
    previous: &'static str,
    next: &'static str,
    back: &'static str,
    back_thread: &'static str,
    shown: &'static str,
    zip_hint: &'static str,
}

static JA: FilesTexts = FilesTexts {
    heading: "添付ファイル一覧",
    name: "ファイル名",
    media_type: "種類",
    size: "サイズ",
    previous: "前へ",
    next: "次へ",
    back: "項目へ戻る",
    back_thread: "スレッドへ戻る",
    shown: "件目を表示しています。",
    zip_hint: "検査・シリーズ単位のZIPダウンロードは項目の画面にあります。",
};

static EN: FilesTexts = FilesTexts {
    heading: "Attachments",
    name: "File name",
    media_type: "Type",
    size: "Size",
    previous: "Previous",
    next: "Next",
    back: "Back to the item",
    back_thread: "Back to the thread",
    shown: "shown.",
    zip_hint: "Study and series ZIP downloads are on the item's page.",
};

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    ft: &'static FilesTexts,
    title: &'static str,
    item_href: String,
    back_label: &'static str,
    rows: Vec<FileRow>,
    /// "201–400 / 2,049".
    range: String,
    previous: Option<String>,
    next: Option<String>,
    error: Option<String>,
}

struct FileRow {
    link: AttachmentLink,
    size: String,
}

#[derive(Deserialize, Default)]
struct FilesQuery {
    page: Option<String>,
}

/// `GET /items/{id}/files?page=N` (N from 1). Opening the item is a view in
/// the audit trail, as everywhere; each download is audited on its own.
async fn view(
    State(state): State<AppState>,
    PageSession(ctx): PageSession,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let lang = ctx.lang;
    let ft = match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    };
    let mut page = FilesPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        ft,
        title: ft.heading,
        item_href: format!("/items/{id}"),
        back_label: ft.back,
        rows: Vec::new(),
        range: String::new(),
        previous: None,
        next: None,
        error: None,
    };
    let item = match state.postroom.open(&ctx.session, &id).await {
        Ok(item) => item,
        Err(e) => {
            page.error = Some(message(lang, &e));
            return render(status_of(e.kind()), lang, raw.as_deref(), &page);
        }
    };
    page.title = kind_label(lang, &item.kind);
    if let Some(thread) = &item.thread_id {
        page.item_href = format!("/threads/{thread}");
        page.back_label = ft.back_thread;
    }
    // An unreadable or out-of-range page number shows the first page.
    let q: FilesQuery = raw
        .as_deref()
        .and_then(|r| serde_urlencoded::from_str(r).ok())
        .unwrap_or_default();
    let total = item.attachments.len();
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    let n = q
        .page
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| (1..=pages).contains(p))
        .unwrap_or(1);
    let start = (n - 1) * PAGE_ROWS;
    let end = (start + PAGE_ROWS).min(total);
    let mut listed = links(&item, item.attachments[start..end].iter());
    match state.postroom.attachment_integrity(&ctx.session, &id).await {
        Ok(known) => mark(lang, &mut listed, &known),
        Err(e) => tracing::warn!(item = %id, error = %e, "attachment integrity not shown"),
    }
    page.rows = listed
        .into_iter()
        .map(|link| FileRow {
            size: human_size(link.size),
            link,
        })
        .collect();
    page.range = if total == 0 {
        "0".into()
    } else {
        format!(
            "{}–{} / {}",
            group(start as u64 + 1),
            group(end as u64),
            group(total as u64)
        )
    };
    page.previous = (n > 1).then(|| format!("/items/{id}/files?page={}", n - 1));
    page.next = (n < pages).then(|| format!("/items/{id}/files?page={}", n + 1));
    render(StatusCode::OK, lang, raw.as_deref(), &page)
}

#[cfg(test)]
mod tests {
    use super::{group, human_size};

    #[test]
    fn counts_and_sizes_read_as_people_write_them() {
        assert_eq!(group(7), "7");
        assert_eq!(group(2048), "2,048");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(527_000), "527 KB");
        assert_eq!(human_size(1_091_567_616), "1.1 GB");
        assert_eq!(human_size(45_200_000), "45.2 MB");
    }
}
