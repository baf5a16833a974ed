// The operator console, the public facility list and personal settings in
// headless Chromium. Prints one JSON object of what a person would see.
//
// usage: node pages_admin.cjs JSON
//   JSON: { base, operator: {id, password}, doctor: {id, password, recovery: [..]},
//           hospital, clinic, clinic_secret, markers: [..], yesterday,
//           new_email }
'use strict';
const { launch, signIn, screenshots, run } = require('./browser.cjs');

const cfg = JSON.parse(process.argv[2]);
const base = cfg.base;

async function text(page, sel) {
  return (await page.isVisible(sel)) ? (await page.textContent(sel)).trim() : null;
}

/// Submits a form by its button and waits for the answer page.
async function submit(page, sel) {
  await Promise.all([page.waitForNavigation(), page.click(`${sel} button[type=submit]`)]);
}

/// A fresh sign-in attempt in its own browser: where it lands and any error.
async function tryIdentity(id, password) {
  const b = await launch();
  try {
    const landed = await signIn(b.page, base, id, password);
    return { landed, error: await text(b.page, '#error') };
  } finally {
    await b.close();
  }
}

async function fillFacility(page, form, f) {
  for (const [k, v] of Object.entries(f)) {
    if (k === 'publish') {
      if (v) await page.check(`${form} input[name=publish]`);
      else await page.uncheck(`${form} input[name=publish]`);
    } else {
      await page.fill(`${form} [name=${k}]`, v);
    }
  }
}

/// The HTML of every operator page, to look for content that must not be there.
async function operatorPages(page) {
  const html = {};
  for (const p of ['/operator', '/operator/accounts', '/operator/notifications',
    `/operator/facilities/${cfg.hospital}`]) {
    await page.goto(base + p);
    html[p] = await page.content();
  }
  return html;
}

run(async (out) => {
  const errors = [];

  // --- the operator ---------------------------------------------------------------
  const op = await launch();
  try {
    const page = op.page;
    out.operator_landed = await signIn(page, base, cfg.operator.id, cfg.operator.password);
    await page.goto(base + '/operator');
    out.operator_title = await page.title();
    out.operator_shots = await screenshots(page, 'operator');

    // A typo in the check digit: refused with the rule, nothing registered.
    await fillFacility(page, '#facility-form', { code: '3710123451', name: '誤り病院' });
    await submit(page, '#facility-form');
    out.check_digit_error = await text(page, '#error');
    out.check_digit_listed = await page.isVisible('tr[data-code="3710123451"]');

    // Outside the home prefecture: refused without the approval reference, the
    // typed fields kept; accepted with it.
    const sapporo = {
      code: '0110113719', name: '札幌北病院', city: '札幌市', address: '北海道札幌市北区1-1',
      phone: '011-000-0000', departments: '放射線科、脳神経外科', public_note: '遠隔読影の受付 24時間',
      active_from: '2026-04-01', publish: true,
    };
    await fillFacility(page, '#facility-form', sapporo);
    await submit(page, '#facility-form');
    out.approval_error = await text(page, '#error');
    out.approval_kept_name = await page.inputValue('#facility-form input[name=name]');
    out.approval_listed = await page.isVisible('tr[data-code="0110113719"]');
    await page.fill('#facility-form input[name=approval_ref]', '運営委員会 2026-11 承認第7号');
    await submit(page, '#facility-form');
    out.approval_error_after = await text(page, '#error');
    out.added_notice = await text(page, '#done');
    out.added_row = await text(page, 'tr[data-code="0110113719"]');

    // The public list, signed out, in another browser: published details of
    // the hospital and Sapporo, none of the clinic's.
    const pub = await launch();
    try {
      await pub.page.goto(base + '/facilities');
      out.public_signed_in = await pub.page.isVisible('#logout');
      const card = async (code) => ({
        text: await text(pub.page, `li[data-code="${code}"]`),
        address: await text(pub.page, `li[data-code="${code}"] .address`),
        phone: await text(pub.page, `li[data-code="${code}"] .phone`),
        note: await text(pub.page, `li[data-code="${code}"] .note`),
      });
      out.public_hospital = await card(cfg.hospital);
      out.public_clinic = await card(cfg.clinic);
      out.public_sapporo = await card('0110113719');
      out.public_has_clinic_secret = (await pub.page.content()).includes(cfg.clinic_secret);
      out.public_shots = await screenshots(pub.page, 'facilities');
      await pub.page.goto(base + '/facilities?q=' + encodeURIComponent('脳神経外科'));
      out.public_filtered = await pub.page.$$eval('li.facility', (l) => l.map((e) => e.dataset.code));
      errors.push(...pub.errors);
    } finally {
      await pub.close();
    }

    // An account: the issued password is shown once.
    await page.goto(base + '/operator/accounts');
    await page.selectOption('#account-form select[name=role]', 'doctor');
    await page.selectOption('#account-form select[name=facility]', cfg.hospital);
    await page.fill('#account-form input[name=name]', '新規 医師');
    await submit(page, '#account-form');
    const id = await text(page, '#issued-id');
    const issued = await text(page, '#issued-password');
    out.issued_id = id;
    out.issued_password_length = issued ? issued.length : 0;
    await page.goto(base + '/operator/accounts');
    out.issued_shown_again = (await page.content()).includes(issued);
    out.new_row = await text(page, `tr[data-account="${id}"]`);
    out.first_sign_in = await tryIdentity(id, issued);

    // Locked: the person's open session ends and a new sign-in is refused.
    const person = await launch();
    await signIn(person.page, base, id, issued);
    await page.fill(`tr[data-account="${id}"] form[action$="/lock"] input[name=reason]`, '端末紛失の届出');
    await submit(page, `tr[data-account="${id}"] form[action$="/lock"]`);
    out.lock_notice = await text(page, '#done');
    out.locked_status = await text(page, `tr[data-account="${id}"] .account-status`);
    await person.page.goto(base + '/password');
    out.locked_session_went_to = new URL(person.page.url()).pathname + new URL(person.page.url()).search;
    await person.close();
    out.locked_sign_in = await tryIdentity(id, issued);
    await submit(page, `tr[data-account="${id}"] form[action$="/unlock"]`);
    out.unlock_notice = await text(page, '#done');
    out.unlocked_sign_in = await tryIdentity(id, issued);

    // Reset: a new issued password, the old one refused.
    await page.click(`tr[data-account="${id}"] details:has(.reset-form) summary`);
    await page.check(`tr[data-account="${id}"] .reset-form input[name=confirm]`);
    await submit(page, `tr[data-account="${id}"] .reset-form`);
    out.reset_title = await text(page, '#issued-title');
    const reset = await text(page, '#issued-password');
    out.reset_differs = !!reset && reset !== issued;
    out.old_password_sign_in = await tryIdentity(id, issued);
    out.reset_sign_in = await tryIdentity(id, reset);

    // Deactivation: Sapporo's last day was yesterday, so it leaves the list.
    await page.goto(base + '/operator/facilities/0110113719');
    await page.fill('#facility-deactivate input[name=last_day]', cfg.yesterday);
    await page.check('#facility-deactivate input[name=confirm]');
    await submit(page, '#facility-deactivate');
    out.deactivated_notice = await text(page, '#done');
    out.deactivated_state = await text(page, '#facility-state');
    const after = await launch();
    await after.page.goto(base + '/facilities');
    out.public_after_deactivation = await after.page.$$eval('li.facility', (l) => l.map((e) => e.dataset.code));
    await after.close();

    // No content anywhere on the operator's pages.
    const html = await operatorPages(page);
    out.markers_on_operator_pages = [];
    for (const [p, h] of Object.entries(html)) {
      for (const m of cfg.markers) {
        if (h.includes(m)) out.markers_on_operator_pages.push(`${p}: ${m}`);
      }
    }
    await page.goto(base + '/operator/accounts');
    out.accounts_shots = await screenshots(page, 'operator-accounts');
    errors.push(...op.errors);
  } finally {
    await op.close();
  }

  // --- a doctor's settings --------------------------------------------------------
  const doc = await launch();
  try {
    const page = doc.page;
    await signIn(page, base, cfg.doctor.id, cfg.doctor.password);
    await page.fill('#second-factor-form input[name=recovery_code]', cfg.doctor.recovery[0]);
    await submit(page, '#second-factor-form');
    out.doctor_landed = new URL(page.url()).pathname;
    await page.goto(base + '/settings');
    out.settings_title = await page.title();
    // The doctor may not open the console.
    const refused = await page.goto(base + '/operator');
    out.doctor_operator_status = refused.status();
    out.doctor_operator_text = await text(page, '#error');
    await page.goto(base + '/settings');

    // Notification mode.
    await page.check('#notify-form input[value=digest]');
    await submit(page, '#notify-form');
    out.notify_notice = await text(page, '#done');
    await page.goto(base + '/settings');
    out.notify_checked = await page.$eval('#notify-form input:checked', (e) => e.value);
    out.notify_api = await page.evaluate(async () => (await (await fetch('/api/v1/me/notifications')).json()).mode);

    // The address needs a fresh re-authentication: asked for on the page.
    out.email_asks_code = await page.isVisible('#email-form input[name=reauth_code]');
    await page.fill('#email-form input[name=address]', cfg.new_email);
    await submit(page, '#email-form');
    out.email_without_code = await text(page, '#error');
    out.email_kept = await page.inputValue('#email-form input[name=address]');
    out.email_pending_before = await text(page, '#email-pending');
    await page.fill('#email-form input[name=reauth_recovery_code]', cfg.doctor.recovery[1]);
    await submit(page, '#email-form');
    out.email_error = await text(page, '#error');
    out.email_notice = await text(page, '#done');
    out.email_pending = await text(page, '#email-pending');
    out.email_current = await text(page, '#email-current');

    // App passwords: each shown once; one kept, one revoked.
    out.app_asks_code_after_reauth = await page.isVisible('#app-password-form input[name=reauth_code]');
    const made = {};
    for (const name of ['診察室のPC', '古いノートPC']) {
      await page.fill('#app-password-form input[name=name]', name);
      await submit(page, '#app-password-form');
      made[name] = await text(page, '#new-app-password');
    }
    out.app_keep = made['診察室のPC'];
    out.app_revoke = made['古いノートPC'];
    await page.goto(base + '/settings');
    const html = await page.content();
    out.app_shown_again = html.includes(out.app_keep) || html.includes(out.app_revoke);
    out.app_names = (await page.$$eval('#app-password-list .app-name', (l) => l.map((e) => e.textContent))).sort();
    const row = 'tr:has(.app-name:text-is("古いノートPC"))';
    await submit(page, `${row} form`);
    out.revoke_notice = await text(page, '#done');
    out.app_names_after = await page.$$eval('#app-password-list .app-name', (l) => l.map((e) => e.textContent));
    await page.goto(base + '/settings');
    out.settings_shots = await screenshots(page, 'settings');
    errors.push(...doc.errors);
  } finally {
    await doc.close();
  }
  out.errors = errors;
});
