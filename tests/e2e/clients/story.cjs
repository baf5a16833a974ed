// The whole reading-request story through the pages, in headless Chromium:
// a clinic doctor sends a request with a DICOM file to the hospital's liaison
// inbox; the liaison office claims it and assigns a radiologist; the
// radiologist opens it, accepts and reports; the clinic doctor sees the
// report verified and acknowledges; the clinic's clerk follows the progress
// and can change nothing. Prints what each person would check.
//
// usage: node story.cjs BASE HOSPITAL GP_ID GP_PW LIAISON_ID LIAISON_PW RAD_ID RAD_PW CLERK_ID CLERK_PW DICOM_FILE
'use strict';
const { launch, signIn, signOut, screenshots, run } = require('./browser.cjs');
const { threadState, signatures } = require('./thread_page.cjs');

const [base, hospital, gpId, gpPw, liaisonId, liaisonPw, radId, radPw, clerkId, clerkPw, dicom] =
  process.argv.slice(2);

async function click(page, selector) {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

run(async (out) => {
  const b = await launch();
  const page = b.page;
  out.screenshots = [];
  try {
    // The clinic doctor composes to the hospital's liaison inbox.
    await signIn(page, base, gpId, gpPw);
    await page.goto(base + '/compose?kind=reading_request');
    await page.selectOption('#to', 'liaison:' + hospital);
    await page.fill('#subject', '胸部CT 読影依頼');
    await page.fill('#patient_id', 'KTH-0042');
    await page.fill('#patient_name', '香川 太郎');
    await page.fill('#consent_on', new Date(Date.now() + 9 * 3600e3).toISOString().slice(0, 10));
    await page.fill('#consent_by', '琴平 看護師');
    await page.fill('#modality', 'CT');
    await page.fill('#body_part', '胸部');
    await page.fill('#clinical_question', '右上葉の結節影の評価をお願いします。');
    await page.fill('#body', '前回CTとの比較をお願いします。');
    await page.setInputFiles('#files', [dicom]);
    await Promise.all([page.waitForURL(/\/threads\/[0-9a-f]+/), page.click('#send')]);
    const thread = new URL(page.url()).pathname;
    out.thread = thread;
    out.sent_state = await threadState(page);
    out.sent_attachments = await page.locator('a.attachment-link').count();
    await signOut(page);

    // The hospital's liaison office claims it and assigns the radiologist.
    await signIn(page, base, liaisonId, liaisonPw);
    await page.goto(base + '/liaison');
    const id = thread.split('/').pop();
    const row = `#inbox tr[data-thread="${id}"]`;
    out.liaison_sees = await page.locator(row).count();
    await click(page, `${row} button.claim`);
    await page.selectOption(`${row} select[name=doctor]`, radId);
    await click(page, `${row} button.assign`);
    out.liaison_row = (await page.textContent(row)).replace(/\s+/g, ' ').trim();
    await signOut(page);

    // The radiologist opens it, accepts and reports.
    await signIn(page, base, radId, radPw);
    await page.goto(base + '/mail/inbox');
    out.rad_inbox = await page.locator(`table.items a[href="${thread}"]`).count();
    await page.goto(base + thread);
    out.rad_signatures = await signatures(page);
    out.rad_attachment_names = await page.$$eval('a.attachment-link', (a) => a.map((x) => x.textContent.trim()));
    await click(page, '#do-accept');
    out.rad_accepted = await threadState(page);
    await page.fill('form[data-step=report] textarea[name=findings]', '右上葉に8mmの充実性結節。');
    await page.fill('form[data-step=report] textarea[name=impression]', '3か月後の再検を推奨します。');
    await click(page, '#do-report');
    out.rad_reported = await threadState(page);
    await signOut(page);

    // The clinic doctor sees the report, verified, and acknowledges it.
    await signIn(page, base, gpId, gpPw);
    await page.goto(base + thread);
    out.gp_signatures = await signatures(page);
    out.gp_sees_report = (await page.textContent('#steps')).includes('右上葉に8mmの充実性結節。');
    await click(page, '#do-acknowledge');
    out.gp_acknowledged = await threadState(page);
    out.screenshots.push(...await screenshots(page, 'story-thread'));
    await signOut(page);

    // The clinic's clerk follows the progress and can change nothing.
    await signIn(page, base, clerkId, clerkPw);
    await page.goto(base + '/clerk');
    out.clerk_lists_item = await page.locator(`a[href="${thread}"]`).count();
    out.screenshots.push(...await screenshots(page, 'story-clerk'));
    await page.goto(base + thread);
    out.clerk_state = await threadState(page);
    out.clerk_action_forms = await page.locator('form.action').count();
    out.clerk_buttons = await page.$$eval('main button', (bs) => bs.map((x) => x.textContent.trim()));
    out.clerk_forged_post = await page.evaluate(async (url) => {
      const params = new URLSearchParams({ csrf: document.body.dataset.csrf, step: 'withdraw', body: 'x' });
      const r = await fetch(url, { method: 'POST', body: params, redirect: 'manual' });
      return r.status;
    }, base + thread + '/steps');
    await page.reload();
    out.clerk_state_after = await threadState(page);
    out.errors = b.errors;
  } finally {
    await b.close();
  }
});
