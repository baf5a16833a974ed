//! The ZIP links of an item on the thread page (served by the API's routes).

use crate::AppState;

/// The ZIP links of one item on the thread page: every attachment at once,
/// and each study and series of its sealed intake record.
pub struct ZipLinks {
    pub all_href: String,
    pub all_label: &'static str,
    pub studies: Vec<StudyLink>,
}

pub struct StudyLink {
    pub summary: String,
    pub href: String,
    pub label: &'static str,
    pub series: Vec<SeriesLink>,
}

pub struct SeriesLink {
    pub summary: String,
    pub href: String,
    pub label: &'static str,
}

struct ZipTexts {
    all: &'static str,
    study: &'static str,
    series: &'static str,
    images: &'static str,
}

const JA: ZipTexts = ZipTexts {
    all: "添付ファイルをまとめてZIPでダウンロード",
    study: "検査をZIPでダウンロード",
    series: "シリーズをZIPでダウンロード",
    images: "枚",
};
const EN: ZipTexts = ZipTexts {
    all: "Download all attachments as ZIP",
    study: "Download study as ZIP",
    series: "Download series as ZIP",
    images: " images",
};

/// The links for an opened item (`None` without attachments). Reading the
/// intake record is a view in the audit trail, as on the API; an item whose
/// record cannot be read still offers the whole-item ZIP.
pub async fn page_links(
    state: &AppState,
    session: &mailbox::CurrentSession,
    lang: crate::i18n::Lang,
    item: &mailbox::postroom::OpenedItem,
) -> Option<ZipLinks> {
    if item.attachments.is_empty() {
        return None;
    }
    let tt = match lang {
        crate::i18n::Lang::Ja => &JA,
        crate::i18n::Lang::En => &EN,
    };
    let base = format!("/api/v1/envelopes/{}", item.id);
    let record = match state.postroom.intake_record(session, &item.id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(envelope = item.id, error = %e, "intake record unreadable for the ZIP links");
            None
        }
    };
    let studies = record
        .map(|r| r.studies)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(s, study)| StudyLink {
            summary: words(&[
                study.study_date.as_deref().unwrap_or(""),
                &study.modalities().join("/"),
                &study.description,
                &format!("（{}{}）", study.image_count(), tt.images),
            ]),
            href: format!("{base}/studies/{s}/zip"),
            label: tt.study,
            series: study
                .series
                .iter()
                .enumerate()
                .map(|(n, series)| SeriesLink {
                    summary: words(&[
                        &series
                            .series_number
                            .map(|k| format!("#{k}"))
                            .unwrap_or_default(),
                        &series.modality,
                        &series.body_part,
                        &series.description,
                        &format!("（{}{}）", series.image_count(), tt.images),
                    ]),
                    href: format!("{base}/studies/{s}/series/{n}/zip"),
                    label: tt.series,
                })
                .collect(),
        })
        .collect();
    Some(ZipLinks {
        all_href: format!("{base}/zip"),
        all_label: tt.all,
        studies,
    })
}

fn words(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
