//! The public list of participating facilities (参加医療施設一覧), `/facilities`:
//! no sign-in; name, city and departments of every facility taking part
//! today, and the address, phone and note of those that chose to publish them.

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use mailbox::facility::PublicListing;
use serde::Deserialize;

use super::{Chrome, message, render};
use crate::AppState;
use crate::i18n::{Lang, Texts};

pub fn routes() -> Router<AppState> {
    Router::new().route("/facilities", get(list))
}

/// The fixed words of the public list.
pub struct PublicTexts {
    pub title: &'static str,
    pub lead: &'static str,
    pub search: &'static str,
    pub search_button: &'static str,
    pub count: &'static str,
    pub code: &'static str,
    pub city: &'static str,
    pub departments: &'static str,
    pub address: &'static str,
    pub phone: &'static str,
    pub note: &'static str,
    pub none: &'static str,
    pub sign_in: &'static str,
}

static JA: PublicTexts = PublicTexts {
    title: "参加医療施設一覧",
    lead: "Renkei 地域医療連携ネットワークに参加している医療施設です。住所・電話番号・お知らせは、各施設が公開を選んだ場合のみ掲載しています。",
    search: "施設名・市町村・診療科で絞り込み",
    search_button: "絞り込む",
    count: "施設",
    code: "医療機関番号",
    city: "所在地",
    departments: "診療科",
    address: "住所",
    phone: "電話番号",
    note: "お知らせ",
    none: "該当する施設はありません。",
    sign_in: "参加施設の方はこちらからログイン",
};

static EN: PublicTexts = PublicTexts {
    title: "Participating facilities",
    lead: "Medical facilities taking part in the Renkei regional network. Address, phone and notes appear only where a facility chose to publish them.",
    search: "Filter by name, city or department",
    search_button: "Filter",
    count: "facilities",
    code: "Facility code",
    city: "City",
    departments: "Departments",
    address: "Address",
    phone: "Phone",
    note: "Notes",
    none: "No facility matches.",
    sign_in: "Staff of participating facilities: sign in",
};

fn texts(lang: Lang) -> &'static PublicTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

#[derive(Template)]
#[template(path = "public_facilities.html")]
struct FacilitiesPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static PublicTexts,
    q: String,
    facilities: Vec<PublicListing>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Filter {
    #[serde(default)]
    q: String,
}

/// Whether a listing matches every word of the filter (name, city, departments).
fn matches(l: &PublicListing, q: &str) -> bool {
    q.split_whitespace().all(|word| {
        l.name.contains(word)
            || l.city.contains(word)
            || l.departments.iter().any(|d| d.contains(word))
    })
}

/// `GET /facilities[?q=…]`
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = Lang::from_request(&headers, query.as_deref());
    let q = serde_urlencoded::from_str::<Filter>(query.as_deref().unwrap_or(""))
        .map(|f| f.q.trim().to_string())
        .unwrap_or_default();
    let (facilities, error, status) = match state
        .directory
        .public_listings(mailbox::clock::today_jst())
        .await
    {
        Ok(all) => (
            all.into_iter().filter(|l| matches(l, &q)).collect(),
            None,
            StatusCode::OK,
        ),
        Err(e) => (
            Vec::new(),
            Some(message(lang, &e)),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    };
    let page = FacilitiesPage {
        lang,
        t: lang.texts(),
        chrome: Chrome::anonymous(),
        x: texts(lang),
        q,
        facilities,
        error,
    };
    render(status, lang, query.as_deref(), &page)
}
