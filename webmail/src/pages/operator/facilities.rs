//! Facilities: register (the code checked rule by rule), edit, deactivate.

use super::*;

// --- facilities ------------------------------------------------------------------

/// The facility form as typed (kept on a refusal so nothing has to be retyped).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct FacilityForm {
    code: String,
    name: String,
    city: String,
    address: String,
    phone: String,
    departments: String,
    public_note: String,
    /// A checkbox: present when ticked.
    publish: Option<String>,
    active_from: String,
    approval_ref: String,
}

impl FacilityForm {
    fn of(f: &Facility) -> Self {
        Self {
            code: f.code.to_string(),
            name: f.name.clone(),
            city: f.city.clone(),
            address: f.address.clone(),
            phone: f.phone.clone(),
            departments: f.departments.join("、"),
            public_note: f.public_note.clone(),
            publish: f.publish_details.then(|| "on".into()),
            active_from: f.active_from.to_string(),
            approval_ref: f.approval_ref.clone().unwrap_or_default(),
        }
    }

    fn blank() -> Self {
        Self {
            active_from: today_jst().to_string(),
            ..Self::default()
        }
    }

    /// Writes the typed details onto `f` (the code is not among them).
    fn apply(&self, f: &mut Facility) -> Result<(), Error> {
        f.name = self.name.trim().to_string();
        f.city = self.city.trim().to_string();
        f.address = self.address.trim().to_string();
        f.phone = self.phone.trim().to_string();
        f.departments = parse_departments(&self.departments);
        f.public_note = self.public_note.trim().to_string();
        f.publish_details = self.publish.is_some();
        if let Some(day) = parse_day("active_from", &self.active_from)? {
            f.active_from = day;
        }
        f.approval_ref = Some(self.approval_ref.trim().to_string()).filter(|r| !r.is_empty());
        Ok(())
    }
}

pub struct FacilityLine {
    pub code: String,
    pub name: String,
    pub city: String,
    pub departments: String,
    pub published: bool,
    pub period: String,
    /// `active`, `ended` or `not_yet`.
    pub state: &'static str,
    pub approval_ref: Option<String>,
}

impl FacilityLine {
    fn of(f: &Facility, today: NaiveDate) -> Self {
        let state = if f.is_active_on(today) {
            "active"
        } else if f.active_from > today {
            "not_yet"
        } else {
            "ended"
        };
        Self {
            code: f.code.to_string(),
            name: f.name.clone(),
            city: f.city.clone(),
            departments: f.departments.join("、"),
            published: f.publish_details,
            period: format!(
                "{} 〜 {}",
                f.active_from,
                f.active_until.map(|d| d.to_string()).unwrap_or_default()
            ),
            state,
            approval_ref: f.approval_ref.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "operator_facilities.html")]
pub(super) struct FacilitiesPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    /// The warning while the clock cannot be trusted.
    clock: Option<String>,
    facilities: Vec<FacilityLine>,
    form: FacilityForm,
    done: Option<String>,
    error: Option<String>,
}

pub(super) async fn facilities_page(
    state: &AppState,
    ctx: PageCtx,
    status: StatusCode,
    form: FacilityForm,
    done: Option<String>,
    error: Option<String>,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let today = today_jst();
    let list = match state.directory.facilities().await {
        Ok(list) => list,
        Err(e) => return refusal(lang, &ctx.session, &e),
    };
    let page = FacilitiesPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x: texts(lang),
        tab: "facilities",
        clock: clock_banner(state, lang),
        facilities: list.iter().map(|f| FacilityLine::of(f, today)).collect(),
        form,
        done,
        error,
    };
    render(status, lang, query, &page)
}

/// `GET /operator` — the facilities and the form to register one.
pub async fn facilities(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    RawQuery(query): RawQuery,
) -> Response {
    facilities_page(
        &state,
        ctx,
        StatusCode::OK,
        FacilityForm::blank(),
        None,
        None,
        query.as_deref(),
    )
    .await
}

/// `POST /operator/facilities` — a refused code says which rule it broke.
pub async fn add_facility(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Form(form): Form<FacilityForm>,
) -> Response {
    let lang = ctx.lang;
    let added = state
        .directory
        .register_facility(Actor::Session(&ctx.session), &form.code, |f| form.apply(f))
        .await;
    match added {
        Ok(f) => {
            let done = format!("{} {}（{}）", texts(lang).facility_added, f.name, f.code);
            facilities_page(
                &state,
                ctx,
                StatusCode::OK,
                FacilityForm::blank(),
                Some(done),
                None,
                None,
            )
            .await
        }
        Err(e) => {
            facilities_page(
                &state,
                ctx,
                status_of(e.kind()),
                form,
                None,
                Some(message(lang, &e)),
                None,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "operator_facility.html")]
pub(super) struct FacilityPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    /// The warning while the clock cannot be trusted.
    clock: Option<String>,
    line: FacilityLine,
    form: FacilityForm,
    today: String,
    /// The facility's allowed networks, as the form shows them.
    networks: String,
    done: Option<&'static str>,
    error: Option<String>,
}

/// The edit page of one facility, with `form` as typed (or as stored).
pub(super) async fn facility_page(
    state: &AppState,
    ctx: PageCtx,
    code: &str,
    edit: impl FnOnce(&mut FacilityPage),
    status: StatusCode,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let found = match FacilityCode::parse(code) {
        Ok(c) => state.directory.facility(&c).await,
        Err(_) => Err(Error::NotFound("facility")),
    };
    let f = match found {
        Ok(f) => f,
        Err(e) => return refusal(lang, &ctx.session, &e),
    };
    let today = today_jst();
    let networks = state
        .directory
        .facility_networks(&f.code)
        .await
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut page = FacilityPage {
        networks,
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x: texts(lang),
        tab: "facilities",
        clock: clock_banner(state, lang),
        line: FacilityLine::of(&f, today),
        form: FacilityForm::of(&f),
        today: today.to_string(),
        done: None,
        error: None,
    };
    edit(&mut page);
    render(status, lang, query, &page)
}

/// `GET /operator/facilities/{code}`
pub async fn facility_form(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Path(code): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    facility_page(&state, ctx, &code, |_| {}, StatusCode::OK, query.as_deref()).await
}

/// `POST /operator/facilities/{code}` — name, city, departments, public details.
pub async fn update_facility(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Path(code): Path<String>,
    Form(form): Form<FacilityForm>,
) -> Response {
    let lang = ctx.lang;
    let saved = state
        .directory
        .edit_facility(Actor::Session(&ctx.session), &code, |f| form.apply(f))
        .await;
    match saved {
        Ok(_) => {
            facility_page(
                &state,
                ctx,
                &code,
                |p| p.done = Some(p.x.facility_saved),
                StatusCode::OK,
                None,
            )
            .await
        }
        Err(e) => {
            let status = status_of(e.kind());
            let error = message(lang, &e);
            facility_page(
                &state,
                ctx,
                &code,
                move |p| {
                    p.form = FacilityForm {
                        code: p.form.code.clone(),
                        ..form
                    };
                    p.error = Some(error);
                },
                status,
                None,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct DeactivateForm {
    #[serde(default)]
    last_day: String,
}

/// `POST /operator/facilities/{code}/deactivate` — ends participation on the
/// given day (today when left empty).
pub async fn deactivate_facility(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Path(code): Path<String>,
    Form(form): Form<DeactivateForm>,
) -> Response {
    let lang = ctx.lang;
    let ended = state
        .directory
        .end_facility(Actor::Session(&ctx.session), &code, || {
            parse_day("last_day", &form.last_day)
        })
        .await;
    let (status, done, error) = match ended {
        Ok(_) => (StatusCode::OK, Some(texts(lang).facility_deactivated), None),
        Err(e) => (status_of(e.kind()), None, Some(message(lang, &e))),
    };
    facility_page(
        &state,
        ctx,
        &code,
        move |p| {
            p.done = done;
            p.error = error;
        },
        status,
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct NetworksForm {
    #[serde(default)]
    networks: String,
}

/// `POST /operator/facilities/{code}/networks` — the networks the facility's
/// accounts may sign in from (empty: anywhere).
pub async fn set_networks(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Path(code): Path<String>,
    Form(form): Form<NetworksForm>,
) -> Response {
    let lang = ctx.lang;
    let saved = state
        .directory
        .set_facility_networks(Actor::Session(&ctx.session), &code, &form.networks)
        .await;
    let (status, done, error) = match saved {
        Ok(_) => (StatusCode::OK, Some(texts(lang).networks_saved), None),
        Err(e) => (status_of(e.kind()), None, Some(message(lang, &e))),
    };
    let typed = form.networks;
    facility_page(
        &state,
        ctx,
        &code,
        move |p| {
            p.done = done;
            if error.is_some() {
                p.networks = typed;
            }
            p.error = error;
        },
        status,
        None,
    )
    .await
}
