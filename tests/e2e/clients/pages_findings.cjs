// Issue 27's findings on the viewer, files, compose, operator, security,
// settings and sign-in pages, each read back from the page as a person would
// see it (the Rust test asserts the values).
//
// Usage: node pages_findings.cjs BASE ACCOUNTS_JSON
//   ACCOUNTS_JSON: { operator, doctor, sender: {id, password}, thread, item,
//                    new_facility: {code, name} }
'use strict';
const { launch, signIn, signOut, run } = require('./browser.cjs');

const [base, accountsJson] = process.argv.slice(2);
const a = JSON.parse(accountsJson);

async function go(page, path) {
  const res = await page.goto(base + path);
  return res ? res.status() : 0;
}

const text = (page, sel) => page.locator(sel).first().innerText().then((t) => t.trim());

run(async (out) => {
  const b = await launch();
  const { page } = b;
  try {
    // --- sign-in page: the help desk and the facility list ------------------
    await go(page, '/login');
    out.login = {
      help_desk: await text(page, '#help-desk-text'),
      facilities_href: await page.getAttribute('#facilities-link', 'href'),
    };
    out.login.facilities_status = await go(page, out.login.facilities_href);

    // --- operator: labels, form defaults, list columns, lock button ---------
    await signIn(page, base, a.operator.id, a.operator.password);
    await go(page, '/operator/accounts');
    const heads = await page.$$eval('#account-list thead th', (th) => th.map((e) => e.textContent.trim()));
    const form = '#account-form';
    out.operator = {
      heads,
      name_label: (await page.locator(`${form} label:has(#account-name)`).innerText()).trim(),
      role_chosen: await page.$eval('#account-role', (s) => s.options[s.selectedIndex].textContent.trim()),
      facility_chosen: await page.$eval('#account-facility', (s) => s.options[s.selectedIndex].textContent.trim()),
      facility_options: await page.$$eval('#account-facility option', (o) => o.map((e) => e.textContent.trim())),
      last_sign_in: await page.$$eval('#account-list td.last-sign-in', (td) => td.map((e) => e.textContent.trim())),
      second_factor: await page.$$eval('#account-list td.second-factor', (td) => td.map((e) => e.textContent.trim())),
      lock_background: await page.$eval('#account-list button.lock', (e) => getComputedStyle(e).backgroundColor),
      page_text: await page.locator('main').innerText(),
    };
    // Choosing the operator role puts the facility field aside.
    await page.selectOption('#account-role', 'operator');
    out.operator.facility_shown_for_operator = await page.isVisible('#account-facility');
    // A doctor without a facility is refused with the reason, in Japanese.
    await page.selectOption('#account-role', 'doctor');
    await page.fill('#account-name', '屋島 太郎');
    await Promise.all([page.waitForNavigation(), page.click(`${form} button[type=submit]`)]);
    out.operator.doctor_without_facility = (await page.locator('#error').innerText()).trim();
    // A facility without equipment, for the booking form below.
    await go(page, '/operator');
    await page.fill('#facility-form input[name=code]', a.new_facility.code);
    await page.fill('#facility-form input[name=name]', a.new_facility.name);
    await Promise.all([page.waitForNavigation(), page.click('#facility-form button[type=submit]')]);
    out.operator.facility_added = await page.isVisible('#done');
    await signOut(page);

    // --- doctor: viewer and files page ---------------------------------------
    await signIn(page, base, a.doctor.id, a.doctor.password);
    await go(page, `/items/${a.item}/viewer`);
    out.viewer = {
      title: await page.title(),
      banner_patient: await text(page, '#banner-patient'),
      banner_subject: await text(page, '#banner-subject'),
      dicom_patient: await text(page, '.study-patient'),
      descriptions: await page.$$eval('.series-description', (d) => d.map((e) => e.textContent.trim())),
      back_href: await page.getAttribute('#back-to-thread', 'href'),
      files_href: await page.getAttribute('#files-link', 'href'),
    };
    await Promise.all([page.waitForNavigation(), page.click('#back-to-thread')]);
    out.viewer.back_lands = new URL(page.url()).pathname;
    out.viewer.thread_files_href = await page.getAttribute('a.files-link', 'href').catch(() => null);
    await go(page, out.viewer.files_href);
    out.files = {
      range_line: await text(page, 'main p.hint'),
      back_href: await page.getAttribute('#files-back', 'href'),
    };

    // --- doctor: compose ----------------------------------------------------
    await go(page, '/compose');
    out.compose = {
      kinds: await page.$$eval('nav.tabs a', (t) => t.map((e) => e.textContent.trim())),
      patient_required: await page.$eval('#patient_id', (e) => e.required),
      patient_name_required: await page.$eval('#patient_name', (e) => e.required),
      consent_on_required: await page.$eval('#consent_on', (e) => e.required),
      consent_by_required: await page.$eval('#consent_by', (e) => e.required),
      patient_label: (await page.locator('label:has(#patient_id)').innerText()).trim(),
    };
    await go(page, '/compose?kind=referral');
    out.compose.referral_fields = await page.$$eval('#compose-form label', (l) => l.map((e) => e.childNodes[0].textContent.trim()).filter(Boolean));
    // Care pathway: the chosen template's fields at once; another choice
    // shows its fields without loading a page.
    await go(page, '/compose?kind=pathway');
    const visibleFields = () => page.$$eval('.stage-fields:not([hidden]) input', (i) => i.map((e) => e.name));
    out.compose.pathway_first = await visibleFields();
    const before = page.url();
    const other = await page.$eval('#template', (s) => [...s.options].map((o) => o.value).find((v) => v !== s.value));
    await page.selectOption('#template', other);
    out.compose.pathway_after_choice = await visibleFields();
    out.compose.pathway_navigated = page.url() !== before;
    out.compose.pathway_show_button_visible = await page.isVisible('#show-template');
    // Booking: a facility with equipment offers a date-time input; one without
    // disables the whole form, its send button too, and says why.
    await go(page, '/compose?kind=booking');
    out.compose.booking_default_resources = await page.$$eval('select[name=resource_id] option', (o) => o.length);
    out.compose.preferred_type = await page.$eval('#preferred_times', (e) => e.type);
    out.compose.booking_send_enabled = await page.$eval('#send', (e) => !e.disabled);
    await Promise.all([page.waitForNavigation(), page.selectOption('#booking-facility', a.new_facility.code)]);
    out.compose.empty_facility = {
      send_disabled: await page.$eval('#send', (e) => e.disabled),
      fields_disabled: await page.$eval('fieldset.form-body', (e) => e.disabled),
      reason: await text(page, '#no-resources'),
    };
    // A plain message, written on the page, lands on its item.
    await go(page, '/compose?kind=message');
    out.compose.message_patient_required = await page.$eval('#patient_id', (e) => e.required);
    await page.selectOption('#to', { index: 1 });
    await page.fill('#subject', '来週の合同カンファレンスについて');
    await page.fill('#body', '来週木曜の合同カンファレンスは18時からです。');
    await Promise.all([page.waitForURL(/\/items\/[0-9a-f]+/), page.click('#send')]);
    out.compose.message_lands = new URL(page.url()).pathname;

    // --- doctor: security and settings -------------------------------------
    await go(page, '/security');
    const first = await page.getAttribute('#totp-secret', 'data-secret');
    out.security = {
      shown: await text(page, '#totp-secret'),
      factors: await text(page, '#factors'),
      totp_state: await text(page, '#factor-totp dd'),
    };
    await go(page, '/security');
    out.security.same_on_second_visit = (await page.getAttribute('#totp-secret', 'data-secret')) === first;
    await page.fill('form[action="/security/totp"] input[name=code]', '000000');
    await Promise.all([page.waitForNavigation(), page.click('form[action="/security/totp"] button[type=submit]')]);
    out.security.same_after_wrong_code = (await page.getAttribute('#totp-secret', 'data-secret')) === first;
    await Promise.all([page.waitForNavigation(), page.click('#new-key')]);
    out.security.new_after_new_key = (await page.getAttribute('#totp-secret', 'data-secret')) !== first;
    await go(page, '/settings');
    out.settings = {
      imap_host: await text(page, '#imap-host'),
      imap_ports: await text(page, '#imap-ports'),
      imap_user: await text(page, '#imap-user'),
    };
    out.errors = b.errors;
  } finally {
    await b.close();
  }
});
