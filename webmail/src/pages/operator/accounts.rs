//! Accounts: register with the issued password shown once, lock, unlock,
//! password and second-factor resets, pending facility-key grants.

use super::*;

// --- accounts --------------------------------------------------------------------

pub struct AccountLine {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub facility: String,
    pub locked: bool,
    pub removed: bool,
    pub must_change_password: bool,
    pub has_second_factor: bool,
    pub failed_attempts: u32,
    /// `2026-12-07 09:30`, or "never".
    pub last_sign_in: String,
}

pub struct GrantLine {
    pub facility: String,
    pub key: &'static str,
    pub account: String,
    pub since: String,
}

pub struct FacilityChoice {
    pub code: String,
    pub name: String,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AccountForm {
    role: String,
    facility: String,
    name: String,
    email: String,
}

#[derive(Template)]
#[template(path = "operator_accounts.html")]
pub(super) struct AccountsPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    /// The warning while the clock cannot be trusted.
    clock: Option<String>,
    filter: String,
    choices: Vec<FacilityChoice>,
    roles: Vec<(&'static str, &'static str)>,
    accounts: Vec<AccountLine>,
    grants: Vec<GrantLine>,
    form: AccountForm,
    done: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountsQuery {
    facility: String,
}

/// The accounts of one facility (or all), the registration form and the
/// pending grants, with the outcome of an action on top.
pub(super) async fn accounts_page(
    state: &AppState,
    ctx: PageCtx,
    filter: &str,
    form: AccountForm,
    outcome: Result<Option<&'static str>, Error>,
    query: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let built = async {
        let facilities = state.directory.facilities().await?;
        let code = FacilityCode::parse(filter).ok();
        let accounts = state.directory.accounts(code.as_ref()).await?;
        let grants = state.directory.pending_grants().await?;
        Ok::<_, Error>((facilities, accounts, grants))
    }
    .await;
    let (facilities, accounts, grants) = match built {
        Ok(v) => v,
        Err(e) => return refusal(lang, &ctx.session, &e),
    };
    let signed_in = last_sign_ins(state, &ctx, &accounts).await;
    let mut form = form;
    // A new account belongs to the facility being looked at, if any.
    if form.facility.is_empty() && !filter.is_empty() {
        form.facility = filter.to_string();
    }
    let names: HashMap<String, String> = facilities
        .iter()
        .map(|f| (f.code.to_string(), f.name.clone()))
        .collect();
    let today = today_jst();
    let x = texts(lang);
    let (status, done, error) = match outcome {
        Ok(done) => (StatusCode::OK, done, None),
        Err(e) => (status_of(e.kind()), None, Some(message(lang, &e))),
    };
    let page = AccountsPage {
        lang,
        t: lang.texts(),
        chrome: ctx.chrome,
        x,
        tab: "accounts",
        clock: clock_banner(state, lang),
        filter: filter.to_string(),
        choices: facilities
            .iter()
            .filter(|f| f.is_active_on(today))
            .map(|f| FacilityChoice {
                code: f.code.to_string(),
                name: f.name.clone(),
            })
            .collect(),
        roles: [Role::Doctor, Role::Liaison, Role::Clerk, Role::Operator]
            .into_iter()
            .map(|r| (r.as_str(), role_label(lang, r)))
            .collect(),
        accounts: accounts
            .iter()
            .map(|a: &Account| AccountLine {
                id: a.id.display_grouped(),
                name: a.name.clone(),
                role: role_label(lang, a.role),
                facility: a
                    .facility
                    .as_ref()
                    .map(|c| {
                        let code = c.to_string();
                        match names.get(&code) {
                            Some(n) => format!("{n}（{code}）"),
                            None => code,
                        }
                    })
                    .unwrap_or_default(),
                locked: a.locked,
                removed: a.removed,
                must_change_password: a.must_change_password,
                has_second_factor: a.has_second_factor,
                failed_attempts: a.failed_attempts,
                last_sign_in: signed_in
                    .get(a.id.as_str())
                    .copied()
                    .flatten()
                    .map(mailbox::clock::format_jst_minutes_millis)
                    .unwrap_or_else(|| x.never_signed_in.to_string()),
            })
            .collect(),
        grants: grants
            .into_iter()
            .map(|g| GrantLine {
                key: match g.role.as_str() {
                    "liaison" => x.liaison_key,
                    "custodian" => x.custodian_key,
                    _ => x.oversight_key,
                },
                facility: match names.get(&g.facility_code) {
                    Some(n) => format!("{n}（{}）", g.facility_code),
                    None => g.facility_code,
                },
                account: AccountId::parse(&g.account_id)
                    .map(|a| a.display_grouped())
                    .unwrap_or(g.account_id),
                since: format_jst_minutes(g.created_at),
            })
            .collect(),
        form,
        done,
        error,
    };
    render(status, lang, query, &page)
}

/// When each listed account last signed in, from the usage figures of the
/// facilities on the list (operators, who have none, are left out). A
/// facility whose figures cannot be read leaves its accounts blank.
async fn last_sign_ins(
    state: &AppState,
    ctx: &PageCtx,
    accounts: &[Account],
) -> HashMap<String, Option<i64>> {
    let mut codes: Vec<&FacilityCode> = accounts
        .iter()
        .filter_map(|a| a.facility.as_ref())
        .collect();
    codes.sort_by_key(|c| c.as_str());
    codes.dedup();
    let mut out = HashMap::new();
    for code in codes {
        match state.threads.usage_of(&ctx.session, Some(code)).await {
            Ok(rows) => out.extend(rows.into_iter().map(|u| (u.account_id, u.last_sign_in_at))),
            Err(e) => tracing::warn!(facility = %code, error = %e, "last sign-ins not shown"),
        }
    }
    out
}

/// `GET /operator/accounts[?facility=CODE]`
pub async fn accounts(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    RawQuery(query): RawQuery,
) -> Response {
    let filter = serde_urlencoded::from_str::<AccountsQuery>(query.as_deref().unwrap_or(""))
        .map(|q| q.facility)
        .unwrap_or_default();
    accounts_page(
        &state,
        ctx,
        &filter,
        AccountForm::default(),
        Ok(None),
        query.as_deref(),
    )
    .await
}

#[derive(Template)]
#[template(path = "operator_issued.html")]
pub(super) struct IssuedPage {
    lang: Lang,
    t: &'static Texts,
    chrome: Chrome,
    x: &'static OperatorTexts,
    tab: &'static str,
    /// The warning while the clock cannot be trusted.
    clock: Option<String>,
    reset: bool,
    account_id: String,
    name: String,
    role: &'static str,
    facility: Option<String>,
    password: String,
    /// Without the recovery key: how many earlier items the person lost.
    lost_items: Option<usize>,
    /// A liaison of the facility may restore the earlier keys (`/recoveries`).
    restoration: bool,
    confirmation_mailed: bool,
}

/// `POST /operator/accounts` — the issued password is on this answer only.
pub async fn add_account(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Form(form): Form<AccountForm>,
) -> Response {
    let lang = ctx.lang;
    let added = async {
        let new = || {
            let role: Role = form.role.parse()?;
            let facility = match (role, form.facility.trim()) {
                (Role::Operator, _) => None,
                (_, "") => {
                    return Err(Error::invalid(
                        "facility",
                        "choose the facility of the account",
                        texts(Lang::Ja).facility_needed,
                    ));
                }
                (_, code) => Some(FacilityCode::parse(code)?),
            };
            Ok(NewAccount {
                role,
                facility,
                name: form.name.clone(),
                email: Some(form.email.trim().to_string()).filter(|e| !e.is_empty()),
            })
        };
        let (account, password) = state
            .directory
            .issue_account(Actor::Session(&ctx.session), new)
            .await?;
        // Notices go only to a confirmed address: mail the link now, as the
        // command line does.
        if let Some(address) = &account.email {
            state
                .notices
                .request_confirmation(&account.id, address)
                .await?;
        }
        Ok::<_, Error>((account, password))
    }
    .await;
    match added {
        Ok((account, password)) => {
            let facility = facility_label(&state, &account).await;
            let page = IssuedPage {
                lang,
                t: lang.texts(),
                x: texts(lang),
                tab: "accounts",
                clock: clock_banner(&state, lang),
                reset: false,
                account_id: account.id.display_grouped(),
                name: account.name.clone(),
                role: role_label(lang, account.role),
                facility,
                password: password.expose().to_string(),
                lost_items: None,
                restoration: false,
                confirmation_mailed: account.email.is_some(),
                chrome: ctx.chrome,
            };
            render(StatusCode::OK, lang, None, &page)
        }
        Err(e) => {
            let filter = form.facility.clone();
            accounts_page(&state, ctx, &filter, form, Err(e), None).await
        }
    }
}

pub(super) async fn facility_label(state: &AppState, a: &Account) -> Option<String> {
    let code = a.facility.as_ref()?;
    Some(match state.directory.facility(code).await {
        Ok(f) => format!("{}（{code}）", f.name),
        Err(_) => code.to_string(),
    })
}

/// A lock, unlock or second-factor reset (each recorded by the directory),
/// and the accounts page with the outcome.
pub(super) async fn account_action(
    state: &AppState,
    ctx: PageCtx,
    done: &'static str,
    outcome: Result<Account, Error>,
) -> Response {
    accounts_page(
        state,
        ctx,
        "",
        AccountForm::default(),
        outcome.map(|_| Some(done)),
        None,
    )
    .await
}

/// The lock form: why the help desk locks.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LockForm {
    reason: String,
}

/// `POST /operator/accounts/{id}/lock` — the person's sessions end at once.
pub async fn lock(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Path(id): Path<String>,
    Form(form): Form<LockForm>,
) -> Response {
    let done = texts(ctx.lang).account_locked;
    let by = Actor::Session(&ctx.session);
    let outcome = state
        .directory
        .lock_account(by, &id, true, Some(&form.reason))
        .await;
    account_action(&state, ctx, done, outcome).await
}

/// `POST /operator/accounts/{id}/unlock` — also clears the failure count.
pub async fn unlock(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Path(id): Path<String>,
) -> Response {
    let done = texts(ctx.lang).account_unlocked;
    let by = Actor::Session(&ctx.session);
    let outcome = state.directory.lock_account(by, &id, false, None).await;
    account_action(&state, ctx, done, outcome).await
}

/// The tick box a destructive action needs.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Confirmed {
    confirm: Option<String>,
}

impl Confirmed {
    fn check(&self) -> Result<(), Error> {
        if self.confirm.is_some() {
            Ok(())
        } else {
            Err(Error::invalid(
                "confirm",
                "tick the box to confirm",
                "確認のチェックを入れてから実行してください。",
            ))
        }
    }
}

/// `POST /operator/accounts/{id}/reset-second-factor` — after an identity
/// check; the person is told by mail and enrols again.
pub async fn reset_second_factor(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Path(id): Path<String>,
    Form(form): Form<Confirmed>,
) -> Response {
    let done = texts(ctx.lang).factor_reset;
    let by = Actor::Session(&ctx.session);
    let outcome = async {
        let a = state
            .directory
            .reset_account_factor(by, &id, || form.check())
            .await?;
        state
            .notices
            .security_notice(&a.id, "second_factor_reset")
            .await?;
        Ok(a)
    }
    .await;
    account_action(&state, ctx, done, outcome).await
}

/// `POST /operator/accounts/{id}/reset-password` — a new issued password,
/// shown once. The web console has no recovery key (it never leaves the
/// operator's offline storage), so the person gets a new key; the page says
/// how many earlier items that costs them.
pub async fn reset_password(
    State(state): State<AppState>,
    OperatorPage(ctx): OperatorPage,
    Path(id): Path<String>,
    Form(form): Form<Confirmed>,
) -> Response {
    let lang = ctx.lang;
    let reset = state
        .directory
        .reset_account_password(Actor::Session(&ctx.session), &id, || {
            form.check().map(|()| None)
        })
        .await;
    match reset {
        Ok((account, outcome)) => {
            let facility = facility_label(&state, &account).await;
            let page = IssuedPage {
                lang,
                t: lang.texts(),
                x: texts(lang),
                tab: "accounts",
                clock: clock_banner(&state, lang),
                reset: true,
                account_id: account.id.display_grouped(),
                name: account.name.clone(),
                role: role_label(lang, account.role),
                facility,
                password: outcome.password.expose().to_string(),
                lost_items: outcome
                    .key_replaced
                    .then_some(outcome.unreadable_items.len()),
                restoration: outcome.restoration_requested,
                confirmation_mailed: false,
                chrome: ctx.chrome,
            };
            render(StatusCode::OK, lang, None, &page)
        }
        Err(e) => accounts_page(&state, ctx, "", AccountForm::default(), Err(e), None).await,
    }
}
